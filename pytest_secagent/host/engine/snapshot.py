"""Everything the engine checks read from one host, gathered once and on demand."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.engine.client import EngineClient, EngineKind, detect_engine
from pytest_secagent.host.engine.containers import ContainerFacts, LiveUser, parse_container
from pytest_secagent.host.engine.daemon import EngineSettings, read_engine_settings
from pytest_secagent.host.engine.facts import (
    EngineVersion,
    SecurityFacts,
    engine_version,
    security_facts,
)
from pytest_secagent.host.engine.sockets import SocketFacts, socket_paths, stat_socket
from pytest_secagent.outcomes import EvidenceUnavailable, not_applicable
from pytest_secagent.policy.model import AgentSection, EngineSection

__all__ = ["AgentContainers", "ContainerSource", "EngineSnapshot", "EngineSnapshots", "read_live_user"]

T = TypeVar("T")


@dataclass(frozen=True)
class AgentContainers:
    """The agent's containers on an engine, as the policy picks them.

    ``declared`` tells whether the policy names any; ``missing`` lists declared names that
    no container on the engine has.
    """

    selector: str
    declared: bool
    found: tuple[ContainerFacts, ...]
    missing: tuple[str, ...]

    def not_applicable_reason(self, target_id: str) -> str | None:
        """Why the container controls do not apply, or ``None`` when they do."""
        if not self.declared:
            return (
                "the policy declares no agent containers (agent.containers, agent.container_labels)"
            )
        if not self.found and not self.missing:
            return f"no container on {target_id} matches {self.selector}"
        return None

    def require(self, target_id: str) -> AgentContainers:
        """Return self, or skip the check as not applicable with the reason."""
        reason = self.not_applicable_reason(target_id)
        if reason is not None:
            not_applicable(reason)
        return self


class ContainerSource(Protocol):
    """Where the container controls read the agent's containers: a live engine or Compose files."""

    @property
    def target_id(self) -> str:
        """The target's ID."""

    def agent_containers(self, agent: AgentSection) -> AgentContainers:
        """The agent's containers, chosen by the policy."""


def _uid_inside(uid_map: str, host_uid: int) -> int | None:
    for line in uid_map.splitlines():
        parts = line.split()
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            continue
        inside, outside, count = (int(p) for p in parts)
        if outside <= host_uid < outside + count:
            return inside + host_uid - outside
    return None


def read_live_user(host: HostConnection, container: ContainerFacts) -> LiveUser:
    """The uid the container's main process runs as, from ``/proc`` on the host.

    The process is only trusted to be the container's when its cgroup names the container
    ID, so a PID from another PID namespace is never mistaken for it.
    """
    if not container.running or container.pid <= 0:
        return LiveUser(None, note=f"not running ({container.status or 'unknown state'})")
    try:
        cgroup = host.read_text(f"/proc/{container.pid}/cgroup")
        status = host.read_text(f"/proc/{container.pid}/status")
        uid_map = host.read_text(f"/proc/{container.pid}/uid_map")
    except EvidenceUnavailable as exc:
        return LiveUser(None, note=f"/proc not readable: {exc}")
    if cgroup is None or status is None or container.id not in cgroup:
        return LiveUser(None, note=f"process {container.pid} is not visible from this target")
    host_uid: int | None = None
    for line in status.splitlines():
        if line.startswith("Uid:"):
            fields = line.split()
            host_uid = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else None
    if host_uid is None:
        return LiveUser(None, note=f"no Uid line in /proc/{container.pid}/status")
    inside = _uid_inside(uid_map or "0 0 4294967295", host_uid)
    return LiveUser(inside, host_uid=host_uid, note=f"pid {container.pid}")


