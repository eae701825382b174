"""TLS 1.2 minimum on every external connection: Atlan endpoints and declared dependencies.

Baseline: customer environment security for Secure Agent 2.0, "TLS 1.2 minimum" ("all
external communication uses TLS 1.2 or higher"). Evidence: TLS probes of the run's
``tls://`` and ``https://`` targets and of the policy's ``network.dependencies``; the
policy's ``tls`` section sets the version floor, certificate thresholds and CA bundle.
"""

from __future__ import annotations

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.network.controls import check_ca_bundle, check_tls, finish
from pytest_secagent.network.fixtures import EndpointProbe
from pytest_secagent.network.reachability import Destination
from pytest_secagent.options import Settings
from pytest_secagent.outcomes import EvidenceUnavailable, not_applicable
from pytest_secagent.policy import Policy
from pytest_secagent.targets import EndpointTarget, Target


@pytest.mark.secagent_control("SA-NET-007", applies_to=("endpoint",))
def test_atlan_endpoint_tls(secagent_endpoint: EndpointProbe, secagent_evidence: Evidence) -> None:
    """An Atlan endpoint accepts no TLS older than the floor and has a valid certificate.

    Also: a strong negotiated cipher, and h2 for gRPC/TLS endpoints.
    """
    if not secagent_endpoint.is_atlan:
        not_applicable(
            f"{secagent_endpoint.target.id} is not an Atlan endpoint (neither *.atlan.com nor in "
            "network.atlan_endpoints); SA-NET-008 checks it as a dependency"
        )
    finish(secagent_evidence, secagent_endpoint.check(secagent_evidence))


@pytest.mark.secagent_control("SA-NET-008", applies_to=("endpoint", "policy"))
def test_dependency_tls_and_ca_bundle(
    secagent_target: Target,
    secagent_policy: Policy,
    secagent_settings: Settings,
    secagent_evidence: Evidence,
) -> None:
    """Every other dependency meets the same TLS bar; the custom CA bundle is valid.

    On an endpoint target: that endpoint, unless it is an Atlan one. On the policy: each
    ``network.dependencies`` entry and the ``tls.ca_bundle`` file.
    """
    policy, evidence = secagent_policy, secagent_evidence
    if isinstance(secagent_target, EndpointTarget):
        probe = EndpointProbe(secagent_target, policy, secagent_settings.timeout)
        if probe.is_atlan:
            not_applicable(f"{secagent_target.id} is an Atlan endpoint; SA-NET-007 checks it")
        finish(evidence, probe.check(evidence))
        return
    if not policy.network.dependencies and not policy.tls.ca_bundle:
        not_applicable("the policy declares no network.dependencies and no tls.ca_bundle")
    unknowns: list[str] = []
    for spec in policy.network.dependencies:
        try:
            endpoint = Destination.parse(spec).endpoint
        except ValueError as exc:
            raise EvidenceUnavailable(f"network.dependencies: {exc}") from None
        try:
            unknowns += check_tls(endpoint, policy, secagent_settings.timeout, evidence)
        except EvidenceUnavailable as exc:
            evidence.observe(f"{endpoint}", f"not probed: {exc}")
            unknowns.append(str(exc))
    check_ca_bundle(policy, evidence)
    finish(evidence, unknowns)
