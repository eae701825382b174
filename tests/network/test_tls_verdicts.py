"""TLS version verdicts decided from what the server put on the wire.

A server that chose the offered version in its ServerHello accepted it, however the
handshake ends afterwards (an alert because the probe has no client certificate, a
reset, a close, a stall). A server refused the version when it sent ``protocol_version``
before any ServerHello, a ServerHello for another version, or closed without a word.
Answers that are not TLS, or that stop in the middle, are unknown: they never pass.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest

from pytest_secagent.evidence import ControlFailed, Evidence
from pytest_secagent.network.controls import check_tls, finish
from pytest_secagent.network.tls import (
    Acceptance,
    Endpoint,
    HandshakeStalled,
    handshake,
    local_offer_problem,
    probe_endpoint,
    probe_version,
)
from pytest_secagent.network.x509 import read_certificate
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy, TlsSection
from tests.network.conftest import Servers
from tests.network.servers import Fault, FaultyServer

pytestmark = pytest.mark.needs("openssl")

TIMEOUT = 3.0
STALL_TIMEOUT = 1.0
VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
LEGACY_VERSIONS = ("TLSv1", "TLSv1.1")
# For each version, a test server whose own configuration refuses it.
REFUSES = {"TLSv1": "tls12plus", "TLSv1.1": "tls12plus", "TLSv1.2": "tls13only", "TLSv1.3": "tls10_11"}
ACCEPTED, REJECTED, INCONCLUSIVE = Acceptance.ACCEPTED, Acceptance.REJECTED, Acceptance.INCONCLUSIVE


@pytest.fixture(scope="module")
def faulty(tls_servers: Servers) -> Iterator[dict[Fault, int]]:
    """One faulty server per fault, in front of the server that accepts every version."""
    upstream = tls_servers["tls10plus"].port
    with contextlib.ExitStack() as stack:
        yield {fault: stack.enter_context(FaultyServer(fault, upstream)).port for fault in Fault}


def _port(servers: Servers, faulty: dict[Fault, int], server: str, version: str) -> int:
    if server == "silent":
        return servers.silent_port
    if server == "refuses":
        return servers[REFUSES[version]].port
    if server in servers.by_name:
        return servers[server].port
    return faulty[Fault[server.upper()]]


def _offerable(version: str) -> None:
    problem = local_offer_problem(version)
    if problem is not None:
        pytest.skip(f"this machine cannot offer {version} ({problem}); the probe calls that inconclusive")


# server, expected verdict, what the evidence must say for versions up to TLS 1.2 / for TLS 1.3
VERSION_CASES = [
    pytest.param(
        "client_cert", ACCEPTED,
        r"^the server chose {v} in its ServerHello, then sent alert handshake_failure \(40\) after its "
        r"ServerHello, Certificate, .*CertificateRequest, ServerHelloDone$",
        r"^negotiated TLS_",  # TLS 1.3: the client finishes first; the server's alert comes after
        id="requires-client-cert",
    ),
    pytest.param(
        "hello_then_reset", ACCEPTED,
        r"^the server chose {v} in its ServerHello, then reset the connection after its ServerHello$", None,
        id="hello-then-reset",
    ),
    pytest.param(
        "hello_then_close", ACCEPTED,
        r"^the server chose {v} in its ServerHello, then closed the connection after its ServerHello$", None,
        id="hello-then-close",
    ),
    pytest.param(
        "refuses", REJECTED,
        r"^the server refused it with alert protocol_version \(70\) before any ServerHello$", None,
        id="protocol-version-alert",
    ),
    pytest.param(
        "close_silently", REJECTED, r"^the server closed the connection without a ServerHello$", None,
        id="closes-without-a-word",
    ),
    pytest.param(
        "reset_silently", REJECTED, r"^the server reset the connection without a ServerHello$", None,
        id="resets-without-a-word",
    ),
    pytest.param(
        "other_version", REJECTED, r"^the server answered with a ServerHello for TLSv1(\.2)?$", None,
        id="hello-for-another-version",
    ),
]  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("server", "verdict", "detail", "detail13"), VERSION_CASES)
def test_version_verdict_follows_the_wire(
    tls_servers: Servers,
    faulty: dict[Fault, int],
    server: str,
    verdict: Acceptance,
    detail: str,
    detail13: str | None,
    version: str,
) -> None:
    _offerable(version)
    port = _port(tls_servers, faulty, server, version)
    result = probe_version(Endpoint("127.0.0.1", port), version, timeout=TIMEOUT)
    assert result.acceptance is verdict, result.detail
    pattern = detail13 if version == "TLSv1.3" and detail13 else detail.replace("{v}", re.escape(version))
    assert re.search(pattern, result.detail), result.detail
    if verdict is ACCEPTED:
        assert result.cipher  # read from the ServerHello when the handshake never finished
    if server == "client_cert":
        # Sent in clear before the alert (below TLS 1.3), or at the end of the handshake.
        assert result.certificate is not None
        read_certificate(result.certificate)
    if verdict is not ACCEPTED:
        assert result.cipher is None


# server, outcome of SA-NET-007/008's judgement at a TLS 1.2 floor, the versions that fail it
CONTROL_CASES = [
    pytest.param("client_cert", "failed", {"TLSv1", "TLSv1.1"}, id="requires-client-cert"),
    pytest.param("hello_then_reset", "failed", {"handshake", "TLSv1", "TLSv1.1"}, id="hello-then-reset"),
    pytest.param("hello_then_close", "failed", {"handshake", "TLSv1", "TLSv1.1"}, id="hello-then-close"),
    # A handshake the deadline cut off is unknown, not failed; what the server accepted still fails it.
    pytest.param("hello_then_stall", "failed", {"TLSv1", "TLSv1.1"}, id="hello-then-stall"),
    pytest.param("close_silently", "failed", {"handshake"}, id="closes-without-a-word"),
    pytest.param("reset_silently", "failed", {"handshake"}, id="resets-without-a-word"),
    pytest.param("garbage", "failed", {"handshake"}, id="garbage"),
    pytest.param("http", "failed", {"handshake"}, id="plain-http"),
    pytest.param("cut_hello_close", "failed", {"handshake"}, id="hello-cut-then-close"),
    pytest.param("cut_hello_stall", "error", set(), id="hello-cut-then-stall"),
    pytest.param("silent", "error", set(), id="says-nothing"),
    pytest.param("tls12plus", "passed", set(), id="refuses-old-versions"),
]


def _control(endpoint: Endpoint, servers: Servers, timeout: float) -> tuple[str, Evidence, str]:
    policy = Policy(tls=TlsSection(ca_bundle=str(servers.ca.cert)))
    evidence = Evidence()
    try:
        finish(evidence, check_tls(endpoint, policy, timeout, evidence))
    except ControlFailed as exc:
        return "failed", evidence, str(exc)
    except EvidenceUnavailable as exc:
        return "error", evidence, str(exc)
    return "passed", evidence, ""


@pytest.mark.parametrize(("server", "outcome", "failing"), CONTROL_CASES)
def test_control_verdict(
    tls_servers: Servers, faulty: dict[Fault, int], server: str, outcome: str, failing: set[str]
) -> None:
    port = _port(tls_servers, faulty, server, "TLSv1")
    stalls = "stall" in server or server == "silent"
    got, evidence, message = _control(
        Endpoint("127.0.0.1", port), tls_servers, STALL_TIMEOUT if stalls else TIMEOUT
    )
    assert got == outcome, message
    failed = {o.name.split(" ", 1)[1] for o in evidence.failures}
    assert failing <= failed, failed
    assert not {f for f in failed if f.startswith("TLSv")} - failing


# The reader of the handshake fed partial and unknown states: none of them is a refusal.
PARTIAL_CASES = [
    pytest.param("garbage", INCONCLUSIVE, r"^the server's answer is not a TLS handshake: bytes 3031323334 ",
                 id="garbage"),
    pytest.param("http", INCONCLUSIVE, r"^the server's answer is not a TLS handshake: bytes 485454502f ",
                 id="plain-http"),
    pytest.param("hello_then_stall", ACCEPTED,
                 r"^the server chose {v} in its ServerHello, then sent nothing more within 1s",
                 id="hello-then-stall"),
    pytest.param("cut_hello_close", INCONCLUSIVE,
                 r"^the server sent \d+ bytes without a complete ServerHello \(cut off in the middle of a "
                 r"record\), then closed the connection; whether it accepts {v} is unknown$",
                 id="hello-cut-then-close"),
    pytest.param("cut_hello_stall", INCONCLUSIVE,
                 r"^the server sent \d+ bytes without a complete ServerHello \(cut off in the middle of a "
                 r"record\), then sent nothing more within 1s",
                 id="hello-cut-then-stall"),
]  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("server", "verdict", "detail"), PARTIAL_CASES)
def test_partial_handshake_is_never_a_refusal(
    tls_servers: Servers,
    faulty: dict[Fault, int],
    server: str,
    verdict: Acceptance,
    detail: str,
    version: str,
) -> None:
    _offerable(version)
    port = faulty[Fault[server.upper()]]
    result = probe_version(Endpoint("127.0.0.1", port), version, timeout=STALL_TIMEOUT)
    assert result.acceptance is verdict, result.detail
    assert re.search(detail.replace("{v}", re.escape(version)), result.detail), result.detail


def test_stall_after_server_hello_is_not_a_silent_server(faulty: dict[Fault, int]) -> None:
    endpoint = Endpoint("127.0.0.1", faulty[Fault.HELLO_THEN_STALL])
    with pytest.raises(HandshakeStalled, match=r"the server sent ServerHello, then nothing more within 1s"):
        handshake(endpoint, timeout=STALL_TIMEOUT, verify=False)
    # The version probes still run, and find the old versions accepted.
    report = probe_endpoint(endpoint, timeout=STALL_TIMEOUT)
    assert report.handshake is None
    assert report.handshake_error is not None
    assert "nothing more within 1s" in report.handshake_error
    assert {"TLSv1", "TLSv1.1"} <= set(report.accepted)


def test_client_cert_server_reports_what_it_negotiated(tls_servers: Servers) -> None:
    report = probe_endpoint(
        Endpoint("127.0.0.1", tls_servers["client_cert"].port),
        timeout=TIMEOUT,
        ca_bundle=str(tls_servers.ca.cert),
    )
    assert report.accepted == VERSIONS
    assert report.handshake is not None
    assert report.handshake.version == "TLSv1.3"
    tls12 = report.version("TLSv1.2")
    assert tls12.cipher is not None
    assert tls12.cipher.startswith("ECDHE-")
    assert report.certificate is not None
