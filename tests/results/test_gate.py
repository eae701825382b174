"""The severity gate decides the exit status; pytest's own statuses stay untouched."""

from __future__ import annotations

import pytest

from pytest_secagent.gate import EXIT_UNVERIFIED, GateStatus, evaluate_gate, gated_exit_status
from pytest_secagent.model import Outcome, Severity
from tests.results.helpers import (
    BASE_ARGS,
    HIGH_FAIL,
    HIGH_OK,
    MEDIUM_FAIL,
    PLAIN_FAIL,
    UNVERIFIABLE,
    load_json,
    make_run,
)

USAGE_ERROR = pytest.ExitCode.USAGE_ERROR


def test_only_medium_failures_pass_a_high_gate(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL, HIGH_OK)
    result = pytester.runpytest(*BASE_ARGS, "--secagent-fail-on", "high")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "FAILED SA-ASSESS-001 [[]medium[]] on policy: *",
            "secagent gate: passed (fail on high and above; 1 failure(s) below high do not gate): "
            "exit status 0",
        ]
    )


def test_without_the_gate_every_failure_fails_the_run(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL, HIGH_OK)
    result = pytester.runpytest(*BASE_ARGS)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "secagent gate" not in result.stdout.str()


def test_a_high_failure_fails_a_high_gate(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL, HIGH_FAIL)
    result = pytester.runpytest(*BASE_ARGS, "--secagent-fail-on=HIGH", "--secagent-json=r.json")
    assert result.ret == int(GateStatus.NON_COMPLIANT) == 1
    result.stdout.fnmatch_lines(
        [
            "secagent gate: non-compliant: 1 control failure(s) at or above high; 1 failure(s) below high "
            "do not gate: exit status 1"
        ]
    )
    gate = load_json(pytester.path / "r.json")["run"]["gate"]
    assert gate["status"] == "non-compliant"
    assert gate["exit_status"] == 1
    assert gate["gating_failures"] == 1
    assert gate["failures_below_threshold"] == 1
    assert load_json(pytester.path / "r.json")["run"]["exit_status"] == 1


def test_an_unverifiable_control_fails_the_gate_unless_errors_are_allowed(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK, UNVERIFIABLE)
    result = pytester.runpytest(*BASE_ARGS, "--secagent-fail-on", "critical")
    assert result.ret == EXIT_UNVERIFIED == 6
    result.stdout.fnmatch_lines(
        [
            "ERROR SA-OPS-003 [[]medium[]] on policy: Incident-response coordination evidence",
            "secagent gate: unverified: 1 control(s) could not be verified: exit status 6",
        ]
    )
    allowed = pytester.runpytest(*BASE_ARGS, "--secagent-fail-on", "critical", "--secagent-allow-errors")
    assert allowed.ret == pytest.ExitCode.OK
    allowed.stdout.fnmatch_lines(
        ["secagent gate: passed (fail on critical and above; 1 unverified control(s) allowed): exit status 0"]
    )


def test_failures_win_over_errors(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_FAIL, UNVERIFIABLE)
    result = pytester.runpytest(*BASE_ARGS, "--secagent-fail-on", "high")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "secagent gate: non-compliant: 1 control failure(s) at or above high; 1 control(s) could not be "
            "verified: exit status 1"
        ]
    )


def test_gate_from_ini(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK, UNVERIFIABLE)
    pytester.makeini("[pytest]\nsecagent_fail_on = low\nsecagent_allow_errors = true\n")
    assert pytester.runpytest(*BASE_ARGS).ret == pytest.ExitCode.OK
    assert pytester.runpytest(*BASE_ARGS, "--secagent-fail-on", "medium").ret == pytest.ExitCode.OK


def test_a_failing_test_that_is_not_a_control_fails_the_gate(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK, PLAIN_FAIL)
    result = pytester.runpytest(*BASE_ARGS, "--secagent-fail-on", "critical")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["secagent gate: non-compliant: 1 test(s) outside the controls failed: exit status 1"]
    )


def test_strict_waivers_fail_the_gate(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK)
    waivers = pytester.makefile(
        ".yaml",
        waivers="waivers:\n  - control: SA-IAM-003\n    reason: r\n    owner: o\n    expires: 2000-01-01\n",
    )
    args = (*BASE_ARGS, "--secagent-fail-on", "high", "--secagent-waivers", str(waivers))
    assert pytester.runpytest(*args).ret == pytest.ExitCode.OK
    strict = pytester.runpytest(*args, "--secagent-strict-waivers")
    assert strict.ret == 1
    strict.stdout.fnmatch_lines(
        ["secagent gate: non-compliant: 1 expired or unused waiver(s) in strict mode: exit status 1"]
    )


