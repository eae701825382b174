"""The agent namespace: SA-RUNTIME-005 (Pod Security Admission) and SA-SEG-001 (dedicated)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import agent_scope
from pytest_secagent.kubernetes.resources import NAMESPACES
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.kubernetes.workloads import labels_match, pod_templates
from pytest_secagent.outcomes import EvidenceUnavailable, not_applicable
from pytest_secagent.policy.model import Policy

__all__ = ["PSA_PREFIX", "SHARED_NAMESPACES", "check_dedicated_namespace", "check_pod_security_admission"]

PSA_PREFIX = "pod-security.kubernetes.io/"
SHARED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def check_pod_security_admission(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-RUNTIME-005: the agent namespace carries ``pod-security.kubernetes.io/enforce=restricted``.

    Rendered manifests that do not contain the Namespace are not applicable (the chart does
    not own it); on a live cluster a missing namespace is an error.
    """
    scope = agent_scope(policy, namespace)
    found = [ns for ns in view.list(NAMESPACES) if _map(ns.get("metadata")).get("name") == scope.namespace]
    if not found:
        if view.live:
            raise EvidenceUnavailable(f"namespace {scope.namespace} not found on {view.target_id}")
        not_applicable(f"the manifests do not define the Namespace {scope.namespace}")
    labels = {str(k): str(v) for k, v in _map(_map(found[0].get("metadata")).get("labels")).items()}
    for key in sorted(labels):
        if key.startswith(PSA_PREFIX) and key != PSA_PREFIX + "enforce":
            evidence.observe(f"namespace {scope.namespace} label {key}", labels[key])
    enforce = labels.get(PSA_PREFIX + "enforce")
    evidence.expect(
        f"namespace {scope.namespace} label {PSA_PREFIX}enforce",
        expected="restricted",
        actual=enforce if enforce is not None else "unset",
        ok=enforce == "restricted",
    )


def check_dedicated_namespace(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-SEG-001: the agent has its own namespace, running nothing but the agent.

    Every pod in the namespace must match the agent selector; without a selector in the
    policy every workload there counts as the agent's, which is recorded as a warning.
    """
    scope = agent_scope(policy, namespace)
    evidence.expect(
        "agent namespace",
        expected=f"a dedicated namespace (not {', '.join(sorted(SHARED_NAMESPACES))})",
        actual=scope.namespace,
        ok=scope.namespace not in SHARED_NAMESPACES,
    )
    templates = list(pod_templates(view, scope.namespace))
    if not templates:
        raise EvidenceUnavailable(f"no pods found in namespace {scope.namespace} on {view.target_id}")
    if not scope.selector:
        evidence.warn(
            "agent.selector",
            expected="a label selector that tells agent pods from others",
            actual="empty: every workload in the namespace counts as the agent's",
        )
    strangers = [str(t.owner) for t in templates if not labels_match(t.labels, scope.selector)]
    evidence.expect(
        f"workloads in {scope.namespace} that are not the agent's ({scope.describe()})",
        expected="none",
        actual=", ".join(strangers) or f"none of {len(templates)}",
        ok=not strangers,
    )
    if not view.live:
        evidence.unobserved(
            f"workloads in {scope.namespace} from outside these files",
            expected="none",
            reason="rendered files show only their own objects; whatever else runs in the namespace "
            "is only visible on a live cluster",
        )
