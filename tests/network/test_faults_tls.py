"""The TLS controls under faults: every fault kind against SA-NET-007 and SA-NET-008, run by the plugin.

Each fault stands in front of a server that passes both controls (TLS 1.2 and 1.3 only, a
certificate from the tests' CA): a server that drips its answer one byte a second, one that
reads the ClientHello and says nothing, one that stalls after its ServerHello, one that
resets after it, one that answers with bytes that are not TLS, and a resolver that never
answers (in a network namespace whose ``resolv.conf`` names a silent UDP socket). Each runs
against SA-NET-007 (an Atlan endpoint target), SA-NET-008 (a dependency endpoint target) and
SA-NET-008 on the policy (``network.dependencies``). No control that needed the faulted
endpoint passes, each finishes within the deadline plus a margin, and the JSON and JUnit
reports stay valid.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pytest_secagent.json_report import schema
from tests.network.conftest import Servers
from tests.network.servers import Fault, FaultyServer
from tests.network.topology import PATIENT_RESOLVER, namespace_with_hosts, silent_resolver
from tests.results.helpers import junit_schema_errors
from tests.support import require_root, require_tool

pytestmark = pytest.mark.needs("openssl")

TIMEOUT = 2.0
"""``--secagent-timeout`` of every run: the deadline of one endpoint's whole probe."""
MARGIN = 3.0
"""How much longer than the deadline a control may take (start-up, judging, reports)."""
LIMIT_HIT = r"(resolve|connect|handshake|read) limit hit after \d+\.\ds"
SILENT_NAME = "silent.test"


@dataclass(frozen=True)
class FaultKind:
    """One way the endpoint misbehaves, and what the control must make of it."""

    fault: Fault | None  # None: the resolver is the one at fault
    outcome: str
    says: str  # a pattern the control's detail or evidence must match


# The fault kinds. A reset or an answer that is not TLS is the server's answer, so the
# handshake it breaks is a finding; a deadline is never one, so those are errors.
FAULTS = {
    "drip": FaultKind(Fault.DRIP, "error", r"nothing more within 2s \(read limit hit after"),
    "stall-after-connect": FaultKind(
        Fault.STALL, "error", r"no answer within 2s \(handshake limit hit after"
    ),
    "stall-after-server-hello": FaultKind(
        Fault.HELLO_THEN_STALL, "error", r"ServerHello, then nothing more within 2s \(read limit hit after"
    ),
    "reset": FaultKind(Fault.HELLO_THEN_RESET, "failed", r"handshake: .*(reset|closed the connection)"),
    "garbage": FaultKind(Fault.GARBAGE, "failed", r"handshake: .*WRONG_VERSION_NUMBER|not a TLS handshake"),
    "silent-resolver": FaultKind(
        None, "error", r"resolving silent\.test got no answer within 2s \(resolve limit"
    ),
}
# How the faulted endpoint reaches each control: as an Atlan endpoint target, as a
# dependency endpoint target, or as an entry of the policy's network.dependencies.
CONTROLS = {"SA-NET-007": "endpoint", "SA-NET-008": "endpoint", "SA-NET-008-policy": "policy"}


@pytest.fixture(scope="module")
def faulty_ports(tls_servers: Servers) -> Iterator[dict[Fault, int]]:
    """One faulty server per fault kind on loopback, each in front of the passing server."""
    upstream = tls_servers["tls12plus"].port
    wanted = [kind.fault for kind in FAULTS.values() if kind.fault is not None]
    with contextlib.ExitStack() as stack:
        yield {fault: stack.enter_context(FaultyServer(fault, upstream)).port for fault in wanted}


@pytest.fixture(scope="module")
def silent_namespace() -> Iterator[str]:
    """A namespace whose resolver (a UDP socket on its 127.0.0.1:53) never answers."""
    require_root()
    require_tool("ip", "iproute2")
    name = f"sa-tlsf-{secrets.token_hex(3)}"
    with namespace_with_hosts(name, "127.0.0.1 localhost\n", PATIENT_RESOLVER), silent_resolver(name):
        yield name


def _policy(servers: Servers, control: str, spec: str) -> dict[str, Any]:
    network: dict[str, list[str]] = {}
    if control == "SA-NET-007":
        network["atlan_endpoints"] = [spec]
    if control == "SA-NET-008-policy":
        network["dependencies"] = [spec]
    return {"tls": {"ca_bundle": str(servers.ca.cert)}, "network": network}


def _arguments(control: str, host: str, port: int) -> list[str]:
    target = [] if CONTROLS[control] == "policy" else [f"--secagent-target=tls://{host}:{port}"]
    return [
        "-p", "no:cacheprovider", "-rA", *target, "--secagent-policy=policy.yaml",
        f"--secagent-controls={control.removesuffix('-policy')}", f"--secagent-timeout={TIMEOUT:g}",
        "--secagent-json=results.json", "--junitxml=junit.xml",
    ]  # fmt: skip


