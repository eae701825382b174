"""Container hardening of the agent's pods: SA-RUNTIME-004 and SA-RUNTIME-006 to -010.

Every container counts: init, regular and ephemeral. Pod-level settings apply where the
API applies them (``runAsNonRoot``, ``runAsUser``, ``runAsGroup`` and ``seccompProfile``
are inherited from the pod's securityContext; ``allowPrivilegeEscalation``,
``capabilities``, ``privileged`` and ``readOnlyRootFilesystem`` exist per container only).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import (
    AgentScope,
    ContainerRef,
    agent_containers,
    agent_scope,
    agent_templates,
    effective_security,
)
from pytest_secagent.kubernetes.manifests import location_of
from pytest_secagent.kubernetes.pss import RESTRICTED_VOLUME_SOURCES, RULES, Level, evaluate
from pytest_secagent.kubernetes.resources import LIMIT_RANGES
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.kubernetes.workloads import PodTemplate, containers, out_of_scope, unread_workloads
from pytest_secagent.policy.model import Policy

__all__ = [
    "ENGINE_SOCKET_NAMES",
    "PSS_RULE_CONTROLS",
    "check_host_isolation",
    "check_non_root",
    "check_privileges",
    "check_read_only_root",
    "check_resource_limits",
    "check_socket_mounts",
    "judged_templates",
    "mounts_engine_socket",
    "note_out_of_scope",
    "quantity",
]

ENGINE_SOCKET_NAMES = frozenset(
    {
        "docker.sock",
        "containerd.sock",
        "podman.sock",
        "crio.sock",
        "cri-dockerd.sock",
        "dockershim.sock",
    }
)
_RUN_DIRS = ("/run", "/var/run")
_ENGINE_FOLDERS = (
    "containerd",
    "docker",
    "podman",
    "crio",
    "cri-dockerd",
    "dockershim",
    "k3s",
    "k3s/containerd",
    "rke2",
    "rke2/containerd",
)
ENGINE_SOCKET_DIRS = frozenset(
    {
        *_RUN_DIRS,
        *(f"{run}/{folder}" for run in _RUN_DIRS for folder in _ENGINE_FOLDERS),
        "/var/lib/docker",
        "/var/lib/containerd",
        "/var/lib/rancher/k3s/agent/containerd",
        "/var/lib/rancher/rke2/agent/containerd",
    }
)
"""Host folders that hold a container-engine socket (or the engine's state) on common distributions."""
_ENGINE_FOLDER_NAMES = frozenset({"containerd", "docker", "podman", "crio", "cri-dockerd", "dockershim"})
ADDABLE_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
GOOD_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})

PSS_RULE_CONTROLS: Mapping[str, str] = {
    "runAsNonRoot": "SA-RUNTIME-006",
    "runAsUser": "SA-RUNTIME-006",
    "hostNamespaces": "SA-RUNTIME-009",
    "hostPathVolumes": "SA-RUNTIME-009",
    "hostPorts": "SA-RUNTIME-009",
    "restrictedVolumes": "SA-RUNTIME-009",
    "hostProbesAndHostLifecycle": "SA-RUNTIME-009",
}
"""The control that fails on a Pod Security Standards rule; unlisted rules are SA-RUNTIME-007's."""

PSS_CONTROL = "SA-RUNTIME-007"
_RULES = {rule.id: rule for rule in RULES}


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def judged_templates(view: KubernetesView, scope: AgentScope, evidence: Evidence) -> list[PodTemplate]:
    """Return the agent's pod specs, and record which workloads are left out and why.

    Nothing of a manifest set drops out silently: objects in other namespaces and those
    the agent selector does not match are named in an ``observe`` line.
    """
    templates = agent_templates(view, scope)
    note_out_of_scope(view, scope, evidence)
    return templates


def note_out_of_scope(view: KubernetesView, scope: AgentScope, evidence: Evidence) -> None:
    """Record which workloads are not the agent's and why, and what the files hold twice.

    Workloads left out by namespace or selector are ``observe`` lines. Objects of kinds the
    plugin does not read that hold containers (a list of mappings with ``image`` keys) in
    the agent namespace are an unobserved part: the control cannot be a plain pass while
    pods it cannot see exist. An object replaced by a later one of the same name is a
    warning (the later one is what is judged).
    """
    for line in out_of_scope(view, scope.namespace, scope.selector):
        evidence.observe("workloads not judged", line)
    for unread in unread_workloads(view, scope.namespace):
        evidence.unobserved(
            f"workloads not judged: {unread}",
            expected="every pod spec of the agent judged",
            reason="a kind whose pod specs the plugin does not read, though it holds containers",
        )
    duplicates = getattr(view, "duplicates", None)
    for line in duplicates() if callable(duplicates) else []:
        evidence.warn(
            "duplicate objects",
            expected="one object per API group, kind, namespace and name",
            actual=line,
        )


