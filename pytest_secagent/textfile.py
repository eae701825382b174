"""Read a user's configuration file as UTF-8 text, with its digest, or say why not."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MAX_CONFIG_BYTES", "TextFile", "file_problem", "read_text_file"]

#: The largest configuration file (policy, waivers) read: 1 MiB, far above any real one.
MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True)
class TextFile:
    """A file's text and the sha256 of its bytes."""

    text: str
    sha256: str


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a configuration file (``does not exist``...), or ``None``."""
    if path.is_dir():
        return "is a directory, not a file"
    if not path.exists():
        return "does not exist"
    if not path.is_file():
        return "is not a regular file"
    return None


def read_text_file(path: Path, what: str, *, limit: int = MAX_CONFIG_BYTES) -> TextFile | str:
    """The file's text and digest, or a one-line reason naming ``path`` and ``what`` it is.

    At most ``limit`` bytes are read: a larger file is refused without reading it whole.
    """
    problem = file_problem(path)
    if problem is not None:
        return f"{path}: the {what} {problem}"
    try:
        with path.open("rb") as stream:
            raw = stream.read(limit + 1)
    except OSError as exc:
        return f"{path}: cannot read the {what}: {exc.strerror or exc}"
    if len(raw) > limit:
        return (
            f"{path}: the {what} is larger than {limit // 1024} KiB; a {what} holds settings, "
            "not data: check that this is the right file"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return f"{path}: the {what} is not UTF-8 text"
    return TextFile(text=text, sha256=hashlib.sha256(raw).hexdigest())
