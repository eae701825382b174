"""Security assessment before deployment: the network and credential reviews are on record.

Baseline: customer environment security for Secure Agent 2.0, "Security assessment process".
Evidence: the policy file's ``assessment`` section.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.policy import Policy
from pytest_secagent.procedural import check_credential_review, check_network_review
from pytest_secagent.targets import Target


@pytest.mark.secagent_control("SA-ASSESS-001")
def test_network_architecture_review_is_current(
    secagent_target: Target, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """The network architecture review is recorded with a reviewer, an artefact and a recent date."""
    check_network_review(secagent_policy, secagent_evidence, dt.date.today())
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-ASSESS-002")
def test_credential_management_validation_is_current(
    secagent_target: Target, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """The credential-management validation is recorded, recent, and every credential is owned."""
    check_credential_review(secagent_policy, secagent_evidence, dt.date.today())
    secagent_evidence.conclude()
