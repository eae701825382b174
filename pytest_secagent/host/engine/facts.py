"""What the engine says about itself: its version and its security features, parsed from JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_secagent.host.engine.client import EngineKind
from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = [
    "DOCKER_DEFAULT_INSECURE_CIDRS",
    "EngineVersion",
    "SecurityFacts",
    "engine_version",
    "security_facts",
]

DOCKER_DEFAULT_INSECURE_CIDRS = frozenset({"127.0.0.0/8", "::1/128"})
"""Loopback ranges dockerd always treats as insecure registries; no configuration adds them."""


@dataclass(frozen=True)
class EngineVersion:
    """The engine's own version (the server's, not the CLI's)."""

    kind: EngineKind
    version: str
    api_version: str | None
    client_version: str | None


@dataclass(frozen=True)
class SecurityFacts:
    """The security features the engine reports as in effect.

    ``seccomp_profile`` is ``None`` when seccomp is not in effect at all, otherwise the
    profile name (``default``, ``unconfined``, a path...). ``live_restore`` is ``None`` for
    an engine without a daemon (Podman), where it does not apply.
    """

    kind: EngineKind
    seccomp_profile: str | None
    apparmor: bool
    selinux: bool
    rootless: bool
    userns: bool
    live_restore: bool | None
    insecure_registries: tuple[str, ...]
    reported: tuple[str, ...]
    root_dir: str | None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def engine_version(kind: EngineKind, data: Mapping[str, Any], target_id: str) -> EngineVersion:
    """The server version from ``docker version``/``podman version`` JSON."""
    client = _dict(data.get("Client"))
    server = _dict(data.get("Server"))
    if kind is EngineKind.DOCKER:
        source = server
        api = _text(source.get("ApiVersion"))
    else:
        # Podman runs without a daemon: its CLI is the engine, unless it talks to a service.
        source = server or client
        api = _text(source.get("APIVersion"))
    version = _text(source.get("Version"))
    if version is None:
        raise EvidenceUnavailable(f"{target_id}: the {kind.value} version output names no version")
    return EngineVersion(kind, version, api, _text(client.get("Version")))


def _docker_options(entries: object) -> dict[str, dict[str, str]]:
    """``SecurityOptions`` entries (``name=seccomp,profile=default``) keyed by name."""
    options: dict[str, dict[str, str]] = {}
    for entry in entries if isinstance(entries, list) else []:
        fields: dict[str, str] = {}
        for part in str(entry).split(","):
            key, _, value = part.partition("=")
            fields[key.strip()] = value.strip()
        name = fields.pop("name", "")
        if name:
            options[name] = fields
    return options


def _docker_insecure(registry: object) -> tuple[str, ...]:
    if not isinstance(registry, dict):
        return ()
    found = [
        str(cidr)
        for cidr in registry.get("InsecureRegistryCIDRs") or []
        if str(cidr) not in DOCKER_DEFAULT_INSECURE_CIDRS
    ]
    indexes = registry.get("IndexConfigs") or {}
    if isinstance(indexes, dict):
        found += [
            str(name)
            for name, config in indexes.items()
            if isinstance(config, dict) and config.get("Secure") is False
        ]
    return tuple(dict.fromkeys(found))


def _podman_insecure(registries: object) -> tuple[str, ...]:
    if not isinstance(registries, dict):
        return ()
    return tuple(
        str(name)
        for name, config in registries.items()
        if isinstance(config, dict) and config.get("Insecure") is True
    )


def security_facts(kind: EngineKind, info: Mapping[str, Any]) -> SecurityFacts:
    """The security features in ``docker info``/``podman info`` JSON."""
    if kind is EngineKind.DOCKER:
        options = _docker_options(info.get("SecurityOptions"))
        seccomp = options.get("seccomp")
        live = info.get("LiveRestoreEnabled")
        return SecurityFacts(
            kind=kind,
            seccomp_profile=(seccomp.get("profile") or "default") if seccomp is not None else None,
            apparmor="apparmor" in options,
            selinux="selinux" in options,
            rootless="rootless" in options,
            userns="userns" in options,
            live_restore=live if isinstance(live, bool) else False,
            insecure_registries=_docker_insecure(info.get("RegistryConfig")),
            reported=tuple(str(e) for e in info.get("SecurityOptions") or []),
            root_dir=_text(info.get("DockerRootDir")),
        )
    host = _dict(info.get("host"))
    security = _dict(host.get("security"))
    seccomp_on = security.get("seccompEnabled") is True
    store = _dict(info.get("store"))
    return SecurityFacts(
        kind=kind,
        seccomp_profile=(_text(security.get("seccompProfilePath")) or "default") if seccomp_on else None,
        apparmor=security.get("apparmorEnabled") is True,
        selinux=security.get("selinuxEnabled") is True,
        rootless=security.get("rootless") is True,
        userns=any(_dict(host.get("idMappings")).values()),  # {"uidmap": null, ...} when rootful
        live_restore=None,
        insecure_registries=_podman_insecure(info.get("registries")),
        reported=tuple(f"{k}={v}" for k, v in sorted(security.items()) if k != "capabilities"),
        root_dir=_text(store.get("graphRoot")),
    )
