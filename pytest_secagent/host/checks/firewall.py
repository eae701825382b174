"""SA-NET-003: inbound traffic is denied by default, read from the firewall's own rules."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.checks.common import find_tools
from pytest_secagent.host.checks.iptables import iptables_backend, parse_iptables_save
from pytest_secagent.host.checks.nftables import NftRuleset, nft_listing, parse_nft_ruleset
from pytest_secagent.host.checks.rules import (
    Chain,
    ChainVerdict,
    Network,
    evaluate_chain,
    parse_networks,
    within,
)
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy

__all__ = ["admin_networks", "check_inbound_default_deny", "firewalld_zones", "ipv6_in_use"]

EXPECTED = (
    "an active filter chain on the input (or prerouting) hook that drops or rejects by default "
    "and accepts only established/related, loopback or admin-source traffic"
)
_FAMILY_COVERS = {"inet": ("IPv4", "IPv6"), "ip": ("IPv4",), "ip6": ("IPv6",)}


@dataclass
class _Sources:
    verdicts: list[ChainVerdict]
    read: list[str]
    frontends: dict[str, tuple[bool, list[str]]]
    not_counted: list[str] = field(default_factory=list)
    unseen: list[str] = field(default_factory=list)


def admin_networks(policy: Policy) -> list[Network]:
    """The declared admin networks: ``network.admin_cidrs`` and inbound exception sources."""
    sources = [rule.source for rule in policy.firewall_rules.inbound_blocked if rule.source]
    return parse_networks([*policy.network.admin_cidrs, *sources])


def ipv6_in_use(host: HostConnection) -> bool:
    """Whether any interface other than loopback has an IPv6 address."""
    text = host.read_text("/proc/net/if_inet6")
    if text is None:
        return False
    return any(line.split()[-1] != "lo" for line in text.splitlines() if line.split())


def _read(host: HostConnection, argv: Sequence[str]) -> str:
    result = host.run(argv)
    if not result.succeeded:
        reason = result.stderr.strip() or f"exit status {result.exit_status}"
        raise EvidenceUnavailable(f"{host.target_id}: `{' '.join(argv)}` failed: {reason}")
    return result.stdout


_TOOLS = [
    "nft",
    "iptables-save",
    "ip6tables-save",
    "iptables-legacy-save",
    "ip6tables-legacy-save",
    "ufw",
    "firewall-cmd",
]


def _nft_rules(host: HostConnection, admin: list[Network], found: _Sources) -> NftRuleset:
    text = _read(host, ["nft", "-j", "list", "ruleset"])
    listing = _read(host, ["nft", "list", "ruleset"])
    try:
        ruleset = parse_nft_ruleset(text, admin, nft_listing(listing))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EvidenceUnavailable(f"{host.target_id}: cannot read nft's ruleset: {exc}") from exc
    found.read.append("nft -j list ruleset")
    found.not_counted += ruleset.not_counted
    found.verdicts += [evaluate_chain(chain, ruleset.chains) for chain in ruleset.inbound]
    return ruleset


def _kernel_rules(
    host: HostConnection, admin: list[Network], found: _Sources, tools: dict[str, str | None]
) -> None:
    ruleset = _nft_rules(host, admin, found) if tools["nft"] else None
    readers = [("iptables-save", "ip"), ("ip6tables-save", "ip6")]
    # Legacy tables in use are listed here; reading them otherwise could load kernel modules.
    if (host.read_text("/proc/net/ip_tables_names") or "").strip():
        readers.append(("iptables-legacy-save", "ip"))
    if (host.read_text("/proc/net/ip6_tables_names") or "").strip():
        readers.append(("ip6tables-legacy-save", "ip6"))
    for tool, family in readers:
        if not tools[tool]:
            continue
        text = _read(host, [tool])
        backend = iptables_backend(text)
        try:
            base, by_name = parse_iptables_save(text, family, admin, tool)
        except ValueError as exc:
            if backend == "nf_tables" and ruleset is not None:
                found.read.append(f"{tool} (unreadable: {exc}; its chains are judged through nft)")
                continue
            raise EvidenceUnavailable(f"{host.target_id}: cannot read `{tool}` output: {exc}") from exc
        found.read.append(tool)
        if backend == "nf_tables" and base:
            base = _attached(base, family, ruleset, found)
        found.verdicts += [evaluate_chain(chain, by_name) for chain in base]


def _attached(base: list[Chain], family: str, ruleset: NftRuleset | None, found: _Sources) -> list[Chain]:
    """The chains of an nf_tables ``iptables-save`` view that count.

    That view is the ``filter`` table of nftables without its flags: a dormant table
    still shows ``:INPUT DROP``, and native nft rules it cannot express are shown wider or
    narrower than they are. So with nft's own listing it only stands in for nft's reading
    of the same chain when nft counts that chain and all nft could not judge in it are
    iptables extensions (``xt`` statements); without nft, whether the table is attached
    is a part not observed.
    """
    if ruleset is None:
        found.unseen.append(
            f"iptables ({family}) shows nf_tables chains, but without nft it cannot show whether "
            "their table is dormant (attached to no hook)"
        )
        return base
    label = f"nftables {family} filter/INPUT"
    mine = [v for v in found.verdicts if v.chain.label == label]
    if not mine or mine[0].clean or mine[0].opaque_open_rules != len(mine[0].open_rules):
        return []  # nft's reading stands (or nft does not count the chain: dormant, absent)
    found.verdicts = [v for v in found.verdicts if v.chain.label != label]
    return base


def _ufw(host: HostConnection, admin: list[Network]) -> tuple[bool, list[str]] | None:
    text = _read(host, ["ufw", "status", "verbose"])
    if "Status: active" not in text:
        return None
    default = re.search(r"Default:\s*(\w+) \(incoming\)", text)
    denies = default is not None and default.group(1) in ("deny", "reject")
    opened = []
    for line in text.splitlines():
        match = re.match(r"^(?P<to>.+?)\s+(ALLOW|LIMIT)(?: IN)?\s+(?P<src>\S+)", line.strip())
        if match and not within([match.group("src")], admin):
            opened.append(f"ufw: {line.strip()}")
    return denies, opened


_FIREWALLD_DENY_TARGETS = frozenset({"default", "DROP", "REJECT", "%%REJECT%%"})
_FIREWALLD_OPENINGS = ("services", "ports", "protocols", "source-ports", "forward-ports", "rich rules")


def firewalld_zones(text: str) -> dict[str, dict[str, str]]:
    """The zones of ``firewall-cmd --list-all-zones`` that apply to traffic, with their settings.

    A zone applies when it is active (it has interfaces or sources) or is the default
    zone (it takes every interface no other zone claims). Keys are the setting names
    (``target``, ``interfaces``, ``sources``, ``services``...).
    """
    zones: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        if not raw.strip():
            current = None
            continue
        if not raw[0].isspace():
            name, _, marks = raw.strip().partition(" ")
            applies = "active" in marks or "default" in marks
            current = zones.setdefault(name, {}) if applies else None
            continue
        if current is not None:
            key, _, value = raw.strip().partition(":")
            current[key.strip()] = value.strip()
    return zones


def _firewalld(host: HostConnection, admin: list[Network]) -> tuple[bool, list[str]] | None:
    state = host.run(["firewall-cmd", "--state"])
    if state.stdout.strip() != "running":
        return None
    zones = firewalld_zones(_read(host, ["firewall-cmd", "--list-all-zones"]))
    if not zones:
        raise EvidenceUnavailable(
            f"{host.target_id}: firewalld runs but `firewall-cmd --list-all-zones` shows no zone in use"
        )
    denies = all(zone.get("target") in _FIREWALLD_DENY_TARGETS for zone in zones.values())
    opened = []
    for name, zone in sorted(zones.items()):
        if zone.get("target") not in _FIREWALLD_DENY_TARGETS:
            opened.append(f"firewalld zone {name}: target {zone.get('target') or 'unknown'}")
        sources = zone.get("sources", "").split()
        if sources and not zone.get("interfaces") and within(sources, admin):
            continue  # the zone only takes traffic from admin networks
        for key in _FIREWALLD_OPENINGS:
            if zone.get(key):
                opened.append(f"firewalld zone {name} {key}: {zone[key]}")
    return denies, opened


def check_inbound_default_deny(host: HostConnection, policy: Policy, evidence: Evidence) -> None:
    """Record whether inbound IPv4 (and IPv6, when in use) is denied by default.

    Evidence comes from ``nft -j list ruleset``, ``iptables-save``/``ip6tables-save`` and,
    when active, ufw or firewalld. No rule reader at all raises ``EvidenceUnavailable``.
    """
    admin = admin_networks(policy)
    found = _Sources(verdicts=[], read=[], frontends={})
    tools = find_tools(host, _TOOLS)
    _kernel_rules(host, admin, found, tools)
    frontends = (
        ("ufw", _ufw(host, admin) if tools["ufw"] else None),
        ("firewalld", _firewalld(host, admin) if tools["firewall-cmd"] else None),
    )
    for name, probe in frontends:
        if probe is not None:
            found.frontends[name] = probe
            found.read.append(name)
    if not found.read:
        raise EvidenceUnavailable(
            f"{host.target_id}: no firewall rule reader on the host (nft, iptables-save, ufw or "
            f"firewall-cmd), so inbound filtering cannot be read"
        )
    evidence.observe("rules read from", ", ".join(found.read))
    if found.not_counted:
        evidence.observe("hooked chains not counted", "; ".join(found.not_counted))
    for note in found.unseen:
        evidence.unobserved(
            "nftables table state", expected="every counted chain attached to its hook", reason=note
        )
    evidence.observe("admin networks allowed in", ", ".join(map(str, admin)) or "none declared")
    families = ["IPv4", *(["IPv6"] if ipv6_in_use(host) else [])]
    if "IPv6" not in families:
        evidence.observe("IPv6", "no non-loopback IPv6 address: only IPv4 needs a filter")
    for family in families:
        _judge_family(family, found, evidence)


def _judge_family(family: str, found: _Sources, evidence: Evidence) -> None:
    relevant = [v for v in found.verdicts if family in _FAMILY_COVERS.get(v.chain.family, ())]
    clean = [v for v in relevant if v.clean]
    # A front end's word counts only where the kernel's own rules deny by default: its
    # status can outlive the rules it wrote (flushed, replaced, policy set to accept).
    kernel_denies = any(v.denies_by_default for v in relevant)
    frontend_ok = [
        name for name, (denies, opened) in found.frontends.items() if denies and not opened and kernel_denies
    ]
    for verdict in clean:
        for rule in verdict.icmp_rules:
            evidence.warn(
                f"{family} ICMP accepted ({verdict.chain.label})",
                expected="no inbound accept beyond the exceptions",
                actual=rule,
            )
    if clean:
        best = clean[0]
        actual = f"{best.chain.label}: {best.how}"
        evidence.expect(f"{family} inbound default-deny", expected=EXPECTED, actual=actual, ok=True)
        return
    if frontend_ok:
        actual = f"{frontend_ok[0]} denies incoming by default and allows no other source"
        evidence.expect(f"{family} inbound default-deny", expected=EXPECTED, actual=actual, ok=True)
        return
    problems = [_describe(v) for v in relevant]
    for name, (denies, opened) in found.frontends.items():
        if not denies:
            state = "default allows incoming" + (f": {'; '.join(opened)}" if opened else "")
        elif opened:
            state = "default deny, but opens " + "; ".join(opened)
        else:
            state = "says it denies incoming by default, but the kernel's input rules do not"
        problems.append(f"{name}: {state}")
    if not problems:
        problems.append("no active input filter chain at all (no firewall)")
        problems += [f"not counted: {note}" for note in found.not_counted]
    actual = "; ".join(problems)
    evidence.expect(f"{family} inbound default-deny", expected=EXPECTED, actual=actual, ok=False)


def _describe(verdict: ChainVerdict) -> str:
    chain: Chain = verdict.chain
    text = f"{chain.label}: {verdict.how}"
    if verdict.open_rules:
        text += "; accepts from any source: " + " | ".join(verdict.open_rules[:5])
        if len(verdict.open_rules) > 5:
            text += f" (+{len(verdict.open_rules) - 5} more)"
    return text
