"""Attested procedural controls: the access review of the agent's data-source credentials.

Baseline: customer environment security for Secure Agent 2.0, "Least privilege" (access to
data sources reviewed; Atlan recommends quarterly access reviews).
Evidence: the policy file's ``attestations`` section: who attested it, when, and a link to
the evidence; stale after ``max_age_days`` (90 by default).
"""

from __future__ import annotations

import datetime as dt

import pytest

from pytest_secagent.attestations import check_attestation
from pytest_secagent.evidence import Evidence
from pytest_secagent.policy import Policy
from pytest_secagent.targets import Target


@pytest.mark.secagent_control("SA-IAM-003")
def test_access_review_is_attested_and_current(
    secagent_target: Target, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """The access review of the agent's data-source credentials is attested and current."""
    check_attestation(secagent_evidence, secagent_policy, "access_review", dt.date.today())
    secagent_evidence.conclude()
