"""Fixtures of the network checks: TLS probes of endpoint targets and active-probe vantages.

Active probes (SA-NET-004, -005, -006) run only with ``--secagent-active-probes`` (ini
``secagent_active_probes``). They report on the run's *Atlan* endpoint targets. Outbound
probes (SA-NET-005, -006) start from every host target of the run, through its
connection (``local://`` with plain sockets), or from this machine when the run has no
host target; the inbound probe (SA-NET-004) always starts from this machine, which must
stand outside the agent's network edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.connect import open_host
from pytest_secagent.network.controls import ProbeCache, check_tls, is_atlan_endpoint, needs_h2
from pytest_secagent.network.reachability import Destination, HostVantage, LocalVantage, Vantage
from pytest_secagent.network.tls import AddressProbe, Endpoint, probe_addresses
from pytest_secagent.options import Settings
from pytest_secagent.outcomes import not_applicable
from pytest_secagent.policy.model import Policy
from pytest_secagent.targets import EndpointTarget, LocalTarget, Target, TargetKind
from pytest_secagent.targets.pool import ConnectionPool

__all__ = [
    "EndpointProbe",
    "secagent_endpoint",
    "secagent_inbound_vantage",
    "secagent_probe_cache",
    "secagent_vantages",
]

ACTIVE_PROBES_OFF = "active probes are off; enable with --secagent-active-probes"


@dataclass(frozen=True)
class EndpointProbe:
    """A TLS probe bound to one endpoint target, the run's policy and its timeout."""

    target: EndpointTarget
    policy: Policy
    timeout: float

    @property
    def endpoint(self) -> Endpoint:
        """The endpoint to connect to; SNI and the certificate name are its host."""
        return Endpoint(self.target.host, self.target.port)

    @property
    def destination(self) -> Destination:
        """The endpoint as a reachability destination."""
        return Destination(self.target.host.rstrip(".").lower(), self.target.port)

    @property
    def is_atlan(self) -> bool:
        """Whether this is an Atlan endpoint (``*.atlan.com`` or ``network.atlan_endpoints``)."""
        return is_atlan_endpoint(self.target.host, self.target.port, self.policy)

    @property
    def needs_h2(self) -> bool:
        """Whether the endpoint speaks gRPC/TLS and must negotiate ``h2``."""
        return needs_h2(self.target.host, self.target.port, self.policy)

    def probe(self) -> tuple[AddressProbe, ...]:
        """Probe every address behind the endpoint's name: versions, certificate, cipher and ALPN."""
        return probe_addresses(
            self.endpoint,
            timeout=self.timeout,
            min_version=self.policy.tls.min_version,
            ca_bundle=self.policy.tls.ca_bundle,
        )

    def check(self, evidence: Evidence) -> list[str]:
        """Probe and record the TLS expectations; return the unknowns."""
        return check_tls(self.endpoint, self.policy, self.timeout, evidence)


@pytest.fixture
def secagent_endpoint(
    secagent_target: Target, secagent_policy: Policy, secagent_settings: Settings
) -> EndpointProbe:
    """A TLS probe bound to this test's endpoint target (``tls://`` or ``https://``).

    Every connection and handshake is bounded by ``--secagent-timeout``; the CA bundle and
    version floor come from the policy's ``tls`` section.
    """
    if not isinstance(secagent_target, EndpointTarget):
        not_applicable(f"{secagent_target.id} is not a network endpoint")
    return EndpointProbe(secagent_target, secagent_policy, secagent_settings.timeout)


@pytest.fixture(scope="session")
def secagent_probe_cache() -> ProbeCache:
    """Connection results shared by the run, so run-wide probes (canaries, inbound) run once."""
    return ProbeCache()


def _open_vantage_host(settings: Settings, target: Target) -> HostConnection:
    return open_host(target, settings)


@pytest.fixture
def secagent_vantages(secagent_settings: Settings, secagent_connections: ConnectionPool) -> list[Vantage]:
    """Where outbound probes start: every host target of the run, else this machine.

    ``local://`` probes with sockets; ``ssh://`` and ``docker://`` run ``getent``, bash's
    ``/dev/tcp`` and ``openssl s_client`` on the host through its connection. Not
    applicable unless active probes are on (``--secagent-active-probes``).
    """
    if not secagent_settings.active_probes:
        not_applicable(ACTIVE_PROBES_OFF)
    hosts = [t for t in secagent_settings.targets if t.kind is TargetKind.HOST]
    vantages: list[Vantage] = []
    for target in hosts:
        if isinstance(target, LocalTarget):
            vantages.append(LocalVantage(secagent_settings.timeout))
            continue

        def open_vantage(host: Target) -> HostConnection:
            return _open_vantage_host(secagent_settings, host)

        vantages.append(HostVantage(secagent_connections.get(target, open_vantage)))
    return vantages or [LocalVantage(secagent_settings.timeout)]


@pytest.fixture
def secagent_inbound_vantage(secagent_settings: Settings) -> Vantage:
    """Where the inbound probe starts: this machine, which must be outside the agent's edge.

    Not applicable unless active probes are on (``--secagent-active-probes``).
    """
    if not secagent_settings.active_probes:
        not_applicable(ACTIVE_PROBES_OFF)
    return LocalVantage(secagent_settings.timeout)
