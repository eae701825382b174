"""NetworkPolicies judged as the API server applies them: the reported inputs, with their verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import network_policy
from pytest_secagent.outcomes import EvidenceUnavailable
from tests.kubernetes.checkviews import NAMESPACE, deployment, failures, manifest_view, policy


def netpol(name: str, spec: Any, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": NAMESPACE, **metadata},
        "spec": spec,
    }


DENY_INGRESS = netpol("deny-ingress", {"podSelector": {}, "policyTypes": ["Ingress"]})


def test_an_empty_egress_list_without_policy_types_leaves_egress_open(tmp_path: Path) -> None:
    """The reported input: ``spec: {podSelector: {}, egress: []}`` is an Ingress policy only."""
    reported = netpol("deny-egress", {"podSelector": {}, "egress": []})
    evidence = Evidence()
    network_policy.check_egress_restricted(manifest_view(tmp_path, deployment(), reported), policy(), evidence)
    assert failures(evidence) == [
        "Deployment/agent in namespace atlan-agent: egress NetworkPolicy: none: all egress allowed "
        "(deny-egress sets an empty egress list without policyTypes, so the API server makes it an "
        "Ingress policy only)"
    ]


@pytest.mark.parametrize(
    "spec",
    [
        {"podSelector": {}, "egress": None},
        {"podSelector": {}, "policyTypes": [], "egress": []},
        {"podSelector": {}, "policyTypes": None, "egress": []},
        {"podSelector": {}, "ingress": None, "egress": []},
    ],
)
def test_no_variant_of_an_empty_egress_is_a_deny(tmp_path: Path, spec: dict[str, Any]) -> None:
    evidence = Evidence()
    network_policy.check_egress_restricted(
        manifest_view(tmp_path, deployment(), netpol("p", spec)), policy(), evidence
    )
    assert [f.split(": ")[1] for f in failures(evidence)] == ["egress NetworkPolicy"]


def test_a_policy_selecting_other_pods_counts_only_for_them(tmp_path: Path) -> None:
    deny = netpol("deny-db-egress", {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Egress"]})
    view = manifest_view(tmp_path, deployment(), deployment("db", labels={"app": "db"}), deny)
    evidence = Evidence()
    network_policy.check_egress_restricted(view, policy(), evidence)
    assert failures(evidence) == [
        "Deployment/agent in namespace atlan-agent: egress NetworkPolicy: none: all egress allowed"
    ]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"podSelector": {}, "policyTypes": ["ingress"]}, "policyTypes ['ingress']"),
        ({"podSelector": {}, "policyTypes": ["Ingress", "Other"]}, "policyTypes ['Other']"),
        ({"podSelector": {"matchLabels": "app"}, "policyTypes": ["Ingress"]}, "podSelector.matchLabels"),
        (
            {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}, "policyTypes": ["Ingress"]},
            "operator In without values",
        ),
        ({"podSelector": [], "policyTypes": ["Ingress"]}, "podSelector is not a mapping"),
        ({"podSelector": {}, "policyTypes": ["Ingress"], "ingress": {}}, "ingress is not a list"),
        ("deny", "spec is not a mapping"),
    ],
)
def test_a_policy_the_api_rejects_is_an_error_naming_it(tmp_path: Path, spec: Any, reason: str) -> None:
    """Unknown or malformed fields are not read as a deny: nothing passes."""
    view = manifest_view(tmp_path, deployment(), netpol("odd", spec))
    with pytest.raises(EvidenceUnavailable, match=r"NetworkPolicy atlan-agent/odd is rejected") as caught:
        network_policy.check_default_deny_ingress(view, policy(), Evidence())
    assert reason in str(caught.value)


def test_a_rejected_policy_does_not_hide_a_proven_failure(tmp_path: Path) -> None:
    opening = netpol("open", {"podSelector": {}, "ingress": [{}]})
    odd = netpol("odd", {"podSelector": {}, "policyTypes": ["INGRESS"]})
    evidence = Evidence()
    network_policy.check_default_deny_ingress(manifest_view(tmp_path, deployment(), opening, odd), policy(), evidence)
    assert failures(evidence) == [
        "Deployment/agent in namespace atlan-agent: ingress allowed by NetworkPolicies: "
        "open allows ingress from anywhere",
    ]
    [undecided] = evidence.warnings
    assert undecided.name == "default-deny ingress NetworkPolicy in atlan-agent"
    assert "odd is rejected by the API server" in undecided.actual


@pytest.mark.parametrize("namespace", [None, ""])
def test_a_policy_without_a_namespace_is_in_the_install_namespace(tmp_path: Path, namespace: str | None) -> None:
    deny = netpol("deny", {"podSelector": {}, "policyTypes": ["Ingress"]}, namespace=namespace)
    evidence = Evidence()
    network_policy.check_default_deny_ingress(manifest_view(tmp_path, deployment(), deny), policy(), evidence)
    assert failures(evidence) == []


def test_rendered_manifests_do_not_show_the_cni(tmp_path: Path) -> None:
    """SA-SEG-002 on manifests: the CNI part is recorded as not observed, never as passed."""
    evidence = Evidence()
    network_policy.check_default_deny_ingress(manifest_view(tmp_path, deployment(), DENY_INGRESS), policy(), evidence)
    assert failures(evidence) == []
    [part] = evidence.unobserved_parts
    assert part.name == "NetworkPolicy enforcement by the CNI"
    assert "rendered manifests cannot show which CNI" in part.actual
    assert not any(o.name == part.name and o.verdict.value == "ok" for o in evidence.observations)


def test_a_legacy_policy_counts_as_absent_with_a_warning(tmp_path: Path) -> None:
    legacy = {**DENY_INGRESS, "apiVersion": "extensions/v1beta1"}
    evidence = Evidence()
    network_policy.check_default_deny_ingress(manifest_view(tmp_path, deployment(), legacy), policy(), evidence)
    assert failures(evidence) == ["default-deny ingress NetworkPolicy in atlan-agent: none"]
    assert "no supported Kubernetes release serves it" in evidence.warnings[0].actual
