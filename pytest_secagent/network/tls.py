"""A TLS probe: which protocol versions a server accepts, its certificate, cipher and ALPN.

Plain Python, no pytest needed::

    report = probe_endpoint(Endpoint("acme.atlan.com", 443), timeout=10)
    report.version("TLSv1").acceptance  # Acceptance.REJECTED

Each version is probed on its own connection with the minimum and maximum version pinned
to it and every cipher the local library has enabled (``ALL:@SECLEVEL=0``), because
OpenSSL 3 at its default security level refuses to offer TLS 1.0/1.1 at all and a naive
probe would mistake that for a server that rejects them. Before any packet is sent the
probe builds the ClientHello in memory and checks that it really offers the version;
when the local library cannot, the verdict is ``INCONCLUSIVE``, never ``REJECTED``.

The verdict of a version probe comes from what the server put on the wire, read record
by record: a ServerHello choosing the offered version means the server *accepted* it,
whatever fails after (an alert once it asked for a client certificate, a reset, a
stall); a ``protocol_version`` alert before any ServerHello, a ServerHello for another
version, or a connection closed without a byte means it *refused* it; anything else
(``handshake_failure`` or ``insufficient_security``, which may only mean that no cipher of
this machine's offer suits the server, bytes that are not TLS, a handshake cut off in the
middle, silence) leaves the verdict unknown.

A name can stand for several addresses (A and AAAA records, round robin); each one is a
server of its own, so :func:`probe_addresses` probes every address the name resolves to
and each report names its address.

One :class:`Deadline` bounds the whole probe of an endpoint: resolving its name (in a
worker thread that is abandoned at the deadline, so a silent resolver holds nothing), and
every connection to every address, each with its TCP connect, its handshake and every
read. The connections of one endpoint (a verified handshake and one per version, for each
address) run at the same time, each until the shared deadline, so a connection that
stalls or drips takes no time from the others. Past the deadline the probe says which
limit was hit (:class:`Limit`: resolve, connect, handshake or read) and after how long.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import ipaddress
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pytest_secagent.network.x509 import (
    CertificateError,
    CertificateFacts,
    hostname_matches,
    read_certificate,
)
from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = [
    "LEGACY_CIPHERS",
    "MAX_ADDRESSES",
    "PROTOCOLS",
    "Acceptance",
    "AddressProbe",
    "Deadline",
    "Endpoint",
    "HandshakeResult",
    "HandshakeStalled",
    "Limit",
    "ProbeError",
    "ProbeTimeout",
    "TlsReport",
    "VersionResult",
    "cipher_problems",
    "handshake",
    "local_offer_problem",
    "lookup",
    "probe_addresses",
    "probe_endpoint",
    "probe_version",
    "resolve_addresses",
    "version_rank",
]

PROTOCOLS: tuple[str, ...] = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
"""The versions the probe knows, oldest first, named as ``SSLSocket.version()`` names them."""

LEGACY_CIPHERS = "ALL:@SECLEVEL=0"
"""Cipher string of the version probes: everything the library has, at security level 0."""

_TLS_VERSION = {
    "SSLv3": ssl.TLSVersion.SSLv3,
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_WIRE_VERSION = {"SSLv3": 0x0300, "TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_NO_VERSION_OPTIONS = (
    ssl.OP_NO_SSLv3 | ssl.OP_NO_TLSv1 | ssl.OP_NO_TLSv1_1 | ssl.OP_NO_TLSv1_2 | ssl.OP_NO_TLSv1_3
)
_LOCAL_REASONS = frozenset(
    {
        "NO_CIPHERS_AVAILABLE",
        "NO_PROTOCOLS_AVAILABLE",
        "NO_SUITABLE_SIGNATURE_ALGORITHM",
        "NO_SUITABLE_GROUPS",
    }
)
MAX_ADDRESSES = 16
"""At most this many addresses of one name are probed; the rest make the verdict unknown."""


class Limit(enum.Enum):
    """The step of a probe that was still waiting when its deadline passed."""

    RESOLVE = "resolve"
    """The resolver had not answered for the name."""
    CONNECT = "connect"
    """The TCP connection had not opened."""
    HANDSHAKE = "handshake"
    """The server had not said a word in answer to the ClientHello."""
    READ = "read"
    """The server had begun its answer, and the rest was not there (a stall, or a drip)."""


@dataclass(frozen=True)
class Deadline:
    """The one deadline of an operation: ``seconds`` after it started, whatever it waits for."""

    seconds: float
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        """Seconds since the operation started."""
        return time.monotonic() - self.started

    def remaining(self) -> float:
        """Seconds left before the deadline (0 once it has passed)."""
        return max(self.started + self.seconds - time.monotonic(), 0.0)

    def hit(self, limit: Limit) -> str:
        """Text naming the limit that was hit, and after how long, for messages."""
        return f"{limit.value} limit hit after {self.elapsed:.1f}s"


class ProbeError(EvidenceUnavailable):
    """The endpoint could not be probed at all (refused, unresolvable, not TLS)."""


class ProbeTimeout(ProbeError):
    """The endpoint did not answer within the deadline."""


class HandshakeStalled(ProbeTimeout):
    """The endpoint began its side of the handshake, then stopped answering."""


class Acceptance(enum.Enum):
    """What a server did with one offered protocol version."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    INCONCLUSIVE = "inconclusive"
    NOT_PROBED = "not probed"


