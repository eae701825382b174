"""Each Compose service as the container ``docker inspect`` shows after ``docker compose up``.

The container controls read :class:`~pytest_secagent.host.engine.containers.ContainerFacts`;
this module builds them from a service's definition with Compose's and the engine's
defaults: a short ``8080:80`` publishes on every address (``0.0.0.0`` and ``::``), relative
bind sources are resolved against the project folder, ``mem_limit``/``cpus`` and
``deploy.resources.limits`` are the same limits, ``healthcheck.disable`` is ``NONE``. What
only a running container shows (its process user, its health status) is marked
``declared`` so the checks report it as not observable from files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_secagent.compose.loader import ComposeError, ComposeProject, ComposeService
from pytest_secagent.compose.merge import as_mapping
from pytest_secagent.host.engine.containers import ContainerFacts, Health, LiveUser, Mount, PortBinding

__all__ = ["DEFAULT_ENGINE_SOCKET", "container_names", "service_facts"]

#: The engine socket ``use_api_socket: true`` mounts into the container.
DEFAULT_ENGINE_SOCKET = "/var/run/docker.sock"
_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3,
          "t": 1024**4, "tb": 1024**4}
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_PORT_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0", ""})


def _fail(service: ComposeService, key: str, why: str) -> ComposeError:
    return ComposeError(f"{service.where(key)}: services.{service.name}.{key}: {why}")


def _bool(service: ComposeService, key: str, value: object = None) -> bool:
    raw = service.config.get(key) if value is None else value
    if raw is None or isinstance(raw, bool):
        return raw is True
    text = str(raw).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise _fail(service, key, "must be true or false")


def _text(service: ComposeService, key: str) -> str:
    raw = service.config.get(key)
    if raw is None:
        return ""
    if isinstance(raw, (str, int)) and not isinstance(raw, bool):
        return str(raw)
    raise _fail(service, key, "must be a string")


def _list(service: ComposeService, key: str) -> list[Any]:
    raw = service.config.get(key)
    if raw is None:
        return []
    if isinstance(raw, list):
        return raw
    raise _fail(service, key, "must be a list")


def parse_bytes(value: object) -> int | None:
    """``64m``, ``1g``, ``512`` (bytes) as bytes, or ``None`` when unreadable."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _BYTES.match(str(value))
    if match is None or match.group(2).lower() not in _UNITS:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _limits(service: ComposeService) -> Mapping[str, Any]:
    current: object = service.config.get("deploy")
    path = "deploy"
    for key in ("resources", "limits"):
        if current is None:
            return {}
        if not isinstance(current, Mapping):
            raise _fail(service, "deploy", f"{path} must be a mapping")
        current, path = current.get(key), f"{path}.{key}"
    if current is None:
        return {}
    if not isinstance(current, Mapping):
        raise _fail(service, "deploy", f"{path} must be a mapping")
    return current


def _memory(service: ComposeService) -> int:
    values: dict[str, int] = {}
    declared = (("mem_limit", service.config.get("mem_limit")), ("deploy", _limits(service).get("memory")))
    for key, raw in declared:
        if raw is None:
            continue
        parsed = parse_bytes(raw)
        if parsed is None:
            raise _fail(service, key, "a memory limit is a number of bytes with an optional unit (64m, 1g)")
        values[key] = parsed
    if len(set(values.values())) > 1:
        raise _fail(service, "mem_limit", "differs from deploy.resources.limits.memory; set one of them")
    return next(iter(values.values()), 0)


def _nano_cpus(service: ComposeService) -> int:
    values: dict[str, int] = {}
    for key, raw in (("cpus", service.config.get("cpus")), ("deploy", _limits(service).get("cpus"))):
        if raw is None:
            continue
        try:
            values[key] = round(float(str(raw)) * 1e9)
        except ValueError:
            raise _fail(service, key, "a CPU limit is a number (0.5, 2)") from None
    if len(set(values.values())) > 1:
        raise _fail(service, "cpus", "differs from deploy.resources.limits.cpus; set one of them")
    return next(iter(values.values()), 0)


