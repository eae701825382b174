"""Which dockerd is the engine the CLI talks to: an exact match, or a clear refusal.

Several dockerd processes may run on one host (a system daemon, a rootless one per user,
test or CI daemons, Docker-in-Docker). Reading the wrong one's configuration could pass a
check on settings the engine does not have, so a dockerd is only attributed to the engine
when the evidence singles it out:

1. the daemons listening on the endpoint the CLI talks to: the socket is compared by
   device and inode (``stat -L``, which follows symlinks such as ``/var/run`` -> ``/run``),
   as the daemon sees its path (through ``/proc/PID/root`` when that may be entered), and a
   TCP address only counts when the daemon shares the CLI's network namespace;
2. among those, or when none listens there, the daemon whose data root is the one the
   engine reports (``DATA_ROOT`` itself, or ``DATA_ROOT/UID.GID`` with ``userns-remap``),
   and whose rootless mode is the engine's.

Two or more daemons left means the engine cannot be told apart: ``EvidenceUnavailable``
names them and asks for ``engine.socket``. Without ``stat`` results paths compare by text.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.engine.client import normalize_endpoint
from pytest_secagent.host.engine.dockerd import DEFAULT_DOCKER_HOST, DockerdProcess
from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = [
    "SYSTEMD_SOCKET",
    "PathIdentities",
    "canonical_path",
    "dockerd_data_root",
    "dockerd_hosts",
    "find_dockerd",
    "probe_identities",
    "same_endpoint",
    "unix_socket_path",
    "visible_roots",
]

SYSTEMD_SOCKET = "/run/docker.sock"
"""Where systemd's ``docker.socket`` listens for a dockerd started with ``-H fd://``."""

_SELF_NET = "/proc/self/ns/net"
_REMAPPED_ROOT = re.compile(r"\d+\.\d+")
_STAT_SCRIPT = (
    'for p in "$@"; do if s=$(stat -L -c %d:%i "$p" 2>/dev/null); then echo "$s"; else echo -; fi; done'
)


def canonical_path(path: str) -> str:
    """``path`` normalised as text: ``..`` and doubled slashes folded, ``/var/run`` as ``/run``."""
    path = posixpath.normpath(path) if path else path
    if path == "/var/run" or path.startswith("/var/run/"):
        path = path[len("/var"):]
    return path


def unix_socket_path(endpoint: str) -> str | None:
    """The socket path of a ``unix://`` (or bare path, or systemd ``fd://``) endpoint, else ``None``."""
    value = normalize_endpoint(endpoint)
    if value.startswith("fd://"):
        return SYSTEMD_SOCKET
    if value.startswith("unix://"):
        return value[len("unix://"):] or DEFAULT_DOCKER_HOST[len("unix://"):]
    return None


def _tcp_address(endpoint: str) -> str | None:
    value = normalize_endpoint(endpoint)
    return value[len("tcp://"):].rstrip("/").lower() if value.startswith("tcp://") else None


def same_endpoint(left: str, right: str) -> bool:
    """Whether two endpoints name the same socket as text.

    ``/var/run`` is ``/run``, and ``fd://`` is systemd's socket.
    """
    a, b = unix_socket_path(left), unix_socket_path(right)
    if a is not None and b is not None:
        return canonical_path(a) == canonical_path(b)
    return normalize_endpoint(left).rstrip("/") == normalize_endpoint(right).rstrip("/")


