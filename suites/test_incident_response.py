"""Incident response coordination: a rehearsed, agent-specific runbook with the right contacts.

Baseline: customer environment security for Secure Agent 2.0, "Ongoing security requirements".
Evidence: the policy file's ``incident_response`` section.
"""

from __future__ import annotations

import datetime as dt

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.policy import Policy
from pytest_secagent.procedural import check_incident_response
from pytest_secagent.targets import Target


@pytest.mark.secagent_control("SA-OPS-003")
def test_incident_response_is_prepared(
    secagent_target: Target, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """The runbook, contacts, log preservation and a recent exercise are on record."""
    check_incident_response(secagent_policy, secagent_evidence, dt.date.today())
    secagent_evidence.conclude()
