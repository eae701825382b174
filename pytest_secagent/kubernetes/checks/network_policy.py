"""NetworkPolicies around the agent: SA-SEG-002 (default-deny ingress) and SA-SEG-003 (egress).

NetworkPolicies are additive: a pod is reachable by the union of every rule of every
policy that selects it. Both checks therefore judge that union, per agent pod spec.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import agent_scope, agent_templates
from pytest_secagent.kubernetes.resources import DAEMON_SETS, NETWORK_POLICIES, NODES
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.kubernetes.workloads import PodTemplate, label_selector_matches
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy

__all__ = [
    "POLICY_CNI_DAEMONSETS",
    "check_default_deny_ingress",
    "check_egress_restricted",
    "declared_egress",
    "policy_types",
]

POLICY_CNI_DAEMONSETS = (
    "calico-node",
    "cilium",
    "antrea-agent",
    "azure-npm",
    "kube-router",
    "weave-net",
    "canal",
    "anetd",
    "ovnkube-node",
    "kube-ovn-cni",
)
"""DaemonSets (name prefixes, in kube-system or the CNI's namespace) of CNIs that enforce NetworkPolicy."""
EKS_POLICY_AGENT = "aws-network-policy-agent"
DNS_PORT = 53
ANYWHERE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_map(obj.get("metadata")).get("name", ""))


def policy_types(policy: Mapping[str, Any]) -> set[str]:
    """Return the policy's effective types, defaulted as the API server does."""
    spec = _map(policy.get("spec"))
    declared = spec.get("policyTypes")
    if isinstance(declared, list) and declared:
        return {str(t) for t in declared}
    return {"Ingress", "Egress"} if "egress" in spec else {"Ingress"}


def _selecting(policies: list[dict[str, Any]], template: PodTemplate, kind: str) -> list[dict[str, Any]]:
    return [
        p
        for p in policies
        if kind in policy_types(p)
        and label_selector_matches(_map(_map(p.get("spec")).get("podSelector")), template.labels)
    ]


def _is_select_all(selector: object) -> bool:
    return (
        isinstance(selector, Mapping)
        and not selector.get("matchLabels")
        and not selector.get("matchExpressions")
    )


def _ingress_problems(rule: Mapping[str, Any]) -> list[str]:
    peers = rule.get("from")
    if not peers:
        return ["allows ingress from anywhere"]
    problems = []
    for peer in map(_map, peers):
        if "ipBlock" in peer:
            problems.append(f"allows ingress from {_map(peer.get('ipBlock')).get('cidr')}")
        elif "namespaceSelector" in peer:
            problems.append("allows ingress from other namespaces")
        elif "podSelector" not in peer:
            problems.append(_unknown_peer(peer))
    return problems


def _unknown_peer(peer: Mapping[str, Any]) -> str:
    """A peer with no podSelector, namespaceSelector or ipBlock: the API rejects it."""
    return f"a peer without podSelector, namespaceSelector or ipBlock ({', '.join(peer) or 'empty'})"


K3S_NODE_ARGS = "k3s.io/node-args"
K3S_NO_POLICY_FLAG = "--disable-network-policy"


def _k3s_disables_policies(node: Mapping[str, Any]) -> bool:
    """Whether a K3s node was started with ``--disable-network-policy``.

    Raises ``EvidenceUnavailable`` when the node does not show readable start arguments:
    without them the embedded policy controller cannot be taken to run.
    """
    text = _map(_map(node.get("metadata")).get("annotations")).get(K3S_NODE_ARGS)
    try:
        args = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        args = None
    if not isinstance(args, list):
        raise EvidenceUnavailable(
            f"K3s node {_name(node)} shows no readable start arguments ({K3S_NODE_ARGS} annotation), "
            "so whether its NetworkPolicy controller runs cannot be told"
        )
    for index, arg in enumerate(map(str, args)):
        if arg == K3S_NO_POLICY_FLAG:
            following = str(args[index + 1]).lower() if index + 1 < len(args) else ""
            if following not in ("false", "0"):
                return True
        elif arg.startswith(K3S_NO_POLICY_FLAG + "="):
            if arg.partition("=")[2].lower() not in ("false", "0"):
                return True
    return False


