"""ssh hosts under faults: a connection that stalls, drips or resets, and hosts that force a command.

A relay in front of the loopback sshd breaks the connection from the first byte or in the
middle of a run (a stall, a drip of one byte a second, a reset); other sshds run a forced
command (``ForceCommand`` in ``sshd_config``, ``command=`` in ``authorized_keys``). Each
fault kind is run against the host suite by the plugin: no control passes, each ends
within its deadline plus a margin with a reason naming the limit it hit, the reports stay
valid, and nothing a forced command started is left running on the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_secagent.host.connect import SSH_CONFIG_ENV
from pytest_secagent.host.process import KILL_GRACE_SECONDS
from pytest_secagent.host.ssh import FORCED_COMMAND, REPLY_GRACE_SECONDS, ConnectionLost, SshConnection
from pytest_secagent.json_report import schema
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.targets import SshTarget, parse_target
from tests.host.sshd import FaultyRelay, RelayFault, Sshd, running_sshd
from tests.results.helpers import junit_schema_errors
from tests.support import require_tool

pytestmark = pytest.mark.needs("sshd")

TIMEOUT = 2.0
"""``--secagent-timeout`` of every connection: the command limit and ssh's ConnectTimeout."""
MARGIN = 3.0
"""How much longer than its deadline a control may take (start-up, judging, reports)."""
OPEN_DEADLINE = TIMEOUT + KILL_GRACE_SECONDS + TIMEOUT
"""The longest opening a connection may take: the connect limit, then the first command's."""
COMMAND_DEADLINE = TIMEOUT + REPLY_GRACE_SECONDS
"""The longest one command may take: its limit, then the wait for the host's own timeout."""
SUITE = Path(__file__).resolve().parents[2] / "suites" / "test_host.py"
HOST_CONTROLS = 8
SLEEP = f"sleep 600.{secrets.randbelow(10**9):09d}"
"""The forced command that never returns; its odd fraction finds it among the host's processes."""


@dataclass(frozen=True)
class SshFault:
    """One way the host or the connection misbehaves, and what the checks must say."""

    says: str  # the reason every control of the host errors with
    relay: RelayFault | None = None
    mid_command: bool = False  # the relay breaks once the first control runs, not from the start
    sshd_config: str = ""
    key_options: str = ""


_FORCED = re.escape(FORCED_COMMAND)
_NO_FIRST_ANSWER = r"the first command \(print a nonce\) got no answer within 2 s \(command limit hit after"
FAULTS = {
    "stall-at-connect": SshFault(r"connect limit 2 s\): Connection timed out", RelayFault.STALL),
    "drip-at-connect": SshFault(r"connect limit 2 s\): Connection timed out", RelayFault.DRIP),
    "reset-at-connect": SshFault(r"could not connect .*reset by peer", RelayFault.RESET),
    "stall-mid-command": SshFault(
        r"got no answer over ssh within 6 s \(the command limit of 2 s .*hit after", RelayFault.STALL, True
    ),
    "drip-mid-command": SshFault(
        r"got no answer over ssh within 6 s \(the command limit of 2 s .*hit after", RelayFault.DRIP, True
    ),
    "reset-mid-command": SshFault(r"the ssh connection to 127\.0\.0\.1 was lost", RelayFault.RESET, True),
    "force-command-echo": SshFault(_FORCED, sshd_config="ForceCommand echo hello\n"),
    "force-command-sleep": SshFault(_NO_FIRST_ANSWER, sshd_config=f"ForceCommand {SLEEP}\n"),
    "key-command-echo": SshFault(_FORCED, key_options='command="echo \\"$SSH_ORIGINAL_COMMAND\\""'),
}


def _remote_sleeps() -> list[int]:
    found = subprocess.run(["pgrep", "-fx", SLEEP], capture_output=True, text=True, timeout=10, check=False)
    return [int(pid) for pid in found.stdout.split()]


