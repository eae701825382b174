"""Containers as ``container inspect`` describes them (Docker and Podman alike)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ContainerFacts", "Health", "LiveUser", "Mount", "PortBinding", "parse_container"]


@dataclass(frozen=True)
class Mount:
    """A mount into the container."""

    type: str
    source: str
    destination: str
    writable: bool


@dataclass(frozen=True)
class PortBinding:
    """A container port published on the host."""

    container_port: str
    host_ip: str
    host_port: str


@dataclass(frozen=True)
class Health:
    """The container's health check and its last state."""

    test: tuple[str, ...]
    status: str | None

    @property
    def defined(self) -> bool:
        """Whether a health check is configured (and not switched off with ``NONE``)."""
        return bool(self.test) and self.test[0].upper() != "NONE"


@dataclass(frozen=True)
class LiveUser:
    """The user the container's main process really runs as, read from the host's ``/proc``.

    ``uid`` is inside the container's user namespace; ``None`` with a ``note`` saying why
    it could not be read (not running, ``/proc`` not visible from this target...).
    """

    uid: int | None
    host_uid: int | None = None
    note: str = ""


@dataclass(frozen=True)
class ContainerFacts:
    """The security-relevant part of one container's ``inspect`` output."""

    id: str
    name: str
    image: str
    image_id: str
    labels: Mapping[str, str]
    user: str
    status: str
    running: bool
    pid: int
    privileged: bool
    cap_add: tuple[str, ...]
    cap_drop: tuple[str, ...]
    effective_caps: tuple[str, ...] | None
    security_opt: tuple[str, ...]
    readonly_rootfs: bool
    network_mode: str
    pid_mode: str
    ipc_mode: str
    uts_mode: str
    userns_mode: str
    memory: int
    nano_cpus: int
    cpu_quota: int
    mounts: tuple[Mount, ...]
    ports: tuple[PortBinding, ...]
    publish_all_ports: bool
    health: Health
    live_user: LiveUser = field(default_factory=lambda: LiveUser(None, note="not read"))
    #: Facts from declared configuration (Compose files), not from a container that exists:
    #: what only a running container shows (process user, health status) is not observable.
    declared: bool = False

    @property
    def short_id(self) -> str:
        """The first 12 characters of the ID."""
        return self.id[:12]


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _caps(value: object) -> tuple[str, ...]:
    names = value if isinstance(value, list) else []
    return tuple(str(n).upper().removeprefix("CAP_") for n in names if n)


def _ports(host_config: Mapping[str, Any], settings: Mapping[str, Any]) -> tuple[PortBinding, ...]:
    found: dict[tuple[str, str, str], PortBinding] = {}
    for source in (_dict(host_config.get("PortBindings")), _dict(settings.get("Ports"))):
        for port, bindings in source.items():
            for binding in bindings if isinstance(bindings, list) else []:
                item = _dict(binding)
                key = (str(port), _str(item.get("HostIp")), _str(item.get("HostPort")))
                found.setdefault(key, PortBinding(*key))
    return tuple(found.values())


def _health(config: Mapping[str, Any], state: Mapping[str, Any]) -> Health:
    check = _dict(config.get("Healthcheck"))
    test = check.get("Test")
    live = _dict(state.get("Health")) or _dict(state.get("Healthcheck"))
    status = _str(live.get("Status")) or None
    return Health(tuple(str(t) for t in test) if isinstance(test, list) else (), status)


def parse_container(data: Mapping[str, Any]) -> ContainerFacts:
    """The facts of one element of ``container inspect`` JSON."""
    config = _dict(data.get("Config"))
    host = _dict(data.get("HostConfig"))
    state = _dict(data.get("State"))
    labels = _dict(config.get("Labels"))
    mounts = tuple(
        Mount(
            type=_str(m.get("Type")) or "bind",
            source=_str(m.get("Source")),
            destination=_str(m.get("Destination")),
            writable=m.get("RW") is not False,
        )
        for m in (data.get("Mounts") or [])
        if isinstance(m, dict)
    )
    # Podman lists the capabilities left (null when none are); Docker does not report them.
    effective = (data.get("EffectiveCaps") or []) if "EffectiveCaps" in data else None
    return ContainerFacts(
        id=_str(data.get("Id")) or _str(data.get("ID")),
        name=_str(data.get("Name")).lstrip("/"),
        image=_str(config.get("Image")) or _str(data.get("ImageName")),
        image_id=_str(data.get("Image")),
        labels={str(k): str(v) for k, v in labels.items()},
        user=_str(config.get("User")),
        status=_str(state.get("Status")),
        running=state.get("Running") is True,
        pid=_int(state.get("Pid")),
        privileged=host.get("Privileged") is True,
        cap_add=_caps(host.get("CapAdd")),
        cap_drop=_caps(host.get("CapDrop")),
        effective_caps=_caps(effective) if isinstance(effective, list) else None,
        security_opt=tuple(str(o) for o in host.get("SecurityOpt") or []),
        readonly_rootfs=host.get("ReadonlyRootfs") is True,
        network_mode=_str(host.get("NetworkMode")),
        pid_mode=_str(host.get("PidMode")),
        ipc_mode=_str(host.get("IpcMode")),
        uts_mode=_str(host.get("UTSMode")),
        userns_mode=_str(host.get("UsernsMode")),
        memory=_int(host.get("Memory")),
        nano_cpus=_int(host.get("NanoCpus")),
        cpu_quota=_int(host.get("CpuQuota")),
        mounts=mounts,
        ports=_ports(host, _dict(data.get("NetworkSettings"))),
        publish_all_ports=host.get("PublishAllPorts") is True,
        health=_health(config, state),
    )
