"""One read-only interface over a live cluster and over rendered manifests.

Objects are plain JSON dictionaries in the API's own form (camelCase keys, as
``kubectl get -o json`` prints them), so the same control code runs on both views.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = ["KubernetesView", "Resource", "ResourceNotServed"]

KubeObject = dict[str, Any]
KubeObjects = list[KubeObject]
# Aliases, because inside the Protocol the name ``list`` is its method.
GroupNames = list[str]


@dataclass(frozen=True)
class Resource:
    """A resource type: API group ("" for core), version and plural name."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """The apiVersion string of the resource's objects."""
        return f"{self.group}/{self.version}" if self.group else self.version


class ResourceNotServed(EvidenceUnavailable):
    """The cluster does not serve this resource type (e.g. a CRD that is not installed).

    Checks for which "not installed" means "none exist" catch it; everywhere else it
    makes the check an error.
    """


class KubernetesView(Protocol):
    """Read-only access to Kubernetes objects, live or rendered."""

    @property
    def target_id(self) -> str:
        """The ID of the target this view belongs to."""

    @property
    def live(self) -> bool:
        """True for a live cluster, False for rendered manifests."""

    def list(self, resource: Resource, namespace: str | None = None) -> KubeObjects:
        """Every object of ``resource`` (in ``namespace``, or everywhere when ``None``).

        Live: listed once per run and cached, paginated, with a timeout; a 401/403 raises
        ``EvidenceUnavailable`` naming the verb, resource and namespace.
        """

    def list_metadata(self, resource: Resource, namespace: str | None = None) -> KubeObjects:
        """Like :meth:`list` but metadata only (used for Secrets: no value is fetched)."""

    def server_version(self) -> KubeObject | None:
        """The ``/version`` document, or ``None`` for rendered manifests."""

    def can_i(
        self, user: str, groups: GroupNames, verb: str, resource: str, namespace: str | None
    ) -> bool | None:
        """Ask the API (SubjectAccessReview) whether ``user`` may do it; ``None`` when static."""

    def close(self) -> None:
        """Release the client."""