def version_rank(name: str) -> int:
    """Order of a version name in :data:`PROTOCOLS` (SSLv3 is 0)."""
    try:
        return PROTOCOLS.index(name)
    except ValueError:
        raise ValueError(f"unknown protocol version {name!r}; known: {', '.join(PROTOCOLS)}") from None


@dataclass(frozen=True)
class Endpoint:
    """Where to connect, and the name to send as SNI and to check the certificate for.

    ``address`` pins the connections to one address of ``host``; without it they go to
    whichever address of the name answers first.
    """

    host: str
    port: int
    server_name: str | None = None
    address: str | None = None

    def at(self, address: str) -> Endpoint:
        """The same endpoint, pinned to ``address``."""
        return dataclasses.replace(self, address=address)

    @property
    def name(self) -> str:
        """The host name the certificate must carry (``server_name`` or ``host``)."""
        return self.server_name or self.host

    @property
    def sni(self) -> str | None:
        """The SNI value sent: the name, unless it is an IP address (RFC 6066 forbids those)."""
        try:
            ipaddress.ip_address(self.name)
        except ValueError:
            return self.name
        return None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.address is None or _same_address(self.address, self.host):
            return f"{host}:{self.port}"
        return f"{host}:{self.port} at {self.address}"


def _same_address(address: str, host: str) -> bool:
    try:
        return ipaddress.ip_address(address) == ipaddress.ip_address(host)
    except ValueError:
        return False


@dataclass(frozen=True)
class VersionResult:
    """The verdict for one protocol version."""

    version: str
    acceptance: Acceptance
    detail: str
    cipher: str | None = None
    certificate: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class HandshakeResult:
    """A completed handshake: what was negotiated and the server's certificate."""

    version: str
    cipher: str
    alpn: str | None
    certificate: bytes | None = field(repr=False)


@dataclass(frozen=True)
class TlsReport:
    """Everything the TLS controls judge, for one endpoint."""

    endpoint: Endpoint
    min_version: str
    versions: tuple[VersionResult, ...]
    handshake: HandshakeResult | None
    handshake_error: str | None
    chain_error: str | None
    certificate: CertificateFacts | None
    certificate_error: str | None
    handshake_cut_off: bool = False
    """Whether the verified handshake was cut off by the deadline after the server began to answer."""

    def version(self, name: str) -> VersionResult:
        """The result for version ``name``."""
        for result in self.versions:
            if result.version == name:
                return result
        raise KeyError(name)

    @property
    def accepted(self) -> tuple[str, ...]:
        """The versions the server accepted, oldest first."""
        return tuple(r.version for r in self.versions if r.acceptance is Acceptance.ACCEPTED)

    @property
    def chain_verified(self) -> bool:
        """Whether a handshake at the minimum version verified the certificate chain."""
        return self.handshake is not None and self.chain_error is None

    @property
    def hostname_ok(self) -> bool | None:
        """Whether the certificate names the endpoint (``None`` without a certificate)."""
        if self.certificate is None:
            return None
        return hostname_matches(self.endpoint.name, self.certificate)


def _reason(exc: ssl.SSLError) -> str:
    return str(getattr(exc, "reason", None) or exc.__class__.__name__)


_WARNINGS_LOCK = threading.Lock()
"""Held while the warning filters are swapped: ``catch_warnings`` is not thread-safe."""


def _legacy_context(version: str, ciphers: str | None) -> ssl.SSLContext:
    # Setting TLS 1.0/1.1 bounds is deprecated in the ssl module; offering them is the
    # whole point of a downgrade probe. Version probes run in threads, hence the lock.
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.options &= ~_NO_VERSION_OPTIONS
        context.minimum_version = _TLS_VERSION[version]
        context.maximum_version = _TLS_VERSION[version]
        if ciphers is not None:
            context.set_ciphers(ciphers)
    return context


def _offered_versions(hello: bytes) -> set[int]:
    """The versions a serialized ClientHello record offers (supported_versions or legacy)."""
    if len(hello) < 11 or hello[0] != 0x16 or hello[5] != 0x01:
        return set()
    legacy = int.from_bytes(hello[9:11], "big")
    offset = 11 + 32
    try:
        offset += 1 + hello[offset]
        offset += 2 + int.from_bytes(hello[offset : offset + 2], "big")
        offset += 1 + hello[offset]
        end = offset + 2 + int.from_bytes(hello[offset : offset + 2], "big")
        offset += 2
        while offset + 4 <= end:
            kind = int.from_bytes(hello[offset : offset + 2], "big")
            size = int.from_bytes(hello[offset + 2 : offset + 4], "big")
            if kind == 0x002B:
                body = hello[offset + 5 : offset + 4 + size]
                return {int.from_bytes(body[i : i + 2], "big") for i in range(0, len(body), 2)}
            offset += 4 + size
    except IndexError:
        return set()
    return {legacy}


