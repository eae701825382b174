"""JUnit XML of a results document: one test suite per target, one test case per result.

The message of every failure, error and skip is the finding, never a traceback:

* failed: ``<failure type="control-failed" message="SA-NET-003 [critical] on local: NAME:
  expected X, observed Y">`` with every evidence line, the remediation and the references in
  its body;
* error: ``<error type="control-unverified" message="could not verify SA-X on T: reason">``;
* not applicable, not observable, skipped: ``<skipped message="reason">``;
* waived: ``<skipped type="waived" message="waived until DATE by OWNER: reason">``, the
  finding and the evidence in the body;
* partial: a passing test case whose ``outcome`` property is ``partial`` and whose
  ``unobserved`` property names what this target cannot show (under
  ``--secagent-strict-evidence`` a failure).

Each test case carries the properties pytest's own JUnit has for controls (``control_id``,
``control_title``, ``severity``, ``section``, ``baseline``, ``target``, ``outcome``,
``outcome_detail``, ``evidence``, ``remediation``, ``references`` and the waiver's); each suite
the target, the policy, the gate and ``secagent_interrupted`` for a run that did not finish.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from typing import Any

from pytest_secagent.model import Outcome
from pytest_secagent.reporting.findings import evidence_line, finding, first_line, waiver_properties

__all__ = ["NO_TARGET_SUITE", "render_junit"]

NO_TARGET_SUITE = "no target of their kinds"
_SKIP_TYPES = {
    Outcome.NOT_APPLICABLE.value: "not-applicable",
    Outcome.NOT_OBSERVABLE.value: "not-observable",
    Outcome.SKIPPED.value: "skipped",
}


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _body(record: Mapping[str, Any]) -> str:
    lines = [finding(record), ""]
    evidence = list(record.get("evidence", []))
    if evidence:
        lines.append("Evidence:")
        lines.extend(f"  {evidence_line(e)}" for e in evidence)
        lines.append("")
    detail = str(record.get("detail") or "")
    if detail and not evidence:
        lines.extend([f"Detail: {detail}", ""])
    lines.append(f"Remediation: {record.get('remediation') or '-'}")
    references = list(record.get("references", []))
    if references:
        lines.append("References:")
        lines.extend(f"  {r}" for r in references)
    return "\n".join(lines) + "\n"


def _properties(parent: ElementTree.Element, values: list[tuple[str, object]]) -> None:
    properties = ElementTree.SubElement(parent, "properties")
    for name, value in values:
        prop = ElementTree.SubElement(properties, "property")
        prop.set("name", name)
        prop.set("value", "" if value is None else str(value))


def _case_properties(record: Mapping[str, Any]) -> list[tuple[str, object]]:
    values: list[tuple[str, object]] = [
        ("control_id", record["control_id"]),
        ("control_title", record["title"]),
        ("severity", record["severity"]),
        ("section", record["section"]),
        ("baseline", record.get("baseline") or ""),
        ("target", record.get("target") or ""),
        ("target_uri", record.get("target_uri") or ""),
        ("outcome", record["outcome"]),
        ("outcome_detail", record.get("detail") or ""),
        ("evidence", "\n".join(evidence_line(e) for e in record.get("evidence", []))),
        ("remediation", record.get("remediation") or ""),
        ("references", " ".join(record.get("references", []))),
    ]
    unobserved = [e for e in record.get("evidence", []) if e.get("verdict") == "unobserved"]
    if record["outcome"] == Outcome.PARTIAL.value and unobserved:
        values.append(("unobserved", "; ".join(f"{e['name']} ({e['actual']})" for e in unobserved)))
    waiver = record.get("waiver")
    values.extend(waiver_properties(waiver if isinstance(waiver, Mapping) else None))
    return values


def _case(suite: ElementTree.Element, record: Mapping[str, Any], strict_evidence: bool) -> str:
    """Add the test case of one result; return its JUnit state (passed, failure, error, skipped)."""
    case = ElementTree.SubElement(suite, "testcase")
    case.set("classname", str(record["section"]))
    case.set("name", f"{record['control_id']}:{record.get('target') or 'not-applicable'}")
    case.set("time", _seconds(float(record["timing"]["duration_seconds"])))
    _properties(case, _case_properties(record))
    outcome = str(record["outcome"])
    if outcome == Outcome.FAILED.value or (strict_evidence and outcome == Outcome.PARTIAL.value):
        element = ElementTree.SubElement(case, "failure")
        message = finding(record)
        if outcome == Outcome.PARTIAL.value:
            message += " -- passed only on partial evidence, which --secagent-strict-evidence does not accept"
        element.set("message", message)
        element.set("type", "control-failed")
        element.text = _body(record)
        return "failure"
    if outcome == Outcome.ERROR.value:
        element = ElementTree.SubElement(case, "error")
        element.set("message", finding(record))
        element.set("type", "control-unverified")
        element.text = _body(record)
        return "error"
    if outcome == Outcome.WAIVED.value:
        waiver = record.get("waiver") or {}
        element = ElementTree.SubElement(case, "skipped")
        element.set(
            "message",
            f"waived until {waiver.get('expires', '?')} by {waiver.get('owner', '?')}: "
            f"{waiver.get('reason', '')}",
        )
        element.set("type", "waived")
        element.text = _body(record)
        return "skipped"
    if outcome in _SKIP_TYPES:
        element = ElementTree.SubElement(case, "skipped")
        element.set("message", first_line(str(record.get("detail") or "")) or outcome)
        element.set("type", _SKIP_TYPES[outcome])
        return "skipped"
    return "passed"


def _suite_properties(run: Mapping[str, Any], target: Mapping[str, Any] | None) -> list[tuple[str, object]]:
    values: list[tuple[str, object]] = []
    if target is not None:
        values.extend([("target_uri", target["uri"]), ("target_kind", target["kind"])])
    policy = run["policy"]
    values.extend([("policy_source", policy["source"]), ("policy_sha256", policy["sha256"] or "")])
    gate = run.get("gate")
    if gate:
        values.append(("gate_status", gate["status"]))
    if run["interrupted"]:
        values.append(("secagent_interrupted", "true"))
    return values


def render_junit(document: Mapping[str, Any]) -> str:
    """The JUnit XML of a results document."""
    run = document["run"]
    strict_evidence = bool(run.get("strict_evidence", False))
    targets = {str(t["id"]): t for t in run["targets"]}
    by_suite: dict[str, list[Mapping[str, Any]]] = {str(t["id"]): [] for t in run["targets"]}
    for record in document["results"]:
        by_suite.setdefault(str(record.get("target") or NO_TARGET_SUITE), []).append(record)
    root = ElementTree.Element("testsuites")
    root.set("name", "pytest-secagent")
    totals = {"tests": 0, "failure": 0, "error": 0, "skipped": 0}
    total_time = 0.0
    for name, records in by_suite.items():
        if not records:
            continue
        suite = ElementTree.SubElement(root, "testsuite")
        suite.set("name", f"secagent: {name}")
        _properties(suite, _suite_properties(run, targets.get(name)))
        counts = {"tests": 0, "failure": 0, "error": 0, "skipped": 0, "passed": 0}
        time = 0.0
        for record in records:
            counts[_case(suite, record, strict_evidence)] += 1
            counts["tests"] += 1
            time += float(record["timing"]["duration_seconds"])
        suite.set("tests", str(counts["tests"]))
        suite.set("failures", str(counts["failure"]))
        suite.set("errors", str(counts["error"]))
        suite.set("skipped", str(counts["skipped"]))
        suite.set("time", _seconds(time))
        starts = sorted(str(r["timing"]["started_at"]) for r in records if r["timing"]["started_at"])
        if starts:
            suite.set("timestamp", starts[0])
        for key in totals:
            totals[key] += counts[key]
        total_time += time
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failure"]))
    root.set("errors", str(totals["error"]))
    root.set("skipped", str(totals["skipped"]))
    root.set("time", _seconds(total_time))
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"
