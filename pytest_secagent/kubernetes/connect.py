"""Open the right :class:`KubernetesView` for a target: a live cluster or rendered manifests."""

from __future__ import annotations

from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.manifests import ManifestView
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.targets import InClusterTarget, K8sTarget, ManifestsTarget, Target

__all__ = ["open_view"]


def open_view(target: Target, *, timeout: float, agent_namespace: str = "default") -> KubernetesView:
    """Open the view of a ``k8s://``, ``k8s-incluster://`` or ``manifests://`` target.

    A live cluster is asked for ``/version`` once on opening, so an unreachable API server
    or rejected credentials fail here, once, for every check of the target. Manifests are
    read and parsed here; objects without a namespace go to ``agent_namespace``.
    Raises :class:`EvidenceUnavailable` with the reason.
    """
    view: KubernetesView
    if isinstance(target, K8sTarget):
        view = LiveClusterView.from_kubeconfig(context=target.context, timeout=timeout, target_id=target.id)
    elif isinstance(target, InClusterTarget):
        view = LiveClusterView.in_cluster(timeout=timeout, target_id=target.id)
    elif isinstance(target, ManifestsTarget):
        return ManifestView(target.path, default_namespace=agent_namespace, target_id=target.id)
    else:
        raise EvidenceUnavailable(f"{target.id} is not a Kubernetes target")
    try:
        view.server_version()
    except EvidenceUnavailable:
        view.close()
        raise
    return view
