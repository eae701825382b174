"""The TLS test servers, started once per session on 127.0.0.1 and stopped at the end."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.network.certs import CertAuthority, self_signed
from tests.network.servers import ThreadedTlsServer, openssl_server, server_context, silent_server
from tests.support import require_tool

LEGACY = "ALL:@SECLEVEL=0"
SERVER_NAMES = (
    "tls12plus",
    "tls13only",
    "h2",
    "expired",
    "self_signed",
    "wrong_host",
    "tls10plus",
    "tls10_11",
    "weak_cipher",
    "client_cert",
)


@dataclass(frozen=True)
class TestServer:
    """One running test server and what it is expected to accept."""

    name: str
    port: int
    accepts: frozenset[str]
    ca_bundle: str

    @property
    def uri(self) -> str:
        return f"tls://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Servers:
    """Every TLS test server by name, plus the silent one."""

    by_name: dict[str, TestServer]
    silent_port: int
    ca: CertAuthority

    def __getitem__(self, name: str) -> TestServer:
        return self.by_name[name]


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    """The tests' own CA; policies name its certificate as tls.ca_bundle."""
    return CertAuthority(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def tls_servers(tmp_path_factory: pytest.TempPathFactory, test_ca: CertAuthority) -> Iterator[Servers]:
    """The server matrix: versions, certificates, ciphers and ALPN, each on its own port."""
    require_tool("openssl", "openssl")
    workdir = tmp_path_factory.mktemp("servers")
    good = test_ca.issue("good")
    expired = test_ca.issue(
        "expired", not_before=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=30), days=10
    )
    wrong = test_ca.issue("wrong-host", dns=("other.example",), ips=())
    lonely = self_signed(workdir, "self-signed")
    bundle = str(test_ca.cert)
    python_servers = {
        "tls12plus": (server_context(good), {"TLSv1.2", "TLSv1.3"}),
        "tls13only": (server_context(good, versions=("TLSv1.3", "TLSv1.3")), {"TLSv1.3"}),
        "h2": (server_context(good, alpn=("h2", "http/1.1")), {"TLSv1.2", "TLSv1.3"}),
        "expired": (server_context(expired), {"TLSv1.2", "TLSv1.3"}),
        "self_signed": (server_context(lonely), {"TLSv1.2", "TLSv1.3"}),
        "wrong_host": (server_context(wrong), {"TLSv1.2", "TLSv1.3"}),
    }
    openssl_servers = {
        "tls10plus": (("-cipher", LEGACY), {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}),
        "tls10_11": (("-cipher", LEGACY, "-no_tls1_2", "-no_tls1_3"), {"TLSv1", "TLSv1.1"}),
        "weak_cipher": (
            ("-cipher", "AES128-SHA:@SECLEVEL=0", "-no_tls1", "-no_tls1_1", "-no_tls1_3"),
            {"TLSv1.2"},
        ),
        # Requires a client certificate: it agrees to every version, then ends the
        # handshake with an alert because the probe has no certificate to show.
        "client_cert": (
            ("-cipher", "ALL:!aNULL:@SECLEVEL=0", "-Verify", "1"),
            {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"},
        ),
    }
    with contextlib.ExitStack() as stack:
        found: dict[str, TestServer] = {}
        for name, (context, accepts) in python_servers.items():
            server = stack.enter_context(ThreadedTlsServer(context))
            found[name] = TestServer(name, server.port, frozenset(accepts), bundle)
        for name, (options, accepts) in openssl_servers.items():
            port = stack.enter_context(openssl_server(good, workdir, *options))
            found[name] = TestServer(name, port, frozenset(accepts), bundle)
        silent = stack.enter_context(silent_server())
        assert set(found) == set(SERVER_NAMES)
        yield Servers(found, silent, test_ca)


@pytest.fixture(scope="session")
def sslyze_verdicts(tls_servers: Servers) -> dict[int, frozenset[str]]:
    """The verdict of sslyze per server port: the versions it found accepted."""
    from tests.network.sslyze_scan import accepted_versions

    return accepted_versions(server.port for server in tls_servers.by_name.values())
