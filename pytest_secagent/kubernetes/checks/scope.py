"""Which objects are the agent's, and small readers the checks share.

The agent's pods are those in the agent namespace (the target's namespace when the URI
names one, else the policy's ``agent.namespace``) whose labels match the policy's
``agent.selector``; for rendered manifests every workload without a namespace is placed in
the agent namespace, so a ``helm template`` output is the agent's in full.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_secagent.kubernetes.view import KubernetesView, Resource, ResourceNotServed
from pytest_secagent.kubernetes.workloads import ContainerKind, PodTemplate, containers, pod_templates
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy

__all__ = [
    "AgentScope",
    "ContainerRef",
    "age_days",
    "agent_containers",
    "agent_scope",
    "agent_templates",
    "effective_security",
    "list_if_served",
    "parse_time",
    "short",
    "target_namespace",
]

KubeObject = dict[str, Any]


@dataclass(frozen=True)
class AgentScope:
    """The agent namespace and the label selector of the agent's pods."""

    namespace: str
    selector: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """Say which pods are the agent's, for messages."""
        if not self.selector:
            return f"namespace {self.namespace}"
        labels = ",".join(f"{k}={v}" for k, v in sorted(self.selector.items()))
        return f"namespace {self.namespace}, selector {labels}"


def agent_scope(policy: Policy, namespace: str | None = None) -> AgentScope:
    """Return the agent scope: ``namespace`` (from the target URI) or the policy's."""
    return AgentScope(namespace or policy.agent.namespace, dict(policy.agent.selector))


def target_namespace(target: object) -> str | None:
    """Return the namespace a ``k8s://CONTEXT/NAMESPACE`` target names, or ``None``."""
    namespace = getattr(target, "namespace", None)
    return namespace if isinstance(namespace, str) and namespace else None


def agent_templates(view: KubernetesView, scope: AgentScope) -> list[PodTemplate]:
    """Return the agent's pod specs; none found is an error, never a pass.

    A control about the agent's containers proves nothing when no agent container was
    seen: the namespace or selector is probably wrong, so the check errors and says so.
    """
    templates = list(pod_templates(view, scope.namespace, scope.selector))
    if not templates:
        raise EvidenceUnavailable(
            f"no agent pods found ({scope.describe()}) on {view.target_id}; "
            "set agent.namespace / agent.selector in the policy or name the namespace in the target"
        )
    return templates


@dataclass(frozen=True)
class ContainerRef:
    """One container of an agent pod spec, with a name for messages."""

    template: PodTemplate
    kind: ContainerKind
    container: KubeObject

    @property
    def name(self) -> str:
        """The container's name."""
        return str(self.container.get("name", "?"))

    @property
    def label(self) -> str:
        """``Kind/owner (note) kind container``, e.g. ``Deployment/agent container app``.

        The owner's note tells a running pod that differs from its template (or a child
        controller with another template) from the template itself.
        """
        owner = self.template.owner
        note = f" ({owner.note})" if owner.note else ""
        return f"{owner.kind}/{owner.name}{note} {self.kind} {self.name}"

    @property
    def security_context(self) -> Mapping[str, Any]:
        """The container's own securityContext (empty when unset)."""
        value = self.container.get("securityContext")
        return value if isinstance(value, Mapping) else {}


def agent_containers(templates: list[PodTemplate]) -> Iterator[ContainerRef]:
    """Yield every container of the templates: init, regular and ephemeral."""
    for template in templates:
        for kind, container in containers(template.spec):
            yield ContainerRef(template, kind, container)


def effective_security(ref: ContainerRef, key: str) -> Any:
    """Return a securityContext field as it applies: the container's, else the pod's.

    A field written as ``null`` is not set (the API reads it so): the pod's value applies.
    """
    if ref.security_context.get(key) is not None:
        return ref.security_context[key]
    pod_context = ref.template.spec.get("securityContext")
    return pod_context.get(key) if isinstance(pod_context, Mapping) else None


def list_if_served(
    view: KubernetesView, resource: Resource, namespace: str | None
) -> list[KubeObject] | None:
    """List ``resource``, or return ``None`` when the cluster does not serve it.

    Only "not installed" is absorbed; a 403 or a timeout still propagates.
    """
    try:
        return view.list(resource, namespace)
    except ResourceNotServed:
        return None


def parse_time(value: object) -> dt.datetime | None:
    """Parse an RFC 3339 timestamp of the API (``2024-01-02T03:04:05Z``); ``None`` if absent."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def age_days(when: dt.datetime, now: dt.datetime) -> float:
    """Return the age of ``when`` at ``now`` in days."""
    return (now - when).total_seconds() / 86400


def short(items: list[str], limit: int = 10) -> str:
    """Join items for a message, eliding after ``limit``."""
    if not items:
        return "none"
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} (+{len(items) - limit} more)"
