"""SA-NET-003 against real nftables and iptables rulesets in network namespaces."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_secagent.evidence import ControlFailed, Verdict
from pytest_secagent.host.checks.firewall import check_inbound_default_deny
from pytest_secagent.host.local import LocalConnection
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import NetworkSection, Policy
from tests.host.hosts import line, minimal_bin, run_check, verdicts
from tests.host.netns import Netns, netns
from tests.support import require_root, require_tool

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
    # iptables-nft's chains are nftables chains: nft's own reading names the rule
    assert "tcp dport == 8080 accept" in line(evidence, IPV4)


def test_iptables_log_target_lets_the_packet_continue(namespace: Netns) -> None:
    require_tool("iptables", "iptables")
    namespace.exec("iptables", "-P", "INPUT", "DROP")
    namespace.exec("iptables", "-A", "INPUT", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
    namespace.exec("iptables", "-A", "INPUT", "-j", "LOG", "--log-prefix", "sa-host-in: ")
    evidence = run_check(check_inbound_default_deny, namespace.connection())
    assert verdicts(evidence)[IPV4] is Verdict.OK, line(evidence, IPV4)


def test_host_without_rule_readers_is_an_error(namespace: Netns, tmp_path: Path) -> None:
    tools = minimal_bin(tmp_path / "bin")
    host = LocalConnection(
        "bare", timeout=10, prefix=("ip", "netns", "exec", namespace.name, "env", f"PATH={tools}")
    )
    with pytest.raises(EvidenceUnavailable, match="no firewall rule reader"):
        run_check(check_inbound_default_deny, host)


# -- front ends (ufw, firewalld) --------------------------------------------------------------
# The kernel's rules are real (nft in the namespace); the front end's status is its usual
# text, printed by a stand-in, since enabling ufw or firewalld would take over this machine.

FIREWALLD_ZONES = """\
public (default)
  target: default
  icmp-block-inversion: no
  interfaces: 
  sources: 
  services: 
  ports: 
  protocols: 
  forward: yes
  masquerade: no
  forward-ports: 
  source-ports: 
  icmp-blocks: 
  rich rules: 

trusted (active)
  target: ACCEPT
  icmp-block-inversion: no
  interfaces: {interface}
  sources: 
  services: 
  ports: 
  protocols: 
  forward: yes
  masquerade: no
  forward-ports: 
  source-ports: 
  icmp-blocks: 
  rich rules: 

work (active)
  target: default
  icmp-block-inversion: no
  interfaces: 
  sources: 10.20.0.0/16
  services: ssh
  ports: 
  protocols: 
  forward: yes
  masquerade: no
  forward-ports: 
  source-ports: 
  icmp-blocks: 
  rich rules: 