@contextlib.contextmanager
def _host(tmp_path: Path, fault: SshFault) -> Iterator[tuple[Sshd, FaultyRelay | None, str]]:
    """The sshd of ``fault`` (a relay in front when the fault is the connection's); its URI."""
    binary = require_tool("sshd", "openssh-server")
    require_tool("ssh", "openssh-client")
    config = fault.sshd_config + "LogLevel VERBOSE\n"
    try:
        with running_sshd(
            tmp_path / "sshd", binary, extra_config=config, key_options=fault.key_options
        ) as sshd:
            if fault.relay is None:
                yield sshd, None, sshd.uri
                return
            start = None if fault.mid_command else fault.relay
            with FaultyRelay(sshd.port, start) as relay:
                yield sshd, relay, sshd.reached_at(relay.port)
    finally:
        for pid in _remote_sleeps():  # whatever a failing test left behind, by its id
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _connect(sshd: Sshd, uri: str) -> SshConnection:
    target = parse_target(uri)
    assert isinstance(target, SshTarget)
    return SshConnection.connect(target, timeout=TIMEOUT, ssh_config=sshd.client_config)


def _sessions(sshd: Sshd) -> int:
    return (sshd.folder / "sshd.log").read_text(errors="replace").count("Starting session:")


def _no_remote_sleep(within: float = 10.0) -> bool:
    """Whether the forced command's process is gone (waiting ``within`` seconds for sshd to hang up)."""
    deadline = time.monotonic() + within
    while _remote_sleeps():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.parametrize("kind", [k for k, f in FAULTS.items() if f.relay is not None and not f.mid_command])
def test_connection_broken_from_the_start_errors_on_time(tmp_path: Path, kind: str) -> None:
    fault = FAULTS[kind]
    with _host(tmp_path, fault) as (sshd, _, uri):
        started = time.monotonic()
        with pytest.raises(EvidenceUnavailable, match=fault.says):
            _connect(sshd, uri)
        assert time.monotonic() - started < OPEN_DEADLINE + 1
        assert _sessions(sshd) == 0


@pytest.mark.parametrize("kind", [k for k, f in FAULTS.items() if f.mid_command])
def test_connection_broken_mid_command_errors_on_time_and_sends_nothing_more(
    tmp_path: Path, kind: str
) -> None:
    fault = FAULTS[kind]
    with _host(tmp_path, fault) as (sshd, relay, uri):
        assert relay is not None
        assert fault.relay is not None
        connection = _connect(sshd, uri)
        try:
            assert connection.run(["true"]).succeeded
            sessions = _sessions(sshd)
            relay.break_now(fault.relay)
            started = time.monotonic()
            with pytest.raises(ConnectionLost, match=fault.says) as lost:
                connection.run(["cat", "/etc/hostname"])
            assert time.monotonic() - started < COMMAND_DEADLINE + 1
            assert "nothing more is sent to this host" in str(lost.value)
            started = time.monotonic()
            with pytest.raises(ConnectionLost, match=fault.says):
                connection.run(["true"])
            assert time.monotonic() - started < 0.5  # refused here, not sent
            assert _sessions(sshd) <= sessions + 1
        finally:
            connection.close()


@pytest.mark.parametrize("kind", [k for k, f in FAULTS.items() if f.relay is None])
def test_forced_command_is_detected_and_nothing_else_is_sent(tmp_path: Path, kind: str) -> None:
    fault = FAULTS[kind]
    with _host(tmp_path, fault) as (sshd, _, uri):
        started = time.monotonic()
        with pytest.raises(EvidenceUnavailable, match=fault.says):
            _connect(sshd, uri)
        assert time.monotonic() - started < OPEN_DEADLINE + 1
        assert _sessions(sshd) == 1, "the first command only"
        # Closing its session (it had a pseudo-terminal) hung up what the forced command started.
        assert _no_remote_sleep(), f"`{SLEEP}` outlived the connection"


