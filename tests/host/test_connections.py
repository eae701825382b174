"""Host connections against real hosts: this machine and an sshd on loopback."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.connect import SSH_CONFIG_ENV, open_host
from pytest_secagent.host.local import LocalConnection
from pytest_secagent.host.ssh import HostKeyNotVerified, SshConnection
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.targets import LocalTarget, SshTarget, Target, parse_target
from pytest_secagent.targets.pool import ConnectionPool
from tests.host.sshd import Sshd, free_port, keygen

HOSTILE = "a b'c\"d $(touch {canary}) `touch {canary}`; touch {canary}"


class _Settings:
    timeout = 5.0


def _ssh(server: Sshd, timeout: float = 5.0) -> SshConnection:
    target = parse_target(server.uri)
    assert isinstance(target, SshTarget)
    return SshConnection.connect(target, timeout=timeout, ssh_config=server.client_config)


def test_local_run_passes_arguments_verbatim(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    text = HOSTILE.format(canary=canary)
    result = LocalConnection(timeout=5).run(["printf", "%s", text])
    assert result.succeeded
    assert result.stdout == text
    assert not canary.exists()


def test_local_timeout_is_an_error_naming_the_command() -> None:
    started = time.monotonic()
    with pytest.raises(EvidenceUnavailable, match=r"`sleep 30` did not finish within 0\.5 s"):
        LocalConnection(timeout=0.5).run(["sleep", "30"])
    assert time.monotonic() - started < 10


def test_local_reads_files_and_finds_sbin_tools(tmp_path: Path) -> None:
    connection = LocalConnection(timeout=5)
    (tmp_path / "f").write_text("x = 1\n")
    assert connection.read_text(str(tmp_path / "f")) == "x = 1\n"
    assert connection.read_text(str(tmp_path / "missing")) is None
    with pytest.raises(EvidenceUnavailable, match="cannot read"):
        connection.read_text(str(tmp_path))
    assert connection.which("ip") in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip")
    assert connection.which("no-such-tool-sa-host") is None


def test_missing_command_is_a_result_not_a_crash() -> None:
    result = LocalConnection(timeout=5).run(["no-such-tool-sa-host", "--version"])
    assert result.exit_status == 127


@pytest.mark.needs("sshd")
def test_ssh_runs_quoted_commands_over_one_connection(sshd: Sshd, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    text = HOSTILE.format(canary=canary)
    connection = _ssh(sshd)
    try:
        for _ in range(3):
            result = connection.run(["printf", "%s", text])
            assert result.stdout == text
        assert connection.run(["sh", "-c", "exit 3"]).exit_status == 3
        assert connection.read_text("/etc/hostname") == Path("/etc/hostname").read_text()
        assert connection.read_text(str(tmp_path / "missing")) is None
        assert connection.which("ssh-keygen") is not None
        control_folder = Path(connection.control_path).parent
        assert Path(connection.control_path).is_socket()
    finally:
        connection.close()
    assert not canary.exists()
    assert not control_folder.exists()
    log = (sshd.folder / "sshd.log").read_text()
    assert len(re.findall(r"Accepted publickey", log)) == 1, log


@pytest.mark.needs("sshd")
def test_ssh_timeout_kills_the_remote_command(sshd: Sshd, tmp_path: Path) -> None:
    marker = tmp_path / "still-running"
    connection = _ssh(sshd)
    try:
        with pytest.raises(EvidenceUnavailable, match=r"did not finish within 1 s"):
            connection.run(["sh", "-c", f"sleep 2; touch {marker}"], timeout=1)
        time.sleep(2.5)
        assert not marker.exists()
        assert connection.run(["true"]).succeeded
    finally:
        connection.close()


@pytest.mark.needs("sshd")
def test_changed_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    sshd.trust(keygen(tmp_path / "impostor", "impostor"))
    with pytest.raises(HostKeyNotVerified, match=r"host key of 127\.0\.0\.1 did not verify"):
        _ssh(sshd)
    assert "Accepted publickey" not in (sshd.folder / "sshd.log").read_text()


@pytest.mark.needs("sshd")
def test_unknown_host_key_is_refused(sshd: Sshd) -> None:
    sshd.known_hosts.write_text("")
    with pytest.raises(HostKeyNotVerified, match="did not verify"):
        _ssh(sshd)


@pytest.mark.needs("sshd")
def test_pool_remembers_a_failed_host(sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> None:
    sshd.known_hosts.write_text("")
    monkeypatch.setenv(SSH_CONFIG_ENV, str(sshd.client_config))
    pool = ConnectionPool()
    target = parse_target(sshd.uri)

    def factory(t: Target) -> HostConnection:
        return open_host(t, _Settings())

    with pytest.raises(EvidenceUnavailable, match="did not verify"):
        pool.get(target, factory)
    started = time.monotonic()
    with pytest.raises(EvidenceUnavailable, match=r"did not verify.*first attempt"):
        pool.get(target, factory)
    assert time.monotonic() - started < 0.5


def test_unreachable_ssh_host_is_an_error() -> None:
    target = SshTarget(uri="ssh://127.0.0.1", host="127.0.0.1", port=free_port())
    with pytest.raises(EvidenceUnavailable, match="could not connect"):
        SshConnection.connect(target, timeout=3)


def test_open_host_gives_a_local_connection() -> None:
    connection = open_host(LocalTarget(), _Settings())
    assert connection.target_id == "local"
    assert connection.run(["true"]).succeeded