def _volumes(template: PodTemplate) -> list[Mapping[str, Any]]:
    return [_map(v) for v in template.spec.get("volumes") or []]


def _sources(volume: Mapping[str, Any]) -> list[str]:
    """The volume's source fields; a null one is absent (the API defaults such a volume to emptyDir)."""
    return [key for key, value in volume.items() if key != "name" and value is not None]


def _normal_path(path: str) -> str:
    """The host path as the kernel resolves it: ``//var/run/`` and ``/var//run`` are ``/var/run``."""
    normal = posixpath.normpath(path)
    return "/" + normal.lstrip("/") if normal.startswith("/") else normal


def _is_socket_or_its_folder(normal: str) -> bool:
    if posixpath.basename(normal) in ENGINE_SOCKET_NAMES or normal in ENGINE_SOCKET_DIRS:
        return True
    # An engine's own folder under /run (rootless ones too: /run/user/1000/podman).
    return normal.startswith(("/run/", "/var/run/")) and posixpath.basename(normal) in _ENGINE_FOLDER_NAMES


def mounts_engine_socket(path: str) -> bool:
    """Tell whether a host path exposes a container-engine socket.

    The socket itself, its folder (``/run/containerd``, ``/run/k3s/containerd``, the
    engine's state under ``/var/lib``...), or any folder above one (``/``, ``/var``):
    mounting the host's ``/`` hands the container ``/run/docker.sock`` too. The path is
    read as the kernel reads it (``//var/run`` is ``/var/run``).
    """
    if not path:
        return False
    normal = _normal_path(path)
    if _is_socket_or_its_folder(normal):
        return True
    above = "/" if normal == "/" else normal + "/"
    return any(folder.startswith(above) for folder in ENGINE_SOCKET_DIRS)


def _socket_volumes(template: PodTemplate) -> list[str]:
    found = []
    for volume in _volumes(template):
        path = str(_map(volume.get("hostPath")).get("path") or "")
        if volume.get("hostPath") is not None and mounts_engine_socket(path):
            found.append(f"volume {volume.get('name')} hostPath {path}")
    return found


