"""A throw-away OpenSSH server on 127.0.0.1 with key-only auth, for the host tests.

:class:`FaultyRelay` stands between the client and the server and breaks the connection on
purpose (a stall, a drip, a reset), from the start or when the test says so.
"""

from __future__ import annotations

import contextlib
import enum
import os
import select
import socket
import struct
import subprocess
import threading
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

    def reached_at(self, port: int) -> str:
        """Trust this server's key on ``port`` too (a relay in front of it); the URI there."""
        with self.known_hosts.open("a") as known:
            known.write(f"[127.0.0.1]:{port} {self.host_public_key}\n")
        return f"ssh://root@127.0.0.1:{port}"


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
def running_sshd(
    folder: Path,
    sshd_binary: str,
    netns: str | None = None,
    *,
    extra_config: str = "",
    key_options: str = "",
) -> Iterator[Sshd]:
    """Start sshd in ``folder`` (in network namespace ``netns`` if given), stop it after.

    ``extra_config`` is appended to ``sshd_config`` (e.g. ``ForceCommand sleep 600``);
    ``key_options`` prefixes the client key in ``authorized_keys`` (e.g. ``command="..."``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    host_public = keygen(folder / "host_key", "sa-host-test-host")
    client_public = keygen(folder / "client_key", "sa-host-test-client")
    prefix = f"{key_options} " if key_options else ""
    (folder / "authorized_keys").write_text(prefix + client_public + "\n")
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
{extra_config}"""
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
    # sshd's privilege-separation folder stays: another sshd of a parallel test may need it.
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    log = folder / "sshd.log"
    inside = ["ip", "netns", "exec", netns] if netns else []
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*inside, sshd_binary, "-D", "-e", "-f", str(config)],
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


def wait_for_log(log: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log.read_text(errors='replace')}")
        if "listening on" in log.read_text(errors="replace").lower():
            return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not start: {log.read_text(errors='replace')}")


class RelayFault(enum.Enum):
    """How :class:`FaultyRelay` breaks the connections it carries."""

    STALL = "stops forwarding in both directions and holds the connection open"
    DRIP = "forwards the server's bytes one a second"
    RESET = "resets both sides"


_DRIP_SECONDS = 1.0
_TICK = 0.05


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


class FaultyRelay:
    """A TCP relay on 127.0.0.1 in front of a server on ``upstream``, faulty on demand.

    With ``fault`` given the relay is faulty from the first byte; :meth:`break_now` makes it
    faulty later, e.g. once a connection is up and in the middle of a command.
    """

    def __init__(self, upstream: int, fault: RelayFault | None = None) -> None:
        self._upstream = upstream
        self.fault = fault
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=16)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._serving = threading.Thread(target=self._serve, name=f"relay-{self.port}", daemon=True)

    def __enter__(self) -> FaultyRelay:  # noqa: PYI034 - the class is final in practice
        self._serving.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._serving.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)
        self._listener.close()

    def break_now(self, fault: RelayFault) -> None:
        """Commit ``fault`` on every connection from now on."""
        self.fault = fault

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._carry, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _carry(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(("127.0.0.1", self._upstream), timeout=5)
        except OSError:
            _reset(client)
            return
        dripping = bytearray()
        next_drip = 0.0
        try:
            while not self._stop.is_set():
                fault = self.fault
                if fault is RelayFault.RESET:
                    _reset(client)
                    _reset(server)
                    return
                if fault is RelayFault.STALL:
                    time.sleep(_TICK)
                    continue
                readable, _, _ = select.select([client, server], [], [], _TICK)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        server.sendall(data)
                    elif fault is RelayFault.DRIP:
                        dripping += data
                    else:
                        client.sendall(data)
                if self.fault is RelayFault.DRIP and dripping and time.monotonic() >= next_drip:
                    client.sendall(bytes(dripping[:1]))
                    del dripping[:1]
                    next_drip = time.monotonic() + _DRIP_SECONDS
        except OSError:
            return
        finally:
            client.close()
            server.close()
