"""Pod Security Standards: evaluate a pod against the baseline and restricted levels.

A pure function over API-JSON dictionaries (camelCase, as ``kubectl get -o json``
prints them): :func:`evaluate` takes a pod spec, a Pod, a PodTemplate or a workload
(Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob...) and returns every
violated rule with its level and a readable detail.

The rules follow the latest policy version of the upstream Pod Security Admission
library, including its choices on corner cases:

* every container is checked: ``containers``, ``initContainers`` and ``ephemeralContainers``;
* a volume that names no source (or only null ones) is an ``emptyDir`` (the API server
  defaults it so);
* pods with ``os.name: windows`` are exempt from the Linux-only restricted rules
  (allowPrivilegeEscalation, capabilities_restricted, seccompProfile_restricted);
* a field written as ``null`` is absent, as the API reads it (a container's
  ``seccompProfile: null`` leaves the pod's profile in force);
* pods in a user namespace (``hostUsers: false``) are exempt from procMount (baseline),
  runAsNonRoot and runAsUser (restricted), as upstream does with user-namespace
  support enabled; the restricted level still forbids an unmasked ``/proc``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RULES",
    "Level",
    "PodSecurityResult",
    "Rule",
    "Violation",
    "evaluate",
    "pod_metadata_and_spec",
]

KubeDict = Mapping[str, Any]

APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
RESTRICTED_ADDABLE_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.ipv4.tcp_slow_start_after_idle",
        "net.ipv4.tcp_notsent_lowat",
    }
)
RESTRICTED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
GOOD_SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
GOOD_APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
LIFECYCLE_HANDLERS = ("postStart", "preStop")
WORKLOAD_TEMPLATE_KINDS = frozenset(
    {
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "PodTemplate",
    }
)


class Level(enum.Enum):
    """A Pod Security Standards level; restricted includes every baseline rule."""

    BASELINE = "baseline"
    RESTRICTED = "restricted"


@dataclass(frozen=True)
class Violation:
    """One rule a pod breaks: the rule's ID, its level and what exactly is wrong."""

    rule: str
    level: Level
    detail: str

    def __str__(self) -> str:
        return f"{self.rule} ({self.level.value}): {self.detail}"


Check = Callable[[KubeDict, KubeDict], "str | None"]


@dataclass(frozen=True)
class Rule:
    """A Pod Security Standards rule: ID, level, title and its check.

    ``overrides`` names baseline rules this restricted rule replaces at the restricted
    level (it is stricter and covers them), so a finding is reported once per level.
    """

    id: str
    level: Level
    title: str
    check: Check
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class PodSecurityResult:
    """Every violation of one pod, queried per level."""

    violations: tuple[Violation, ...]

    @property
    def baseline(self) -> tuple[Violation, ...]:
        """Violations of the baseline level."""
        return self.at(Level.BASELINE)

    @property
    def restricted(self) -> tuple[Violation, ...]:
        """Violations of the restricted level (baseline rules included)."""
        return self.at(Level.RESTRICTED)

    def at(self, level: Level) -> tuple[Violation, ...]:
        """Return the violations that count at ``level``."""
        if level is Level.BASELINE:
            return tuple(v for v in self.violations if v.level is Level.BASELINE)
        found = {v.rule for v in self.violations}
        overridden = {o for rule in RULES if rule.id in found for o in rule.overrides}
        return tuple(v for v in self.violations if v.rule not in overridden)

    def allowed(self, level: Level) -> bool:
        """Whether the pod meets ``level``."""
        return not self.at(level)


# --- reading the objects ------------------------------------------------------------------


