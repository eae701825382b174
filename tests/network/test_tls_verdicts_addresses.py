"""Every address behind a name is a server of its own: each is probed, judged and named.

A network namespace resolves ``dual.test`` to 127.0.0.1 and ::1 (A and AAAA) and
``pair.test`` to 127.0.0.1 and 127.0.0.2 (two A records) through its own hosts file;
each case puts a different server, or none, on each address and runs the plugin inside
the namespace as a user would.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.network.certs import CertAuthority, Issued
from tests.network.servers import openssl_server
from tests.network.topology import namespace_with_hosts
from tests.support import require_root, require_tool

pytestmark = [pytest.mark.needs("netns"), pytest.mark.needs("openssl")]

TIMEOUT = 3.0
NAMES = {"A+AAAA": ("dual.test", ("::1", "127.0.0.1")), "A+A": ("pair.test", ("127.0.0.1", "127.0.0.2"))}
HOSTS = "127.0.0.1 localhost\n127.0.0.1 dual.test pair.test\n::1 dual.test\n127.0.0.2 pair.test\n"
SERVERS = {
    "strong": ("-no_tls1", "-no_tls1_1"),
    "tls10": ("-cipher", "ALL:@SECLEVEL=0"),
    "client_cert": ("-cipher", "ALL:!aNULL:@SECLEVEL=0", "-Verify", "1"),
}


@dataclass
class Namespace:
    """The namespace, the certificate its servers present, and a port for each case."""

    name: str
    workdir: Path
    issued: Issued
    ports: Iterator[int]

    @contextlib.contextmanager
    def servers(self, kinds: dict[str, str | None]) -> Iterator[int]:
        """Run the server of ``kinds[address]`` on each address, all on one new port."""
        port = next(self.ports)
        with contextlib.ExitStack() as stack:
            for address, kind in kinds.items():
                if kind is not None:
                    stack.enter_context(
                        openssl_server(self.issued, self.workdir, *SERVERS[kind], address=address, port=port,
                                       prefix=("ip", "netns", "exec", self.name))
                    )  # fmt: skip
            yield port


@pytest.fixture(scope="module")
def namespace(tmp_path_factory: pytest.TempPathFactory, test_ca: CertAuthority) -> Iterator[Namespace]:
    require_root()
    require_tool("ip", "iproute2")
    require_tool("openssl", "openssl")
    issued = test_ca.issue("addresses", dns=("dual.test", "pair.test"), ips=("127.0.0.1", "127.0.0.2", "::1"))
    with namespace_with_hosts(f"sa-tls-{secrets.token_hex(3)}", HOSTS) as name:
        yield Namespace(name, tmp_path_factory.mktemp("addresses"), issued, itertools.count(8443))


def _run(
    pytester: pytest.Pytester, namespace: Namespace, host: str, port: int, ca: CertAuthority, *, atlan: bool
) -> tuple[pytest.RunResult, dict[str, Any]]:
    network = {"atlan_endpoints": [f"{host}:{port}"]} if atlan else {}
    pytester.makefile(
        ".yaml", policy=yaml.safe_dump({"tls": {"ca_bundle": str(ca.cert)}, "network": network})
    )
    result = pytester.run(
        "ip", "netns", "exec", namespace.name, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
        f"--secagent-target=tls://{host}:{port}", "--secagent-policy=policy.yaml",
        f"--secagent-controls={'SA-NET-007' if atlan else 'SA-NET-008'}", f"--secagent-timeout={TIMEOUT:g}",
        "--secagent-json=results.json",
        timeout=180,
    )  # fmt: skip
    report = json.loads((pytester.path / "results.json").read_text())
    return result, report


def _evidence(report: dict[str, Any], host: str, port: int) -> tuple[str, dict[str, dict[str, str]]]:
    """The outcome of the endpoint's control and its evidence by name."""
    [result] = [r for r in report["results"] if r["target"] == f"tls:{host}:{port}"]
    return result["outcome"], {e["name"]: e for e in result["evidence"]}


