"""The engine's unix sockets on the host: where they are and who may open them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pytest_secagent.host.base import HostConnection
from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = [
    "ENGINE_SOCKET_NAMES",
    "SocketFacts",
    "exposes_socket",
    "socket_paths",
    "stat_socket",
]

ENGINE_SOCKET_NAMES = frozenset({
    "docker.sock",
    "containerd.sock",
    "podman.sock",
    "crio.sock",
    "cri-dockerd.sock",
    "dockershim.sock",
    "buildkitd.sock",
})
"""File names of container-runtime API sockets: mounting any of them hands over the engine."""

SYSTEMD_DOCKER_SOCKET = "/run/docker.sock"


@dataclass(frozen=True)
class SocketFacts:
    """One engine socket's ownership and mode, as ``stat`` reports them."""

    path: str
    exists: bool
    owner: str = ""
    group: str = ""
    mode: int = 0
    file_type: str = ""

    @property
    def mode_text(self) -> str:
        """The permission bits in octal, e.g. ``0660``."""
        return f"{self.mode:04o}"


def _canonical(path: str) -> str:
    path = path.rstrip("/") or "/"
    return path[len("/var"):] if path.startswith("/var/run/") or path == "/var/run" else path


def socket_paths(endpoints: Iterable[str]) -> list[str]:
    """The unix socket paths among engine endpoints (``fd://`` is systemd's ``/run/docker.sock``)."""
    paths: list[str] = []
    for endpoint in endpoints:
        if endpoint.startswith("unix://"):
            path = endpoint[len("unix://"):]
        elif endpoint.startswith("fd://"):
            path = SYSTEMD_DOCKER_SOCKET
        elif endpoint.startswith("/"):
            path = endpoint
        else:
            continue
        if _canonical(path) not in {_canonical(p) for p in paths}:
            paths.append(path)
    return paths


def stat_socket(host: HostConnection, path: str, timeout: float | None) -> SocketFacts:
    """Ownership and mode of ``path`` on the host (following symlinks)."""
    result = host.run(["stat", "-L", "-c", "%U\t%G\t%a\t%F", "--", path], timeout=timeout)
    if not result.succeeded:
        if "No such file" in result.stderr:
            return SocketFacts(path, exists=False)
        reason = result.stderr.strip() or f"exit status {result.exit_status}"
        raise EvidenceUnavailable(f"{host.target_id}: cannot stat {path}: {reason}")
    fields = result.stdout.strip().split("\t")
    if len(fields) != 4:
        raise EvidenceUnavailable(f"{host.target_id}: unexpected stat output for {path}: {result.stdout!r}")
    owner, group, mode, file_type = fields
    try:
        bits = int(mode, 8)
    except ValueError:
        raise EvidenceUnavailable(f"{host.target_id}: unexpected mode {mode!r} for {path}") from None
    return SocketFacts(path, True, owner, group, bits, file_type)


def exposes_socket(source: str, sockets: Iterable[str]) -> str | None:
    """Why a mount of host path ``source`` exposes an engine socket, or ``None``.

    It does when ``source`` is an engine socket (by name or by path) or a folder holding
    one of the engine's sockets (``/run``, ``/var/run``, ``/``...).
    """
    if not source:
        return None
    name = source.rstrip("/").rsplit("/", 1)[-1]
    if name in ENGINE_SOCKET_NAMES:
        return f"{source} is a container-engine socket"
    mounted = _canonical(source)
    for socket in sockets:
        target = _canonical(socket)
        if mounted == target:
            return f"{source} is the engine socket"
        if mounted == "/" or target.startswith(mounted + "/"):
            return f"{source} holds the engine socket {socket}"
    return None