def check_socket_mounts(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-RUNTIME-004: no agent pod mounts a container-engine socket from the host."""
    for template in judged_templates(view, agent_scope(policy, namespace), evidence):
        found = _socket_volumes(template)
        evidence.expect(
            f"{template.owner}: container-engine socket mounts",
            expected="none",
            actual="; ".join(found) or "none",
            ok=not found,
            location=location_of(template.source),
        )


def check_non_root(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-RUNTIME-006: every agent container runs as a non-root user and group."""
    templates = judged_templates(view, agent_scope(policy, namespace), evidence)
    for ref in agent_containers(templates):
        non_root = effective_security(ref, "runAsNonRoot")
        user = effective_security(ref, "runAsUser")
        group = effective_security(ref, "runAsGroup")
        ok = non_root is True and user != 0 and group != 0
        evidence.expect(
            f"{ref.label}: user",
            expected="runAsNonRoot=true, runAsUser unset or not 0, runAsGroup unset or not 0",
            actual=f"runAsNonRoot={_show(non_root)}, runAsUser={_show(user)}, runAsGroup={_show(group)}",
            ok=ok,
            location=location_of(ref.template.source),
        )


def _show(value: object) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _privilege_problems(ref: ContainerRef) -> list[str]:
    context = ref.security_context
    problems = []
    if context.get("privileged") is True:
        problems.append("privileged=true")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append(f"allowPrivilegeEscalation={_show(context.get('allowPrivilegeEscalation'))}")
    capabilities = _map(context.get("capabilities"))
    dropped = {str(c).upper() for c in capabilities.get("drop") or []}
    if "ALL" not in dropped:
        problems.append(f"capabilities.drop={sorted(dropped) or 'unset'}")
    added = {str(c).upper().removeprefix("CAP_") for c in capabilities.get("add") or []}
    if added - ADDABLE_CAPABILITIES:
        problems.append(f"capabilities.add={sorted(added)}")
    seccomp = _map(effective_security(ref, "seccompProfile")).get("type")
    if seccomp not in GOOD_SECCOMP:
        problems.append(f"seccompProfile.type={_show(seccomp)}")
    return problems


def check_privileges(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-RUNTIME-007: no privilege, no escalation, capabilities dropped, seccomp on.

    Also lists every restricted-level Pod Security Standards violation of the agent's
    pods: the rules this control owns fail it; the others are warnings naming the control
    that fails on them (SA-RUNTIME-006 for the user, SA-RUNTIME-009 for host access).
    """
    templates = judged_templates(view, agent_scope(policy, namespace), evidence)
    for ref in agent_containers(templates):
        problems = _privilege_problems(ref)
        evidence.expect(
            f"{ref.label}: privileges",
            expected=(
                "privileged unset/false, allowPrivilegeEscalation=false, capabilities.drop "
                "includes ALL, capabilities.add only NET_BIND_SERVICE, seccomp RuntimeDefault/Localhost"
            ),
            actual="; ".join(problems) or "as expected",
            ok=not problems,
            location=location_of(ref.template.source),
        )
    for template in templates:
        pod = {"kind": "PodTemplate", "template": {"metadata": template.metadata, "spec": template.spec}}
        violations = evaluate(pod).at(Level.RESTRICTED)
        own = [v for v in violations if PSS_RULE_CONTROLS.get(v.rule, PSS_CONTROL) == PSS_CONTROL]
        evidence.expect(
            f"{template.owner}: Pod Security Standards restricted",
            expected=f"no violation of the rules {PSS_CONTROL} owns",
            actual="; ".join(str(v) for v in own) or "none",
            ok=not own,
            location=location_of(template.source),
        )
        for violation in violations:
            control = PSS_RULE_CONTROLS.get(violation.rule, PSS_CONTROL)
            if control != PSS_CONTROL:
                evidence.warn(
                    f"{template.owner}: Pod Security Standards restricted {violation.rule}",
                    expected=f"no violation (fails {control})",
                    actual=violation.detail,
                    location=location_of(template.source),
                )


def check_read_only_root(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-RUNTIME-008: every agent container has a read-only root filesystem."""
    templates = judged_templates(view, agent_scope(policy, namespace), evidence)
    for ref in agent_containers(templates):
        value = ref.security_context.get("readOnlyRootFilesystem")
        evidence.expect(
            f"{ref.label}: readOnlyRootFilesystem",
            expected="true",
            actual=_show(value),
            ok=value is True,
            location=location_of(ref.template.source),
        )


def _host_problems(template: PodTemplate) -> tuple[list[str], list[str]]:
    """Return the host-access problems of a pod spec, and socket mounts left to SA-RUNTIME-004."""
    spec = template.spec
    problems = [f"{key}=true" for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key) is True]
    deferred = []
    for volume in _volumes(template):
        name = volume.get("name")
        if volume.get("hostPath") is not None:
            path = str(_map(volume.get("hostPath")).get("path") or "")
            if path and _is_socket_or_its_folder(_normal_path(path)):
                deferred.append(f"volume {name} hostPath {path}")
            else:
                problems.append(f"volume {name} hostPath {path}")
            continue
        sources = _sources(volume)
        if sources and not any(source in RESTRICTED_VOLUME_SOURCES for source in sources):
            problems.append(f"volume {name} of type {sources[0]}")
    for _, container in containers(spec):
        for port in container.get("ports") or []:
            host_port = _map(port).get("hostPort")
            if host_port not in (None, 0):
                problems.append(f"container {container.get('name')} hostPort {host_port}")
    probe_hosts = _RULES["hostProbesAndHostLifecycle"].check(template.metadata, spec)
    if probe_hosts:
        problems.append(probe_hosts)
    return problems, deferred


def check_host_isolation(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-RUNTIME-009: no host namespaces, hostPath, hostPort, host probes or risky volumes.

    A hostPath that mounts a container-engine socket is SA-RUNTIME-004's finding; it is
    noted here but does not fail this control twice.
    """
    for template in judged_templates(view, agent_scope(policy, namespace), evidence):
        problems, deferred = _host_problems(template)
        evidence.expect(
            f"{template.owner}: host access",
            expected=(
                "no hostNetwork/hostPID/hostIPC, hostPath, hostPort, probe or lifecycle host, "
                "and only configMap/csi/downwardAPI/emptyDir/ephemeral/image/"
                "persistentVolumeClaim/projected/secret volumes"
            ),
            actual="; ".join(problems) or "none",
            ok=not problems,
            location=location_of(template.source),
        )
        for mount in deferred:
            evidence.observe(f"{template.owner}: {mount}", "container-engine socket, see SA-RUNTIME-004")


def _limits(resources: object) -> Mapping[str, Any]:
    return _map(_map(resources).get("limits"))


_QUANTITY = re.compile(
    r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?"
)


def quantity(value: object) -> Decimal | None:
    """The value of a Kubernetes quantity (``500m``, ``2Gi``, ``1e3``), or ``None`` when it is not one."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    if isinstance(value, float):
        return Decimal(str(value))
    match = _QUANTITY.fullmatch(str(value).strip())
    if match is None:
        return None
    sign, number, suffix = match.groups()
    amount = Decimal(number) * (-1 if sign == "-" else 1)
    if not suffix:
        return amount
    if suffix[0] in "eE" and len(suffix) > 1:
        return amount * Decimal(10) ** int(suffix[1:])
    return amount * _SUFFIXES[suffix]


_SUFFIXES: Mapping[str, Decimal] = {
    **{
        suffix: Decimal(1024) ** power for power, suffix in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), 1)
    },
    **{suffix: Decimal(1000) ** power for power, suffix in enumerate(("k", "M", "G", "T", "P", "E"), 1)},
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
}