def _map(value: object) -> KubeDict:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def pod_metadata_and_spec(obj: KubeDict) -> tuple[KubeDict, KubeDict]:
    """Return the pod metadata and pod spec of a pod spec, Pod, PodTemplate or workload.

    CronJobs are unwrapped through their job template; an object that is neither a pod
    spec nor holds a pod template raises ``ValueError``.
    """
    kind = obj.get("kind")
    if kind is None and ("containers" in obj or "initContainers" in obj):
        return {}, obj
    if kind == "Pod":
        return _map(obj.get("metadata")), _map(obj.get("spec"))
    if kind == "CronJob":
        job_spec = _map(_map(_map(obj.get("spec")).get("jobTemplate")).get("spec"))
        template = _map(job_spec.get("template"))
    elif kind == "PodTemplate":
        template = _map(obj.get("template"))
    elif kind in WORKLOAD_TEMPLATE_KINDS or "template" in _map(obj.get("spec")):
        template = _map(_map(obj.get("spec")).get("template"))
    else:
        raise ValueError(f"{kind or 'object'} holds no pod spec")
    return _map(template.get("metadata")), _map(template.get("spec"))


def _containers(spec: KubeDict) -> Iterator[KubeDict]:
    for key in CONTAINER_LISTS:
        for container in _list(spec.get(key)):
            yield _map(container)


def _sc(container_or_spec: KubeDict) -> KubeDict:
    return _map(container_or_spec.get("securityContext"))


def _name(container: KubeDict) -> str:
    return str(container.get("name", "?"))


def _is_windows(spec: KubeDict) -> bool:
    return _map(spec.get("os")).get("name") == "windows"


def _in_user_namespace(spec: KubeDict) -> bool:
    return spec.get("hostUsers") is False


def _quote(items: list[str] | set[str]) -> str:
    return ", ".join(f'"{i}"' for i in sorted(set(items)))


def _containers_where(spec: KubeDict, bad: Callable[[KubeDict], bool]) -> list[str]:
    return [_name(c) for c in _containers(spec) if bad(c)]


def _who(names: list[str]) -> str:
    noun = "container" if len(names) == 1 else "containers"
    return f"{noun} {_quote(names)}"


def _containers_detail(names: list[str], what: str) -> str | None:
    return f"{_who(names)} {what}" if names else None


def _setters(pod: bool, names: list[str], what: str) -> str | None:
    who = (["pod"] if pod else []) + ([_who(names)] if names else [])
    return f"{' and '.join(who)} {what}" if who else None


# --- baseline rules -----------------------------------------------------------------------


def _privileged(meta: KubeDict, spec: KubeDict) -> str | None:
    names = _containers_where(spec, lambda c: _sc(c).get("privileged") is True)
    return _containers_detail(names, "must not set securityContext.privileged=true")


def _host_namespaces(meta: KubeDict, spec: KubeDict) -> str | None:
    shared = [f"{key}=true" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key) is True]
    return f"pod must not set {', '.join(shared)}" if shared else None


def _host_path_volumes(meta: KubeDict, spec: KubeDict) -> str | None:
    names = [
        str(_map(v).get("name")) for v in _list(spec.get("volumes")) if _map(v).get("hostPath") is not None
    ]
    return f"hostPath volumes {_quote(names)}" if names else None


def _host_ports(meta: KubeDict, spec: KubeDict) -> str | None:
    ports = [
        str(p.get("hostPort"))
        for c in _containers(spec)
        for p in map(_map, _list(c.get("ports")))
        if p.get("hostPort") not in (None, 0)
    ]
    return f"hostPorts {_quote(ports)}" if ports else None


def _capabilities_baseline(meta: KubeDict, spec: KubeDict) -> str | None:
    bad: dict[str, set[str]] = {}
    for c in _containers(spec):
        added = {str(cap) for cap in _list(_map(_sc(c).get("capabilities")).get("add"))}
        if extra := added - BASELINE_CAPABILITIES:
            bad[_name(c)] = extra
    if not bad:
        return None
    caps = set().union(*bad.values())
    return _containers_detail(
        list(bad), f"must not include {_quote(caps)} in securityContext.capabilities.add"
    )


