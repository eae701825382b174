"""Network namespaces the firewall and listener tests create and always remove."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from pytest_secagent.host.local import LocalConnection


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=30, capture_output=True)


@dataclass(frozen=True)
class Netns:
    """A namespace named ``sa-host-...`` with ``lo`` up and one end of a veth pair inside."""

    name: str
    inner_address: str

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

    def background(self, *argv: str) -> subprocess.Popen[bytes]:
        """Start a long-running process inside the namespace."""
        return subprocess.Popen(
            ["ip", "netns", "exec", self.name, *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )


@contextlib.contextmanager
def netns() -> Iterator[Netns]:
    """Create ``sa-host-XXXX`` with a veth pair (10.231.x.2 and fd00:5a:x::2 inside); remove it after."""
    suffix = secrets.token_hex(3)
    name = f"sa-host-{suffix}"
    outer, inner = f"sah{suffix}o", f"sah{suffix}i"
    octet = int(suffix[:2], 16)
    ip("netns", "add", name)
    try:
        ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", name)
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "addr", "add", f"10.231.{octet}.2/30", "dev", inner)
        ip("-n", name, "addr", "add", f"fd00:5a:{octet:x}::2/64", "dev", inner, "nodad")
        ip("-n", name, "link", "set", inner, "up")
        yield Netns(name, f"10.231.{octet}.2")
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            ip("link", "del", outer)
        ip("netns", "del", name)