def _cpu_quota(service: ComposeService) -> int:
    raw = service.config.get("cpu_quota")
    if raw is None:
        return 0
    try:
        return int(str(raw))
    except ValueError:
        raise _fail(service, "cpu_quota", "a CFS quota is a whole number of microseconds") from None


def _source_path(service: ComposeService, source: str) -> str:
    if source.startswith("~"):
        return str(Path(source).expanduser())
    if source.startswith((".", "/")) or source in ("", "."):
        path = Path(source)
        return str(path if path.is_absolute() else (service.project_dir / path).resolve())
    return source


def _short_volume(service: ComposeService, text: str) -> Mount:
    parts = text.split(":")
    if len(parts) == 1:
        return Mount("volume", "", parts[0], True)
    source, target = parts[0], parts[1]
    options = parts[2].split(",") if len(parts) > 2 else []
    writable = "ro" not in options
    if source.startswith((".", "/", "~")):
        return Mount("bind", _source_path(service, source), target, writable)
    return Mount("volume", source, target, writable)


def _long_volume(service: ComposeService, item: Mapping[str, Any]) -> Mount | None:
    kind = str(item.get("type") or "volume")
    target = str(item.get("target") or "")
    if not target:
        raise _fail(service, "volumes", "a long-syntax volume needs target:")
    writable = not _bool(service, "volumes", item.get("read_only", False))
    source = str(item.get("source") or "")
    if kind == "bind":
        return Mount("bind", _source_path(service, source), target, writable)
    if kind in ("volume", "tmpfs", "npipe", "cluster", "image"):
        return Mount(kind, source, target, writable)
    raise _fail(service, "volumes", f"unknown volume type {kind!r}")


def _mounts(service: ComposeService) -> tuple[Mount, ...]:
    mounts: list[Mount] = []
    for item in _list(service, "volumes"):
        if isinstance(item, str):
            mounts.append(_short_volume(service, item))
        elif isinstance(item, Mapping):
            mount = _long_volume(service, item)
            if mount is not None:
                mounts.append(mount)
        else:
            raise _fail(service, "volumes", "each entry is SOURCE:TARGET[:MODE] or a mapping")
    if _bool(service, "use_api_socket"):
        mounts.append(Mount("bind", DEFAULT_ENGINE_SOCKET, DEFAULT_ENGINE_SOCKET, True))
    return tuple(mounts)


def _expand(service: ComposeService, text: str) -> list[str]:
    match = _PORT_RANGE.match(text)
    if match is None:
        raise _fail(service, "ports", "a port is a number or a range (8000-8010)")
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if last < first or last - first > 65535:
        raise _fail(service, "ports", "a port range runs from low to high")
    return [str(p) for p in range(first, last + 1)]


def _split_short_port(text: str) -> tuple[str, str, str]:
    """``[HOST_IP:][HOST_PORT:]CONTAINER_PORT`` into its three parts (IPv6 in brackets)."""
    if text.startswith("["):
        close = text.index("]")
        host_ip, rest = text[1:close], text[close + 2:]
        published, _, target = rest.rpartition(":")
        return host_ip, published, target
    parts = text.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _bindings(host_ip: str, published: list[str], target: list[str], protocol: str) -> list[PortBinding]:
    addresses = [host_ip] if host_ip else ["0.0.0.0", "::"]  # noqa: S104 - what the engine binds
    if published and len(published) not in (1, len(target)):
        published = published[: len(target)]
    found = []
    for index, container_port in enumerate(target):
        if not published:
            host_port = ""
        elif len(published) == len(target):
            host_port = published[index]
        else:
            host_port = published[0] if len(target) == 1 else ""
        for address in addresses:
            found.append(PortBinding(f"{container_port}/{protocol}", address, host_port))
    return found


