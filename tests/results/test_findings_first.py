"""A failed control reads as a finding, not as a Python traceback, in the terminal and in JUnit.

The one-line finding (``CONTROL [severity] on TARGET: <first unmet expectation>``) leads the
terminal report, the short summary (``-ra``) and pytest's JUnit ``message``; the evidence,
remediation and references follow. A traceback appears only for an internal error of a check,
or with ``--tb=long``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from tests.results.helpers import BASE_ARGS, MEDIUM_FAIL, make_run

HEADLINE = "SA-ASSESS-001 [medium] on policy: review: expected recorded; observed missing"
#: The headline as an fnmatch pattern (brackets are character classes there).
HEADLINE_PATTERN = HEADLINE.replace("[medium]", "[[]medium[]]")

CRASH = """
@pytest.mark.secagent_control("SA-IAM-003")
def test_crash(secagent_target, secagent_evidence):
    secagent_evidence.observe("reviews", "3")
    {}["review"]
"""

USER_ASSERT = """
@pytest.mark.secagent_control("SA-IAM-003")
def test_user_assert(secagent_target, secagent_evidence):
    secagent_evidence.observe("review age", "400 days")
    assert 400 <= 90, "the access review is 400 days old"
"""


def test_the_default_report_leads_with_the_finding_and_shows_no_python(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL)
    result = pytester.runpytest(*BASE_ARGS, "-rA", "-vv")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*= FAILURES =*",
        "*test_network_review*",
        HEADLINE_PATTERN,
        "evidence:",
        "  [[]fail[]] review: expected recorded; observed missing",
        "remediation: *",
        "references: *",
    ])
    result.stdout.fnmatch_lines([f"FAILED test_controls.py::test_network_review[[]SA-ASSESS-001:policy[]] - {HEADLINE_PATTERN}"])
    text = result.stdout.str()
    for python in ("Traceback", "secagent_evidence.conclude()", "ControlFailed", "secagent_target = ", "object at 0x"):
        assert python not in text


def test_long_tracebacks_are_there_when_asked_for(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL)
    result = pytester.runpytest(*BASE_ARGS, "--tb=long")
    result.stdout.fnmatch_lines([HEADLINE_PATTERN, "*secagent_evidence.conclude()*"])


@pytest.mark.parametrize(("style", "shown", "hidden"), [
    ("line", [f"*test_controls.py:*: {HEADLINE_PATTERN}"], ["evidence:", "remediation:"]),
    ("short", [HEADLINE_PATTERN, "  [[]fail[]] review: expected recorded; observed missing"], ["remediation:", "Traceback"]),
])
def test_short_styles_give_clean_lines(
    pytester: pytest.Pytester, style: str, shown: list[str], hidden: list[str]
) -> None:
    make_run(pytester, MEDIUM_FAIL)
    result = pytester.runpytest(*BASE_ARGS, f"--tb={style}")
    result.stdout.fnmatch_lines(shown)
    for text in hidden:
        assert text not in result.stdout.str()


def test_an_internal_error_keeps_its_traceback(pytester: pytest.Pytester) -> None:
    make_run(pytester, CRASH)
    result = pytester.runpytest(*BASE_ARGS)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "could not verify SA-IAM-003 on policy: internal error in the check: KeyError: 'review'",
        "*KeyError*",
    ])
    assert "test_controls.py" in result.stdout.str()


def test_a_plain_assertion_shows_its_message_not_its_source(pytester: pytest.Pytester) -> None:
    make_run(pytester, USER_ASSERT)
    result = pytester.runpytest(*BASE_ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["SA-IAM-003 [[]high[]] on policy: the access review is 400 days old"])


def test_pytest_junit_message_is_the_finding(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL, CRASH.replace("SA-IAM-003", "SA-OPS-003"))
    pytester.runpytest(*BASE_ARGS, "--junitxml", "j.xml")
    root = ElementTree.parse(pytester.path / "j.xml").getroot()
    messages = [e.get("message", "") for e in root.iter() if e.tag in ("failure", "error")]
    assert messages[0] == HEADLINE
    assert messages[1].startswith('failed on setup with "could not verify SA-OPS-003 on policy: internal error')
    for message in messages:
        assert "object at 0x" not in message
        assert "PolicyTarget(" not in message