@functools.lru_cache(maxsize=64)
def local_offer_problem(version: str, ciphers: str | None = LEGACY_CIPHERS) -> str | None:
    """Why this machine cannot offer ``version``, or ``None`` when it can.

    ``ciphers`` is the cipher string to offer (``None``: the ssl module's defaults). The
    ClientHello is built in memory, without touching the network, and must offer
    exactly ``version``.
    """
    if version == "SSLv3" and not ssl.HAS_SSLv3:
        return "the local OpenSSL is built without SSLv3"
    try:
        context = _legacy_context(version, ciphers)
    except (ssl.SSLError, ValueError) as exc:
        return f"the local library cannot be set up to offer {version}: {exc}"
    outgoing = ssl.MemoryBIO()
    client = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="probe.invalid")
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    except ssl.SSLError as exc:
        return f"the local library refuses to offer {version}: {_reason(exc)}"
    offered = _offered_versions(outgoing.read())
    if offered != {_WIRE_VERSION[version]}:
        return f"the local library's ClientHello does not offer exactly {version}"
    return None


def _connect(endpoint: Endpoint, deadline: Deadline) -> socket.socket:
    """A TCP connection to the endpoint's address (or the first of its name's that answers)."""
    if endpoint.address is not None:
        addresses: Sequence[str] = (endpoint.address,)
    else:
        resolved = resolve_addresses(endpoint, timeout=deadline.seconds, deadline=deadline)
        addresses = [str(e.address) for e in resolved]
    failure: OSError | None = None
    for address in addresses:
        remaining = deadline.remaining()
        if remaining <= 0:
            break
        try:
            return socket.create_connection((address, endpoint.port), timeout=remaining)
        except TimeoutError:
            failure = None
            break
        except OSError as exc:
            failure = exc
    if failure is None:
        raise ProbeTimeout(
            f"{endpoint}: TCP connect timed out after {deadline.seconds:g}s ({deadline.hit(Limit.CONNECT)})"
        )
    raise ProbeError(f"{endpoint}: TCP connect failed: {failure.strerror or failure}")


_CHANGE_CIPHER_SPEC, _ALERT, _HANDSHAKE, _APPLICATION_DATA, _HEARTBEAT = 20, 21, 22, 23, 24
_SERVER_HELLO, _CERTIFICATE = 2, 11
_SUPPORTED_VERSIONS = 0x002B
_MAX_RECORD = 2**14 + 2048
_MAX_FLIGHT = 1 << 18
_RETRY_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")
_MESSAGE_NAMES = {
    0: "HelloRequest",
    2: "ServerHello",
    4: "NewSessionTicket",
    8: "EncryptedExtensions",
    11: "Certificate",
    12: "ServerKeyExchange",
    13: "CertificateRequest",
    14: "ServerHelloDone",
    22: "CertificateStatus",
}
_ALERT_NAMES = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    22: "record_overflow",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    109: "missing_extension",
    110: "unsupported_extension",
    112: "unrecognized_name",
    116: "certificate_required",
    120: "no_application_protocol",
}
_CLOSE_NOTIFY = 0
#: Alerts before any ServerHello that refuse the offered version itself. ``handshake_failure``
#: and ``insufficient_security`` are not among them: they also answer "no cipher of your offer",
#: and a server may accept the version with a cipher this machine's library cannot offer.
_REFUSALS = frozenset({70})
"""Alerts that, before any ServerHello, say the server will not handshake with this offer."""
_WIRE_NAMES = {number: name for name, number in _WIRE_VERSION.items()}


def _version_name(wire: int) -> str:
    return _WIRE_NAMES.get(wire, f"unknown version 0x{wire:04x}")


@dataclass(frozen=True)
class _Alert:
    description: int | None  # None: encrypted, so unreadable
    after_hello: bool

    def __str__(self) -> str:
        if self.description is None:
            return "an encrypted alert"
        name = _ALERT_NAMES.get(self.description, "unknown")
        return f"alert {name} ({self.description})"


@dataclass(frozen=True)
class _ServerHello:
    version: int
    cipher: int
    retry: bool


