"""Image provenance of the agent's containers: SA-RUNTIME-011."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import agent_containers, agent_scope
from pytest_secagent.kubernetes.checks.workload import judged_templates
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.oci_reference import digest_problem
from pytest_secagent.policy.model import Policy

__all__ = ["ImageRef", "check_image_sources", "parse_image", "registry_allowed"]

DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference: ``registry/repository[:tag][@digest]``."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """``registry/repository`` with Docker Hub written ``docker.io``."""
        return f"{self.registry}/{self.repository}"


def _split_registry(name: str) -> tuple[str, str]:
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first.lower() == "localhost"):
        # A registry is a host name: DNS does not tell PUBLIC.ECR.AWS from public.ecr.aws.
        host = first.lower()
        registry = DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host
        return registry, rest
    return DOCKER_HUB, name


def parse_image(reference: str) -> ImageRef:
    """Parse an image reference as the container runtime would resolve it.

    ``agent`` is ``docker.io/library/agent``; ``atlanhq/agent`` is ``docker.io/atlanhq/agent``;
    ``index.docker.io`` and ``registry-1.docker.io`` are Docker Hub too. The registry host is
    compared in lower case (it is a DNS name); the repository path is kept as written.
    """
    name, _, digest = reference.strip().partition("@")
    tag = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
    registry, repository = _split_registry(name)
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return ImageRef(registry, repository, tag or None, digest or None)


def _normal_prefix(prefix: str) -> str:
    registry, rest = _split_registry(prefix.strip().rstrip("/"))
    return f"{registry}/{rest}" if rest else registry


def registry_allowed(image: ImageRef, allowed: list[str]) -> bool:
    """Tell whether the image's ``registry/repository`` sits under an allowed prefix."""
    for prefix in allowed:
        normal = _normal_prefix(prefix)
        if image.name == normal or image.name.startswith(normal + "/"):
            return True
    return False


def _image_ids(status: Mapping[str, Any]) -> dict[str, str]:
    found = {}
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for item in status.get(key) or []:
            if isinstance(item, Mapping) and item.get("imageID"):
                found[str(item.get("name"))] = str(item["imageID"])
    return found


def check_image_sources(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-RUNTIME-011: images from allowed registries, pinned by digest, never ``latest``.

    The reference itself must carry the ``@sha256:`` digest when the policy requires
    digests (a tag can move between restarts): ``sha256:`` and exactly 64 lower-case hex
    digits, anything shorter names no content. On a live cluster the digest the node
    actually pulled is recorded as well.
    """
    registries = policy.registries
    templates = judged_templates(view, agent_scope(policy, namespace), evidence)
    for ref in agent_containers(templates):
        reference = str(ref.container.get("image") or "")
        if not reference:
            evidence.expect(f"{ref.label}: image", expected="an image reference", actual="none", ok=False)
            continue
        image = parse_image(reference)
        problems = []
        if not registry_allowed(image, registries.allowed):
            problems.append(f"registry {image.name} not in the allow-list")
        pin_problem = digest_problem(image.digest)
        if registries.require_digest and pin_problem is not None:
            detail = f": {pin_problem}" if image.digest else ""
            problems.append(f"not pinned by @sha256 digest{detail}")
        if image.tag == "latest" or (image.tag is None and image.digest is None):
            problems.append("uses the latest tag")
        evidence.expect(
            f"{ref.label}: image {reference}",
            expected=(
                "from "
                + ", ".join(registries.allowed)
                + (", pinned by digest" if registries.require_digest else "")
                + ", not latest"
            ),
            actual="; ".join(problems) or "as expected",
            ok=not problems,
        )
        running = {
            image_id
            for pod in ref.template.running
            if (status := pod.get("status")) is not None
            and (image_id := _image_ids(status if isinstance(status, Mapping) else {}).get(ref.name))
        }
        if running:
            evidence.observe(f"{ref.label}: running image", ", ".join(sorted(running)))