def test_a_wrapper_that_runs_the_original_command_is_not_a_forced_command(tmp_path: Path) -> None:
    fault = SshFault("", key_options='command="sh -c \\"$SSH_ORIGINAL_COMMAND\\""')
    with _host(tmp_path, fault) as (sshd, _, uri):
        connection = _connect(sshd, uri)
        try:
            assert connection.run(["printf", "%s", "a b"]).stdout == "a b"
        finally:
            connection.close()


class _BreakWhenChecksRun:
    """Breaks the relay as the first control's body starts: the connection is up by then."""

    def __init__(self, relay: FaultyRelay, fault: RelayFault) -> None:
        self.relay = relay
        self.fault = fault

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        self.relay.break_now(self.fault)


def _run_suite(pytester: pytest.Pytester, uri: str, plugins: list[object]) -> pytest.RunResult:
    shutil.copy(SUITE, pytester.path / "test_host_suite.py")
    secret = pytester.path / "agent.env"
    secret.write_text("VAR_ATLAN_TOKEN=placeholder\n")
    secret.chmod(0o600)
    pytester.makefile(
        ".yaml", policy=f"version: 1\nagent:\n  user: root\ncredentials:\n  files: ['{secret}']\n"
    )
    return pytester.runpytest(
        "--secagent-no-suites", "--secagent-policy=policy.yaml", f"--secagent-target={uri}",
        f"--secagent-timeout={TIMEOUT:g}", "-p", "no:randomly", "-p", "no:cacheprovider", "-rA",
        "--secagent-json=results.json", "--junitxml=junit.xml",
        plugins=plugins,
    )  # fmt: skip


def _records(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    document: dict[str, Any] = json.loads((pytester.path / "results.json").read_text())
    jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker()).validate(document)
    assert junit_schema_errors(pytester.path / "junit.xml") == []
    records: list[dict[str, Any]] = document["results"]
    return records


@pytest.mark.parametrize("size", [len(FAULTS) * HOST_CONTROLS], ids=lambda size: f"{size}-cases")
def test_ssh_fault_matrix_size(size: int) -> None:
    """The size of the matrix, in the test's ID (``-v``, JUnit) and its output (``-rP``)."""
    print(f"ssh fault matrix: {len(FAULTS)} fault kinds x {HOST_CONTROLS} host controls = {size} cases")
    assert (len(FAULTS), size) == (9, 72)


@pytest.mark.parametrize("kind", list(FAULTS))
def test_host_controls_under_fault(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    fault = FAULTS[kind]
    with _host(tmp_path, fault) as (sshd, relay, uri):
        monkeypatch.setenv(SSH_CONFIG_ENV, str(sshd.client_config))
        plugins: list[object] = []
        if fault.mid_command:
            assert relay is not None
            assert fault.relay is not None
            plugins.append(_BreakWhenChecksRun(relay, fault.relay))
        result = _run_suite(pytester, uri, plugins)
        records = _records(pytester)
        assert len(records) == HOST_CONTROLS, result.stdout.str()
        for record in records:
            assert record["outcome"] == "error", (record["control_id"], record["outcome"], record["detail"])
            assert re.search(fault.says, record["detail"]), record["detail"]
            assert record["timing"]["duration_seconds"] < max(OPEN_DEADLINE, COMMAND_DEADLINE) + MARGIN
        if fault.relay is None:
            assert _sessions(sshd) == 1, "only the first command reached the host"
        assert _no_remote_sleep(), f"`{SLEEP}` outlived the run"


def test_host_controls_without_a_fault(
    pytester: pytest.Pytester, sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The matrix is not vacuous: through the same relay, unbroken, the host's checks run.
    monkeypatch.setenv(SSH_CONFIG_ENV, str(sshd.client_config))
    with FaultyRelay(sshd.port) as relay:
        _run_suite(pytester, sshd.reached_at(relay.port), [])
    outcomes = {r["control_id"]: r["outcome"] for r in _records(pytester)}
    assert len(outcomes) == HOST_CONTROLS
    assert outcomes["SA-SECRET-002"] == "passed", outcomes
