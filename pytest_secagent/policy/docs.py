"""The policy schema as a Markdown table, generated from the model's field documentation.

``python -m pytest_secagent.policy.docs`` prints the table the README carries; a test keeps
the two identical.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, get_args, get_origin

from pytest_secagent.policy.model import Policy

__all__ = ["schema_rows", "schema_table"]


def _type_text(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is typing.Literal:
        return " \\| ".join(str(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        text = " or ".join(_type_text(m) for m in members)
        return f"{text} (optional)" if type(None) in get_args(tp) else text
    if origin is list:
        return f"list of {_type_text(get_args(tp)[0])}"
    if origin is dict:
        return "mapping"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    names = {"str": "string", "int": "integer", "float": "number", "bool": "true/false", "date": "date"}
    name = getattr(tp, "__name__", str(tp))
    return names.get(name, name)


def _default_text(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        value: Any = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:  # pragma: no cover - every policy field has a default
        return ""
    if dataclasses.is_dataclass(value):
        return ""
    if value is None:
        return "none"
    if isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
        return "see below"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "[]"
    if isinstance(value, dict):
        return "{}"
    return str(value)


def schema_rows(cls: type = Policy, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every key, depth first."""
    rows: list[tuple[str, str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        key = f"{prefix}{field.name}"
        tp = hints[field.name]
        doc = str(field.metadata.get("doc", "")).strip()
        rows.append((key, _type_text(tp), _default_text(field), doc))
        target = tp if dataclasses.is_dataclass(tp) else None
        if get_origin(tp) is list and dataclasses.is_dataclass(get_args(tp)[0]):
            target = get_args(tp)[0]
            key = f"{key}[]"
        if isinstance(target, type):
            rows.extend(schema_rows(target, f"{key}."))
    return rows


def schema_table() -> str:
    """The schema as a Markdown table."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, type_text, default, doc in schema_rows():
        cell = default.replace("|", "\\|")
        lines.append(f"| `{key}` | {type_text} | {cell} | {doc} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(schema_table())