class EngineSnapshot:
    """The container engine on one host, read lazily; each fact is read once.

    A fact that could not be read is remembered too, so every check that needs it errors
    at once with the same reason instead of asking a dead engine again.
    """

    def __init__(self, client: EngineClient) -> None:
        self.client = client
        self._cache: dict[str, object] = {}

    @property
    def host(self) -> HostConnection:
        """The connection to the engine's host."""
        return self.client.host

    @property
    def target_id(self) -> str:
        """The host target's ID."""
        return self.client.target_id

    @property
    def kind(self) -> EngineKind:
        """Docker or Podman."""
        return self.client.kind

    def _once(self, key: str, compute: Callable[[], T]) -> T:
        if key not in self._cache:
            try:
                self._cache[key] = compute()
            except EvidenceUnavailable as exc:
                self._cache[key] = exc
        value = self._cache[key]
        if isinstance(value, EvidenceUnavailable):
            raise EvidenceUnavailable(str(value))
        return cast(T, value)

    def version(self) -> EngineVersion:
        """The engine's version (asking it also proves that it answers)."""
        return self._once(
            "version", lambda: engine_version(self.kind, self.client.version(), self.target_id)
        )

    def info(self) -> Mapping[str, Any]:
        """The engine's ``info`` JSON."""
        self.version()
        return self._once("info", self.client.info)

    def security(self) -> SecurityFacts:
        """The security features the engine reports."""
        return self._once("security", lambda: security_facts(self.kind, self.info()))

    def endpoint(self) -> str | None:
        """The endpoint the CLI talks to."""
        return self._once("endpoint", self.client.current_endpoint)

    def settings(self) -> EngineSettings:
        """The engine's configuration (dockerd flags and daemon.json, or containers.conf)."""

        def read() -> EngineSettings:
            security = self.security()
            return read_engine_settings(
                self.host,
                self.kind,
                endpoint=self.endpoint(),
                root_dir=security.root_dir,
                rootless=security.rootless,
                timeout=self.client.timeout,
            )

        return self._once("settings", read)

    def socket_endpoints(self) -> list[str]:
        """Every endpoint the engine serves that is known: the CLI's and the daemon's own."""
        endpoints: list[str] = []
        current = self.endpoint()
        if current:
            endpoints.append(current)
        if self.kind is EngineKind.DOCKER:
            endpoints += list(self.settings().hosts)
        else:
            host = self.info().get("host")
            remote = host.get("remoteSocket") if isinstance(host, dict) else None
            path = remote.get("path") if isinstance(remote, dict) else None
            if isinstance(path, str) and path:
                endpoints.append(path)
        return endpoints

    def sockets(self) -> tuple[SocketFacts, ...]:
        """Ownership and mode of each of the engine's unix sockets."""

        def read() -> tuple[SocketFacts, ...]:
            return tuple(
                stat_socket(self.host, path, self.client.timeout)
                for path in socket_paths(self.socket_endpoints())
            )

        return self._once("sockets", read)

    def agent_containers(self, agent: AgentSection) -> AgentContainers:
        """The agent's containers, chosen by the policy's names and labels."""
        key = f"agents:{sorted(agent.containers)}:{sorted(agent.container_labels.items())}"
        return self._once(key, lambda: self._select(agent))

    def _select(self, agent: AgentSection) -> AgentContainers:
        names = list(dict.fromkeys(agent.containers))
        labels = dict(agent.container_labels)
        parts = []
        if names:
            parts.append("names " + ", ".join(names))
        if labels:
            parts.append("labels " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
        selector = " or ".join(parts) or "nothing"
        if not names and not labels:
            return AgentContainers(selector, False, (), ())
        self.version()
        chosen: dict[str, str] = {}
        if names:
            by_name = {name: ident for ident, name in self.client.container_ids()}
            chosen.update({by_name[n]: n for n in names if n in by_name})
        if labels:
            chosen.update(dict(self.client.container_ids(labels=labels)))
        facts = [parse_container(d) for d in self.client.inspect_containers(list(chosen))]
        facts = [dataclasses.replace(f, live_user=read_live_user(self.host, f)) for f in facts]
        found_names = {f.name for f in facts}
        missing = tuple(n for n in names if n not in found_names)
        return AgentContainers(selector, True, tuple(sorted(facts, key=lambda f: f.name)), missing)


class EngineSnapshots:
    """One :class:`EngineSnapshot` per host target for the whole run."""

    def __init__(self) -> None:
        self._by_target: dict[str, EngineSnapshot | EvidenceUnavailable | None] = {}

    def get(
        self, host: HostConnection, engine: EngineSection, *, timeout: float | None = None
    ) -> EngineSnapshot:
        """The engine on ``host``; not applicable when the host has none."""
        key = host.target_id
        if key not in self._by_target:
            try:
                client = detect_engine(host, engine, timeout=timeout)
                self._by_target[key] = EngineSnapshot(client) if client is not None else None
            except EvidenceUnavailable as exc:
                self._by_target[key] = exc
        found = self._by_target[key]
        if isinstance(found, EvidenceUnavailable):
            raise EvidenceUnavailable(str(found))
        if found is None:
            not_applicable(f"no container engine (docker or podman) on {key}")
        return found
