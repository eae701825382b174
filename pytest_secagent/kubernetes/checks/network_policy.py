"""NetworkPolicies around the agent: SA-SEG-002 (default-deny ingress) and SA-SEG-003 (egress).

NetworkPolicies are additive: a pod is reachable by the union of every rule of every
policy that selects it. Both checks therefore judge that union, per agent pod spec.

Each policy is judged as the API server applies it: without ``policyTypes`` it is an
Ingress policy, and an Egress one too only when its ``egress`` list is not empty. A policy
the API server would reject (an unknown policy type, a malformed selector, a field of the
wrong shape, an API version no supported cluster serves) is not applied, so it restricts
nothing; what it would have decided is reported as not verifiable, naming the object,
unless the control fails on other grounds anyway.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import agent_scope
from pytest_secagent.kubernetes.checks.workload import judged_templates
from pytest_secagent.kubernetes.resources import DAEMON_SETS, NETWORK_POLICIES, NODES
from pytest_secagent.kubernetes.view import KubernetesView, Resource
from pytest_secagent.kubernetes.workloads import PodTemplate, label_selector_matches
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy

__all__ = [
    "POLICY_CNI_DAEMONSETS",
    "InvalidNetworkPolicy",
    "check_default_deny_ingress",
    "check_egress_restricted",
    "declared_egress",
    "dns_peer_verdict",
    "policy_problems",
    "policy_types",
    "selector_problems",
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
CNI_EXPECTATION_NAME = "NetworkPolicy enforcement by the CNI"
CNI_EXPECTATION = (
    "a NetworkPolicy-enforcing CNI ("
    + ", ".join(POLICY_CNI_DAEMONSETS)
    + ", EKS network-policy agent, K3s), every pod ready"
)
DNS_PORT = 53
DNS_NAMESPACE = "kube-system"
DNS_POD_LABEL = "k8s-app"
DNS_POD_NAMES = frozenset({"kube-dns", "coredns"})
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
ANYWHERE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
KubeObject = dict[str, Any]

POLICY_TYPES = ("Ingress", "Egress")
SERVED_API_VERSION = "networking.k8s.io/v1"
LEGACY_NETWORK_POLICIES = Resource("extensions", "v1beta1", "networkpolicies")
"""NetworkPolicy under the ``extensions`` group: no Kubernetes release since 1.16 serves it."""
SPEC_FIELDS = frozenset({"podSelector", "policyTypes", "ingress", "egress"})
RULE_FIELDS = {"ingress": frozenset({"from", "ports"}), "egress": frozenset({"to", "ports"})}
PEER_FIELDS = {"ingress": "from", "egress": "to"}
SELECTOR_FIELDS = frozenset({"matchLabels", "matchExpressions"})
SELECTOR_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})
PROTOCOLS = frozenset({"TCP", "UDP", "SCTP"})
UNUSABLE_EXPECTATION = "a NetworkPolicy the API server accepts"


class InvalidNetworkPolicy(ValueError):
    """The API server would reject this NetworkPolicy, so it is not applied."""


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_map(obj.get("metadata")).get("name", ""))


def _label(obj: Mapping[str, Any]) -> str:
    metadata = _map(obj.get("metadata"))
    return f"NetworkPolicy {metadata.get('namespace') or '(install namespace)'}/{metadata.get('name', '')}"


def policy_types(policy: Mapping[str, Any]) -> set[str]:
    """Return the policy's effective types, defaulted as the API server does.

    Without ``policyTypes`` (absent, null or ``[]``) a policy is an Ingress policy, and an
    Egress policy too only when its ``egress`` list is not empty: ``egress: []`` or
    ``egress: null`` leaves egress open. Raises :class:`InvalidNetworkPolicy` for values
    the API rejects (types are case-sensitive: ``ingress`` is not ``Ingress``).
    """
    spec = _map(policy.get("spec"))
    declared = spec.get("policyTypes")
    if declared is None or declared == []:
        egress = spec.get("egress")
        return {"Ingress", "Egress"} if isinstance(egress, list) and egress else {"Ingress"}
    if not isinstance(declared, list):
        raise InvalidNetworkPolicy(f"policyTypes is not a list ({declared!r})")
    unknown = [t for t in declared if t not in POLICY_TYPES]
    if unknown:
        raise InvalidNetworkPolicy(
            f"policyTypes {unknown!r} (only Ingress and Egress are allowed; the names are case-sensitive)"
        )
    if len(declared) > len(POLICY_TYPES):
        raise InvalidNetworkPolicy(f"policyTypes lists {len(declared)} types (at most 2)")
    return {str(t) for t in declared}


def selector_problems(selector: object, where: str) -> list[str]:
    """Return what the API would reject in a LabelSelector (``None`` is an absent selector).

    ``where`` names the field in the messages. Operators are case-sensitive, label values
    are strings, and a field the LabelSelector type does not have is rejected.
    """
    if selector is None:
        return []
    if not isinstance(selector, Mapping):
        return [f"{where} is not a mapping ({selector!r})"]
    problems = [f"{where} has unknown field {key!r}" for key in selector if key not in SELECTOR_FIELDS]
    labels = selector.get("matchLabels")
    if labels is not None and not (
        isinstance(labels, Mapping) and all(isinstance(v, str) for v in labels.values())
    ):
        problems.append(f"{where}.matchLabels is not a mapping of strings ({labels!r})")
    expressions = selector.get("matchExpressions")
    if expressions is not None and not isinstance(expressions, list):
        problems.append(f"{where}.matchExpressions is not a list ({expressions!r})")
        expressions = None
    for index, expression in enumerate(expressions or []):
        entry = _map(expression)
        operator, values = entry.get("operator"), entry.get("values")
        label = f"{where}.matchExpressions[{index}]"
        if not entry or not isinstance(entry.get("key"), str) or not entry.get("key"):
            problems.append(f"{label} has no key")
        if operator not in SELECTOR_OPERATORS:
            problems.append(f"{label} operator {operator!r} (one of In, NotIn, Exists, DoesNotExist)")
        elif values is not None and not (
            isinstance(values, list) and all(isinstance(v, str) for v in values)
        ):
            problems.append(f"{label} values is not a list of strings ({values!r})")
        elif operator in ("In", "NotIn") and not values:
            problems.append(f"{label} operator {operator} without values")
        elif operator in ("Exists", "DoesNotExist") and values:
            problems.append(f"{label} operator {operator} with values")
    return problems


def _rule_problems(rules: object, direction: str) -> list[str]:
    if rules is None:
        return []
    if not isinstance(rules, list):
        return [f"{direction} is not a list ({rules!r})"]
    problems: list[str] = []
    for index, rule in enumerate(rules):
        where = f"{direction}[{index}]"
        if rule is None:
            continue  # an empty rule, as {}
        if not isinstance(rule, Mapping):
            problems.append(f"{where} is not a mapping ({rule!r})")
            continue
        known = RULE_FIELDS[direction]
        problems += [f"{where} has unknown field {key!r}" for key in rule if key not in known]
        peers = rule.get(PEER_FIELDS[direction])
        if peers is not None and not isinstance(peers, list):
            problems.append(f"{where}.{PEER_FIELDS[direction]} is not a list ({peers!r})")
        for number, peer in enumerate(peers if isinstance(peers, list) else []):
            for key in ("podSelector", "namespaceSelector"):
                problems += selector_problems(
                    _map(peer).get(key), f"{where}.{PEER_FIELDS[direction]}[{number}].{key}"
                )
        ports = rule.get("ports")
        if ports is not None and not isinstance(ports, list):
            problems.append(f"{where}.ports is not a list ({ports!r})")
        for number, port in enumerate(ports if isinstance(ports, list) else []):
            protocol = _map(port).get("protocol")
            if protocol is not None and protocol not in PROTOCOLS:
                problems.append(
                    f"{where}.ports[{number}].protocol {protocol!r} (TCP, UDP or SCTP; case-sensitive)"
                )
    return problems


def policy_problems(policy: Mapping[str, Any]) -> list[str]:
    """Return why the API server would reject ``policy`` (an empty list: it is accepted)."""
    spec = policy.get("spec")
    if spec is not None and not isinstance(spec, Mapping):
        return [f"spec is not a mapping ({spec!r})"]
    spec = _map(spec)
    problems = [f"spec has unknown field {key!r}" for key in spec if key not in SPEC_FIELDS]
    problems += selector_problems(spec.get("podSelector"), "podSelector")
    try:
        policy_types(policy)
    except InvalidNetworkPolicy as exc:
        problems.append(str(exc))
    for direction in ("ingress", "egress"):
        problems += _rule_problems(spec.get(direction), direction)
    return problems


def _field(spec: Mapping[str, Any], name: str) -> object:
    """A spec field looked up regardless of letter case (what a rejected policy meant)."""
    for key, value in spec.items():
        if str(key).lower() == name.lower():
            return value
    return None


def _may_apply(policy: Mapping[str, Any], kind: str) -> bool:
    """Whether a rejected policy was meant to be of ``kind`` (Ingress or Egress), as far as can be told."""
    spec = _map(policy.get("spec"))
    declared = _field(spec, "policyTypes")
    if isinstance(declared, str):
        declared = [declared]
    named = {str(t).strip().lower() for t in declared} if isinstance(declared, list) else set()
    if named & {"ingress", "egress"}:
        return kind.lower() in named
    if declared is not None and not isinstance(declared, list):
        return True
    # No recognisable type: the defaults of a policy without policyTypes.
    return kind == "Ingress" or bool(_field(spec, "egress"))


@dataclass(frozen=True)
class _Policies:
    """The NetworkPolicies of the agent namespace: those the API accepts, and the rejected ones."""

    valid: list[KubeObject]
    invalid: list[tuple[KubeObject, list[str]]]

    def touching(self, template: PodTemplate, kind: str) -> list[str]:
        """Describe each rejected policy of ``kind`` that selects (or may select) the template's pods."""
        found = []
        for item, problems in self.invalid:
            selector = _field(_map(item.get("spec")), "podSelector")
            if _may_apply(item, kind) and (
                selector_problems(selector, "podSelector")
                or label_selector_matches(_map(selector), template.labels)
            ):
                found.append(f"{_label(item)} is rejected by the API server ({'; '.join(problems)})")
        return found

    def describe_invalid(self, kind: str) -> str:
        """Every rejected policy of ``kind`` with its reasons ("" when there is none)."""
        return "; ".join(
            f"{_label(item)} is rejected by the API server ({'; '.join(problems)})"
            for item, problems in self.invalid
            if _may_apply(item, kind)
        )


