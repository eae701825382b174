"""Kubernetes cluster: platform version, namespace, RBAC, credentials, logging, EDR and scanning.

Baseline: customer environment security for Secure Agent 2.0: "Container runtime security"
(Kubernetes 1.24+), "Least privilege", "Credential management validation", "Regular
credential rotation", "Audit logging", "Endpoint protection" and "Vulnerability
management", made concrete by the CIS Kubernetes Benchmark (1.2.x audit and encryption
flags, 5.1 RBAC, 5.4 secrets, 5.7 namespaces). Controls marked ``("k8s",)`` need a live
cluster; the others run on rendered manifests too.
"""

from __future__ import annotations

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import (
    control_plane,
    identity,
    namespace,
    node_agents,
    rbac,
    secrets,
    vulnerabilities,
)
from pytest_secagent.kubernetes.checks.scope import target_namespace
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.policy import Policy
from pytest_secagent.targets import Target

BOTH = ("k8s", "manifests")
LIVE = ("k8s",)


@pytest.mark.secagent_control("SA-RUNTIME-001", applies_to=LIVE)
def test_kubernetes_version(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """Control plane and every kubelet run at least the minimum Kubernetes version."""
    control_plane.check_cluster_versions(secagent_k8s, secagent_policy, secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-005", applies_to=BOTH)
def test_pod_security_admission_restricted(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """The agent namespace enforces the restricted Pod Security Standard."""
    namespace.check_pod_security_admission(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-SEG-001", applies_to=BOTH)
def test_dedicated_namespace(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """The agent has its own namespace, running nothing else."""
    namespace.check_dedicated_namespace(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-IAM-001", applies_to=BOTH)
def test_rbac_least_privilege(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """The agent's RBAC grants no admin, wildcard, escalation or cluster-wide Secret access."""
    rbac.check_rbac(secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target))
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-IAM-005", applies_to=BOTH)
def test_no_static_cloud_keys(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """No long-lived cloud keys in the agent's environment or secret-store components."""
    identity.check_cloud_keys(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-SECRET-001", applies_to=BOTH)
def test_credentials_from_secret_store(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """The agent's credentials come from an enterprise secret store."""
    secrets.check_secret_store(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-SECRET-002", applies_to=BOTH)
def test_no_plaintext_credentials(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """No literal credential in env, args, ConfigMaps or secret-store components."""
    secrets.check_no_plaintext_secrets(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-SECRET-003", applies_to=LIVE)
def test_credential_age(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """Every credential Secret of the agent was written within the rotation maximum."""
    secrets.check_secret_age(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-SECRET-005", applies_to=LIVE)
def test_secrets_encrypted_at_rest(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """The API server encrypts Secrets at rest (where its flags are visible)."""
    control_plane.check_secrets_encryption(secagent_k8s, secagent_policy, secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-LOG-001", applies_to=LIVE)
def test_api_audit_logging(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """API audit logging is on with the required retention (where the API server's flags are visible)."""
    control_plane.check_api_audit_logging(secagent_k8s, secagent_policy, secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-LOG-002", applies_to=LIVE)
def test_log_collector_on_agent_nodes(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """A log collector runs, ready, on every node of the agent; retention meets the minimum."""
    node_agents.check_log_collection(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-EDR-001", applies_to=LIVE)
def test_edr_on_agent_nodes(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """The EDR / runtime-security DaemonSet runs, ready, on every node of the agent."""
    node_agents.check_edr_coverage(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-VULN-001", applies_to=LIVE)
def test_no_fixable_critical_or_high_findings(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """Every agent image is scanned with zero fixable Critical/High findings."""
    vulnerabilities.check_image_vulnerabilities(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-VULN-002", applies_to=LIVE)
def test_scans_are_recent(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """Every agent image was scanned within the policy's maximum age."""
    vulnerabilities.check_scan_freshness(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()
