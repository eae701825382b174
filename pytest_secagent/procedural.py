"""Checks of the procedural baselines, evidenced by records in the policy file.

Who did a review, when, and where its evidence lives are attestations
(:mod:`pytest_secagent.attestations`); these checks add the facts each baseline asks for on
top of them.
"""

from __future__ import annotations

import datetime as dt

from pytest_secagent.attestations import check_attestation
from pytest_secagent.evidence import Evidence
from pytest_secagent.policy import Policy

__all__ = ["check_credential_review", "check_incident_response", "check_network_review"]


def _present(evidence: Evidence, key: str, value: object) -> bool:
    shown = value if value not in (None, "", []) else "missing"
    return evidence.expect(key, expected="present", actual=shown, ok=shown != "missing")


def check_network_review(policy: Policy, evidence: Evidence, today: dt.date) -> None:
    """SA-ASSESS-001: the network architecture review is attested, current, and its facts declared."""
    check_attestation(evidence, policy, "network_architecture_review", today)
    rules = policy.firewall_rules
    evidence.expect(
        "firewall_rules.outbound_allowed",
        expected="the declared egress allow-list",
        actual=", ".join(f"{r.destination}:{r.port}/{r.protocol}" for r in rules.outbound_allowed) or "none",
        ok=bool(rules.outbound_allowed),
    )
    denies_all = any(r.all_traffic == "DENY" for r in rules.inbound_blocked)
    evidence.expect(
        "firewall_rules.inbound_blocked",
        expected="all_traffic: DENY",
        actual="all_traffic: DENY" if denies_all else "no deny-all rule",
        ok=denies_all,
    )


def check_credential_review(policy: Policy, evidence: Evidence, today: dt.date) -> None:
    """SA-ASSESS-002: the credential-management validation is attested, current and complete."""
    check_attestation(evidence, policy, "credential_management_validation", today)
    review = policy.assessment.credential_review
    prefix = "assessment.credential_review"
    _present(evidence, f"{prefix}.secret_store", review.secret_store)
    _present(evidence, f"{prefix}.owners", ", ".join(review.owners))
    ceiling = policy.assessment.rotation_ceiling_days
    evidence.expect(
        f"{prefix}.rotation_max_days",
        expected=f"at most {ceiling} days",
        actual="missing" if review.rotation_max_days is None else f"{review.rotation_max_days} days",
        ok=review.rotation_max_days is not None and 0 < review.rotation_max_days <= ceiling,
    )
    evidence.expect(
        f"{prefix}.credentials",
        expected="every agent credential listed",
        actual=f"{len(review.credentials)} listed",
        ok=bool(review.credentials),
    )
    unowned = [c.name or f"#{i + 1}" for i, c in enumerate(review.credentials) if not c.owner]
    if review.credentials:
        evidence.expect(
            f"{prefix}.credentials[].owner",
            expected="an owner for every credential",
            actual="all owned" if not unowned else "no owner: " + ", ".join(unowned),
            ok=not unowned,
        )


def check_incident_response(policy: Policy, evidence: Evidence, today: dt.date) -> None:
    """SA-OPS-003: the incident-response runbook and contacts are declared and the exercise is current."""
    ir = policy.incident_response
    _present(evidence, "incident_response.runbook_url", ir.runbook_url)
    _present(evidence, "incident_response.internal_contact", ir.internal_contact)
    evidence.expect(
        "incident_response.atlan_contact",
        expected=ir.expected_atlan_contact,
        actual=ir.atlan_contact or "missing",
        ok=(ir.atlan_contact or "").strip().lower() == ir.expected_atlan_contact.lower(),
    )
    _present(evidence, "incident_response.log_preservation", ir.log_preservation)
    check_attestation(evidence, policy, "incident_response_exercise", today)
