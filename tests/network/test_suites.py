"""The network suites run by the plugin against the loopback TLS servers, as a user runs them."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import yaml

from tests.network.conftest import Servers

NET_TLS = "SA-NET-007,SA-NET-008"
NET_PROBES = "SA-NET-004,SA-NET-005,SA-NET-006"


def _run(
    pytester: pytest.Pytester, targets: list[str], policy: dict[str, Any], controls: str, *args: str
) -> pytest.RunResult:
    pytester.makefile(".yaml", policy=yaml.safe_dump(policy))
    options = [f"--secagent-target={t}" for t in targets]
    return pytester.runpytest(
        "-p", "no:cacheprovider", "-rA", *options, "--secagent-policy=policy.yaml",
        f"--secagent-controls={controls}", *args,
    )  # fmt: skip


def _policy(servers: Servers, **network: list[Any]) -> dict[str, Any]:
    return {"tls": {"ca_bundle": str(servers.ca.cert)}, "network": network}


def test_tls10_server_fails_sa_net_007(pytester: pytest.Pytester, tls_servers: Servers) -> None:
    server = tls_servers["tls10plus"]
    policy = _policy(tls_servers, atlan_endpoints=[f"127.0.0.1:{server.port}"])
    result = _run(pytester, [server.uri], policy, NET_TLS)
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            f"*127.0.0.1:{server.port} TLSv1: expected rejected (older than TLSv1.2); observed accepted: *",
            f"*127.0.0.1:{server.port} TLSv1.1: expected rejected (older than TLSv1.2); observed accepted: *",
            f"FAILED *test_atlan_endpoint_tls?SA-NET-007:tls:127.0.0.1:{server.port}?*",
        ]
    )
    result.stdout.fnmatch_lines(
        [f"SKIPPED *not applicable: tls:127.0.0.1:{server.port} is an Atlan endpoint; SA-NET-007 checks it"]
    )


@pytest.mark.parametrize("atlan", [True, False], ids=["SA-NET-007", "SA-NET-008"])
def test_server_requiring_a_client_cert_fails_on_old_versions(
    pytester: pytest.Pytester, tls_servers: Servers, atlan: bool
) -> None:
    # It agrees to TLS 1.0 in its ServerHello and only then ends the handshake with an
    # alert, because the probe has no client certificate: TLS 1.0 is accepted.
    server = tls_servers["client_cert"]
    endpoints = [f"127.0.0.1:{server.port}"] if atlan else []
    result = _run(pytester, [server.uri], _policy(tls_servers, atlan_endpoints=endpoints), NET_TLS)
    result.assert_outcomes(passed=1, failed=1, skipped=1)  # SA-NET-008 on the policy passes
    control = "SA-NET-007" if atlan else "SA-NET-008"
    test = "test_atlan_endpoint_tls" if atlan else "test_dependency_tls_and_ca_bundle"
    result.stdout.fnmatch_lines(
        [
            f"*127.0.0.1:{server.port} TLSv1: expected rejected (older than TLSv1.2); observed accepted: "
            "the server chose TLSv1 in its ServerHello, then sent alert handshake_failure (40) after its *"
            "CertificateRequest, ServerHelloDone*",
            f"FAILED *{test}?{control}:tls:127.0.0.1:{server.port}?*",
        ]
    )


def test_grpc_atlan_endpoint_with_h2_passes(pytester: pytest.Pytester, tls_servers: Servers) -> None:
    good, plain = tls_servers["h2"], tls_servers["tls12plus"]
    endpoints = [f"127.0.0.1:{good.port}", f"127.0.0.1:{plain.port}"]
    policy = _policy(tls_servers, atlan_endpoints=endpoints, grpc_endpoints=endpoints)
    result = _run(pytester, [good.uri, plain.uri], policy, "SA-NET-007")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*127.0.0.1:{plain.port} ALPN (gRPC/TLS): expected h2; observed http/1.1*",
            f"PASSED *test_atlan_endpoint_tls?SA-NET-007:tls:127.0.0.1:{good.port}?*",
        ]
    )


def test_dependency_endpoint_is_checked_by_sa_net_008(
    pytester: pytest.Pytester, tls_servers: Servers
) -> None:
    server = tls_servers["wrong_host"]
    result = _run(pytester, [server.uri], _policy(tls_servers), NET_TLS)
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*certificate names: expected a subject alternative name matching 127.0.0.1; "
            "observed other.example*",
            f"SKIPPED *not applicable: tls:127.0.0.1:{server.port} is not an Atlan endpoint*",
        ]
    )


def test_silent_server_errors_within_the_timeout(pytester: pytest.Pytester, tls_servers: Servers) -> None:
    target = f"tls://127.0.0.1:{tls_servers.silent_port}"
    policy = _policy(tls_servers, atlan_endpoints=[f"127.0.0.1:{tls_servers.silent_port}"])
    result = _run(pytester, [target], policy, "SA-NET-007", "--secagent-timeout=1", "--junitxml=j.xml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*could not verify SA-NET-007 on tls:127.0.0.1:*: *no answer within 1s*"])
    [case] = ET.parse(pytester.path / "j.xml").getroot().iter("testcase")
    assert float(case.get("time", "inf")) < 2.0


def test_policy_dependencies_and_ca_bundle(pytester: pytest.Pytester, tls_servers: Servers) -> None:
    good, expired = tls_servers["tls12plus"], tls_servers["expired"]
    policy = _policy(tls_servers, dependencies=[f"127.0.0.1:{good.port}", f"127.0.0.1:{expired.port}"])
    result = _run(pytester, [], policy, NET_TLS)
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            f"*127.0.0.1:{expired.port} certificate chain: expected verifies against *; "
            "observed certificate has expired*",
            "SKIPPED *not applicable: no endpoint target*",
            "FAILED *test_dependency_tls_and_ca_bundle?SA-NET-008:policy*",
        ]
    )
    result.stdout.no_fnmatch_line(f"*127.0.0.1:{good.port} * expected *")


def test_active_probes_are_off_by_default(pytester: pytest.Pytester, tls_servers: Servers) -> None:
    server = tls_servers["tls12plus"]
    policy = _policy(tls_servers, atlan_endpoints=[f"127.0.0.1:{server.port}"])
    result = _run(pytester, [server.uri], policy, NET_PROBES)
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(
        ["SKIPPED *not applicable: active probes are off; enable with --secagent-active-probes"] * 3
    )


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


def test_active_probes_on_loopback(pytester: pytest.Pytester, tls_servers: Servers) -> None:
    server, closed = tls_servers["h2"], _closed_port()
    policy = _policy(
        tls_servers,
        atlan_endpoints=[f"127.0.0.1:{server.port}"],
        grpc_endpoints=[f"127.0.0.1:{server.port}"],
        canaries=[f"127.0.0.1:{closed}"],
        inbound_addresses=["127.0.0.1"],
        inbound_ports=[closed],
    )
    policy["firewall_rules"] = {
        "outbound_allowed": [{"destination": "127.0.0.1/32", "port": server.port, "protocol": "gRPC/TLS"}]
    }
    result = _run(pytester, [server.uri], policy, NET_PROBES, "--secagent-active-probes")
    result.assert_outcomes(passed=3)
