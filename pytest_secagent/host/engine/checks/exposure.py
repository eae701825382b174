"""SA-NET-002 and SA-LOG-005 for containers: nothing published beyond loopback, health observable."""

from __future__ import annotations

import ipaddress

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.engine.checks.common import record_missing
from pytest_secagent.host.engine.snapshot import AgentContainers

__all__ = ["check_health", "check_published_ports", "is_loopback"]


def is_loopback(host_ip: str) -> bool:
    """Whether a publication's host address is loopback (empty means every address: not loopback)."""
    if host_ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(host_ip.strip("[]")).is_loopback
    except ValueError:
        return False


def check_published_ports(agents: AgentContainers, evidence: Evidence) -> None:
    """SA-NET-002 for containers: every published port is bound to a loopback address."""
    record_missing(agents, evidence)
    for container in agents.found:
        exposed = [
            f"{p.host_ip or '0.0.0.0'}:{p.host_port or '(any)'} -> {p.container_port}"  # noqa: S104 - described, not bound
            for p in container.ports
            if not is_loopback(p.host_ip)
        ]
        if container.publish_all_ports:
            exposed.append("--publish-all: every exposed port on every address")
        loopback = [f"{p.host_ip}:{p.host_port} -> {p.container_port}" for p in container.ports
                    if is_loopback(p.host_ip)]
        if loopback:
            evidence.observe(f"{container.name}: loopback publications", "; ".join(loopback))
        evidence.expect(
            f"{container.name}: ports published beyond loopback",
            expected="none",
            actual="; ".join(exposed) or "none",
            ok=not exposed,
        )


def check_health(agents: AgentContainers, evidence: Evidence) -> None:
    """SA-LOG-005 for containers: a health check is defined and the running container is healthy."""
    record_missing(agents, evidence)
    for container in agents.found:
        health = container.health
        evidence.expect(
            f"{container.name}: health check",
            expected="defined",
            actual=" ".join(health.test) if health.test else "none",
            ok=health.defined,
        )
        if not health.defined:
            continue
        if container.declared:
            evidence.unobserved(
                f"{container.name}: health",
                expected="healthy",
                reason="declared configuration only: whether the container runs and is healthy "
                "shows once it is up",
            )
            continue
        if not container.running:
            state = f"not running ({container.status or 'unknown'})"
            evidence.expect(f"{container.name}: health", expected="healthy", actual=state, ok=False)
            continue
        evidence.expect(
            f"{container.name}: health",
            expected="healthy",
            actual=health.status or "no status reported",
            ok=health.status == "healthy",
        )
