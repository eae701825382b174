"""The ``secagent`` command: catalog, starter policy, and its usage errors pinned by text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_secagent.catalog import load_catalog
from pytest_secagent.cli import main, starter_policy
from pytest_secagent.policy import load_policy
from tests.results.helpers import days


def test_controls_lists_the_catalog_as_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["controls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "severity", "section", "target", "kinds", "title"]
    assert len(lines) == len(load_catalog()) + 1
    row = next(line for line in lines if line.startswith("SA-NET-007 "))
    assert row.split()[:2] == ["SA-NET-007", "high"]
    assert row.endswith("TLS ≥ 1.2, valid certificate and strong cipher on Atlan endpoints")
    assert "endpoint" in row


def test_controls_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["controls", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == list(load_catalog().ids)
    assert rows[0].keys() >= {"id", "severity", "section", "target_kinds", "title", "remediation", "references"}


def test_init_writes_a_starter_policy_that_loads_and_names_every_attestation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "secagent.yaml"
    assert main(["init", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"secagent: wrote {path}; fill in the attestations, then run "
        f"pytest --secagent-policy {path} --secagent-target URI\n"
    )
    assert path.read_text(encoding="utf-8") == starter_policy()
    loaded = load_policy(path)
    for key in ("network_architecture_review", "credential_management_validation", "access_review",
                "incident_response_exercise"):
        assert f"  {key}:\n    by: null" in starter_policy()
        assert getattr(loaded.policy.attestations, key).by is None


def test_a_filled_in_starter_policy_passes_the_attestation_controls(pytester: pytest.Pytester) -> None:
    text = starter_policy()
    for key in ("network_architecture_review", "credential_management_validation", "access_review",
                "incident_response_exercise"):
        text = text.replace(f"  {key}:\n    by: null            ", f"  {key}:\n    by: sec-lead@example.com")
    text = text.replace("date: null         ", f"date: {days(-5)}").replace(
        "evidence_url: null ", "evidence_url: https://tickets.example.com/SEC-1"
    )
    pytester.makefile(".yaml", secagent=text)
    result = pytester.runpytest(
        "--secagent-policy", "secagent.yaml", "--secagent-controls", "SA-ASSESS-001,SA-IAM-003",
        "-p", "no:cacheprovider",
    )
    result.assert_outcomes(passed=2)


def test_init_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "secagent.yaml"
    path.write_text("mine\n", encoding="utf-8")
    assert main(["init", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"secagent: error: {path} exists and is left as it is; edit it, or give another path: "
        "secagent init NEW.yaml\n"
    )
    assert path.read_text(encoding="utf-8") == "mine\n"


def _results_file(tmp_path: Path, text: str, name: str = "in.json") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


FIX = "give a results file written by pytest --secagent-json"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read {path}: No such file or directory; " + FIX),
        ("{not json", "{path} is not JSON (line 1: Expecting property name enclosed in double quotes); " + FIX),
        ("[]", "{path} is not a secagent results file (not a JSON object); " + FIX),
        ('{"schema_version": 2}', "{path} has schema_version 2, this secagent reads version 1; render it with "
         "the pytest-secagent version that wrote it"),
        ('{"schema_version": 1, "run": {}, "summary": {}, "results": []}',
         "{path} is not a valid secagent results file (at run: 'plugin' is a required property); " + FIX),
    ],
    ids=["missing", "not-json", "not-an-object", "other-version", "not-the-schema"],
)
def test_bad_input_is_one_line_naming_the_file_and_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "in.json" if content is None else _results_file(tmp_path, content)
    assert main(["report", str(path), "--json", str(tmp_path / "out.json")]) == 2
    assert capsys.readouterr().err == f"secagent: error: {message.format(path=path)}\n"
    assert not (tmp_path / "out.json").exists()


def test_report_needs_an_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "in.json")]) == 2
    assert capsys.readouterr().err == (
        "secagent: error: report: nothing to write; add at least one of --json, --junit, --html, --sarif FILE\n"
    )


def test_two_formats_to_one_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["report", str(tmp_path / "in.json"), "--json", str(out), "--html", str(out)]) == 2
    assert capsys.readouterr().err == (
        f"secagent: error: report: --json and --html both name {out}; give each its own file\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "secagent: error: the following arguments are required: COMMAND"),
        (["scan"], "secagent: error: argument COMMAND: invalid choice: 'scan' (choose from controls, init, report)"),
        (["report"], "secagent report: error: the following arguments are required: IN.json"),
        (["controls", "--format", "xml"],
         "secagent controls: error: argument --format: invalid choice: 'xml' (choose from table, json)"),
    ],
)
def test_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].replace("'controls', 'init', 'report'", "controls, init, report").replace("'table', 'json'", "table, json") == message


def test_the_console_script_runs_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest_secagent.cli", "report", str(tmp_path / "missing.json"), "--json", "x"],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