@dataclass(frozen=True)
class PathIdentities:
    """What ``stat -L`` on the host said about paths: ``device:inode`` by the path probed.

    ``visible_roots`` holds the dockerd PIDs whose ``/proc/PID/root`` could be entered: their
    paths are probed there, in their own mount namespace; other PIDs' paths are probed as
    the CLI sees them. A path never probed, or missing, compares by its text.
    """

    found: Mapping[str, str] = field(default_factory=dict)
    visible_roots: frozenset[int] = frozenset()

    def probe(self, path: str, pid: int | None = None) -> str | None:
        """The path to ``stat`` for ``path`` as process ``pid`` (``None``: the CLI) sees it."""
        if pid is not None and pid in self.visible_roots:
            return f"/proc/{pid}/root{path}" if path.startswith("/") else f"/proc/{pid}/cwd/{path}"
        return path if path.startswith("/") else None

    def identity(self, path: str, pid: int | None = None) -> str | None:
        """``device:inode`` of ``path`` as ``pid`` sees it, when it was found."""
        probe = self.probe(path, pid)
        return self.found.get(probe) if probe is not None else None

    def same(self, left: str, left_pid: int | None, right: str, right_pid: int | None) -> bool | None:
        """Whether two paths are one file: ``None`` when the evidence cannot tell.

        Found by ``stat`` on both sides, the identities decide; found on one side only (the
        file is missing, or hidden, in the other view), nothing is known; found on neither
        side, equal text counts as the same path.
        """
        a, b = self.identity(left, left_pid), self.identity(right, right_pid)
        if a is not None and b is not None:
            return a == b
        if a is None and b is None and canonical_path(left) == canonical_path(right):
            return True  # nothing was found by stat: the text is all there is
        return None

    def shares_network(self, pid: int) -> bool:
        """Whether ``pid`` is in the CLI's network namespace (``True`` when unknown)."""
        ours, theirs = self.found.get(_SELF_NET), self.found.get(f"/proc/{pid}/ns/net")
        return ours is None or theirs is None or ours == theirs


def dockerd_hosts(process: DockerdProcess, config: Mapping[str, Any]) -> list[str]:
    """The endpoints dockerd listens on: ``-H`` flags, else daemon.json ``hosts``, else its default."""
    hosts = process.options.get("hosts") or config.get("hosts")
    if not hosts:
        return [process.default_host] if process.default_host else []
    return [str(h) for h in hosts] if isinstance(hosts, list) else [str(hosts)]


def dockerd_data_root(process: DockerdProcess, config: Mapping[str, Any]) -> str | None:
    """Dockerd's data root: ``--data-root``, else daemon.json, else its default (``None``: unknown)."""
    value = process.options.get("data-root") or config.get("data-root") or config.get("graph")
    if value:
        return str(value).rstrip("/") or "/"
    return process.default_data_root


def _remapped(process: DockerdProcess, config: Mapping[str, Any]) -> bool:
    return bool(process.options.get("userns-remap") or config.get("userns-remap"))


@dataclass(frozen=True)
class _Daemon:
    process: DockerdProcess
    hosts: tuple[str, ...]
    data_root: str | None
    remapped: bool

    @property
    def pid(self) -> int:
        return self.process.pid

    def describe(self) -> str:
        hosts = ", ".join(self.hosts) or "unknown sockets"
        return f"pid {self.pid} ({hosts}; data root {self.data_root or 'unknown'})"

    def serves(self, endpoint: str, ids: PathIdentities) -> bool:
        wanted = unix_socket_path(endpoint)
        address = _tcp_address(endpoint)
        for host in self.hosts:
            path = unix_socket_path(host)
            if wanted is not None and path is not None:
                if ids.same(wanted, None, path, self.pid):
                    return True
            elif address is not None:
                if _tcp_address(host) == address and ids.shares_network(self.pid):
                    return True
            elif wanted is None and path is None and same_endpoint(endpoint, host):
                return True
        return False

    def owns_root(self, root_dir: str, ids: PathIdentities) -> bool | None:
        """Whether the engine's reported root is this daemon's: ``None`` when it cannot be told."""
        if self.data_root is None:
            return None
        root = root_dir.rstrip("/") or "/"
        verdicts = [ids.same(root, self.pid, self.data_root, self.pid)]
        if self.remapped and _REMAPPED_ROOT.fullmatch(posixpath.basename(root)):
            verdicts.append(ids.same(posixpath.dirname(root), self.pid, self.data_root, self.pid))
        if True in verdicts:
            return True
        return False if all(v is False for v in verdicts) else None


def _ambiguous(target_id: str, what: str, daemons: Sequence[_Daemon]) -> EvidenceUnavailable:
    listed = "; ".join(d.describe() for d in daemons)
    return EvidenceUnavailable(
        f"{target_id}: {len(daemons)} dockerd processes could be the engine ({what}): {listed}; "
        "set engine.socket in the policy to a socket that only the engine's dockerd listens on"
    )


