"""Pod specs and containers, the same way on a live cluster and on rendered manifests.

A live cluster shows what runs: its Pods (replicas of one controller with the same spec
are one :class:`PodTemplate`, listing every pod and node). Rendered manifests show what
would run: the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs,
CronJobs and bare Pods. Either way a check iterates :func:`pod_templates` and
:func:`containers` and never cares which view it has.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pytest_secagent.kubernetes.resources import (
    CRON_JOBS,
    DAEMON_SETS,
    DEPLOYMENTS,
    JOBS,
    PODS,
    REPLICA_SETS,
    STATEFUL_SETS,
)
from pytest_secagent.kubernetes.view import KubernetesView, Resource

if TYPE_CHECKING:
    from pytest_secagent.policy.model import Policy

__all__ = [
    "ContainerKind",
    "Owner",
    "PodTemplate",
    "agent_pod_templates",
    "containers",
    "label_selector_matches",
    "labels_match",
    "pod_templates",
]

KubeObject = dict[str, Any]
ContainerKind = Literal["initContainer", "container", "ephemeralContainer"]

_CONTAINER_FIELDS: tuple[tuple[str, ContainerKind], ...] = (
    ("initContainers", "initContainer"),
    ("containers", "container"),
    ("ephemeralContainers", "ephemeralContainer"),
)

# Where each workload kind keeps its pod template, in manifest order.
_TEMPLATE_PATHS: tuple[tuple[Resource, str, tuple[str, ...]], ...] = (
    (DEPLOYMENTS, "Deployment", ("spec", "template")),
    (STATEFUL_SETS, "StatefulSet", ("spec", "template")),
    (DAEMON_SETS, "DaemonSet", ("spec", "template")),
    (REPLICA_SETS, "ReplicaSet", ("spec", "template")),
    (JOBS, "Job", ("spec", "template")),
    (CRON_JOBS, "CronJob", ("spec", "jobTemplate", "spec", "template")),
)

# Fields the scheduler and kubelet fill in per pod; replicas differ only in these.
_PER_POD_SPEC_FIELDS = ("nodeName", "hostname", "subdomain")


@dataclass(frozen=True)
class Owner:
    """The workload a pod spec belongs to: its kind, name and namespace."""

    kind: str
    name: str
    namespace: str | None

    def __str__(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        return f"{self.kind}/{self.name}{where}"


@dataclass(frozen=True)
class PodTemplate:
    """One pod spec with its owner.

    ``metadata`` is the pod's (or template's) metadata: labels and annotations.
    ``source`` is the object it was read from (the workload manifest, or the first
    live Pod). On a live cluster ``pods`` and ``nodes`` name every pod sharing this spec
    and the nodes they run on; for manifests both are empty.
    """

    owner: Owner
    metadata: KubeObject
    spec: KubeObject
    source: KubeObject
    pods: tuple[str, ...] = field(default=())
    nodes: tuple[str, ...] = field(default=())

    @property
    def namespace(self) -> str | None:
        """The namespace the pods run (or would run) in."""
        return self.owner.namespace

    @property
    def labels(self) -> dict[str, str]:
        """The pod labels."""
        labels: dict[str, str] = self.metadata.get("labels") or {}
        return labels

    @property
    def service_account(self) -> str:
        """The pod's service account name (``default`` when the spec names none)."""
        name = self.spec.get("serviceAccountName") or self.spec.get("serviceAccount")
        return str(name) if name else "default"