def _limit_problem(value: object) -> str | None:
    """Why a limit does not limit: unset, zero (no limit for the kubelet) or not a quantity."""
    if value is None:
        return "unset"
    amount = quantity(value)
    if amount is None:
        return "not a quantity"
    if amount <= 0:
        return "zero, which is no limit"
    return None


def _limit_range_defaults(view: KubernetesView, namespace: str) -> tuple[set[str], list[str]]:
    covered: set[str] = set()
    names = []
    for limit_range in view.list(LIMIT_RANGES, namespace):
        for item in _map(limit_range.get("spec")).get("limits") or []:
            if _map(item).get("type") == "Container":
                defaults = {
                    str(key)
                    for key, value in _map(_map(item).get("default")).items()
                    if _limit_problem(value) is None
                }
                if defaults & {"cpu", "memory"}:
                    covered |= defaults
                    names.append(str(_map(limit_range.get("metadata")).get("name")))
    return covered, names


def check_resource_limits(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-RUNTIME-010: every agent container has CPU and memory limits.

    Pod-level limits cover every container. Ephemeral containers cannot declare resources,
    so without pod-level limits they are a warning. A LimitRange of the namespace with
    default limits covers containers that set none: its admission fills them into every
    pod the controllers create (a live pod already carries them; a template does not). A
    limit of zero (``"0"``, ``0Gi``) is no limit for the kubelet, and a value that is no
    quantity limits nothing either: both fail.
    """
    scope = agent_scope(policy, namespace)
    templates = judged_templates(view, scope, evidence)
    defaults: tuple[set[str], list[str]] | None = None
    for ref in agent_containers(templates):
        pod_limits = _limits(ref.template.spec.get("resources"))
        limits = {
            key: value
            for key, value in {**_limits(ref.container.get("resources")), **pod_limits}.items()
            if value is not None
        }
        for key, value in _limits(ref.container.get("resources")).items():
            if _limit_problem(pod_limits.get(key)) and not _limit_problem(value):
                limits[key] = value  # a pod-level limit that limits nothing leaves the container's
        problems = {key: _limit_problem(limits.get(key)) for key in ("cpu", "memory")}
        missing = [key for key, problem in problems.items() if problem]
        actual = (
            ", ".join(
                f"{key}={limits[key]}" + (f" ({problems[key]})" if problems[key] else "")
                for key in ("cpu", "memory")
                if key in limits
            )
            or "none"
        )
        if missing:
            if defaults is None:
                defaults = _limit_range_defaults(view, scope.namespace)
            unset = {key for key in missing if problems[key] == "unset"}
            if unset == set(missing) and not unset - defaults[0]:
                actual += f" (defaults from LimitRange {', '.join(defaults[1])})"
                missing = []
        if ref.kind == "ephemeralContainer" and missing:
            evidence.warn(
                f"{ref.label}: limits",
                expected="pod-level limits (ephemeral containers cannot set their own)",
                actual=actual,
                location=location_of(ref.template.source),
            )
            continue
        evidence.expect(
            f"{ref.label}: limits",
            expected="limits.cpu and limits.memory set",
            actual=actual,
            ok=not missing,
            location=location_of(ref.template.source),
        )
