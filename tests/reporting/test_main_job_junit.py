"""The JUnit of the README's main job (``pytest --secagent-target local://``) reads as findings."""

from __future__ import annotations

import re

import pytest

from tests.reporting.helpers import junit_tree
from tests.results.helpers import junit_schema_errors

#: What a Python repr looks like in a message: an object address, or a target's or policy's repr.
PYTHON_REPR = re.compile(r"<[\w.]+ object at 0x|\w+Target\(|\w+Section\(|Policy\(|Traceback|secagent_\w+ = ")


def test_every_failed_testcase_leads_with_its_control_id_and_holds_no_python_repr(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest("--secagent-target", "local://", "--secagent-junit=secagent.xml",
                                "-p", "no:cacheprovider")
    assert result.ret in (0, 1, 6), result.stdout.str()
    path = pytester.path / "secagent.xml"
    assert junit_schema_errors(path) == []
    cases = list(junit_tree(path).getroot().iter("testcase"))
    assert len(cases) >= 40
    failures = [(case, element) for case in cases for element in case if element.tag in ("failure", "error")]
    assert failures, "the built-in policy fails at least its attestations on a fresh machine"
    for case, element in failures:
        control = str(case.get("name")).split(":", 1)[0]
        message = element.get("message") or ""
        if element.tag == "failure":
            assert message.startswith(f"{control} ["), message
        else:
            assert message.startswith(f"could not verify {control} on "), message
        assert not PYTHON_REPR.search(message), message
        assert not PYTHON_REPR.search(element.text or ""), element.text


def test_pytest_own_junit_of_the_main_job_leads_with_the_finding(pytester: pytest.Pytester) -> None:
    """The README's command writes pytest's JUnit (``--junitxml``): its failures read as findings too."""
    result = pytester.runpytest("--secagent-target", "local://", "--junitxml=secagent.xml", "-p", "no:cacheprovider")
    assert result.ret in (0, 1), result.stdout.str()
    cases = list(junit_tree(pytester.path / "secagent.xml").getroot().iter("testcase"))
    failures = [
        (case, element) for case in cases for element in case if element.tag in ("failure", "error")
    ]
    assert failures
    for case, element in failures:
        control = next(p.get("value") for p in case.iter("property") if p.get("name") == "control_id")
        message = element.get("message") or ""
        if element.tag == "failure":
            assert message.startswith(f"{control} ["), message
        else:
            assert message.startswith(f'failed on setup with "could not verify {control} on '), message
        assert not PYTHON_REPR.search(message), message
