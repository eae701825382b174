"""SA-EDR-001/002 for hosts: EDR services running and enabled; signature definitions fresh."""

from __future__ import annotations

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.checks.common import (
    host_epoch,
    process_names,
    stat_path,
    systemd_running,
    unit_state,
)
from pytest_secagent.outcomes import EvidenceUnavailable, not_applicable
from pytest_secagent.policy.model import Policy

__all__ = ["PROCESS_NAMES", "check_edr_running", "check_signature_age"]

PROCESS_NAMES: dict[str, tuple[str, ...]] = {
    "falcon-sensor": ("falcon-sensor", "falcond"),
    "mdatp": ("wdavdaemon",),
    "sentinelone": ("s1-agent", "sentinelone-age"),
    "ds_agent": ("ds_agent",),
    "cbagentd": ("cbagentd",),
    "wazuh-agent": ("wazuh-agentd",),
    "clamav-daemon": ("clamd",),
}
"""Process names of the well-known EDR services, used where systemd does not run."""


def check_edr_running(host: HostConnection, policy: Policy, evidence: Evidence) -> None:
    """Record that at least one declared EDR service is present, and every present one runs.

    With systemd each unit must be active and enabled; without it the process list shows
    running services, and enablement is reported as not observable (a warning).
    """
    services = policy.edr.services
    if not services:
        not_applicable("no EDR services declared (policy edr.services)")
    if systemd_running(host):
        states = [unit_state(host, f"{name}.service") for name in services]
        present = [s for s in states if s.present]
        evidence.observe("EDR units present", ", ".join(s.unit for s in present) or "none")
        evidence.expect(
            "EDR service installed",
            expected=f"one of {', '.join(services)}",
            actual=", ".join(s.unit for s in present) or "none of them",
            ok=bool(present),
        )
        for state in present:
            evidence.expect(
                f"{state.unit} running and enabled",
                expected="active, enabled",
                actual=f"{state.active}, {state.enabled or 'unknown'}",
                ok=state.running and state.is_enabled,
            )
        return
    names = process_names(host)
    running = [s for s in services if any(p in names for p in PROCESS_NAMES.get(s, (s[:15],)))]
    evidence.observe("service manager", "systemd does not run here: services are read from processes")
    evidence.expect(
        "EDR service running",
        expected=f"a process of one of {', '.join(services)}",
        actual=", ".join(running) or "none of them runs",
        ok=bool(running),
    )
    if running:
        evidence.warn(
            "EDR enabled at boot",
            expected="enabled in the service manager",
            actual="not observable without systemd",
        )


def check_signature_age(host: HostConnection, policy: Policy, evidence: Evidence) -> None:
    """Record that the newest declared signature file is within the allowed age."""
    paths = policy.edr.signature_paths
    if not paths:
        not_applicable("no signature files declared (policy edr.signature_paths)")
    limit = policy.edr.definitions_max_age_hours
    now = host_epoch(host)
    ages: dict[str, float] = {}
    for path in paths:
        info = stat_path(host, path)
        if info is not None:
            ages[path] = (now - info.mtime) / 3600
            evidence.observe(f"{path} age", f"{ages[path]:.1f} h")
    if not ages:
        raise EvidenceUnavailable(
            f"{host.target_id}: none of the signature files {', '.join(paths)} exists, so the age "
            f"of the definitions cannot be shown; declare edr.signature_paths for this EDR"
        )
    newest, age = min(ages.items(), key=lambda item: item[1])
    evidence.expect(
        "signature definitions age",
        expected=f"≤ {limit} h",
        actual=f"{age:.1f} h ({newest})",
        ok=age <= limit,
    )
