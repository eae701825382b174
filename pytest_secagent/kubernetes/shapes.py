"""The types the API gives the fields the checks read, for the kinds that are not workloads.

A field of the wrong type (``data`` that is a string, ``externalIPs`` that is a mapping,
labels that are numbers...) is something the API server would never serve and ``kubectl
apply`` would never accept; read anyway, it turns into "nothing found" and a false pass.
Both views refuse such objects: :func:`object_problems` names each field that is not of
its type, without showing its value. Pod specs are checked where they are read
(:mod:`pytest_secagent.kubernetes.workloads`); NetworkPolicies and RBAC objects by the
checks that judge them, which name the rule at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["describe_value", "object_problems"]

Check = Callable[[object], bool]


def describe_value(value: object) -> str:
    """Say what a value is without showing it (target text could hold a credential)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, Mapping):
        return "an empty mapping" if not value else f"a mapping of {len(value)} keys"
    if isinstance(value, list):
        return "an empty list" if not value else f"a list of {len(value)} items"
    return f"a {type(value).__name__}"


def _string(value: object) -> bool:
    return isinstance(value, str)


def _boolean(value: object) -> bool:
    return isinstance(value, bool)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _mapping(value: object) -> bool:
    return isinstance(value, Mapping)


def _list(value: object) -> bool:
    return isinstance(value, list)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _string_map(value: object) -> bool:
    return isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


_NAMES: Mapping[Check, str] = {
    _string: "a string",
    _boolean: "a boolean",
    _integer: "an integer",
    _mapping: "a mapping",
    _list: "a list",
    _strings: "a list of strings",
    _string_map: "a mapping of strings to strings",
}

Fields = Mapping[str, Check]


def _fields(obj: Mapping[str, Any], fields: Fields, where: str) -> list[str]:
    """Name each field of ``obj`` that is set (not null) and not of its type."""
    return [
        f"{where}{key} is {describe_value(obj[key])}, not {_NAMES[check]}"
        for key, check in fields.items()
        if obj.get(key) is not None and not check(obj[key])
    ]


def _each(obj: Mapping[str, Any], key: str, fields: Fields, where: str) -> list[str]:
    """Check every entry of the list ``obj[key]``: a mapping with ``fields`` of their types."""
    items = obj.get(key)
    if not isinstance(items, list):
        return []
    problems = []
    for index, item in enumerate(items):
        label = f"{where}{key}[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{label} is {describe_value(item)}, not a mapping")
        else:
            problems += _fields(item, fields, f"{label}.")
    return problems


_METADATA: Fields = {
    "name": _string,
    "namespace": _string,
    "labels": _string_map,
    "annotations": _string_map,
    "ownerReferences": _list,
    "managedFields": _list,
    "creationTimestamp": _string,
}
_OWNER_REFERENCE: Fields = {"kind": _string, "name": _string, "controller": _boolean}


def _metadata_problems(obj: Mapping[str, Any]) -> list[str]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return [f"metadata is {describe_value(metadata)}, not a mapping"]
    problems = _fields(metadata, _METADATA, "metadata.")
    problems += _each(metadata, "ownerReferences", _OWNER_REFERENCE, "metadata.")
    problems += _each(metadata, "managedFields", {"time": _string}, "metadata.")
    return problems


def _required_spec(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[str]]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return {}, [f"spec is {describe_value(spec)}, not a mapping (the API always sets it)"]
    return spec, []


def _service(obj: Mapping[str, Any]) -> list[str]:
    spec, problems = _required_spec(obj)
    problems += _fields(
        spec, {"type": _string, "externalIPs": _strings, "ports": _list, "selector": _string_map}, "spec."
    )
    problems += _each(spec, "ports", {"nodePort": _integer}, "spec.")
    return problems


def _config_map(obj: Mapping[str, Any]) -> list[str]:
    return _fields(obj, {"data": _string_map, "binaryData": _string_map}, "")