def _cni_enforces(view: KubernetesView, evidence: Evidence) -> None:
    daemonsets = view.list(DAEMON_SETS, None)
    found = []
    notes = []
    for ds in daemonsets:
        name = _name(ds)
        containers = _map(_map(_map(ds.get("spec")).get("template")).get("spec")).get("containers") or []
        names = {str(_map(c).get("name")) for c in containers}
        if name.startswith(POLICY_CNI_DAEMONSETS) or (name == "aws-node" and EKS_POLICY_AGENT in names):
            ref = f"{_map(ds.get('metadata')).get('namespace')}/{name}"
            status = _map(ds.get("status"))
            desired, ready = status.get("desiredNumberScheduled"), status.get("numberReady")
            if isinstance(desired, int) and desired > 0 and ready == desired:
                found.append(ref)
            else:
                notes.append(f"{ref} not ready ({ready}/{desired} pods)")
    if not found:
        nodes = view.list(NODES)
        versions = [
            str(_map(_map(n.get("status")).get("nodeInfo")).get("kubeletVersion", "")) for n in nodes
        ]
        if versions and all("+k3s" in v for v in versions):
            disabled = sorted(_name(n) for n in nodes if _k3s_disables_policies(n))
            if disabled:
                notes.append(f"K3s started with {K3S_NO_POLICY_FLAG} ({', '.join(disabled)})")
            else:
                found.append("K3s embedded network-policy controller")
    evidence.expect(
        "NetworkPolicy enforcement by the CNI",
        expected="a NetworkPolicy-enforcing CNI ("
        + ", ".join(POLICY_CNI_DAEMONSETS)
        + ", EKS network-policy agent, K3s), every pod ready",
        actual=", ".join(found) or "none recognised" + (f": {'; '.join(notes)}" if notes else ""),
        ok=bool(found),
    )


