"""SA-RUNTIME-006 to -010: how the agent's containers run, from ``container inspect``.

User, privileges, root filesystem, host namespaces and mounts, resource limits.
"""

from __future__ import annotations

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.engine.checks.common import record_missing
from pytest_secagent.host.engine.containers import ContainerFacts
from pytest_secagent.host.engine.snapshot import AgentContainers

__all__ = [
    "ALLOWED_ADDED_CAPS",
    "SENSITIVE_HOST_PATHS",
    "check_host_isolation",
    "check_non_root",
    "check_privileges",
    "check_read_only_root",
    "check_resource_limits",
]

ALLOWED_ADDED_CAPS = frozenset({"NET_BIND_SERVICE"})
SENSITIVE_HOST_PATHS = frozenset({"/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr", "/root"})
"""Host folders no agent container may mount (CIS Docker runtime section, plus root's home)."""

_ROOT_NAMES = frozenset({"", "0", "root"})
_UNCONFINED = ("seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined")
_NO_LABEL = ("label=disable", "label=type:unconfined_t")


def _user_is_root(user: str) -> bool:
    return user.partition(":")[0].strip() in _ROOT_NAMES


def check_non_root(agents: AgentContainers, evidence: Evidence) -> None:
    """SA-RUNTIME-006: each agent container runs as a non-root user.

    The configured user is set and not root; a running container's process is
    cross-checked in ``/proc`` on the host.
    """
    record_missing(agents, evidence)
    for container in agents.found:
        evidence.expect(
            f"{container.name}: user",
            expected="a non-root user (not empty, 0 or root)",
            actual=container.user or "(unset: root)",
            ok=not _user_is_root(container.user),
        )
        live = container.live_user
        if container.declared:
            evidence.unobserved(
                f"{container.name}: process user",
                expected="uid != 0 inside the container",
                reason="declared configuration only: the image's USER and the running process "
                "are not visible in compose files",
            )
            continue
        if live.uid is None:
            evidence.observe(f"{container.name}: process user", f"not checked: {live.note}")
            continue
        host = f", host uid {live.host_uid}" if live.host_uid != live.uid else ""
        evidence.expect(
            f"{container.name}: process user",
            expected="uid != 0 inside the container",
            actual=f"uid {live.uid}{host} ({live.note})",
            ok=live.uid != 0,
        )


def _normalized_opts(container: ContainerFacts) -> list[str]:
    return [o.replace(":", "=", 1).replace(" ", "").lower() for o in container.security_opt]


def _no_new_privileges(container: ContainerFacts, engine_default: bool | None) -> tuple[bool, str]:
    for option in reversed(_normalized_opts(container)):
        if option == "no-new-privileges" or option.startswith("no-new-privileges="):
            value = option.partition("=")[2] or "true"
            return value == "true", f"security-opt {option}"
    if engine_default:
        return True, "engine default (no-new-privileges: true)"
    unknown = engine_default is None
    return False, "not set" + (" (engine default unknown)" if unknown else " (engine default off)")


def _drops_all(container: ContainerFacts) -> tuple[bool, str]:
    if "ALL" in container.cap_drop:
        return True, "ALL"
    if container.effective_caps is not None:
        kept = sorted(set(container.effective_caps) - ALLOWED_ADDED_CAPS)
        return not kept, "effective: " + (", ".join(container.effective_caps) or "none")
    return False, ", ".join(container.cap_drop) or "none"


def check_privileges(agents: AgentContainers, engine_nnp: bool | None, evidence: Evidence) -> None:
    """SA-RUNTIME-007: no privileged mode, capabilities dropped, no privilege escalation.

    Not privileged, all capabilities dropped (NET_BIND_SERVICE may come back),
    no-new-privileges, and neither seccomp nor AppArmor/SELinux switched off.

    ``engine_nnp`` is the engine's own no-new-privileges default (``None`` when unknown).
    """
    record_missing(agents, evidence)
    for container in agents.found:
        name = container.name
        evidence.expect(f"{name}: privileged", expected=False, actual=container.privileged,
                        ok=not container.privileged)
        drops, dropped = _drops_all(container)
        evidence.expect(f"{name}: capabilities dropped", expected="ALL", actual=dropped, ok=drops)
        extra = sorted(set(container.cap_add) - ALLOWED_ADDED_CAPS)
        evidence.expect(
            f"{name}: capabilities added",
            expected="none, or NET_BIND_SERVICE",
            actual=", ".join(container.cap_add) or "none",
            ok=not extra,
        )
        nnp, how = _no_new_privileges(container, engine_nnp)
        evidence.expect(f"{name}: no-new-privileges", expected=True, actual=how, ok=nnp)
        unconfined = [o for o in _normalized_opts(container) if o in _UNCONFINED]
        evidence.expect(
            f"{name}: seccomp and AppArmor",
            expected="not unconfined",
            actual=", ".join(unconfined) or "confined",
            ok=not unconfined,
        )
        _check_selinux_label(container, evidence)


