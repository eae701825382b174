"""Fixtures of the kubernetes checks."""

from __future__ import annotations

import pytest

from pytest_secagent.kubernetes.connect import open_view
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.options import Settings
from pytest_secagent.outcomes import not_applicable
from pytest_secagent.policy.model import Policy
from pytest_secagent.targets import Target, TargetKind
from pytest_secagent.targets.pool import ConnectionPool

__all__ = ["secagent_k8s"]


@pytest.fixture
def secagent_k8s(
    secagent_target: Target,
    secagent_connections: ConnectionPool,
    secagent_settings: Settings,
    secagent_policy: Policy,
) -> KubernetesView:
    """The read-only view of this test's Kubernetes target (``k8s://``, ``manifests://``...).

    Live clusters: kubeconfig (``$KUBECONFIG`` or ``~/.kube/config``, the URI's context) or
    the pod's service account; each resource kind is listed once per run, paginated,
    Secrets metadata-only, every request bounded by ``--secagent-timeout``; only get/list
    and access reviews are ever sent. Manifests: files, folders and globs, read once;
    objects without a namespace belong to the policy's ``agent.namespace``. The same view
    serves every check of the target (one per worker under ``pytest -n``); a target that
    cannot be opened errors all its checks with the reason.
    """
    if secagent_target.kind not in (TargetKind.K8S, TargetKind.MANIFESTS):
        not_applicable(f"{secagent_target.id} is not a Kubernetes cluster or manifest target")

    def open_kubernetes_view(target: Target) -> KubernetesView:
        return open_view(
            target, timeout=secagent_settings.timeout, agent_namespace=secagent_policy.agent.namespace
        )

    return secagent_connections.get(secagent_target, open_kubernetes_view)
