"""The DER reader against certificates made with cryptography, and the CA bundle check."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.network.controls import check_ca_bundle
from pytest_secagent.network.x509 import (
    CertificateError,
    CertificateFacts,
    hostname_matches,
    pem_blocks,
    read_certificate,
)
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy, TlsSection
from tests.network.certs import CertAuthority, self_signed

NOW = dt.datetime.now(dt.timezone.utc)


def test_reads_dates_and_names(test_ca: CertAuthority) -> None:
    issued = test_ca.issue("names", dns=("a.example", "*.b.example"), ips=("127.0.0.1", "::1"))
    facts = read_certificate(issued.der)
    assert facts.not_before == issued.certificate.not_valid_before_utc
    assert facts.not_after == issued.certificate.not_valid_after_utc
    assert facts.dns_names == ("a.example", "*.b.example")
    assert facts.ip_addresses == ("127.0.0.1", "::1")


def test_reads_a_ca_without_alternative_names(test_ca: CertAuthority) -> None:
    facts = read_certificate(pem_blocks(test_ca.cert.read_bytes())[0])
    assert facts.names == ()


def test_generalized_time_after_2049(tmp_path: Path) -> None:
    ca = CertAuthority(tmp_path, "far", days=365 * 40)
    assert read_certificate(ca.issued.der).not_after.year >= 2060


@pytest.mark.parametrize("data", [b"", b"\x30\x03\x02\x01", b"\x04\x02ab", b"\x30\x82\xff\xff"])
def test_rejects_what_is_not_a_certificate(data: bytes) -> None:
    with pytest.raises(CertificateError):
        read_certificate(data)


def _facts(*dns: str, ips: tuple[str, ...] = ()) -> CertificateFacts:
    return CertificateFacts(NOW, NOW, tuple(dns), ips)


@pytest.mark.parametrize(
    ("host", "facts", "matches"),
    [
        ("acme.atlan.com", _facts("acme.atlan.com"), True),
        ("ACME.atlan.com.", _facts("acme.atlan.com"), True),
        ("acme.atlan.com", _facts("*.atlan.com"), True),
        ("a.acme.atlan.com", _facts("*.atlan.com"), False),
        ("atlan.com", _facts("*.atlan.com"), False),
        ("acme.atlan.com", _facts("other.atlan.com"), False),
        ("127.0.0.1", _facts("127.0.0.1"), False),
        ("127.0.0.1", _facts(ips=("127.0.0.1",)), True),
        ("::1", _facts(ips=("0:0::1",)), True),
        ("localhost", _facts(ips=("127.0.0.1",)), False),
    ],
)
def test_hostname_matching(host: str, facts: CertificateFacts, matches: bool) -> None:
    assert hostname_matches(host, facts) is matches


def _bundle_evidence(bundle: Path, ca_min_days_left: int = 30) -> Evidence:
    evidence = Evidence()
    tls = TlsSection(ca_bundle=str(bundle), ca_min_days_left=ca_min_days_left)
    check_ca_bundle(Policy(tls=tls), evidence)
    return evidence


def test_valid_ca_bundle_passes(test_ca: CertAuthority, tmp_path: Path) -> None:
    other = CertAuthority(tmp_path, "second CA")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(test_ca.cert.read_bytes() + b"\n" + other.cert.read_bytes())
    evidence = _bundle_evidence(bundle)
    assert evidence.failures == ()
    assert len([o for o in evidence.observations if "expiry" in o.name]) == 2
    evidence.conclude()


def test_ca_expiring_too_soon_fails(tmp_path: Path) -> None:
    ca = CertAuthority(tmp_path, "short CA", days=20)
    failed = _bundle_evidence(ca.cert).failures
    assert [o.name.rsplit(" ", 2)[-2:] for o in failed] == [["#1", "expiry"]]
    assert _bundle_evidence(ca.cert, ca_min_days_left=10).failures == ()


def test_expired_ca_fails(tmp_path: Path) -> None:
    ca = CertAuthority(tmp_path, "old CA", days=10, not_before=NOW - dt.timedelta(days=40))
    [failure] = _bundle_evidence(ca.cert).failures
    assert failure.actual.startswith("-")


def test_leaf_in_a_ca_bundle_fails(test_ca: CertAuthority, tmp_path: Path) -> None:
    leaf = self_signed(tmp_path, "leaf")
    bundle = tmp_path / "mixed.pem"
    bundle.write_bytes(test_ca.cert.read_bytes() + leaf.cert.read_bytes())
    [failure] = _bundle_evidence(bundle).failures
    assert failure.expected == "all 2 are CA certificates OpenSSL loads"


def test_bundle_without_certificates_fails(tmp_path: Path) -> None:
    bundle = tmp_path / "empty.pem"
    bundle.write_text("not a certificate\n")
    [failure] = _bundle_evidence(bundle).failures
    assert failure.actual == "0 certificate(s)"


def test_corrupt_pem_fails(tmp_path: Path) -> None:
    bundle = tmp_path / "corrupt.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
    assert _bundle_evidence(bundle).failures


def test_missing_bundle_is_unavailable_evidence(tmp_path: Path) -> None:
    with pytest.raises(EvidenceUnavailable, match="cannot read the CA bundle"):
        _bundle_evidence(tmp_path / "absent.pem")
