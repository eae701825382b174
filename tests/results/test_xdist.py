"""Under ``pytest -n 2`` every report is written once, by the controller, with every result."""

from __future__ import annotations

import os

import jsonschema
import pytest

from pytest_secagent.json_report import schema
from tests.results.helpers import (
    BASE_ARGS,
    HIGH_FAIL,
    MEDIUM_FAIL,
    UNVERIFIABLE,
    XSS_FAIL,
    XSS_POD,
    days,
    html_summary,
    html_tests,
    junit_cases,
    junit_schema_errors,
    load_json,
    make_run,
    write_waivers,
)

pytest.importorskip("xdist")

# Logs, from whichever process does it, each results document built and each results hook call.
WHO_WRITES = """
import os

import pytest_secagent.summary as summary

LOG = os.path.join(os.path.dirname(__file__), "writers.log")
_build = summary.build_document


def _log(what):
    with open(LOG, "a", encoding="utf-8") as handle:
        handle.write(f"{what} pid {os.getpid()}\\n")


def _logged_build(results, settings, config):
    document = _build(results, settings, config)
    _log(f"json {len(document['results'])}")
    return document


def pytest_configure(config):
    summary.build_document = _logged_build


def pytest_unconfigure(config):
    summary.build_document = _build


def pytest_secagent_results(config, results):
    _log(f"hook {len(results)} {'worker' if hasattr(config, 'workerinput') else 'controller'}")
"""


def test_reports_are_written_once_by_the_controller_with_every_result(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL, HIGH_FAIL, UNVERIFIABLE, XSS_FAIL)
    pytester.makeconftest(WHO_WRITES)
    waivers = write_waivers(
        pytester,
        f"  - control: SA-IAM-003\n    reason: r\n    owner: o\n    expires: {days(5)}\n"
        f"  - control: SA-EDR-001\n    reason: r\n    owner: o\n    expires: {days(5)}\n",
    )
    result = pytester.runpytest(
        *BASE_ARGS,
        "-p", "no:benchmark",  # it warns that xdist disables it, and warnings are errors here
        "-n", "2",
        "--secagent-waivers", str(waivers),
        "--secagent-fail-on", "high",
        "--secagent-json=results.json",
        "--junitxml=junit.xml",
        "--html=report.html",
    )
    # The high failure is waived and the medium one is below the gate; the error still counts.
    assert result.ret == 6
    result.stdout.fnmatch_lines(
        [
            "*2 failed, 1 error, 1 waived in *",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "secagent gate: unverified: 1 control(s) could not be verified; 2 failure(s) below high do not "
            "gate: exit status 6"
        ]
    )
    result.stdout.fnmatch_lines(["NOT RUN waiver waivers[[]1[]] * SA-EDR-001 *"])
    # The controller runs in this process; the workers are processes of their own.
    assert (pytester.path / "writers.log").read_text(encoding="utf-8").splitlines() == [
        f"json 4 pid {os.getpid()}",
        f"hook 4 controller pid {os.getpid()}",
    ]

    document = load_json(pytester.path / "results.json")
    jsonschema.Draft202012Validator(schema()).validate(document)
    assert sorted((r["control_id"], r["outcome"]) for r in document["results"]) == [
        ("SA-ASSESS-001", "failed"),
        ("SA-ASSESS-002", "failed"),
        ("SA-IAM-003", "waived"),
        ("SA-OPS-003", "error"),
    ]
    assert document["run"]["exit_status"] == 6

    junit = pytester.path / "junit.xml"
    assert junit_schema_errors(junit) == []
    assert junit_cases(junit)["test_access_review[SA-IAM-003:policy]"]["properties"]["waiver_status"] == "applied"

    report = pytester.path / "report.html"
    assert XSS_POD not in report.read_text(encoding="utf-8")
    assert len(html_tests(report)) == 4
    assert "Waived: 1; not applicable: 0; errors (could not verify): 1." in html_summary(report)