def _apparmor_profile(meta: KubeDict, spec: KubeDict) -> str | None:
    problems: list[str] = []
    pod_type = _map(_sc(spec).get("appArmorProfile")).get("type")
    if _sc(spec).get("appArmorProfile") is not None and pod_type not in GOOD_APPARMOR_TYPES:
        problems.append(f'pod sets appArmorProfile.type "{pod_type}"')
    for c in _containers(spec):
        profile = _sc(c).get("appArmorProfile")
        if profile is not None and _map(profile).get("type") not in GOOD_APPARMOR_TYPES:
            problems.append(f'container "{_name(c)}" sets appArmorProfile.type "{_map(profile).get("type")}"')
    for key, value in sorted(_map(meta.get("annotations")).items()):
        if not str(key).startswith(APPARMOR_ANNOTATION_PREFIX):
            continue
        text = str(value)
        if text and text != "runtime/default" and not text.startswith("localhost/"):
            problems.append(f'annotation {key}="{text}"')
    return "; ".join(problems) if problems else None


def _selinux_problem(options: KubeDict) -> list[str]:
    problems = []
    if str(options.get("type", "") or "") not in SELINUX_TYPES:
        problems.append(f'type "{options.get("type")}"')
    if options.get("user"):
        problems.append("user may not be set")
    if options.get("role"):
        problems.append("role may not be set")
    return problems


def _selinux_options(meta: KubeDict, spec: KubeDict) -> str | None:
    problems: list[str] = []
    if _sc(spec).get("seLinuxOptions") is not None:
        if found := _selinux_problem(_map(_sc(spec).get("seLinuxOptions"))):
            problems.append(f"pod: {', '.join(found)}")
    for c in _containers(spec):
        if _sc(c).get("seLinuxOptions") is not None:
            if found := _selinux_problem(_map(_sc(c).get("seLinuxOptions"))):
                problems.append(f'container "{_name(c)}": {", ".join(found)}')
    return "forbidden seLinuxOptions: " + "; ".join(problems) if problems else None


def _unmasked_proc(spec: KubeDict) -> str | None:
    names = _containers_where(spec, lambda c: _sc(c).get("procMount") not in (None, "Default"))
    return _containers_detail(names, 'must not set securityContext.procMount other than "Default"')


def _proc_mount(meta: KubeDict, spec: KubeDict) -> str | None:
    return None if _in_user_namespace(spec) else _unmasked_proc(spec)


def _proc_mount_restricted(meta: KubeDict, spec: KubeDict) -> str | None:
    return _unmasked_proc(spec)


def _seccomp_baseline(meta: KubeDict, spec: KubeDict) -> str | None:
    pod = _map(_sc(spec).get("seccompProfile")).get("type") == "Unconfined"
    names = _containers_where(spec, lambda c: _map(_sc(c).get("seccompProfile")).get("type") == "Unconfined")
    return _setters(pod, names, 'must not set seccompProfile.type "Unconfined"')


def _sysctls(meta: KubeDict, spec: KubeDict) -> str | None:
    names = [str(_map(s).get("name")) for s in _list(_sc(spec).get("sysctls"))]
    bad = [n for n in names if n not in SAFE_SYSCTLS]
    return f"forbidden sysctls {_quote(bad)}" if bad else None


def _windows_host_process(meta: KubeDict, spec: KubeDict) -> str | None:
    pod = _map(_sc(spec).get("windowsOptions")).get("hostProcess") is True
    names = _containers_where(spec, lambda c: _map(_sc(c).get("windowsOptions")).get("hostProcess") is True)
    return _setters(pod, names, "must not set windowsOptions.hostProcess=true")


def _handler_hosts(handler: KubeDict) -> list[str]:
    return [
        str(_map(handler.get(kind)).get("host"))
        for kind in ("httpGet", "tcpSocket")
        if _map(handler.get(kind)).get("host")
    ]


