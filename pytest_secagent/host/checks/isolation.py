"""SA-SEG-004 (part 1) for hosts: no address of the agent host lies in a production network.

The addresses come from ``ip -j addr show`` (JSON), or ``ip -o addr show`` where the
installed iproute2 has no JSON output. Loopback addresses are listed but never judged.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.base import HostConnection
from pytest_secagent.outcomes import EvidenceUnavailable, not_applicable
from pytest_secagent.policy.model import Policy

__all__ = ["HostAddress", "check_not_in_production", "host_addresses", "parse_ip_json", "parse_ip_oneline"]

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class HostAddress:
    """One address of the host, with its prefix, on a named interface."""

    device: str
    interface: Interface

    @property
    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The address alone."""
        return self.interface.ip

    def __str__(self) -> str:
        return f"{self.interface.with_prefixlen} on {self.device}"


def _interface(local: object, prefix: object) -> Interface | None:
    text = str(local) if prefix is None else f"{local}/{prefix}"
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


def parse_ip_json(text: str) -> list[HostAddress]:
    """Parse ``ip -j addr show``; raises ``ValueError`` when it is not that JSON."""
    data: Any = json.loads(text or "[]")
    if not isinstance(data, list):
        raise ValueError("ip -j addr show did not print a JSON list")
    found: list[HostAddress] = []
    for link in data:
        if not isinstance(link, dict):
            raise ValueError("ip -j addr show printed a link that is not an object")
        device = str(link.get("ifname", "?"))
        for entry in link.get("addr_info") or []:
            if not isinstance(entry, dict) or entry.get("family") not in ("inet", "inet6"):
                continue
            interface = _interface(entry.get("local"), entry.get("prefixlen"))
            if interface is None:
                raise ValueError(f"ip -j addr show printed an address that does not parse on {device}")
            found.append(HostAddress(device, interface))
    return found


def parse_ip_oneline(text: str) -> list[HostAddress]:
    """Parse ``ip -o addr show`` (``2: eth0    inet 10.0.0.2/24 brd ... scope global eth0``)."""
    found: list[HostAddress] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 4 or words[2] not in ("inet", "inet6"):
            continue
        device = words[1].split("@", 1)[0]
        interface = _interface(words[3], None)
        if interface is None:
            raise ValueError(f"ip -o addr show printed an address that does not parse: {words[3]!r}")
        found.append(HostAddress(device, interface))
    return found


def host_addresses(host: HostConnection) -> list[HostAddress]:
    """Every address of the host's interfaces; an error when they cannot be read."""
    ip = host.which("ip")
    if ip is None:
        raise EvidenceUnavailable(
            f"{host.target_id}: the ip command (iproute2) is not installed; cannot list the host's addresses"
        )
    result = host.run([ip, "-j", "addr", "show"])
    if result.succeeded:
        try:
            return parse_ip_json(result.stdout)
        except ValueError:
            pass  # an iproute2 that ignores -j prints text: read the one-line form instead
    fallback = host.run([ip, "-o", "addr", "show"])
    if not fallback.succeeded:
        reason = fallback.stderr.strip() or f"exit status {fallback.exit_status}"
        raise EvidenceUnavailable(f"{host.target_id}: ip -o addr show failed: {reason}")
    try:
        return parse_ip_oneline(fallback.stdout)
    except ValueError as exc:
        raise EvidenceUnavailable(f"{host.target_id}: {exc}") from None


def _production_networks(policy: Policy) -> list[Network]:
    networks: list[Network] = []
    for value in policy.network.production_cidrs:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise EvidenceUnavailable(
                f"network.production_cidrs: {value!r} is not a CIDR; the host cannot be compared with it"
            ) from None
    return networks


def check_not_in_production(host: HostConnection, policy: Policy, evidence: Evidence) -> None:
    """SA-SEG-004 (1): no non-loopback address of the host is inside ``network.production_cidrs``.

    Not applicable when no production network is declared; an error when the addresses
    cannot be read (no ``ip``, a failing command) or the host reports none at all.
    """
    if not policy.network.production_cidrs:
        not_applicable("no production networks declared (network.production_cidrs)")
    production = _production_networks(policy)
    addresses = host_addresses(host)
    judged = [a for a in addresses if not a.address.is_loopback]
    if not addresses:
        raise EvidenceUnavailable(f"{host.target_id}: ip addr show listed no address at all")
    evidence.observe("host addresses", ", ".join(str(a) for a in addresses))
    inside = [
        f"{a} in {network}"
        for a in judged
        for network in production
        if a.address.version == network.version and a.address in network
    ]
    evidence.expect(
        f"host addresses inside production networks ({', '.join(str(n) for n in production)})",
        expected="none",
        actual="; ".join(inside) or f"none of {len(judged)} non-loopback addresses",
        ok=not inside,
    )
