"""Kubernetes RBAC of the agent's identities: SA-IAM-001.

Static analysis reads every RoleBinding and ClusterRoleBinding that names an agent
service account (or a group it belongs to) and the rules its role grants, as the API
server applies them: an aggregated ClusterRole has the rules of every ClusterRole its
``aggregationRule`` selects (transitively) instead of its own, a RoleBinding grants a
ClusterRole's rules only in its own namespace, and a rendered namespaced object without
a namespace is in the install namespace. On a live cluster the API is also asked, with
access reviews, the same questions the static part answers.

A role or binding the API server would reject (a rule without verbs, an unknown kind, a
malformed selector) is not applied; when it concerns the agent, what it would have
granted is reported as not verifiable, naming the object, unless the control fails on
other grounds anyway. On rendered manifests, a role that is not rendered, or an
aggregation whose selected roles are not, is a part of the control this target cannot
show (the control passes at best partially).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.builtin_roles import AGGREGATED_BUILTIN_ROLES, BUILTIN_CLUSTER_ROLES
from pytest_secagent.kubernetes.checks.network_policy import selector_problems
from pytest_secagent.kubernetes.checks.scope import AgentScope, agent_scope, agent_templates
from pytest_secagent.kubernetes.checks.workload import judged_templates
from pytest_secagent.kubernetes.resources import (
    CLUSTER_ROLE_BINDINGS,
    CLUSTER_ROLES,
    ROLE_BINDINGS,
    ROLES,
)
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.kubernetes.workloads import label_selector_matches
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy

__all__ = [
    "ADMIN_ROLES",
    "POD_CREATING",
    "Subject",
    "agent_subjects",
    "binding_problems",
    "check_rbac",
    "namespace_reviews",
    "role_problems",
    "rule_problems",
]

ADMIN_ROLES = frozenset({"cluster-admin", "admin", "edit"})
DANGEROUS_VERBS = frozenset({"escalate", "bind", "impersonate"})
READ_VERBS = frozenset({"get", "list", "watch", "*"})
CREATE_VERBS = frozenset({"create", "*"})
RBAC_GROUP = "rbac.authorization.k8s.io"
POD_CREATING: dict[str, frozenset[str]] = {
    "pods": frozenset({""}),
    "pods/exec": frozenset({""}),
    "pods/attach": frozenset({""}),
    "replicationcontrollers": frozenset({""}),
    "deployments": frozenset({"apps", "extensions"}),
    "daemonsets": frozenset({"apps", "extensions"}),
    "replicasets": frozenset({"apps", "extensions"}),
    "statefulsets": frozenset({"apps"}),
    "jobs": frozenset({"batch"}),
    "cronjobs": frozenset({"batch"}),
}
"""Resources (and their API groups) whose ``create`` runs a pod or a command in one."""
POD_CHANGING: dict[str, frozenset[str]] = {
    **{r: g for r, g in POD_CREATING.items() if r not in ("pods/exec", "pods/attach")},
    "pods/ephemeralcontainers": frozenset({""}),
}
"""Resources whose ``update``/``patch`` changes what a pod runs (image, command, a debug container)."""
CHANGE_VERBS = frozenset({"update", "patch", "*"})
WRITE_VERBS = frozenset({"create", "update", "patch", "*"})
BINDING_RESOURCES = frozenset({"rolebindings", "clusterrolebindings"})
WEBHOOK_RESOURCES = frozenset({"mutatingwebhookconfigurations", "validatingwebhookconfigurations"})
ADMISSION_GROUP = "admissionregistration.k8s.io"
CERTIFICATES_GROUP = "certificates.k8s.io"
SUBJECT_KINDS = {"ServiceAccount": "", "User": RBAC_GROUP, "Group": RBAC_GROUP}
"""Subject kinds the API accepts, with the apiGroup each must carry."""
RULE_LISTS = ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")
PROBE_USER = "secagent:access-review-probe"
OTHER_NAMESPACE = "kube-system"
REVIEW_RESOURCES = {
    "pods": "pods",
    "pods/exec": "pods/exec",
    "pods/attach": "pods/attach",
    "pods/ephemeralcontainers": "pods/ephemeralcontainers",
    "replicationcontrollers": "replicationcontrollers",
    "deployments": "deployments.apps",
    "daemonsets": "daemonsets.apps",
    "replicasets": "replicasets.apps",
    "statefulsets": "statefulsets.apps",
    "jobs": "jobs.batch",
    "cronjobs": "cronjobs.batch",
}
"""How an access review names each resource of :data:`POD_CREATING`."""
CLUSTER_REVIEWS = (
    ("get", "secrets"),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", f"clusterrolebindings.{RBAC_GROUP}"),
    ("escalate", f"clusterroles.{RBAC_GROUP}"),
    ("bind", f"clusterroles.{RBAC_GROUP}"),
    ("impersonate", "users"),
    ("impersonate", "groups"),
    ("impersonate", "serviceaccounts"),
    ("get", "nodes/proxy"),
    ("create", "nodes/proxy"),
    ("proxy", "nodes"),
    ("patch", "nodes"),
    ("update", "nodes"),
    ("create", f"rolebindings.{RBAC_GROUP}"),
    ("patch", f"clusterrolebindings.{RBAC_GROUP}"),
    ("create", "serviceaccounts/token"),
    *(
        (verb, f"{resource}.{ADMISSION_GROUP}")
        for resource in sorted(WEBHOOK_RESOURCES)
        for verb in ("create", "patch", "update")
    ),
    ("update", f"certificatesigningrequests.{CERTIFICATES_GROUP}/approval"),
    ("approve", f"signers.{CERTIFICATES_GROUP}"),
)
"""Cluster-wide questions each agent identity must be denied."""


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


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=False, separators=(", ", ": "), default=str)


def agent_subjects(
    view: KubernetesView, policy: Policy, scope: AgentScope, evidence: Evidence | None = None
) -> list[Subject]:
    """Return the agent's service accounts: declared in the policy, else those its pods use.

    With ``evidence``, the workloads left out of the agent's pods are recorded (see
    :func:`~pytest_secagent.kubernetes.checks.workload.judged_templates`).
    """
    declared = policy.agent.service_accounts
    if declared:
        subjects = []
        for item in declared:
            namespace, _, name = item.rpartition("/")
            subjects.append(Subject(namespace or scope.namespace, name))
        return subjects
    templates = agent_templates(view, scope) if evidence is None else judged_templates(view, scope, evidence)
    names = sorted({t.service_account for t in templates})
    return [Subject(scope.namespace, name) for name in names]


# -- what the API server accepts --------------------------------------------------------------


def _list_problem(rule: Mapping[str, Any], key: str) -> str | None:
    value = rule.get(key)
    if value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return None
    return f"{key} is not a list of strings ({_compact(value)})"


def role_problems(role: Mapping[str, Any], *, namespaced: bool) -> list[str]:
    """Return why the API server would reject a Role (``namespaced``) or ClusterRole.

    A rule needs verbs; a resource rule needs apiGroups and resources; nonResourceURLs
    exist only in ClusterRoles and not beside resources; an aggregationRule needs at least
    one valid ClusterRole selector.
    """
    problems: list[str] = []
    rules = role.get("rules")
    if rules is not None and not isinstance(rules, list):
        return [f"rules is not a list ({_compact(rules)})"]
    for index, rule in enumerate(rules or []):
        where = f"rule {index + 1}"
        if not isinstance(rule, Mapping):
            problems.append(f"{where} is not a mapping ({_compact(rule)})")
            continue
        shapes = [p for p in (_list_problem(rule, key) for key in RULE_LISTS) if p]
        problems += [f"{where}: {p}" for p in shapes]
        if shapes:
            continue
        if not rule.get("verbs"):
            problems.append(f"{where}: verbs is required ({_compact(rule.get('verbs'))})")
        if rule.get("nonResourceURLs"):
            if namespaced:
                problems.append(f"{where}: nonResourceURLs in a namespaced Role")
            if rule.get("apiGroups") or rule.get("resources"):
                problems.append(f"{where}: nonResourceURLs beside apiGroups or resources")
        else:
            if not rule.get("apiGroups"):
                problems.append(f"{where}: apiGroups is required in a resource rule")
            if not rule.get("resources"):
                problems.append(f"{where}: resources is required in a resource rule")
    aggregation = role.get("aggregationRule")
    if aggregation is not None:
        if namespaced:
            problems.append("aggregationRule in a namespaced Role")
        selectors = _map(aggregation).get("clusterRoleSelectors")
        if not isinstance(aggregation, Mapping) or not isinstance(selectors, list) or not selectors:
            problems.append(
                f"aggregationRule without clusterRoleSelectors ({_compact(aggregation)}): "
                "at least one selector is required"
            )
        else:
            for index, selector in enumerate(selectors):
                where = f"aggregationRule.clusterRoleSelectors[{index}]"
                problems += (
                    selector_problems(selector, where) if selector is not None else [f"{where} is null"]
                )
    return problems


def binding_problems(binding: Mapping[str, Any], *, cluster_wide: bool) -> list[str]:
    """Return why the API server would reject a RoleBinding or (``cluster_wide``) ClusterRoleBinding."""
    problems: list[str] = []
    ref = binding.get("roleRef")
    kinds = ("ClusterRole",) if cluster_wide else ("Role", "ClusterRole")
    if not isinstance(ref, Mapping):
        problems.append(f"roleRef is required ({_compact(ref)})")
    else:
        if ref.get("kind") not in kinds:
            problems.append(f"roleRef.kind {ref.get('kind')!r} (one of {', '.join(kinds)}; case-sensitive)")
        if ref.get("apiGroup") != RBAC_GROUP:
            problems.append(f"roleRef.apiGroup {ref.get('apiGroup')!r} (must be {RBAC_GROUP})")
        if not isinstance(ref.get("name"), str) or not ref.get("name"):
            problems.append("roleRef.name is required")
    subjects = binding.get("subjects")
    if subjects is not None and not isinstance(subjects, list):
        return [*problems, f"subjects is not a list ({_compact(subjects)})"]
    for index, subject in enumerate(subjects or []):
        entry = _map(subject)
        where = f"subjects[{index}]"
        kind, group = entry.get("kind"), entry.get("apiGroup")
        if kind not in SUBJECT_KINDS:
            problems.append(f"{where}.kind {kind!r} (one of ServiceAccount, User, Group; case-sensitive)")
        elif group and group != SUBJECT_KINDS[str(kind)]:
            problems.append(f"{where}.apiGroup {group!r} for a {kind}")
        if not isinstance(entry.get("name"), str) or not entry.get("name"):
            problems.append(f"{where}.name is required")
        if kind == "ServiceAccount" and cluster_wide and not entry.get("namespace"):
            problems.append(f"{where}: a ServiceAccount subject of a ClusterRoleBinding needs a namespace")
    return problems


# -- who is bound ------------------------------------------------------------------------------


def _binds(entry: Mapping[str, Any], subject: Subject, binding_namespace: str | None, *, loose: bool) -> bool:
    """Whether one binding subject names ``subject``; ``loose`` ignores the letter case of the kind."""
    kind = str(entry.get("kind", ""))
    if loose:
        kind = {k.lower(): k for k in SUBJECT_KINDS}.get(kind.lower(), kind)
    name = entry.get("name")
    if kind == "ServiceAccount":
        namespace = entry.get("namespace") or binding_namespace
        return bool(name == subject.name and namespace == subject.namespace)
    if kind == "Group":
        return name in subject.groups
    if kind == "User":
        # A binding may name the service account by its user name.
        return bool(name == subject.user)
    return False


# -- the rules a role grants -------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """One PolicyRule and where it comes from."""

    rule: Mapping[str, Any]
    source: str
    number: int

    def describe(self) -> str:
        shown = {key: self.rule[key] for key in RULE_LISTS if key in self.rule}
        return f"{self.source} rule {self.number} {_compact(shown)}"


@dataclass
class _Resolved:
    """The effective rules of a role, and what kept them from being fully known."""

    label: str
    rules: list[_Rule] = field(default_factory=list)
    missing: bool = False
    unobserved: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Roles:
    """The Roles and ClusterRoles of a view, resolved as the API server applies them."""

    def __init__(self, view: KubernetesView, install_namespace: str) -> None:
        self.live = view.live
        self.roles: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.cluster: dict[str, Mapping[str, Any]] = {}
        for role in view.list(ROLES, None):
            meta = _map(role.get("metadata"))
            self.roles[(str(meta.get("namespace") or install_namespace), str(meta.get("name")))] = role
        for role in view.list(CLUSTER_ROLES, None):
            self.cluster[str(_map(role.get("metadata")).get("name"))] = role
        self.builtin: set[str] = set()
        if not self.live:
            # Rendered manifests bind the API server's default roles without holding them.
            for name, builtin in BUILTIN_CLUSTER_ROLES.items():
                if name not in self.cluster:
                    self.cluster[name] = builtin
                    self.builtin.add(name)

    def resolve(self, kind: str, name: str, namespace: str) -> _Resolved:
        """The rules of the role a binding in ``namespace`` refers to."""
        if kind == "Role":
            resolved = _Resolved(f"Role/{name}")
            role = self.roles.get((namespace, name))
            if role is None:
                resolved.missing = True
                return resolved
            problems = role_problems(role, namespaced=True)
            if problems:
                resolved.invalid.append(f"Role {namespace}/{name}: {'; '.join(problems)}")
                return resolved
            resolved.rules = self._own(role, f"Role/{name}")
            return resolved
        resolved = _Resolved(f"ClusterRole/{name}")
        self._cluster_rules(name, resolved, frozenset())
        return resolved

    @staticmethod
    def _own(role: Mapping[str, Any], source: str) -> list[_Rule]:
        return [_Rule(_map(rule), source, index + 1) for index, rule in enumerate(role.get("rules") or [])]

    def _cluster_rules(self, name: str, resolved: _Resolved, seen: frozenset[str]) -> None:
        role = self.cluster.get(name)
        source = f"ClusterRole/{name}"
        if role is None:
            if not seen:
                resolved.missing = True
            return
        problems = role_problems(role, namespaced=False)
        if problems:
            resolved.invalid.append(f"{source}: {'; '.join(problems)}")
            return
        if name in self.builtin:
            resolved.notes.append(f"{source}: not rendered; judged with the API server's default rules")
            if name in AGGREGATED_BUILTIN_ROLES and not seen:
                resolved.unobserved.append(
                    f"{source} aggregates every ClusterRole labelled for it in the cluster, beyond the "
                    "defaults and the rendered ones; those can only be seen on the live cluster (k8s://)"
                )
        aggregation = role.get("aggregationRule")
        if aggregation is None:
            resolved.rules += self._own(role, source)
            return
        if not seen:
            resolved.label = f"{source} (aggregated)"
        if self.live:
            # The aggregation controller keeps the role's own rules equal to the union.
            resolved.rules += self._own(role, source)
        elif role.get("rules"):
            resolved.notes.append(f"{source}: its own rules are replaced by those of the roles it aggregates")
        self._aggregate(name, list(_map(aggregation).get("clusterRoleSelectors") or []), resolved, seen)

    def _aggregate(
        self,
        name: str,
        selectors: Iterable[Mapping[str, Any]],
        resolved: _Resolved,
        seen: frozenset[str],
        *,
        quiet: bool = False,
    ) -> None:
        for selector in selectors:
            matched = sorted(
                other
                for other, role in self.cluster.items()
                if other != name
                and label_selector_matches(selector, _map(_map(role.get("metadata")).get("labels")))
            )
            shown = _compact(selector)
            if not matched and not quiet:
                if self.live:
                    resolved.notes.append(f"ClusterRole/{name}: selector {shown} matches no ClusterRole")
                else:
                    resolved.unobserved.append(
                        f"ClusterRole/{name}: selector {shown} matches no rendered ClusterRole, so the "
                        "roles it aggregates in the cluster are not in the manifests"
                    )
            if matched:
                resolved.notes.append(
                    f"ClusterRole/{name}: selector {shown} aggregates "
                    + ", ".join(f"ClusterRole/{m}" for m in matched)
                )
            for other in matched:
                if other not in seen | {name}:
                    self._cluster_rules(other, resolved, seen | {name})


# -- what a rule grants ------------------------------------------------------------------------


def rule_problems(
    rule: Mapping[str, Any], cluster_wide: bool, outside: bool | None = None
) -> tuple[list[str], list[str]]:
    """Return the failures and the warnings of one PolicyRule.

    ``cluster_wide`` says the rule is granted by a ClusterRoleBinding; ``outside`` that it
    applies outside the agent namespace (cluster-wide, or a RoleBinding in another
    namespace; defaults to ``cluster_wide``). Names are matched as the API server matches
    them: exactly, so a verb or resource in another letter case grants nothing.
    """
    outside = cluster_wide if outside is None else outside
    verbs, resources = _strings(rule.get("verbs")), _strings(rule.get("resources"))
    groups, urls = _strings(rule.get("apiGroups")), _strings(rule.get("nonResourceURLs"))
    failures: list[str] = []
    warnings = [
        f"{key} {value!r} matches no request (API names are lower case and matched exactly)"
        for key, values in (("verb", verbs), ("resource", resources), ("apiGroup", groups))
        for value in sorted(values)
        if value != value.lower()
    ]
    wildcards = [
        key
        for key, values, inside in (
            ("verbs", verbs, False),
            ("resources", resources, True),
            ("apiGroups", groups, False),
            ("nonResourceURLs", urls, False),
        )
        if any(v == "*" or (inside and "*" in v) for v in values)
    ]
    if wildcards:
        failures.append(f"wildcard in {', '.join(wildcards)}")
    if verbs & DANGEROUS_VERBS:
        failures.append(f"verbs {', '.join(sorted(verbs & DANGEROUS_VERBS))}")
    core = bool(groups & {"", "*"})
    if "nodes/proxy" in resources:
        failures.append("nodes/proxy")
    if "nodes" in resources and core and verbs & {"proxy", "patch", "update"}:
        failures.append(f"{'/'.join(sorted(verbs & {'proxy', 'patch', 'update'}))} nodes")
    failures += _escalation_problems(verbs, resources, groups, cluster_wide=cluster_wide, outside=outside)
    if "serviceaccounts/token" in resources and verbs & CREATE_VERBS and core:
        failures.append("create serviceaccounts/token")
    if outside:
        where = "cluster-wide" if cluster_wide else "outside the agent namespace"
        if verbs & CREATE_VERBS:
            created = [
                r for r, in_groups in POD_CREATING.items() if r in resources and groups & (in_groups | {"*"})
            ]
            failures += [f"create {r} {where}" for r in created]
        if verbs & CHANGE_VERBS:
            changed = [
                r for r, in_groups in POD_CHANGING.items() if r in resources and groups & (in_groups | {"*"})
            ]
            shown = "/".join(sorted(verbs & {"update", "patch"})) or "update/patch"
            failures += [f"{shown} {r} {where}" for r in changed]
    if "secrets" in resources and verbs & READ_VERBS and core:
        if cluster_wide:
            failures.append(f"{'/'.join(sorted(verbs & READ_VERBS))} secrets cluster-wide")
        elif not rule.get("resourceNames"):
            warnings.append(f"{'/'.join(sorted(verbs & READ_VERBS))} every Secret of the namespace")
    return failures, warnings


def _escalation_problems(
    verbs: set[str], resources: set[str], groups: set[str], *, cluster_wide: bool, outside: bool
) -> list[str]:
    """Grants that let an identity give itself (or a pod it controls) more rights.

    Writing role bindings (outside the agent namespace, or cluster role bindings at all),
    admission webhooks (they see and rewrite every object), approving certificate signing
    requests (a client certificate for any user), and minting service-account tokens.
    """
    found: list[str] = []
    rbac, admission = groups & {RBAC_GROUP, "*"}, groups & {ADMISSION_GROUP, "*"}
    certificates = groups & {CERTIFICATES_GROUP, "*"}
    written = "/".join(sorted(verbs & {"create", "update", "patch"})) or "create/update/patch"
    if rbac and verbs & WRITE_VERBS:
        if "clusterrolebindings" in resources:
            found.append(f"{written} clusterrolebindings")
        if "rolebindings" in resources and outside:
            where = "cluster-wide" if cluster_wide else "outside the agent namespace"
            found.append(f"{written} rolebindings {where}")
    if admission and verbs & WRITE_VERBS:
        found += [f"{written} {r}" for r in sorted(WEBHOOK_RESOURCES & resources)]
    if certificates:
        if "certificatesigningrequests/approval" in resources and verbs & CHANGE_VERBS:
            found.append("approve certificatesigningrequests (certificatesigningrequests/approval)")
        if "signers" in resources and verbs & {"approve", "*"}:
            found.append("approve signers")
    return found


# -- the check ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Binding:
    """A binding of an agent identity, as the API server applies it."""

    obj: Mapping[str, Any]
    cluster_wide: bool
    namespace: str | None

    @property
    def label(self) -> str:
        name = _map(self.obj.get("metadata")).get("name")
        if self.cluster_wide:
            return f"ClusterRoleBinding/{name}"
        return f"RoleBinding/{name} in {self.namespace}"


def _bindings(view: KubernetesView, install_namespace: str) -> list[_Binding]:
    found = [
        _Binding(b, False, str(_map(b.get("metadata")).get("namespace") or install_namespace))
        for b in view.list(ROLE_BINDINGS, None)
    ]
    return found + [_Binding(b, True, None) for b in view.list(CLUSTER_ROLE_BINDINGS, None)]


def check_rbac(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-IAM-001: the agent's RBAC is least-privilege.

    Fails on a binding to cluster-admin/admin/edit, a wildcard, escalate/bind/impersonate,
    nodes/proxy (and proxy/patch/update on nodes), serviceaccounts/token creation,
    cluster-wide Secret reading, ``create`` on pods, pod controllers, pods/exec or
    pods/attach outside the agent namespace, ``update``/``patch`` on pods, pod controllers
    or pods/ephemeralcontainers there, writing cluster role bindings (or role bindings
    outside the agent namespace), writing admission webhook configurations, and approving
    certificate signing requests; warns on namespace-wide Secret reading without
    resourceNames. The rules are the effective ones (aggregated ClusterRoles resolved; on
    rendered manifests the API server's default roles are judged with their default rules).
    Live clusters are also asked, with access reviews, the same questions, and whether every
    authenticated user can read Secrets.
    """
    scope = agent_scope(policy, namespace)
    subjects = agent_subjects(view, policy, scope, evidence)
    evidence.observe("agent identities", ", ".join(str(s) for s in subjects))
    roles = _Roles(view, scope.namespace)
    failures: list[str] = []
    undecided: list[str] = []
    checked = 0
    binding_namespaces: set[str] = set()
    for binding in _bindings(view, scope.namespace):
        entries = (
            [_map(e) for e in binding.obj.get("subjects") or []]
            if isinstance(binding.obj.get("subjects"), list)
            else []
        )
        problems = binding_problems(binding.obj, cluster_wide=binding.cluster_wide)
        if problems:
            if any(_binds(e, s, binding.namespace, loose=True) for e in entries for s in subjects):
                undecided.append(f"{binding.label} is rejected by the API server ({'; '.join(problems)})")
            continue
        bound = [s for s in subjects if any(_binds(e, s, binding.namespace, loose=False) for e in entries)]
        if not bound:
            continue
        checked += 1
        if binding.namespace:
            binding_namespaces.add(binding.namespace)
        failures += _judge_binding(binding, bound, roles, scope, view, evidence, undecided)
    if checked == 0 and not view.live and not undecided:
        evidence.unobserved(
            "RBAC bindings of the agent identities in the manifests",
            expected="the bindings that grant the agent identities their rights",
            reason="none is rendered; what the cluster grants them can only be seen on it (k8s://)",
        )
    evidence.expect(
        "RBAC bindings of the agent identities",
        expected=(
            "no cluster-admin/admin/edit, wildcard, escalate/bind/impersonate, nodes/proxy, "
            "serviceaccounts/token creation, cluster-wide Secret reading, pod creation or change "
            "outside the agent namespace, binding, webhook or certificate-approval rights"
        ),
        actual="; ".join(failures) or f"none in {checked} binding(s)",
        ok=not failures,
    )
    if view.live:
        undecided += _access_reviews(view, subjects, scope, evidence, binding_namespaces)
    if undecided:
        if evidence.failures:
            for reason in undecided:
                evidence.warn(reason, expected="RBAC objects the API server accepts", actual="not verifiable")
        else:
            raise EvidenceUnavailable("; ".join(undecided))


