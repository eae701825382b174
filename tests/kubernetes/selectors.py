"""Label and field selectors as the API server parses them from a query string."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Matcher = Callable[[Mapping[str, str]], bool]

_KEY = r"[A-Za-z0-9./_-]+"
_SET = re.compile(rf"^\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)\s*$")
_EQUALITY = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)\s*$")
_EXISTS = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*$")


class SelectorError(ValueError):
    """A selector the API server would reject with 400 Bad Request."""


def _split_terms(text: str) -> list[str]:
    terms: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [term for term in terms if term.strip()]


def _term(term: str) -> Matcher:
    if match := _SET.match(term):
        key, operator = match["key"], match["op"]
        values = {value.strip() for value in match["values"].split(",") if value.strip()}
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQUALITY.match(term):
        key, operator, value = match["key"], match["op"], match["value"]
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS.match(term):
        key, negated = match["key"], bool(match["neg"])
        return lambda labels: (key in labels) != negated
    raise SelectorError(f"unable to parse requirement: {term.strip()!r}")


def label_selector(text: str) -> Matcher:
    """Parse a ``labelSelector``: ``a=b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``."""
    terms = [_term(term) for term in _split_terms(text)]
    return lambda labels: all(term(labels) for term in terms)


@dataclass(frozen=True)
class FieldTerm:
    """One ``field=value`` or ``field!=value`` requirement."""

    field: str
    value: str
    negated: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object satisfies this requirement."""
        value: Any = obj
        for part in self.field.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        actual = "" if value is None else str(value)
        return (actual == self.value) != self.negated


FIELD_LABELS: dict[str, frozenset[str]] = {
    "pods": frozenset({"spec.nodeName", "status.phase", "spec.serviceAccountName"}),
    "secrets": frozenset({"type"}),
    "events": frozenset({"involvedObject.name", "involvedObject.kind", "reason", "type"}),
}
_COMMON_FIELDS = frozenset({"metadata.name", "metadata.namespace"})


def field_selector(text: str, plural: str) -> list[FieldTerm]:
    """Parse a ``fieldSelector``; only the fields the real server supports for ``plural``."""
    terms: list[FieldTerm] = []
    for term in _split_terms(text):
        match = re.match(r"^\s*([A-Za-z0-9.]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not match:
            raise SelectorError(f"invalid selector: {term.strip()!r}")
        name, operator, value = match.groups()
        if name not in _COMMON_FIELDS | FIELD_LABELS.get(plural, frozenset()):
            raise SelectorError(f"field label not supported: {name}")
        terms.append(FieldTerm(name, value, operator == "!="))
    return terms
