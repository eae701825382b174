"""Reachability probes from a vantage point, and matching against the egress allow-list.

A *vantage* is where connections start: :class:`LocalVantage` is this machine (plain
sockets), :class:`HostVantage` is another host reached through its
:class:`~pytest_secagent.host.base.HostConnection` (``getent``, bash's ``/dev/tcp`` and
``openssl s_client`` run there, each under ``timeout``). Nothing is written anywhere.
"""

from __future__ import annotations

import enum
import errno
import ipaddress
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pytest_secagent.host.base import HostConnection
from pytest_secagent.network.tls import Deadline, Endpoint, Limit, ProbeError, ProbeTimeout, handshake, lookup
from pytest_secagent.network.x509 import CertificateError, hostname_matches, read_certificate
from pytest_secagent.policy.model import OutboundRule

__all__ = [
    "ConnectResult",
    "ConnectStatus",
    "Destination",
    "HostVantage",
    "LocalVantage",
    "TlsReach",
    "Vantage",
    "allow_list_match",
    "host_matches",
]

_TCP_PROTOCOLS = frozenset({"HTTPS", "gRPC/TLS", "TLS", "TCP", "DNS"})
_MAX_ADDRESSES = 4


@dataclass(frozen=True)
class Destination:
    """A host and TCP port, as the policy writes them: ``HOST:PORT`` or ``[V6]:PORT``."""

    host: str
    port: int

    @classmethod
    def parse(cls, spec: str, default_port: int = 443) -> Destination:
        """Parse ``HOST[:PORT]``; raises ``ValueError`` naming the bad value."""
        match = re.fullmatch(r"\s*(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]/]+)(?::(\d+))?\s*", spec)
        if match is None:
            raise ValueError(f"{spec!r} is not HOST:PORT")
        host = match.group(1).strip("[]").rstrip(".").lower()
        port = int(match.group(2)) if match.group(2) else default_port
        if not 0 < port < 65536:
            raise ValueError(f"{spec!r}: port {port} is not from 1 to 65535")
        return cls(host, port)

    @property
    def endpoint(self) -> Endpoint:
        """The same destination as a TLS endpoint."""
        return Endpoint(self.host, self.port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def host_matches(pattern: str, host: str) -> bool:
    """Whether ``host`` is named by ``pattern``: an exact name or ``*.domain``.

    ``*.atlan.com`` matches every subdomain (``a.atlan.com``, ``a.b.atlan.com``) but not
    ``atlan.com`` itself nor ``evilatlan.com``. Case and a trailing dot do not matter.
    """
    pattern = pattern.strip().rstrip(".").lower()
    host = host.strip().rstrip(".").lower()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _network(destination: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(destination.strip(), strict=False)
    except ValueError:
        return None


def allow_list_match(
    rules: Sequence[OutboundRule], host: str, port: int, addresses: Sequence[str] = ()
) -> OutboundRule | None:
    """The first TCP rule of ``firewall_rules.outbound_allowed`` that allows the destination.

    A rule allows it when the port is equal and the destination is the host name, a
    wildcard domain covering it, or a CIDR holding the host (when it is an address) or
    any of ``addresses`` it resolved to. UDP rules never allow a TCP connection.
    """
    candidates = [a for a in (_ip(host), *(_ip(a) for a in addresses)) if a is not None]
    for rule in rules:
        if rule.port != port or rule.protocol not in _TCP_PROTOCOLS:
            continue
        network = _network(rule.destination)
        if network is not None:
            if any(a.version == network.version and a in network for a in candidates):
                return rule
        elif host_matches(rule.destination, host):
            return rule
    return None


class ConnectStatus(enum.Enum):
    """How a TCP connection attempt ended."""

    CONNECTED = "connected"
    REFUSED = "refused"
    TIMEOUT = "timed out"
    HOST_UNREACHABLE = "host unreachable"
    NO_ROUTE = "network unreachable"
    BLOCKED_LOCALLY = "blocked by the local firewall"
    UNRESOLVED = "does not resolve"
    ERROR = "error"

    @property
    def blocked(self) -> bool:
        """Whether no connection was made (every state but ``CONNECTED`` and ``ERROR``)."""
        return self not in (ConnectStatus.CONNECTED, ConnectStatus.ERROR)


@dataclass(frozen=True)
class ConnectResult:
    """The outcome of one TCP connection attempt."""

    destination: Destination
    status: ConnectStatus
    detail: str = ""


@dataclass(frozen=True)
class TlsReach:
    """The outcome of one verified TLS handshake attempt from a vantage."""

    destination: Destination
    verified: bool
    version: str | None = None
    alpn: str | None = None
    error: str | None = None


class Vantage(Protocol):
    """Where probes start from."""

    @property
    def name(self) -> str:
        """Who is probing, for evidence lines (``local`` or the host target's ID)."""

    def resolve(self, host: str) -> tuple[str, ...]:
        """The addresses ``host`` resolves to from here (empty when it does not)."""

    def connect(self, destination: Destination, *, timeout: float) -> ConnectResult:
        """Try a TCP connection to ``destination`` and close it at once."""

    def tls(
        self,
        destination: Destination,
        *,
        timeout: float,
        ca_bundle: str | None = None,
        alpn: Sequence[str] = ("h2", "http/1.1"),
    ) -> TlsReach:
        """Complete a verified TLS handshake (chain and host name) with ``destination``."""


_ERRNO_STATUS = {
    errno.ECONNREFUSED: ConnectStatus.REFUSED,
    errno.ETIMEDOUT: ConnectStatus.TIMEOUT,
    errno.EHOSTUNREACH: ConnectStatus.HOST_UNREACHABLE,
    errno.ENETUNREACH: ConnectStatus.NO_ROUTE,
    errno.EPERM: ConnectStatus.BLOCKED_LOCALLY,
    errno.EACCES: ConnectStatus.BLOCKED_LOCALLY,
}


class LocalVantage:
    """Probes from this machine with plain sockets.

    ``timeout`` bounds each name resolution; a resolver that does not answer in time
    raises :class:`~pytest_secagent.network.tls.ProbeTimeout` instead of holding the probe.
    Each connection attempt (resolution and every address tried) ends at its own
    ``timeout`` deadline.
    """

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    @property
    def name(self) -> str:
        """Always ``local``."""
        return "local"

    def resolve(self, host: str, *, deadline: Deadline | None = None) -> tuple[str, ...]:
        """Resolve with the system resolver (``getaddrinfo``), in its order, by ``deadline``.

        Empty when the name does not resolve; :class:`ProbeTimeout` when the resolver did
        not answer by the deadline (by default the vantage's ``timeout`` from now).
        """
        if _ip(host) is not None:
            return (host,)
        try:
            return lookup(host, None, deadline or Deadline(self.timeout))
        except (socket.gaierror, UnicodeError):
            return ()

    def connect(self, destination: Destination, *, timeout: float) -> ConnectResult:
        """Try each resolved address (at most four) until one connects, all within ``timeout``."""
        deadline = Deadline(timeout)
        try:
            addresses = self.resolve(destination.host, deadline=deadline)
        except ProbeTimeout as exc:
            return ConnectResult(destination, ConnectStatus.ERROR, str(exc))
        if not addresses:
            return ConnectResult(
                destination, ConnectStatus.UNRESOLVED, f"{destination.host} does not resolve"
            )
        first: ConnectResult | None = None
        for address in addresses[:_MAX_ADDRESSES]:
            result = self._connect_one(destination, address, deadline)
            if result.status is ConnectStatus.CONNECTED:
                return result
            first = first or result
        return first or ConnectResult(destination, ConnectStatus.ERROR, "no address tried")

    @staticmethod
    def _connect_one(destination: Destination, address: str, deadline: Deadline) -> ConnectResult:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        timeout = deadline.seconds
        if deadline.remaining() <= 0:
            return ConnectResult(
                destination, ConnectStatus.ERROR, f"{address}: not tried ({deadline.hit(Limit.CONNECT)})"
            )
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(deadline.remaining())
            try:
                sock.connect((address, destination.port))
            except TimeoutError:
                return ConnectResult(
                    destination, ConnectStatus.TIMEOUT, f"{address}: no answer in {timeout:g}s"
                )
            except OSError as exc:
                status = _ERRNO_STATUS.get(exc.errno or 0, ConnectStatus.ERROR)
                return ConnectResult(destination, status, f"{address}: {exc.strerror or exc}")
        return ConnectResult(destination, ConnectStatus.CONNECTED, f"{address}: connected")

    def tls(
        self,
        destination: Destination,
        *,
        timeout: float,
        ca_bundle: str | None = None,
        alpn: Sequence[str] = ("h2", "http/1.1"),
    ) -> TlsReach:
        """A verified handshake with :func:`pytest_secagent.network.tls.handshake`."""
        try:
            result = handshake(destination.endpoint, timeout=timeout, ca_bundle=ca_bundle, alpn=alpn)
        except ssl.SSLCertVerificationError as exc:
            return TlsReach(destination, False, error=f"certificate: {exc.verify_message}")
        except ssl.SSLError as exc:
            return TlsReach(destination, False, error=str(getattr(exc, "reason", None) or exc))
        except ProbeError as exc:
            return TlsReach(destination, False, error=str(exc))
        if result.certificate is None:
            return TlsReach(destination, False, result.version, result.alpn, "no certificate")
        try:
            facts = read_certificate(result.certificate)
        except CertificateError as exc:
            return TlsReach(destination, False, result.version, result.alpn, f"certificate: {exc}")
        if not hostname_matches(destination.host, facts):
            names = ", ".join(facts.names) or "no subject alternative names"
            return TlsReach(destination, False, result.version, result.alpn, f"certificate names {names}")
        return TlsReach(destination, True, result.version, result.alpn)


_TCP_PROBE = 'exec 3<>"/dev/tcp/$1/$2"'
_TLS_PROBE = """\
args=(s_client -connect "$1" -alpn h2,http/1.1 -verify_return_error)
if [ -n "$3" ]; then args+=(-verify_ip "$2"); else args+=(-servername "$2" -verify_hostname "$2"); fi
if [ -n "$4" ]; then args+=(-CAfile "$4"); fi
exec openssl "${args[@]}" </dev/null 2>&1"""
_STDERR_STATUS = (
    ("Connection refused", ConnectStatus.REFUSED),
    ("No route to host", ConnectStatus.HOST_UNREACHABLE),
    ("Network is unreachable", ConnectStatus.NO_ROUTE),
    ("Operation not permitted", ConnectStatus.BLOCKED_LOCALLY),
    ("Permission denied", ConnectStatus.BLOCKED_LOCALLY),
    ("Name or service not known", ConnectStatus.UNRESOLVED),
    ("Temporary failure in name resolution", ConnectStatus.UNRESOLVED),
    ("No address associated", ConnectStatus.UNRESOLVED),
)
_TIMEOUT_EXIT = 124


class HostVantage:
    """Probes from a host target, through its connection.

    Needs ``timeout`` and ``bash`` on the host for TCP probes, ``getent`` for name
    resolution and ``openssl`` for TLS; a missing tool raises :class:`ProbeError`.
    The CA bundle, when given, is a path on that host.
    """

    def __init__(self, connection: HostConnection) -> None:
        self._connection = connection

    @property
    def name(self) -> str:
        """The host target's ID."""
        return self._connection.target_id

    def _need(self, *tools: str) -> None:
        for tool in tools:
            if self._connection.which(tool) is None:
                raise ProbeError(f"{self.name}: {tool!r} is not installed, so the host cannot probe")

    def resolve(self, host: str) -> tuple[str, ...]:
        """Resolve with ``getent ahosts`` on the host."""
        if _ip(host) is not None:
            return (host,)
        self._need("getent")
        result = self._connection.run(["getent", "ahosts", host])
        seen: list[str] = []
        for line in result.stdout.splitlines():
            fields = line.split()
            if fields and _ip(fields[0]) is not None and fields[0] not in seen:
                seen.append(fields[0])
        return tuple(seen)

    def connect(self, destination: Destination, *, timeout: float) -> ConnectResult:
        """Open ``/dev/tcp/HOST/PORT`` in bash on the host, under ``timeout``."""
        self._need("timeout", "bash")
        argv = [
            "timeout",
            f"{timeout:g}",
            "bash",
            "-c",
            _TCP_PROBE,
            "probe",
            destination.host,
            str(destination.port),
        ]
        result = self._connection.run(argv, timeout=timeout + 10)
        if result.exit_status == 0:
            return ConnectResult(destination, ConnectStatus.CONNECTED, "connected")
        if result.exit_status == _TIMEOUT_EXIT:
            return ConnectResult(destination, ConnectStatus.TIMEOUT, f"no answer in {timeout:g}s")
        message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
        for text, status in _STDERR_STATUS:
            if text in result.stderr:
                return ConnectResult(destination, status, message)
        return ConnectResult(destination, ConnectStatus.ERROR, message or f"exit status {result.exit_status}")

    def tls(
        self,
        destination: Destination,
        *,
        timeout: float,
        ca_bundle: str | None = None,
        alpn: Sequence[str] = ("h2", "http/1.1"),
    ) -> TlsReach:
        """Run ``openssl s_client`` on the host with chain and host-name verification."""
        self._need("timeout", "bash", "openssl")
        is_ip = "1" if _ip(destination.host) is not None else ""
        argv = [
            "timeout", f"{timeout:g}", "bash", "-c", _TLS_PROBE, "probe",
            str(destination), destination.host, is_ip, ca_bundle or "",
        ]  # fmt: skip
        result = self._connection.run(argv, timeout=timeout + 10)
        output = result.stdout + result.stderr
        if result.exit_status == _TIMEOUT_EXIT:
            return TlsReach(destination, False, error=f"no answer in {timeout:g}s")
        version = _field(output, r"^(?:New|Reused), (TLSv[\d.]+|SSLv3),") or _field(
            output, r"^\s*Protocol\s*:\s*(\S+)"
        )
        selected = _field(output, r"^ALPN protocol:\s*(\S+)")
        verify = _field(output, r"^\s*Verify return code:\s*(.+)$")
        if result.exit_status != 0 or verify is None or not verify.startswith("0 "):
            reason = verify or _last_error(output) or f"exit status {result.exit_status}"
            return TlsReach(destination, False, version, selected, reason)
        return TlsReach(destination, True, version, selected)


def _field(text: str, pattern: str) -> str | None:
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(1).strip() if match else None


def _last_error(text: str) -> str | None:
    lines = [line for line in text.splitlines() if "error" in line.lower() or "errno" in line.lower()]
    return lines[-1].strip() if lines else None