class _ServerFlight:
    """What the server sent, read from its raw TLS records as they arrive.

    Handshake messages are read while they travel in clear: up to the server's
    ChangeCipherSpec below TLS 1.3, up to the ServerHello in TLS 1.3.
    """

    def __init__(self) -> None:
        self._records = bytearray()
        self._handshake = bytearray()
        self._encrypted = False
        self.received = 0
        self.hello: _ServerHello | None = None
        self.messages: list[str] = []
        self.alerts: list[_Alert] = []
        self.certificate: bytes | None = None
        self.malformed: str | None = None

    @property
    def partial(self) -> bool:
        """Whether a record or handshake message was cut off."""
        return bool(self._records or self._handshake)

    def feed(self, data: bytes) -> None:
        """Take the next bytes the server sent."""
        self.received += len(data)
        if self.malformed is not None:
            return
        self._records += data
        while len(self._records) >= 5:
            kind, major = self._records[0], self._records[1]
            length = int.from_bytes(self._records[3:5], "big")
            if kind not in (_CHANGE_CIPHER_SPEC, _ALERT, _HANDSHAKE, _APPLICATION_DATA, _HEARTBEAT) or (
                major != 3 or length > _MAX_RECORD
            ):
                self.malformed = f"bytes {bytes(self._records[:5]).hex()} do not start a TLS record"
                return
            if len(self._records) < 5 + length:
                return
            body = bytes(self._records[5 : 5 + length])
            del self._records[: 5 + length]
            self._record(kind, body)
            if self.malformed is not None:
                return

    def _record(self, kind: int, body: bytes) -> None:
        if kind == _ALERT:
            readable = len(body) == 2  # an encrypted alert carries a MAC or tag as well
            self.alerts.append(_Alert(body[1] if readable else None, self.hello is not None))
        elif kind == _CHANGE_CIPHER_SPEC:
            if self.hello is not None and not self.hello.retry:
                self._encrypted = True
        elif kind == _HANDSHAKE:
            if not self._encrypted:
                self._handshake += body
                self._messages()
        elif kind == _APPLICATION_DATA and self.hello is None:
            self.malformed = "application data before any ServerHello"

    def _messages(self) -> None:
        while len(self._handshake) >= 4 and self.malformed is None:
            kind, length = self._handshake[0], int.from_bytes(self._handshake[1:4], "big")
            if len(self._handshake) < 4 + length:
                return
            body = bytes(self._handshake[4 : 4 + length])
            del self._handshake[: 4 + length]
            self.messages.append(_MESSAGE_NAMES.get(kind, f"message type {kind}"))
            if kind == _SERVER_HELLO:
                self._server_hello(body)
            elif kind == _CERTIFICATE and self.certificate is None:
                self.certificate = _leaf(body)

    def _server_hello(self, body: bytes) -> None:
        try:
            legacy = int.from_bytes(body[0:2], "big")
            random = body[2:34]
            offset = 35 + body[34]
            cipher = int.from_bytes(body[offset : offset + 2], "big")
            offset += 3
            if offset > len(body):
                raise IndexError(offset)
            version = legacy
            if offset < len(body):
                end = offset + 2 + int.from_bytes(body[offset : offset + 2], "big")
                offset += 2
                if end > len(body):
                    raise IndexError(end)
                while offset + 4 <= end:
                    kind = int.from_bytes(body[offset : offset + 2], "big")
                    size = int.from_bytes(body[offset + 2 : offset + 4], "big")
                    if kind == _SUPPORTED_VERSIONS and size == 2:
                        version = int.from_bytes(body[offset + 4 : offset + 6], "big")
                    offset += 4 + size
        except IndexError:
            self.malformed = "a ServerHello too short to read"
            return
        self.hello = _ServerHello(version, cipher, random == _RETRY_RANDOM)
        if version >= _WIRE_VERSION["TLSv1.3"] and not self.hello.retry:
            self._encrypted = True  # everything after a TLS 1.3 ServerHello is encrypted


def _leaf(body: bytes) -> bytes | None:
    """The first certificate of a clear-text (TLS 1.2 or older) Certificate message."""
    if len(body) < 6:
        return None
    size = int.from_bytes(body[3:6], "big")
    der = body[6 : 6 + size]
    return der if size and len(der) == size else None


class _End(enum.Enum):
    """How a handshake attempt ended."""

    COMPLETED = "completed"
    CLOSED = "closed"
    RESET = "reset"
    TIMEOUT = "timeout"
    FAILED = "failed"


@dataclass
class _Exchange:
    flight: _ServerFlight
    end: _End
    reason: str
    error: ssl.SSLError | None = None
    negotiated: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    certificate: bytes | None = None
    late: str = ""  # at a timeout: which limit was hit, and when


def _send(sock: socket.socket, data: bytes, deadline: Deadline) -> None:
    sock.settimeout(max(deadline.remaining(), 0.001))
    sock.sendall(data)


def _timed_out(flight: _ServerFlight, deadline: Deadline) -> _Exchange:
    limit = Limit.READ if flight.received else Limit.HANDSHAKE
    return _Exchange(flight, _End.TIMEOUT, "", late=deadline.hit(limit))