def _host_probes_and_lifecycle(meta: KubeDict, spec: KubeDict) -> str | None:
    bad: dict[str, list[str]] = {}
    for c in _containers(spec):
        hosts = [h for probe in PROBES for h in _handler_hosts(_map(c.get(probe)))]
        lifecycle = _map(c.get("lifecycle"))
        hosts += [h for handler in LIFECYCLE_HANDLERS for h in _handler_hosts(_map(lifecycle.get(handler)))]
        if hosts:
            bad[_name(c)] = hosts
    if not bad:
        return None
    hosts = [h for found in bad.values() for h in found]
    return _containers_detail(list(bad), f"use probe or lifecycle hosts {_quote(hosts)}")


# --- restricted rules ---------------------------------------------------------------------


def _restricted_volumes(meta: KubeDict, spec: KubeDict) -> str | None:
    bad: dict[str, str] = {}
    for volume in map(_map, _list(spec.get("volumes"))):
        sources = [key for key, value in volume.items() if key != "name" and value is not None]
        if not sources:
            continue  # the API server defaults a source-less volume (or a null source) to emptyDir
        if not any(source in RESTRICTED_VOLUME_SOURCES for source in sources):
            bad[str(volume.get("name"))] = sources[0]
    if not bad:
        return None
    return f"volumes {_quote(list(bad))} use restricted volume types {_quote(list(bad.values()))}"


def _allow_privilege_escalation(meta: KubeDict, spec: KubeDict) -> str | None:
    if _is_windows(spec):
        return None
    names = _containers_where(spec, lambda c: _sc(c).get("allowPrivilegeEscalation") is not False)
    return _containers_detail(names, "must set securityContext.allowPrivilegeEscalation=false")


def _run_as_non_root(meta: KubeDict, spec: KubeDict) -> str | None:
    if _in_user_namespace(spec):
        return None
    pod_value = _sc(spec).get("runAsNonRoot")
    explicit = _containers_where(spec, lambda c: _sc(c).get("runAsNonRoot") is False)
    implicit = (
        [] if pod_value is True else _containers_where(spec, lambda c: _sc(c).get("runAsNonRoot") is None)
    )
    problems = [
        _setters(pod_value is False, explicit, "must not set securityContext.runAsNonRoot=false"),
        _containers_detail(implicit, "must set securityContext.runAsNonRoot=true (or the pod must)"),
    ]
    return "; ".join(p for p in problems if p) or None


def _run_as_user(meta: KubeDict, spec: KubeDict) -> str | None:
    if _in_user_namespace(spec):
        return None
    pod = _sc(spec).get("runAsUser") == 0
    names = _containers_where(spec, lambda c: _sc(c).get("runAsUser") == 0)
    return _setters(pod, names, "must not set securityContext.runAsUser=0")


def _seccomp_restricted(meta: KubeDict, spec: KubeDict) -> str | None:
    if _is_windows(spec):
        return None
    pod_profile = _sc(spec).get("seccompProfile")
    pod_bad = pod_profile is not None and _map(pod_profile).get("type") not in GOOD_SECCOMP_TYPES
    pod_ok = pod_profile is not None and not pod_bad
    explicit: list[str] = []
    implicit: list[str] = []
    for c in _containers(spec):
        profile = _sc(c).get("seccompProfile")
        if profile is not None:
            if _map(profile).get("type") not in GOOD_SECCOMP_TYPES:
                explicit.append(_name(c))
        elif not pod_ok:
            implicit.append(_name(c))
    problems = [
        _setters(
            pod_bad,
            explicit,
            'must not set seccompProfile.type other than "RuntimeDefault" or "Localhost"',
        ),
        _containers_detail(
            implicit,
            'must set seccompProfile.type "RuntimeDefault" or "Localhost" (or the pod must)',
        ),
    ]
    return "; ".join(p for p in problems if p) or None


