"""The outcome follows the evidence: proven failures, crashing checks and passes on partial evidence.

Each rule is a matrix over where the second problem comes from (evidence that could not be
gathered, or an internal error of each common kind) and over every report that carries the
outcome (terminal, JUnit, JSON, gate).
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from lxml import etree

from pytest_secagent.json_report import schema
from tests.results.helpers import BASE_ARGS, make_run

#: How the second part of a check can go wrong after a first part already proved a failure.
SECOND_PROBLEMS = {
    "unavailable": ('raise EvidenceUnavailable("could not read the clock state")', "could not read the clock state"),
    "NameError": ("undefined_helper()", "internal error in the check: NameError"),
    "KeyError": ('{}["clock"]', "internal error in the check: KeyError"),
    "TypeError": ('len(None)', "internal error in the check: TypeError"),
}

PROVEN_THEN_BROKEN = """
@pytest.mark.secagent_control("SA-ASSESS-001")
def test_review(secagent_target, secagent_evidence):
    secagent_evidence.expect("auditd running", expected="active", actual="not running", ok=False)
    {second}
"""

CRASHING = """
@pytest.mark.secagent_control("SA-ASSESS-001")
def test_review(secagent_target, secagent_evidence):
    secagent_evidence.expect("review", expected="recorded", actual="recorded", ok=True)
    {second}
"""

CRASHING_FIXTURE = """
@pytest.fixture
def broken_source():
    {second}

@pytest.mark.secagent_control("SA-ASSESS-001")
def test_review(secagent_target, secagent_evidence, broken_source):
    secagent_evidence.expect("review", expected="recorded", actual="recorded", ok=True)
    secagent_evidence.conclude()
"""

USER_ASSERTION = """
@pytest.mark.secagent_control("SA-ASSESS-001")
def test_review(secagent_target, secagent_evidence):
    secagent_evidence.observe("review", "missing")
    assert "recorded" == "missing", "the review is missing"
"""

PARTIAL = """
@pytest.mark.secagent_control("SA-ASSESS-001")
def test_review(secagent_target, secagent_evidence):
    secagent_evidence.expect("policies isolate the namespace", expected="deny-all", actual="deny-all", ok=True)
    secagent_evidence.unobserved(
        "CNI enforces NetworkPolicy", expected="a policy-enforcing CNI",
        reason="rendered files cannot show the cluster's CNI",
    )
    secagent_evidence.conclude()
"""

ONLY_UNOBSERVED = """
@pytest.mark.secagent_control("SA-ASSESS-001")
def test_review(secagent_target, secagent_evidence):
    secagent_evidence.unobserved("CNI enforces NetworkPolicy", expected="enforcing", reason="static files")
    secagent_evidence.conclude()
