"""Outbound-only and the egress allow-list, proven by active probes (opt-in).

Baseline: customer environment security for Secure Agent 2.0, "Outbound-only communication"
and "Firewall rules" (outbound ``*.atlan.com:443`` over HTTPS and gRPC/TLS; inbound
``all_traffic: DENY``). These controls connect from and to the agent's network, so they
run only with ``--secagent-active-probes``. They report on the run's Atlan endpoint
targets; outbound probes start from each host target (else from this machine), the
inbound probe from this machine.
"""

from __future__ import annotations

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.network.controls import (
    ProbeCache,
    check_canaries,
    check_egress,
    check_inbound,
    finish,
)
from pytest_secagent.network.fixtures import EndpointProbe
from pytest_secagent.network.reachability import Vantage
from pytest_secagent.options import Settings
from pytest_secagent.outcomes import not_applicable
from pytest_secagent.policy import Policy


def _atlan_only(probe: EndpointProbe) -> None:
    if not probe.is_atlan:
        not_applicable(
            f"{probe.target.id} is not an Atlan endpoint; the active probes report on Atlan endpoints"
        )


@pytest.mark.secagent_control("SA-NET-005", applies_to=("endpoint",))
def test_required_atlan_egress_reachable(
    secagent_endpoint: EndpointProbe,
    secagent_vantages: list[Vantage],
    secagent_settings: Settings,
    secagent_evidence: Evidence,
) -> None:
    """The Atlan endpoint resolves and completes a verified handshake from the agent's host."""
    _atlan_only(secagent_endpoint)
    check_egress(
        secagent_vantages,
        secagent_endpoint.destination,
        secagent_endpoint.policy,
        secagent_settings.timeout,
        secagent_evidence,
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-NET-006", applies_to=("endpoint",))
def test_egress_allow_list_enforced(
    secagent_endpoint: EndpointProbe,
    secagent_vantages: list[Vantage],
    secagent_probe_cache: ProbeCache,
    secagent_settings: Settings,
    secagent_evidence: Evidence,
) -> None:
    """Every canary outside the allow-list is blocked while the Atlan endpoint is reachable."""
    _atlan_only(secagent_endpoint)
    policy = secagent_endpoint.policy
    if not policy.network.canaries:
        not_applicable("the policy declares no network.canaries to probe")
    unknowns = check_canaries(
        secagent_vantages,
        secagent_endpoint.destination,
        policy,
        secagent_settings.timeout,
        secagent_evidence,
        secagent_probe_cache,
    )
    finish(secagent_evidence, unknowns)


@pytest.mark.secagent_control("SA-NET-004", applies_to=("endpoint",))
def test_no_inbound_connection_accepted(
    secagent_endpoint: EndpointProbe,
    secagent_inbound_vantage: Vantage,
    secagent_probe_cache: ProbeCache,
    secagent_policy: Policy,
    secagent_settings: Settings,
    secagent_evidence: Evidence,
) -> None:
    """No address of the agent's host accepts a connection on the probed ports."""
    _atlan_only(secagent_endpoint)
    if not secagent_policy.network.inbound_addresses:
        not_applicable("the policy declares no network.inbound_addresses to probe")
    check_inbound(
        secagent_inbound_vantage,
        secagent_policy,
        secagent_settings.timeout,
        secagent_evidence,
        secagent_probe_cache,
    )
    secagent_evidence.conclude()