def _run(
    pytester: pytest.Pytester,
    servers: Servers,
    control: str,
    host: str,
    port: int,
    namespace: str | None = None,
) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run the control as a user would (inside ``namespace`` when given); the JSON report."""
    pytester.makefile(".yaml", policy=yaml.safe_dump(_policy(servers, control, f"{host}:{port}")))
    arguments = _arguments(control, host, port)
    if namespace is None:
        result = pytester.runpytest(*arguments)
    else:
        result = pytester.run(
            "ip", "netns", "exec", namespace, sys.executable, "-m", "pytest", *arguments, timeout=120
        )
    document: dict[str, Any] = json.loads((pytester.path / "results.json").read_text())
    return result, document


def _probing(document: dict[str, Any], control: str) -> list[dict[str, Any]]:
    """The records of the controls that probed the faulted endpoint."""
    where = CONTROLS[control]
    return [
        r for r in document["results"]
        if r["control_id"] in ("SA-NET-007", "SA-NET-008") and r["outcome"] != "skipped"
        and ((r["target"] == "policy") == (where == "policy"))
    ]  # fmt: skip


def _said(record: dict[str, Any]) -> str:
    lines = [record["detail"], *(f"{e['name']}: {e['actual']}" for e in record["evidence"])]
    return "\n".join(lines)


def _check_reports(pytester: pytest.Pytester, document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker()).validate(document)
    assert junit_schema_errors(pytester.path / "junit.xml") == []


@pytest.mark.parametrize("size", [len(FAULTS) * len(CONTROLS)], ids=lambda size: f"{size}-cases")
def test_fault_matrix_size(size: int) -> None:
    """The size of the matrix, in the test's ID (``-v``, JUnit) and its output (``-rP``)."""
    print(f"TLS fault matrix: {len(FAULTS)} fault kinds x {len(CONTROLS)} controls = {size} cases")
    assert (len(FAULTS), len(CONTROLS), size) == (6, 3, 18)


@pytest.mark.parametrize("control", list(CONTROLS))
@pytest.mark.parametrize("kind", list(FAULTS))
def test_tls_control_under_fault(
    pytester: pytest.Pytester,
    tls_servers: Servers,
    faulty_ports: dict[Fault, int],
    request: pytest.FixtureRequest,
    kind: str,
    control: str,
) -> None:
    fault = FAULTS[kind]
    if fault.fault is None:
        namespace = request.getfixturevalue("silent_namespace")
        result, document = _run(pytester, tls_servers, control, SILENT_NAME, 443, namespace)
    else:
        result, document = _run(pytester, tls_servers, control, "127.0.0.1", faulty_ports[fault.fault])
    [record] = _probing(document, control)
    assert record["outcome"] == fault.outcome, result.stdout.str()
    assert re.search(fault.says, _said(record)), _said(record)
    if fault.outcome == "error":
        assert re.search(LIMIT_HIT, record["detail"]), record["detail"]
    assert record["timing"]["duration_seconds"] < TIMEOUT + MARGIN, record["timing"]
    _check_reports(pytester, document)


@pytest.mark.parametrize("control", list(CONTROLS))
def test_the_same_server_passes_without_a_fault(
    pytester: pytest.Pytester, tls_servers: Servers, control: str
) -> None:
    # The matrix is not vacuous: unfaulted, the server behind every fault passes.
    _, document = _run(pytester, tls_servers, control, "127.0.0.1", tls_servers["tls12plus"].port)
    [record] = _probing(document, control)
    assert record["outcome"] == "passed", _said(record)
    _check_reports(pytester, document)


_LOCAL_RESOLVE = """
import sys, time
from pytest_secagent.network.reachability import Destination, LocalVantage
from pytest_secagent.network.tls import ProbeTimeout

vantage = LocalVantage(timeout=float(sys.argv[2]))
started = time.monotonic()
try:
    vantage.resolve(sys.argv[1])
except ProbeTimeout as exc:
    print(f"{time.monotonic() - started:.2f}", exc)
print(vantage.connect(Destination(sys.argv[1], 443), timeout=float(sys.argv[2])).detail)
"""


def test_silent_resolver_holds_no_active_probe_longer_than_the_deadline(silent_namespace: str) -> None:
    # SA-NET-005/006 resolve from this machine too: the same deadline holds there.
    done = subprocess.run(
        ["ip", "netns", "exec", silent_namespace, sys.executable, "-c", _LOCAL_RESOLVE, SILENT_NAME, "2"],
        capture_output=True, text=True, timeout=60, check=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    resolved, connected = done.stdout.splitlines()
    elapsed, message = resolved.split(" ", 1)
    assert float(elapsed) < TIMEOUT + 1
    limit = r"resolving silent\.test got no answer within 2s \(resolve limit hit after 2\.\ds\)"
    assert re.fullmatch(limit, message)
    assert re.fullmatch(limit, connected)
