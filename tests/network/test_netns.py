"""Active probes in network namespaces: allowed egress, blocked and open canaries, an inbound listener."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from pytest_secagent.evidence import Evidence
from pytest_secagent.network.controls import (
    ProbeCache,
    check_canaries,
    check_egress,
    check_inbound,
    finish,
)
from pytest_secagent.network.reachability import ConnectStatus, Destination, HostVantage
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import NetworkSection, Policy, TlsSection
from tests.network.certs import CertAuthority
from tests.network.topology import ATLAN, CANARY, INBOUND_PORT, TEMPORAL, Topology, egress_topology
from tests.support import require_root, require_tool

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, test_ca: CertAuthority) -> Iterator[Topology]:
    require_root()
    require_tool("ip", "iproute2")
    require_tool("nft", "nftables")
    require_tool("openssl", "openssl")
    with egress_topology(tmp_path_factory.mktemp("netns"), test_ca) as built:
        yield built


def _policy(topology: Topology, ca: CertAuthority, *, inbound: list[str], ports: list[int]) -> Policy:
    return Policy(
        tls=TlsSection(ca_bundle=str(ca.cert)),
        network=NetworkSection(
            atlan_endpoints=[f"{ATLAN}:443", f"{TEMPORAL}:443"],
            canaries=[f"{CANARY}:443"],
            inbound_addresses=inbound,
            inbound_ports=ports,
        ),
    )


def _vantage(topology: Topology, namespace: str) -> HostVantage:
    return HostVantage(topology.connection(namespace, timeout=TIMEOUT + 10))


def test_allowed_egress_passes_sa_net_005(topology: Topology, test_ca: CertAuthority) -> None:
    policy = _policy(topology, test_ca, inbound=[], ports=[])
    evidence = Evidence()
    vantage = _vantage(topology, topology.firewalled)
    for host in (ATLAN, TEMPORAL):
        check_egress([vantage], Destination(host, 443), policy, TIMEOUT, evidence)
    assert evidence.failures == ()
    assert any(o.name.endswith("ALPN (gRPC/TLS)") and o.actual == "h2" for o in evidence.observations)
    evidence.conclude()


def test_blocked_canary_passes_sa_net_006(topology: Topology, test_ca: CertAuthority) -> None:
    policy = _policy(topology, test_ca, inbound=[], ports=[])
    evidence, cache = Evidence(), ProbeCache()
    vantage = _vantage(topology, topology.firewalled)
    assert check_canaries([vantage], Destination(ATLAN, 443), policy, TIMEOUT, evidence, cache) == []
    assert evidence.failures == ()
    result = cache.connect(vantage, Destination(CANARY, 443), TIMEOUT)
    assert result.status is ConnectStatus.TIMEOUT
    evidence.conclude()


def test_open_canary_fails_sa_net_006(topology: Topology, test_ca: CertAuthority) -> None:
    policy = _policy(topology, test_ca, inbound=[], ports=[])
    evidence = Evidence()
    vantage = _vantage(topology, topology.open)
    check_canaries([vantage], Destination(ATLAN, 443), policy, TIMEOUT, evidence, ProbeCache())
    [failure] = evidence.failures
    assert failure.name == f"{CANARY}:443 from netns:{topology.open} (canary)"
    assert failure.actual == "connected: connected"


def test_unresolvable_canary_is_unknown_not_blocked(topology: Topology, test_ca: CertAuthority) -> None:
    policy = dataclasses.replace(
        _policy(topology, test_ca, inbound=[], ports=[]),
        network=NetworkSection(atlan_endpoints=[f"{ATLAN}:443"], canaries=["nowhere.invalid:443"]),
    )
    evidence = Evidence()
    vantage = _vantage(topology, topology.open)
    unknowns = check_canaries([vantage], Destination(ATLAN, 443), policy, TIMEOUT, evidence, ProbeCache())
    assert evidence.failures == ()
    [unknown] = unknowns
    assert "nowhere.invalid:443" in unknown
    assert "proves nothing about the egress filter" in unknown
    with pytest.raises(EvidenceUnavailable, match="does not resolve"):
        finish(evidence, unknowns)


def test_inbound_probe_that_cannot_be_made_is_an_error(topology: Topology, test_ca: CertAuthority) -> None:
    unroutable = "192.0.2.1"  # TEST-NET-1: the outside namespace has no route to it
    policy = _policy(topology, test_ca, inbound=[topology.firewalled_address, unroutable], ports=[22])
    evidence = Evidence()
    with pytest.raises(EvidenceUnavailable, match=r"1 inbound probe\(s\) could not be made.*192\.0\.2\.1:22"):
        check_inbound(_vantage(topology, topology.outside), policy, TIMEOUT, evidence, ProbeCache())
    assert evidence.failures == ()


def test_inbound_listener_fails_sa_net_004(topology: Topology, test_ca: CertAuthority) -> None:
    addresses = [topology.firewalled_address, topology.open_address]
    policy = _policy(topology, test_ca, inbound=addresses, ports=[22, INBOUND_PORT])
    evidence = Evidence()
    check_inbound(_vantage(topology, topology.outside), policy, TIMEOUT, evidence, ProbeCache())
    [failure] = evidence.failures
    assert failure.name == f"{topology.firewalled_address}:{INBOUND_PORT} from netns:{topology.outside}"
    assert len([o for o in evidence.observations if o.actual.startswith("refused")]) == 3


def _run_inside(
    pytester: pytest.Pytester, namespace: str, policy: dict[str, Any], controls: str
) -> pytest.RunResult:
    pytester.makefile(".yaml", policy=yaml.safe_dump(policy))
    return pytester.run(
        "ip", "netns", "exec", namespace, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
        f"--secagent-target=https://{ATLAN}", f"--secagent-target=tls://{TEMPORAL}:443",
        "--secagent-policy=policy.yaml", f"--secagent-controls={controls}", "--secagent-active-probes",
        f"--secagent-timeout={TIMEOUT:g}",
        timeout=180,
    )  # fmt: skip


def _yaml_policy(topology: Topology, ca: CertAuthority) -> dict[str, Any]:
    return {
        "tls": {"ca_bundle": str(ca.cert)},
        "network": {
            "atlan_endpoints": [f"{ATLAN}:443", f"{TEMPORAL}:443"],
            "canaries": [f"{CANARY}:443"],
            "inbound_addresses": [topology.firewalled_address],
            "inbound_ports": [22, INBOUND_PORT],
        },
    }


def test_plugin_on_the_firewalled_agent_host(
    pytester: pytest.Pytester, topology: Topology, test_ca: CertAuthority
) -> None:
    result = _run_inside(
        pytester, topology.firewalled, _yaml_policy(topology, test_ca), "SA-NET-005,SA-NET-006,SA-NET-007"
    )
    result.assert_outcomes(passed=6)


def test_plugin_on_the_open_agent_host(
    pytester: pytest.Pytester, topology: Topology, test_ca: CertAuthority
) -> None:
    result = _run_inside(pytester, topology.open, _yaml_policy(topology, test_ca), "SA-NET-005,SA-NET-006")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [f"*{CANARY}:443 from local (canary): expected blocked *; observed connected: *"]
    )


def test_plugin_inbound_probe_from_outside(
    pytester: pytest.Pytester, topology: Topology, test_ca: CertAuthority
) -> None:
    result = _run_inside(pytester, topology.outside, _yaml_policy(topology, test_ca), "SA-NET-004")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            f"*{topology.firewalled_address}:{INBOUND_PORT} from local: "
            "expected no connection accepted; observed connected*"
        ]
    )
