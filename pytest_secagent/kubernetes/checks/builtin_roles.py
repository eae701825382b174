"""The default ClusterRoles every Kubernetes API server creates, as data.

Rendered manifests bind these roles without containing them. SA-IAM-001 judges a binding
to one of them with these rules (the defaults of the API server's bootstrap policy, as of
Kubernetes 1.30), so a binding to ``system:aggregate-to-edit`` is judged on what it
grants instead of being left unverified. Only the user-facing roles and the roles they
aggregate are listed; their aggregation labels are kept, so a chart's own roles that add
rules to them (``aggregate-to-view: "true"``) are aggregated as on the cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["AGGREGATED_BUILTIN_ROLES", "BUILTIN_CLUSTER_ROLES"]

_READ = ["get", "list", "watch"]
_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
_AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _role(name: str, rules: list[dict[str, Any]], *, labels: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/bootstrapping": "rbac-defaults",
                **{f"{_AGGREGATE}{label}": "true" for label in labels},
            },
        },
        "rules": rules,
    }


def _aggregated(name: str, selects: str, *, labels: tuple[str, ...] = ()) -> dict[str, Any]:
    role = _role(name, [], labels=labels)
    role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {f"{_AGGREGATE}{selects}": "true"}}]}
    return role


_VIEW_RULES = [
    _rule(
        [""],
        [
            "configmaps",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/status",
        ],
        _READ,
    ),
    _rule(
        [""],
        [
            "bindings",
            "events",
            "limitranges",
            "namespaces/status",
            "pods/log",
            "pods/status",
            "replicationcontrollers/status",
            "resourcequotas",
            "resourcequotas/status",
        ],
        _READ,
    ),
    _rule([""], ["namespaces"], _READ),
    _rule(["discovery.k8s.io"], ["endpointslices"], _READ),
    _rule(
        ["apps"],
        [
            "controllerrevisions",
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
        ],
        _READ,
    ),
    _rule(["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"], _READ),
    _rule(["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"], _READ),
    _rule(
        ["extensions"],
        [
            "daemonsets",
            "daemonsets/status",
            "deployments",
            "deployments/scale",
            "deployments/status",
            "ingresses",
            "ingresses/status",
            "networkpolicies",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "replicationcontrollers/scale",
        ],
        _READ,
    ),
    _rule(["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"], _READ),
    _rule(["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"], _READ),
]

_EDIT_RULES = [
    _rule(
        [""],
        ["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"],
        _READ,
    ),
    _rule([""], ["serviceaccounts"], ["impersonate"]),
    _rule([""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"], _WRITE),
    _rule([""], ["pods/eviction"], ["create"]),
    _rule(
        [""],
        [
            "configmaps",
            "events",
            "persistentvolumeclaims",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "secrets",
            "serviceaccounts",
            "services",
            "services/proxy",
        ],
        _WRITE,
    ),
    _rule([""], ["serviceaccounts/token"], ["create"]),
    _rule(
        ["apps"],
        [
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "replicasets",
            "replicasets/scale",
            "statefulsets",
            "statefulsets/scale",
        ],
        _WRITE,
    ),
    _rule(["autoscaling"], ["horizontalpodautoscalers"], _WRITE),
    _rule(["batch"], ["cronjobs", "jobs"], _WRITE),
    _rule(
        ["extensions"],
        [
            "daemonsets",
            "deployments",
            "deployments/rollback",
            "deployments/scale",
            "ingresses",
            "networkpolicies",
            "replicasets",
            "replicasets/scale",
            "replicationcontrollers/scale",
        ],
        _WRITE,
    ),
    _rule(["policy"], ["poddisruptionbudgets"], _WRITE),
    _rule(["networking.k8s.io"], ["ingresses", "networkpolicies"], _WRITE),
]

_ADMIN_RULES = [
    _rule(["authorization.k8s.io"], ["localsubjectaccessreviews"], ["create"]),
    _rule(["rbac.authorization.k8s.io"], ["rolebindings", "roles"], [*_READ, *_WRITE]),
]

BUILTIN_CLUSTER_ROLES: Mapping[str, Mapping[str, Any]] = {
    role["metadata"]["name"]: role
    for role in (
        _role(
            "cluster-admin",
            [_rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"], "verbs": ["*"]}],
        ),
        _aggregated("admin", "admin"),
        _aggregated("edit", "edit", labels=("admin",)),
        _aggregated("view", "view", labels=("edit",)),
        _role("system:aggregate-to-admin", _ADMIN_RULES, labels=("admin",)),
        _role("system:aggregate-to-edit", _EDIT_RULES, labels=("edit",)),
        _role("system:aggregate-to-view", _VIEW_RULES, labels=("view",)),
    )
}
"""The default ClusterRoles by name, in the shape the API serves them."""

AGGREGATED_BUILTIN_ROLES = frozenset({"admin", "edit", "view"})
"""Default roles that aggregate others: a cluster may add rules to them that manifests cannot show."""
