"""What every agent-container check does first."""

from __future__ import annotations

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.engine.snapshot import AgentContainers

__all__ = ["record_missing"]


def record_missing(agents: AgentContainers, evidence: Evidence) -> None:
    """Fail each agent container the policy names but the engine does not have."""
    evidence.observe("agent containers", f"{agents.selector}: " + (
        ", ".join(f"{c.name} ({'declared' if c.declared else c.short_id})" for c in agents.found)
        or "none found"
    ))
    for name in agents.missing:
        evidence.expect(f"{name}: present", expected="present", actual="missing", ok=False)