def _check_selinux_label(container: ContainerFacts, evidence: Evidence) -> None:
    """SELinux labelling switched off is a warning, unless the engine did it itself.

    Docker disables labelling on its own for privileged containers and for those sharing
    the host's PID or IPC namespace; those causes are findings of their own.
    """
    if not any(o in _NO_LABEL for o in _normalized_opts(container)):
        return
    implied = container.privileged or "host" in (container.pid_mode, container.ipc_mode)
    name = f"{container.name}: SELinux labelling"
    if implied:
        evidence.observe(name, "disabled by the engine (privileged or host PID/IPC)")
    else:
        evidence.warn(name, expected="enabled", actual="disabled (label=disable)")


def check_read_only_root(agents: AgentContainers, evidence: Evidence) -> None:
    """SA-RUNTIME-008: read-only root filesystem; writable paths are tmpfs or volumes only."""
    record_missing(agents, evidence)
    for container in agents.found:
        evidence.expect(
            f"{container.name}: read-only root filesystem",
            expected=True,
            actual=container.readonly_rootfs,
            ok=container.readonly_rootfs,
        )
        writable_binds = [
            f"{m.source} -> {m.destination}" for m in container.mounts if m.type == "bind" and m.writable
        ]
        evidence.expect(
            f"{container.name}: writable host bind mounts",
            expected="none (tmpfs or volumes only)",
            actual="; ".join(writable_binds) or "none",
            ok=not writable_binds,
        )


def _sensitive(source: str) -> bool:
    return (source.rstrip("/") or "/") in SENSITIVE_HOST_PATHS


def check_host_isolation(agents: AgentContainers, evidence: Evidence) -> None:
    """SA-RUNTIME-009: no host network, PID, IPC, UTS or user namespace; no sensitive host mounts."""
    record_missing(agents, evidence)
    for container in agents.found:
        shared = [
            kind
            for kind, mode in (
                ("network", container.network_mode),
                ("pid", container.pid_mode),
                ("ipc", container.ipc_mode),
                ("uts", container.uts_mode),
                ("user", container.userns_mode),
            )
            if mode == "host"
        ]
        evidence.expect(
            f"{container.name}: host namespaces",
            expected="none shared",
            actual=", ".join(shared) or "none shared",
            ok=not shared,
        )
        mounts = [f"{m.source} -> {m.destination}" for m in container.mounts
                  if m.type == "bind" and _sensitive(m.source)]
        evidence.expect(
            f"{container.name}: sensitive host mounts",
            expected="none of " + ", ".join(sorted(SENSITIVE_HOST_PATHS)),
            actual="; ".join(mounts) or "none",
            ok=not mounts,
        )


def check_resource_limits(agents: AgentContainers, evidence: Evidence) -> None:
    """SA-RUNTIME-010: a memory limit and a CPU limit (``--cpus`` or a CFS quota)."""
    record_missing(agents, evidence)
    for container in agents.found:
        evidence.expect(
            f"{container.name}: memory limit",
            expected="> 0",
            actual=f"{container.memory} bytes" if container.memory else "unlimited",
            ok=container.memory > 0,
        )
        if container.nano_cpus > 0:
            cpu = f"{container.nano_cpus / 1e9:g} CPUs"
        elif container.cpu_quota > 0:
            cpu = f"CFS quota {container.cpu_quota}"
        else:
            cpu = "unlimited"
        evidence.expect(
            f"{container.name}: CPU limit",
            expected="--cpus or a CPU quota",
            actual=cpu,
            ok=container.nano_cpus > 0 or container.cpu_quota > 0,
        )
