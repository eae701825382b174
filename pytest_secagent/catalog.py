"""The control catalog, loaded from the package's ``controls.yaml``: one source of truth."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from importlib import resources

import yaml

from pytest_secagent.model import Control, Severity
from pytest_secagent.targets import TargetKind

__all__ = ["Catalog", "load_catalog", "target_kinds_for"]

# Where each catalog target kind can be evidenced by this plugin's target kinds.
_LIVE_KINDS: dict[str, tuple[TargetKind, ...]] = {
    "policy": (TargetKind.POLICY,),
    "host": (TargetKind.HOST,),
    "docker": (TargetKind.HOST,),
    "k8s-cluster": (TargetKind.K8S,),
    "k8s-workload": (TargetKind.K8S,),
    "endpoint": (TargetKind.ENDPOINT,),
}
_STATIC_KINDS = {"k8s-cluster", "k8s-workload"}


def target_kinds_for(control: Control) -> tuple[TargetKind, ...]:
    """The plugin target kinds a catalog control can run against by default."""
    kinds: list[TargetKind] = []
    static = "S" in control.mode
    for name in control.target_kinds:
        candidates = list(_LIVE_KINDS.get(name, ()))
        if static and name in _STATIC_KINDS:
            candidates.append(TargetKind.MANIFESTS)
        kinds.extend(k for k in candidates if k not in kinds)
    return tuple(kinds)


class Catalog:
    """The controls by ID, in catalog order."""

    def __init__(self, controls: list[Control]) -> None:
        self._controls = {c.id: c for c in controls}

    def __contains__(self, control_id: object) -> bool:
        return control_id in self._controls

    def __iter__(self) -> Iterator[Control]:
        return iter(self._controls.values())

    def __len__(self) -> int:
        return len(self._controls)

    def get(self, control_id: str) -> Control | None:
        """The control with this ID, or ``None``."""
        return self._controls.get(control_id)

    @property
    def ids(self) -> tuple[str, ...]:
        """Every control ID, in catalog order."""
        return tuple(self._controls)

    @property
    def sections(self) -> tuple[str, ...]:
        """The baseline sections, in catalog order."""
        seen: dict[str, None] = {}
        for control in self._controls.values():
            seen.setdefault(control.section, None)
        return tuple(seen)


@functools.cache
def load_catalog() -> Catalog:
    """Load the packaged catalog (cached: it never changes during a run)."""
    text = resources.files("pytest_secagent").joinpath("controls.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    controls = [
        Control(
            id=entry["id"],
            title=entry["title"],
            section=entry["section"],
            severity=Severity.parse(entry["severity"]),
            baseline=entry.get("baseline", ""),
            remediation=entry.get("remediation", ""),
            references=tuple(entry.get("references", ())),
            target_kinds=tuple(entry.get("target_kinds", ())),
            mode=entry.get("mode", ""),
        )
        for entry in data["controls"]
    ]
    return Catalog(controls)
