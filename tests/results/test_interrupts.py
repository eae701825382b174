"""Interrupted runs say so in every report, and an interrupt never splits one run's reports.

Real processes and real signals: each case starts pytest in a child process, waits until it
reaches a chosen point (a file the inner test or hook writes), sends SIGINT (twice in some
cases) and checks the JSON, JUnit and HTML files it leaves behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from tests.results.helpers import HEADER

REPORT_ARGS = ("--junitxml", "r.xml", "--secagent-json", "r.json", "--html", "r.html", "--self-contained-html")

SLOW_RUN = """
import time
from pathlib import Path

@pytest.mark.secagent_control("SA-ASSESS-001")
def test_a_failure(secagent_target, secagent_evidence):
    secagent_evidence.expect("review", expected="recorded", actual="missing", ok=False)
    secagent_evidence.conclude()

@pytest.mark.secagent_control("SA-ASSESS-002")
def test_slow(secagent_target, secagent_evidence):
    Path("reached").write_text("x")
    time.sleep(60)
"""

SLOW_END = """
import time
from pathlib import Path

import pytest

@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    Path("reached").write_text("x")
    time.sleep(1.5)
"""


def _start(pytester: pytest.Pytester) -> subprocess.Popen[bytes]:
    pytester.makefile(".yaml", policy="")
    command = [sys.executable, "-m", "pytest", "--secagent-no-suites", "--secagent-policy", "policy.yaml",
               "-p", "no:cacheprovider", *REPORT_ARGS]
    environment = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    return subprocess.Popen(command, cwd=pytester.path, env=environment, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _wait_for(path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert process.poll() is None, process.communicate()[0].decode(errors="replace")
        assert time.monotonic() < deadline, "the inner run never reached the point"
        time.sleep(0.02)


def _finish(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, output.decode(errors="replace")


def _junit_properties(path: Path) -> dict[str, str]:
    root = ElementTree.parse(path).getroot()
    return {p.get("name", ""): p.get("value", "") for p in root.iter("property")}


def _json(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


@pytest.mark.parametrize("second_after", [None, 0.05, 0.3])
def test_an_interrupted_run_is_marked_in_every_report(pytester: pytest.Pytester, second_after: float | None) -> None:
    pytester.makepyfile(test_controls=HEADER + SLOW_RUN)
    process = _start(pytester)
    try:
        _wait_for(pytester.path / "reached", process)
        process.send_signal(signal.SIGINT)
        if second_after is not None:
            time.sleep(second_after)
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
    finally:
        status, output = _finish(process)
    assert status == pytest.ExitCode.INTERRUPTED, output
    document = _json(pytester.path / "r.json")
    assert document["run"]["interrupted"] is True
    assert document["run"]["exit_status"] == int(pytest.ExitCode.INTERRUPTED)
    assert [r["outcome"] for r in document["results"]] == ["failed"]
    assert _junit_properties(pytester.path / "r.xml")["secagent_interrupted"] == "true"
    assert "Interrupted: the run did not finish" in (pytester.path / "r.html").read_text(encoding="utf-8")
    assert "the run was interrupted; every report marks its results as incomplete" in output


def test_an_interrupt_while_the_reports_are_written_waits_for_all_of_them(pytester: pytest.Pytester) -> None:
    # Reports of an earlier run: every one must be replaced by this run's.
    for name in ("r.json", "r.xml", "r.html"):
        (pytester.path / name).write_text("earlier run", encoding="utf-8")
    pytester.makeconftest(SLOW_END)
    pytester.makepyfile(test_controls=HEADER + SLOW_RUN.split("@pytest.mark.secagent_control(\"SA-ASSESS-002\")")[0])
    process = _start(pytester)
    try:
        _wait_for(pytester.path / "reached", process)
        process.send_signal(signal.SIGINT)
        time.sleep(0.05)
        process.send_signal(signal.SIGINT)
    finally:
        status, output = _finish(process)
    assert status == pytest.ExitCode.TESTS_FAILED, output
    assert "SIGINT came while the reports were written; they were completed first" in output
    document = _json(pytester.path / "r.json")
    assert document["run"]["interrupted"] is False
    assert document["run"]["exit_status"] == 1
    assert "test_a_failure" in (pytester.path / "r.xml").read_text(encoding="utf-8")
    assert "SA-ASSESS-001" in (pytester.path / "r.html").read_text(encoding="utf-8")
    assert "secagent_interrupted" not in _junit_properties(pytester.path / "r.xml")
