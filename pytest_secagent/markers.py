"""The ``secagent_control`` marker: registration, validation by signature, resolution."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from pytest_secagent.catalog import Catalog, target_kinds_for
from pytest_secagent.model import Control, Severity
from pytest_secagent.targets import TargetKind

__all__ = ["MARKER_NAME", "ControlBinding", "ControlMarkerError", "register_markers", "resolve_marker"]

MARKER_NAME = "secagent_control"
MARKER_DOC = (
    "secagent_control(control_id, *, applies_to=None, title=None, severity=None, section=None, "
    "baseline=None, remediation=None, references=None): the test proves this control; it runs "
    "once per configured target of the kinds in applies_to (host, k8s, manifests, endpoint, "
    "policy; default from the catalog). Controls outside the catalog declare title, severity, "
    "section and applies_to inline. See the README section 'Markers'."
)


class ControlMarkerError(Exception):
    """A ``secagent_control`` marker that cannot be used; reported as a collection error."""


@dataclass(frozen=True)
class ControlBinding:
    """A test's control and the target kinds it runs against."""

    control: Control
    applies_to: tuple[TargetKind, ...]


def register_markers(config: pytest.Config) -> None:
    """Register the plugin's markers so that ``--strict-markers`` accepts them."""
    config.addinivalue_line("markers", f"{MARKER_NAME}{MARKER_DOC[len(MARKER_NAME) :]}")


@dataclass(frozen=True)
class _MarkerArgs:
    control_id: str
    applies_to: tuple[str, ...] | None
    title: str | None
    severity: str | None
    section: str | None
    baseline: str | None
    remediation: str | None
    references: tuple[str, ...] | None


def _marker_signature(
    control_id: str,
    /,
    *,
    applies_to: Sequence[str] | str | None = None,
    title: str | None = None,
    severity: str | None = None,
    section: str | None = None,
    baseline: str | None = None,
    remediation: str | None = None,
    references: Sequence[str] | None = None,
) -> _MarkerArgs:
    if not isinstance(control_id, str) or not control_id.strip():
        raise TypeError("the first argument must be the control ID, a non-empty string")
    for name, value in (
        ("title", title),
        ("severity", severity),
        ("section", section),
        ("baseline", baseline),
        ("remediation", remediation),
    ):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name}= must be a string, got {value!r}")
    kinds = (applies_to,) if isinstance(applies_to, str) else applies_to
    refs = (references,) if isinstance(references, str) else references
    return _MarkerArgs(
        control_id=control_id.strip(),
        applies_to=tuple(kinds) if kinds is not None else None,
        title=title,
        severity=severity,
        section=section,
        baseline=baseline,
        remediation=remediation,
        references=tuple(refs) if refs is not None else None,
    )


def _parse_kinds(values: tuple[str, ...]) -> tuple[TargetKind, ...]:
    valid = [k.value for k in TargetKind]
    kinds: list[TargetKind] = []
    for value in values:
        try:
            kinds.append(TargetKind(value))
        except ValueError:
            raise ControlMarkerError(
                f"applies_to={value!r} is not a target kind; valid kinds: {', '.join(valid)}"
            ) from None
    if not kinds:
        raise ControlMarkerError("applies_to= names no target kind")
    return tuple(kinds)


def _catalog_binding(args: _MarkerArgs, control: Control) -> ControlBinding:
    if args.severity is not None:
        try:
            Severity.parse(args.severity)
        except ValueError as exc:
            raise ControlMarkerError(f"severity=: {exc}") from None
    inline = {
        "title": args.title,
        "severity": args.severity,
        "section": args.section,
        "baseline": args.baseline,
        "remediation": args.remediation,
    }
    for name, value in inline.items():
        if value is None:
            continue
        catalog_value = getattr(control, name)
        catalog_text = catalog_value.value if isinstance(catalog_value, Severity) else catalog_value
        if value != catalog_text:
            raise ControlMarkerError(
                f"{name}={value!r} contradicts the catalog, which says {catalog_text!r} for "
                f"{control.id}; drop {name}= from the marker"
            )
    if args.references is not None and args.references != control.references:
        raise ControlMarkerError(
            f"references= contradicts the catalog for {control.id}; drop references= from the marker"
        )
    default_kinds = target_kinds_for(control)
    if args.applies_to is None:
        return ControlBinding(control, default_kinds)
    kinds = _parse_kinds(args.applies_to)
    outside = [k.value for k in kinds if k not in default_kinds]
    if outside:
        allowed = ", ".join(k.value for k in default_kinds) or "none"
        raise ControlMarkerError(
            f"applies_to={list(args.applies_to)!r}: the catalog does not evidence {control.id} "
            f"on {', '.join(outside)} targets (it can run on: {allowed})"
        )
    return ControlBinding(control, kinds)


def _user_binding(args: _MarkerArgs, catalog: Catalog) -> ControlBinding:
    if args.control_id.upper().startswith("SA-"):
        wanted = args.control_id.upper()
        swapped = [
            i
            for i in catalog.ids
            if sorted(i) == sorted(wanted) and i.rsplit("-", 1)[0] == wanted.rsplit("-", 1)[0]
        ]
        close = swapped or difflib.get_close_matches(wanted, catalog.ids, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ControlMarkerError(
            f"unknown control ID {args.control_id!r}: the SA- prefix is reserved for catalog controls{hint}"
        )
    missing = [
        name
        for name, value in (
            ("title", args.title),
            ("severity", args.severity),
            ("section", args.section),
            ("applies_to", args.applies_to),
        )
        if value is None
    ]
    if missing:
        raise ControlMarkerError(
            f"control {args.control_id!r} is not in the catalog, so the marker must declare "
            f"{', '.join(m + '=' for m in missing)}"
        )
    title, severity_name, section = args.title or "", args.severity or "", args.section or ""
    try:
        severity = Severity.parse(severity_name)
    except ValueError as exc:
        raise ControlMarkerError(f"severity=: {exc}") from None
    control = Control(
        id=args.control_id,
        title=title,
        section=section,
        severity=severity,
        baseline=args.baseline or "",
        remediation=args.remediation or "",
        references=args.references or (),
        mode="custom",
    )
    return ControlBinding(control, _parse_kinds(args.applies_to or ()))


def resolve_marker(mark: pytest.Mark, catalog: Catalog) -> ControlBinding:
    """Validate a ``secagent_control`` marker and return its control and target kinds.

    Raises :class:`ControlMarkerError` for a typo in an argument, an unknown control ID,
    inline metadata that contradicts the catalog, or a bad severity.
    """
    try:
        args = _marker_signature(*mark.args, **mark.kwargs)
    except TypeError as exc:
        message = str(exc).replace("_marker_signature()", f"{MARKER_NAME}()")
        raise ControlMarkerError(message) from None
    control = catalog.get(args.control_id)
    if control is not None:
        return _catalog_binding(args, control)
    return _user_binding(args, catalog)
