"""Network namespaces the firewall and listener tests create and always remove."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from pytest_secagent.host.local import LocalConnection


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=30, capture_output=True)


@dataclass(frozen=True)
class Netns:
    """A namespace named ``sa-host-...`` with ``lo`` up and one end of a veth pair inside.

    With a ``client`` namespace, the other end of the pair is there (10.231.x.1 and
    fd00:5a:x::1), so traffic can be sent at the namespace without touching this machine.
    """

    name: str
    inner_address: str
    inner_address6: str = ""
    client: str | None = None

    def exec(self, *argv: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace (test set-up only)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            check=True,
            timeout=30,
            capture_output=True,
            text=True,
            input=input_text,
        )

    def connection(self, timeout: float = 10.0) -> LocalConnection:
        """A host connection whose commands run inside the namespace."""
        return LocalConnection(
            f"netns:{self.name}", timeout=timeout, prefix=("ip", "netns", "exec", self.name)
        )

    def connects(self, address: str, port: int, timeout: float = 1.5) -> bool:
        """Whether a TCP connection from the client namespace to ``address``:``port`` opens."""
        assert self.client is not None, "create the namespace with netns(client=True)"
        probe = (
            "import socket, sys\n"
            "try:\n"
            "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()\n"
            "except OSError:\n"
            "    sys.exit(1)\n"
        )
        done = subprocess.run(
            ["ip", "netns", "exec", self.client, sys.executable, "-c", probe, address, str(port), str(timeout)],
            timeout=30,
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def background(self, *argv: str) -> subprocess.Popen[bytes]:
        """Start a long-running process inside the namespace."""
        return subprocess.Popen(
            ["ip", "netns", "exec", self.name, *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )


@contextlib.contextmanager
def netns(*, client: bool = False) -> Iterator[Netns]:
    """Create ``sa-host-XXXX`` with a veth pair (10.231.x.2 and fd00:5a:x::2 inside); remove it after.

    ``client=True`` also creates ``sa-hostc-XXXX`` holding the other end of the pair.
    """
    suffix = secrets.token_hex(3)
    name, peer = f"sa-host-{suffix}", f"sa-hostc-{suffix}"
    outer, inner = f"sah{suffix}o", f"sah{suffix}i"
    octet = int(suffix[:2], 16)
    ip("netns", "add", name)
    try:
        if client:
            ip("netns", "add", peer)
        ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", name)
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "addr", "add", f"10.231.{octet}.2/30", "dev", inner)
        ip("-n", name, "addr", "add", f"fd00:5a:{octet:x}::2/64", "dev", inner, "nodad")
        ip("-n", name, "link", "set", inner, "up")
        if client:
            ip("link", "set", outer, "netns", peer)
            ip("-n", peer, "link", "set", "lo", "up")
            ip("-n", peer, "addr", "add", f"10.231.{octet}.1/30", "dev", outer)
            ip("-n", peer, "addr", "add", f"fd00:5a:{octet:x}::1/64", "dev", outer, "nodad")
            ip("-n", peer, "link", "set", outer, "up")
        yield Netns(name, f"10.231.{octet}.2", f"fd00:5a:{octet:x}::2", peer if client else None)
    finally:
        if client:
            with contextlib.suppress(subprocess.SubprocessError):
                ip("netns", "del", peer)
        with contextlib.suppress(subprocess.SubprocessError):
            ip("link", "del", outer)
        ip("netns", "del", name)
