"""The procedural controls, run through the shipped suites against policy files."""

from __future__ import annotations

import datetime as dt

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.policy import parse_policy
from pytest_secagent.procedural import check_credential_review, check_incident_response, check_network_review

TODAY = dt.date(2026, 11, 29)


def _policy_text(review_date: dt.date, exercise_date: dt.date) -> str:
    return f"""
assessment:
  network_review:
    date: {review_date}
    reviewer: Jane Doe (platform security)
    artifact_url: https://wiki.example.com/atlan-agent/network-review
  credential_review:
    date: {review_date}
    reviewer: John Roe (identity team)
    secret_store: aws-secrets-manager
    rotation_max_days: 90
    owners: [platform-security@example.com]
    credentials:
      - name: Atlan OAuth client
        owner: data-platform@example.com
      - name: Snowflake metadata user
        owner: dba@example.com
incident_response:
  runbook_url: https://wiki.example.com/atlan-agent/ir
  internal_contact: soc@example.com
  atlan_contact: security@atlan.com
  last_exercise_date: {exercise_date}
  log_preservation: s3://example-siem/atlan-agent (365 days)
attestations:
  credential_management_validation:
    evidence_url: https://tickets.example.com/SEC-1200
  incident_response_exercise:
    by: soc@example.com
    evidence_url: https://wiki.example.com/atlan-agent/ir/exercise-report
"""


def _verdicts(evidence: Evidence) -> dict[str, str]:
    return {o.name: o.verdict.value for o in evidence.observations}


def test_complete_records_pass() -> None:
    policy = parse_policy(_policy_text(dt.date(2026, 6, 1), dt.date(2026, 9, 1)), "p.yaml")
    for check in (check_network_review, check_credential_review, check_incident_response):
        evidence = Evidence()
        check(policy, evidence, TODAY)
        evidence.conclude()


def test_stale_review_says_when_it_went_stale() -> None:
    policy = parse_policy(_policy_text(dt.date(2025, 1, 10), dt.date(2026, 9, 1)), "p.yaml")
    evidence = Evidence()
    check_network_review(policy, evidence, TODAY)
    (failure,) = evidence.failures
    assert failure.name == "attestations.network_architecture_review.date"
    assert failure.actual == "2025-01-10 (688 days old; stale since 2026-01-11)"


def test_future_dates_fail() -> None:
    policy = parse_policy(_policy_text(dt.date(2026, 6, 1), dt.date(2027, 1, 1)), "p.yaml")
    evidence = Evidence()
    check_incident_response(policy, evidence, TODAY)
    (failure,) = evidence.failures
    assert failure.expected == "a date that is not in the future"


def test_unowned_credential_and_long_rotation_fail() -> None:
    text = _policy_text(dt.date(2026, 6, 1), dt.date(2026, 9, 1))
    text = text.replace("rotation_max_days: 90", "rotation_max_days: 200").replace(
        "        owner: dba@example.com\n", ""
    )
    policy = parse_policy(text, "p.yaml")
    evidence = Evidence()
    check_credential_review(policy, evidence, TODAY)
    assert _verdicts(evidence)["assessment.credential_review.credentials[].owner"] == "fail"
    assert [f.actual for f in evidence.failures] == ["200 days", "no owner: Snowflake metadata user"]


def test_wrong_atlan_contact_fails() -> None:
    text = _policy_text(dt.date(2026, 6, 1), dt.date(2026, 9, 1)).replace(
        "security@atlan.com", "support@atlan.com"
    )
    evidence = Evidence()
    check_incident_response(parse_policy(text, "p.yaml"), evidence, TODAY)
    assert [(f.expected, f.actual) for f in evidence.failures] == [
        ("security@atlan.com", "support@atlan.com")
    ]


def test_suites_pass_with_a_complete_policy(pytester: pytest.Pytester) -> None:
    today = dt.date.today()
    policy = pytester.makefile(
        ".yaml", policy=_policy_text(today - dt.timedelta(days=30), today - dt.timedelta(days=60))
    )
    result = pytester.runpytest(
        "--secagent-policy", str(policy), "--secagent-controls", "SA-ASSESS-00[12],SA-OPS-003", "-v"
    )
    result.assert_outcomes(passed=3, deselected=result.parseoutcomes().get("deselected", 0))
    result.stdout.fnmatch_lines_random(
        [
            "*test_network_architecture_review_is_current?SA-ASSESS-001:policy? PASSED*",
            "*test_credential_management_validation_is_current?SA-ASSESS-002:policy? PASSED*",
            "*test_incident_response_is_prepared?SA-OPS-003:policy? PASSED*",
        ]
    )


def test_suites_fail_on_the_builtin_policy(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "--secagent-target", "tls://127.0.0.1:9", "--secagent-controls", "SA-ASSESS-00[12],SA-OPS-003"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines_random(
        [
            "FAILED SA-ASSESS-001 [[]medium[]] on policy: *",
            "FAILED SA-ASSESS-002 [[]medium[]] on policy: *",
            "FAILED SA-OPS-003 [[]medium[]] on policy: *",
        ]
    )