def test_pytest_statuses_for_a_broken_run_stay(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK)
    pytester.makepyfile(test_broken="import does_not_exist\n")
    result = pytester.runpytest(*BASE_ARGS, "--secagent-fail-on", "critical", "--secagent-allow-errors")
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_a_run_stopped_early_keeps_pytests_status(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL, HIGH_OK)
    result = pytester.runpytest(*BASE_ARGS, "--secagent-fail-on", "critical", "-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["secagent gate: not applied: the run stopped early, so pytest's exit status stands"]
    )


def test_no_tests_keeps_pytests_status(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", policy="")
    result = pytester.runpytest(*BASE_ARGS, "--secagent-fail-on", "low")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


# --- usage errors -----------------------------------------------------------------------------


def _stderr(result: pytest.RunResult) -> str:
    return "\n".join(result.errlines).strip()


def test_unknown_gate_severity(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK)
    result = pytester.runpytest(*BASE_ARGS, "--secagent-fail-on", "severe")
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        "ERROR: --secagent-fail-on: unknown severity 'severe'; valid severities: low, medium, high, critical"
    )


def test_unknown_gate_severity_in_ini(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK)
    pytester.makeini("[pytest]\nsecagent_fail_on = all\n")
    result = pytester.runpytest(*BASE_ARGS)
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        "ERROR: secagent_fail_on (ini): unknown severity 'all'; valid severities: low, medium, high, critical"
    )


def test_allowing_errors_needs_the_gate(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK)
    result = pytester.runpytest(*BASE_ARGS, "--secagent-allow-errors")
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        "ERROR: --secagent-allow-errors needs --secagent-fail-on: only the severity gate can let "
        "unverified controls pass; add --secagent-fail-on LEVEL (low, medium, high or critical)"
    )
    pytester.makeini("[pytest]\nsecagent_allow_errors = true\n")
    result = pytester.runpytest(*BASE_ARGS)
    assert result.ret == USAGE_ERROR
    assert _stderr(result).startswith("ERROR: secagent_allow_errors (ini) needs --secagent-fail-on: ")


def test_help_lists_the_result_options(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "*--secagent-waivers=FILE*",
            "*--secagent-strict-waivers*",
            "*--secagent-fail-on=LEVEL*",
            "*--secagent-allow-errors*",
            "*--secagent-json=FILE*",
        ]
    )
    for key in ("secagent_waivers", "secagent_strict_waivers", "secagent_fail_on",
                "secagent_allow_errors", "secagent_json"):
        result.stdout.fnmatch_lines([f"*{key} (*):*"])


# --- the decision itself ----------------------------------------------------------------------

F, E, P, W = Outcome.FAILED, Outcome.ERROR, Outcome.PASSED, Outcome.WAIVED
LOW, MEDIUM, HIGH, CRITICAL = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL


@pytest.mark.parametrize(
    ("results", "fail_on", "allow_errors", "status"),
    [
        ([(P, CRITICAL), (F, MEDIUM)], HIGH, False, GateStatus.COMPLIANT),
        ([(F, HIGH)], HIGH, False, GateStatus.NON_COMPLIANT),
        ([(F, CRITICAL)], HIGH, False, GateStatus.NON_COMPLIANT),
        ([(F, LOW)], LOW, False, GateStatus.NON_COMPLIANT),
        ([(W, CRITICAL)], LOW, False, GateStatus.COMPLIANT),
        ([(E, LOW)], CRITICAL, False, GateStatus.UNVERIFIED),
        ([(E, LOW)], CRITICAL, True, GateStatus.COMPLIANT),
        ([(E, LOW), (F, CRITICAL)], CRITICAL, False, GateStatus.NON_COMPLIANT),
        ([], LOW, False, GateStatus.COMPLIANT),
    ],
)
def test_evaluate_gate(
    results: list[tuple[Outcome, Severity]], fail_on: Severity, allow_errors: bool, status: GateStatus
) -> None:
    assert evaluate_gate(results, fail_on=fail_on, allow_errors=allow_errors).status is status


def test_gated_exit_status_leaves_pytests_own_statuses() -> None:
    failing = evaluate_gate([(F, HIGH)], fail_on=LOW, allow_errors=False)
    for own in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR,
                pytest.ExitCode.NO_TESTS_COLLECTED):
        assert gated_exit_status(own, failing) is own
    assert gated_exit_status(pytest.ExitCode.OK, failing) == 1
    unverified = evaluate_gate([(E, HIGH)], fail_on=LOW, allow_errors=False)
    assert gated_exit_status(pytest.ExitCode.TESTS_FAILED, unverified) == 6
