"""A waived failure is visible everywhere; expired and unused waivers are reported; strict mode."""

from __future__ import annotations

import datetime as dt

import pytest

import pytest_secagent.waivers
from tests.results.helpers import (
    BASE_ARGS,
    HIGH_OK,
    MEDIUM_FAIL,
    UNVERIFIABLE,
    days,
    html_summary,
    html_tests,
    junit_cases,
    load_json,
    make_run,
    result_for,
    write_waivers,
)

OWNER = "platform-security@example.com"
REASON = "review booked with the network team"


def _waiver(control: str, expires: str, target: str | None = None, reason: str = REASON) -> str:
    target_line = f"    target: '{target}'\n" if target else ""
    return (
        f"  - control: {control}\n{target_line}    reason: {reason}\n    owner: {OWNER}\n"
        f"    expires: {expires}\n"
    )


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        *BASE_ARGS, "-v", "--junitxml=junit.xml", "--html=report.html", "--secagent-json=results.json", *args
    )


def test_a_waived_failure_shows_as_waived_with_owner_and_expiry_everywhere(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL, HIGH_OK)
    expires = days(30)
    waivers = write_waivers(pytester, _waiver("SA-ASSESS-001", expires))
    result = _run(pytester, "--secagent-waivers", str(waivers))

    # Terminal: the status, the final counts, and the compliance summary with owner and expiry.
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "test_controls.py::test_network_review[[]SA-ASSESS-001:policy[]] WAIVED (*",
            f"WAIVED SA-ASSESS-001 [[]medium[]] on policy: Network architecture review recorded and current"
            f" -- waived until {expires} by {OWNER}: {REASON}",
            "*1 passed, 1 waived in *",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "section                         score  passed  partial  failed  waived  errors  n/a"
            "  not observable  skipped",
            "Security assessment                0%       0        0       0       1       0    0"
            "               0        0",
            "Identity and access management   100%       1        0       0       0       0    0"
            "               0        0",
            "total                             50%       1        0       0       1       0    0"
            "               0        0",
        ]
    )

    # JUnit: a skipped testcase whose message and properties carry the waiver.
    case = junit_cases(pytester.path / "junit.xml")["test_network_review[SA-ASSESS-001:policy]"]
    assert case["properties"]["outcome"] == "waived"
    assert case["properties"]["waiver_status"] == "applied"
    assert case["properties"]["waiver_owner"] == OWNER
    assert case["properties"]["waiver_expires"] == expires
    assert case["properties"]["waiver_reason"] == REASON
    assert case["properties"]["waiver_target"] == "*"
    assert case["results"]["skipped"].startswith(f"waived until {expires} by {OWNER}: {REASON} (")

    # JSON: the record is waived and names the waiver.
    document = load_json(pytester.path / "results.json")
    record = result_for(document, "SA-ASSESS-001")
    assert record["outcome"] == "waived"
    assert record["waiver"]["status"] == "applied"
    assert record["waiver"]["owner"] == OWNER
    assert record["waiver"]["expires"] == expires
    assert record["evidence"] == [
        {"name": "review", "expected": "recorded", "actual": "missing", "verdict": "fail"}
    ]
    assert document["summary"]["outcomes"]["waived"] == 1
    assert document["run"]["waivers"]["entries"][0]["status"] == "applied"

    # HTML: the outcome column, the row details, and the summary's waived table.
    (row,) = [r for r in html_tests(pytester.path / "report.html") if "test_network_review" in r["testId"]]
    assert '<td class="col-outcome">waived</td>' in row["resultsTableRow"]
    assert f"waived: owner {OWNER}, expires {expires}" in row["log"]
    assert "1 expectation(s) not met" in row["log"]  # the waived failure itself stays visible
    summary = html_summary(pytester.path / "report.html")
    assert f"<td>SA-ASSESS-001</td><td>policy</td><td>{OWNER}</td><td>{expires}</td>" in summary


