"""Inline control tests and run arguments shared by the results tests."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

#: Run only the inline tests, against the policy target of an explicit (empty) policy file.
BASE_ARGS = ("--secagent-no-suites", "--secagent-policy", "policy.yaml", "-p", "no:cacheprovider")

HEADER = """\
import pytest
from pytest_secagent.outcomes import EvidenceUnavailable
"""

# SA-ASSESS-001 is a medium control, SA-IAM-003 a high one; both run on the policy target.
MEDIUM_FAIL = """
@pytest.mark.secagent_control("SA-ASSESS-001")
def test_network_review(secagent_target, secagent_evidence):
    secagent_evidence.expect("review", expected="recorded", actual="missing", ok=False)
    secagent_evidence.conclude()
"""
MEDIUM_OK = """
@pytest.mark.secagent_control("SA-ASSESS-001")
def test_network_review(secagent_target, secagent_evidence):
    secagent_evidence.expect("review", expected="recorded", actual="recorded", ok=True)
    secagent_evidence.conclude()
"""
HIGH_FAIL = """
@pytest.mark.secagent_control("SA-IAM-003")
def test_access_review(secagent_target, secagent_evidence):
    secagent_evidence.expect("access review", expected="at most 90 days old", actual="400 days", ok=False)
    secagent_evidence.conclude()
"""
HIGH_OK = """
@pytest.mark.secagent_control("SA-IAM-003")
def test_access_review(secagent_target, secagent_evidence):
    secagent_evidence.expect("access review", expected="at most 90 days old", actual="10 days", ok=True)
    secagent_evidence.conclude()
"""
UNVERIFIABLE = """
@pytest.mark.secagent_control("SA-OPS-003")
def test_incident_response(secagent_target, secagent_evidence):
    raise EvidenceUnavailable("the runbook store timed out after 10s")
"""
XSS_POD = "<script>alert(1)</script>"
XSS_FAIL = """
@pytest.mark.secagent_control("SA-ASSESS-002")
def test_pod_named_like_markup(secagent_target, secagent_evidence):
    secagent_evidence.expect(
        "pod <script>alert(1)</script> runs as non-root",
        expected="runAsNonRoot: true",
        actual="pod <script>alert(1)</script>: runAsUser 0",
        ok=False,
    )
    secagent_evidence.conclude()
"""
PLAIN_FAIL = """
def test_not_a_control():
    assert 1 == 2
"""


def make_run(pytester: pytest.Pytester, *bodies: str, policy: str = "version: 1\n") -> None:
    """Write the policy file and one test module holding the given control tests."""
    pytester.makefile(".yaml", policy=policy)
    pytester.makepyfile(test_controls=HEADER + "".join(bodies))


def days(n: int) -> str:
    """The date ``n`` days from today, as YYYY-MM-DD."""
    return (dt.date.today() + dt.timedelta(days=n)).isoformat()


def write_waivers(pytester: pytest.Pytester, entries: str, name: str = "waivers") -> Path:
    """Write a waiver file whose ``waivers:`` list is ``entries`` (YAML, indented two spaces)."""
    return pytester.makefile(".yaml", **{name: "waivers:\n" + entries})


def load_json(path: Path) -> dict[str, Any]:
    """Read a JSON results file."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def result_for(document: dict[str, Any], control_id: str) -> dict[str, Any]:
    """The one JSON record of a control."""
    found: list[dict[str, Any]] = [r for r in document["results"] if r["control_id"] == control_id]
    assert len(found) == 1, found
    return found[0]


JUNIT_XSD = Path(__file__).with_name("junit.xsd")


def junit_cases(path: Path) -> dict[str, dict[str, Any]]:
    """Each JUnit testcase by name: its attributes, properties and result elements."""
    cases: dict[str, dict[str, Any]] = {}
    for case in etree.parse(str(path)).iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        results = {child.tag: child.get("message") or "" for child in case if child.tag != "properties"}
        attrs = dict(case.attrib)
        cases[str(case.get("name"))] = {"attrs": attrs, "properties": properties, "results": results}
    return cases


def junit_schema_errors(path: Path) -> list[str]:
    """Validate a JUnit file against the CI servers' JUnit schema; the errors, if any."""
    schema = etree.XMLSchema(etree.parse(str(JUNIT_XSD)))
    valid = schema.validate(etree.parse(str(path)))
    return [] if valid else [str(e) for e in schema.error_log]


def html_tests(path: Path) -> list[dict[str, Any]]:
    """The per-test rows of a pytest-html report, decoded from the page's data blob."""
    found = re.search(r'data-jsonblob="([^"]*)"', path.read_text(encoding="utf-8"))
    assert found is not None, "no data blob in the HTML report"
    data = json.loads(html.unescape(found.group(1)))
    rows: list[dict[str, Any]] = [row for rows in data["tests"].values() for row in rows]
    return rows


def html_summary(path: Path) -> str:
    """The compliance summary block at the top of a pytest-html report."""
    text = path.read_text(encoding="utf-8")
    start = text.index('<div class="secagent-summary">')
    return text[start : text.index("</div>", start)]
