"""The cluster itself: SA-RUNTIME-001 (versions), SA-SECRET-005 (encryption), SA-LOG-001 (audit).

The API server's flags are read from its static pod in ``kube-system`` where the cluster
shows it (kubeadm and other self-managed control planes). Managed control planes (EKS,
AKS, GKE) and K3s do not: the checks then report "not observable", never a pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.resources import NODES, PODS
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.kubernetes.workloads import containers
from pytest_secagent.outcomes import EvidenceUnavailable, not_applicable, not_observable
from pytest_secagent.policy.model import Policy

__all__ = [
    "apiserver_flags",
    "check_api_audit_logging",
    "check_cluster_versions",
    "check_secrets_encryption",
    "parse_minor_version",
]

CONTROL_PLANE_NAMESPACE = "kube-system"
_VERSION = re.compile(r"v?(\d+)\.(\d+)")


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_minor_version(text: str) -> tuple[int, int] | None:
    """Return ``(major, minor)`` of ``v1.28.3-eks-1``, ``1.24`` and the like."""
    match = _VERSION.search(text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _server_version(document: Mapping[str, Any]) -> tuple[str, tuple[int, int] | None]:
    git = str(document.get("gitVersion", ""))
    major = re.sub(r"\D", "", str(document.get("major", "")))
    minor = re.sub(r"\D", "", str(document.get("minor", "")))
    if major and minor:
        return git or f"{major}.{minor}", (int(major), int(minor))
    return git, parse_minor_version(git)


def check_cluster_versions(view: KubernetesView, policy: Policy, evidence: Evidence) -> None:
    """SA-RUNTIME-001: control plane and every kubelet at least the policy's minimum.

    Records each node's container runtime, OS image and kernel as well.
    """
    if not view.live:
        not_applicable("rendered manifests carry no cluster version")
    minimum_text = policy.versions.kubernetes_min
    minimum = parse_minor_version(minimum_text)
    if minimum is None:
        raise EvidenceUnavailable(f"versions.kubernetes_min {minimum_text!r} is not a Kubernetes version")
    document = view.server_version()
    if document is None:
        raise EvidenceUnavailable(f"{view.target_id} returned no /version document")
    shown, version = _server_version(document)
    evidence.expect(
        "control plane version",
        expected=f">= {minimum_text}",
        actual=shown or "unknown",
        ok=version is not None and version >= minimum,
    )
    nodes = view.list(NODES)
    if not nodes:
        raise EvidenceUnavailable(f"no nodes visible on {view.target_id}")
    for node in nodes:
        name = str(_map(node.get("metadata")).get("name", ""))
        info = _map(_map(node.get("status")).get("nodeInfo"))
        kubelet = str(info.get("kubeletVersion", ""))
        parsed = parse_minor_version(kubelet)
        evidence.expect(
            f"node {name} kubelet version",
            expected=f">= {minimum_text}",
            actual=kubelet or "unknown",
            ok=parsed is not None and parsed >= minimum,
        )
        runtime = [str(info.get(key, "?")) for key in ("containerRuntimeVersion", "osImage", "kernelVersion")]
        evidence.observe(f"node {name} runtime", "; ".join(runtime))


def apiserver_flags(pod: Mapping[str, Any]) -> dict[str, str]:
    """Return the ``--flag=value`` (or ``--flag value``) options of a kube-apiserver pod."""
    flags: dict[str, str] = {}
    for _, container in containers(_map(pod.get("spec"))):
        words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
        for index, word in enumerate(words):
            if not word.startswith("--"):
                continue
            key, sep, value = word[2:].partition("=")
            if not sep and index + 1 < len(words) and not words[index + 1].startswith("--"):
                value = words[index + 1]
            flags[key] = value
    return flags


def _apiserver_pods(view: KubernetesView) -> list[dict[str, Any]]:
    if not view.live:
        not_applicable("API-server flags are read from a live cluster")
    pods = [
        pod
        for pod in view.list(PODS, CONTROL_PLANE_NAMESPACE)
        if _map(_map(pod.get("metadata")).get("labels")).get("component") == "kube-apiserver"
        or str(_map(pod.get("metadata")).get("name", "")).startswith("kube-apiserver-")
    ]
    if not pods:
        not_observable(
            "no kube-apiserver pod in kube-system: the control plane is managed (EKS, AKS, GKE) "
            "or embedded (K3s); check its settings with the provider's API"
        )
    return pods


def _name(pod: Mapping[str, Any]) -> str:
    return str(_map(pod.get("metadata")).get("name", ""))


def check_secrets_encryption(view: KubernetesView, policy: Policy, evidence: Evidence) -> None:
    """SA-SECRET-005: the API server encrypts Secrets at rest (``--encryption-provider-config``).

    The configuration file itself is on the control-plane host; its provider order is
    checked by the host controls where that host is a target.
    """
    for pod in _apiserver_pods(view):
        flags = apiserver_flags(pod)
        config = flags.get("encryption-provider-config")
        evidence.expect(
            f"{_name(pod)} --encryption-provider-config",
            expected="set",
            actual=config or "unset",
            ok=bool(config),
        )


def _at_least(evidence: Evidence, pod: str, flags: Mapping[str, str], flag: str, minimum: int) -> None:
    value = flags.get(flag)
    ok = value is not None and value.isdigit() and int(value) >= minimum
    evidence.expect(f"{pod} --{flag}", expected=f">= {minimum}", actual=value or "unset", ok=ok)


def check_api_audit_logging(view: KubernetesView, policy: Policy, evidence: Evidence) -> None:
    """SA-LOG-001: API audit logging on, with the retention of the policy (CIS 1.2.x).

    Needs ``--audit-policy-file`` and ``--audit-log-path`` or ``--audit-webhook-config-file``;
    a log file needs ``--audit-log-maxage``, ``-maxbackup`` and ``-maxsize`` of at least
    the policy's values.
    """
    settings = policy.logging
    for pod in _apiserver_pods(view):
        name = _name(pod)
        flags = apiserver_flags(pod)
        audit_policy = flags.get("audit-policy-file")
        evidence.expect(
            f"{name} --audit-policy-file",
            expected="set",
            actual=audit_policy or "unset",
            ok=bool(audit_policy),
        )
        path, webhook = flags.get("audit-log-path"), flags.get("audit-webhook-config-file")
        evidence.expect(
            f"{name} audit backend",
            expected="--audit-log-path or --audit-webhook-config-file",
            actual=", ".join(f"{k}={v}" for k, v in (("log", path), ("webhook", webhook)) if v) or "none",
            ok=bool(path or webhook),
        )
        if path and path != "-":
            _at_least(evidence, name, flags, "audit-log-maxage", settings.k8s_audit_maxage)
            _at_least(evidence, name, flags, "audit-log-maxbackup", settings.k8s_audit_maxbackup)
            _at_least(evidence, name, flags, "audit-log-maxsize", settings.k8s_audit_maxsize)
        elif path == "-":
            evidence.warn(f"{name} --audit-log-path", expected="a file or a webhook", actual="- (stdout)")
