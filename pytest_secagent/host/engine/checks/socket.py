"""SA-RUNTIME-004: the engine socket is protected and not mounted into the agent's containers."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.engine.checks.common import record_missing
from pytest_secagent.host.engine.snapshot import AgentContainers
from pytest_secagent.host.engine.sockets import SocketFacts, exposes_socket
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import EngineSection

__all__ = ["MAX_SOCKET_MODE", "check_declared_socket_mounts", "check_engine_socket"]

MAX_SOCKET_MODE = 0o660
"""No permission beyond owner and group read/write: no world access, no execute, no set-id bits."""


def _check_permissions(
    socket: SocketFacts, *, rootless: bool, engine: EngineSection, evidence: Evidence
) -> None:
    if rootless:
        evidence.observe(f"{socket.path} owner", f"{socket.owner} (rootless engine: its own user)")
    else:
        evidence.expect(
            f"{socket.path} owner", expected="root", actual=socket.owner, ok=socket.owner == "root"
        )
        groups = list(engine.socket_groups)
        evidence.expect(
            f"{socket.path} group",
            expected=" or ".join(groups),
            actual=socket.group,
            ok=socket.group in groups,
        )
    evidence.expect(
        f"{socket.path} mode",
        expected=f"<= {MAX_SOCKET_MODE:04o}",
        actual=socket.mode_text,
        ok=socket.mode & ~MAX_SOCKET_MODE == 0,
    )
    if socket.file_type != "socket":
        evidence.observe(f"{socket.path} type", socket.file_type)


def check_engine_socket(
    sockets: Sequence[SocketFacts],
    agents: AgentContainers,
    engine: EngineSection,
    evidence: Evidence,
    *,
    rootless: bool,
    socket_required: bool = True,
) -> None:
    """SA-RUNTIME-004: the engine socket is protected and not mounted into agent containers.

    Each socket is owned by root, group docker or root (``engine.socket_groups``), mode at
    most 0660; a declared exception (``engine.socket_mount_exceptions``) is a warning.
    ``socket_required`` is false for an engine that may run without an API socket (Podman):
    then no socket at all is recorded, not an error.
    """
    present = [s for s in sockets if s.exists]
    for socket in sockets:
        if not socket.exists:
            evidence.observe(f"{socket.path}", "absent")
    if not present and not socket_required:
        evidence.observe("engine sockets", "none: the engine serves no API socket")
    elif not present:
        raise EvidenceUnavailable(
            "no engine socket was found on the host; set engine.socket in the policy to the "
            "socket the engine listens on"
        )
    for socket in present:
        _check_permissions(socket, rootless=rootless, engine=engine, evidence=evidence)
    reason = agents.not_applicable_reason("the engine")
    if reason is not None:
        evidence.observe("socket mounts", f"not checked: {reason}")
        return
    _check_socket_mounts(agents, [s.path for s in present], engine, evidence)


def check_declared_socket_mounts(
    agents: AgentContainers, sockets: Sequence[str], engine: EngineSection, evidence: Evidence
) -> None:
    """SA-RUNTIME-004 on declared services (Compose files): no service mounts an engine socket.

    ``sockets`` are the paths the engine's socket usually has (and ``engine.socket``); a
    mount of any engine socket by name, or of a folder holding one, counts. Who may open the
    socket on the host is not in the files: it is reported as not observable.
    """
    evidence.unobserved(
        "engine socket owner, group and mode",
        expected=f"root, {' or '.join(engine.socket_groups)}, <= {MAX_SOCKET_MODE:04o}",
        reason="compose files do not show the host's engine socket; check the host target",
    )
    evidence.expect(
        "services examined for socket mounts",
        expected="at least one",
        actual=", ".join(c.name for c in agents.found) or "none",
        ok=bool(agents.found),
    )
    _check_socket_mounts(agents, sockets, engine, evidence)


def _check_socket_mounts(
    agents: AgentContainers, paths: Sequence[str], engine: EngineSection, evidence: Evidence
) -> None:
    record_missing(agents, evidence)
    for container in agents.found:
        exposed = [
            why for m in container.mounts if (why := exposes_socket(m.source, paths)) is not None
        ]
        if exposed and container.name in engine.socket_mount_exceptions:
            evidence.warn(
                f"{container.name}: socket mounts",
                expected="none (declared exception in engine.socket_mount_exceptions)",
                actual="; ".join(exposed),
            )
            continue
        evidence.expect(
            f"{container.name}: socket mounts",
            expected="none",
            actual="; ".join(exposed) or "none",
            ok=not exposed,
        )
