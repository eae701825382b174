r"""Make text from a target safe to print and to store: visible controls, encodable, bounded.

Anything a target sends (object names, labels, certificate names, command output) is
untrusted. Before it reaches a terminal or a report, :func:`printable` turns every character
that could act on a terminal or reorder what a reader sees into a visible escape:

* C0 and C1 control characters and DEL (``ESC[2J``, ``ESC]0;title BEL``, NUL...) become
  ``\x1b``-style escapes; newlines and tabs too, unless the text is a multi-line block;
* bidirectional and invisible format characters (U+202A-U+202E, U+2066-U+2069, U+200B-U+200F,
  U+061C, U+FEFF) become ``\u202e``-style escapes;
* lone surrogates (``\udc80``, from undecodable bytes) become ``\udc80`` escapes, so the text
  can always be encoded as UTF-8;

and cuts the text at ``limit`` characters with a marker that gives the full length.
"""

from __future__ import annotations

import re

__all__ = ["MAX_TEXT_LENGTH", "cut", "printable"]

#: The longest single value kept in evidence and reports, in characters.
MAX_TEXT_LENGTH = 2000

_FORMAT = "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_FORMAT}\ud800-\udfff]")
_UNSAFE_KEEP_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_FORMAT}\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def cut(text: str, limit: int = MAX_TEXT_LENGTH) -> str:
    """``text`` cut to ``limit`` characters, with a marker naming how many were left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"... (cut: {len(text)} characters in all, {len(text) - limit} not shown)"


def printable(text: str, limit: int | None = MAX_TEXT_LENGTH, *, lines: bool = False) -> str:
    """``text`` with every unsafe character escaped, then cut to ``limit`` (``None``: uncut).

    ``lines=True`` keeps newlines and tabs (for multi-line blocks such as a traceback).
    """
    pattern = _UNSAFE_KEEP_LINES if lines else _UNSAFE
    safe = pattern.sub(_escape, text)
    return safe if limit is None else cut(safe, limit)
