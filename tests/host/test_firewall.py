"""SA-NET-003 against real nftables and iptables rulesets in network namespaces."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pytest_secagent.evidence import ControlFailed, Verdict
from pytest_secagent.host.checks.firewall import check_inbound_default_deny
from pytest_secagent.host.local import LocalConnection
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import NetworkSection, Policy
from tests.host.hosts import line, minimal_bin, run_check, verdicts
from tests.host.netns import Netns
from tests.support import require_tool

pytestmark = pytest.mark.needs("netns")

DEFAULT_DENY = """
table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state vmap { invalid : drop, established : accept, related : accept }
    iif lo accept
    ip saddr 10.20.0.0/16 tcp dport 22 accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
  }
}
"""

INBOUND_ACCEPT = """
table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iifname "lo" accept
    jump services
  }
  chain services {
    tcp dport { 80, 443 } accept
  }
}
"""

ACCEPT_POLICY = """
table inet filter {
  chain input {
    type filter hook input priority 0; policy accept;
    ct state established,related accept
  }
}
"""

ADMIN = dataclasses.replace(Policy(), network=NetworkSection(admin_cidrs=["10.20.0.0/16"]))
IPV4 = "IPv4 inbound default-deny"
IPV6 = "IPv6 inbound default-deny"


@pytest.fixture
def nft(namespace: Netns) -> Netns:
    require_tool("nft", "nftables")
    return namespace


def load(ns: Netns, ruleset: str) -> None:
    ns.exec("nft", "-f", "-", input_text=ruleset)


def test_nft_default_deny_passes(nft: Netns) -> None:
    load(nft, DEFAULT_DENY)
    evidence = run_check(check_inbound_default_deny, nft.connection(), ADMIN)
    evidence.conclude()
    assert verdicts(evidence)[IPV4] is Verdict.OK
    assert verdicts(evidence)[IPV6] is Verdict.OK, "the veth's link-local address makes IPv6 count"
    assert "policy drop" in line(evidence, IPV4)


def test_admin_exception_outside_admin_networks_fails(nft: Netns) -> None:
    load(nft, DEFAULT_DENY)
    evidence = run_check(check_inbound_default_deny, nft.connection())
    with pytest.raises(ControlFailed, match=r"saddr == 10\.20\.0\.0/16 tcp dport == 22 accept"):
        evidence.conclude()


def test_inbound_accept_through_a_jump_fails(nft: Netns) -> None:
    load(nft, INBOUND_ACCEPT)
    evidence = run_check(check_inbound_default_deny, nft.connection())
    with pytest.raises(ControlFailed, match=r"tcp dport == \{80, 443\} accept"):
        evidence.conclude()


def test_accept_policy_fails(nft: Netns) -> None:
    load(nft, ACCEPT_POLICY)
    evidence = run_check(check_inbound_default_deny, nft.connection())
    assert verdicts(evidence)[IPV4] is Verdict.FAIL
    assert "policy accept and no final drop or reject rule" in line(evidence, IPV4)


def test_no_firewall_fails(nft: Netns) -> None:
    evidence = run_check(check_inbound_default_deny, nft.connection())
    assert verdicts(evidence)[IPV4] is Verdict.FAIL
    assert "no firewall" in line(evidence, IPV4)
    with pytest.raises(ControlFailed):
        evidence.conclude()


def test_iptables_reject_rule_denies_ipv4_only(namespace: Netns) -> None:
    require_tool("iptables", "iptables")
    for rule in (
        ["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"],
        ["-A", "INPUT", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
        ["-A", "INPUT", "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
        ["-A", "INPUT", "-j", "REJECT"],
    ):
        namespace.exec("iptables", *rule)
    evidence = run_check(check_inbound_default_deny, namespace.connection())
    assert verdicts(evidence)[IPV4] is Verdict.OK
    assert "final rule" in line(evidence, IPV4)
    assert verdicts(evidence)[IPV6] is Verdict.FAIL, "ip6tables has no rule: IPv6 is open"


def test_iptables_drop_policy_with_open_port_fails(namespace: Netns) -> None:
    require_tool("ip6tables", "iptables")
    for tool in ("iptables", "ip6tables"):
        namespace.exec(tool, "-P", "INPUT", "DROP")
        namespace.exec(tool, "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT")
    evidence = run_check(check_inbound_default_deny, namespace.connection())
    assert verdicts(evidence)[IPV4] is Verdict.FAIL
    assert "--dport 8080 -j ACCEPT" in line(evidence, IPV4)


def test_host_without_rule_readers_is_an_error(namespace: Netns, tmp_path: Path) -> None:
    tools = minimal_bin(tmp_path / "bin")
    host = LocalConnection(
        "bare", timeout=10, prefix=("ip", "netns", "exec", namespace.name, "env", f"PATH={tools}")
    )
    with pytest.raises(EvidenceUnavailable, match="no firewall rule reader"):
        run_check(check_inbound_default_deny, host)
