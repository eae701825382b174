"""Destinations, allow-list matching, and the probes from this machine and through a host connection."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from pytest_secagent.host.local import LocalConnection
from pytest_secagent.network.controls import is_atlan_endpoint, needs_h2
from pytest_secagent.network.reachability import (
    ConnectStatus,
    Destination,
    HostVantage,
    LocalVantage,
    Vantage,
    allow_list_match,
    host_matches,
)
from pytest_secagent.policy.model import NetworkSection, OutboundRule, Policy
from tests.network.conftest import Servers
from tests.support import require_tool

TIMEOUT = 5.0


@pytest.mark.parametrize(
    ("spec", "host", "port"),
    [
        ("acme.atlan.com:443", "acme.atlan.com", 443),
        ("ACME.Atlan.com.", "acme.atlan.com", 443),
        ("10.0.0.1:8080", "10.0.0.1", 8080),
        ("[::1]:9443", "::1", 9443),
    ],
)
def test_destination_parse(spec: str, host: str, port: int) -> None:
    assert Destination.parse(spec) == Destination(host, port)


@pytest.mark.parametrize("spec", ["", "host:0", "host:70000", "a b:1", "http://x:1", "::1:443"])
def test_destination_parse_rejects(spec: str) -> None:
    with pytest.raises(ValueError, match=r"HOST:PORT|port"):
        Destination.parse(spec)


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("*.atlan.com", "acme.atlan.com", True),
        ("*.atlan.com", "a.b.atlan.com", True),
        ("*.atlan.com", "ACME.ATLAN.COM.", True),
        ("*.atlan.com", "atlan.com", False),
        ("*.atlan.com", "evilatlan.com", False),
        ("*.atlan.com", "atlan.com.evil.net", False),
        ("acme.atlan.com", "acme.atlan.com", True),
        ("acme.atlan.com", "x.acme.atlan.com", False),
    ],
)
def test_host_matches(pattern: str, host: str, matches: bool) -> None:
    assert host_matches(pattern, host) is matches


RULES = [
    OutboundRule(destination="*.atlan.com", port=443, protocol="HTTPS"),
    OutboundRule(destination="10.20.0.0/16", port=443, protocol="TLS"),
    OutboundRule(destination="192.0.2.7", port=8443, protocol="TCP"),
    OutboundRule(destination="198.51.100.0/24", port=53, protocol="UDP"),
]


@pytest.mark.parametrize(
    ("host", "port", "addresses", "allowed_by"),
    [
        ("acme.atlan.com", 443, (), "*.atlan.com"),
        ("acme.atlan.com", 80, (), None),
        ("atlan.com", 443, (), None),
        ("10.20.3.4", 443, (), "10.20.0.0/16"),
        ("10.21.3.4", 443, (), None),
        ("registry.example", 443, ("10.20.9.9",), "10.20.0.0/16"),
        ("registry.example", 443, ("10.99.9.9",), None),
        ("192.0.2.7", 8443, (), "192.0.2.7"),
        ("198.51.100.1", 53, (), None),
    ],
)
def test_allow_list_match(host: str, port: int, addresses: tuple[str, ...], allowed_by: str | None) -> None:
    rule = allow_list_match(RULES, host, port, addresses)
    assert (rule.destination if rule else None) == allowed_by


def test_default_allow_list_is_atlan_443() -> None:
    rules = Policy().firewall_rules.outbound_allowed
    assert allow_list_match(rules, "acme-temporal.atlan.com", 443) is not None
    assert allow_list_match(rules, "example.com", 443) is None


@pytest.mark.parametrize(
    ("host", "port", "atlan", "grpc"),
    [
        ("acme.atlan.com", 443, True, False),
        ("acme-temporal.atlan.com", 443, True, True),
        ("127.0.0.1", 9000, True, True),
        ("127.0.0.1", 9001, False, False),
        ("registry-1.docker.io", 443, False, False),
    ],
)
def test_atlan_and_grpc_classification(host: str, port: int, atlan: bool, grpc: bool) -> None:
    policy = Policy(
        network=NetworkSection(atlan_endpoints=["127.0.0.1:9000"], grpc_endpoints=["127.0.0.1:9000"])
    )
    assert is_atlan_endpoint(host, port, policy) is atlan
    assert needs_h2(host, port, policy) is grpc


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(params=["local", "host-connection"])
def vantage(request: pytest.FixtureRequest) -> Iterator[Vantage]:
    if request.param == "local":
        yield LocalVantage()
        return
    for tool in ("bash", "timeout", "getent", "openssl"):
        require_tool(tool, "coreutils, bash, libc-bin, openssl")
    connection = LocalConnection("local", timeout=TIMEOUT)
    try:
        yield HostVantage(connection)
    finally:
        connection.close()


def test_connect_statuses(vantage: Vantage, tls_servers: Servers) -> None:
    open_port = tls_servers["tls12plus"].port
    assert (
        vantage.connect(Destination("127.0.0.1", open_port), timeout=TIMEOUT).status
        is ConnectStatus.CONNECTED
    )
    assert (
        vantage.connect(Destination("localhost", open_port), timeout=TIMEOUT).status
        is ConnectStatus.CONNECTED
    )
    refused = vantage.connect(Destination("127.0.0.1", _closed_port()), timeout=TIMEOUT)
    assert refused.status is ConnectStatus.REFUSED
    assert refused.status.blocked
    unresolved = vantage.connect(Destination("no-such-host.invalid", 443), timeout=TIMEOUT)
    assert unresolved.status is ConnectStatus.UNRESOLVED


def test_resolve(vantage: Vantage) -> None:
    assert "127.0.0.1" in vantage.resolve("localhost")
    assert vantage.resolve("10.1.2.3") == ("10.1.2.3",)
    assert vantage.resolve("no-such-host.invalid") == ()


def test_verified_tls(vantage: Vantage, tls_servers: Servers) -> None:
    bundle = str(tls_servers.ca.cert)
    good = vantage.tls(Destination("127.0.0.1", tls_servers["h2"].port), timeout=TIMEOUT, ca_bundle=bundle)
    assert good.verified, good.error
    assert good.alpn == "h2"
    assert good.version == "TLSv1.3"
    by_name = vantage.tls(
        Destination("localhost", tls_servers["tls12plus"].port), timeout=TIMEOUT, ca_bundle=bundle
    )
    assert by_name.verified, by_name.error
    assert by_name.alpn == "http/1.1"
    for name in ("wrong_host", "self_signed", "expired"):
        bad = vantage.tls(Destination("127.0.0.1", tls_servers[name].port), timeout=TIMEOUT, ca_bundle=bundle)
        assert not bad.verified, name
        assert bad.error
    untrusted = vantage.tls(Destination("127.0.0.1", tls_servers["tls12plus"].port), timeout=TIMEOUT)
    assert not untrusted.verified


def test_silent_server_tls_times_out(vantage: Vantage, tls_servers: Servers) -> None:
    result = vantage.tls(Destination("127.0.0.1", tls_servers.silent_port), timeout=1.0)
    assert not result.verified
    assert result.error is not None
    assert "1s" in result.error
