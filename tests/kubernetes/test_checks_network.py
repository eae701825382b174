"""Network checks: SA-SEG-002, SA-SEG-003, SA-NET-001 and SA-NET-009, on rendered manifests."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import exposure, network_policy, tls_bypass
from pytest_secagent.kubernetes.checks.scope import ContainerRef
from pytest_secagent.kubernetes.checks.textscan import TextItem, container_items, tls_bypass_kinds
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.workloads import pod_templates
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy import load_policy
from pytest_secagent.policy.model import FirewallRules, OutboundRule
from tests.kubernetes.checkviews import (
    NAMESPACE,
    container,
    deployment,
    failures,
    manifest_view,
    policy,
    warnings,
)
from tests.kubernetes.conftest import ApiServerFactory
from tests.kubernetes.scenario_files import HARDENED, POLICY, materialize


def netpol(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"podSelector": {}, **spec},
    }


DENY_INGRESS = netpol("deny-ingress", policyTypes=["Ingress"])
DNS = {
    "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def egress_policy(*rules: dict[str, Any]) -> dict[str, Any]:
    return netpol("egress", policyTypes=["Egress"], egress=list(rules))


def cidr_policy() -> Any:
    rules = FirewallRules(
        outbound_allowed=[
            OutboundRule(destination="*.atlan.com", port=443),
            OutboundRule(destination="203.0.113.0/24", port=443),
        ]
    )
    return dataclasses.replace(policy(), firewall_rules=rules)


@pytest.mark.parametrize(
    ("spec", "types"),
    [
        ({}, {"Ingress"}),
        ({"egress": []}, {"Ingress"}),
        ({"egress": None}, {"Ingress"}),
        ({"egress": [{}]}, {"Ingress", "Egress"}),
        ({"policyTypes": [], "egress": []}, {"Ingress"}),
        ({"policyTypes": None, "egress": [{}]}, {"Ingress", "Egress"}),
        ({"policyTypes": ["Egress"]}, {"Egress"}),
        ({"policyTypes": ["Egress"], "egress": []}, {"Egress"}),
        ({"ingress": None}, {"Ingress"}),
    ],
)
def test_policy_types_default_as_the_api_server_does(spec: dict[str, Any], types: set[str]) -> None:
    """Without policyTypes, Egress is added only for a non-empty egress list."""
    assert network_policy.policy_types(netpol("p", **spec)) == types


@pytest.mark.parametrize(
    "declared",
    [["ingress"], ["EGRESS"], ["Ingress", "Egres"], "Egress", ["Ingress", "Egress", "Egress"], [None]],
)
def test_policy_types_the_api_rejects_are_no_types(declared: object) -> None:
    with pytest.raises(network_policy.InvalidNetworkPolicy, match="policyTypes"):
        network_policy.policy_types(netpol("p", policyTypes=declared))


def test_default_deny_ingress_present(tmp_path: Path) -> None:
    evidence = Evidence()
    network_policy.check_default_deny_ingress(
        manifest_view(tmp_path, deployment(), DENY_INGRESS), policy(), evidence
    )
    assert failures(evidence) == []


def test_no_default_deny_and_an_opening_rule(tmp_path: Path) -> None:
    opening = netpol(
        "from-monitoring",
        podSelector={"matchLabels": {"app": "agent"}},
        ingress=[
            {"from": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]},
            {"from": [{"podSelector": {}}]},
        ],
    )
    evidence = Evidence()
    network_policy.check_default_deny_ingress(
        manifest_view(tmp_path, deployment(), opening), policy(), evidence
    )
    assert failures(evidence) == [
        "default-deny ingress NetworkPolicy in atlan-agent: none",
        "Deployment/agent in namespace atlan-agent: ingress allowed by NetworkPolicies: "
        "from-monitoring allows ingress from other namespaces",
    ]


def test_a_policy_for_other_pods_does_not_open_the_agent(tmp_path: Path) -> None:
    other = netpol("other", podSelector={"matchLabels": {"app": "other"}}, ingress=[{}])
    evidence = Evidence()
    network_policy.check_default_deny_ingress(
        manifest_view(tmp_path, deployment(), DENY_INGRESS, other), policy(), evidence
    )
    assert failures(evidence) == []


def test_egress_to_declared_cidr_and_dns_passes(tmp_path: Path) -> None:
    https = {"to": [{"ipBlock": {"cidr": "203.0.113.16/28"}}], "ports": [{"port": 443}]}
    evidence = Evidence()
    network_policy.check_egress_restricted(
        manifest_view(tmp_path, deployment(), egress_policy(DNS, https)), cidr_policy(), evidence
    )
    assert failures(evidence) == []
    assert warnings(evidence) == []


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({}, "allows all egress"),
        (
            {"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}], "ports": [{"port": 443}]},
            "198.51.100.0/24 (not a declared",
        ),
        ({"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}, "any port to 203.0.113.0/24"),
        (
            {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}], "ports": [{"port": 22}]},
            "TCP/22 to 203.0.113.0/24",
        ),
        (
            {"to": [{"namespaceSelector": {}}], "ports": [{"port": 5432}]},
            "TCP/5432 to pods of other namespaces",
        ),
        ({"ports": [{"port": 443, "endPort": 8443}]}, "TCP/443-8443 to 0.0.0.0/0"),
        (
            {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": "https"}]},
            "TCP/https to 0.0.0.0/0",
        ),
        ({"to": [{}], "ports": [{"port": 443}]}, "TCP/443 to a peer without podSelector"),
        ({"to": [{"ipblock": {"cidr": "0.0.0.0/0"}}]}, "any port to a peer without podSelector"),
    ],
)
def test_egress_problems(tmp_path: Path, rule: dict[str, Any], problem: str) -> None:
    evidence = Evidence()
    network_policy.check_egress_restricted(
        manifest_view(tmp_path, deployment(), egress_policy(DNS, rule)), cidr_policy(), evidence
    )
    [failure] = failures(evidence)
    assert problem in failure


def test_anywhere_on_443_is_a_warning_when_host_names_are_allowed(tmp_path: Path) -> None:
    rule = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}], "ports": [{"port": 443}]}
    evidence = Evidence()
    network_policy.check_egress_restricted(
        manifest_view(tmp_path, deployment(), egress_policy(rule)), cidr_policy(), evidence
    )
    assert failures(evidence) == []
    assert "cannot be expressed in a NetworkPolicy" in warnings(evidence)[0]


def test_dns_to_a_public_resolver_fails(tmp_path: Path) -> None:
    """Port 53 is allowed only to cluster DNS (spec §3.3): DNS to anywhere is a tunnel out."""
    rule = {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "UDP", "port": 53}]}
    evidence = Evidence()
    network_policy.check_egress_restricted(
        manifest_view(tmp_path, deployment(), egress_policy(DNS, rule)), cidr_policy(), evidence
    )
    assert failures(evidence) == [
        "Deployment/agent in namespace atlan-agent: egress allowed by egress: egress: DNS (UDP/53) to "
        "0.0.0.0/0 (port 53 is allowed only to cluster DNS)"
    ]


def test_ingress_from_a_peer_the_api_would_reject_is_not_a_restriction(tmp_path: Path) -> None:
    odd = netpol("odd", ingress=[{"from": [{}]}, {"from": [{"ipblock": {"cidr": "0.0.0.0/0"}}]}])
    evidence = Evidence()
    network_policy.check_default_deny_ingress(
        manifest_view(tmp_path, deployment(), DENY_INGRESS, odd), policy(), evidence
    )
    assert failures(evidence) == [
        "Deployment/agent in namespace atlan-agent: ingress allowed by NetworkPolicies: "
        "odd a peer without podSelector, namespaceSelector or ipBlock (empty); "
        "odd a peer without podSelector, namespaceSelector or ipBlock (ipblock)"
    ]


def test_no_egress_policy_means_everything_is_allowed(tmp_path: Path) -> None:
    evidence = Evidence()
    network_policy.check_egress_restricted(
        manifest_view(tmp_path, deployment(), DENY_INGRESS), cidr_policy(), evidence
    )
    assert failures(evidence) == [
        "Deployment/agent in namespace atlan-agent: egress NetworkPolicy: none: all egress allowed"
    ]


def test_deny_all_egress_is_restricted(tmp_path: Path) -> None:
    evidence = Evidence()
    network_policy.check_egress_restricted(
        manifest_view(tmp_path, deployment(), egress_policy()), cidr_policy(), evidence
    )
    assert failures(evidence) == []


def test_inbound_exposure_objects(tmp_path: Path) -> None:
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"}, "spec": {"type": "NodePort"}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ext"},
            "spec": {"externalIPs": ["192.0.2.7"]},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "internal"},
            "spec": {"type": "ClusterIP"},
        },
        {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ui"}, "spec": {}},
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "r"},
            "spec": {},
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "ReferenceGrant",
            "metadata": {"name": "g"},
            "spec": {
                "from": [{"group": "", "kind": "HTTPRoute", "namespace": "edge"}],
                "to": [{"group": "", "kind": "Service"}],
            },
        },
    ]
    evidence = Evidence()
    exposure.check_no_inbound_exposure(manifest_view(tmp_path, deployment(), *objects), policy(), evidence)
    [failure] = failures(evidence)
    for text in (
        "Service/np type NodePort",
        "Service/ext externalIPs 192.0.2.7",
        "Ingress/ui",
        "HTTPRoute/r",
        "ReferenceGrant/g lets HTTPRoute in edge reach Services",
    ):
        assert text in failure
    assert "internal" not in failure


@pytest.mark.parametrize(
    ("key", "text", "found"),
    [
        ("NODE_TLS_REJECT_UNAUTHORIZED", "0", True),
        ("NODE_TLS_REJECT_UNAUTHORIZED", "1", False),
        ("PYTHONHTTPSVERIFY", "0", True),
        ("REQUESTS_CA_BUNDLE", "", True),
        ("REQUESTS_CA_BUNDLE", "/etc/ssl/ca.pem", False),
        ("GODEBUG", "x509ignoreCN=0", True),
        ("config.yaml", "tls:\n  insecureSkipVerify: true\n", True),
        ("config.yaml", "tls:\n  insecureSkipVerify: false\n", False),
        ("config", "s3:\n  insecure: true\n", True),
        ("config", "s3:\n  insecure: false\n", False),
        ("DATABASE_URL", "postgres://db:5432/x?sslmode=disable", True),
        ("", "--allow-insecure-registry --verbose", True),
        ("", "--insecure-skip-tls-verify=false", False),
        ("ATLAN_BASE_URL", "http://acme.atlan.com", True),
        ("ATLAN_BASE_URL", "https://acme.atlan.com", False),
        ("S3_ENDPOINT", "http://s3.eu-west-1.amazonaws.com", True),
        ("verify_ssl", "False", True),
    ],
)
def test_tls_bypass_patterns(key: str, text: str, found: bool) -> None:
    assert bool(tls_bypass_kinds(TextItem("x", key, text))) is found


def test_referenced_values_are_not_scanned() -> None:
    assert tls_bypass_kinds(TextItem("x", "NODE_TLS_REJECT_UNAUTHORIZED", "", literal=False)) == []


def test_tls_bypass_found_in_config_maps_and_args(tmp_path: Path) -> None:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "agent"},
        "data": {"values.yaml": "artifactRepository:\n  s3:\n    insecure: true\n"},
    }
    app = container(args=["--registry", "r.example", "--insecure-registry"])
    evidence = Evidence()
    tls_bypass.check_no_tls_bypass(
        manifest_view(tmp_path, deployment(containers=[app]), config_map), policy(), evidence
    )
    [failure] = failures(evidence)
    assert "ConfigMap/agent key values.yaml (insecure: true)" in failure
    assert "container app args (insecure command-line flag)" in failure


def test_container_items_cover_env_command_and_args(tmp_path: Path) -> None:
    view = manifest_view(tmp_path, deployment())
    [template] = pod_templates(view, NAMESPACE)
    ref = ContainerRef(
        template, "container", {"name": "c", "env": [{"name": "A", "value": "1"}], "command": ["x"]}
    )
    assert [i.where for i in container_items(ref)] == [
        "Deployment/agent container c env A",
        "Deployment/agent container c command",
    ]


# -- the CNI must enforce NetworkPolicy (live) --------------------------------------------------


def _edit_documents(path: Path, edit: Any) -> None:
    documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    for document in documents:
        for obj in document.get("items", [document]):
            edit(obj)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")


def _cni_verdict(factory: ApiServerFactory, scenario: Path, version: str | None = None) -> str:
    server = factory(scenario, version=version)
    view = LiveClusterView.from_kubeconfig(str(server.kubeconfig_for("auditor")), timeout=5, target_id="k8s:t")
    evidence = Evidence()
    try:
        network_policy.check_default_deny_ingress(view, load_policy(POLICY).policy, evidence)
    finally:
        view.close()
    [result] = [o for o in evidence.observations if o.name == "NetworkPolicy enforcement by the CNI"]
    return f"{result.verdict.value}: {result.actual}"


def test_cni_daemonset_without_ready_pods_enforces_nothing(
    k8s_apiserver_factory: ApiServerFactory, tmp_path: Path
) -> None:
    scenario = materialize(tmp_path / "s", HARDENED)
    assert _cni_verdict(k8s_apiserver_factory, scenario) == "ok: kube-system/calico-node"
    _edit_documents(scenario / "cluster-cni.yaml", lambda ds: ds.update(status={"numberReady": 0}))
    assert _cni_verdict(k8s_apiserver_factory, scenario) == (
        "fail: none recognised: kube-system/calico-node not ready (0/3 pods)"
    )


def test_k3s_started_without_its_policy_controller_enforces_nothing(
    k8s_apiserver_factory: ApiServerFactory, tmp_path: Path
) -> None:
    scenario = materialize(tmp_path / "s", HARDENED)
    (scenario / "cluster-cni.yaml").unlink()
    k3s = "v1.30.4+k3s1"

    def started(node: dict[str, Any]) -> None:
        args = ["server", "--write-kubeconfig-mode", "0600"]
        node["metadata"]["annotations"] = {"k3s.io/node-args": json.dumps(args)}

    _edit_documents(scenario / "cluster-nodes.yaml", started)
    assert _cni_verdict(k8s_apiserver_factory, scenario, k3s) == "ok: K3s embedded network-policy controller"

    def disable(node: dict[str, Any]) -> None:
        args = ["server", "--disable-network-policy", "--write-kubeconfig-mode", "0600"]
        node["metadata"]["annotations"] = {"k3s.io/node-args": json.dumps(args)}

    _edit_documents(scenario / "cluster-nodes.yaml", disable)
    assert _cni_verdict(k8s_apiserver_factory, scenario, k3s) == (
        "fail: none recognised: K3s started with --disable-network-policy (agent-1, agent-2, system-1)"
    )


def test_k3s_node_without_its_start_arguments_is_no_evidence(
    k8s_apiserver_factory: ApiServerFactory, tmp_path: Path
) -> None:
    scenario = materialize(tmp_path / "s", HARDENED)
    (scenario / "cluster-cni.yaml").unlink()
    with pytest.raises(EvidenceUnavailable, match=r"K3s node \S+ shows no readable start arguments"):
        _cni_verdict(k8s_apiserver_factory, scenario, "v1.30.4+k3s1")