def _exchange(endpoint: Endpoint, context: ssl.SSLContext, deadline: Deadline) -> _Exchange:
    """Run one handshake over a socket, feeding every byte the server sends to a reader.

    Connect, handshake and every read end at ``deadline``, however the server paces its bytes.
    """
    sock = _connect(endpoint, deadline)
    flight = _ServerFlight()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=endpoint.sni)
    try:
        while True:
            end: _End | None = None
            reason = ""
            error: ssl.SSLError | None = None
            try:
                tls.do_handshake()
                end = _End.COMPLETED
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                end, reason, error = _End.FAILED, _reason(exc), exc
            pending = outgoing.read()
            try:
                if pending:
                    _send(sock, pending, deadline)
            except TimeoutError:
                end = end or _End.TIMEOUT
            except OSError as exc:
                if end is None:
                    end, reason = _End.RESET, exc.strerror or str(exc)
            if end is _End.COMPLETED:
                cipher = tls.cipher()
                return _Exchange(
                    flight, end, "", None, tls.version(), cipher[0] if cipher else None,
                    tls.selected_alpn_protocol(), tls.getpeercert(binary_form=True),
                )  # fmt: skip
            if end is _End.TIMEOUT:
                return _timed_out(flight, deadline)
            if end is not None:
                return _Exchange(flight, end, reason, error)
            if flight.received > _MAX_FLIGHT:
                flight.malformed = f"more than {_MAX_FLIGHT} bytes without a finished handshake"
                return _Exchange(flight, _End.FAILED, "too much data")
            remaining = deadline.remaining()
            if remaining <= 0:
                return _timed_out(flight, deadline)
            sock.settimeout(remaining)
            try:
                data = sock.recv(16384)
            except TimeoutError:
                return _timed_out(flight, deadline)
            except OSError as exc:
                return _Exchange(flight, _End.RESET, exc.strerror or str(exc))
            if not data:
                return _Exchange(flight, _End.CLOSED, "")
            flight.feed(data)
            incoming.write(data)
    finally:
        sock.close()


def _cipher_names(context: ssl.SSLContext) -> dict[int, str]:
    return {int(c["id"]) & 0xFFFF: str(c["name"]) for c in context.get_ciphers()}


def _ending(exchange: _Exchange, timeout: float) -> str:
    return {
        _End.CLOSED: "closed the connection",
        _End.RESET: "reset the connection",
        _End.TIMEOUT: f"sent nothing more within {timeout:g}s ({exchange.late})",
    }.get(exchange.end, f"this side ended the handshake ({exchange.reason})")


def _afterwards(exchange: _Exchange, timeout: float) -> str:
    """What ended a handshake after the server's ServerHello, for the evidence."""
    flight = exchange.flight
    after = [alert for alert in flight.alerts if alert.after_hello]
    then = f"sent {after[0]}" if after else _ending(exchange, timeout)
    return f"then {then} after its {', '.join(flight.messages)}"


def _verdict(version: str, exchange: _Exchange, timeout: float) -> tuple[Acceptance, str]:
    """Accepted, refused or unknown, from the records the server sent."""
    flight, end = exchange.flight, exchange.end
    hello = flight.hello
    if hello is not None:
        chosen = _version_name(hello.version)
        if hello.version != _WIRE_VERSION[version]:
            return Acceptance.REJECTED, f"the server answered with a ServerHello for {chosen}"
        if end is _End.COMPLETED:
            if exchange.negotiated != version:
                return Acceptance.INCONCLUSIVE, (
                    f"the ServerHello chose {version} but the library negotiated {exchange.negotiated}"
                )
            return Acceptance.ACCEPTED, f"negotiated {exchange.cipher}"
        then = _afterwards(exchange, timeout)
        return Acceptance.ACCEPTED, f"the server chose {version} in its ServerHello, {then}"
    if flight.malformed is not None:
        return Acceptance.INCONCLUSIVE, f"the server's answer is not a TLS handshake: {flight.malformed}"
    if end is _End.COMPLETED:
        return Acceptance.INCONCLUSIVE, "the handshake completed but no ServerHello was read"
    before = [alert for alert in flight.alerts if not alert.after_hello]
    if before and before[0].description in _REFUSALS:
        return Acceptance.REJECTED, f"the server refused it with {before[0]} before any ServerHello"
    if before and before[0].description != _CLOSE_NOTIFY:
        return Acceptance.INCONCLUSIVE, (
            f"the server sent {before[0]} before any ServerHello, which does not say it refuses {version}"
        )
    if flight.messages or flight.partial or (flight.received and not before):
        read = [f"read: {', '.join(flight.messages)}"] if flight.messages else []
        read += ["cut off in the middle of a record"] if flight.partial else []
        read = read or ["no handshake message"]
        return Acceptance.INCONCLUSIVE, (
            f"the server sent {flight.received} bytes without a complete ServerHello ({'; '.join(read)}), "
            f"then {_ending(exchange, timeout)}; whether it accepts {version} is unknown"
        )
    if end is _End.CLOSED:
        return Acceptance.REJECTED, "the server closed the connection without a ServerHello" + (
            f" (after {before[0]})" if before else ""
        )
    if end is _End.RESET:
        return Acceptance.REJECTED, "the server reset the connection without a ServerHello"
    if end is _End.TIMEOUT:
        return Acceptance.INCONCLUSIVE, f"no answer within {timeout:g}s ({exchange.late})"
    if exchange.reason in _LOCAL_REASONS:
        return Acceptance.INCONCLUSIVE, f"the local library could not continue ({exchange.reason})"
    return Acceptance.INCONCLUSIVE, f"handshake ended with {exchange.reason}; the verdict is unknown"


