"""SA-SEG-001 for hosts: only the agent's containers and declared platform services run."""

from __future__ import annotations

import json

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.checks.listeners import is_loopback, listening_sockets
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy

__all__ = ["RunningContainer", "check_dedicated_host", "running_containers"]

RunningContainer = tuple[str, dict[str, str]]
"""A running container's name and labels."""

_COMM_LENGTH = 15  # the kernel truncates process names to 15 characters


def _engine_failed(host: HostConnection, cli: str, reason: str) -> EvidenceUnavailable:
    return EvidenceUnavailable(f"{host.target_id}: cannot list running containers with {cli}: {reason}")


def _docker_containers(host: HostConnection, cli: str) -> list[RunningContainer]:
    listed = host.run([cli, "ps", "-q", "--no-trunc"])
    if not listed.succeeded:
        raise _engine_failed(host, cli, listed.stderr.strip() or f"exit status {listed.exit_status}")
    ids = listed.stdout.split()
    if not ids:
        return []
    inspected = host.run([cli, "inspect", "--format", "{{json .Name}}\t{{json .Config.Labels}}", *ids])
    if not inspected.succeeded:
        raise _engine_failed(host, cli, inspected.stderr.strip())
    containers = []
    for line in inspected.stdout.splitlines():
        name_json, _, labels_json = line.partition("\t")
        labels = json.loads(labels_json) if labels_json.strip() else None
        containers.append((str(json.loads(name_json)).lstrip("/"), dict(labels or {})))
    return containers


def _podman_containers(host: HostConnection, cli: str) -> list[RunningContainer]:
    listed = host.run([cli, "ps", "--format", "json"])
    if not listed.succeeded:
        raise _engine_failed(host, cli, listed.stderr.strip() or f"exit status {listed.exit_status}")
    entries = json.loads(listed.stdout or "[]")
    return [
        (str((entry.get("Names") or ["?"])[0]), dict(entry.get("Labels") or {}))
        for entry in entries
    ]


def running_containers(host: HostConnection) -> tuple[list[RunningContainer], list[str]]:
    """Running containers of every engine CLI on the host, and the CLIs asked."""
    containers: list[RunningContainer] = []
    asked = []
    if host.which("docker"):
        containers += _docker_containers(host, "docker")
        asked.append("docker")
    if host.which("podman"):
        containers += _podman_containers(host, "podman")
        asked.append("podman")
    return containers, asked


def _is_agent(container: RunningContainer, policy: Policy) -> bool:
    name, labels = container
    if name in policy.agent.containers:
        return True
    wanted = policy.agent.container_labels
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def _allowed_process(name: str, allowed: set[str]) -> bool:
    return name in allowed or any(a[:_COMM_LENGTH] == name for a in allowed)


def check_dedicated_host(host: HostConnection, policy: Policy, evidence: Evidence) -> None:
    """Record running containers and listening processes that are neither agent nor platform."""
    platform = set(policy.agent.platform_services)
    allowed = platform | set(policy.agent.containers)
    evidence.observe("platform services allowed", ", ".join(sorted(platform)) or "none")
    containers, engines = running_containers(host)
    if engines:
        others = sorted(
            name for name, labels in containers
            if not _is_agent((name, labels), policy) and name not in platform
        )
        evidence.observe("running containers", ", ".join(sorted(n for n, _ in containers)) or "none")
        evidence.expect(
            "containers that are neither the agent's nor declared platform services",
            expected="none",
            actual=", ".join(others) or "none",
            ok=not others,
        )
    else:
        evidence.observe("running containers", "no docker or podman CLI on the host")
    listeners, source = listening_sockets(host)
    outside = [x for x in listeners if not is_loopback(x.address)]
    unknown = sorted({x.label for x in outside if not x.processes})
    if unknown:
        raise EvidenceUnavailable(
            f"{host.target_id}: cannot tell which process owns {', '.join(unknown)} "
            f"({source} shows owners only to a privileged user)"
        )
    foreign = sorted(
        {x.label for x in outside if not all(_allowed_process(p, allowed) for p in x.processes)}
    )
    evidence.expect(
        "services listening beyond loopback that are neither the agent's nor platform services",
        expected="none",
        actual=", ".join(foreign) or "none",
        ok=not foreign,
    )
