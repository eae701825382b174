"""Keep credentials out of everything a run prints or writes."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "***"

# Values that look like credentials whatever key they sit under.
_VALUE_PATTERNS = (
    re.compile(r"AKIA[0-9A-Z]{16}"),
    # A JWT, also when an assertion message shortened it with "...".
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}[A-Za-z0-9_.-]*"),
    re.compile(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
    ),
)
# key=value or key: value pairs whose key names a secret.
_SECRET_KEY = r"(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|client[_-]?secret)"  # noqa: S105 - key names to mask
_PAIR = re.compile(
    rf"(?i)(\b[\w.-]*{_SECRET_KEY}[\w.-]*\b\s*[:=]\s*)(['\"]?)([^\s'\",;}}]+)(\2)"
)


class Redactor:
    """Masks credential-shaped text and any extra patterns the user configured."""

    def __init__(self, extra_patterns: Iterable[str] = ()) -> None:
        self._extra = tuple(re.compile(p) for p in extra_patterns)

    def __call__(self, text: str) -> str:
        """Return ``text`` with every credential-looking value replaced by ``***``."""
        for pattern in (*_VALUE_PATTERNS, *self._extra):
            text = pattern.sub(REDACTED, text)
        return _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}{m.group(4)}", text)


DEFAULT_REDACTOR = Redactor()
