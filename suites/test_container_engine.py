"""Container runtime security on a host's Docker or Podman engine and the agent's containers.

Baseline: customer environment security for Secure Agent 2.0, "Container runtime security"
(Docker Engine 20.10+ or Podman 4.0+ "with security features enabled"), made concrete by the
CIS Docker Benchmark's daemon-configuration and container-runtime sections; for the agent's
containers also "Outbound-only" (SA-NET-002) and "Audit logging" (SA-LOG-005).
The agent-container controls also run on ``compose://`` targets, where each service of the
Compose files stands for the container ``docker compose up`` creates from it (the plugin
adds compose targets to every control here that reads ``secagent_containers``).
Evidence: the engine's CLI on the host target (``version``, ``info``, ``ps``, ``container
inspect``), dockerd's command line and daemon.json, and the engine socket's ownership. Which
containers are the agent's comes from the policy (``agent.containers``,
``agent.container_labels``); the engine is found and reached as ``engine.*`` says.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pytest_secagent.compose.view import ComposeView
from pytest_secagent.evidence import Evidence
from pytest_secagent.host.engine.checks import (
    check_declared_socket_mounts,
    check_engine_security,
    check_engine_socket,
    check_engine_version,
    check_health,
    check_host_isolation,
    check_image_provenance,
    check_non_root,
    check_privileges,
    check_published_ports,
    check_read_only_root,
    check_resource_limits,
)
from pytest_secagent.host.engine.client import EngineKind
from pytest_secagent.host.engine.snapshot import AgentContainers, ContainerSource, EngineSnapshot
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy import Policy

HOST = ("host",)


def _agents(source: ContainerSource, policy: Policy) -> AgentContainers:
    return source.agent_containers(policy.agent).require(source.target_id)


def _engine_nnp(source: ContainerSource) -> bool | None:
    if not isinstance(source, EngineSnapshot):
        return None  # compose files do not show the engine's default: each service must set it
    engine = source
    try:
        return engine.settings().no_new_privileges
    except EvidenceUnavailable:
        return None  # then each container must set no-new-privileges itself


@pytest.mark.secagent_control("SA-RUNTIME-002", applies_to=HOST)
def test_engine_version_is_supported(
    secagent_engine: EngineSnapshot, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """The engine is Docker >= 20.10 or Podman >= 4.0; an end-of-life release line warns."""
    check_engine_version(
        secagent_engine.version(), secagent_policy.versions, secagent_evidence, today=dt.date.today()
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-003", applies_to=HOST)
def test_engine_security_features_enabled(
    secagent_engine: EngineSnapshot, secagent_evidence: Evidence
) -> None:
    """The engine's security features are on; live-restore and userland-proxy only warn.

    Seccomp, AppArmor or SELinux, rootless or userns-remap, no-new-privileges, icc off, no
    insecure registries, TLS on every TCP socket.
    """
    check_engine_security(secagent_engine.security(), secagent_engine.settings(), secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-004", applies_to=HOST)
def test_engine_socket_protected_and_not_mounted(
    secagent_containers: ContainerSource, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """The engine socket is root:docker (or root:root), mode <= 0660, and no agent container mounts it."""
    if isinstance(secagent_containers, ComposeView):
        check_declared_socket_mounts(
            secagent_containers.agent_containers(secagent_policy.agent),
            secagent_containers.socket_paths(secagent_policy.engine),
            secagent_policy.engine,
            secagent_evidence,
        )
        secagent_evidence.conclude()
        return
    if not isinstance(secagent_containers, EngineSnapshot):  # pragma: no cover - no other source
        raise EvidenceUnavailable(f"{secagent_containers.target_id}: no container engine to read")
    engine = secagent_containers
    check_engine_socket(
        engine.sockets(),
        engine.agent_containers(secagent_policy.agent),
        secagent_policy.engine,
        secagent_evidence,
        rootless=engine.security().rootless,
        socket_required=engine.kind is EngineKind.DOCKER,
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-006", applies_to=HOST)
def test_agent_containers_run_as_non_root(
    secagent_containers: ContainerSource, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """Every agent container has a non-root user, and its running process is not uid 0."""
    check_non_root(_agents(secagent_containers, secagent_policy), secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-007", applies_to=HOST)
def test_agent_containers_unprivileged(
    secagent_containers: ContainerSource, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """No privileged mode, capabilities dropped, no-new-privileges, seccomp/AppArmor not unconfined."""
    agents = _agents(secagent_containers, secagent_policy)
    check_privileges(agents, _engine_nnp(secagent_containers), secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-008", applies_to=HOST)
def test_agent_containers_read_only_root(
    secagent_containers: ContainerSource, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """Every agent container's root filesystem is read-only; no writable host bind mounts."""
    check_read_only_root(_agents(secagent_containers, secagent_policy), secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-009", applies_to=HOST)
def test_agent_containers_isolated_from_host(
    secagent_containers: ContainerSource, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """No host network, PID, IPC, UTS or user namespace; no sensitive host folder mounted."""
    check_host_isolation(_agents(secagent_containers, secagent_policy), secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-010", applies_to=HOST)
def test_agent_containers_resource_limits(
    secagent_containers: ContainerSource, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """Every agent container has a memory limit and a CPU limit."""
    check_resource_limits(_agents(secagent_containers, secagent_policy), secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-011", applies_to=HOST)
def test_agent_images_allowed_and_pinned(
    secagent_containers: ContainerSource, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """Agent images come from allowed registries, pinned by digest, never ``latest``."""
    agents = _agents(secagent_containers, secagent_policy)
    check_image_provenance(agents, secagent_policy.registries, secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-NET-002", applies_to=HOST)
def test_agent_containers_publish_only_on_loopback(
    secagent_containers: ContainerSource, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """No agent container publishes a port on a non-loopback host address."""
    check_published_ports(_agents(secagent_containers, secagent_policy), secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-LOG-005", applies_to=HOST)
def test_agent_containers_health_observable(
    secagent_containers: ContainerSource, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """Every agent container defines a health check and is running and healthy."""
    check_health(_agents(secagent_containers, secagent_policy), secagent_evidence)
    secagent_evidence.conclude()