def _failure_text(exc: ssl.SSLError) -> str:
    """A handshake error of the modern client, for the evidence."""
    reason = _reason(exc)
    if isinstance(exc, ssl.SSLEOFError) or reason == "UNEXPECTED_EOF_WHILE_READING":
        return "server closed the connection during the handshake"
    if "ALERT" in reason:
        return f"server sent alert {reason}"
    return f"handshake ended with {reason}"


def probe_version(
    endpoint: Endpoint,
    version: str,
    *,
    timeout: float,
    ciphers: str | None = LEGACY_CIPHERS,
    deadline: Deadline | None = None,
) -> VersionResult:
    """Offer only ``version`` to the endpoint and judge from the wire whether it accepted it.

    A refused or unreachable endpoint raises :class:`ProbeError`. Connect and handshake
    end at ``deadline`` (by default ``timeout`` seconds from now); one that gets no
    ServerHello in time is ``INCONCLUSIVE``, one whose ServerHello chose ``version`` is
    ``ACCEPTED`` however it went on.
    """
    problem = local_offer_problem(version, ciphers)
    if problem is not None:
        not_built = version == "SSLv3" and not ssl.HAS_SSLv3
        return VersionResult(
            version, Acceptance.NOT_PROBED if not_built else Acceptance.INCONCLUSIVE, problem
        )
    deadline = deadline or Deadline(timeout)
    context = _legacy_context(version, ciphers)
    exchange = _exchange(endpoint, context, deadline)
    acceptance, detail = _verdict(version, exchange, deadline.seconds)
    if acceptance is not Acceptance.ACCEPTED:
        return VersionResult(version, acceptance, detail)
    cipher = exchange.cipher
    hello = exchange.flight.hello
    if cipher is None and hello is not None:
        cipher = _cipher_names(context).get(hello.cipher, f"cipher suite 0x{hello.cipher:04x}")
    der = exchange.certificate or exchange.flight.certificate
    return VersionResult(version, acceptance, detail, cipher, der)


