"""The reports a run writes: every format from one document, each valid, all written or none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_secagent.reporting.document import schema
from tests.reporting.helpers import (
    RUN_ARGS,
    TLS_A,
    TLS_B,
    junit_tree,
    load,
    make_mixed_run,
    sarif_errors,
)
from tests.results.helpers import junit_schema_errors

OUTPUTS = ("--secagent-json=out/r.json", "--secagent-sarif=out/r.sarif",
           "--secagent-junit=out/r.xml", "--secagent-html=out/r.html")


@pytest.fixture
def reports(pytester: pytest.Pytester) -> Path:
    make_mixed_run(pytester)
    result = pytester.runpytest(*RUN_ARGS, f"--secagent-target={TLS_A}", f"--secagent-target={TLS_B}", *OUTPUTS)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines([
        "secagent JSON results: */out/r.json",
        "secagent SARIF findings: */out/r.sarif",
        "secagent JUnit XML: */out/r.xml",
        "secagent HTML report: */out/r.html",
    ])
    return pytester.path / "out"


def _case(root: Any, name: str) -> Any:
    found = [c for c in root.iter("testcase") if c.get("name") == name]
    assert len(found) == 1, [c.get("name") for c in root.iter("testcase")]
    return found[0]


def test_every_format_is_written_and_valid(reports: Path) -> None:
    document = load(reports / "r.json")
    jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker()).validate(document)
    assert sarif_errors(load(reports / "r.sarif")) == []
    assert junit_schema_errors(reports / "r.xml") == []
    assert (reports / "r.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in reports.iterdir()) == ["r.html", "r.json", "r.sarif", "r.xml"]


def test_junit_leads_with_the_finding(reports: Path) -> None:
    root = junit_tree(reports / "r.xml").getroot()
    assert [s.get("name") for s in root.iter("testsuite")] == [
        "secagent: tls:127.0.0.1:9", "secagent: tls:127.0.0.1:10", "secagent: policy",
        "secagent: no target of their kinds",
    ]
    failed = _case(root, "SA-NET-007:tls:127.0.0.1:9")
    assert failed.get("classname") == "Network security controls"
    failure = failed.find("failure")
    assert failure.get("type") == "control-failed"
    assert failure.get("message") == (
        "SA-NET-007 [high] on tls:127.0.0.1:9: TLS 1.0 refused: expected handshake refused; observed accepted"
    )
    assert "[fail] TLS 1.0 refused: expected handshake refused; observed accepted (at deploy/agent.yaml:12)" in (
        failure.text
    )
    assert "Remediation: " in failure.text
    assert "References:\n  https://" in failure.text

    error = _case(root, "SA-NET-004:tls:127.0.0.1:9").find("error")
    assert error.get("message") == (
        "could not verify SA-NET-004 on tls:127.0.0.1:9: the inbound probe timed out after 3s"
    )
    assert error.get("type") == "control-unverified"

    waived = _case(root, "SA-IAM-003:policy").find("skipped")
    assert waived.get("type") == "waived"
    assert waived.get("message").startswith("waived until ")
    assert waived.get("message").endswith(" by sec-lead@example.com: access review <booked> & funded")

    not_applicable = _case(root, "SA-RUNTIME-002:not-applicable").find("skipped")
    assert not_applicable.get("type") == "not-applicable"

    partial = _case(root, "SA-NET-005:tls:127.0.0.1:10")
    assert [child.tag for child in partial] == ["properties"]
    properties = {p.get("name"): p.get("value") for p in partial.iter("property")}
    assert properties["outcome"] == "partial"
    assert properties["unobserved"] == "gRPC/TLS (no gRPC probe on this target)"
    assert properties["control_id"] == "SA-NET-005"
    assert properties["severity"] == "high"
    for case in root.iter("testcase"):
        for result in case:
            message = result.get("message") or ""
            assert " object at 0x" not in message, message
            assert "Target(" not in message, message


def test_sarif_rules_results_locations_and_suppressions(reports: Path) -> None:
    run = load(reports / "r.sarif")["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["SA-NET-007"]["properties"]["security-severity"] == "8.0"
    assert rules["SA-NET-007"]["defaultConfiguration"] == {"level": "error"}
    assert rules["SA-ASSESS-001"]["properties"]["security-severity"] == "5.5"
    assert rules["SA-ASSESS-001"]["defaultConfiguration"] == {"level": "warning"}
    assert "Remediation: " in rules["SA-NET-007"]["help"]["text"]
    assert rules["SA-NET-007"]["helpUri"].startswith("https://")

    results = {(r["ruleId"], r["properties"]["target"]): r for r in run["results"]}
    assert set(results) == {
        ("SA-NET-007", "tls:127.0.0.1:9"),
        ("SA-NET-004", "tls:127.0.0.1:9"),
        ("SA-ASSESS-001", "policy"),
        ("SA-IAM-003", "policy"),
        ("SA-OPS-003", "policy"),
    }, "passes, partial passes and not-applicable controls are not findings"
    failed = results[("SA-NET-007", "tls:127.0.0.1:9")]
    assert (failed["kind"], failed["level"]) == ("fail", "error")
    assert failed["message"]["text"].startswith("SA-NET-007 [high] on tls:127.0.0.1:9: TLS 1.0 refused")
    assert failed["locations"] == [{
        "physicalLocation": {
            "artifactLocation": {"uri": "deploy/agent.yaml", "uriBaseId": "SRCROOT"},
            "region": {"startLine": 12},
        }
    }]
    error = results[("SA-NET-004", "tls:127.0.0.1:9")]
    assert (error["kind"], error["level"]) == ("review", "none")
    assert error["locations"][0]["logicalLocations"][0]["name"] == "SA-NET-004 on tls:127.0.0.1:9"
    waived = results[("SA-IAM-003", "policy")]
    assert waived["suppressions"][0]["kind"] == "external"
    assert waived["suppressions"][0]["justification"] == "access review <booked> & funded"
    assert waived["suppressions"][0]["properties"]["owner"] == "sec-lead@example.com"
    assert "suppressions" not in results[("SA-ASSESS-001", "policy")]


def test_a_report_that_cannot_be_written_leaves_none_of_this_run(pytester: pytest.Pytester) -> None:
    make_mixed_run(pytester)
    out = pytester.mkdir("out")
    (out / "r.json").write_text("old json", encoding="utf-8")
    result = pytester.runpytest(
        *RUN_ARGS, f"--secagent-target={TLS_A}", "--secagent-json=out/r.json",
        "--secagent-sarif=out/r.sarif", "--secagent-html=policy.yaml/r.html",
    )
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines([
        f"secagent JSON results NOT written: could not write {pytester.path}/policy.yaml/r.html: *",
        f"secagent SARIF findings NOT written: could not write {pytester.path}/policy.yaml/r.html: *",
        f"secagent HTML report NOT written: could not write {pytester.path}/policy.yaml/r.html: *",
    ])
    assert sorted(p.name for p in out.iterdir()) == ["r.json"]
    assert (out / "r.json").read_text(encoding="utf-8") == "old json"


def test_reports_replace_older_ones_whole(pytester: pytest.Pytester) -> None:
    make_mixed_run(pytester)
    out = pytester.mkdir("out")
    for name in ("r.json", "r.sarif", "r.xml", "r.html"):
        (out / name).write_text("old", encoding="utf-8")
    pytester.runpytest(*RUN_ARGS, f"--secagent-target={TLS_A}", *OUTPUTS)
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.json", "r.sarif", "r.xml"]
    assert all((out / n).read_text(encoding="utf-8") != "old" for n in ("r.json", "r.sarif", "r.xml", "r.html"))


@pytest.mark.parametrize(
    ("ini_key", "name"),
    [("secagent_sarif", "r.sarif"), ("secagent_junit", "r.xml"), ("secagent_html", "r.html")],
)
def test_each_format_can_be_asked_for_in_the_ini_file(pytester: pytest.Pytester, ini_key: str, name: str) -> None:
    make_mixed_run(pytester)
    pytester.makeini(f"[pytest]\n{ini_key} = reports/{name}\n")
    pytester.runpytest(*RUN_ARGS, f"--secagent-target={TLS_A}")
    assert [p.name for p in (pytester.path / "reports").iterdir()] == [name]
