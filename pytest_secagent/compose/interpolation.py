"""Variable interpolation as the Compose Specification defines it, and ``.env`` files.

``$VAR`` and ``${VAR}`` take the variable's value (empty when unset); ``${VAR:-default}``
the default when the variable is unset or empty, ``${VAR-default}`` only when unset;
``${VAR:?message}`` and ``${VAR?message}`` make an unset (or empty) variable an error;
``${VAR:+replacement}`` and ``${VAR+replacement}`` the replacement when it is set. Defaults
and replacements may interpolate again. ``$$`` is a literal ``$``.

Errors name the variable and the message the file gives, never a value: an interpolated
value may be a credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["InterpolationError", "Interpolator", "read_env_file"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:=\s*(.*?))?\s*$")
#: The deepest nesting of ``${...}`` in a default this interpolator follows.
MAX_DEPTH = 20


class InterpolationError(ValueError):
    """A ``${...}`` that cannot be resolved; the message names the variable, never a value."""


@dataclass
class Interpolator:
    """Resolves ``${...}`` against one set of variables and remembers the unset ones it met."""

    variables: Mapping[str, str]
    unset: set[str] = field(default_factory=set)

    def interpolate(self, text: str) -> str:
        """``text`` with every variable replaced and ``$$`` turned into ``$``."""
        value, end = self._scan(text, 0, closing=None, depth=0)
        if end != len(text):  # pragma: no cover - _scan consumes everything at top level
            raise InterpolationError("unexpected '}'")
        return value

    def _scan(self, text: str, start: int, *, closing: str | None, depth: int) -> tuple[str, int]:
        """Interpolate from ``start`` up to an unmatched ``closing`` brace (or the end)."""
        if depth > MAX_DEPTH:
            raise InterpolationError(f"interpolation nested deeper than {MAX_DEPTH} levels")
        out: list[str] = []
        i = start
        while i < len(text):
            char = text[i]
            if closing is not None and char == closing:
                return "".join(out), i
            if char != "$":
                out.append(char)
                i += 1
                continue
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt == "$":
                out.append("$")
                i += 2
            elif nxt == "{":
                value, i = self._braced(text, i + 2, depth)
                out.append(value)
            elif (match := _NAME.match(text, i + 1)) is not None:
                out.append(self._lookup(match.group(0)))
                i = match.end()
            else:
                raise InterpolationError(
                    "a lone '$' is not valid; write '$$' for a literal dollar sign"
                )
        if closing is not None:
            raise InterpolationError("'${' without its closing '}'")
        return "".join(out), i

    def _lookup(self, name: str) -> str:
        if name not in self.variables:
            self.unset.add(name)
            return ""
        return self.variables[name]

    def _braced(self, text: str, start: int, depth: int) -> tuple[str, int]:
        match = _NAME.match(text, start)
        if match is None:
            raise InterpolationError("'${' must be followed by a variable name")
        name = match.group(0)
        i = match.end()
        if i < len(text) and text[i] == "}":
            return self._lookup(name), i + 1
        operator = ""
        for candidate in (":-", ":?", ":+", "-", "?", "+"):
            if text.startswith(candidate, i):
                operator = candidate
                break
        if not operator:
            raise InterpolationError(f"invalid interpolation format for variable {name!r}")
        argument, end = self._scan(text, i + len(operator), closing="}", depth=depth + 1)
        is_set = name in self.variables
        value = self.variables.get(name, "")
        empty_counts = operator.startswith(":")
        present = is_set and (bool(value) or not empty_counts)
        if operator.endswith("-"):
            return (value if present else argument), end + 1
        if operator.endswith("+"):
            return (argument if present else ""), end + 1
        if not present:
            what = "unset or empty" if empty_counts else "unset"
            message = f": {argument}" if argument else ""
            raise InterpolationError(f"required variable {name} is {what}{message}")
        return value, end + 1


def _unquote(raw: str, variables: Mapping[str, str]) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        inner = raw[1:-1].replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        return Interpolator(variables).interpolate(inner)
    value = re.sub(r"\s+#.*$", "", raw)
    return Interpolator(variables).interpolate(value)


def read_env_file(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of an ``.env``-style file: ``KEY=VALUE`` lines, ``#`` comments, quotes.

    Values may use variables defined earlier in the file or in ``environ``. A malformed
    line raises :class:`InterpolationError` naming the file and the line, not its text.
    """
    found: dict[str, str] = {}
    text = path.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            raise InterpolationError(f"{path}:{number}: not a KEY=VALUE line")
        key, raw = match.group(1), match.group(2)
        if raw is None:
            if environ is not None and key in environ:
                found[key] = environ[key]
            continue
        try:
            found[key] = _unquote(raw, {**(environ or {}), **found})
        except InterpolationError as exc:
            raise InterpolationError(f"{path}:{number}: {key}: {exc}") from None
    return found
