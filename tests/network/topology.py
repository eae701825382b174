"""An egress topology in network namespaces.

An agent host behind a firewall, one without, and the outside world holding an Atlan
endpoint and a canary:

::

    sa-net-fw-XXXX (agent, nftables: only tcp/443 to the Atlan address)  10.R.1.2
        |  veth
    sa-net-in-XXXX (outside)  10.R.1.1, 10.R.2.1; on lo: 10.R.9.10 (Atlan, TLS + h2 on 443),
        |  veth                                        10.R.9.20 (canary, TLS on 443)
    sa-net-op-XXXX (agent, no firewall)  10.R.2.2

Names resolve through ``/etc/netns/NAME/hosts``, which ``ip netns exec`` mounts over
``/etc/hosts``; other names fail at once (``resolv.conf`` names a resolver on loopback that
does not run). Every namespace, link, hosts file and server is removed on exit.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_secagent.host.local import LocalConnection
from tests.network.certs import CertAuthority
from tests.network.servers import openssl_server

ATLAN = "acme.atlan.com"
TEMPORAL = "acme-temporal.atlan.com"
CANARY = "canary.example.net"
INBOUND_PORT = 8000
_NETNS_ETC = Path("/etc/netns")


def _run(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, check=True, timeout=30, capture_output=True, text=True, input=stdin)


@dataclass(frozen=True)
class Topology:
    """The namespaces and addresses of one built topology."""

    firewalled: str
    open: str
    outside: str
    atlan_address: str
    canary_address: str
    firewalled_address: str
    open_address: str

    def prefix(self, namespace: str) -> tuple[str, ...]:
        """The command prefix that runs a command inside ``namespace``."""
        return ("ip", "netns", "exec", namespace)

    def connection(self, namespace: str, timeout: float = 10.0) -> LocalConnection:
        """A host connection whose commands run inside ``namespace``."""
        return LocalConnection(f"netns:{namespace}", timeout=timeout, prefix=self.prefix(namespace))


def _ruleset(atlan_address: str) -> str:
    return f"""
table inet sa_net_egress {{
  chain output {{
    type filter hook output priority 0; policy drop;
    oif "lo" accept
    ct state established,related accept
    ip daddr {atlan_address} tcp dport 443 accept
  }}
}}
"""


# Names outside the hosts file fail at once instead of waiting for this machine's resolver,
# which the namespaces cannot reach: nothing listens on the namespace's port 53.
FAIL_FAST_RESOLVER = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
# The resolver library's own defaults (5 s a try, 2 tries): with a silent server on port 53,
# a name outside the hosts file takes 10 s to fail.
PATIENT_RESOLVER = "nameserver 127.0.0.1\n"


@contextlib.contextmanager
def namespace_with_hosts(name: str, hosts: str, resolv_conf: str = FAIL_FAST_RESOLVER) -> Iterator[str]:
    """A namespace ``name`` with ``lo`` up, resolving through ``hosts`` and ``resolv_conf``."""
    _run("ip", "netns", "add", name)
    etc = _NETNS_ETC / name
    try:
        for _ in range(3):  # another run may remove an empty /etc/netns in between
            with contextlib.suppress(FileNotFoundError):
                etc.mkdir(parents=True, exist_ok=False)
                (etc / "hosts").write_text(hosts)
                (etc / "resolv.conf").write_text(resolv_conf)
                break
        _run("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        shutil.rmtree(etc, ignore_errors=True)
        with contextlib.suppress(OSError):
            _NETNS_ETC.rmdir()  # only when no other namespace keeps files there
        subprocess.run(["ip", "netns", "del", name], timeout=30, capture_output=True, check=False)


_SILENT_DNS = """
import socket
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.bind(("127.0.0.1", 53))
print("listening", flush=True)
while True:
    sink.recv(4096)
"""


@contextlib.contextmanager
def silent_resolver(namespace: str) -> Iterator[None]:
    """A DNS server on the namespace's 127.0.0.1:53 that reads every query and never answers."""
    with subprocess.Popen(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", _SILENT_DNS],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            if process.stdout.readline().strip() != "listening":
                raise RuntimeError("the silent resolver did not start")
            yield
        finally:
            process.kill()
            process.wait(timeout=10)


def _link(outside: str, inside: str, peer: str, subnet: str) -> None:
    """A veth pair between ``outside`` (.1) and ``inside`` (.2) in ``subnet`` (/24 prefix)."""
    a, b = f"{peer}o", f"{peer}i"
    _run("ip", "link", "add", a, "netns", outside, "type", "veth", "peer", "name", b, "netns", inside)
    _run("ip", "-n", outside, "addr", "add", f"{subnet}.1/24", "dev", a)
    _run("ip", "-n", inside, "addr", "add", f"{subnet}.2/24", "dev", b)
    _run("ip", "-n", outside, "link", "set", a, "up")
    _run("ip", "-n", inside, "link", "set", b, "up")
    _run("ip", "-n", inside, "route", "add", "default", "via", f"{subnet}.1")


@contextlib.contextmanager
def egress_topology(workdir: Path, ca: CertAuthority) -> Iterator[Topology]:
    """Build the topology, start its servers, and tear everything down afterwards."""
    suffix = secrets.token_hex(2)
    octet = 16 + int(suffix, 16) % 200
    net = f"10.{octet}"
    atlan, canary = f"{net}.9.10", f"{net}.9.20"
    hosts = f"127.0.0.1 localhost\n{atlan} {ATLAN} {TEMPORAL}\n{canary} {CANARY}\n"
    endpoint_cert = ca.issue(f"netns-{suffix}", dns=(ATLAN, TEMPORAL), ips=())
    with contextlib.ExitStack() as stack:
        outside = stack.enter_context(namespace_with_hosts(f"sa-net-in-{suffix}", hosts))
        firewalled = stack.enter_context(namespace_with_hosts(f"sa-net-fw-{suffix}", hosts))
        opened = stack.enter_context(namespace_with_hosts(f"sa-net-op-{suffix}", hosts))
        _link(outside, firewalled, f"sanf{suffix}", f"{net}.1")
        _link(outside, opened, f"sano{suffix}", f"{net}.2")
        _run("ip", "-n", outside, "addr", "add", f"{atlan}/32", "dev", "lo")
        _run("ip", "-n", outside, "addr", "add", f"{canary}/32", "dev", "lo")
        _run("ip", "netns", "exec", firewalled, "nft", "-f", "-", stdin=_ruleset(atlan))
        topology = Topology(
            firewalled=firewalled,
            open=opened,
            outside=outside,
            atlan_address=atlan,
            canary_address=canary,
            firewalled_address=f"{net}.1.2",
            open_address=f"{net}.2.2",
        )
        tls = ("-no_tls1", "-no_tls1_1")
        stack.enter_context(
            openssl_server(endpoint_cert, workdir, *tls, "-alpn", "h2", address=atlan, port=443,
                           prefix=topology.prefix(outside))
        )  # fmt: skip
        stack.enter_context(
            openssl_server(
                endpoint_cert, workdir, *tls, address=canary, port=443, prefix=topology.prefix(outside)
            )
        )
        inbound = topology.firewalled_address
        stack.enter_context(
            openssl_server(endpoint_cert, workdir, *tls, address=inbound, port=INBOUND_PORT,
                           prefix=topology.prefix(firewalled))
        )  # fmt: skip
        yield topology
