"""Run the container controls of the suite on a container source (Compose files or a live engine)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from pytest_secagent.evidence import ControlFailed, Evidence
from pytest_secagent.host.engine.snapshot import ContainerSource
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy import Policy
from suites import test_container_engine as suite

Control = Callable[[ContainerSource, Policy, Evidence], None]

CONTROLS: dict[str, Control] = {
    "SA-RUNTIME-004": suite.test_engine_socket_protected_and_not_mounted,
    "SA-RUNTIME-006": suite.test_agent_containers_run_as_non_root,
    "SA-RUNTIME-007": suite.test_agent_containers_unprivileged,
    "SA-RUNTIME-008": suite.test_agent_containers_read_only_root,
    "SA-RUNTIME-009": suite.test_agent_containers_isolated_from_host,
    "SA-RUNTIME-010": suite.test_agent_containers_resource_limits,
    "SA-RUNTIME-011": suite.test_agent_images_allowed_and_pinned,
    "SA-NET-002": suite.test_agent_containers_publish_only_on_loopback,
    "SA-LOG-005": suite.test_agent_containers_health_observable,
}
"""Every control of the suite that judges the agent's containers, on compose and host targets."""


@dataclass(frozen=True)
class Outcome:
    """How one control ended on one source, with its evidence."""

    control: str
    result: str  # passed, partial, failed, skipped, error
    message: str
    evidence: Evidence

    @property
    def verdict(self) -> str:
        """Pass or fail as a user reads it: a partial pass is a pass on the parts observed."""
        return "passed" if self.result in ("passed", "partial") else self.result

    @property
    def failed_names(self) -> set[str]:
        """Names of the expectations that did not hold."""
        return {o.name for o in self.evidence.failures}

    def __str__(self) -> str:
        return f"{self.control}: {self.result}: {self.message}\n{self.evidence.summary()}"


def run_control(control: str, source: ContainerSource, policy: Policy) -> Outcome:
    """Run one control as the suite does and say how it ended."""
    evidence = Evidence()
    try:
        CONTROLS[control](source, policy, evidence)
    except ControlFailed as exc:
        return Outcome(control, "failed", str(exc), evidence)
    except pytest.skip.Exception as exc:
        return Outcome(control, "skipped", str(exc.msg), evidence)
    except EvidenceUnavailable as exc:
        return Outcome(control, "error", str(exc), evidence)
    result = "partial" if evidence.unobserved_parts else "passed"
    return Outcome(control, result, "", evidence)


def run_controls(source: ContainerSource, policy: Policy, controls: list[str] | None = None) -> dict[str, Outcome]:
    """Every control (or those named) on ``source``."""
    return {c: run_control(c, source, policy) for c in (controls or list(CONTROLS))}
