"""SA-RUNTIME-011: the agent's images come from allowed registries, pinned by digest, never latest."""

from __future__ import annotations

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.engine.checks.common import record_missing
from pytest_secagent.host.engine.images import matches_prefix, parse_reference
from pytest_secagent.host.engine.snapshot import AgentContainers
from pytest_secagent.oci_reference import digest_problem
from pytest_secagent.policy.model import RegistriesSection

__all__ = ["check_image_provenance"]


def check_image_provenance(
    agents: AgentContainers, registries: RegistriesSection, evidence: Evidence
) -> None:
    """SA-RUNTIME-011: each agent image is allowed, pinned and not ``latest``.

    The reference lies under an allowed registry prefix, names a complete sha256 digest
    (``sha256:`` and 64 lower-case hex digits, when ``registries.require_digest``) and is
    not tagged, or implicitly, ``latest``.
    """
    record_missing(agents, evidence)
    allowed = list(registries.allowed)
    for container in agents.found:
        name = container.name
        if not container.image:
            evidence.expect(f"{name}: image", expected="a reference", actual="none reported", ok=False)
            continue
        reference = parse_reference(container.image)
        evidence.observe(f"{name}: image", f"{container.image} (content {container.image_id or 'unknown'})")
        evidence.expect(
            f"{name}: registry",
            expected="under " + (", ".join(allowed) or "(no registry allowed)"),
            actual=reference.repository,
            ok=any(matches_prefix(reference, prefix) for prefix in allowed),
        )
        if registries.require_digest:
            problem = digest_problem(reference.digest)
            evidence.expect(
                f"{name}: pinned by digest",
                expected="@sha256: and 64 lower-case hex digits",
                actual=reference.digest if problem is None else problem,
                ok=problem is None,
            )
        tag = reference.effective_tag
        evidence.expect(
            f"{name}: tag",
            expected="not latest",
            actual=tag if tag is not None else "none (digest only)",
            ok=tag != "latest",
        )
