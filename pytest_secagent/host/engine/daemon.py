"""The engine's configuration: dockerd's command line over its daemon.json, or Podman's containers.conf."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.engine.client import EngineKind, normalize_endpoint
from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = [
    "DEFAULT_DAEMON_JSON",
    "DEFAULT_DOCKER_HOST",
    "PODMAN_CONF_FILES",
    "DockerdProcess",
    "EngineSettings",
    "docker_settings",
    "find_dockerd",
    "list_dockerd",
    "parse_dockerd_argv",
    "parse_podman_conf",
    "podman_conf_files",
    "podman_settings",
    "read_engine_settings",
    "same_endpoint",
]

DEFAULT_DAEMON_JSON = "/etc/docker/daemon.json"
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_DATA_ROOT = "/var/lib/docker"
SYSTEMD_SOCKET = "unix:///run/docker.sock"
PODMAN_CONF_FILES = ("/usr/share/containers/containers.conf", "/etc/containers/containers.conf")

# dockerd flag -> daemon.json key, where they differ.
_FLAG_KEYS = {
    "H": "hosts",
    "host": "hosts",
    "insecure-registry": "insecure-registries",
    "registry-mirror": "registry-mirrors",
    "G": "group",
    "b": "bridge",
    "D": "debug",
    "g": "data-root",
    "graph": "data-root",
    "p": "pidfile",
    "l": "log-level",
    "label": "labels",
}
_LIST_KEYS = frozenset({"hosts", "insecure-registries", "registry-mirrors", "labels"})
# Boolean flags never take the next argument as their value (``--icc=false`` sets false).
_BOOL_FLAGS = frozenset({
    "icc", "no-new-privileges", "live-restore", "userland-proxy", "tls", "tlsverify",
    "selinux-enabled", "iptables", "ip6tables", "ip-forward", "ip-masq", "ipv6", "experimental",
    "debug", "D", "rootless", "init", "raw-logs", "validate", "help", "version", "v",
})
_TRUE = frozenset({"1", "t", "true"})
_FALSE = frozenset({"0", "f", "false"})


def _as_bool(value: object, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
    return default


def parse_dockerd_argv(argv: Sequence[str]) -> dict[str, Any]:
    """Dockerd's options from its command line, keyed like daemon.json.

    dockerd takes no positional arguments, so a word after an option that is not itself an
    option is that option's value; boolean options only take a value with ``=``.
    """
    options: dict[str, Any] = {}
    words = list(argv[1:])
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("-") or word in ("-", "--"):
            continue
        name, has_value, value = word.lstrip("-").partition("=")
        if not has_value:
            if name in _BOOL_FLAGS:
                value = "true"
            elif index < len(words) and not words[index].startswith("-"):
                value = words[index]
                index += 1
            else:
                value = "true"
        key = _FLAG_KEYS.get(name, name)
        if key in _LIST_KEYS:
            options.setdefault(key, []).append(value)
        else:
            options[key] = value
    return options


@dataclass(frozen=True)
class DockerdProcess:
    """One dockerd process on the host and the options its command line sets."""

    pid: int
    argv: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def config_file(self) -> str:
        """The daemon.json this dockerd reads."""
        value = self.options.get("config-file")
        return value if isinstance(value, str) else DEFAULT_DAEMON_JSON


def list_dockerd(host: HostConnection, timeout: float | None) -> list[DockerdProcess]:
    """Every dockerd process on the host, read with ``ps -o pid=,args= -C dockerd``."""
    result = host.run(["ps", "-o", "pid=,args=", "-C", "dockerd"], timeout=timeout)
    if not result.succeeded and (result.stdout.strip() or result.stderr.strip()):
        # procps exits 1 with no output when nothing matches; anything else is a failure.
        reason = result.stderr.strip() or f"exit status {result.exit_status}"
        raise EvidenceUnavailable(f"{host.target_id}: cannot list dockerd processes: {reason}")
    found: list[DockerdProcess] = []
    for line in result.stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        argv = tuple(args.split())
        if not pid.isdigit() or not argv or argv[0].startswith("["):  # "[dockerd] <defunct>"
            continue
        found.append(DockerdProcess(int(pid), argv, parse_dockerd_argv(argv)))
    return found


def _path_of(endpoint: str) -> str:
    path = endpoint[len("unix://"):] if endpoint.startswith("unix://") else endpoint
    if path.startswith("/var/run/"):
        path = path[len("/var"):]
    return path


def same_endpoint(left: str, right: str) -> bool:
    """Whether two engine endpoints are the same (``/var/run`` is ``/run``; ``fd://`` is systemd's)."""
    a, b = normalize_endpoint(left), normalize_endpoint(right)
    if a.startswith("fd://"):
        a = SYSTEMD_SOCKET
    if b.startswith("fd://"):
        b = SYSTEMD_SOCKET
    if a.startswith("unix://") and b.startswith("unix://"):
        return _path_of(a) == _path_of(b)
    return a.rstrip("/") == b.rstrip("/")


def _hosts(options: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    hosts = options.get("hosts") or config.get("hosts") or [DEFAULT_DOCKER_HOST]
    return [str(h) for h in hosts] if isinstance(hosts, list) else [str(hosts)]


def _data_root(options: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    value = options.get("data-root") or config.get("data-root") or config.get("graph")
    return str(value).rstrip("/") if value else DEFAULT_DATA_ROOT


def find_dockerd(
    processes: Sequence[DockerdProcess],
    configs: Mapping[int, Mapping[str, Any]],
    *,
    endpoint: str | None,
    root_dir: str | None,
    rootless: bool,
) -> DockerdProcess | None:
    """The dockerd that serves ``endpoint`` (or, failing that, owns ``root_dir``)."""
    if endpoint:
        for process in processes:
            hosts = _hosts(process.options, configs.get(process.pid, {}))
            if any(same_endpoint(endpoint, h) for h in hosts):
                return process
    if root_dir:
        root = root_dir.rstrip("/")
        for process in processes:
            data_root = _data_root(process.options, configs.get(process.pid, {}))
            # With userns-remap the engine reports DATA_ROOT/UID.GID as its root.
            if root == data_root or root.rsplit("/", 1)[0] == data_root:
                return process
    if rootless and len(processes) == 1:
        return processes[0]
    return None


@dataclass(frozen=True)
class EngineSettings:
    """The engine's hardening settings as its configuration sets them.

    ``None`` marks a setting that does not apply to the engine (Podman has no daemon bridge,
    no daemon to restore, no TCP listener of its own).
    """

    kind: EngineKind
    source: str
    no_new_privileges: bool
    icc: bool | None
    userns_remap: str | None
    userland_proxy: bool | None
    insecure_registries: tuple[str, ...]
    hosts: tuple[str, ...]
    tls_verify: bool
    tls_files: Mapping[str, str | None] = field(default_factory=dict)
    socket_group: str | None = None


def _config_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)] if value else []


def docker_settings(
    process: DockerdProcess, config: Mapping[str, Any], *, config_source: str
) -> EngineSettings:
    """Dockerd's effective settings: its flags over its daemon.json over dockerd's defaults."""

    def value(key: str) -> Any:
        return process.options[key] if key in process.options else config.get(key)

    userns = value("userns-remap")
    group = value("group")
    return EngineSettings(
        kind=EngineKind.DOCKER,
        source=f"dockerd (pid {process.pid}) command line; {config_source}",
        no_new_privileges=_as_bool(value("no-new-privileges"), False),
        icc=_as_bool(value("icc"), True),
        userns_remap=str(userns) if userns else None,
        userland_proxy=_as_bool(value("userland-proxy"), True),
        insecure_registries=tuple(
            dict.fromkeys(
                _config_list(process.options.get("insecure-registries"))
                + _config_list(config.get("insecure-registries"))
            )
        ),
        hosts=tuple(_hosts(process.options, config)),
        tls_verify=_as_bool(value("tlsverify"), False),
        tls_files={k: (str(value(k)) if value(k) else None) for k in ("tlscacert", "tlscert", "tlskey")},
        socket_group=str(group) if group else None,
    )


_TABLE = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*=\s*(.*?)\s*(#.*)?$")


def parse_podman_conf(text: str) -> dict[str, dict[str, str]]:
    """The ``key = value`` pairs of a containers.conf, per table (values unquoted).

    Only single-line scalar values matter to the checks; arrays are kept as written.
    """
    tables: dict[str, dict[str, str]] = {}
    current = ""
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        table = _TABLE.match(line)
        if table is not None:
            current = table.group(1)
            continue
        assign = _ASSIGN.match(line)
        if assign is not None:
            raw = assign.group(2).strip()
            if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
                raw = raw[1:-1]
            tables.setdefault(current, {})[assign.group(1)] = raw
    return tables


def podman_settings(conf: Mapping[str, Mapping[str, str]], *, source: str) -> EngineSettings:
    """Podman's hardening settings from its merged containers.conf ``[containers]`` table."""
    containers = conf.get("containers", {})
    userns = containers.get("userns", "")
    return EngineSettings(
        kind=EngineKind.PODMAN,
        source=source,
        no_new_privileges=_as_bool(containers.get("no_new_privileges"), False),
        icc=None,
        userns_remap=userns if userns and userns != "host" else None,
        userland_proxy=None,
        insecure_registries=(),
        hosts=(),
        tls_verify=False,
    )


def _environment(host: HostConnection, name: str, timeout: float | None) -> str | None:
    result = host.run(["printenv", name], timeout=timeout)
    value = result.stdout.strip()
    return value if result.succeeded and value else None


def podman_conf_files(host: HostConnection, *, rootless: bool, timeout: float | None) -> list[str]:
    """The containers.conf files Podman reads on the host, lowest precedence first.

    ``CONTAINERS_CONF`` replaces them all; otherwise the system files, then (rootless) the
    user's own. Drop-in folders (``containers.conf.d``) are not read.
    """
    override = _environment(host, "CONTAINERS_CONF", timeout)
    if override:
        return [override]
    files = list(PODMAN_CONF_FILES)
    if rootless:
        home = _environment(host, "HOME", timeout)
        if home:
            files.append(f"{home.rstrip('/')}/.config/containers/containers.conf")
    return files


def _read_json(host: HostConnection, path: str) -> tuple[dict[str, Any], str]:
    text = host.read_text(path)
    if text is None:
        return {}, f"{path} absent (dockerd defaults)"
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise EvidenceUnavailable(f"{host.target_id}: {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EvidenceUnavailable(f"{host.target_id}: {path} is not a JSON object")
    return data, path


def read_engine_settings(
    host: HostConnection,
    kind: EngineKind,
    *,
    endpoint: str | None,
    root_dir: str | None,
    rootless: bool,
    timeout: float | None,
) -> EngineSettings:
    """Read the engine's configuration from the host (read-only).

    For Docker: find the dockerd serving ``endpoint`` among ``ps`` and merge its command
    line with the daemon.json it reads. For Podman: merge the system containers.conf files.
    Raises ``EvidenceUnavailable`` when the configuration cannot be read.
    """
    if kind is EngineKind.PODMAN:
        merged: dict[str, dict[str, str]] = {}
        read: list[str] = []
        for path in podman_conf_files(host, rootless=rootless, timeout=timeout):
            text = host.read_text(path)
            if text is None:
                continue
            read.append(path)
            for table, values in parse_podman_conf(text).items():
                merged.setdefault(table, {}).update(values)
        return podman_settings(merged, source=", ".join(read) or "containers.conf absent (defaults)")
    processes = list_dockerd(host, timeout)
    if not processes:
        raise EvidenceUnavailable(
            f"{host.target_id}: no dockerd process is visible, so its configuration cannot be read"
        )
    configs: dict[int, dict[str, Any]] = {}
    sources: dict[int, str] = {}
    errors: dict[int, EvidenceUnavailable] = {}
    for process in processes:
        try:
            configs[process.pid], sources[process.pid] = _read_json(host, process.config_file)
        except EvidenceUnavailable as exc:  # only fatal if it is the engine's own daemon
            configs[process.pid], errors[process.pid] = {}, exc
    chosen = find_dockerd(processes, configs, endpoint=endpoint, root_dir=root_dir, rootless=rootless)
    if chosen is not None and chosen.pid in errors:
        raise errors[chosen.pid]
    if chosen is None:
        pids = ", ".join(str(p.pid) for p in processes)
        raise EvidenceUnavailable(
            f"{host.target_id}: none of the dockerd processes ({pids}) serves {endpoint or 'the engine'}; "
            "set engine.socket in the policy to the socket it listens on"
        )
    return docker_settings(chosen, configs[chosen.pid], config_source=sources[chosen.pid])
