"""Just enough X.509 reading for the TLS checks: validity dates and subject names.

The standard library decodes a peer certificate only after it verified it; a check
also needs the expiry and names of a certificate that failed verification (expired,
self-signed, wrong host). This module walks the DER structure for those fields only,
with no third-party dependency.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import re
from dataclasses import dataclass

__all__ = [
    "CertificateError",
    "CertificateFacts",
    "days_left",
    "hostname_matches",
    "pem_blocks",
    "read_certificate",
]

_SEQUENCE = 0x30
_INTEGER = 0x02
_OID = 0x06
_BOOLEAN = 0x01
_OCTET_STRING = 0x04
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
_VERSION = 0xA0
_EXTENSIONS = 0xA3
_DNS_NAME = 0x82
_IP_ADDRESS = 0x87
_SUBJECT_ALT_NAME = bytes.fromhex("551d11")  # 2.5.29.17
_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.DOTALL)


class CertificateError(ValueError):
    """The bytes are not a certificate this reader understands."""


@dataclass(frozen=True)
class CertificateFacts:
    """The fields of a certificate the TLS checks look at."""

    not_before: dt.datetime
    not_after: dt.datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Every subject alternative name, DNS names first."""
        return self.dns_names + self.ip_addresses


def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """Return (tag, content start, content end) of the element at ``offset``."""
    if offset + 2 > len(data):
        raise CertificateError("truncated DER element")
    tag = data[offset]
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise CertificateError("unsupported DER length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise CertificateError("DER element runs past the end of the data")
    return tag, start, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    items = []
    offset = start
    while offset < end:
        tag, content_start, content_end = _tlv(data, offset)
        items.append((tag, content_start, content_end))
        offset = content_end
    return items


def _time(tag: int, raw: bytes) -> dt.datetime:
    text = raw.decode("ascii")
    if not text.endswith("Z"):
        raise CertificateError(f"certificate time {text!r} is not in UTC")
    if tag == _UTC_TIME:
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != _GENERALIZED_TIME:
        raise CertificateError("validity field is not a time")
    text = text[:-1].split(".", 1)[0]
    try:
        return dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=dt.timezone.utc)
    except ValueError as exc:
        raise CertificateError(f"malformed certificate time {raw!r}") from exc


def _alt_names(data: bytes, start: int, end: int) -> tuple[list[str], list[str]]:
    dns: list[str] = []
    ips: list[str] = []
    tag, seq_start, seq_end = _tlv(data, start)
    if tag != _SEQUENCE:
        raise CertificateError("subjectAltName is not a sequence")
    for name_tag, name_start, name_end in _children(data, seq_start, seq_end):
        value = data[name_start:name_end]
        if name_tag == _DNS_NAME:
            dns.append(value.decode("ascii", "replace"))
        elif name_tag == _IP_ADDRESS and len(value) in (4, 16):
            ips.append(str(ipaddress.ip_address(value)))
    return dns, ips


def read_certificate(der: bytes) -> CertificateFacts:
    """Read the validity dates and subject alternative names of a DER certificate."""
    tag, start, _ = _tlv(der, 0)
    if tag != _SEQUENCE:
        raise CertificateError("not a DER certificate")
    tag, tbs_start, tbs_end = _tlv(der, start)
    if tag != _SEQUENCE:
        raise CertificateError("certificate has no tbsCertificate")
    fields = _children(der, tbs_start, tbs_end)
    if fields and fields[0][0] == _VERSION:
        fields = fields[1:]
    if len(fields) < 6 or fields[0][0] != _INTEGER or fields[3][0] != _SEQUENCE:
        raise CertificateError("unexpected tbsCertificate layout")
    validity = _children(der, fields[3][1], fields[3][2])
    if len(validity) != 2:
        raise CertificateError("validity has no notBefore/notAfter pair")
    not_before = _time(validity[0][0], der[validity[0][1] : validity[0][2]])
    not_after = _time(validity[1][0], der[validity[1][1] : validity[1][2]])
    dns: list[str] = []
    ips: list[str] = []
    for field_tag, field_start, _ in fields[6:]:
        if field_tag != _EXTENSIONS:
            continue
        _, exts_start, exts_end = _tlv(der, field_start)
        for _, ext_start, ext_end in _children(der, exts_start, exts_end):
            parts = _children(der, ext_start, ext_end)
            if not parts or parts[0][0] != _OID:
                continue
            if der[parts[0][1] : parts[0][2]] != _SUBJECT_ALT_NAME:
                continue
            value = parts[-1]
            if value[0] != _OCTET_STRING:
                raise CertificateError("subjectAltName value is not an octet string")
            dns, ips = _alt_names(der, value[1], value[2])
    return CertificateFacts(
        not_before=not_before, not_after=not_after, dns_names=tuple(dns), ip_addresses=tuple(ips)
    )


def pem_blocks(text: bytes) -> list[bytes]:
    """Return the DER bytes of every certificate in a PEM bundle, in order."""
    blocks = []
    for match in _PEM_BLOCK.finditer(text):
        try:
            blocks.append(base64.b64decode(b"".join(match.group(1).split()), validate=True))
        except ValueError as exc:
            raise CertificateError("a PEM block is not valid base64") from exc
    return blocks


def days_left(not_after: dt.datetime, now: dt.datetime | None = None) -> int:
    """Whole days until ``not_after``; negative once it has passed."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return (not_after - now) // dt.timedelta(days=1)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def hostname_matches(host: str, facts: CertificateFacts) -> bool:
    """Whether the certificate names ``host`` (RFC 6125: SANs only, wildcard left-most label).

    An IP address matches only an iPAddress SAN. A wildcard covers exactly one label, so
    ``*.example.com`` names ``a.example.com`` but neither ``example.com`` nor ``a.b.example.com``.
    """
    host = host.rstrip(".").lower()
    if _is_ip(host):
        wanted = ipaddress.ip_address(host)
        return any(ipaddress.ip_address(ip) == wanted for ip in facts.ip_addresses)
    for name in facts.dns_names:
        name = name.rstrip(".").lower()
        if name == host:
            return True
        if name.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == name[2:] and "*" not in rest:
                return True
    return False
