"""Inbound exposure of the agent: SA-NET-001 (outbound-only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import agent_scope, list_if_served
from pytest_secagent.kubernetes.resources import (
    GRPC_ROUTES,
    HTTP_ROUTES,
    INGRESSES,
    SERVICES,
    TCP_ROUTES,
    TLS_ROUTES,
    UDP_ROUTES,
)
from pytest_secagent.kubernetes.view import KubernetesView, Resource
from pytest_secagent.policy.model import Policy

__all__ = ["EXPOSED_SERVICE_TYPES", "REFERENCE_GRANTS", "ROUTES", "check_no_inbound_exposure"]

EXPOSED_SERVICE_TYPES = frozenset({"LoadBalancer", "NodePort"})
OPENSHIFT_ROUTES = Resource("route.openshift.io", "v1", "routes")
REFERENCE_GRANTS = Resource("gateway.networking.k8s.io", "v1beta1", "referencegrants")
ROUTES = (HTTP_ROUTES, GRPC_ROUTES, TLS_ROUTES, TCP_ROUTES, UDP_ROUTES)


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_map(obj.get("metadata")).get("name", ""))


def _kind(resource: Resource) -> str:
    return {
        "httproutes": "HTTPRoute",
        "grpcroutes": "GRPCRoute",
        "tlsroutes": "TLSRoute",
        "tcproutes": "TCPRoute",
        "udproutes": "UDPRoute",
        "routes": "Route",
    }.get(resource.plural, resource.plural)


def check_no_inbound_exposure(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-NET-001: nothing in the agent namespace accepts traffic from outside the cluster.

    Fails on LoadBalancer/NodePort Services, Services with externalIPs, Ingresses,
    Gateway API routes and OpenShift Routes in the namespace, and on ReferenceGrants that
    let routes of other namespaces reach its Services. ClusterIP Services are fine.
    Resource types the cluster does not serve (no Gateway API, not OpenShift) have none.
    """
    scope = agent_scope(policy, namespace)
    ns = scope.namespace
    found: list[str] = []
    services = view.list(SERVICES, ns)
    for service in services:
        spec = _map(service.get("spec"))
        kind = str(spec.get("type") or "ClusterIP")
        if kind in EXPOSED_SERVICE_TYPES:
            found.append(f"Service/{_name(service)} type {kind}")
        if spec.get("externalIPs"):
            found.append(f"Service/{_name(service)} externalIPs {', '.join(map(str, spec['externalIPs']))}")
    evidence.observe(f"Services in {ns}", ", ".join(_name(s) for s in services) or "none")
    found.extend(f"Ingress/{_name(ingress)}" for ingress in view.list(INGRESSES, ns))
    not_served = []
    for resource in (*ROUTES, OPENSHIFT_ROUTES):
        routes = list_if_served(view, resource, ns)
        if routes is None:
            not_served.append(f"{resource.group}/{resource.plural}")
            continue
        found.extend(f"{_kind(resource)}/{_name(route)}" for route in routes)
    grants = list_if_served(view, REFERENCE_GRANTS, ns)
    for grant in grants or []:
        targets = {str(_map(t).get("kind")) for t in _map(grant.get("spec")).get("to") or []}
        if "Service" in targets:
            sources = ", ".join(
                f"{_map(f).get('kind')} in {_map(f).get('namespace')}"
                for f in _map(grant.get("spec")).get("from") or []
            )
            found.append(f"ReferenceGrant/{_name(grant)} lets {sources} reach Services")
    if not_served:
        evidence.observe("not served by the cluster", ", ".join(not_served))
    evidence.expect(
        f"inbound exposure objects in {ns}",
        expected="none (no LoadBalancer/NodePort/externalIPs, Ingress, Gateway route or Route)",
        actual="; ".join(found) or "none",
        ok=not found,
    )