def _judge_binding(
    binding: _Binding,
    bound: list[Subject],
    roles: _Roles,
    scope: AgentScope,
    view: KubernetesView,
    evidence: Evidence,
    undecided: list[str],
) -> list[str]:
    """Record what one binding of the agent grants; return its failures."""
    ref = _map(binding.obj.get("roleRef"))
    kind, ref_name = str(ref.get("kind")), str(ref.get("name"))
    resolved = roles.resolve(kind, ref_name, binding.namespace or "")
    name = binding.label
    where = "cluster-wide" if binding.cluster_wide else f"in namespace {binding.namespace}"
    evidence.observe(name, f"grants {resolved.label} {where} to {', '.join(str(s) for s in bound)}")
    for note in resolved.notes:
        evidence.observe(f"{name}: {resolved.label}", note)
    failures: list[str] = []
    if kind == "ClusterRole" and ref_name in ADMIN_ROLES:
        # The binding fails as such; its (default) rules would only repeat why.
        return [f"{name} grants ClusterRole/{ref_name}"]
    if resolved.invalid:
        undecided.extend(f"{name}: {reason} (the API server rejects it)" for reason in resolved.invalid)
    for reason in resolved.unobserved:
        evidence.unobserved(
            f"{name}: {resolved.label}", expected="the rules of the roles it aggregates", reason=reason
        )
    if resolved.missing and not failures:
        if view.live:
            undecided.append(
                f"{name}: {resolved.label} is not found; it grants nothing now, but the rules of a role "
                "created under that name later cannot be judged"
            )
        else:
            evidence.unobserved(
                f"{name}: {resolved.label}",
                expected="the role's rules in the manifests",
                reason="not rendered; what it grants can only be seen on the live cluster (k8s://)",
            )
    outside = binding.cluster_wide or binding.namespace != scope.namespace
    for item in resolved.rules:
        if item.rule.get("nonResourceURLs") and not binding.cluster_wide:
            continue  # a RoleBinding grants no non-resource URL
        found, warned = rule_problems(item.rule, binding.cluster_wide, outside)
        if not binding.cluster_wide:
            found = [f"{f} ({binding.namespace})" if "outside the agent namespace" in f else f for f in found]
        failures.extend(f"{name} ({resolved.label}): {f}, by {item.describe()}" for f in found)
        for warning in warned:
            evidence.warn(
                f"{name} ({resolved.label})",
                expected="Secret access limited by resourceNames; names the API matches",
                actual=f"{warning}, by {item.describe()}",
            )
    return failures