"""

UFW_ACTIVE = """\
Status: active
Logging: on (low)
Default: deny (incoming), allow (outgoing), disabled (routed)
New profiles: skip
"""

FIREWALLD_RULESET = """
table inet firewalld {
  chain filter_INPUT {
    type filter hook input priority filter + 10; policy accept;
    ct state { established, related } accept
    iifname "lo" accept
    jump filter_INPUT_ZONES
    reject with icmpx admin-prohibited
  }
  chain filter_INPUT_ZONES {
    iifname "%s" goto filter_IN_trusted
    ip saddr 10.20.0.0/16 goto filter_IN_work
    goto filter_IN_public
  }
  chain filter_IN_trusted {
    accept
  }
  chain filter_IN_work {
    tcp dport 22 accept
  }
  chain filter_IN_public {
  }
}
"""


def with_front_end(ns: Netns, folder: Path, name: str, script: str) -> LocalConnection:
    """A connection into ``ns`` whose PATH starts with a stand-in ``name`` running ``script``."""
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    path = f"{folder}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return LocalConnection(
        f"netns:{ns.name}", timeout=10, prefix=("ip", "netns", "exec", ns.name, "env", f"PATH={path}")
    )


def test_ufw_status_does_not_outweigh_an_accepting_kernel(nft: Netns, tmp_path: Path) -> None:
    """The ufw status says "deny (incoming)", but its rules were flushed and the policy is accept."""
    load(nft, ACCEPT_POLICY)
    script = f"[ \"$1 $2\" = 'status verbose' ] && cat <<'EOF'\n{UFW_ACTIVE}EOF\n"
    evidence = run_check(check_inbound_default_deny, with_front_end(nft, tmp_path / "bin", "ufw", script))
    assert verdicts(evidence)[IPV4] is Verdict.FAIL
    assert "ufw: says it denies incoming by default, but the kernel's input rules do not" in line(
        evidence, IPV4
    )


def test_firewalld_zones_in_use_are_all_judged(nft: Netns, tmp_path: Path) -> None:
    """The default zone denies, but an interface sits in the trusted zone: inbound is open."""
    interface = next(
        name for name in nft.exec("ls", "/sys/class/net").stdout.split() if name.startswith("sah")
    )
    load(nft, FIREWALLD_RULESET % interface)
    zones = FIREWALLD_ZONES.format(interface=interface)
    default_zone = zones.split("\n\n", 1)[0] + "\n"
    script = (
        'case "$1" in --state) echo running;; '
        f"--list-all-zones) cat <<'EOF'\n{zones}EOF\n;; "
        f"--list-all) cat <<'EOF'\n{default_zone}EOF\n;; *) exit 2;; esac\n"
    )
    host = with_front_end(nft, tmp_path / "bin", "firewall-cmd", script)
    evidence = run_check(check_inbound_default_deny, host, ADMIN)
    assert verdicts(evidence)[IPV4] is Verdict.FAIL
    text = line(evidence, IPV4)
    assert "firewalld zone trusted: target ACCEPT" in text
    assert "work" not in text.split("firewalld:", 1)[1], "the work zone only takes admin sources"


# -- what the kernel applies: hooks, dormant tables, chain types, priorities --------------------
# Each case loads a ruleset into a namespace, sends real TCP traffic at it from a peer
# namespace (a source outside any admin network) and checks the verdict against it: a pass
# must never come with traffic getting through.

SERVICE_PORT = 8080

LISTENER = """
import socket, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
s.listen(64)
print("ready", flush=True)
while True:
    conn, _ = s.accept()
    conn.close()
"""

CLEAN_CHAIN = """
    ct state established,related accept
    iif lo accept
