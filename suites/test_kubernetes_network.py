"""Kubernetes network: segmentation, outbound-only exposure and TLS verification of the agent.

Baseline: customer environment security for Secure Agent 2.0, "Network segmentation",
"Outbound-only communication", "Firewall rules" and "TLS 1.2 minimum", made concrete by
CIS Kubernetes Benchmark 5.3 (NetworkPolicies). Runs on live clusters (``k8s://``) and on
rendered manifests (``manifests://``).
"""

from __future__ import annotations

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import exposure, network_policy, tls_bypass
from pytest_secagent.kubernetes.checks.scope import target_namespace
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.policy import Policy
from pytest_secagent.targets import Target

BOTH = ("k8s", "manifests")


@pytest.mark.secagent_control("SA-SEG-002", applies_to=BOTH)
def test_default_deny_ingress(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """A default-deny ingress NetworkPolicy covers the agent namespace (live: enforced by the CNI)."""
    network_policy.check_default_deny_ingress(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-SEG-003", applies_to=BOTH)
def test_egress_restricted(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """Agent egress is limited to DNS and the declared destinations."""
    network_policy.check_egress_restricted(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-NET-001", applies_to=BOTH)
def test_no_inbound_exposure(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """No LoadBalancer/NodePort Service, externalIP, Ingress or route reaches the agent."""
    exposure.check_no_inbound_exposure(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-NET-009", applies_to=BOTH)
def test_no_tls_verification_bypass(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """No setting of the agent turns TLS verification off."""
    tls_bypass.check_no_tls_bypass(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()