def _deny(
    view: KubernetesView,
    evidence: Evidence,
    who: str,
    user: str,
    groups: list[str],
    verb: str,
    resource: str,
    namespace: str | None,
) -> str | None:
    """Ask one access review; return why it could not be decided, if it could not."""
    try:
        allowed = view.can_i(user, groups, verb, resource, namespace)
    except EvidenceUnavailable as exc:
        return str(exc)
    if allowed is None:
        return None
    where = f"in namespace {namespace}" if namespace else "cluster-wide"
    evidence.expect(
        f"access review: {who} {verb} {resource} {where}",
        expected="denied",
        actual="allowed" if allowed else "denied",
        ok=not allowed,
    )
    return None


def namespace_reviews() -> list[tuple[str, str]]:
    """The questions asked in each namespace other than the agent's: each must be denied."""
    creating = [("create", REVIEW_RESOURCES[r]) for r in POD_CREATING]
    changing = [(verb, REVIEW_RESOURCES[r]) for r in POD_CHANGING for verb in ("patch", "update")]
    return [*creating, *changing, ("create", f"rolebindings.{RBAC_GROUP}")]


def _access_reviews(
    view: KubernetesView,
    subjects: list[Subject],
    scope: AgentScope,
    evidence: Evidence,
    binding_namespaces: set[str],
) -> list[str]:
    """Ask the API what the static part judged: each question must be denied.

    Returns the reviews that could not be decided (a denial with an evaluation error).
    """
    other = OTHER_NAMESPACE if scope.namespace != OTHER_NAMESPACE else "default"
    namespaces = sorted(({other} | binding_namespaces) - {scope.namespace})
    answers: list[str | None] = []
    for subject in subjects:
        who, user, groups = str(subject), subject.user, subject.groups
        for verb, resource in CLUSTER_REVIEWS:
            answers.append(_deny(view, evidence, who, user, groups, verb, resource, None))
        for elsewhere in namespaces:
            for verb, resource in namespace_reviews():
                answers.append(_deny(view, evidence, who, user, groups, verb, resource, elsewhere))
    for verb in ("get", "list", "watch"):
        answers.append(
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
        )
    undecided = list(dict.fromkeys(a for a in answers if a))
    if len(undecided) > 1:
        return [f"{undecided[0]} (and {len(undecided) - 1} more undecided access review(s))"]
    return undecided
