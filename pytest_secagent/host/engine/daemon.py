"""The engine's configuration: dockerd's command line over its daemon.json, or Podman's containers.conf."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.engine.attribution import (
    PathIdentities,
    dockerd_hosts,
    find_dockerd,
    probe_identities,
    same_endpoint,
    visible_roots,
)
from pytest_secagent.host.engine.client import EngineKind
from pytest_secagent.host.engine.dockerd import (
    DEFAULT_DAEMON_JSON,
    DEFAULT_DOCKER_HOST,
    DockerdProcess,
    as_bool,
    list_dockerd,
    parse_dockerd_argv,
)
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

PODMAN_CONF_FILES = ("/usr/share/containers/containers.conf", "/etc/containers/containers.conf")


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
        no_new_privileges=as_bool(value("no-new-privileges"), False),
        icc=as_bool(value("icc"), True),
        userns_remap=str(userns) if userns else None,
        userland_proxy=as_bool(value("userland-proxy"), True),
        insecure_registries=tuple(
            dict.fromkeys(
                _config_list(process.options.get("insecure-registries"))
                + _config_list(config.get("insecure-registries"))
            )
        ),
        hosts=tuple(dockerd_hosts(process, config)),
        tls_verify=as_bool(value("tlsverify"), False),
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
        no_new_privileges=as_bool(containers.get("no_new_privileges"), False),
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


def _read_json(host: HostConnection, path: str, shown: str) -> tuple[dict[str, Any], str]:
    text = host.read_text(path)
    if text is None:
        return {}, f"{shown} absent (dockerd defaults)"
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise EvidenceUnavailable(f"{host.target_id}: {shown} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EvidenceUnavailable(f"{host.target_id}: {shown} is not a JSON object")
    return data, shown


def _read_daemon_json(
    host: HostConnection, process: DockerdProcess, layout: PathIdentities
) -> tuple[dict[str, Any], str]:
    """The daemon.json ``process`` reads, read as it sees it (its ``/proc/PID/root`` when visible)."""
    path = process.config_file
    if path is None:
        raise EvidenceUnavailable(
            f"{host.target_id}: the daemon.json of rootless dockerd (pid {process.pid}) is unknown: "
            "its environment (HOME, XDG_CONFIG_HOME) cannot be read"
        )
    probe = layout.probe(path, process.pid)
    if probe is None:
        raise EvidenceUnavailable(
            f"{host.target_id}: dockerd (pid {process.pid}) reads the relative daemon.json {path!r}, "
            "and its working directory cannot be entered"
        )
    return _read_json(host, probe, path)


def _podman_settings(host: HostConnection, *, rootless: bool, timeout: float | None) -> EngineSettings:
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

    For Docker: find the one dockerd that is the engine (see
    :mod:`pytest_secagent.host.engine.attribution`) and merge its command line with the
    daemon.json it reads. For Podman: merge the system containers.conf files. Raises
    ``EvidenceUnavailable`` when the configuration cannot be read or no single dockerd can
    be told to be the engine.
    """
    if kind is EngineKind.PODMAN:
        return _podman_settings(host, rootless=rootless, timeout=timeout)
    processes = list_dockerd(host, timeout)
    if not processes:
        raise EvidenceUnavailable(
            f"{host.target_id}: no dockerd process is visible, so its configuration cannot be read"
        )
    layout = PathIdentities(visible_roots=visible_roots(host, [p.pid for p in processes], timeout))
    configs: dict[int, dict[str, Any]] = {}
    sources: dict[int, str] = {}
    errors: dict[int, EvidenceUnavailable] = {}
    for process in processes:
        try:
            configs[process.pid], sources[process.pid] = _read_daemon_json(host, process, layout)
        except EvidenceUnavailable as exc:  # only fatal if it is the engine's own daemon
            configs[process.pid], errors[process.pid] = {}, exc
    identities = probe_identities(
        host,
        processes,
        configs,
        endpoint=endpoint,
        root_dir=root_dir,
        roots=layout.visible_roots,
        timeout=timeout,
    )
    chosen = find_dockerd(
        processes,
        configs,
        endpoint=endpoint,
        root_dir=root_dir,
        rootless=rootless,
        identities=identities,
        target_id=host.target_id,
    )
    if chosen is not None and chosen.pid in errors:
        raise errors[chosen.pid]
    if chosen is None:
        pids = ", ".join(str(p.pid) for p in processes)
        raise EvidenceUnavailable(
            f"{host.target_id}: none of the dockerd processes ({pids}) serves {endpoint or 'the engine'} "
            f"or owns its data root ({root_dir or 'unknown'}); "
            "set engine.socket in the policy to the socket it listens on"
        )
    return docker_settings(chosen, configs[chosen.pid], config_source=sources[chosen.pid])