# servers on the first and the second address of the name, outcome, addresses that fail it
CASES = [
    pytest.param(("strong", "strong"), "passed", (), id="both-strong"),
    pytest.param(("strong", "tls10"), "failed", (1,), id="second-accepts-tls10"),
    pytest.param(("tls10", "strong"), "failed", (0,), id="first-accepts-tls10"),
    pytest.param(("strong", "client_cert"), "failed", (1,), id="second-requires-client-cert"),
    pytest.param(("strong", None), "error", (), id="second-unreachable"),
    pytest.param((None, "strong"), "error", (), id="first-unreachable"),
    pytest.param(("tls10", None), "failed", (0,), id="first-weak-second-unreachable"),
    pytest.param((None, None), "error", (), id="none-reachable"),
]


@pytest.mark.parametrize("family", list(NAMES))
@pytest.mark.parametrize(("kinds", "outcome", "weak"), CASES)
def test_each_address_is_judged(
    pytester: pytest.Pytester,
    namespace: Namespace,
    test_ca: CertAuthority,
    family: str,
    kinds: tuple[str | None, str | None],
    outcome: str,
    weak: tuple[int, ...],
) -> None:
    host, addresses = NAMES[family]
    with namespace.servers(dict(zip(addresses, kinds, strict=True))) as port:
        result, report = _run(pytester, namespace, host, port, test_ca, atlan=False)
    outcome_seen, evidence = _evidence(report, host, port)
    assert outcome_seen == outcome, result.stdout.str()
    # The addresses are named, and each is judged under its own name.
    assert set(evidence[f"{host}:{port} addresses"]["actual"].split(", ")) == set(addresses)
    for index, (address, kind) in enumerate(zip(addresses, kinds, strict=True)):
        where = f"{host}:{port} at {address}"
        if kind is None:
            assert evidence[where]["actual"].startswith(f"not probed: {where}: TCP connect failed"), evidence
            continue
        assert evidence[f"{where} handshake"]["verdict"] == "ok"
        assert evidence[f"{where} TLSv1"]["verdict"] == ("fail" if index in weak else "ok")
        assert evidence[f"{where} TLSv1.1"]["verdict"] == ("fail" if index in weak else "ok")


def test_weak_second_address_fails_sa_net_007(
    pytester: pytest.Pytester, namespace: Namespace, test_ca: CertAuthority
) -> None:
    host, addresses = NAMES["A+AAAA"]
    with namespace.servers(dict(zip(addresses, ("strong", "tls10"), strict=True))) as port:
        result, _ = _run(pytester, namespace, host, port, test_ca, atlan=True)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"*{host}:{port} at {addresses[1]} TLSv1: expected rejected (older than TLSv1.2); observed accepted: *"
        ]
    )
    result.stdout.no_fnmatch_line(
        f"*{host}:{port} at {addresses[0]} TLSv1: expected rejected*observed accepted*"
    )


_LIBRARY_CHECK = """
import sys
from pytest_secagent.network.tls import Endpoint, ProbeError, probe_addresses, probe_endpoint, resolve_addresses

host, port = sys.argv[1], int(sys.argv[2])
print("resolved", *sorted(str(e.address) for e in resolve_addresses(Endpoint(host, port), timeout=3)))
try:
    probe_endpoint(Endpoint(host, port), timeout=3)
except ProbeError as exc:
    print("refused:", exc)
for probe in probe_addresses(Endpoint(host, port), timeout=3, max_addresses=1):
    print("probe", probe.endpoint.address, probe.report is not None, probe.error)
"""


@pytest.mark.parametrize("family", list(NAMES))
def test_library_never_reports_one_address_for_a_name(namespace: Namespace, family: str) -> None:
    host, addresses = NAMES[family]
    with namespace.servers(dict.fromkeys(addresses, "strong")) as port:
        done = subprocess.run(
            ["ip", "netns", "exec", namespace.name, sys.executable, "-c", _LIBRARY_CHECK, host, str(port)],
            capture_output=True, text=True, timeout=120, check=True, cwd=Path(__file__).parents[2],
        )  # fmt: skip
    lines = done.stdout.splitlines()
    assert lines[0] == "resolved " + " ".join(sorted(addresses))
    # One report covers one server: a name with two addresses is not silently cut to one.
    assert lines[1].startswith(f"refused: {host}:{port}: {host} resolves to 2 addresses")
    probed, beyond = lines[2:]
    assert probed.endswith(" True None")
    assert beyond.endswith(
        " False " + f"{host}:{port} at {beyond.split()[1]}: not probed, beyond the first 1 addresses"
    )