def find_dockerd(
    processes: Sequence[DockerdProcess],
    configs: Mapping[int, Mapping[str, Any]],
    *,
    endpoint: str | None,
    root_dir: str | None,
    rootless: bool,
    identities: PathIdentities | None = None,
    target_id: str = "host",
) -> DockerdProcess | None:
    """The one dockerd that is the engine, or ``None`` when none matches.

    ``endpoint`` is the socket the CLI talks to, ``root_dir`` and ``rootless`` what the
    engine reports of itself. Raises ``EvidenceUnavailable`` when two or more daemons match
    alike, or when the daemon on the endpoint contradicts what the engine reports.
    """
    ids = identities or PathIdentities()
    daemons = [
        _Daemon(
            p,
            tuple(dockerd_hosts(p, configs.get(p.pid, {}))),
            dockerd_data_root(p, configs.get(p.pid, {})),
            _remapped(p, configs.get(p.pid, {})),
        )
        for p in processes
    ]

    def owns(daemon: _Daemon) -> bool | None:
        return daemon.owns_root(root_dir, ids) if root_dir else None

    if endpoint:
        serving = [d for d in daemons if d.serves(endpoint, ids)]
        consistent = [d for d in serving if d.process.rootless == rootless and owns(d) is not False]
        if len(consistent) == 1:
            return consistent[0].process
        if len(consistent) > 1:
            narrowed = [d for d in consistent if owns(d) is True]
            if len(narrowed) == 1:
                return narrowed[0].process
            raise _ambiguous(target_id, f"all listen on {endpoint}", consistent)
        if serving:
            daemon = serving[0]
            mode = "rootless" if rootless else "rootful"
            raise EvidenceUnavailable(
                f"{target_id}: dockerd {daemon.describe()} listens on {endpoint}, but the engine "
                f"answering there reports a {mode} daemon with data root {root_dir or 'unknown'}; "
                "its command line and daemon.json do not describe that engine"
            )
    if root_dir:
        owning = [d for d in daemons if d.process.rootless == rootless and owns(d) is True]
        if len(owning) == 1:
            return owning[0].process
        if owning:
            raise _ambiguous(target_id, f"all own the engine's data root {root_dir}", owning)
    return None


def _stat(host: HostConnection, paths: Sequence[str], timeout: float | None) -> dict[str, str]:
    if not paths:
        return {}
    result = host.run(["sh", "-c", _STAT_SCRIPT, "sh", *paths], timeout=timeout)
    lines = result.stdout.splitlines()
    if not result.succeeded or len(lines) != len(paths):
        reason = result.stderr.strip() or f"exit status {result.exit_status}"
        raise EvidenceUnavailable(f"{host.target_id}: cannot stat the engine's paths: {reason}")
    found = {path: line.strip() for path, line in zip(paths, lines, strict=True)}
    return {path: ident for path, ident in found.items() if ident not in ("", "-")}


def visible_roots(host: HostConnection, pids: Iterable[int], timeout: float | None) -> frozenset[int]:
    """The PIDs whose ``/proc/PID/root`` (their own view of the file system) may be entered."""
    probes = {f"/proc/{pid}/root/": pid for pid in pids}
    found = _stat(host, list(probes), timeout)
    return frozenset(pid for probe, pid in probes.items() if probe in found)


def probe_identities(
    host: HostConnection,
    processes: Sequence[DockerdProcess],
    configs: Mapping[int, Mapping[str, Any]],
    *,
    endpoint: str | None,
    root_dir: str | None,
    roots: frozenset[int],
    timeout: float | None,
) -> PathIdentities:
    """``stat`` every path the attribution compares, in one command on the host."""
    layout = PathIdentities(visible_roots=roots)
    wanted: list[str | None] = [_SELF_NET]
    socket = unix_socket_path(endpoint) if endpoint else None
    if socket is not None:
        wanted.append(layout.probe(socket))
    for process in processes:
        config = configs.get(process.pid, {})
        wanted.append(f"/proc/{process.pid}/ns/net")
        paths = [unix_socket_path(h) for h in dockerd_hosts(process, config)]
        paths.append(dockerd_data_root(process, config))
        if root_dir:
            paths += [root_dir, posixpath.dirname(root_dir.rstrip("/"))]
        wanted += [layout.probe(p, process.pid) for p in paths if p]
    probes = list(dict.fromkeys(p for p in wanted if p))
    return PathIdentities(_stat(host, probes, timeout), roots)
