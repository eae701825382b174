"""Read a user's configuration file as UTF-8 text, with its digest, or say why not."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TextFile", "read_text_file"]


@dataclass(frozen=True)
class TextFile:
    """A file's text and the sha256 of its bytes."""

    text: str
    sha256: str


def read_text_file(path: Path, what: str) -> TextFile | str:
    """The file's text and digest, or a one-line reason naming ``path`` and ``what`` it is."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return f"{path}: cannot read the {what}: {exc.strerror or exc}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"{path}: the {what} is not UTF-8 text"
    return TextFile(text=text, sha256=hashlib.sha256(raw).hexdigest())
