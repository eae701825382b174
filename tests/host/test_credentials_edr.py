"""SA-SECRET-002 and SA-EDR-001/002 for hosts: real files, a real clamd and our own signatures."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_secagent.evidence import ControlFailed, Verdict
from pytest_secagent.host.checks.credentials import check_credential_files
from pytest_secagent.host.checks.edr import check_edr_running, check_signature_age
from pytest_secagent.host.local import LocalConnection
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import AgentSection, CredentialsSection, EdrSection, Policy
from tests.host.hosts import run_check, verdicts
from tests.support import require_root, require_tool

HOST = LocalConnection(timeout=10)
EICAR_LIKE = b"sa-host-test-sample: harmless bytes our own signature matches\n"


def credentials_policy(*files: Path, user: str = "root") -> Policy:
    return dataclasses.replace(
        Policy(),
        agent=AgentSection(user=user),
        credentials=CredentialsSection(files=[str(f) for f in files]),
    )


def test_private_credential_file_passes(tmp_path: Path) -> None:
    secret = tmp_path / ".env"
    secret.write_text("VAR_ATLAN_TOKEN=placeholder\n")
    secret.chmod(0o600)
    run_check(check_credential_files, HOST, credentials_policy(secret)).conclude()


def test_world_readable_or_foreign_owned_file_fails(tmp_path: Path) -> None:
    require_root()
    readable = tmp_path / "readable.env"
    readable.write_text("x\n")
    readable.chmod(0o644)
    foreign = tmp_path / "foreign.env"
    foreign.write_text("x\n")
    foreign.chmod(0o640)
    os.chown(foreign, 65534, 65534)
    evidence = run_check(check_credential_files, HOST, credentials_policy(readable, foreign))
    seen = verdicts(evidence)
    assert seen[f"{readable} not accessible to others"] is Verdict.FAIL
    assert seen[f"{readable} owner"] is Verdict.OK
    assert seen[f"{foreign} not accessible to others"] is Verdict.OK
    assert seen[f"{foreign} owner"] is Verdict.FAIL
    assert seen[f"{foreign} group access"] is Verdict.WARN
    with pytest.raises(ControlFailed, match="2 expectation"):
        evidence.conclude()


def test_missing_credential_file_is_an_error_and_none_declared_not_applicable(tmp_path: Path) -> None:
    with pytest.raises(EvidenceUnavailable, match="do not exist"):
        run_check(check_credential_files, HOST, credentials_policy(tmp_path / "absent"))
    with pytest.raises(pytest.skip.Exception, match="not applicable"):
        run_check(check_credential_files, HOST, Policy())


@pytest.fixture
def signatures(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A tiny ClamAV database of our own (one MD5 signature), fresh and 10 days old."""
    require_tool("sigtool", "clamav")
    sample = tmp_path / "sample.bin"
    sample.write_bytes(EICAR_LIKE)
    line = subprocess.run(
        ["sigtool", "--md5", str(sample)], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    database = tmp_path / "db"
    database.mkdir()
    fresh = database / "sa-host.hdb"
    fresh.write_text(line)
    old = tmp_path / "old.hdb"
    old.write_text(line)
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))
    return sample, fresh, old


def test_signature_database_is_real(signatures: tuple[Path, Path, Path]) -> None:
    clamscan = require_tool("clamscan", "clamav")
    sample, fresh, _ = signatures
    scan = subprocess.run(
        [clamscan, "--no-summary", "-d", str(fresh), str(sample)], capture_output=True, text=True, timeout=60
    )
    assert scan.returncode == 1, scan.stdout + scan.stderr
    assert "FOUND" in scan.stdout


def test_fresh_signatures_pass_and_old_ones_fail(signatures: tuple[Path, Path, Path]) -> None:
    _, fresh, old = signatures
    policy = dataclasses.replace(Policy(), edr=EdrSection(signature_paths=[str(fresh)]))
    run_check(check_signature_age, HOST, policy).conclude()
    policy = dataclasses.replace(Policy(), edr=EdrSection(signature_paths=[str(old)]))
    evidence = run_check(check_signature_age, HOST, policy)
    with pytest.raises(ControlFailed, match=r"definitions age: expected ≤ 72 h; observed 24\d\.\d h"):
        evidence.conclude()
    policy = dataclasses.replace(Policy(), edr=EdrSection(signature_paths=[str(old), str(fresh)]))
    run_check(check_signature_age, HOST, policy).conclude()


def test_no_signature_file_is_an_error(tmp_path: Path) -> None:
    policy = dataclasses.replace(Policy(), edr=EdrSection(signature_paths=[str(tmp_path / "daily.cvd")]))
    with pytest.raises(EvidenceUnavailable, match="none of the signature files"):
        run_check(check_signature_age, HOST, policy)


@pytest.fixture
def clamd(signatures: tuple[Path, Path, Path], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A clamd in the foreground with our database and a socket in tmp; killed after."""
    binary = require_tool("clamd", "clamav-daemon")
    _, fresh, _ = signatures
    config = tmp_path / "clamd.conf"
    config.write_text(
        f"Foreground yes\nDatabaseDirectory {fresh.parent}\nLocalSocket {tmp_path / 'clamd.sock'}\n"
        f"LogFile {tmp_path / 'clamd.log'}\nPidFile {tmp_path / 'clamd.pid'}\nUser root\n"
    )
    process = subprocess.Popen([binary, "-c", str(config)], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "clamd.sock").exists():
            assert process.poll() is None, (tmp_path / "clamd.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "clamd did not start"
            time.sleep(0.1)
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


EDR = dataclasses.replace(Policy(), edr=EdrSection(services=["clamav-daemon"]))


def test_running_clamd_counts_as_edr(clamd: subprocess.Popen[bytes]) -> None:
    evidence = run_check(check_edr_running, HOST, EDR)
    evidence.conclude()
    assert verdicts(evidence)["EDR service running"] is Verdict.OK
    assert verdicts(evidence)["EDR enabled at boot"] is Verdict.WARN, "no systemd: enablement unknown"


def test_no_edr_process_fails() -> None:
    policy = dataclasses.replace(Policy(), edr=EdrSection(services=["sa-host-no-such-edr"]))
    with pytest.raises(ControlFailed, match="none of them runs"):
        run_check(check_edr_running, HOST, policy).conclude()
