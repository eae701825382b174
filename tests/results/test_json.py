"""The JSON results: valid against the shipped schema, with the run's metadata, written atomically."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_secagent import __version__
from pytest_secagent.json_report import SCHEMA_VERSION, schema, write_json
from tests.results.helpers import (
    BASE_ARGS,
    HIGH_OK,
    MEDIUM_FAIL,
    UNVERIFIABLE,
    XSS_FAIL,
    days,
    load_json,
    make_run,
    result_for,
    write_waivers,
)

NOT_APPLICABLE = """
@pytest.mark.secagent_control("SA-NET-007")
def test_tls(secagent_target, secagent_evidence):
    secagent_evidence.observe("tls", "never runs without an endpoint target")
    secagent_evidence.conclude()
"""
PLAIN_OK = """
def test_not_a_control():
    assert True
"""


def validate(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker()).validate(document)


def _utc(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_schema_ships_in_the_package_and_is_a_valid_json_schema() -> None:
    document = schema()
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["properties"]["schema_version"] == {"const": SCHEMA_VERSION}


def test_results_validate_against_the_shipped_schema(pytester: pytest.Pytester) -> None:
    bodies = (MEDIUM_FAIL, HIGH_OK, UNVERIFIABLE, XSS_FAIL, NOT_APPLICABLE, PLAIN_OK)
    make_run(pytester, *bodies, policy="agent:\n  namespace: atlan\n")
    waivers = write_waivers(
        pytester,
        f"  - control: SA-ASSESS-002\n    reason: r\n    owner: o\n    expires: {days(3)}\n"
        f"  - control: SA-IAM-003\n    reason: r\n    owner: o\n    expires: {days(-3)}\n",
    )
    result = pytester.runpytest(
        *BASE_ARGS,
        "--secagent-target=local://",
        "--secagent-json=out/results.json",
        "--secagent-waivers", str(waivers),
        "--secagent-fail-on=medium",
    )
    assert result.ret == 1
    document = load_json(pytester.path / "out" / "results.json")
    validate(document)

    run = document["run"]
    assert document["schema_version"] == 1
    assert run["plugin"] == {"name": "pytest-secagent", "version": __version__}
    assert run["policy"] == {
        "source": str(pytester.path / "policy.yaml"),
        "sha256": hashlib.sha256((pytester.path / "policy.yaml").read_bytes()).hexdigest(),
        "from": "command line",
    }
    assert run["targets"] == [
        {"uri": "local://", "id": "local", "kind": "host"},
        {"uri": "policy://", "id": "policy", "kind": "policy"},
    ]
    started, finished = _utc(run["started_at"]), _utc(run["finished_at"])
    assert started <= finished
    assert abs((dt.datetime.now(dt.timezone.utc) - finished).total_seconds()) < 600
    assert run["exit_status"] == 1
    assert run["gate"]["fail_on"] == "medium"
    assert [e["status"] for e in run["waivers"]["entries"]] == ["applied", "expired"]

    # One record per control and target; a test that is not a control has none.
    assert [(r["control_id"], r["target"], r["outcome"]) for r in document["results"]] == [
        ("SA-ASSESS-001", "policy", "failed"),
        ("SA-ASSESS-002", "policy", "waived"),
        ("SA-IAM-003", "policy", "passed"),
        ("SA-NET-007", None, "not applicable"),
        ("SA-OPS-003", "policy", "error"),
    ]
    failed = result_for(document, "SA-ASSESS-001")
    assert failed["severity"] == "medium"
    assert failed["section"] == "Security assessment"
    assert failed["evidence"] == [
        {"name": "review", "expected": "recorded", "actual": "missing", "verdict": "fail"}
    ]
    assert failed["remediation"]
    assert failed["waiver"] is None
    timing = failed["timing"]
    assert started <= _utc(timing["started_at"]) <= _utc(timing["finished_at"]) <= finished
    assert timing["duration_seconds"] >= 0
    error = result_for(document, "SA-OPS-003")
    assert error["detail"] == "could not verify SA-OPS-003 on policy: the runbook store timed out after 10s"
    assert document["summary"]["outcomes"] == {
        "passed": 1, "partial": 0, "failed": 1, "waived": 1, "error": 1,
        "not applicable": 1, "not observable": 0, "skipped": 0,
    }
    assert document["summary"]["score"] == 0.25
    assert document["summary"]["by_severity"]["high"]["passed"] == 1


def test_json_path_from_ini_is_relative_to_the_rootdir(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK)
    pytester.makeini("[pytest]\nsecagent_json = reports/secagent.json\n")
    sub = pytester.mkdir("sub")
    policy = pytester.path / "policy.yaml"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        result = pytester.runpytest(
            "--secagent-no-suites", "--secagent-policy", str(policy), str(pytester.path)
        )
    assert result.ret == 0
    validate(load_json(pytester.path / "reports" / "secagent.json"))
    assert not (sub / "reports").exists()


def test_a_directory_is_not_a_json_file(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK)
    result = pytester.runpytest(*BASE_ARGS, f"--secagent-json={pytester.path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "\n".join(result.errlines).strip() == (
        f"ERROR: --secagent-json: {pytester.path} is a directory; give a file name such as "
        f"{pytester.path}/secagent.json"
    )


def test_write_is_atomic_and_replaces_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    target.write_text("old", encoding="utf-8")
    write_json(target, {"schema_version": 1})
    assert json.loads(target.read_text(encoding="utf-8")) == {"schema_version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(TypeError):
        write_json(target, {"not serialisable": object()})
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_json_file_that_cannot_be_written_fails_the_run_loudly(pytester: pytest.Pytester) -> None:
    make_run(pytester, HIGH_OK)
    result = pytester.runpytest(*BASE_ARGS, "--secagent-json=policy.yaml/results.json")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    result.stdout.fnmatch_lines(
        [f"secagent JSON results NOT written: could not write {pytester.path}/policy.yaml/results.json: *"]
    )
