"""Image references: registry, repository, tag and digest, normalised the way Docker reads them."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_secagent.oci_reference import is_sha256_digest

__all__ = ["DEFAULT_REGISTRY", "ImageReference", "matches_prefix", "normalize_prefix", "parse_reference"]

DEFAULT_REGISTRY = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"index.docker.io"})


def _is_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


@dataclass(frozen=True)
class ImageReference:
    """A parsed reference such as ``docker.io/atlanhq/agent:2.0@sha256:...``."""

    raw: str
    registry: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        """Registry and path: ``docker.io/atlanhq/agent``."""
        return f"{self.registry}/{self.path}"

    @property
    def pinned(self) -> bool:
        """Whether the reference names its content by a complete sha256 digest (64 hex digits)."""
        return is_sha256_digest(self.digest)

    @property
    def effective_tag(self) -> str | None:
        """The tag pulled: the one written, else ``latest`` when there is no digest either."""
        if self.tag is not None:
            return self.tag
        return None if self.digest is not None else "latest"


def parse_reference(reference: str) -> ImageReference:
    """Parse an image reference; a name without a registry is on Docker Hub (``library/`` for one word)."""
    rest, _, digest = reference.strip().partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and _is_registry(first):
        registry, path = first, remainder
    else:
        registry, path = DEFAULT_REGISTRY, rest
    registry = DEFAULT_REGISTRY if registry in _DOCKER_HUB_ALIASES else registry
    name, colon, tag = path.rpartition(":")
    if not colon or "/" in tag:
        name, tag = path, ""
    if registry == DEFAULT_REGISTRY and "/" not in name:
        name = f"library/{name}"
    return ImageReference(reference, registry, name, tag or None, digest or None)


def normalize_prefix(prefix: str) -> str:
    """An allowed-registry prefix in the same form as :attr:`ImageReference.repository`."""
    prefix = prefix.strip().rstrip("/")
    first, slash, remainder = prefix.partition("/")
    if not _is_registry(first):
        return f"{DEFAULT_REGISTRY}/{prefix}"
    if first in _DOCKER_HUB_ALIASES:
        return f"{DEFAULT_REGISTRY}{slash}{remainder}"
    return prefix


def matches_prefix(reference: ImageReference, prefix: str) -> bool:
    """Whether the reference's repository is ``prefix`` or lies under it (path boundaries only)."""
    wanted = normalize_prefix(prefix)
    return reference.repository == wanted or reference.repository.startswith(wanted + "/")
