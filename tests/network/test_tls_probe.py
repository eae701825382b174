"""The TLS probe against real servers: versions (cross-checked with sslyze), certificates, ciphers."""

from __future__ import annotations

import datetime as dt
import ssl
import time

import pytest

from pytest_secagent.evidence import ControlFailed, Evidence, Verdict
from pytest_secagent.network.controls import finish, judge_tls
from pytest_secagent.network.tls import (
    Acceptance,
    Endpoint,
    ProbeError,
    ProbeTimeout,
    cipher_problems,
    local_offer_problem,
    probe_endpoint,
    probe_version,
)
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy, TlsSection
from tests.network.certs import CertAuthority
from tests.network.conftest import SERVER_NAMES, Servers
from tests.network.servers import ThreadedTlsServer, server_context

TIMEOUT = 5.0
NFS = "no forward secrecy (needs ECDHE or DHE)"
CBC = "not an AEAD mode (CBC)"


def _policy(servers: Servers) -> Policy:
    return Policy(tls=TlsSection(ca_bundle=str(servers.ca.cert)))


def _endpoint(port: int) -> Endpoint:
    return Endpoint("127.0.0.1", port)


def _judge(servers: Servers, name: str, *, h2: bool = False) -> tuple[Evidence, list[str]]:
    policy = _policy(servers)
    report = probe_endpoint(_endpoint(servers[name].port), timeout=TIMEOUT, ca_bundle=policy.tls.ca_bundle)
    evidence = Evidence()
    return evidence, judge_tls(report, policy, evidence, require_h2=h2)


def _failed(evidence: Evidence) -> dict[str, str]:
    return {o.name.split(" ", 1)[1]: o.actual for o in evidence.failures}


@pytest.mark.parametrize("name", SERVER_NAMES)
def test_accepted_versions_agree_with_sslyze(
    tls_servers: Servers, sslyze_verdicts: dict[int, frozenset[str]], name: str
) -> None:
    server = tls_servers[name]
    report = probe_endpoint(_endpoint(server.port), timeout=TIMEOUT)
    assert frozenset(report.accepted) == sslyze_verdicts[server.port] == server.accepts
    assert not [r for r in report.versions if r.acceptance is Acceptance.INCONCLUSIVE]
    sslv3 = report.version("SSLv3").acceptance
    assert sslv3 is (Acceptance.REJECTED if ssl.HAS_SSLv3 else Acceptance.NOT_PROBED)


def test_every_tls_version_is_offerable_here() -> None:
    for version in ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"):
        assert local_offer_problem(version) is None, version


@pytest.mark.skipif(ssl.OPENSSL_VERSION_INFO < (3,), reason="the premise holds for OpenSSL 3")
def test_tls10_with_default_ciphers_is_inconclusive_not_rejected(tls_servers: Servers) -> None:
    # The premise: with the ssl module's default ciphers, this machine cannot offer TLS 1.0...
    problem = local_offer_problem("TLSv1", None)
    assert problem is not None
    assert "refuses to offer TLSv1" in problem
    port = tls_servers["tls10plus"].port
    naive = probe_version(_endpoint(port), "TLSv1", timeout=TIMEOUT, ciphers=None)
    assert naive.acceptance is Acceptance.INCONCLUSIVE
    # ...and the probe's own offer, at security level 0, finds the server accepting it.
    proper = probe_version(_endpoint(port), "TLSv1", timeout=TIMEOUT)
    assert proper.acceptance is Acceptance.ACCEPTED


def test_tls10_server_fails_the_version_floor(tls_servers: Servers) -> None:
    evidence, unknowns = _judge(tls_servers, "tls10plus")
    failed = _failed(evidence)
    assert set(failed) == {"TLSv1", "TLSv1.1"}
    assert failed["TLSv1"].startswith("accepted: negotiated")
    assert unknowns == []
    with pytest.raises(ControlFailed, match="TLSv1"):
        finish(evidence, unknowns)


def test_tls10_11_only_server_fails_without_a_modern_handshake(tls_servers: Servers) -> None:
    evidence, _ = _judge(tls_servers, "tls10_11")
    failed = _failed(evidence)
    assert {"handshake", "TLSv1", "TLSv1.1"} <= set(failed)
    assert "certificate names" not in failed  # the certificate is still read and judged


@pytest.mark.parametrize("name", ["tls12plus", "tls13only", "h2"])
def test_good_servers_pass(tls_servers: Servers, name: str) -> None:
    evidence, unknowns = _judge(tls_servers, name)
    assert evidence.failures == ()
    assert unknowns == []
    finish(evidence, unknowns)


def test_expired_certificate_fails_chain_and_expiry(tls_servers: Servers) -> None:
    evidence, _ = _judge(tls_servers, "expired")
    failed = _failed(evidence)
    assert set(failed) == {"certificate chain", "certificate expiry"}
    assert failed["certificate chain"] == "certificate has expired"
    assert failed["certificate expiry"].startswith("-")


def test_self_signed_certificate_fails_the_chain(tls_servers: Servers) -> None:
    evidence, _ = _judge(tls_servers, "self_signed")
    assert _failed(evidence) == {"certificate chain": "self-signed certificate"}


def test_wrong_hostname_fails_the_name(tls_servers: Servers) -> None:
    evidence, _ = _judge(tls_servers, "wrong_host")
    assert _failed(evidence) == {"certificate names": "other.example"}


