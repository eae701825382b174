"""Run the suite's control functions directly and collect each one's verdict."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest

from pytest_secagent.evidence import ControlFailed, Evidence, Verdict
from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.engine.snapshot import EngineSnapshot, EngineSnapshots
from pytest_secagent.host.local import LocalConnection
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy import Policy
from suites import test_container_engine as suite

Control = Callable[[EngineSnapshot, Policy, Evidence], None]

ENGINE_CONTROLS: dict[str, Control] = {
    "SA-RUNTIME-002": suite.test_engine_version_is_supported,
    "SA-RUNTIME-003": lambda engine, _policy, evidence: suite.test_engine_security_features_enabled(
        engine, evidence
    ),
    "SA-RUNTIME-004": suite.test_engine_socket_protected_and_not_mounted,
}
CONTAINER_CONTROLS: dict[str, Control] = {
    "SA-RUNTIME-006": suite.test_agent_containers_run_as_non_root,
    "SA-RUNTIME-007": suite.test_agent_containers_unprivileged,
    "SA-RUNTIME-008": suite.test_agent_containers_read_only_root,
    "SA-RUNTIME-009": suite.test_agent_containers_isolated_from_host,
    "SA-RUNTIME-010": suite.test_agent_containers_resource_limits,
    "SA-RUNTIME-011": suite.test_agent_images_allowed_and_pinned,
    "SA-NET-002": suite.test_agent_containers_publish_only_on_loopback,
    "SA-LOG-005": suite.test_agent_containers_health_observable,
}
ALL_CONTROLS = {**ENGINE_CONTROLS, **CONTAINER_CONTROLS}


@dataclass(frozen=True)
class Outcome:
    """How one control ended, with its evidence."""

    control: str
    result: str  # passed, failed, skipped, error
    message: str
    evidence: Evidence

    @property
    def failed_names(self) -> set[str]:
        """Names of the expectations that did not hold."""
        return {o.name for o in self.evidence.failures}

    @property
    def warned_names(self) -> set[str]:
        """Names of the lower-severity findings."""
        return {o.name for o in self.evidence.observations if o.verdict is Verdict.WARN}

    def __str__(self) -> str:
        return f"{self.control}: {self.result}: {self.message}\n{self.evidence.summary()}"


def run_control(control: str, engine: EngineSnapshot, policy: Policy) -> Outcome:
    """Run one control as the suite does and say how it ended."""
    evidence = Evidence()
    try:
        ALL_CONTROLS[control](engine, policy, evidence)
    except ControlFailed as exc:
        return Outcome(control, "failed", str(exc), evidence)
    except pytest.skip.Exception as exc:
        return Outcome(control, "skipped", str(exc.msg), evidence)
    except EvidenceUnavailable as exc:
        return Outcome(control, "error", str(exc), evidence)
    return Outcome(control, "passed", "", evidence)


def snapshot(policy: Policy, host: HostConnection | None = None) -> EngineSnapshot:
    """A fresh engine snapshot of this machine (or ``host``) as the policy reaches it."""
    connection = host or LocalConnection(timeout=20.0)
    return EngineSnapshots().get(connection, policy.engine, timeout=20.0)


def run_controls(
    policy: Policy, controls: Iterable[str], host: HostConnection | None = None
) -> dict[str, Outcome]:
    """Run ``controls`` against a fresh snapshot; a detection skip or error ends all of them alike."""
    try:
        engine = snapshot(policy, host)
    except pytest.skip.Exception as exc:
        return {c: Outcome(c, "skipped", str(exc.msg), Evidence()) for c in controls}
    except EvidenceUnavailable as exc:
        return {c: Outcome(c, "error", str(exc), Evidence()) for c in controls}
    return {c: run_control(c, engine, policy) for c in controls}
