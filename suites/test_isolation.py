"""Agent isolation from production networks, seen from the agent host.

Baseline: customer environment security for Secure Agent 2.0, "Network segmentation"
("agent isolated from production systems"). Evidence: the host's own interface addresses
(``local://``, ``ssh://``, ``docker://``), compared with the policy's
``network.production_cidrs``; read-only, through
:func:`pytest_secagent.host.fixtures.secagent_host`.
"""

from __future__ import annotations

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.checks.isolation import check_not_in_production
from pytest_secagent.policy import Policy


@pytest.mark.secagent_control("SA-SEG-004", applies_to=("host",))
def test_host_outside_production_networks(
    secagent_host: HostConnection, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """No address of the agent host lies inside a declared production network."""
    check_not_in_production(secagent_host, secagent_policy, secagent_evidence)
    secagent_evidence.conclude()
