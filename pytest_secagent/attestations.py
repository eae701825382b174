"""Attestations: who did a procedural control, when, with which evidence, and until when it holds.

No probe can prove a network architecture review, a credential-management validation, an
access review or an incident-response exercise. The policy file records each one under
``attestations:``; a check fails when a record is missing or incomplete, and when it is
older than its maximum age, naming the date it went stale.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pytest_secagent.evidence import Evidence
from pytest_secagent.policy import Policy
from pytest_secagent.policy.model import Attestation

__all__ = ["ATTESTATION_KINDS", "AttestationKind", "attestation_for", "check_attestation", "stale_since"]


@dataclass(frozen=True)
class AttestationKind:
    """One kind of attestation: its policy key, the control it evidences, its default maximum age."""

    key: str
    control_id: str
    title: str
    default_max_age_days: int


ATTESTATION_KINDS: dict[str, AttestationKind] = {
    kind.key: kind
    for kind in (
        AttestationKind("network_architecture_review", "SA-ASSESS-001", "network architecture review", 365),
        AttestationKind(
            "credential_management_validation", "SA-ASSESS-002", "credential management validation", 365
        ),
        AttestationKind("access_review", "SA-IAM-003", "access review of data-source credentials", 90),
        AttestationKind("incident_response_exercise", "SA-OPS-003", "incident-response exercise", 365),
    )
}


def _legacy(policy: Policy, key: str) -> Attestation:
    """The same facts as recorded by the older per-section keys, for policies that use them."""
    assessment = policy.assessment
    if key == "network_architecture_review":
        review = assessment.network_review
        return Attestation(review.reviewer, review.date, review.artifact_url, assessment.max_age_days)
    if key == "credential_management_validation":
        cred = assessment.credential_review
        return Attestation(cred.reviewer, cred.date, None, assessment.max_age_days)
    if key == "incident_response_exercise":
        ir = policy.incident_response
        return Attestation(None, ir.last_exercise_date, None, ir.max_exercise_age_days)
    return Attestation()


def attestation_for(policy: Policy, key: str) -> Attestation:
    """The attestation recorded under ``attestations.<key>``, with its maximum age filled in.

    A field left out there is taken from the older keys of the same fact
    (``assessment.network_review``, ``assessment.credential_review``,
    ``incident_response.last_exercise_date``) when they give it.
    """
    kind = ATTESTATION_KINDS[key]
    given: Attestation = getattr(policy.attestations, key)
    legacy = _legacy(policy, key)
    max_age = given.max_age_days or legacy.max_age_days or kind.default_max_age_days
    return Attestation(
        by=given.by or legacy.by,
        date=given.date or legacy.date,
        evidence_url=given.evidence_url or legacy.evidence_url,
        max_age_days=max_age,
    )


def stale_since(attestation: Attestation) -> dt.date | None:
    """The first day the attestation no longer holds, or ``None`` without a date."""
    if attestation.date is None or attestation.max_age_days is None:
        return None
    return attestation.date + dt.timedelta(days=attestation.max_age_days + 1)


def check_attestation(evidence: Evidence, policy: Policy, key: str, today: dt.date) -> bool:
    """Record whether ``attestations.<key>`` is complete and current; return whether it holds.

    Expectations recorded: who attested it, the evidence link, and the date (at most the
    maximum age old, not in the future). A stale date is reported with the day it went stale.
    """
    if key not in ATTESTATION_KINDS:
        raise KeyError(f"unknown attestation {key!r}; known: {', '.join(ATTESTATION_KINDS)}")
    attestation = attestation_for(policy, key)
    max_age = attestation.max_age_days or ATTESTATION_KINDS[key].default_max_age_days
    prefix = f"attestations.{key}"
    ok = evidence.expect(
        f"{prefix}.by", expected="who attests it", actual=attestation.by or "missing", ok=bool(attestation.by)
    )
    url = (attestation.evidence_url or "").strip()
    ok &= evidence.expect(
        f"{prefix}.evidence_url",
        expected="a link to the evidence",
        actual=url or "missing",
        ok=bool(url),
    )
    when = attestation.date
    if when is None:
        return evidence.expect(
            f"{prefix}.date", expected=f"a date within {max_age} days", actual="missing", ok=False
        ) and ok
    age = (today - when).days
    if age < 0:
        return evidence.expect(
            f"{prefix}.date",
            expected="a date that is not in the future",
            actual=f"{when} ({-age} days ahead)",
            ok=False,
        ) and ok
    stale = stale_since(attestation)
    current = age <= max_age
    actual = f"{when} ({age} days old)" if current else f"{when} ({age} days old; stale since {stale})"
    return evidence.expect(f"{prefix}.date", expected=f"at most {max_age} days old", actual=actual,
                           ok=current) and ok
