"""Kubernetes RBAC of the agent's identities: SA-IAM-001.

Static analysis reads every RoleBinding and ClusterRoleBinding that names an agent
service account (or a group it belongs to) and the rules of the roles they grant; on a
live cluster the API is also asked, with access reviews, the questions that matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import AgentScope, agent_scope, agent_templates
from pytest_secagent.kubernetes.resources import (
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    ROLE_BINDINGS,
    ROLES,
)
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.policy.model import Policy

__all__ = ["ADMIN_ROLES", "Subject", "agent_subjects", "check_rbac", "rule_problems"]

ADMIN_ROLES = frozenset({"cluster-admin", "admin", "edit"})
DANGEROUS_VERBS = frozenset({"escalate", "bind", "impersonate"})
READ_VERBS = frozenset({"get", "list", "watch", "*"})
PROBE_USER = "secagent:access-review-probe"
OTHER_NAMESPACE = "kube-system"


@dataclass(frozen=True)
class Subject:
    """An agent service account."""

    namespace: str
    name: str

    @property
    def user(self) -> str:
        """The user name the API server gives the service account."""
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> list[str]:
        """The groups the API server puts the service account in."""
        return ["system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated"]

    def __str__(self) -> str:
        return f"ServiceAccount {self.namespace}/{self.name}"


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: object) -> set[str]:
    return {str(v) for v in value} if isinstance(value, list) else set()


def agent_subjects(view: KubernetesView, policy: Policy, scope: AgentScope) -> list[Subject]:
    """Return the agent's service accounts: declared in the policy, else those its pods use."""
    declared = policy.agent.service_accounts
    if declared:
        subjects = []
        for item in declared:
            namespace, _, name = item.rpartition("/")
            subjects.append(Subject(namespace or scope.namespace, name))
        return subjects
    templates = agent_templates(view, scope)
    names = sorted({t.service_account for t in templates})
    return [Subject(scope.namespace, name) for name in names]


def _binds(binding: Mapping[str, Any], subject: Subject) -> bool:
    binding_namespace = _map(binding.get("metadata")).get("namespace")
    for item in binding.get("subjects") or []:
        entry = _map(item)
        kind, name = entry.get("kind"), entry.get("name")
        if kind == "ServiceAccount":
            namespace = entry.get("namespace") or binding_namespace
            if name == subject.name and namespace == subject.namespace:
                return True
        elif kind == "Group" and name in subject.groups:
            return True
        elif kind == "User" and name == subject.user:
            # A binding may name the service account by its user name.
            return True
    return False


def rule_problems(rule: Mapping[str, Any], cluster_wide: bool) -> tuple[list[str], list[str]]:
    """Return the failures and the warnings of one PolicyRule.

    ``cluster_wide`` says the rule is granted by a ClusterRoleBinding.
    """
    verbs, resources = _strings(rule.get("verbs")), _strings(rule.get("resources"))
    groups, urls = _strings(rule.get("apiGroups")), _strings(rule.get("nonResourceURLs"))
    failures, warnings = [], []
    wildcards = [
        f
        for f, values in (
            ("verbs", verbs),
            ("resources", resources),
            ("apiGroups", groups),
            ("nonResourceURLs", urls),
        )
        if "*" in values
    ]
    if wildcards:
        failures.append(f"wildcard in {', '.join(wildcards)}")
    if verbs & DANGEROUS_VERBS:
        failures.append(f"verbs {', '.join(sorted(verbs & DANGEROUS_VERBS))}")
    if "nodes/proxy" in resources:
        failures.append("nodes/proxy")
    if "serviceaccounts/token" in resources and verbs & {"create", "*"}:
        failures.append("create serviceaccounts/token")
    if "secrets" in resources and verbs & READ_VERBS:
        if cluster_wide:
            failures.append(f"{'/'.join(sorted(verbs & READ_VERBS))} secrets cluster-wide")
        elif not rule.get("resourceNames"):
            warnings.append(f"{'/'.join(sorted(verbs & READ_VERBS))} every Secret of the namespace")
    return failures, warnings


def _role_rules(
    view: KubernetesView, binding: Mapping[str, Any], roles: dict[tuple[str | None, str], Mapping[str, Any]]
) -> tuple[list[Mapping[str, Any]] | None, str]:
    ref = _map(binding.get("roleRef"))
    kind, name = str(ref.get("kind", "")), str(ref.get("name", ""))
    namespace = _map(binding.get("metadata")).get("namespace") if kind == "Role" else None
    role = roles.get((namespace, name)) if kind == "Role" else roles.get((None, name))
    label = f"{kind}/{name}"
    if role is None:
        return None, label
    if role.get("aggregationRule") and not role.get("rules"):
        return None, label
    return [_map(r) for r in role.get("rules") or []], label