"""


def _json(pytester: pytest.Pytester) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    return loaded


def _junit_case(pytester: pytest.Pytester) -> etree._Element:
    tree = etree.parse(str(pytester.path / "r.xml"))
    cases = tree.findall(".//testcase")
    assert len(cases) == 1
    return cases[0]


def _properties(case: etree._Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(
        *BASE_ARGS, "--junitxml", "r.xml", "--secagent-json", "r.json", *args
    )


@pytest.mark.parametrize("second", sorted(SECOND_PROBLEMS))
def test_a_proven_failure_is_a_failure_whatever_else_went_wrong(pytester: pytest.Pytester, second: str) -> None:
    code, said = SECOND_PROBLEMS[second]
    make_run(pytester, PROVEN_THEN_BROKEN.format(second=code))
    result = _run(pytester, "--secagent-fail-on", "medium", "--secagent-allow-errors")
    result.assert_outcomes(failed=1)
    assert result.ret == 1  # the gate must not read the proven failure as an allowed error
    record = _json(pytester)["results"][0]
    assert record["outcome"] == "failed"
    assert "auditd running" in record["detail"] or "expectation(s) not met" in record["detail"]
    assert said in record["detail"]
    case = _junit_case(pytester)
    failure = case.find("failure")
    assert failure is not None, "a proven failure is a <failure>, not an <error>"
    text = failure.text or ""
    assert "auditd running: expected active; observed not running" in text
    assert said in text


@pytest.mark.parametrize("second", sorted(set(SECOND_PROBLEMS) - {"unavailable"}))
@pytest.mark.parametrize("where", ["check", "fixture"])
def test_a_crashing_check_is_an_error_never_a_finding(pytester: pytest.Pytester, second: str, where: str) -> None:
    code, said = SECOND_PROBLEMS[second]
    body = CRASHING if where == "check" else CRASHING_FIXTURE
    make_run(pytester, body.format(second=code))
    result = _run(pytester, "-rE")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*could not verify SA-ASSESS-001 on policy: {said}*"])
    record = _json(pytester)["results"][0]
    assert record["outcome"] == "error"
    assert record["detail"].startswith(f"could not verify SA-ASSESS-001 on policy: {said}")
    case = _junit_case(pytester)
    error = case.find("error")
    assert error is not None
    # The traceback of an internal error is kept for whoever fixes the check.
    assert "Traceback" in (error.text or "") or "test_controls.py" in (error.text or "")


def test_a_user_assertion_is_a_finding(pytester: pytest.Pytester) -> None:
    make_run(pytester, USER_ASSERTION)
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    assert _json(pytester)["results"][0]["outcome"] == "failed"


def test_a_pass_on_partial_evidence_is_visibly_partial_in_every_report(pytester: pytest.Pytester) -> None:
    make_run(pytester, PARTIAL)
    result = _run(pytester, "-v")
    assert result.ret == 0
    result.stdout.fnmatch_lines([
        "*test_review*PARTIAL*",
        "PARTIAL SA-ASSESS-001 [[]medium[]] on policy: * -- passed on partial evidence; not observed: "
        "CNI enforces NetworkPolicy (rendered files cannot show the cluster's CNI)",
        "*1 partial in *",
    ])
    document = _json(pytester)
    record = document["results"][0]
    assert record["outcome"] == "partial"
    assert {"name": "CNI enforces NetworkPolicy", "expected": "a policy-enforcing CNI",
            "actual": "rendered files cannot show the cluster's CNI", "verdict": "unobserved"} in record["evidence"]
    assert document["summary"]["outcomes"]["partial"] == 1
    assert document["summary"]["score"] == 0.0  # scored, but not a full pass
    properties = _properties(_junit_case(pytester))
    assert properties["outcome"] == "partial"
    assert "[unobserved] CNI enforces NetworkPolicy: expected a policy-enforcing CNI; not observed: " in (
        properties["evidence"]
    )


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("--secagent-strict-evidence",), 1),
        (("--secagent-strict-evidence", "--secagent-fail-on", "medium"), 1),
        (("--secagent-strict-evidence", "--secagent-fail-on", "high"), 0),
        (("--secagent-fail-on", "low"), 0),
    ],
)
def test_strict_evidence_counts_a_partial_pass_as_not_compliant(
    pytester: pytest.Pytester, args: tuple[str, ...], status: int
) -> None:
    make_run(pytester, PARTIAL)
    result = _run(pytester, *args)
    assert result.ret == status
    assert _json(pytester)["results"][0]["outcome"] == "partial"
    if "--secagent-fail-on" not in args:
        result.stdout.fnmatch_lines(["*passed only on partial evidence, which --secagent-strict-evidence*"])


def test_strict_evidence_ini_key(pytester: pytest.Pytester) -> None:
    make_run(pytester, PARTIAL)
    pytester.makeini("[pytest]\nsecagent_strict_evidence = true\n")
    result = _run(pytester)
    assert result.ret == 1


def test_nothing_but_unobserved_parts_is_not_observable(pytester: pytest.Pytester) -> None:
    make_run(pytester, ONLY_UNOBSERVED)
    result = _run(pytester)
    result.assert_outcomes(skipped=1)
    record = _json(pytester)["results"][0]
    assert record["outcome"] == "not observable"
    assert "CNI enforces NetworkPolicy: static files" in record["detail"]


def test_partial_schema_validates(pytester: pytest.Pytester) -> None:
    make_run(pytester, PARTIAL)
    _run(pytester)
    jsonschema.validate(_json(pytester), schema())
