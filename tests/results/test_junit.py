"""JUnit XML: per-testcase properties, stable testcase names, valid for CI servers' JUnit readers."""

from __future__ import annotations

import pytest

from tests.results.helpers import (
    BASE_ARGS,
    HIGH_FAIL,
    HIGH_OK,
    MEDIUM_FAIL,
    PLAIN_FAIL,
    UNVERIFIABLE,
    XSS_FAIL,
    days,
    junit_cases,
    junit_schema_errors,
    make_run,
    write_waivers,
)

NOT_APPLICABLE = """
@pytest.mark.secagent_control("SA-NET-007")
def test_tls(secagent_target, secagent_evidence):
    secagent_evidence.observe("tls", "never runs without an endpoint target")
    secagent_evidence.conclude()
"""
PRINTS = """
@pytest.mark.secagent_control("SA-OPS-002", applies_to=("policy",))
def test_release(secagent_target, secagent_evidence):
    print("release 2.3.1 <latest> & signed")
    secagent_evidence.expect("release", expected="latest", actual="2.3.0", ok=False)
    secagent_evidence.conclude()
"""


@pytest.mark.parametrize("family", ["xunit2", "xunit1", "legacy"])
def test_every_outcome_validates_against_the_junit_schema(pytester: pytest.Pytester, family: str) -> None:
    make_run(pytester, MEDIUM_FAIL, HIGH_OK, UNVERIFIABLE, XSS_FAIL, NOT_APPLICABLE, PLAIN_FAIL, PRINTS)
    waivers = write_waivers(
        pytester, f"  - control: SA-ASSESS-002\n    reason: <r> & r\n    owner: o\n    expires: {days(3)}\n"
    )
    pytester.runpytest(
        *BASE_ARGS,
        "--junitxml=junit.xml",
        "-o", f"junit_family={family}",
        "-o", "junit_logging=all",
        "--secagent-waivers", str(waivers),
    )
    junit = pytester.path / "junit.xml"
    assert junit_schema_errors(junit) == []
    cases = junit_cases(junit)
    assert set(cases) == {
        "test_network_review[SA-ASSESS-001:policy]",
        "test_access_review[SA-IAM-003:policy]",
        "test_incident_response[SA-OPS-003:policy]",
        "test_pod_named_like_markup[SA-ASSESS-002:policy]",
        "test_tls[SA-NET-007:not-applicable]",
        "test_not_a_control",
        "test_release[SA-OPS-002:policy]",
    }
    assert set(cases["test_network_review[SA-ASSESS-001:policy]"]["results"]) == {"failure", "system-out", "system-err"}
    assert "error" in cases["test_incident_response[SA-OPS-003:policy]"]["results"]
    assert "skipped" in cases["test_pod_named_like_markup[SA-ASSESS-002:policy]"]["results"]
    assert cases["test_pod_named_like_markup[SA-ASSESS-002:policy]"]["properties"]["waiver_reason"] == "<r> & r"


def test_properties_carry_the_control_the_outcome_and_the_waiver(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL, UNVERIFIABLE, XSS_FAIL)
    waivers = write_waivers(
        pytester,
        "  - control: SA-ASSESS-002\n    target: polic?\n    reason: r\n    owner: o\n"
        f"    expires: {days(3)}\n",
    )
    pytester.runpytest(*BASE_ARGS, "--junitxml=junit.xml", "--secagent-waivers", str(waivers))
    cases = junit_cases(pytester.path / "junit.xml")
    failed = cases["test_network_review[SA-ASSESS-001:policy]"]["properties"]
    assert failed["control_id"] == "SA-ASSESS-001"
    assert failed["control_title"] == "Network architecture review recorded and current"
    assert failed["severity"] == "medium"
    assert failed["section"] == "Security assessment"
    assert failed["target"] == "policy"
    assert failed["outcome"] == "failed"
    assert failed["outcome_detail"].endswith("- review: expected recorded; observed missing")
    assert failed["evidence"] == "[fail] review: expected recorded; observed missing"
    assert failed["remediation"].startswith("Run and record the network review")
    assert not any(name.startswith("waiver_") for name in failed)
    error = cases["test_incident_response[SA-OPS-003:policy]"]["properties"]
    assert error["outcome"] == "error"
    assert error["outcome_detail"] == (
        "could not verify SA-OPS-003 on policy: the runbook store timed out after 10s"
    )
    waived = cases["test_pod_named_like_markup[SA-ASSESS-002:policy]"]["properties"]
    assert {k: v for k, v in waived.items() if k.startswith("waiver_") or k == "outcome"} == {
        "outcome": "waived",
        "waiver_status": "applied",
        "waiver_reason": "r",
        "waiver_owner": "o",
        "waiver_expires": days(3),
        "waiver_target": "polic?",
        "waiver_entry": "0",
    }


def test_testcase_names_are_the_control_test_and_target_whatever_the_result(
    pytester: pytest.Pytester,
) -> None:
    make_run(pytester, MEDIUM_FAIL, HIGH_FAIL)
    pytester.runpytest(*BASE_ARGS, "--secagent-target=local://", "--junitxml=failing.xml")
    make_run(pytester, MEDIUM_FAIL.replace('ok=False', 'ok=True'), HIGH_OK)
    pytester.runpytest(*BASE_ARGS, "--secagent-target=local://", "--junitxml=passing.xml")

    failing = junit_cases(pytester.path / "failing.xml")
    passing = junit_cases(pytester.path / "passing.xml")
    assert set(failing) == set(passing) == {"test_network_review[SA-ASSESS-001:policy]", "test_access_review[SA-IAM-003:policy]"}
    for name, case in failing.items():
        assert case["attrs"]["classname"] == passing[name]["attrs"]["classname"] == "test_controls"
        assert case["properties"]["control_id"] == passing[name]["properties"]["control_id"]
        assert case["properties"]["target"] == "policy"
    assert failing["test_network_review[SA-ASSESS-001:policy]"]["properties"]["outcome"] == "failed"
    assert passing["test_network_review[SA-ASSESS-001:policy]"]["properties"]["outcome"] == "passed"