def labels_match(labels: Mapping[str, str] | None, selector: Mapping[str, str] | None) -> bool:
    """Tell whether ``labels`` carry every ``key: value`` of an equality ``selector``.

    An empty or missing selector matches everything.
    """
    if not selector:
        return True
    have = labels or {}
    return all(have.get(key) == value for key, value in selector.items())


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Tell whether a ``LabelSelector`` (matchLabels, matchExpressions) selects ``labels``.

    As in the API, an empty selector ``{}`` selects everything; ``None`` selects nothing
    (a field that is absent selects no objects).
    """
    if selector is None:
        return False
    have = labels or {}
    if not labels_match(have, selector.get("matchLabels") or {}):
        return False
    for expression in selector.get("matchExpressions") or []:
        key = expression.get("key", "")
        operator = expression.get("operator", "")
        values = expression.get("values") or []
        if operator == "In" and have.get(key) not in values:
            return False
        if operator == "NotIn" and key in have and have[key] in values:
            return False
        if operator == "Exists" and key not in have:
            return False
        if operator == "DoesNotExist" and key in have:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def containers(pod_spec: Mapping[str, Any]) -> Iterator[tuple[ContainerKind, KubeObject]]:
    """Yield every container of a pod spec, init and ephemeral containers included.

    Yields ``(kind, container)`` with kind ``initContainer``, ``container`` or
    ``ephemeralContainer``, init containers first.
    """
    for key, kind in _CONTAINER_FIELDS:
        for container in pod_spec.get(key) or []:
            yield kind, container


def _dig(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _live_owner(pod: KubeObject) -> Owner:
    metadata = pod.get("metadata") or {}
    namespace = metadata.get("namespace")
    for reference in metadata.get("ownerReferences") or []:
        if not reference.get("controller"):
            continue
        kind, name = str(reference.get("kind", "")), str(reference.get("name", ""))
        pod_hash = (metadata.get("labels") or {}).get("pod-template-hash")
        if kind == "ReplicaSet" and pod_hash and name.endswith(f"-{pod_hash}"):
            # A Deployment names its ReplicaSets <deployment>-<pod-template-hash>.
            return Owner("Deployment", name[: -len(pod_hash) - 1], namespace)
        return Owner(kind, name, namespace)
    return Owner("Pod", str(metadata.get("name", "")), namespace)


def _live_templates(
    view: KubernetesView, namespace: str | None, selector: Mapping[str, str] | None
) -> Iterator[PodTemplate]:
    groups: dict[tuple[Owner, str], list[KubeObject]] = {}
    for pod in view.list(PODS, namespace):
        metadata = pod.get("metadata") or {}
        if not labels_match(metadata.get("labels"), selector):
            continue
        spec = pod.get("spec") or {}
        shared = {key: value for key, value in spec.items() if key not in _PER_POD_SPEC_FIELDS}
        key = (_live_owner(pod), json.dumps(shared, sort_keys=True))
        groups.setdefault(key, []).append(pod)
    for (owner, _), pods in groups.items():
        first = pods[0]
        names = tuple(str((pod.get("metadata") or {}).get("name", "")) for pod in pods)
        nodes = tuple(
            sorted({str(node) for pod in pods if (node := (pod.get("spec") or {}).get("nodeName"))})
        )
        yield PodTemplate(
            owner=owner,
            metadata=first.get("metadata") or {},
            spec=first.get("spec") or {},
            source=first,
            pods=names,
            nodes=nodes,
        )


def _manifest_templates(
    view: KubernetesView, namespace: str | None, selector: Mapping[str, str] | None
) -> Iterator[PodTemplate]:
    for resource, kind, path in _TEMPLATE_PATHS:
        for obj in view.list(resource, namespace):
            template = _dig(obj, path)
            if not isinstance(template, Mapping):
                continue
            metadata = dict(template.get("metadata") or {})
            if not labels_match(metadata.get("labels"), selector):
                continue
            owner_meta = obj.get("metadata") or {}
            owner = Owner(kind, str(owner_meta.get("name", "")), owner_meta.get("namespace"))
            yield PodTemplate(owner, metadata, dict(template.get("spec") or {}), obj)
    for pod in view.list(PODS, namespace):
        metadata = pod.get("metadata") or {}
        if not labels_match(metadata.get("labels"), selector):
            continue
        owner = Owner("Pod", str(metadata.get("name", "")), metadata.get("namespace"))
        yield PodTemplate(owner, metadata, pod.get("spec") or {}, pod)


def pod_templates(
    view: KubernetesView,
    namespace: str | None = None,
    selector: Mapping[str, str] | None = None,
) -> Iterator[PodTemplate]:
    """Yield every pod spec in ``namespace`` (all namespaces when ``None``) whose labels match.

    Live: the running Pods (each listed once per run by the view), replicas with the same
    spec folded into one template; an owning ReplicaSet of a Deployment is reported as
    the Deployment. Manifests: the templates of every workload kind and bare Pods.
    ``selector`` is an equality selector on the pod labels (empty: every pod).
    A 401/403 on the list propagates as ``EvidenceUnavailable``.
    """
    if view.live:
        yield from _live_templates(view, namespace, selector)
    else:
        yield from _manifest_templates(view, namespace, selector)


def agent_pod_templates(view: KubernetesView, policy: Policy) -> Iterator[PodTemplate]:
    """Yield the agent's pod specs: the policy's agent namespace and label selector.

    Manifests without a namespace are placed in the agent namespace by the manifest
    view, so for ``helm template`` output this is every workload in the files.
    """
    yield from pod_templates(view, policy.agent.namespace, policy.agent.selector)