"""


def _table(family: str, name: str, chains: str, flags: str = "") -> str:
    return f"table {family} {name} {{\n{f'  flags {flags}' if flags else ''}\n{chains}\n}}\n"


def _chain(name: str, head: str, body: str = "") -> str:
    return f"  chain {name} {{\n    {head}\n{body}\n  }}\n"


DROP_INPUT = _chain("input", "type filter hook input priority 0; policy drop;", CLEAN_CHAIN)
OPEN_SERVICE = f"    tcp dport {SERVICE_PORT} accept\n"

# (ruleset, IPv4 verdict, IPv6 verdict, IPv4 gets through, IPv6 gets through)
APPLIED = {
    "dormant-inet-table-with-drop-policy": (
        _table("inet", "filter", DROP_INPUT, flags="dormant"), "fail", "fail", True, True,
    ),
    "dormant-drop-beside-an-active-accept": (
        _table("inet", "filter", DROP_INPUT, flags="dormant")
        + _table("inet", "open", _chain("input", "type filter hook input priority 10; policy accept;",
                                         OPEN_SERVICE)),
        "fail", "fail", True, True,
    ),
    "regular-chain-without-a-hook": (
        _table("inet", "filter", _chain("input", "", "    drop\n")), "fail", "fail", True, True,
    ),
    "forward-hook-drop": (
        _table("inet", "filter", _chain("routed", "type filter hook forward priority 0; policy drop;")),
        "fail", "fail", True, True,
    ),
    "nat-chain-on-input-is-not-a-filter": (
        _table("ip", "nt", _chain("in", "type nat hook input priority 100; policy accept;", "    drop\n")),
        "fail", "fail", True, True,
    ),
    "rate-limited-drop-is-not-a-default-deny": (
        _table("inet", "filter", _chain(
            "input", "type filter hook input priority 0; policy accept;", "    limit rate over 50/second drop\n"
        )),
        "fail", "fail", True, True,
    ),
    "earlier-accept-does-not-bypass-a-later-drop": (
        _table("inet", "early", _chain("input", "type filter hook input priority -10; policy accept;",
                                        OPEN_SERVICE))
        + _table("inet", "filter", DROP_INPUT),
        "ok", "ok", False, False,
    ),
    "later-accept-does-not-override-an-earlier-drop": (
        _table("inet", "filter", DROP_INPUT)
        + _table("inet", "late", _chain("input", "type filter hook input priority 10; policy accept;",
                                         OPEN_SERVICE)),
        "ok", "ok", False, False,
    ),
    "two-base-chains-in-one-table": (
        _table("inet", "filter",
               _chain("early", "type filter hook input priority -5; policy accept;", OPEN_SERVICE)
               + _chain("late", "type filter hook input priority 5; policy drop;", CLEAN_CHAIN)),
        "ok", "ok", False, False,
    ),
    "netdev-ingress-accept-beside-an-inet-drop": (
        _table("netdev", "edge", _chain(
            "ingress", 'type filter hook ingress device "{inner}" priority 0; policy accept;', OPEN_SERVICE
        ))
        + _table("inet", "filter", DROP_INPUT),
        "ok", "ok", False, False,
    ),
    "dormant-netdev-ingress-drop": (
        _table("netdev", "edge", _chain(
            "ingress", 'type filter hook ingress device "{inner}" priority 0; policy drop;'
        ), flags="dormant"),
        "fail", "fail", True, True,
    ),
    "ip-family-covers-ipv4-only": (
        _table("ip", "filter", DROP_INPUT), "ok", "fail", False, True,
    ),
    "ip6-family-covers-ipv6-only": (
        _table("ip6", "filter", DROP_INPUT), "fail", "ok", True, False,
    ),
    "prerouting-drop-denies-inbound": (
        _table("inet", "filter", _chain(
            "pre", "type filter hook prerouting priority -150; policy drop;", CLEAN_CHAIN
        )),
        "ok", "ok", False, False,
    ),
    "dormant-ip-table-beside-an-active-ip6-drop": (
        _table("ip", "filter", DROP_INPUT, flags="dormant") + _table("ip6", "filter", DROP_INPUT),
        "fail", "ok", True, False,
    ),
}


def _inner_device(ns: Netns) -> str:
    return next(name for name in ns.exec("ls", "/sys/class/net").stdout.split() if name.startswith("sah"))


@pytest.fixture
def peered() -> Iterator[Netns]:
    """A namespace with nft, a dual-stack TCP listener on the service port and a client peer."""
    require_root()
    require_tool("ip", "iproute2")
    require_tool("nft", "nftables")
    with netns(client=True) as created:
        server = subprocess.Popen(
            ["ip", "netns", "exec", created.name, sys.executable, "-c", LISTENER, str(SERVICE_PORT)],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == b"ready"
            yield created
        finally:
            server.kill()
            server.wait(timeout=10)
            if server.stdout is not None:
                server.stdout.close()


@pytest.mark.parametrize(("ruleset", "v4", "v6", "v4_through", "v6_through"), APPLIED.values(), ids=APPLIED)
def test_only_applied_chains_count(
    peered: Netns, ruleset: str, v4: str, v6: str, v4_through: bool, v6_through: bool
) -> None:
    assert peered.connects(peered.inner_address, SERVICE_PORT), "open before any rule"
    load(peered, ruleset.replace("{inner}", _inner_device(peered)))
    evidence = run_check(check_inbound_default_deny, peered.connection())
    through = {IPV4: peered.connects(peered.inner_address, SERVICE_PORT),
               IPV6: peered.connects(peered.inner_address6, SERVICE_PORT)}
    for name, verdict, expected_through in ((IPV4, v4, v4_through), (IPV6, v6, v6_through)):
        assert verdicts(evidence)[name] is Verdict(verdict), line(evidence, name)
        assert through[name] is expected_through, f"{name}: traffic {'passed' if through[name] else 'blocked'}"
        if verdicts(evidence)[name] is Verdict.OK:
            assert not through[name], f"{name} passed while TCP got through"


def test_iptables_view_of_a_dormant_table_is_not_counted(peered: Netns) -> None:
    """``iptables-save`` still prints ``:INPUT DROP`` for a table nft made dormant."""
    require_tool("iptables", "iptables")
    peered.exec("iptables", "-P", "INPUT", "DROP")
    assert not peered.connects(peered.inner_address, SERVICE_PORT)
    load(peered, "table ip filter {\n  flags dormant\n}\n")
    assert ":INPUT DROP" in peered.exec("iptables-save").stdout
    assert peered.connects(peered.inner_address, SERVICE_PORT)
    evidence = run_check(check_inbound_default_deny, peered.connection())
    assert verdicts(evidence)[IPV4] is Verdict.FAIL
    assert "table is dormant" in line(evidence, IPV4)
