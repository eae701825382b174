"""Keep credentials out of everything a run prints or writes.

What is masked is exactly what :mod:`pytest_secagent.detection` finds as a credential (the
same engine decides SA-SECRET-002), plus any pattern the user configured: only the value
is replaced by ``***``, never the key or the words around it, so ``secret_store: vault`` or
``no agent pods found`` read as written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pytest_secagent.detection import find_credentials

__all__ = ["DEFAULT_REDACTOR", "REDACTED", "Redactor", "redact"]

REDACTED = "***"


def redact(text: str) -> str:
    """Return ``text`` with the value of every credential found in it replaced by ``***``."""
    findings = find_credentials(text)
    if not findings:
        return text
    parts: list[str] = []
    position = 0
    for finding in findings:
        if finding.start < position:
            continue
        parts.append(text[position : finding.start])
        parts.append(REDACTED)
        position = finding.end
    parts.append(text[position:])
    return "".join(parts)


class Redactor:
    """Masks credentials (see :func:`redact`) and any extra patterns the user configured."""

    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        self._extra = tuple(re.compile(p) for p in extra_patterns)

    def __call__(self, text: str) -> str:
        """Return ``text`` with every credential value replaced by ``***``."""
        text = redact(text)
        for pattern in self._extra:
            text = pattern.sub(REDACTED, text)
        return text


DEFAULT_REDACTOR = Redactor()
