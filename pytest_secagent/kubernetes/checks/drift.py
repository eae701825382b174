"""SA-ASSESS-003 on Kubernetes: the declared architecture against what is deployed.

Three comparisons, each recorded as expected vs actual:

* the agent namespace exists (live: the Namespace object; rendered: objects are placed
  there) and holds the agent's workloads;
* when ``assessment.credential_review.secret_store`` is declared, a Dapr secret-store
  Component of that type is deployed in the agent namespace;
* every ``host:port`` referenced by a URL in a Dapr component's metadata or in an agent
  container's env is allowed by ``firewall_rules.outbound_allowed``.

URLs are reduced to host and port before they reach the evidence: user information, paths
and queries (where credentials tend to hide) are never recorded.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import AgentScope, agent_scope, list_if_served, short
from pytest_secagent.kubernetes.resources import DAPR_COMPONENTS, NAMESPACES
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.kubernetes.workloads import PodTemplate, containers, pod_templates
from pytest_secagent.network.reachability import Destination, allow_list_match
from pytest_secagent.policy.model import OutboundRule, Policy

__all__ = [
    "SECRET_STORE_TYPES",
    "Reference",
    "check_declared_architecture",
    "referenced_endpoints",
    "url_destinations",
]

SECRET_STORE_TYPES: Mapping[str, str] = {
    "secretstores.aws.secretmanager": "aws-secrets-manager",
    "secretstores.azure.keyvault": "azure-key-vault",
    "secretstores.gcp.secretmanager": "gcp-secret-manager",
    "secretstores.hashicorp.vault": "hashicorp-vault",
    "secretstores.kubernetes": "kubernetes",
    "secretstores.local.env": "env",
}
"""Dapr ``Component.spec.type`` -> the policy's ``secret_store`` name."""

_URL = re.compile(r"\b(https?)://([^\s/?#\"'<>,;|]+)", re.IGNORECASE)
_DEFAULT_PORTS = {"https": 443, "http": 80}
_IN_CLUSTER_SUFFIXES = (".svc", ".svc.cluster.local", ".cluster.local")


@dataclass(frozen=True)
class Reference:
    """An endpoint referenced by the configuration: where, and the host and port it names.

    ``destination`` is ``None`` when the URL's authority could not be parsed (the check
    then fails rather than guess).
    """

    where: str
    destination: Destination | None


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_map(obj.get("metadata")).get("name", ""))


def url_destinations(text: str) -> Iterator[Destination | None]:
    """Yield the host and port of every ``http(s)://host[:port]/...`` URL in ``text``.

    The scheme's port applies when none is written (443 for https, 80 for http). A URL
    whose authority does not parse yields ``None``. User information is dropped.
    """
    for match in _URL.finditer(text):
        scheme = match.group(1).lower()
        authority = match.group(2).rpartition("@")[2]
        try:
            parts = urlsplit(f"{scheme}://{authority}")
            host, port = parts.hostname, parts.port
        except ValueError:
            yield None
            continue
        if not host:
            yield None
            continue
        try:
            yield Destination(host.rstrip(".").lower(), port or _DEFAULT_PORTS[scheme])
        except ValueError:
            yield None


def referenced_endpoints(
    templates: Sequence[PodTemplate], components: Sequence[Mapping[str, Any]]
) -> list[Reference]:
    """Every URL endpoint in the literal env values of ``templates`` and in Dapr metadata."""
    found: list[Reference] = []
    for template in templates:
        for kind, container in containers(template.spec):
            label = f"{template.owner.kind}/{template.owner.name} {kind} {container.get('name', '?')}"
            for variable in container.get("env") or []:
                entry = _map(variable)
                value = entry.get("value")
                if isinstance(value, str):
                    where = f"{label} env {entry.get('name', '')}"
                    found.extend(Reference(where, d) for d in url_destinations(value))
    for component in components:
        for item in _map(component.get("spec")).get("metadata") or []:
            entry = _map(item)
            value = entry.get("value")
            if isinstance(value, str) and "secretKeyRef" not in entry:
                where = f"Dapr Component/{_name(component)} metadata {entry.get('name', '')}"
                found.extend(Reference(where, d) for d in url_destinations(value))
    return found


def _local(destination: Destination) -> str | None:
    """Why a destination is not egress (loopback or an in-cluster Service), or ``None``."""
    host = destination.host
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return "loopback"
    except ValueError:
        pass
    if host.endswith(_IN_CLUSTER_SUFFIXES):
        return "in-cluster Service"
    return None


