"""A throw-away OpenSSH server on 127.0.0.1 with key-only auth, for the host tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PRIVSEP_DIR = Path("/run/sshd")


@dataclass(frozen=True)
class Sshd:
    """A running sshd and a client configuration that trusts exactly its host key."""

    port: int
    folder: Path
    client_config: Path
    known_hosts: Path
    host_public_key: str

    @property
    def uri(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"

    def trust(self, public_key: str) -> None:
        """Make known_hosts name ``public_key`` as this server's key."""
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public_key}\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        timeout=30,
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text(errors='replace')}")
        with socket.socket() as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on port {port}: {log.read_text(errors='replace')}")


@contextlib.contextmanager
def running_sshd(folder: Path, sshd_binary: str, netns: str | None = None) -> Iterator[Sshd]:
    """Start sshd in ``folder`` (in network namespace ``netns`` if given), stop it after."""
    folder.mkdir(parents=True, exist_ok=True)
    host_public = keygen(folder / "host_key", "sa-host-test-host")
    client_public = keygen(folder / "client_key", "sa-host-test-client")
    (folder / "authorized_keys").write_text(client_public + "\n")
    port = 22 if netns else free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"""Port {port}
ListenAddress 127.0.0.1
HostKey {folder / "host_key"}
AuthorizedKeysFile {folder / "authorized_keys"}
PidFile {folder / "sshd.pid"}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxSessions 50
MaxStartups 50
"""
    )
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_public}\n")
    client_config = folder / "ssh_config"
    client_config.write_text(
        f"""Host *
  User root
  IdentityFile {folder / "client_key"}
  IdentitiesOnly yes
  UserKnownHostsFile {known_hosts}
  GlobalKnownHostsFile /dev/null
"""
    )
    created_privsep = not PRIVSEP_DIR.exists()
    if created_privsep:
        PRIVSEP_DIR.mkdir(mode=0o755)
    log = folder / "sshd.log"
    prefix = ["ip", "netns", "exec", netns] if netns else []
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*prefix, sshd_binary, "-D", "-e", "-f", str(config)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        if netns is None:
            wait_for_port(port, process, log)
        else:
            wait_for_log(log, process)
        yield Sshd(port, folder, client_config, known_hosts, host_public)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=10)
        if created_privsep:
            with contextlib.suppress(OSError):
                PRIVSEP_DIR.rmdir()


def wait_for_log(log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text(errors='replace')}")
        if "listening on" in log.read_text(errors="replace").lower():
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not start: {log.read_text(errors='replace')}")
