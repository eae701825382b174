"""One item per matching target, n/a skips with reasons, selection options."""

from __future__ import annotations

import pytest

CONTROLS = """
import pytest

@pytest.mark.secagent_control("SA-NET-007")
def test_tls(secagent_target, secagent_evidence):
    secagent_evidence.expect("target", expected="endpoint", actual=secagent_target.kind.value, ok=True)
    secagent_evidence.conclude()

@pytest.mark.secagent_control("SA-RUNTIME-005", applies_to=["k8s", "manifests"])
def test_psa(secagent_target, secagent_evidence):
    secagent_evidence.expect("never", expected="-", actual="-", ok=False)
    secagent_evidence.conclude()

@pytest.mark.secagent_control("SA-OPS-003")
def test_ir(secagent_target, secagent_evidence):
    secagent_evidence.observe("policy", secagent_target.source)
    secagent_evidence.conclude()

def test_plain():
    pass
"""


def test_one_item_per_matching_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_controls=CONTROLS)
    result = pytester.runpytest(
        "--secagent-no-suites",
        "-v",
        "-rs",
        "--secagent-target",
        "tls://127.0.0.1:9",
        "--secagent-target",
        "https://127.0.0.2:8443",
    )
    result.assert_outcomes(passed=4, skipped=1)
    result.stdout.fnmatch_lines_random(
        [
            "*test_tls?SA-NET-007:tls:127.0.0.1:9? PASSED*",
            "*test_tls?SA-NET-007:https:127.0.0.2:8443? PASSED*",
            "*test_psa?SA-RUNTIME-005:not-applicable? SKIPPED (*",
            "SKIPPED [[]1[]] test_controls.py:8: not applicable: no k8s or manifests target",
            "*test_ir?SA-OPS-003:policy? PASSED*",
            "*test_plain PASSED*",
        ]
    )


def test_k_selects_by_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_controls=CONTROLS)
    result = pytester.runpytest(
        "--secagent-no-suites",
        "-v",
        "-k",
        "127.0.0.2",
        "--secagent-target",
        "tls://127.0.0.1:9",
        "--secagent-target",
        "https://127.0.0.2:8443",
    )
    result.assert_outcomes(passed=1, deselected=4)


def test_control_tests_without_targets_are_not_applicable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_controls=CONTROLS)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1[]] test_controls.py:3: not applicable: no endpoint target",
            "SKIPPED [[]1[]] test_controls.py:13: not applicable: no policy target",
        ]
    )


@pytest.mark.parametrize(
    ("options", "passed", "deselected"),
    [
        (("--secagent-controls", "SA-NET-*"), 2, 2),
        (("--secagent-controls", "SA-OPS-003,SA-NET-007"), 3, 1),
        (("--secagent-section", "ongoing security requirements"), 2, 2),
        (("--secagent-severity", "high"), 2, 1),
        (("--secagent-severity", "critical"), 1, 3),
    ],
)
def test_selection_options(
    pytester: pytest.Pytester, options: tuple[str, ...], passed: int, deselected: int
) -> None:
    pytester.makepyfile(test_controls=CONTROLS)
    result = pytester.runpytest("--secagent-no-suites", "--secagent-target", "tls://127.0.0.1:9", *options)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == passed
    assert outcomes.get("deselected", 0) == deselected


def test_selection_from_ini_and_policy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_controls=CONTROLS)
    policy = pytester.makefile(".yaml", policy="run:\n  controls: ['SA-OPS-*']\n  min_severity: medium\n")
    pytester.makeini(f"[pytest]\nsecagent_policy = {policy.name}\n")
    result = pytester.runpytest("--secagent-no-suites", "--secagent-target", "tls://127.0.0.1:9")
    result.assert_outcomes(passed=2, deselected=2)


def test_builtin_suites_are_collected_with_user_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine="def test_mine(secagent_policy):\n    assert secagent_policy\n")
    result = pytester.runpytest("--secagent-target", "tls://127.0.0.1:9", "--co", "-q", "test_mine.py")
    # The built-in suites run alongside the files the user names.
    result.stdout.fnmatch_lines(["test_mine.py::test_mine", "*test_assessment.py::*[[]SA-ASSESS-00?:policy[]]*"])


def test_no_suites_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine="def test_mine():\n    pass\n")
    result = pytester.runpytest("--secagent-target", "local://", "--secagent-no-suites", "--co", "-q")
    result.stdout.fnmatch_lines(["test_mine.py::test_mine", "1 test collected*"])
