"""Agent host hardening: exposure, firewall, endpoint protection, patching, audit, isolation.

Baseline: customer environment security for Secure Agent 2.0 ("Outbound-only communication",
"Firewall rules", "Endpoint protection", "Vulnerability management", "Audit logging",
"Network segmentation", "Credential management validation"), made concrete with the CIS
Docker host section. Evidence: the host itself (``local://``, ``ssh://``, ``docker://``),
read-only, through :func:`pytest_secagent.host.fixtures.secagent_host`.
"""

from __future__ import annotations

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.checks.audit import check_audit_and_time
from pytest_secagent.host.checks.credentials import check_credential_files
from pytest_secagent.host.checks.edr import check_edr_running, check_signature_age
from pytest_secagent.host.checks.firewall import check_inbound_default_deny
from pytest_secagent.host.checks.listeners import check_listeners
from pytest_secagent.host.checks.patching import check_patch_currency
from pytest_secagent.host.checks.segmentation import check_dedicated_host
from pytest_secagent.policy import Policy

HOST = ("host",)


@pytest.mark.secagent_control("SA-NET-002", applies_to=HOST)
def test_no_externally_bound_listeners(
    secagent_host: HostConnection, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """Every listening socket is bound to loopback or is a declared management port."""
    check_listeners(secagent_host, secagent_policy, secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-NET-003", applies_to=HOST)
def test_inbound_denied_by_default(
    secagent_host: HostConnection, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """The host firewall drops inbound by default; only stateful, loopback and admin traffic passes."""
    check_inbound_default_deny(secagent_host, secagent_policy, secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-EDR-001", applies_to=HOST)
def test_edr_running(
    secagent_host: HostConnection, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """A declared EDR / anti-malware service is installed, running and enabled."""
    check_edr_running(secagent_host, secagent_policy, secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-EDR-002", applies_to=HOST)
def test_edr_definitions_fresh(
    secagent_host: HostConnection, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """The EDR's signature definitions are younger than the allowed age."""
    check_signature_age(secagent_host, secagent_policy, secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-VULN-003", applies_to=HOST)
def test_os_patches_current(
    secagent_host: HostConnection, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """No security update is pending, no reboot waits too long, automatic updates are on."""
    check_patch_currency(secagent_host, secagent_policy, secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-LOG-004", applies_to=HOST)
def test_engine_audited_and_clock_synchronised(
    secagent_host: HostConnection, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """The audit daemon watches the container engine's files and socket; the clock is NTP-synchronised."""
    check_audit_and_time(secagent_host, secagent_policy, secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-SEG-001", applies_to=HOST)
def test_host_dedicated_to_agent(
    secagent_host: HostConnection, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """Only the agent's containers and declared platform services run and listen on the host."""
    check_dedicated_host(secagent_host, secagent_policy, secagent_evidence)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-SECRET-002", applies_to=HOST)
def test_credential_files_private(
    secagent_host: HostConnection, secagent_policy: Policy, secagent_evidence: Evidence
) -> None:
    """Declared credential files are owned by the agent user and unreadable to others."""
    check_credential_files(secagent_host, secagent_policy, secagent_evidence)
    secagent_evidence.conclude()