def _check_namespace(view: KubernetesView, scope: AgentScope, evidence: Evidence) -> list[PodTemplate]:
    placed: list[str] = []
    if view.live:
        names = {_name(ns) for ns in view.list(NAMESPACES)}
        exists = scope.namespace in names
        evidence.expect(
            f"namespace {scope.namespace}",
            expected="exists",
            actual="exists" if exists else "not found on the cluster",
            ok=exists,
        )
    else:
        # Rendered files are all read anyway; say where the workloads went instead.
        everywhere = list(pod_templates(view))
        placed = sorted({str(t.namespace) for t in everywhere if t.namespace})
        inside = [t for t in everywhere if t.namespace == scope.namespace]
        evidence.expect(
            f"namespace {scope.namespace}",
            expected="the manifests place the agent's workloads there",
            actual=f"{len(inside)} workloads placed there"
            if inside
            else f"no workload placed there (namespaces used: {short(placed)})",
            ok=bool(inside),
        )
        declared = {_name(ns) for ns in view.list(NAMESPACES)}
        if scope.namespace not in declared:
            # helm template and kubectl leave the namespace to the install command.
            evidence.unobserved(
                f"namespace {scope.namespace} exists",
                expected="exists",
                reason=f"the files define no Namespace {scope.namespace}; whether it exists is only "
                "visible on a live cluster",
            )
    templates = list(pod_templates(view, scope.namespace, scope.selector))
    evidence.expect(
        f"agent workloads ({scope.describe()})",
        expected="at least one",
        actual=short([str(t.owner) for t in templates])
        if templates
        else f"none (workloads in the files are in: {short(placed)})"
        if placed
        else "none",
        ok=bool(templates),
    )
    return templates


def _check_secret_store(
    view: KubernetesView, scope: AgentScope, policy: Policy, evidence: Evidence
) -> list[dict[str, Any]]:
    components = list_if_served(view, DAPR_COMPONENTS, scope.namespace)
    stores = [
        (str(_map(c.get("spec")).get("type", "")), _name(c))
        for c in components or []
        if str(_map(c.get("spec")).get("type", "")).startswith("secretstores.")
    ]
    observed = [f"{kind} (Component/{name})" for kind, name in stores]
    if components is None:
        seen = "none: the cluster does not serve Dapr components (dapr.io/v1alpha1)"
    elif not stores:
        seen = f"none: no Dapr secret-store Component in namespace {scope.namespace}"
    else:
        seen = ", ".join(observed)
    declared = policy.assessment.credential_review.secret_store
    if declared is None:
        evidence.observe("Dapr secret stores (assessment.credential_review.secret_store not declared)", seen)
        return components or []
    matching = [name for kind, name in stores if SECRET_STORE_TYPES.get(kind.strip().lower()) == declared]
    wanted = [kind for kind, store in SECRET_STORE_TYPES.items() if store == declared]
    evidence.expect(
        "declared secret store (assessment.credential_review.secret_store)",
        expected=f"a Dapr Component of type {' or '.join(wanted)} (declared {declared})",
        actual=seen,
        ok=bool(matching),
    )
    return components or []


def _check_endpoints(
    rules: Sequence[OutboundRule], references: Sequence[Reference], evidence: Evidence
) -> None:
    outside: list[str] = []
    allowed: list[str] = []
    internal: list[str] = []
    for reference in references:
        destination = reference.destination
        if destination is None:
            outside.append(f"{reference.where}: a URL whose host or port does not parse")
            continue
        why = _local(destination)
        if why is not None:
            internal.append(f"{destination} ({why})")
        elif allow_list_match(rules, destination.host, destination.port) is None:
            outside.append(f"{destination} ({reference.where})")
        else:
            allowed.append(str(destination))
    if internal:
        evidence.observe("endpoints that are not egress", short(sorted(set(internal))))
    evidence.expect(
        "endpoints referenced in env and Dapr metadata outside firewall_rules.outbound_allowed",
        expected="none",
        actual="; ".join(outside)
        if outside
        else f"none of {len(references)} references (allowed: {short(sorted(set(allowed)))})",
        ok=not outside,
    )


def check_declared_architecture(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-ASSESS-003: the agent namespace, secret store and egress endpoints match the policy.

    Fails when the namespace is missing or holds no agent workload, when the declared
    secret store has no Dapr Component of its type, or when a URL in agent env or Dapr
    metadata names a ``host:port`` the outbound allow-list does not allow. Loopback and
    in-cluster Service addresses are recorded, not judged (they are not egress).
    """
    scope = agent_scope(policy, namespace)
    templates = _check_namespace(view, scope, evidence)
    components = _check_secret_store(view, scope, policy, evidence)
    _check_endpoints(
        policy.firewall_rules.outbound_allowed, referenced_endpoints(templates, components), evidence
    )
