"""The host suite run by pytest itself against local:// and ssh:// targets."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pytest_secagent.host.connect import SSH_CONFIG_ENV
from tests.host.keys_util import impostor_key
from tests.host.sshd import Sshd

SUITE = Path(__file__).resolve().parents[2] / "suites" / "test_host.py"
CONTROLS = 8


@pytest.fixture
def suite(pytester: pytest.Pytester, tmp_path: Path) -> pytest.Pytester:
    """A pytester folder holding the host suite and a policy with one private credential file."""
    shutil.copy(SUITE, pytester.path / "test_host_suite.py")
    secret = tmp_path / "agent.env"
    secret.write_text("VAR_ATLAN_TOKEN=placeholder\n")
    secret.chmod(0o600)
    pytester.makefile(
        ".yaml",
        policy=f"version: 1\nagent:\n  user: root\ncredentials:\n  files: ['{secret}']\n",
    )
    return pytester


def run(pytester: pytest.Pytester, target: str, *extra: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--secagent-no-suites",
        "--secagent-policy",
        "policy.yaml",
        "--secagent-target",
        target,
        "--secagent-timeout",
        "20",
        "-p",
        "no:randomly",
        "-rA",
        *extra,
    )


def totals(result: pytest.RunResult) -> dict[str, int]:
    outcomes = result.parseoutcomes()
    return {k: outcomes.get(k, 0) for k in ("passed", "failed", "errors", "skipped")}


def test_local_target_runs_every_host_control(suite: pytest.Pytester) -> None:
    result = run(suite, "local://")
    counts = totals(result)
    assert sum(counts.values()) == CONTROLS, result.stdout.str()
    result.stdout.fnmatch_lines(["*PASSED*test_credential_files_private[[]SA-SECRET-002:local[]]*"])
    # nothing on this machine proves the firewall: it can never pass here
    assert not re.search(r"PASSED .*test_inbound_denied_by_default", result.stdout.str())


@pytest.mark.needs("sshd")
def test_ssh_target_runs_over_one_verified_connection(
    suite: pytest.Pytester, sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SSH_CONFIG_ENV, str(sshd.client_config))
    result = run(suite, sshd.uri)
    counts = totals(result)
    assert sum(counts.values()) == CONTROLS, result.stdout.str()
    result.stdout.fnmatch_lines(["*PASSED*test_credential_files_private[[]SA-SECRET-002:ssh:root@127.0.0.1:*"])
    log = (sshd.folder / "sshd.log").read_text()
    assert log.count("Accepted publickey") == 1, log


@pytest.mark.needs("sshd")
def test_mismatched_host_key_errors_every_control_and_runs_none(
    suite: pytest.Pytester, sshd: Sshd, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sshd.trust(impostor_key(tmp_path))
    monkeypatch.setenv(SSH_CONFIG_ENV, str(sshd.client_config))
    result = run(suite, sshd.uri)
    assert totals(result) == {"passed": 0, "failed": 0, "errors": CONTROLS, "skipped": 0}, result.stdout.str()
    assert result.stdout.str().count("did not verify against known_hosts") >= CONTROLS
    assert "Accepted publickey" not in (sshd.folder / "sshd.log").read_text()


@pytest.mark.needs("sshd")
def test_parallel_workers_each_hold_one_connection(
    suite: pytest.Pytester, sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SSH_CONFIG_ENV, str(sshd.client_config))
    before = (sshd.folder / "sshd.log").read_text().count("Accepted publickey")
    result = run(
        suite, sshd.uri, "--secagent-controls", "SA-NET-002,SA-SECRET-002", "-n", "2", "-p", "no:benchmark"
    )
    assert sum(totals(result).values()) == 2, result.stdout.str()
    result.stdout.fnmatch_lines(["*PASSED*test_credential_files_private[[]SA-SECRET-002:ssh:root@127.0.0.1:*"])
    after = (sshd.folder / "sshd.log").read_text().count("Accepted publickey")
    assert 1 <= after - before <= 2, "one connection per worker at most"
