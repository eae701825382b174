"""Who may call the test API server, and what they may do.

Callers are bearer tokens mapped to :class:`User` objects with explicit rules (the
authorizer of the test server). Access reviews about anyone else (a service account of
the scenario, say) are answered from the scenario's own RBAC objects, as the real RBAC
authorizer would.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.kubernetes.cluster import FakeCluster

KubeObject = dict[str, Any]


@dataclass(frozen=True)
class Rule:
    """Allowed ``verbs`` on ``resources`` in ``namespaces`` (None: every namespace and cluster scope).

    Resources are ``pods``, ``apps/deployments``, ``authorization.k8s.io/subjectaccessreviews``
    or ``*``; verbs are API verbs (``get``, ``list``, ``watch``, ``create``...) or ``*``.
    """

    verbs: tuple[str, ...]
    resources: tuple[str, ...] = ("*",)
    namespaces: tuple[str, ...] | None = None

    def allows(self, verb: str, group: str, plural: str, namespace: str | None) -> bool:
        """Whether this rule allows the request."""
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        name = f"{group}/{plural}" if group else plural
        if "*" not in self.resources and name not in self.resources:
            return False
        return self.namespaces is None or (namespace is not None and namespace in self.namespaces)


READ_EVERYTHING = (
    Rule(("get", "list", "watch")),
    Rule(("create",), ("authorization.k8s.io/subjectaccessreviews",)),
)
"""A read-only auditor: get/list/watch everything, and access reviews."""

CLUSTER_ADMIN = (Rule(("*",)),)
"""Everything (the server still refuses every write with 405)."""


@dataclass(frozen=True)
class User:
    """A caller of the test server."""

    name: str
    rules: tuple[Rule, ...]
    groups: tuple[str, ...] = ("system:authenticated",)
    token: str = field(default_factory=lambda: f"secagent-test-{secrets.token_hex(16)}")

    def allows(self, verb: str, group: str, plural: str, namespace: str | None) -> bool:
        """Whether any rule allows the request."""
        return any(rule.allows(verb, group, plural, namespace) for rule in self.rules)


def make_users(spec: dict[str, Sequence[Rule]] | Iterable[User]) -> dict[str, User]:
    """Users by token, from ``{name: rules}`` or ready :class:`User` objects."""
    users = (
        [User(name, tuple(rules)) for name, rules in spec.items()] if isinstance(spec, dict) else list(spec)
    )
    return {user.token: user for user in users}


# -- RBAC of the scenario, for SubjectAccessReview about other identities -------------------


def _subject_matches(subject: KubeObject, user: str, groups: Sequence[str], namespace: str) -> bool:
    kind = subject.get("kind")
    name = subject.get("name")
    if kind == "User":
        return bool(name == user)
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        return user == f"system:serviceaccount:{sa_namespace}:{name}"
    return False


def _rule_matches(
    rule: KubeObject, verb: str, group: str, resource: str, subresource: str, name: str
) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and verb not in verbs:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and group not in groups:
        return False
    resources = rule.get("resources") or []
    wanted = f"{resource}/{subresource}" if subresource else resource
    if not ("*" in resources or wanted in resources or (subresource and f"*/{subresource}" in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or name in names


def _cluster_role_rules(cluster: FakeCluster, role: KubeObject) -> list[KubeObject]:
    rules = list(role.get("rules") or [])
    aggregation = role.get("aggregationRule") or {}
    for selector in aggregation.get("clusterRoleSelectors") or []:
        wanted = selector.get("matchLabels") or {}
        for other in cluster.objects("rbac.authorization.k8s.io", "clusterroles"):
            labels = other["metadata"].get("labels") or {}
            if other is not role and all(labels.get(k) == v for k, v in wanted.items()):
                rules.extend(other.get("rules") or [])
    return rules


def rbac_allows(cluster: FakeCluster, user: str, groups: Sequence[str], attributes: KubeObject) -> bool:
    """Answer a SubjectAccessReview's ``resourceAttributes`` from the scenario's RBAC."""
    return rbac_review(cluster, user, groups, attributes)[0]


def rbac_review(
    cluster: FakeCluster, user: str, groups: Sequence[str], attributes: KubeObject
) -> tuple[bool, list[str]]:
    """Like :func:`rbac_allows`, with the evaluation errors the RBAC authorizer reports.

    As in kube-apiserver, a binding of the subject whose role does not exist is an error
    that the review's ``status.evaluationError`` carries.
    """
    if "system:masters" in groups:
        return True, []
    all_groups = [*groups, "system:authenticated"]
    if user.startswith("system:serviceaccount:"):
        sa_namespace = user.split(":")[2]
        all_groups += ["system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}"]
    verb = str(attributes.get("verb", ""))
    group = str(attributes.get("group", ""))
    resource = str(attributes.get("resource", ""))
    subresource = str(attributes.get("subresource", ""))
    name = str(attributes.get("name", ""))
    namespace = str(attributes.get("namespace", ""))

    errors: list[str] = []

    def role_rules(reference: KubeObject, binding_namespace: str) -> list[KubeObject]:
        kind, role_name = reference.get("kind"), reference.get("name")
        if kind == "ClusterRole":
            role = cluster.get("rbac.authorization.k8s.io", "clusterroles", "", str(role_name))
            if role is None:
                errors.append(f'clusterrole.rbac.authorization.k8s.io "{role_name}" not found')
            return _cluster_role_rules(cluster, role) if role else []
        role = cluster.get("rbac.authorization.k8s.io", "roles", binding_namespace, str(role_name))
        if role is None:
            errors.append(f'role.rbac.authorization.k8s.io "{role_name}" not found')
        return list(role.get("rules") or []) if role else []

    bindings: list[tuple[KubeObject, str]] = [
        (binding, "") for binding in cluster.objects("rbac.authorization.k8s.io", "clusterrolebindings")
    ]
    if namespace:
        bindings += [
            (binding, namespace)
            for binding in cluster.objects("rbac.authorization.k8s.io", "rolebindings", namespace)
        ]
    for binding, binding_namespace in bindings:
        subjects = binding.get("subjects") or []
        if not any(
            _subject_matches(s, user, all_groups, binding_namespace or str(s.get("namespace", "")))
            for s in subjects
        ):
            continue
        for rule in role_rules(binding.get("roleRef") or {}, binding_namespace):
            if _rule_matches(rule, verb, group, resource, subresource, name):
                return True, []
    return False, errors
