"""Attestations: who, when, evidence link and maximum age; stale or missing ones fail with the date."""

from __future__ import annotations

import datetime as dt

import pytest

from pytest_secagent.attestations import ATTESTATION_KINDS, attestation_for, check_attestation, stale_since
from pytest_secagent.evidence import ControlFailed, Evidence
from pytest_secagent.policy import Policy, PolicyError, parse_policy
from pytest_secagent.policy.model import Attestation
from tests.results.helpers import load_json

TODAY = dt.date(2025, 6, 1)


def _policy(text: str) -> Policy:
    return parse_policy(text, "policy.yaml")


def _lines(policy: Policy, key: str, today: dt.date = TODAY) -> tuple[bool, list[str]]:
    evidence = Evidence()
    ok = check_attestation(evidence, policy, key, today)
    return ok, [o.as_line() for o in evidence.observations]


ACCESS = (
    "attestations:\n  access_review:\n    by: iam-lead@example.com\n    date: {date}\n"
    "    evidence_url: https://tickets.example.com/SEC-42\n"
)


def test_a_current_attestation_holds() -> None:
    ok, lines = _lines(_policy(ACCESS.format(date="2025-04-01")), "access_review")
    assert ok
    assert lines == [
        "[ok] attestations.access_review.by: expected who attests it; observed iam-lead@example.com",
        "[ok] attestations.access_review.evidence_url: expected a link to the evidence; observed "
        "https://tickets.example.com/SEC-42",
        "[ok] attestations.access_review.date: expected at most 90 days old; observed 2025-04-01 "
        "(61 days old)",
    ]


def test_a_stale_attestation_fails_with_the_date_it_went_stale() -> None:
    ok, lines = _lines(_policy(ACCESS.format(date="2025-01-02")), "access_review")
    assert not ok
    assert lines[-1] == (
        "[fail] attestations.access_review.date: expected at most 90 days old; observed 2025-01-02 "
        "(150 days old; stale since 2025-04-03)"
    )


def test_the_last_day_of_the_maximum_age_still_holds() -> None:
    policy = _policy(ACCESS.format(date="2025-03-03"))
    assert _lines(policy, "access_review", dt.date(2025, 6, 1))[0]  # 90 days old
    assert not _lines(policy, "access_review", dt.date(2025, 6, 2))[0]
    assert stale_since(attestation_for(policy, "access_review")) == dt.date(2025, 6, 2)


def test_a_missing_attestation_fails_on_every_field() -> None:
    ok, lines = _lines(Policy(), "access_review")
    assert not ok
    assert lines == [
        "[fail] attestations.access_review.by: expected who attests it; observed missing",
        "[fail] attestations.access_review.evidence_url: expected a link to the evidence; observed missing",
        "[fail] attestations.access_review.date: expected a date within 90 days; observed missing",
    ]


def test_a_future_date_fails() -> None:
    ok, lines = _lines(_policy(ACCESS.format(date="2025-07-01")), "access_review")
    assert not ok
    assert lines[-1] == (
        "[fail] attestations.access_review.date: expected a date that is not in the future; observed "
        "2025-07-01 (30 days ahead)"
    )


def test_maximum_age_per_kind_and_per_policy() -> None:
    assert {k: v.default_max_age_days for k, v in ATTESTATION_KINDS.items()} == {
        "network_architecture_review": 365,
        "credential_management_validation": 365,
        "access_review": 90,
        "incident_response_exercise": 365,
    }
    policy = _policy(ACCESS.format(date="2025-01-02") + "    max_age_days: 180\n")
    assert attestation_for(policy, "access_review").max_age_days == 180
    assert _lines(policy, "access_review")[0]


def test_older_policy_keys_still_count() -> None:
    policy = _policy(
        "assessment:\n  max_age_days: 200\n  network_review:\n    date: 2025-01-10\n    reviewer: netsec\n"
        "    artifact_url: https://wiki.example.com/arch\n"
        "incident_response:\n  last_exercise_date: 2024-12-01\n"
    )
    assert attestation_for(policy, "network_architecture_review") == Attestation(
        by="netsec", date=dt.date(2025, 1, 10), evidence_url="https://wiki.example.com/arch", max_age_days=200
    )
    exercise = attestation_for(policy, "incident_response_exercise")
    assert exercise == Attestation(None, dt.date(2024, 12, 1), None, 365)
    override = _policy(
        "incident_response:\n  last_exercise_date: 2024-12-01\n"
        "attestations:\n  incident_response_exercise:\n    by: soc\n    date: 2025-05-01\n"
        "    evidence_url: https://x.example.com/ir\n"
    )
    assert attestation_for(override, "incident_response_exercise").date == dt.date(2025, 5, 1)


def test_unknown_attestation() -> None:
    with pytest.raises(KeyError, match="unknown attestation 'pentest'; known: network_architecture_review"):
        check_attestation(Evidence(), Policy(), "pentest", TODAY)


def test_conclude_lists_the_stale_date() -> None:
    evidence = Evidence()
    check_attestation(evidence, _policy(ACCESS.format(date="2025-01-02")), "access_review", TODAY)
    with pytest.raises(ControlFailed, match=r"observed 2025-01-02 \(150 days old; stale since 2025-04-03\)"):
        evidence.conclude()


def test_policy_errors_name_the_attestation_key() -> None:
    with pytest.raises(PolicyError, match=r"key 'attestations\.access_review\.when': unknown key"):
        _policy("attestations:\n  access_review:\n    when: 2025-01-01\n")


# --- the built-in suite -----------------------------------------------------------------------


def test_the_access_review_suite(pytester: pytest.Pytester) -> None:
    recent = (dt.date.today() - dt.timedelta(days=10)).isoformat()
    old = (dt.date.today() - dt.timedelta(days=100)).isoformat()
    current = pytester.makefile(".yaml", current=ACCESS.format(date=recent))
    stale = pytester.makefile(".yaml", stale=ACCESS.format(date=old))
    args = ("--secagent-controls", "SA-IAM-003", "--secagent-json", "r.json", "-p", "no:cacheprovider")

    assert pytester.runpytest("--secagent-policy", str(current), *args).ret == pytest.ExitCode.OK
    result = pytester.runpytest("--secagent-policy", str(stale), *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    stale_on = (dt.date.today() - dt.timedelta(days=100) + dt.timedelta(days=91)).isoformat()
    result.stdout.fnmatch_lines(
        [f"*attestations.access_review.date: expected at most 90 days old; observed {old} (100 days old; "
         f"stale since {stale_on})"]
    )
    (record,) = load_json(pytester.path / "r.json")["results"]
    assert record["control_id"] == "SA-IAM-003"
    assert record["outcome"] == "failed"
    assert record["nodeid"].endswith(
        "test_attestations.py::test_access_review_is_attested_and_current[SA-IAM-003:policy]"
    )