def _modern_context(
    min_version: str, ca_bundle: str | None, verify: bool, alpn: Sequence[str]
) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_bundle:
        try:
            context.load_verify_locations(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise ProbeError(f"cannot load the CA bundle {ca_bundle}: {exc}") from exc
    context.check_hostname = False  # the name is matched separately, so both faults show
    context.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    context.minimum_version = _TLS_VERSION[min_version]
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def handshake(
    endpoint: Endpoint,
    *,
    timeout: float,
    min_version: str = "TLSv1.2",
    ca_bundle: str | None = None,
    verify: bool = True,
    alpn: Sequence[str] = ("h2", "http/1.1"),
    deadline: Deadline | None = None,
) -> HandshakeResult:
    """Complete one handshake the way a modern client would, offering ``alpn``.

    With ``verify`` the chain is checked against the system store plus ``ca_bundle``
    (the host name is not: see :func:`pytest_secagent.network.x509.hostname_matches`).
    Resolution, connect and handshake end at ``deadline`` (by default ``timeout`` seconds
    from now). Raises ``ssl.SSLError`` (``SSLCertVerificationError`` for chain faults,
    ``SSLEOFError`` when the server hangs up) when the handshake fails,
    :class:`ProbeTimeout` when the server says nothing in time, and
    :class:`HandshakeStalled` when it began its answer and did not finish it in time.
    """
    deadline = deadline or Deadline(timeout)
    timeout = deadline.seconds
    context = _modern_context(min_version, ca_bundle, verify, alpn)
    exchange = _exchange(endpoint, context, deadline)
    flight = exchange.flight
    if exchange.end is _End.COMPLETED:
        return HandshakeResult(
            version=exchange.negotiated or "",
            cipher=exchange.cipher or "",
            alpn=exchange.alpn,
            certificate=exchange.certificate,
        )
    if exchange.error is not None:
        raise exchange.error
    if exchange.end is _End.TIMEOUT and not flight.received:
        raise ProbeTimeout(f"{endpoint}: TLS handshake got no answer within {timeout:g}s ({exchange.late})")
    if exchange.end is _End.TIMEOUT:
        seen = ", ".join(flight.messages) or f"{flight.received} bytes"
        raise HandshakeStalled(
            f"{endpoint}: the server sent {seen}, then nothing more within {timeout:g}s ({exchange.late})"
        )
    if exchange.end is _End.RESET:
        raise ssl.SSLEOFError(f"connection reset during the handshake: {exchange.reason}")
    raise ssl.SSLEOFError("server closed the connection during the handshake")


def _facts(der: bytes | None) -> tuple[CertificateFacts | None, str | None]:
    if der is None:
        return None, "the server presented no certificate"
    try:
        return read_certificate(der), None
    except CertificateError as exc:
        return None, f"the certificate cannot be read: {exc}"


def lookup(host: str, port: int | None, deadline: Deadline) -> tuple[str, ...]:
    """The addresses ``host`` resolves to (A and AAAA), in the resolver's order, without duplicates.

    ``getaddrinfo`` runs in a worker thread that is abandoned at ``deadline``: a resolver
    that never answers raises :class:`ProbeTimeout` (naming the resolve limit) on time.
    A name that does not resolve raises ``socket.gaierror``.
    """
    outcome: list[object] = []

    def resolve() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            outcome.append(exc)

    worker = threading.Thread(target=resolve, name=f"resolve-{host}", daemon=True)
    worker.start()
    worker.join(deadline.remaining())
    if not outcome:
        raise ProbeTimeout(
            f"resolving {host} got no answer within {deadline.seconds:g}s ({deadline.hit(Limit.RESOLVE)})"
        )
    answer = outcome[0]
    if isinstance(answer, BaseException):
        raise answer
    addresses: list[str] = []
    for info in answer if isinstance(answer, list) else []:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return tuple(addresses)


def resolve_addresses(
    endpoint: Endpoint, *, timeout: float, deadline: Deadline | None = None
) -> tuple[Endpoint, ...]:
    """The endpoint pinned to each address its host resolves to, in the resolver's order.

    Every family is asked for (A and AAAA); duplicates are dropped. An endpoint already
    pinned, or whose host is an address, is returned as it is. Resolution ends at
    ``deadline`` (by default ``timeout`` seconds from now), else :class:`ProbeTimeout`;
    a name that does not resolve raises :class:`ProbeError`.
    """
    if endpoint.address is not None:
        return (endpoint,)
    try:
        ipaddress.ip_address(endpoint.host)
    except ValueError:
        pass
    else:
        return (endpoint.at(endpoint.host),)
    try:
        addresses = lookup(endpoint.host, endpoint.port, deadline or Deadline(timeout))
    except ProbeTimeout as exc:
        raise ProbeTimeout(f"{endpoint}: {exc}") from None
    except (OSError, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ProbeError(f"{endpoint}: cannot resolve {endpoint.host}: {why}") from None
    if not addresses:
        raise ProbeError(f"{endpoint}: {endpoint.host} resolves to no address")
    return tuple(endpoint.at(address) for address in addresses)


def _pinned(endpoint: Endpoint, deadline: Deadline) -> Endpoint:
    if endpoint.address is not None:
        return endpoint
    addresses = resolve_addresses(endpoint, timeout=deadline.seconds, deadline=deadline)
    if len(addresses) > 1:
        listed = ", ".join(str(a.address) for a in addresses)
        raise ProbeError(
            f"{endpoint}: {endpoint.host} resolves to {len(addresses)} addresses ({listed}); "
            "one report covers one server, so probe each with probe_addresses"
        )
    return addresses[0]


def _modern(
    endpoint: Endpoint,
    deadline: Deadline,
    min_version: str,
    ca_bundle: str | None,
    alpn: Sequence[str],
) -> tuple[HandshakeResult | None, str | None, str | None, bool]:
    """The verified handshake (or one without verification after a chain fault).

    Returns the result, the handshake error, the chain error, and whether the handshake
    was cut off by the deadline after the server began to answer.
    """
    try:
        result = handshake(
            endpoint, timeout=deadline.seconds, min_version=min_version, ca_bundle=ca_bundle, alpn=alpn,
            deadline=deadline,
        )  # fmt: skip
    except ssl.SSLCertVerificationError as exc:
        chain_error = str(exc.verify_message or _reason(exc))
        try:
            again = handshake(
                endpoint, timeout=deadline.seconds, min_version=min_version, verify=False, alpn=alpn,
                deadline=deadline,
            )  # fmt: skip
        except ssl.SSLError as failure:
            return None, f"{_failure_text(failure)} (without verification)", chain_error, False
        except ProbeTimeout as late:  # the deadline passed during the second handshake
            return None, f"{late} (without verification)", chain_error, True
        return again, None, chain_error, False
    except ssl.SSLError as exc:
        return None, _failure_text(exc), None, False
    except HandshakeStalled as exc:
        return None, str(exc), None, True  # it answered: the version probes still tell what it accepts
    return result, None, None, False


def probe_endpoint(
    endpoint: Endpoint,
    *,
    timeout: float,
    min_version: str = "TLSv1.2",
    ca_bundle: str | None = None,
    alpn: Sequence[str] = ("h2", "http/1.1"),
    versions: Sequence[str] = PROTOCOLS,
    deadline: Deadline | None = None,
) -> TlsReport:
    """Probe every version, then the certificate, cipher and ALPN of a verified handshake.

    Every connection goes to one address: the endpoint's own ``address``, or the only
    address its host resolves to (a name with several raises :class:`ProbeError`: use
    :func:`probe_addresses`). The report's endpoint names that address.

    Everything ends at ``deadline`` (by default ``timeout`` seconds from now): the verified
    handshake and the version probes run at the same time, each on its own connection.

    Raises :class:`ProbeTimeout` when the endpoint accepts TCP but never answers the
    verified handshake, and :class:`ProbeError` when it cannot be reached. A server that
    answers and then stalls is still judged on what it sent: what it accepted is evidence.
    """
    version_rank(min_version)
    deadline = deadline or Deadline(timeout)
    endpoint = _pinned(endpoint, deadline)
    with ThreadPoolExecutor(max_workers=max(len(versions), 1), thread_name_prefix="tls-probe") as pool:
        pending = [
            pool.submit(probe_version, endpoint, version, timeout=deadline.seconds, deadline=deadline)
            for version in versions
        ]
        modern = _modern(endpoint, deadline, min_version, ca_bundle, alpn)
        result, handshake_error, chain_error, cut_off = modern
        results = tuple(future.result() for future in pending)
    der = result.certificate if result else None
    if der is None:
        der = next((r.certificate for r in reversed(results) if r.certificate), None)
    certificate, certificate_error = _facts(der)
    return TlsReport(
        endpoint=endpoint,
        min_version=min_version,
        versions=results,
        handshake=result,
        handshake_error=handshake_error,
        chain_error=chain_error,
        certificate=certificate,
        certificate_error=certificate_error,
        handshake_cut_off=cut_off,
    )


@dataclass(frozen=True)
class AddressProbe:
    """The probe of one address behind an endpoint's name: a report, or why there is none."""

    endpoint: Endpoint
    report: TlsReport | None
    error: str | None = None


def probe_addresses(
    endpoint: Endpoint,
    *,
    timeout: float,
    min_version: str = "TLSv1.2",
    ca_bundle: str | None = None,
    alpn: Sequence[str] = ("h2", "http/1.1"),
    versions: Sequence[str] = PROTOCOLS,
    max_addresses: int = MAX_ADDRESSES,
    deadline: Deadline | None = None,
) -> tuple[AddressProbe, ...]:
    """Probe every address the endpoint's host resolves to, each on its own connections.

    The whole of it, resolution included, ends at ``deadline`` (by default ``timeout``
    seconds from now); the addresses are probed at the same time. An address that cannot
    be probed (refused, timed out) has no report and says why; addresses beyond
    ``max_addresses`` are listed the same way, unprobed. A name that does not resolve, or
    not in time, raises :class:`ProbeError`.
    """
    deadline = deadline or Deadline(timeout)
    pinned = resolve_addresses(endpoint, timeout=deadline.seconds, deadline=deadline)
    probed = pinned[:max_addresses]
    probes: list[AddressProbe] = []
    with ThreadPoolExecutor(max_workers=max(len(probed), 1), thread_name_prefix="tls-address") as pool:
        pending = [
            pool.submit(
                probe_endpoint,
                address,
                timeout=deadline.seconds,
                min_version=min_version,
                ca_bundle=ca_bundle,
                alpn=alpn,
                versions=versions,
                deadline=deadline,
            )
            for address in probed
        ]
        for address, future in zip(probed, pending, strict=True):
            try:
                probes.append(AddressProbe(address, future.result()))
            except ProbeError as exc:
                probes.append(AddressProbe(address, None, str(exc)))
    for address in pinned[max_addresses:]:
        why = f"{address}: not probed, beyond the first {max_addresses} addresses"
        probes.append(AddressProbe(address, None, why))
    return tuple(probes)


_WEAK_MARKERS = (
    ("NULL", "NULL encryption"),
    ("EXP", "export-grade"),
    ("RC4", "RC4"),
    ("CBC3", "3DES"),
    ("3DES", "3DES"),
    ("DES", "DES"),
    ("MD5", "MD5"),
    ("ANON", "anonymous key exchange"),
)
_AEAD_MARKERS = ("GCM", "CHACHA20", "CCM")


def cipher_problems(cipher: str, version: str) -> list[str]:
    """What is weak about a negotiated cipher (empty when it is strong).

    TLS 1.3 suites are all AEAD with ephemeral key exchange. Below 1.3 a strong suite has
    ECDHE or DHE key exchange and an AEAD mode (GCM, ChaCha20-Poly1305, CCM); NULL,
    EXPORT, RC4, DES, 3DES, MD5, anonymous and CBC-only suites are weak.
    """
    if version == "TLSv1.3":
        return []
    name = cipher.upper().replace("_", "-")
    problems: list[str] = []
    parts = set(name.split("-"))
    for marker, label in _WEAK_MARKERS:
        hit = marker in parts or (marker in ("CBC3", "3DES", "MD5", "ANON") and marker in name)
        if marker == "DES" and {"CBC3", "3DES"} & parts:
            hit = False
        if hit and label not in problems:
            problems.append(label)
    if name.startswith(("ADH-", "AECDH-")) and "anonymous key exchange" not in problems:
        problems.append("anonymous key exchange")
    if not name.startswith(("ECDHE-", "DHE-", "TLS-ECDHE-", "TLS-DHE-")):
        problems.append("no forward secrecy (needs ECDHE or DHE)")
    if not any(marker in name for marker in _AEAD_MARKERS):
        problems.append("not an AEAD mode (CBC)")
    return problems