def _read_policies(view: KubernetesView, namespace: str, evidence: Evidence) -> _Policies:
    """The policies of ``namespace``; on rendered manifests a null or empty namespace is it too.

    A rendered policy of an API version no supported cluster serves cannot be applied: it
    counts as absent, with a warning naming it.
    """
    if view.live:
        found = view.list(NETWORK_POLICIES, namespace)
    else:
        found = [
            p
            for p in view.list(NETWORK_POLICIES, None) + view.list(LEGACY_NETWORK_POLICIES, None)
            if _map(p.get("metadata")).get("namespace") in (namespace, None, "")
        ]
    valid: list[KubeObject] = []
    invalid: list[tuple[KubeObject, list[str]]] = []
    for item in found:
        api_version = item.get("apiVersion")
        if not view.live and api_version != SERVED_API_VERSION:
            evidence.warn(
                _label(item),
                expected=f"apiVersion {SERVED_API_VERSION}",
                actual=f"{api_version}: no supported Kubernetes release serves it, so it is not applied "
                "and counts as absent",
            )
            continue
        problems = policy_problems(item)
        if problems:
            invalid.append((item, problems))
        else:
            valid.append(item)
    return _Policies(valid, invalid)


def _settle(evidence: Evidence, undecided: list[tuple[str, str]]) -> None:
    """Report what rejected policies left undecided: an error, unless the control fails anyway."""
    if not undecided:
        return
    if evidence.failures:
        for name, reason in undecided:
            evidence.warn(name, expected=UNUSABLE_EXPECTATION, actual=f"not verifiable: {reason}")
        return
    raise EvidenceUnavailable("; ".join(f"{name}: {reason}" for name, reason in undecided))


