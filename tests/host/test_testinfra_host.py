"""Plain testinfra test files run against the run's host targets and appear in every report.

The test file below is written the way testinfra's documentation shows: only the ``host``
fixture and its modules, no secagent marker. With ``--secagent-target`` it runs once per host
target, over the plugin's own (verified) connection, and each test is reported like a control
in the terminal, JUnit and JSON.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from typing import Any

import pytest

from pytest_secagent.host.connect import SSH_CONFIG_ENV
from tests.host.sshd import Sshd

TESTINFRA_FILE = '''
def test_passwd_file(host):
    """/etc/passwd is owned by root and not writable by others"""
    passwd = host.file("/etc/passwd")
    assert passwd.contains("root")
    assert passwd.user == "root"
    assert passwd.mode & 0o002 == 0


def test_no_telnet(host):
    assert not host.socket("tcp://0.0.0.0:23").is_listening


def test_a_file_that_is_not_there(host):
    assert host.file("/etc/secagent-no-such-file").exists
'''


def _run(pytester: pytest.Pytester, *targets: str) -> tuple[pytest.RunResult, dict[str, Any], list[dict[str, str]]]:
    pytester.makepyfile(test_hosts=TESTINFRA_FILE)
    pytester.makefile(".yaml", policy="version: 1\n")
    args = ["--secagent-no-suites", "--secagent-policy", "policy.yaml", "-v", "-p", "no:randomly"]
    for target in targets:
        args += ["--secagent-target", target]
    result = pytester.runpytest(*args, "--junitxml", "j.xml", "--secagent-json", "r.json", "test_hosts.py")
    document: dict[str, Any] = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    root = ElementTree.parse(pytester.path / "j.xml").getroot()
    cases = [
        {p.get("name", ""): p.get("value", "") for p in case.iter("property")} | {"name": case.get("name", "")}
        for case in root.iter("testcase")
    ]
    return result, document, cases


def test_a_plain_testinfra_file_runs_on_local(pytester: pytest.Pytester) -> None:
    result, document, cases = _run(pytester, "local://")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*test_passwd_file[[]testinfra:test_passwd_file:local[]] PASSED*",
        "*test_a_file_that_is_not_there[[]testinfra:test_a_file_that_is_not_there:local[]] FAILED*",
    ])
    outcomes = {(r["control_id"], r["target"]): r["outcome"] for r in document["results"]}
    assert outcomes == {
        ("testinfra:test_passwd_file", "local"): "passed",
        ("testinfra:test_no_telnet", "local"): "passed",
        ("testinfra:test_a_file_that_is_not_there", "local"): "failed",
    }
    titles = {r["control_id"]: (r["title"], r["section"]) for r in document["results"]}
    assert titles["testinfra:test_passwd_file"] == (
        "/etc/passwd is owned by root and not writable by others", "Host checks (testinfra)"
    )
    assert {c["control_id"] for c in cases} == {
        "testinfra:test_passwd_file", "testinfra:test_no_telnet", "testinfra:test_a_file_that_is_not_there"
    }
    result.stdout.fnmatch_lines(["*Host checks (testinfra)*67%*"])


def test_testinfra_tests_are_not_applicable_without_a_host_target(pytester: pytest.Pytester) -> None:
    result, document, _ = _run(pytester, "tls://127.0.0.1:9")
    result.assert_outcomes(skipped=3)
    assert {r["outcome"] for r in document["results"]} == {"not applicable"}


@pytest.mark.needs("sshd")
def test_a_plain_testinfra_file_runs_on_local_and_ssh(
    pytester: pytest.Pytester, sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SSH_CONFIG_ENV, str(sshd.client_config))
    before = (sshd.folder / "sshd.log").read_text().count("Accepted publickey")
    result, document, cases = _run(pytester, "local://", sshd.uri)
    result.assert_outcomes(passed=4, failed=2)
    targets = {r["target"] for r in document["results"]}
    assert targets == {"local", sshd.uri.replace("ssh://", "ssh:")}
    assert len(cases) == 6
    after = (sshd.folder / "sshd.log").read_text().count("Accepted publickey")
    assert after - before == 1, "testinfra rides on the one verified master connection"