def _ports(service: ComposeService) -> tuple[PortBinding, ...]:
    found: list[PortBinding] = []
    for item in _list(service, "ports"):
        if isinstance(item, (str, int)) and not isinstance(item, bool):
            text, _, protocol = str(item).partition("/")
            try:
                host_ip, published, target = _split_short_port(text)
            except ValueError:
                raise _fail(service, "ports", "an IPv6 host address is written [ADDRESS]:PORT:PORT") from None
            found += _bindings(host_ip, _expand(service, published) if published else [],
                               _expand(service, target), protocol or "tcp")
        elif isinstance(item, Mapping):
            target = str(item.get("target") or "")
            if not target:
                raise _fail(service, "ports", "a long-syntax port needs target:")
            published = str(item.get("published") or "")
            host_ports = _expand(service, published) if published else []
            found += _bindings(str(item.get("host_ip") or ""), host_ports,
                               _expand(service, target), str(item.get("protocol") or "tcp"))
        else:
            raise _fail(service, "ports", "each entry is [HOST_IP:][HOST_PORT:]PORT or a mapping")
    return tuple(dict.fromkeys(found))


def _health(service: ComposeService) -> Health:
    check = service.config.get("healthcheck")
    if check is None:
        return Health((), None)
    if not isinstance(check, Mapping):
        raise _fail(service, "healthcheck", "must be a mapping")
    if _bool(service, "healthcheck", check.get("disable", False)):
        return Health(("NONE",), None)
    test = check.get("test")
    if isinstance(test, str):
        return Health(("CMD-SHELL", test), None)
    if isinstance(test, list):
        return Health(tuple(str(t) for t in test), None)
    return Health((), None)


def _caps(service: ComposeService, key: str) -> tuple[str, ...]:
    return tuple(str(c).upper().removeprefix("CAP_") for c in _list(service, key) if c)


def _network_mode(project: ComposeProject, service: ComposeService) -> str:
    mode = _text(service, "network_mode")
    if mode:
        return mode
    networks = service.config.get("networks")
    first = next(iter(networks), None) if isinstance(networks, (list, Mapping)) else None
    return f"{project.name}_{first or 'default'}"


def container_names(project: ComposeProject, service: ComposeService) -> tuple[str, ...]:
    """Every name the service's container may go by: ``container_name``, or Compose's own."""
    explicit = _text(service, "container_name")
    if explicit:
        return (explicit, service.name)
    return (service.name, f"{project.name}-{service.name}-1", f"{project.name}_{service.name}_1")


def service_facts(project: ComposeProject, service: ComposeService) -> ContainerFacts:
    """The container facts of one service, as the engine would report them once created."""
    raw_labels = service.config.get("labels")
    if raw_labels is not None and not isinstance(raw_labels, (list, Mapping)):
        raise _fail(service, "labels", "a list of KEY=VALUE or a mapping")
    declared = as_mapping(raw_labels or {})
    labels = {str(k): "" if v is None else str(v) for k, v in declared.items()}
    labels.setdefault("com.docker.compose.project", project.name)
    labels.setdefault("com.docker.compose.service", service.name)
    user = _text(service, "user")
    return ContainerFacts(
        id=service.name,
        name=container_names(project, service)[0],
        image=_text(service, "image"),
        image_id="",
        labels=labels,
        user=user,
        status="declared",
        running=False,
        pid=0,
        privileged=_bool(service, "privileged"),
        cap_add=_caps(service, "cap_add"),
        cap_drop=_caps(service, "cap_drop"),
        effective_caps=None,
        security_opt=tuple(str(o) for o in _list(service, "security_opt")),
        readonly_rootfs=_bool(service, "read_only"),
        network_mode=_network_mode(project, service),
        pid_mode=_text(service, "pid"),
        ipc_mode=_text(service, "ipc"),
        uts_mode=_text(service, "uts"),
        userns_mode=_text(service, "userns_mode"),
        memory=_memory(service),
        nano_cpus=_nano_cpus(service),
        cpu_quota=_cpu_quota(service),
        mounts=_mounts(service),
        ports=_ports(service),
        publish_all_ports=False,
        health=_health(service),
        live_user=LiveUser(None, note="declared in compose files; no process to read"),
        declared=True,
    )