def _selecting(policies: list[KubeObject], template: PodTemplate, kind: str) -> list[KubeObject]:
    """The (valid) policies of ``kind`` that select the template's pods."""
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


def _peer_fields(peer: Mapping[str, Any]) -> set[str]:
    """The peer fields that are set (a null field is an absent one)."""
    return {key for key in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(key) is not None}


def _ingress_problems(rule: Mapping[str, Any]) -> list[str]:
    peers = rule.get("from")
    if not peers:
        return ["allows ingress from anywhere"]
    problems = []
    for peer in map(_map, peers):
        fields = _peer_fields(peer)
        if "ipBlock" in fields:
            problems.append(f"allows ingress from {_map(peer.get('ipBlock')).get('cidr')}")
        elif "namespaceSelector" in fields:
            problems.append("allows ingress from other namespaces")
        elif "podSelector" not in fields:
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
        versions = [str(_map(_map(n.get("status")).get("nodeInfo")).get("kubeletVersion", "")) for n in nodes]
        if versions and all("+k3s" in v for v in versions):
            disabled = sorted(_name(n) for n in nodes if _k3s_disables_policies(n))
            if disabled:
                notes.append(f"K3s started with {K3S_NO_POLICY_FLAG} ({', '.join(disabled)})")
            else:
                found.append("K3s embedded network-policy controller")
    evidence.expect(
        CNI_EXPECTATION_NAME,
        expected=CNI_EXPECTATION,
        actual=", ".join(found) or "none recognised" + (f": {'; '.join(notes)}" if notes else ""),
        ok=bool(found),
    )


