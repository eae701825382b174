"""SA-NET-002 for hosts: listening sockets bind only to loopback or declared management ports."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.base import HostConnection
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy

__all__ = [
    "Listener", "check_listeners", "is_loopback", "listening_sockets", "management_ports", "parse_proc_net",
    "parse_ss",
]

_PROC_FILES = ("tcp", "tcp6", "udp", "udp6")
_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"
_PROCESS = re.compile(r'\("([^"]+)",pid=(\d+)')


@dataclass(frozen=True)
class Listener:
    """One listening TCP socket or unconnected UDP socket."""

    protocol: str
    address: str
    port: int
    processes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``tcp 0.0.0.0:22 (sshd)`` style text for reports."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        owner = f" ({','.join(self.processes)})" if self.processes else ""
        return f"{self.protocol} {host}:{self.port}{owner}"


def is_loopback(address: str) -> bool:
    """Whether ``address`` is a loopback address (IPv4-mapped loopback included)."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped.is_loopback
    return parsed.is_loopback


def parse_ss(text: str) -> list[Listener]:
    """Parse ``ss -H -tulnp`` output.

    Raises ``ValueError`` on a line that is not a socket: a listener it hid could be the
    exposed one.
    """
    listeners = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        local = fields[4] if len(fields) >= 5 else ""
        address, _, port = local.rpartition(":")
        address = address.strip("[]")
        if "%" in address:
            address = address.split("%", 1)[0].strip("[]")
        if address == "*":
            address = "::"  # ss shows a dual-stack wildcard socket as *
        if not port.isdigit():
            raise ValueError(f"not a socket line of `ss -H -tulnp`: {line.strip()[:200]!r}")
        owners = tuple(sorted({m.group(1) for m in _PROCESS.finditer(" ".join(fields[6:]))}))
        listeners.append(Listener(fields[0], address, int(port), owners))
    return listeners


def _hex_address(text: str) -> str:
    raw = bytes.fromhex(text)
    # /proc/net stores each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def parse_proc_net(protocol: str, text: str) -> list[Listener]:
    """Parse one of ``/proc/net/{tcp,tcp6,udp,udp6}`` into listeners."""
    wanted = _TCP_LISTEN if protocol.startswith("tcp") else _UDP_UNCONNECTED
    listeners = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != wanted:
            continue
        address, port = fields[1].split(":")
        listeners.append(Listener(protocol.rstrip("6"), _hex_address(address), int(port, 16)))
    return listeners


def _proc_listeners(host: HostConnection) -> tuple[list[Listener], list[str]]:
    listeners: list[Listener] = []
    read = []
    for name in _PROC_FILES:
        text = host.read_text(f"/proc/net/{name}")
        if text is not None:
            read.append(name)
            listeners += parse_proc_net(name, text)
    return listeners, read


def _key(listener: Listener) -> tuple[str, str, int]:
    try:
        address = ipaddress.ip_address(listener.address)
    except ValueError:
        return listener.protocol, listener.address, listener.port
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return listener.protocol, f"::ffff:{address.ipv4_mapped}", listener.port
    return listener.protocol, str(address), listener.port


def _ss(host: HostConnection) -> list[Listener] | None:
    result = host.run(["ss", "-H", "-tulnp"])
    if not result.succeeded:
        return None
    try:
        return parse_ss(result.stdout)
    except ValueError as exc:
        raise EvidenceUnavailable(f"{host.target_id}: {exc}") from exc


def listening_sockets(host: HostConnection) -> tuple[list[Listener], str]:
    """Return the host's listeners and where they were read from (``ss`` or ``/proc/net``).

    ``ss``'s answer is checked against ``/proc/net``: a listener the kernel lists there but
    ``ss`` does not show (an empty or cut answer) makes the listing unknown, not clean.
    """
    found = _ss(host) if host.which("ss") else None
    proc, read = _proc_listeners(host)
    if found is not None:
        if not found and not read:
            raise EvidenceUnavailable(
                f"{host.target_id}: `ss -H -tulnp` lists no socket and /proc/net cannot be read to confirm it"
            )
        for _attempt in range(2):
            missing = {_key(x) for x in proc} - {_key(x) for x in found}
            if not read or not missing:
                return found, "ss -H -tulnp"
            found = _ss(host) or []  # a socket may have opened between the two reads
            proc, read = _proc_listeners(host)
        shown = ", ".join(f"{p} {a}:{n}" for p, a, n in sorted(missing)[:5])
        raise EvidenceUnavailable(
            f"{host.target_id}: `ss -H -tulnp` does not show listeners /proc/net lists ({shown}), "
            "so its answer is incomplete"
        )
    if "tcp" not in read:
        raise EvidenceUnavailable(
            f"{host.target_id}: cannot list listening sockets (no ss, no /proc/net/tcp)"
        )
    return proc, "/proc/net/{" + ",".join(read) + "}"


def management_ports(policy: Policy) -> set[tuple[str, int]]:
    """``(protocol, port)`` pairs: ``network.management_ports`` (TCP) and ``management_udp_ports``."""
    return {("tcp", port) for port in policy.network.management_ports} | {
        ("udp", port) for port in policy.network.management_udp_ports
    }


def check_listeners(host: HostConnection, policy: Policy, evidence: Evidence) -> None:
    """Record every listener that is neither loopback-bound nor a TCP management port.

    Management ports (``network.management_ports``, ssh by default) are TCP services: a UDP
    socket on the same number is no management service and counts as exposed.
    """
    listeners, source = listening_sockets(host)
    allowed = management_ports(policy)
    evidence.observe("listeners read from", source)
    evidence.observe("listening sockets", ", ".join(sorted({x.label for x in listeners})) or "none")
    exposed = sorted(
        {
            x.label
            for x in listeners
            if not is_loopback(x.address) and (x.protocol, x.port) not in allowed
        }
    )
    k3s = set(policy.network.k3s_internal_ports)
    internal = sorted({x.label for x in listeners if not is_loopback(x.address) and x.port in k3s})
    if internal:
        evidence.observe("K3s internal ports reachable from outside the host", ", ".join(internal))
    evidence.expect(
        "listeners outside loopback and the management ports",
        expected=f"none (management ports: {', '.join(f'{n}/{p}' for p, n in sorted(allowed)) or 'none'})",
        actual=", ".join(exposed) or "none",
        ok=not exposed,
    )