def test_weak_cipher_fails(tls_servers: Servers) -> None:
    evidence, _ = _judge(tls_servers, "weak_cipher")
    failed = _failed(evidence)
    assert "TLS 1.2 cipher (all ciphers offered)" in failed
    assert "AES128-SHA" in failed["TLS 1.2 cipher (all ciphers offered)"]
    assert "no forward secrecy" in failed["TLS 1.2 cipher (all ciphers offered)"]


def test_h2_is_required_for_grpc(tls_servers: Servers) -> None:
    evidence, _ = _judge(tls_servers, "h2", h2=True)
    assert evidence.failures == ()
    evidence, _ = _judge(tls_servers, "tls12plus", h2=True)
    assert _failed(evidence) == {"ALPN (gRPC/TLS)": "http/1.1"}


def test_sni_is_sent_for_names_only(tls_servers: Servers) -> None:
    assert Endpoint("localhost", 1).sni == "localhost"
    assert Endpoint("127.0.0.1", 1).sni is None
    evidence = Evidence()
    policy = _policy(tls_servers)
    report = probe_endpoint(
        Endpoint("localhost", tls_servers["tls12plus"].port), timeout=TIMEOUT, ca_bundle=policy.tls.ca_bundle
    )
    judge_tls(report, policy, evidence, require_h2=False)
    assert [o.actual for o in evidence.observations if o.name.endswith(" SNI")] == ["localhost"]
    assert evidence.failures == ()


def test_expiry_warns_before_it_fails(test_ca: CertAuthority) -> None:
    soon = test_ca.issue("soon", days=20)
    with ThreadedTlsServer(server_context(soon)) as server:
        policy = Policy(tls=TlsSection(ca_bundle=str(test_ca.cert)))
        report = probe_endpoint(_endpoint(server.port), timeout=TIMEOUT, ca_bundle=policy.tls.ca_bundle)
        evidence = Evidence()
        judge_tls(report, policy, evidence, require_h2=False)
        assert evidence.failures == ()
        assert [o.name for o in evidence.warnings] == [f"127.0.0.1:{server.port} certificate renewal"]
        strict = Policy(tls=TlsSection(ca_bundle=str(test_ca.cert), cert_min_days_left=30))
        evidence = Evidence()
        judge_tls(report, strict, evidence, require_h2=False)
        assert [o.verdict for o in evidence.observations if "expiry" in o.name] == [Verdict.FAIL]


def test_silent_server_times_out_within_the_timeout(tls_servers: Servers) -> None:
    started = time.monotonic()
    with pytest.raises(ProbeTimeout, match="no answer within 1s"):
        probe_endpoint(_endpoint(tls_servers.silent_port), timeout=1.0)
    assert time.monotonic() - started < 2.5
    assert issubclass(ProbeTimeout, EvidenceUnavailable)


def test_refused_endpoint_is_unavailable_evidence() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    with pytest.raises(ProbeError, match="TCP connect failed"):
        probe_endpoint(_endpoint(port), timeout=TIMEOUT)


def test_inconclusive_versions_make_the_control_an_error(tls_servers: Servers) -> None:
    evidence = Evidence()
    evidence.expect("something", expected="x", actual="x", ok=True)
    with pytest.raises(EvidenceUnavailable, match="TLSv1 is accepted is unknown"):
        finish(evidence, ["127.0.0.1:1: whether TLSv1 is accepted is unknown (timeout)"])


@pytest.mark.parametrize(
    ("cipher", "version", "problems"),
    [
        ("TLS_AES_256_GCM_SHA384", "TLSv1.3", []),
        ("ECDHE-RSA-AES128-GCM-SHA256", "TLSv1.2", []),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLSv1.2", []),
        ("DHE-RSA-AES256-GCM-SHA384", "TLSv1.2", []),
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLSv1.2", []),
        ("ECDHE-RSA-AES128-SHA256", "TLSv1.2", [CBC]),
        ("AES128-GCM-SHA256", "TLSv1.2", [NFS]),
        ("DES-CBC3-SHA", "TLSv1.2", ["3DES", NFS, CBC]),
        ("ECDHE-RSA-RC4-SHA", "TLSv1.2", ["RC4", CBC]),
        ("EXP-RC4-MD5", "TLSv1.2", ["export-grade", "RC4", "MD5", NFS,
                                    CBC]),
        ("ECDHE-RSA-NULL-SHA", "TLSv1.2", ["NULL encryption", CBC]),
        ("ADH-AES128-GCM-SHA256", "TLSv1.2", ["anonymous key exchange", NFS]),
        ("TLS_DH_anon_WITH_AES_128_GCM_SHA256", "TLSv1.2",
         ["anonymous key exchange", NFS]),
        ("DES-CBC-SHA", "TLSv1.2", ["DES", NFS, CBC]),
    ],
)  # fmt: skip
def test_cipher_problems(cipher: str, version: str, problems: list[str]) -> None:
    assert cipher_problems(cipher, version) == problems


def test_expiry_is_measured_in_days(test_ca: CertAuthority) -> None:
    from pytest_secagent.network.x509 import days_left

    now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    assert days_left(now + dt.timedelta(days=14, hours=1), now) == 14
    assert days_left(now - dt.timedelta(hours=1), now) == -1
