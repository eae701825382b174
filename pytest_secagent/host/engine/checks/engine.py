"""SA-RUNTIME-002 and -003: the engine's version and its security features."""

from __future__ import annotations

import datetime as dt

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.engine.client import EngineKind
from pytest_secagent.host.engine.daemon import EngineSettings
from pytest_secagent.host.engine.facts import EngineVersion, SecurityFacts
from pytest_secagent.host.engine.versions import at_least, lifecycle_of, parse_version
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import VersionsSection

__all__ = ["check_engine_security", "check_engine_version"]


def check_engine_version(
    version: EngineVersion, minimums: VersionsSection, evidence: Evidence, *, today: dt.date
) -> None:
    """SA-RUNTIME-002: the engine is at least the policy's minimum; warn on an end-of-life line."""
    wanted = minimums.docker_min if version.kind is EngineKind.DOCKER else minimums.podman_min
    minimum = parse_version(wanted)
    if minimum is None:
        raise EvidenceUnavailable(
            f"the policy's minimum {version.kind.value} version {wanted!r} is not a version"
        )
    parsed = parse_version(version.version)
    if parsed is None:
        raise EvidenceUnavailable(f"the engine reports an unreadable version {version.version!r}")
    api = version.api_version or "unknown"
    evidence.observe("engine", f"{version.kind.value} {version.version} (API {api})")
    evidence.expect(
        f"{version.kind.value} version",
        expected=f">= {wanted}",
        actual=version.version,
        ok=at_least(parsed, minimum),
    )
    line = lifecycle_of(version.kind, parsed, today)
    if line is not None:
        evidence.warn(
            "upstream support",
            expected="a release line that still receives upstream security fixes",
            actual=f"{line.note} (since {line.end_of_life.isoformat()}); "
            "only distribution backports can fix it",
        )


def _seccomp(security: SecurityFacts) -> tuple[str, bool]:
    profile = security.seccomp_profile
    if profile is None:
        return "not in effect", False
    return profile, profile.lower() != "unconfined"


def _lsm(security: SecurityFacts) -> str:
    names = [name for name, on in (("AppArmor", security.apparmor), ("SELinux", security.selinux)) if on]
    return " and ".join(names) or "neither"


def _remapped(security: SecurityFacts, settings: EngineSettings) -> bool:
    # dockerd reports userns-remap itself; rootful Podman remaps per its containers.conf.
    return security.userns or (settings.kind is EngineKind.PODMAN and settings.userns_remap is not None)


def _isolation(security: SecurityFacts, settings: EngineSettings) -> str:
    modes = []
    if security.rootless:
        modes.append("rootless")
    if _remapped(security, settings):
        modes.append(f"user namespaces ({settings.userns_remap or 'remapped'})")
    return " and ".join(modes) or "neither (containers' root is the host's root)"


def _tcp_hosts(settings: EngineSettings) -> list[str]:
    return [h for h in settings.hosts if h.startswith("tcp://")]


def check_engine_security(security: SecurityFacts, settings: EngineSettings, evidence: Evidence) -> None:
    """SA-RUNTIME-003: the engine's security features are on.

    Seccomp, AppArmor or SELinux, rootless or userns-remap, no-new-privileges, icc off, no
    insecure registries and TLS on every TCP socket; live-restore and userland-proxy warn.
    """
    evidence.observe("configuration read", settings.source)
    evidence.observe("security options reported", ", ".join(security.reported) or "none")
    profile, seccomp_ok = _seccomp(security)
    evidence.expect("seccomp", expected="enabled, not unconfined", actual=profile, ok=seccomp_ok)
    lsm = _lsm(security)
    evidence.expect("AppArmor or SELinux", expected="enabled", actual=lsm, ok=lsm != "neither")
    evidence.expect(
        "rootless or userns-remap",
        expected="the engine runs rootless or remaps container users",
        actual=_isolation(security, settings),
        ok=security.rootless or _remapped(security, settings),
    )
    evidence.expect(
        "no-new-privileges",
        expected=True,
        actual=settings.no_new_privileges,
        ok=settings.no_new_privileges,
    )
    if settings.icc is None:
        evidence.observe("icc", f"does not apply to {settings.kind.value} (no daemon bridge)")
    else:
        evidence.expect("icc", expected=False, actual=settings.icc, ok=not settings.icc)
    insecure = sorted(set(security.insecure_registries) | set(settings.insecure_registries))
    evidence.expect(
        "insecure registries", expected="none", actual=", ".join(insecure) or "none", ok=not insecure
    )
    tcp = _tcp_hosts(settings)
    if settings.kind is EngineKind.PODMAN:
        evidence.observe("TCP sockets", "podman has no daemon listener of its own")
    elif not tcp:
        evidence.observe("TCP sockets", "none (" + ", ".join(settings.hosts) + ")")
    for host in tcp:
        files = ", ".join(f"{k}={v or 'default'}" for k, v in settings.tls_files.items())
        evidence.expect(
            f"TLS on {host}",
            expected="tlsverify with CA, certificate and key",
            actual=f"tlsverify on ({files})" if settings.tls_verify else "tlsverify off",
            ok=settings.tls_verify,
        )
    if security.live_restore is None:
        evidence.observe("live-restore", f"does not apply to {settings.kind.value} (no daemon)")
    elif not security.live_restore:
        evidence.warn("live-restore", expected=True, actual=False)
    else:
        evidence.observe("live-restore", True)
    if settings.userland_proxy is not None:
        if settings.userland_proxy:
            evidence.warn("userland-proxy", expected=False, actual=True)
        else:
            evidence.observe("userland-proxy", False)
