"""Inbound exposure of the agent: SA-NET-001 (outbound-only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import AgentScope, agent_scope, list_if_served
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
from pytest_secagent.kubernetes.workloads import pod_templates
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy

__all__ = [
    "EXPOSED_SERVICE_TYPES",
    "ISTIO_GATEWAYS",
    "ISTIO_VIRTUAL_SERVICES",
    "REFERENCE_GRANTS",
    "ROUTES",
    "check_no_inbound_exposure",
    "istio_exposure",
]

EXPOSED_SERVICE_TYPES = frozenset({"LoadBalancer", "NodePort"})
OPENSHIFT_ROUTES = Resource("route.openshift.io", "v1", "routes")
REFERENCE_GRANTS = Resource("gateway.networking.k8s.io", "v1beta1", "referencegrants")
ROUTES = (HTTP_ROUTES, GRPC_ROUTES, TLS_ROUTES, TCP_ROUTES, UDP_ROUTES)
ISTIO_VIRTUAL_SERVICES = Resource("networking.istio.io", "v1beta1", "virtualservices")
ISTIO_GATEWAYS = Resource("networking.istio.io", "v1beta1", "gateways")
MESH_GATEWAY = "mesh"
"""The reserved Istio gateway name of the sidecars: traffic inside the mesh, not from outside."""


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


def _destination_hosts(spec: Mapping[str, Any]) -> list[str]:
    hosts = []
    for kind in ("http", "tls", "tcp"):
        for route in spec.get(kind) or []:
            for target in _map(route).get("route") or []:
                host = _map(_map(target).get("destination")).get("host")
                if host:
                    hosts.append(str(host))
    return hosts


def _in_namespace(host: str, own_namespace: str, namespace: str) -> bool:
    """Whether a destination host names a Service of ``namespace`` (short names: the VirtualService's own)."""
    parts = host.split(".")
    if len(parts) == 1:
        return own_namespace == namespace
    return parts[1] == namespace or host == "*"


def istio_exposure(
    virtual_services: Sequence[Mapping[str, Any]], gateways: Sequence[Mapping[str, Any]], namespace: str
) -> list[str]:
    """Return how Istio objects let traffic from outside the mesh reach ``namespace``.

    A Gateway in the namespace, and a VirtualService bound to a gateway (anything but the
    reserved ``mesh``) that lives in the namespace or routes to one of its Services.
    Without ``gateways`` a VirtualService applies to the sidecars only.
    """
    found = [f"Istio Gateway/{_name(g)}" for g in gateways]
    for service in virtual_services:
        spec = _map(service.get("spec"))
        bound = [str(g) for g in spec.get("gateways") or [] if str(g) != MESH_GATEWAY]
        if not bound:
            continue
        own = str(_map(service.get("metadata")).get("namespace") or namespace)
        hosts = [h for h in _destination_hosts(spec) if _in_namespace(h, own, namespace)]
        if own == namespace or hosts:
            reach = f" to {', '.join(hosts)}" if hosts else ""
            found.append(f"Istio VirtualService {own}/{_name(service)} on gateway {', '.join(bound)}{reach}")
    return found


def _agent_present(view: KubernetesView, scope: AgentScope) -> str | None:
    """Return why nothing of the agent was examined, or ``None`` when its pods were found."""
    try:
        if list(pod_templates(view, scope.namespace, scope.selector)):
            return None
    except EvidenceUnavailable as error:
        return str(error)
    return (
        f"nothing to examine: no agent pods found ({scope.describe()}) on {view.target_id}; "
        "set agent.namespace / agent.selector in the policy or name the namespace in the target"
    )


def check_no_inbound_exposure(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-NET-001: nothing in the agent namespace accepts traffic from outside the cluster.

    Fails on LoadBalancer/NodePort Services, Services with externalIPs, Ingresses,
    Gateway API routes and OpenShift Routes in the namespace, and on ReferenceGrants that
    let routes of other namespaces reach its Services. ClusterIP Services are fine.
    Resource types the cluster does not serve (no Gateway API, not OpenShift) have none.
    Istio Gateways in the namespace and VirtualServices that bind a gateway to it fail too.
    Without agent pods and with no exposure found, the control examined nothing: an error.
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
    istio_services = list_if_served(view, ISTIO_VIRTUAL_SERVICES, None)
    istio_gateways = list_if_served(view, ISTIO_GATEWAYS, ns)
    for resource, listed in ((ISTIO_VIRTUAL_SERVICES, istio_services), (ISTIO_GATEWAYS, istio_gateways)):
        if listed is None:
            not_served.append(f"{resource.group}/{resource.plural}")
    found.extend(istio_exposure(istio_services or [], istio_gateways or [], ns))
    if not_served:
        evidence.observe("not served by the cluster", ", ".join(not_served))
    if not found:
        absent = _agent_present(view, scope)
        if absent is not None:
            raise EvidenceUnavailable(absent)
    evidence.expect(
        f"inbound exposure objects in {ns}",
        expected="none (no LoadBalancer/NodePort/externalIPs, Ingress, Gateway route or Route)",
        actual="; ".join(found) or "none",
        ok=not found,
    )