def _service_account(obj: Mapping[str, Any]) -> list[str]:
    return _fields(obj, {"automountServiceAccountToken": _boolean, "secrets": _list}, "")


def _node(obj: Mapping[str, Any]) -> list[str]:
    status = obj.get("status")
    if status is None:
        return []
    if not isinstance(status, Mapping):
        return [f"status is {describe_value(status)}, not a mapping"]
    problems = _fields(status, {"nodeInfo": _mapping}, "status.")
    info = status.get("nodeInfo")
    if isinstance(info, Mapping):
        problems += _fields(
            info,
            dict.fromkeys(("kubeletVersion", "containerRuntimeVersion", "osImage", "kernelVersion"), _string),
            "status.nodeInfo.",
        )
    return problems


def _limit_range(obj: Mapping[str, Any]) -> list[str]:
    spec, problems = _required_spec(obj)
    problems += _fields(spec, {"limits": _list}, "spec.")
    problems += _each(spec, "limits", {"type": _string, "default": _mapping, "max": _mapping}, "spec.")
    return problems


def _component(obj: Mapping[str, Any]) -> list[str]:
    spec, problems = _required_spec(obj)
    problems += _fields(spec, {"type": _string, "metadata": _list, "version": _string}, "spec.")
    problems += _each(spec, "metadata", {"name": _string, "secretKeyRef": _mapping}, "spec.")
    problems += _fields(obj, {"scopes": _strings}, "")
    return problems


def _external_secret(obj: Mapping[str, Any]) -> list[str]:
    spec, problems = _required_spec(obj)
    return problems + _fields(spec, {"secretStoreRef": _mapping}, "spec.")


def _secret_provider(obj: Mapping[str, Any]) -> list[str]:
    spec, problems = _required_spec(obj)
    return problems + _fields(spec, {"provider": _string}, "spec.")


def _reference_grant(obj: Mapping[str, Any]) -> list[str]:
    spec, problems = _required_spec(obj)
    problems += _fields(spec, {"from": _list, "to": _list}, "spec.")
    problems += _each(spec, "from", {"kind": _string, "namespace": _string}, "spec.")
    problems += _each(spec, "to", {"kind": _string}, "spec.")
    return problems


def _vulnerability_report(obj: Mapping[str, Any]) -> list[str]:
    report = obj.get("report")
    if not isinstance(report, Mapping):
        return [f"report is {describe_value(report)}, not a mapping"]
    problems = _fields(
        report,
        {"artifact": _mapping, "registry": _mapping, "vulnerabilities": _list, "summary": _mapping},
        "report.",
    )
    problems += _each(report, "vulnerabilities", {"severity": _string, "fixedVersion": _string}, "report.")
    summary = report.get("summary")
    if isinstance(summary, Mapping):
        problems += _fields(summary, {"criticalCount": _integer, "highCount": _integer}, "report.summary.")
    return problems


_KIND_PROBLEMS: Mapping[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "Service": _service,
    "ConfigMap": _config_map,
    "ServiceAccount": _service_account,
    "Node": _node,
    "LimitRange": _limit_range,
    "Component": _component,
    "ExternalSecret": _external_secret,
    "SecretProviderClass": _secret_provider,
    "ReferenceGrant": _reference_grant,
    "VulnerabilityReport": _vulnerability_report,
}


def object_problems(kind: str, obj: object) -> list[str]:
    """Name every field the checks read that is not of its API type, for an object of ``kind``.

    Each problem starts with ``Kind/name``; an empty list means the object can be judged.
    Values are never shown, only what they are (``a string of 40 characters``).
    """
    if not isinstance(obj, Mapping):
        return [f"{kind} is {describe_value(obj)}, not a mapping"]
    problems = _metadata_problems(obj)
    judge = _KIND_PROBLEMS.get(kind)
    if judge is not None:
        problems += judge(obj)
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    label = f"{kind}/{name}" if isinstance(name, str) else kind
    return [f"{label}: {problem}" for problem in problems]