def check_rbac(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-IAM-001: the agent's RBAC is least-privilege.

    Fails on a binding to cluster-admin/admin/edit, a wildcard, escalate/bind/impersonate,
    nodes/proxy, serviceaccounts/token creation or cluster-wide Secret reading; warns on
    namespace-wide Secret reading without resourceNames. Live clusters are also asked,
    with access reviews, whether each identity can list Secrets cluster-wide, create pods
    outside its namespace or create ClusterRoleBindings, and whether every authenticated
    user can read Secrets.
    """
    scope = agent_scope(policy, namespace)
    subjects = agent_subjects(view, policy, scope)
    evidence.observe("agent identities", ", ".join(str(s) for s in subjects))
    roles: dict[tuple[str | None, str], Mapping[str, Any]] = {}
    for role in view.list(ROLES, None):
        meta = _map(role.get("metadata"))
        roles[(meta.get("namespace"), str(meta.get("name")))] = role
    for role in view.list(CLUSTER_ROLES, None):
        roles[(None, str(_map(role.get("metadata")).get("name")))] = role
    failures: list[str] = []
    bindings = [(b, False) for b in view.list(ROLE_BINDINGS, None)]
    bindings += [(b, True) for b in view.list(CLUSTER_ROLE_BINDINGS, None)]
    checked = 0
    for binding, cluster_wide in bindings:
        bound = [s for s in subjects if _binds(binding, s)]
        if not bound:
            continue
        checked += 1
        meta = _map(binding.get("metadata"))
        where = f" in {meta.get('namespace')}" if not cluster_wide else ""
        name = f"{'ClusterRoleBinding' if cluster_wide else 'RoleBinding'}/{meta.get('name')}{where}"
        ref_name = str(_map(binding.get("roleRef")).get("name", ""))
        ref_kind = _map(binding.get("roleRef")).get("kind")
        rules, label = _role_rules(view, binding, roles)
        evidence.observe(f"{name}", f"grants {label} to {', '.join(str(s) for s in bound)}")
        if ref_kind == "ClusterRole" and ref_name in ADMIN_ROLES:
            failures.append(f"{name} grants {label}")
            continue
        if rules is None:
            if view.live:
                evidence.observe(f"{name}: {label}", "role not found or unaggregated: grants nothing")
            else:
                evidence.warn(
                    f"{name}: {label}",
                    expected="the role's rules in the manifests",
                    actual="not rendered; its rules are checked on the live cluster only",
                )
            continue
        for rule in rules:
            found, warned = rule_problems(rule, cluster_wide)
            failures.extend(f"{name} ({label}): {f}" for f in found)
            for warning in warned:
                evidence.warn(
                    f"{name} ({label})", expected="Secret access limited by resourceNames", actual=warning
                )
    evidence.expect(
        "RBAC bindings of the agent identities",
        expected=(
            "no cluster-admin/admin/edit, wildcard, escalate/bind/impersonate, nodes/proxy, "
            "serviceaccounts/token creation or cluster-wide Secret reading"
        ),
        actual="; ".join(failures) or f"none in {checked} binding(s)",
        ok=not failures,
    )
    if view.live:
        _access_reviews(view, subjects, scope, evidence)


def _deny(
    view: KubernetesView,
    evidence: Evidence,
    who: str,
    user: str,
    groups: list[str],
    verb: str,
    resource: str,
    namespace: str | None,
) -> None:
    allowed = view.can_i(user, groups, verb, resource, namespace)
    if allowed is None:
        return
    where = f"in namespace {namespace}" if namespace else "cluster-wide"
    evidence.expect(
        f"access review: {who} {verb} {resource} {where}",
        expected="denied",
        actual="allowed" if allowed else "denied",
        ok=not allowed,
    )


def _access_reviews(
    view: KubernetesView, subjects: list[Subject], scope: AgentScope, evidence: Evidence
) -> None:
    other = OTHER_NAMESPACE if scope.namespace != OTHER_NAMESPACE else "default"
    for subject in subjects:
        who, user, groups = str(subject), subject.user, subject.groups
        _deny(view, evidence, who, user, groups, "list", "secrets", None)
        _deny(view, evidence, who, user, groups, "create", "pods", other)
        _deny(view, evidence, who, user, groups, "create", "clusterrolebindings", None)
    for verb in ("get", "list", "watch"):
        _deny(
            view,
            evidence,
            "system:authenticated",
            PROBE_USER,
            ["system:authenticated"],
            verb,
            "secrets",
            None,
        )