def _capabilities_restricted(meta: KubeDict, spec: KubeDict) -> str | None:
    if _is_windows(spec):
        return None
    not_dropped: list[str] = []
    bad_add: dict[str, set[str]] = {}
    for c in _containers(spec):
        caps = _map(_sc(c).get("capabilities"))
        if "ALL" not in {str(d) for d in _list(caps.get("drop"))}:
            not_dropped.append(_name(c))
        added = {str(a) for a in _list(caps.get("add"))}
        if extra := added - RESTRICTED_ADDABLE_CAPABILITIES:
            bad_add[_name(c)] = extra
    caps_added: set[str] = set().union(*bad_add.values())
    problems = [
        _containers_detail(not_dropped, 'must set securityContext.capabilities.drop=["ALL"]'),
        _containers_detail(
            list(bad_add),
            f"must not include {_quote(caps_added)} in securityContext.capabilities.add",
        ),
    ]
    return "; ".join(p for p in problems if p) or None


RULES: tuple[Rule, ...] = (
    Rule("privileged", Level.BASELINE, "Privileged containers", _privileged),
    Rule("hostNamespaces", Level.BASELINE, "Host namespaces", _host_namespaces),
    Rule("hostPathVolumes", Level.BASELINE, "HostPath volumes", _host_path_volumes),
    Rule("hostPorts", Level.BASELINE, "Host ports", _host_ports),
    Rule("capabilities_baseline", Level.BASELINE, "Capabilities", _capabilities_baseline),
    Rule("appArmorProfile", Level.BASELINE, "AppArmor", _apparmor_profile),
    Rule("seLinuxOptions", Level.BASELINE, "SELinux", _selinux_options),
    Rule("procMount", Level.BASELINE, "/proc mount type", _proc_mount),
    Rule("seccompProfile_baseline", Level.BASELINE, "Seccomp", _seccomp_baseline),
    Rule("sysctls", Level.BASELINE, "Sysctls", _sysctls),
    Rule("windowsHostProcess", Level.BASELINE, "HostProcess", _windows_host_process),
    Rule(
        "hostProbesAndHostLifecycle",
        Level.BASELINE,
        "Host probes and lifecycle hooks",
        _host_probes_and_lifecycle,
    ),
    Rule(
        "restrictedVolumes",
        Level.RESTRICTED,
        "Volume types",
        _restricted_volumes,
        overrides=("hostPathVolumes",),
    ),
    Rule(
        "allowPrivilegeEscalation",
        Level.RESTRICTED,
        "Privilege escalation",
        _allow_privilege_escalation,
    ),
    Rule("runAsNonRoot", Level.RESTRICTED, "Running as non-root", _run_as_non_root),
    Rule("runAsUser", Level.RESTRICTED, "Running as non-root user", _run_as_user),
    Rule(
        "seccompProfile_restricted",
        Level.RESTRICTED,
        "Seccomp",
        _seccomp_restricted,
        overrides=("seccompProfile_baseline",),
    ),
    Rule(
        "capabilities_restricted",
        Level.RESTRICTED,
        "Capabilities",
        _capabilities_restricted,
        overrides=("capabilities_baseline",),
    ),
    Rule(
        "procMount_restricted",
        Level.RESTRICTED,
        "/proc mount type",
        _proc_mount_restricted,
        overrides=("procMount",),
    ),
)


def evaluate(obj: KubeDict) -> PodSecurityResult:
    """Evaluate a pod spec, Pod, PodTemplate or workload against every rule.

    Returns the violations of both levels; query them with
    :attr:`PodSecurityResult.baseline` and :attr:`PodSecurityResult.restricted`.
    """
    meta, spec = pod_metadata_and_spec(obj)
    found = []
    for rule in RULES:
        detail = rule.check(meta, spec)
        if detail is not None:
            found.append(Violation(rule=rule.id, level=rule.level, detail=detail))
    return PodSecurityResult(tuple(found))