def check_default_deny_ingress(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-SEG-002: a namespace-wide default-deny ingress policy, and no rule that opens it.

    Ingress between pods of the agent namespace is allowed (components may talk to each
    other); from other namespaces, IP blocks or anywhere it is not. A live cluster must
    also run a CNI that enforces NetworkPolicy.
    """
    scope = agent_scope(policy, namespace)
    templates = agent_templates(view, scope)
    policies = view.list(NETWORK_POLICIES, scope.namespace)
    deny_all = [
        _name(p)
        for p in policies
        if "Ingress" in policy_types(p)
        and _is_select_all(_map(p.get("spec")).get("podSelector") or {})
        and not _map(p.get("spec")).get("ingress")
    ]
    evidence.expect(
        f"default-deny ingress NetworkPolicy in {scope.namespace}",
        expected="a policy with podSelector {}, policyTypes Ingress and no ingress rule",
        actual=", ".join(deny_all) or "none",
        ok=bool(deny_all),
    )
    for template in templates:
        problems: list[str] = []
        for item in _selecting(policies, template, "Ingress"):
            for rule in _map(item.get("spec")).get("ingress") or []:
                problems.extend(f"{_name(item)} {p}" for p in _ingress_problems(_map(rule)))
        evidence.expect(
            f"{template.owner}: ingress allowed by NetworkPolicies",
            expected="none, or only from pods of the same namespace",
            actual="; ".join(problems) or "none",
            ok=not problems,
        )
    if view.live:
        _cni_enforces(view, evidence)


def declared_egress(policy: Policy) -> list[tuple[Network, int]]:
    """Return the ``(CIDR, port)`` pairs the policy allows out (firewall rules, dependencies)."""
    allowed: list[tuple[Network, int]] = []
    for rule in policy.firewall_rules.outbound_allowed:
        try:
            allowed.append((ipaddress.ip_network(rule.destination, strict=False), rule.port))
        except ValueError:
            continue  # a host name: NetworkPolicy cannot express it
    for dependency in policy.network.dependencies:
        host, _, port = dependency.rpartition(":")
        try:
            allowed.append((ipaddress.ip_network(host.strip("[]"), strict=False), int(port)))
        except ValueError:
            continue
    return allowed


def _within(network: Network, port: int, allowed: list[tuple[Network, int]]) -> bool:
    for allowed_net, allowed_port in allowed:
        if port != allowed_port:
            continue
        if isinstance(network, ipaddress.IPv4Network) and isinstance(allowed_net, ipaddress.IPv4Network):
            if network.subnet_of(allowed_net):
                return True
        elif isinstance(network, ipaddress.IPv6Network) and isinstance(allowed_net, ipaddress.IPv6Network):
            if network.subnet_of(allowed_net):
                return True
    return False


def _declared_cidr(cidr: str, port: int, allowed: list[tuple[Network, int]]) -> bool:
    try:
        return _within(ipaddress.ip_network(cidr, strict=False), port, allowed)
    except ValueError:
        return False


def _ports(rule: Mapping[str, Any]) -> list[tuple[str, object]]:
    ports = rule.get("ports")
    if not ports:
        return [("", None)]
    found = []
    for item in map(_map, ports):
        protocol = str(item.get("protocol") or "TCP")
        port = item.get("port")
        if item.get("endPort") not in (None, port):
            port = f"{port}-{item.get('endPort')}"
        found.append((protocol, port))
    return found


def _egress_verdicts(
    rule: Mapping[str, Any], allowed: list[tuple[Network, int]], hostnames_on_443: bool
) -> tuple[list[str], list[str]]:
    failures: list[str] = []
    warnings: list[str] = []
    peers: list[Mapping[str, Any] | None] = [_map(p) for p in rule.get("to") or []] or [None]
    ports = _ports(rule)
    if peers == [None] and ports == [("", None)]:
        return ["allows all egress"], []
    for peer in peers:
        for protocol, port in ports:
            target = f"{protocol}/{port}" if port is not None else "any port"
            if peer is not None and not {"ipBlock", "namespaceSelector", "podSelector"} & set(peer):
                failures.append(f"{target} to {_unknown_peer(peer)}")
                continue
            if port == DNS_PORT and protocol in ("UDP", "TCP"):
                if peer is None:
                    warnings.append(f"DNS ({target}) to any destination, not only cluster DNS")
                elif "ipBlock" in peer:
                    cidr = str(_map(peer.get("ipBlock")).get("cidr"))
                    if not _declared_cidr(cidr, DNS_PORT, allowed):
                        warnings.append(f"DNS ({target}) to {cidr}, not only cluster DNS")
                continue
            if peer is not None and "ipBlock" not in peer:
                if "namespaceSelector" in peer:
                    failures.append(f"{target} to pods of other namespaces")
                continue  # pods of the agent namespace
            cidr = str(_map(peer.get("ipBlock")).get("cidr")) if peer is not None else "0.0.0.0/0"
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                failures.append(f"{target} to unparseable CIDR {cidr}")
                continue
            if not isinstance(port, int):
                failures.append(f"{target} to {cidr}")
            elif _within(network, port, allowed):
                continue
            elif network in ANYWHERE and port == 443 and hostnames_on_443:
                warnings.append(
                    f"{target} to {cidr}: the allowed host names cannot be expressed in a "
                    "NetworkPolicy; use an FQDN-aware CNI policy or an egress proxy"
                )
            else:
                failures.append(f"{target} to {cidr} (not a declared destination)")
    return failures, warnings


def check_egress_restricted(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-SEG-003: egress of every agent pod restricted to declared destinations and DNS.

    Allowed: TCP/UDP 53 (cluster DNS), traffic to pods of the agent namespace, and the
    ``(CIDR, port)`` pairs of the policy's firewall rules and dependencies. ``0.0.0.0/0``
    on 443 is a warning when the policy allows host names on 443 (plain NetworkPolicy
    cannot express them); any other destination fails, as does a pod with no egress policy.
    """
    scope = agent_scope(policy, namespace)
    templates = agent_templates(view, scope)
    policies = view.list(NETWORK_POLICIES, scope.namespace)
    allowed = declared_egress(policy)
    hostnames_on_443 = any(
        rule.port == 443 and not _is_network(rule.destination)
        for rule in policy.firewall_rules.outbound_allowed
    )
    evidence.observe(
        "declared egress destinations",
        ", ".join(f"{net}:{port}" for net, port in allowed) or "no CIDR declared (host names only)",
    )
    for template in templates:
        selecting = _selecting(policies, template, "Egress")
        if not selecting:
            evidence.expect(
                f"{template.owner}: egress NetworkPolicy",
                expected="at least one policy with policyTypes Egress selecting the pod",
                actual="none: all egress allowed",
                ok=False,
            )
            continue
        failures: list[str] = []
        for item in selecting:
            for rule in _map(item.get("spec")).get("egress") or []:
                found, warned = _egress_verdicts(_map(rule), allowed, hostnames_on_443)
                failures.extend(f"{_name(item)}: {f}" for f in found)
                for warning in warned:
                    evidence.warn(
                        f"{template.owner}: {_name(item)}", expected="declared destinations", actual=warning
                    )
        evidence.expect(
            f"{template.owner}: egress allowed by {', '.join(_name(p) for p in selecting)}",
            expected="only DNS, the agent namespace and declared CIDR:port destinations",
            actual="; ".join(failures) or "as expected",
            ok=not failures,
        )


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True
