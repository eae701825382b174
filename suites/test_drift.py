"""Declared architecture against the deployment: drift between the policy file and reality.

Baseline: customer environment security for Secure Agent 2.0, "Security assessment"
(network architecture review and credential management validation), turned from paperwork
into evidence by comparing what the policy declares with what runs (``k8s://``) or would
run (``manifests://``).
"""

from __future__ import annotations

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import drift
from pytest_secagent.kubernetes.checks.scope import target_namespace
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.policy import Policy
from pytest_secagent.targets import Target


@pytest.mark.secagent_control("SA-ASSESS-003", applies_to=("k8s", "manifests"))
def test_declared_architecture_deployed(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """The agent namespace, its workloads, the secret store and referenced endpoints match the policy."""
    drift.check_declared_architecture(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()