def check_default_deny_ingress(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-SEG-002: a namespace-wide default-deny ingress policy, and no rule that opens it.

    Ingress between pods of the agent namespace is allowed (components may talk to each
    other); from other namespaces, IP blocks or anywhere it is not. A live cluster must
    also run a CNI that enforces NetworkPolicy; rendered manifests cannot show the CNI, so
    there that part is recorded as not observed and the control passes at best partially.
    """
    scope = agent_scope(policy, namespace)
    templates = judged_templates(view, scope, evidence)
    policies = _read_policies(view, scope.namespace, evidence)
    undecided: list[tuple[str, str]] = []
    deny_all = [
        _name(p)
        for p in policies.valid
        if "Ingress" in policy_types(p)
        and _is_select_all(_map(p.get("spec")).get("podSelector") or {})
        and not _map(p.get("spec")).get("ingress")
    ]
    name = f"default-deny ingress NetworkPolicy in {scope.namespace}"
    rejected = policies.describe_invalid("Ingress")
    if deny_all or not rejected:
        evidence.expect(
            name,
            expected="a policy with podSelector {}, policyTypes Ingress and no ingress rule",
            actual=", ".join(deny_all) or "none",
            ok=bool(deny_all),
        )
    else:
        undecided.append((name, f"none among the accepted policies; {rejected}"))
    for template in templates:
        problems: list[str] = []
        for item in _selecting(policies.valid, template, "Ingress"):
            for rule in _map(item.get("spec")).get("ingress") or []:
                problems.extend(f"{_name(item)} {p}" for p in _ingress_problems(_map(rule)))
        _judge_template(
            evidence, undecided, f"{template.owner}: ingress allowed by NetworkPolicies",
            expected="none, or only from pods of the same namespace",
            problems=problems, touching=policies.touching(template, "Ingress"), clean="none",
        )
    _enforcement(view, evidence)
    _settle(evidence, undecided)


def _judge_template(
    evidence: Evidence, undecided: list[tuple[str, str]], name: str, *, expected: str,
    problems: list[str], touching: list[str], clean: str,
) -> None:
    """Record one pod's verdict; with no problem but a rejected policy touching it, leave it undecided.

    A policy the API would reject might have opened what the accepted ones close, so a clean
    result next to one is not a pass (see :func:`_settle`).
    """
    if problems or not touching:
        evidence.expect(name, expected=expected, actual="; ".join(problems) or clean, ok=not problems)
    else:
        undecided.append((name, "; ".join(touching)))


def _enforcement(view: KubernetesView, evidence: Evidence) -> None:
    """A NetworkPolicy counts only where the CNI enforces it: observed live, unobserved on files."""
    if view.live:
        _cni_enforces(view, evidence)
    else:
        evidence.unobserved(
            CNI_EXPECTATION_NAME,
            expected=CNI_EXPECTATION,
            reason="rendered manifests cannot show which CNI the cluster runs or whether it enforces "
            "NetworkPolicy; check the cluster (k8s://) to verify it",
        )


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


def _selects_dns_pods(selector: object) -> bool:
    """Whether a pod selector selects only cluster DNS pods (``k8s-app`` kube-dns or coredns)."""
    selector = _map(selector)
    labels = _map(selector.get("matchLabels"))
    if str(labels.get(DNS_POD_LABEL)) in DNS_POD_NAMES:
        return True
    for expression in selector.get("matchExpressions") or []:
        entry = _map(expression)
        values = {str(v) for v in entry.get("values") or []}
        if entry.get("key") == DNS_POD_LABEL and entry.get("operator") == "In" and values <= DNS_POD_NAMES:
            return bool(values)
    return False


def _selects_only_dns_namespace(selector: object) -> bool | None:
    """Whether a namespace selector picks only kube-system; ``None`` for ``{}`` (every namespace)."""
    selector = _map(selector)
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return None
    labels = _map(selector.get("matchLabels"))
    if labels.get(NAMESPACE_NAME_LABEL) == DNS_NAMESPACE:
        return True
    for expression in selector.get("matchExpressions") or []:
        entry = _map(expression)
        if (
            entry.get("key") == NAMESPACE_NAME_LABEL
            and entry.get("operator") == "In"
            and [str(v) for v in entry.get("values") or []] == [DNS_NAMESPACE]
        ):
            return True
    return False


def dns_peer_verdict(peer: Mapping[str, Any] | None, allowed: list[tuple[Network, int]]) -> tuple[str, str]:
    """Judge a peer an egress rule allows port 53 to: ``("ok"|"warn"|"fail", description)``.

    Port 53 is allowed only to cluster DNS (spec §3.3): the DNS pods (``k8s-app`` kube-dns or
    coredns, in kube-system or selected in every namespace), pods of the agent namespace, or
    a CIDR the policy declares on port 53 (the cluster DNS service). No ``to`` at all means
    every destination, so DNS (and TCP/53 tunnels) to any resolver on the internet: a failure.
    """
    if peer is None:
        return "fail", "any destination"
    if "ipBlock" in peer:
        cidr = str(_map(peer.get("ipBlock")).get("cidr"))
        return ("ok", cidr) if _declared_cidr(cidr, DNS_PORT, allowed) else ("fail", cidr)
    if "namespaceSelector" not in peer:
        return "ok", "pods of the agent namespace"
    namespaces = _selects_only_dns_namespace(peer.get("namespaceSelector"))
    dns_pods = _selects_dns_pods(peer.get("podSelector"))
    if dns_pods and namespaces is not False:
        return "ok", "the cluster DNS pods"
    if namespaces and dns_pods is False:
        return "warn", f"every pod of {DNS_NAMESPACE}"
    return "fail", f"pods selected by {_compact_peer(peer)}"


def _compact_peer(peer: Mapping[str, Any]) -> str:
    shown = {key: peer[key] for key in ("namespaceSelector", "podSelector") if key in peer}
    return json.dumps(shown, sort_keys=True, separators=(",", ":"), default=str)


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
                verdict, note = dns_peer_verdict(peer, allowed)
                if verdict == "fail":
                    failures.append(f"DNS ({target}) to {note} (port 53 is allowed only to cluster DNS)")
                elif verdict == "warn":
                    warnings.append(f"DNS ({target}) to {note}, not only the cluster DNS pods")
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
    cannot express them); any other destination fails, as does a pod no egress policy
    selects. A policy is an egress policy only as the API server applies it: ``egress: []``
    without ``policyTypes`` restricts nothing. Like SA-SEG-002, the policies count only where
    the CNI enforces them: checked live, recorded as unobserved on rendered manifests.
    """
    scope = agent_scope(policy, namespace)
    templates = judged_templates(view, scope, evidence)
    policies = _read_policies(view, scope.namespace, evidence)
    allowed = declared_egress(policy)
    hostnames_on_443 = any(
        rule.port == 443 and not _is_network(rule.destination)
        for rule in policy.firewall_rules.outbound_allowed
    )
    evidence.observe(
        "declared egress destinations",
        ", ".join(f"{net}:{port}" for net, port in allowed) or "no CIDR declared (host names only)",
    )
    undecided: list[tuple[str, str]] = []
    for template in templates:
        selecting = _selecting(policies.valid, template, "Egress")
        touching = policies.touching(template, "Egress")
        if not selecting:
            name = f"{template.owner}: egress NetworkPolicy"
            if touching:
                undecided.append((name, "; ".join(touching)))
                continue
            evidence.expect(
                name,
                expected="at least one policy with policyTypes Egress selecting the pod",
                actual="none: all egress allowed" + _egress_notes(policies.valid, template),
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
        by = ", ".join(_name(p) for p in selecting)
        _judge_template(
            evidence, undecided, f"{template.owner}: egress allowed by {by}",
            expected="only DNS, the agent namespace and declared CIDR:port destinations",
            problems=failures, touching=touching, clean="as expected",
        )
    _enforcement(view, evidence)
    _settle(evidence, undecided)


def _egress_notes(policies: list[KubeObject], template: PodTemplate) -> str:
    """Name the policies that select the pod but, as applied, are not egress policies."""
    ingress_only = [
        _name(p)
        for p in _selecting(policies, template, "Ingress")
        if "Egress" not in policy_types(p) and "egress" in _map(p.get("spec"))
    ]
    if not ingress_only:
        return ""
    return (
        f" ({', '.join(ingress_only)} sets an empty egress list without policyTypes, so the API server "
        "makes it an Ingress policy only)"
    )


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True
