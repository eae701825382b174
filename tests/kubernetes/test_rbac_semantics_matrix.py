"""Mutation matrix of the RBAC fields SA-IAM-001 reads, in both views.

Starting from the hardened scenario (a namespaced Role and its RoleBinding), each case
changes one field or adds one binding: absent, null, ``""``, ``[]``, ``{}``, another
letter case, the legacy ``rbac.authorization.k8s.io/v1beta1`` spelling, the other forms
of the same subject, an aggregated role in place of a plain one, and every grant the
access reviews deny. See :mod:`tests.kubernetes.test_netpol_semantics_matrix` for the
runner and the verdicts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_secagent.kubernetes.view import KubernetesView
from tests.kubernetes.test_netpol_semantics_matrix import (
    KEEP,
    VIEWS,
    Case,
    Mutation,
    add,
    both,
    case_counts,
    edit,
    open_view,
    remove,
    run_case,
)

__all__ = ["open_view"]  # the fixture, re-exported for this module's tests

IAM = "SA-IAM-001"
NS = "atlan-agent"
ROLE = ("Role", "atlan-agent")
BINDING = ("RoleBinding", "atlan-agent")
SA = {"kind": "ServiceAccount", "name": "atlan-agent", "namespace": NS}
ALL = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
CREATE_PODS = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]
HARDENED_RULES = [
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["atlan-agent-config"],
        "verbs": ["get", "watch"],
    },
    {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["atlan-agent-registry"], "verbs": ["get"]},
]


def cluster_role(name: str, rules: list[Any] | None = None, *, labels: dict[str, str] | None = None,
                 aggregate: list[Any] | None = None) -> dict[str, Any]:
    """A ClusterRole with ``rules``, ``labels`` and (optionally) an aggregationRule."""
    role: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels or {}},
    }
    if rules is not None:
        role["rules"] = rules
    if aggregate is not None:
        role["aggregationRule"] = {"clusterRoleSelectors": aggregate}
    return role


def binding(kind: str, name: str, role: str, *subjects: dict[str, Any], namespace: str | None = NS,
            role_kind: str = "ClusterRole") -> dict[str, Any]:
    """A RoleBinding (in ``namespace``) or ClusterRoleBinding of ``role`` to ``subjects``."""
    metadata: dict[str, Any] = {"name": name}
    if kind == "RoleBinding":
        metadata["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": list(subjects or [SA]),
    }


def _role(*path: str | int, value: Any = None, delete: bool = False) -> Mutation:
    return edit(*ROLE, *path, value=value, delete=delete)


def _binding(*path: str | int, value: Any = None, delete: bool = False) -> Mutation:
    return edit(*BINDING, *path, value=value, delete=delete)


def grant(rules: list[Any], *subjects: dict[str, Any], kind: str = "ClusterRoleBinding",
          namespace: str | None = NS) -> Mutation:
    """Add a ClusterRole with ``rules`` and a binding of it to ``subjects`` (the agent by default)."""
    return add(cluster_role("extra", rules), binding(kind, "extra", "extra", *subjects, namespace=namespace))


AGGREGATED = cluster_role("agent-aggregate", aggregate=[{"matchLabels": {"atlan.com/aggregate-to-agent": "true"}}])
PART = {"atlan.com/aggregate-to-agent": "true"}
AS_AGGREGATE = both(
    remove(*ROLE),
    add(AGGREGATED, cluster_role("agent-part", HARDENED_RULES, labels=PART)),
    _binding("roleRef", "kind", value="ClusterRole"),
    _binding("roleRef", "name", value="agent-aggregate"),
)
"""The hardened Role rewritten as an aggregated ClusterRole bound in the agent namespace."""

RBAC_CASES = [
    # meaning-preserving
    Case(IAM, "role-legacy-apiVersion", _role("apiVersion", value="rbac.authorization.k8s.io/v1beta1"), KEEP),
    Case(IAM, "binding-legacy-apiVersion", _binding("apiVersion", value="rbac.authorization.k8s.io/v1beta1"), KEEP),
    Case(IAM, "binding-namespace-absent", _binding("metadata", "namespace", delete=True), KEEP),
    Case(IAM, "binding-namespace-null", _binding("metadata", "namespace", value=None), KEEP),
    Case(IAM, "binding-namespace-empty", _binding("metadata", "namespace", value=""), KEEP),
    Case(IAM, "role-namespace-null", _role("metadata", "namespace", value=None), KEEP),
    Case(IAM, "role-namespace-empty", _role("metadata", "namespace", value=""), KEEP),
    Case(IAM, "subject-namespace-absent", _binding("subjects", 0, "namespace", delete=True), KEEP),
    Case(IAM, "subject-apiGroup-empty", _binding("subjects", 0, "apiGroup", value=""), KEEP),
    Case(IAM, "subject-as-user", _binding("subjects", 0, value={"kind": "User", "name": f"system:serviceaccount:{NS}:atlan-agent"}), KEEP),
    Case(IAM, "role-as-cluster-role-in-namespace", both(remove(*ROLE), add(cluster_role("atlan-agent", HARDENED_RULES)), _binding("roleRef", "kind", value="ClusterRole")), KEEP),
    Case(IAM, "role-as-aggregated-cluster-role", AS_AGGREGATE, KEEP),
    Case(IAM, "resourceNames-null-on-configmaps", _role("rules", 0, "resourceNames", value=None), KEEP),
    Case(IAM, "verbs-other-case-grants-nothing", _role("rules", 0, "verbs", value=["Get", "Watch"]), KEEP),
    Case(IAM, "create-pods-in-the-agent-namespace", grant(CREATE_PODS, kind="RoleBinding"), KEEP),
    Case(IAM, "non-resource-url-through-a-role-binding", grant([{"nonResourceURLs": ["*"], "verbs": ["get"]}], kind="RoleBinding"), KEEP),
    Case(IAM, "create-pods-for-another-identity", grant(CREATE_PODS, {"kind": "ServiceAccount", "name": "other", "namespace": NS}), KEEP),
    Case(IAM, "secrets-in-other-api-group", grant([{"apiGroups": ["apps"], "resources": ["secrets"], "verbs": ["list"]}]), KEEP),
    # weakening
    Case(IAM, "verbs-wildcard", _role("rules", 0, "verbs", value=["*"]), "fail"),
    Case(IAM, "resources-wildcard", _role("rules", 0, "resources", value=["*"]), "fail"),
    Case(IAM, "resources-subresource-wildcard", _role("rules", 0, "resources", value=["*/exec"]), "fail"),
    Case(IAM, "apiGroups-wildcard", _role("rules", 0, "apiGroups", value=["*"]), "fail"),
    Case(IAM, "verbs-escalate", _role("rules", 0, "verbs", value=["escalate"]), "fail"),
    Case(IAM, "verbs-bind", _role("rules", 0, "verbs", value=["get", "bind"]), "fail"),
    Case(IAM, "verbs-impersonate", _role("rules", 0, "verbs", value=["impersonate"]), "fail"),
    Case(IAM, "create-serviceaccount-tokens", _role("rules", 0, value={"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}), "fail"),
    Case(IAM, "binding-to-edit", _binding("roleRef", value={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}), "fail"),
    Case(IAM, "cluster-binding-to-cluster-admin", add(binding("ClusterRoleBinding", "root", "cluster-admin")), "fail"),
    Case(IAM, "cluster-binding-to-a-role-without-rules", grant([]), KEEP),
    Case(IAM, "cluster-binding-to-admin", add(binding("ClusterRoleBinding", "adm", "admin")), "fail"),
    Case(IAM, "cluster-wide-create-pods", grant(CREATE_PODS), "fail"),
    Case(IAM, "cluster-wide-create-pods-to-all-service-accounts", grant(CREATE_PODS, {"kind": "Group", "name": "system:serviceaccounts"}), "fail"),
    Case(IAM, "cluster-wide-create-pods-to-the-namespace-group", grant(CREATE_PODS, {"kind": "Group", "name": f"system:serviceaccounts:{NS}"}), "fail"),
    Case(IAM, "cluster-wide-create-pods-to-authenticated", grant(CREATE_PODS, {"kind": "Group", "name": "system:authenticated"}), "fail"),
    Case(IAM, "cluster-wide-create-pods-to-the-user-name", grant(CREATE_PODS, {"kind": "User", "name": f"system:serviceaccount:{NS}:atlan-agent"}), "fail"),
    Case(IAM, "create-deployments-in-kube-system", grant([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create"]}], kind="RoleBinding", namespace="kube-system"), "fail"),
    Case(IAM, "create-cronjobs-cluster-wide", grant([{"apiGroups": ["batch"], "resources": ["cronjobs", "jobs"], "verbs": ["create"]}]), "fail"),
    Case(IAM, "create-pods-exec-cluster-wide", grant([{"apiGroups": [""], "resources": ["pods/exec", "pods/attach"], "verbs": ["create"]}]), "fail"),
    Case(IAM, "create-replicationcontrollers-in-default", grant([{"apiGroups": [""], "resources": ["replicationcontrollers"], "verbs": ["create"]}], kind="RoleBinding", namespace="default"), "fail"),
    Case(IAM, "list-secrets-cluster-wide", grant([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]), "fail"),
    Case(IAM, "nodes-proxy", grant([{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}]), "fail"),
    Case(IAM, "aggregated-role-selecting-everything", both(AS_AGGREGATE, add(cluster_role("anything", ALL, labels=PART))), "fail"),
    Case(IAM, "aggregated-role-transitively", both(AS_AGGREGATE, add(
        cluster_role("middle", aggregate=[{"matchLabels": {"tier": "inner"}}], labels=PART),
        cluster_role("inner", ALL, labels={"tier": "inner"}),
    )), "fail"),
    Case(IAM, "aggregated-role-by-expression", both(AS_AGGREGATE, edit("ClusterRole", "agent-aggregate", "aggregationRule", "clusterRoleSelectors", value=[{"matchExpressions": [{"key": "x", "operator": "Exists"}]}]), add(cluster_role("anything", ALL, labels={"x": ""}))), "fail"),
    # rejected by the API server, or not visible: never a pass
    Case(IAM, "verbs-null", _role("rules", 0, "verbs", value=None), "error"),
    Case(IAM, "verbs-empty-list", _role("rules", 0, "verbs", value=[]), "error"),
    Case(IAM, "verbs-string", _role("rules", 0, "verbs", value="get"), "error"),
    Case(IAM, "apiGroups-absent", _role("rules", 0, "apiGroups", delete=True), "error"),
    Case(IAM, "resources-empty-list", _role("rules", 0, "resources", value=[]), "error"),
    Case(IAM, "rules-mapping", _role("rules", value={}), "error"),
    Case(IAM, "roleRef-kind-lower-case", _binding("roleRef", "kind", value="role"), "error"),
    Case(IAM, "roleRef-absent", _binding("roleRef", delete=True), "error"),
    Case(IAM, "subject-kind-lower-case", _binding("subjects", 0, "kind", value="serviceaccount"), "error"),
    Case(IAM, "aggregationRule-empty", both(AS_AGGREGATE, edit("ClusterRole", "agent-aggregate", "aggregationRule", value={})), "error"),
    Case(IAM, "aggregationRule-bad-operator", both(AS_AGGREGATE, edit("ClusterRole", "agent-aggregate", "aggregationRule", "clusterRoleSelectors", value=[{"matchExpressions": [{"key": "x", "operator": "exists"}]}])), "error"),
    # A role that is not there: the manifests cannot show it; the live API's denials carry an error.
    Case(IAM, "role-absent", remove(*ROLE), "partial", {"live": "error"}),
    # Aggregation selecting nothing: rendered, the aggregated roles may live in the cluster; live, it grants nothing.
    Case(IAM, "aggregation-selects-nothing", both(AS_AGGREGATE, remove("ClusterRole", "agent-part")), "partial", {"live": KEEP}),
    Case(IAM, "no-binding", remove(*BINDING), "partial", {"live": KEEP}),
]


@pytest.mark.parametrize("view_kind", VIEWS)
@pytest.mark.parametrize("case", RBAC_CASES, ids=[c.name for c in RBAC_CASES])
def test_rbac_mutation(case: Case, view_kind: str, open_view: Callable[..., KubernetesView]) -> None:
    run_case(case, view_kind, open_view)


def test_rbac_matrix_size(record_property: Callable[[str, object], None]) -> None:
    """The size of the matrix is reported (cases x views)."""
    counts = case_counts(RBAC_CASES)
    record_property("cases per control", counts)
    assert counts == {IAM: 2 * len(RBAC_CASES)}
    assert len(RBAC_CASES) >= 50
