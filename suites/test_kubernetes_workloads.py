"""Kubernetes workloads: how the agent's containers run (container runtime security).

Baseline: customer environment security for Secure Agent 2.0, "Container runtime security"
(Kubernetes 1.24+ with security features enabled), made concrete by the Pod Security
Standards (restricted) and the CIS Kubernetes Benchmark section 5. Runs on live clusters
(``k8s://``) and on rendered manifests (``manifests://``).
"""

from __future__ import annotations

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import health, identity, images, workload
from pytest_secagent.kubernetes.checks.scope import target_namespace
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.policy import Policy
from pytest_secagent.targets import Target

BOTH = ("k8s", "manifests")


@pytest.mark.secagent_control("SA-RUNTIME-004", applies_to=BOTH)
def test_no_container_engine_socket_mounts(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """No agent pod mounts the Docker, containerd, Podman or CRI-O socket from the host."""
    workload.check_socket_mounts(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-006", applies_to=BOTH)
def test_containers_run_as_non_root(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """Every agent container (init and ephemeral too) runs as a non-root user and group."""
    workload.check_non_root(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-007", applies_to=BOTH)
def test_no_privilege_and_pod_security_restricted(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """No privilege or escalation, ALL capabilities dropped, seccomp on; lists restricted PSS violations."""
    workload.check_privileges(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-008", applies_to=BOTH)
def test_read_only_root_filesystem(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """Every agent container has a read-only root filesystem."""
    workload.check_read_only_root(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-009", applies_to=BOTH)
def test_no_host_namespaces_paths_or_ports(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """No host network/PID/IPC, hostPath, hostPort, probe host or non-restricted volume type."""
    workload.check_host_isolation(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-010", applies_to=BOTH)
def test_cpu_and_memory_limits(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """Every agent container has CPU and memory limits."""
    workload.check_resource_limits(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-011", applies_to=BOTH)
def test_images_from_allowed_registries_pinned(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """Agent images come from allowed registries, pinned by digest, never ``latest``."""
    images.check_image_sources(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-RUNTIME-013", applies_to=BOTH)
def test_dedicated_service_accounts_without_token(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """Dedicated service accounts; tokens mounted only into components that call the API."""
    identity.check_service_accounts(
        secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target)
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-LOG-005", applies_to=BOTH)
def test_health_probes(
    secagent_target: Target,
    secagent_k8s: KubernetesView,
    secagent_policy: Policy,
    secagent_evidence: Evidence,
) -> None:
    """Long-running agent containers have liveness and readiness probes (live: pods Ready, few restarts)."""
    health.check_probes(secagent_k8s, secagent_policy, secagent_evidence, target_namespace(secagent_target))
    secagent_evidence.conclude()
