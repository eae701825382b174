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
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import socket
import ssl
import warnings
from collections.abc import Sequence
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
    "PROTOCOLS",
    "Acceptance",
    "Endpoint",
    "HandshakeResult",
    "ProbeError",
    "ProbeTimeout",
    "TlsReport",
    "VersionResult",
    "cipher_problems",
    "handshake",
    "local_offer_problem",
    "probe_endpoint",
    "probe_version",
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
_VERSION_REASONS = frozenset(
    {"UNSUPPORTED_PROTOCOL", "WRONG_VERSION_NUMBER", "VERSION_TOO_LOW", "VERSION_TOO_HIGH"}
)


class ProbeError(EvidenceUnavailable):
    """The endpoint could not be probed at all (refused, unresolvable, not TLS)."""


class ProbeTimeout(ProbeError):
    """The endpoint did not answer within the timeout."""


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
    """Where to connect, and the name to send as SNI and to check the certificate for."""

    host: str
    port: int
    server_name: str | None = None

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
        return f"{host}:{self.port}"


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


def _legacy_context(version: str, ciphers: str | None) -> ssl.SSLContext:
    # Setting TLS 1.0/1.1 bounds is deprecated in the ssl module; offering them is the
    # whole point of a downgrade probe.
    with warnings.catch_warnings():
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


def _connect(endpoint: Endpoint, timeout: float) -> socket.socket:
    try:
        return socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
    except TimeoutError as exc:
        raise ProbeTimeout(f"{endpoint}: TCP connect timed out after {timeout:g}s") from exc
    except socket.gaierror as exc:
        raise ProbeError(f"{endpoint}: cannot resolve {endpoint.host}: {exc.strerror}") from exc
    except OSError as exc:
        raise ProbeError(f"{endpoint}: TCP connect failed: {exc.strerror or exc}") from exc


def _classify(exc: ssl.SSLError) -> tuple[Acceptance, str]:
    reason = _reason(exc)
    if isinstance(exc, ssl.SSLEOFError) or reason == "UNEXPECTED_EOF_WHILE_READING":
        return Acceptance.REJECTED, "server closed the connection during the handshake"
    if "ALERT" in reason:
        return Acceptance.REJECTED, f"server sent alert {reason}"
    if reason in _VERSION_REASONS:
        return Acceptance.REJECTED, f"server answered with another protocol version ({reason})"
    if reason in _LOCAL_REASONS:
        return Acceptance.INCONCLUSIVE, f"the local library could not continue ({reason})"
    return Acceptance.INCONCLUSIVE, f"handshake ended with {reason}; the verdict is unknown"


def probe_version(
    endpoint: Endpoint, version: str, *, timeout: float, ciphers: str | None = LEGACY_CIPHERS
) -> VersionResult:
    """Offer only ``version`` to the endpoint and report whether it completed a handshake.

    A refused or unreachable endpoint raises :class:`ProbeError`; a handshake that does not
    finish within ``timeout`` is ``INCONCLUSIVE``.
    """
    problem = local_offer_problem(version, ciphers)
    if problem is not None:
        not_built = version == "SSLv3" and not ssl.HAS_SSLv3
        return VersionResult(
            version, Acceptance.NOT_PROBED if not_built else Acceptance.INCONCLUSIVE, problem
        )
    context = _legacy_context(version, ciphers)
    sock = _connect(endpoint, timeout)
    try:
        with context.wrap_socket(sock, server_hostname=endpoint.sni) as tls:
            negotiated = tls.version()
            cipher = tls.cipher()
            der = tls.getpeercert(binary_form=True)
    except TimeoutError:
        return VersionResult(version, Acceptance.INCONCLUSIVE, f"no answer within {timeout:g}s")
    except ssl.SSLError as exc:
        acceptance, detail = _classify(exc)
        return VersionResult(version, acceptance, detail)
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return VersionResult(version, Acceptance.REJECTED, "server reset the connection")
    finally:
        sock.close()
    if negotiated != version:
        return VersionResult(version, Acceptance.REJECTED, f"negotiated {negotiated} instead")
    name = cipher[0] if cipher else None
    return VersionResult(version, Acceptance.ACCEPTED, f"negotiated {name}", name, der)


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
) -> HandshakeResult:
    """Complete one handshake the way a modern client would, offering ``alpn``.

    With ``verify`` the chain is checked against the system store plus ``ca_bundle``
    (the host name is not: see :func:`pytest_secagent.network.x509.hostname_matches`).
    Raises ``ssl.SSLError`` (``SSLCertVerificationError`` for chain faults) when the
    handshake fails, :class:`ProbeTimeout` when it does not finish in time.
    """
    context = _modern_context(min_version, ca_bundle, verify, alpn)
    sock = _connect(endpoint, timeout)
    try:
        with context.wrap_socket(sock, server_hostname=endpoint.sni) as tls:
            cipher = tls.cipher()
            return HandshakeResult(
                version=tls.version() or "",
                cipher=cipher[0] if cipher else "",
                alpn=tls.selected_alpn_protocol(),
                certificate=tls.getpeercert(binary_form=True),
            )
    except TimeoutError as exc:
        raise ProbeTimeout(f"{endpoint}: TLS handshake got no answer within {timeout:g}s") from exc
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
        raise ssl.SSLEOFError(f"connection reset during the handshake: {exc}") from exc
    finally:
        sock.close()


def _facts(der: bytes | None) -> tuple[CertificateFacts | None, str | None]:
    if der is None:
        return None, "the server presented no certificate"
    try:
        return read_certificate(der), None
    except CertificateError as exc:
        return None, f"the certificate cannot be read: {exc}"


def probe_endpoint(
    endpoint: Endpoint,
    *,
    timeout: float,
    min_version: str = "TLSv1.2",
    ca_bundle: str | None = None,
    alpn: Sequence[str] = ("h2", "http/1.1"),
    versions: Sequence[str] = PROTOCOLS,
) -> TlsReport:
    """Probe every version, then the certificate, cipher and ALPN of a verified handshake.

    Raises :class:`ProbeTimeout` at once when the endpoint accepts TCP but never answers
    the first handshake, and :class:`ProbeError` when it cannot be reached.
    """
    version_rank(min_version)
    result: HandshakeResult | None = None
    handshake_error: str | None = None
    chain_error: str | None = None
    try:
        result = handshake(endpoint, timeout=timeout, min_version=min_version, ca_bundle=ca_bundle, alpn=alpn)
    except ssl.SSLCertVerificationError as exc:
        chain_error = str(exc.verify_message or _reason(exc))
        try:
            result = handshake(endpoint, timeout=timeout, min_version=min_version, verify=False, alpn=alpn)
        except ssl.SSLError as again:
            handshake_error = f"{_reason(again)} (without verification)"
    except ssl.SSLError as exc:
        handshake_error = _classify(exc)[1]
    results = tuple(probe_version(endpoint, v, timeout=timeout) for v in versions)
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
    )


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