def test_the_same_waiver_after_its_expiry_date_lets_the_failure_through(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_run(pytester, MEDIUM_FAIL)
    expires = days(30)
    waivers = write_waivers(pytester, _waiver("SA-ASSESS-001", expires))
    assert _run(pytester, "--secagent-waivers", str(waivers)).ret == pytest.ExitCode.OK

    later = dt.date.fromisoformat(expires) + dt.timedelta(days=1)
    monkeypatch.setattr(pytest_secagent.waivers, "today", lambda: later)
    result = _run(pytester, "--secagent-waivers", str(waivers))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*- secagent: waiver expired -*",
            f"the waiver of SA-ASSESS-001 owned by {OWNER} expired on {expires} ({waivers}, waivers[[]0[]] "
            "(line 2)); it no longer applies, so this failure counts.*",
            f"FAILED SA-ASSESS-001 [[]medium[]] on policy: * -- waiver expired on {expires} (owner {OWNER})",
            f"EXPIRED waiver waivers[[]0[]] (line 2) SA-ASSESS-001 on * (owner {OWNER}, expires {expires}): "
            f"expired on {expires}; it no longer applies",
            "*1 failed in *",
        ]
    )
    case = junit_cases(pytester.path / "junit.xml")["test_network_review[SA-ASSESS-001:policy]"]
    assert case["properties"]["outcome"] == "failed"
    assert case["properties"]["waiver_status"] == "expired"
    assert "failure" in case["results"]
    record = result_for(load_json(pytester.path / "results.json"), "SA-ASSESS-001")
    assert record["outcome"] == "failed"
    assert record["waiver"]["status"] == "expired"
    (row,) = html_tests(pytester.path / "report.html")
    assert "waiver EXPIRED, the failure counts" in row["log"]


def test_a_waiver_of_another_target_does_not_apply(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL)
    waivers = write_waivers(pytester, _waiver("SA-ASSESS-001", days(30), target="k8s:*"))
    result = _run(pytester, "--secagent-waivers", str(waivers))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*- secagent waivers not applied -*",
            f"UNUSED waiver waivers[[]0[]] (line 2) SA-ASSESS-001 on k8s:* (owner {OWNER}, expires *): "
            "matched no failure; remove it, or fix its control or target pattern",
        ]
    )


def test_an_unused_waiver_is_listed_and_fails_the_run_in_strict_mode(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK)
    waivers = write_waivers(pytester, _waiver("SA-IAM-003", days(10)))
    result = _run(pytester, "--secagent-waivers", str(waivers))
    assert result.ret == pytest.ExitCode.OK
    unused = (
        f"UNUSED waiver waivers[[]0[]] (line 2) SA-IAM-003 on * (owner {OWNER}, expires {days(10)}): "
        "matched no failure; remove it, or fix its control or target pattern"
    )
    result.stdout.fnmatch_lines([unused])

    strict = _run(pytester, "--secagent-waivers", str(waivers), "--secagent-strict-waivers")
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    strict.stdout.fnmatch_lines([unused])
    entry = load_json(pytester.path / "results.json")["run"]["waivers"]
    assert entry["strict"] is True
    assert entry["entries"][0]["status"] == "unused"


def test_strict_mode_from_ini_and_expired_waivers(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK)
    waivers = write_waivers(pytester, _waiver("SA-IAM-003", days(-1)))
    pytester.makeini(f"[pytest]\nsecagent_waivers = {waivers.name}\nsecagent_strict_waivers = true\n")
    result = pytester.runpytest(*BASE_ARGS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [f"EXPIRED waiver waivers[[]0[]] (line 2) SA-IAM-003 on * *expired on {days(-1)}*"]
    )


def test_a_waiver_whose_control_did_not_run_is_listed_but_not_counted(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK)
    waivers = write_waivers(pytester, _waiver("SA-NET-007", days(10)))
    result = _run(pytester, "--secagent-waivers", str(waivers), "--secagent-strict-waivers")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["NOT RUN waiver waivers[[]0[]] * SA-NET-007 on * its control did not run in this session"]
    )


def test_an_unverifiable_control_is_never_waived(pytester: pytest.Pytester) -> None:
    make_run(pytester, UNVERIFIABLE)
    waivers = write_waivers(pytester, _waiver("SA-OPS-003", days(10)))
    result = _run(pytester, "--secagent-waivers", str(waivers))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1)
    record = result_for(load_json(pytester.path / "results.json"), "SA-OPS-003")
    assert record["outcome"] == "error"
    assert record["waiver"] is None
    result.stdout.fnmatch_lines(["UNUSED waiver waivers[[]0[]] * SA-OPS-003 on *"])
