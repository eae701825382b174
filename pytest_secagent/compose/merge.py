"""The Compose Specification's merge rules, for override files and ``extends``.

Mappings merge key by key; scalars are replaced. Sequences are appended to, except that
``command``, ``entrypoint`` and a health check's ``test`` are replaced; ``environment``,
``labels``, ``extra_hosts``, ``sysctls``, build ``args`` and the like merge as mappings (a
``KEY=VALUE`` list is read as one); ``ports`` and ``volumes``, ``secrets``, ``configs`` and
``devices`` keep one entry per target. ``!reset`` removes a value, ``!override`` replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_secagent.compose.yamlfile import LineMap, Override, Reset

__all__ = ["as_mapping", "merge_service", "merge_values", "strip_tags"]

_REPLACED = frozenset({"command", "entrypoint", "test"})
_AS_MAPPING = frozenset({
    "environment", "labels", "annotations", "extra_hosts", "sysctls", "args", "options",
    "driver_opts", "ulimits",
})
_UNIQUE_BY_TARGET = frozenset({"volumes", "secrets", "configs", "devices", "ports"})


def as_mapping(value: object, *, separator: str = "=") -> dict[str, Any]:
    """A ``KEY=VALUE`` list (or a mapping) as a mapping; ``KEY`` alone maps to ``None``."""
    if isinstance(value, Mapping):
        return dict(value)
    result: dict[str, Any] = {}
    for item in value if isinstance(value, list) else []:
        text = str(item)
        sep = separator if separator in text else ("=" if "=" in text else separator)
        key, found, rest = text.partition(sep)
        result[key.strip()] = rest if found else None
    return result


def _target_key(key: str, item: object) -> str:
    """What makes an entry of a unique-resource list unique."""
    if isinstance(item, Mapping):
        if key == "ports":
            return "|".join(str(item.get(k, "")) for k in ("host_ip", "published", "target", "protocol"))
        if key == "devices":
            return str(item.get("target") or item.get("source") or item)
        return str(item.get("target") or item.get("source") or item)
    text = str(item)
    if key == "volumes":
        parts = text.split(":")
        return parts[1] if len(parts) > 1 else parts[0]
    if key == "devices":
        parts = text.split(":")
        return parts[1] if len(parts) > 1 else parts[0]
    return text


def _merge_list(key: str, base: list[Any], override: list[Any]) -> list[Any]:
    if key in _UNIQUE_BY_TARGET:
        merged: dict[str, Any] = {_target_key(key, item): item for item in base}
        for item in override:
            merged[_target_key(key, item)] = item
        return list(merged.values())
    result = list(base)
    for item in override:
        if item not in result:
            result.append(item)
    return result


def strip_tags(value: Any) -> Any:
    """``value`` with ``!override`` unwrapped and ``!reset`` entries dropped (for a lone file)."""
    if isinstance(value, Override):
        return strip_tags(value.value)
    if isinstance(value, Mapping):
        result = LineMap({k: strip_tags(v) for k, v in value.items() if not isinstance(v, Reset)})
        if isinstance(value, LineMap):
            result.line, result.lines = value.line, dict(value.lines)
        return result
    if isinstance(value, list):
        return [strip_tags(v) for v in value if not isinstance(v, Reset)]
    return value


def merge_values(key: str, base: Any, override: Any) -> Any:
    """``override`` merged onto ``base`` under ``key`` by the specification's rules."""
    if isinstance(override, Reset):
        return Reset()
    if isinstance(override, Override):
        return strip_tags(override.value)
    if key in _REPLACED or base is None:
        return strip_tags(override)
    if key in _AS_MAPPING and isinstance(base, (Mapping, list)) and isinstance(override, (Mapping, list)):
        merged = as_mapping(base)
        for name, value in as_mapping(override).items():
            if isinstance(value, Reset):
                merged.pop(name, None)
            else:
                merged[name] = strip_tags(value)
        return merged
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        result = LineMap(base)
        if isinstance(base, LineMap):
            result.line, result.lines = base.line, dict(base.lines)
        for name, value in override.items():
            merged_value = merge_values(name, base.get(name), value)
            if isinstance(merged_value, Reset):
                result.pop(name, None)
                continue
            result[name] = merged_value
            if isinstance(override, LineMap):
                result.lines[name] = override.line_of(name)
        return result
    if isinstance(base, list) and isinstance(override, list):
        return _merge_list(key, base, [strip_tags(v) for v in override if not isinstance(v, Reset)])
    return strip_tags(override)


def merge_service(base: Mapping[str, Any], override: Mapping[str, Any]) -> LineMap:
    """One service definition merged onto another."""
    merged = merge_values("service", base, override)
    return merged if isinstance(merged, LineMap) else LineMap(merged)
