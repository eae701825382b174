"""Read ``nft -j list ruleset`` into the firewall-neutral rule model.

Only what the kernel applies to inbound packets is judged: base chains of type
``filter`` attached to the ``prerouting`` or ``input`` hook of an ``ip``, ``ip6`` or
``inet`` table that is not dormant. Every such chain sees the packet in priority order
and a drop in any of them is final, so one chain that denies by default is enough; an
accept only ends its own chain. Chains on other hooks, of other types (``nat`` chains
see only the first packet of a connection) or in ``netdev``/``bridge`` tables are
listed as not counted, never as a deny.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_secagent.host.checks.rules import Chain, Network, Rule, within

__all__ = ["NftListing", "NftRuleset", "nft_listing", "nft_table_flags", "parse_nft_ruleset"]

_FAMILIES = ("ip", "ip6", "inet")
#: Hooks a packet for this host passes, in the order it passes them.
_INBOUND_HOOKS = ("prerouting", "input")
_VERDICTS = ("accept", "drop", "reject", "queue", "return", "jump", "goto", "continue")
#: Statements that act on the packet without deciding whether the rule matches it.
_ACTIONS = frozenset({"counter", "log", "mangle", "notrack"})
_KNOWN_TABLE_FLAGS = frozenset({"dormant", "owner", "persist"})
_ICMP = frozenset({"icmp", "icmpv6", "ipv6-icmp"})
_LOOPBACK = frozenset({"lo"})
_STATEFUL = frozenset({"established", "related"})
_TABLE_LINE = re.compile(r'^table (\S+) "?([^"\s]+)"? \{\s*$')
_TABLE_FLAGS_LINE = re.compile(r"^\tflags (.+?)\s*$")


@dataclass
class NftRuleset:
    """The chains of one nftables ruleset.

    ``inbound`` holds the base chains that filter packets for this host, in the order the
    kernel runs them; ``chains`` every chain by ``"family table name"`` (jump targets);
    ``not_counted`` says which hooked chains were left out and why (dormant table, other
    type, other family).
    """

    inbound: list[Chain] = field(default_factory=list)
    chains: dict[str, Chain] = field(default_factory=dict)
    not_counted: list[str] = field(default_factory=list)


@dataclass
class NftListing:
    """What the text of ``nft list ruleset`` says: table flags and rules per chain."""

    flags: dict[str, frozenset[str]] = field(default_factory=dict)
    rules: dict[str, int] = field(default_factory=dict)


_CHAIN_LINE = re.compile(r'^\tchain "?([^"\s]+)"? \{\s*$')
_CHAIN_SETTINGS = ("type ", "comment ", "policy ", "devices ")


def nft_listing(text: str) -> NftListing:
    """Read the table flags and the number of rules in each chain from ``nft list ruleset``.

    The JSON listing of some nft releases prints a wrong value for a table's flags, so
    the flags are read here, where a table's own ``flags`` line is the only one indented
    by a single tab. A rule is a line indented by exactly two tabs inside a chain (longer
    rules continue on deeper lines); the counts let the JSON be checked for missing rules.
    """
    found = NftListing()
    table: str | None = None
    chain: str | None = None
    for line in text.splitlines():
        if header := _TABLE_LINE.match(line):
            table, chain = f"{header.group(1)} {header.group(2)}", None
            found.flags[table] = frozenset()
        elif line.startswith("}"):
            table, chain = None, None
        elif table is None:
            continue
        elif opened := _CHAIN_LINE.match(line):
            chain = f"{table} {opened.group(1)}"
            found.rules[chain] = 0
        elif line.startswith("\t}"):
            chain = None
        elif chain is None:
            if flags := _TABLE_FLAGS_LINE.match(line):
                found.flags[table] = frozenset(word.strip() for word in flags.group(1).split(","))
        elif line.startswith("\t\t") and line[2:3] not in ("\t", " ", "") and not line[2:].startswith(
            _CHAIN_SETTINGS
        ):
            found.rules[chain] += 1
    return found


def nft_table_flags(text: str) -> dict[str, frozenset[str]]:
    """The flags of every table in the text of ``nft list ruleset``, by ``"family name"``."""
    return nft_listing(text).flags


def _render(value: Any) -> str:
    if isinstance(value, dict):
        if "prefix" in value:
            return f"{value['prefix']['addr']}/{value['prefix']['len']}"
        if "set" in value:
            return "{" + ", ".join(_render(v) for v in value["set"]) + "}"
        if "range" in value:
            low, high = value["range"]
            return f"{_render(low)}-{_render(high)}"
        if "payload" in value:
            return f"{value['payload'].get('protocol', '')} {value['payload'].get('field', '')}".strip()
        if "meta" in value:
            return str(value["meta"].get("key", "meta"))
        if "ct" in value:
            return f"ct {value['ct'].get('key', '')}"
        key = next(iter(value), "?")
        return key
    if isinstance(value, list):
        return ",".join(_render(v) for v in value)
    return str(value)


def _values(right: Any) -> list[Any]:
    if isinstance(right, dict) and "set" in right:
        return list(right["set"])
    if isinstance(right, list):
        return list(right)
    return [right]


def _addresses(right: Any) -> list[str] | None:
    found: list[str] = []
    for value in _values(right):
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict) and "prefix" in value:
            found.append(f"{value['prefix']['addr']}/{value['prefix']['len']}")
        else:
            return None
    return found


def _match_kind(match: dict[str, Any], admin: Sequence[Network]) -> str | None:
    """Name the restriction a match imposes, ``"icmp"`` for ICMP-only, or ``None``."""
    op = match.get("op", "==")
    left, right = match.get("left", {}), match.get("right")
    if op not in ("==", "in") or not isinstance(left, dict):
        return None
    if "ct" in left and left["ct"].get("key") == "state":
        states = {str(v) for v in _values(right)}
        return "established/related" if states and states <= _STATEFUL else None
    if "meta" in left:
        key = left["meta"].get("key")
        values = {str(v) for v in _values(right)}
        if key in ("iif", "iifname") and values and values <= _LOOPBACK:
            return "loopback"
        if key in ("l4proto", "nfproto", "protocol") and values and values <= _ICMP:
            return "icmp"
        return None
    if "payload" in left:
        payload = left["payload"]
        if payload.get("protocol") in ("ip", "ip6") and payload.get("field") == "saddr":
            addresses = _addresses(right)
            if addresses is not None and within(addresses, admin):
                return "admin source"
            return None
        if payload.get("protocol") in _ICMP:
            return "icmp"
        if payload.get("protocol") in ("ip", "ip6") and payload.get("field") in ("protocol", "nexthdr"):
            values = {str(v) for v in _values(right)}
            return "icmp" if values and values <= _ICMP else None
    return None


def _verdict(statement: dict[str, Any], scope: str) -> tuple[str, str | None] | None:
    for name in _VERDICTS:
        if name in statement:
            body = statement[name]
            target = body.get("target") if isinstance(body, dict) else None
            return name, f"{scope} {target}" if target else None
    return None


def _rules(expr: list[dict[str, Any]], admin: Sequence[Network], scope: str) -> list[Rule]:
    if not isinstance(expr, list):
        raise ValueError(f"a rule of {scope} has no expression list")
    kinds: list[str | None] = []
    words: list[str] = []
    verdict: tuple[str, str | None] | None = None
    vmap: dict[str, Any] | None = None
    opaque = any(isinstance(statement, dict) and "xt" in statement for statement in expr)
    for statement in expr:
        if not isinstance(statement, dict):
            raise ValueError(f"a rule of {scope} holds {statement!r}, not a statement")
        if "match" in statement:
            match = statement["match"]
            kinds.append(_match_kind(match, admin))
            words.append(f"{_render(match.get('left'))} {match.get('op')} {_render(match.get('right'))}")
        elif "vmap" in statement:
            vmap = statement["vmap"]
        elif (found := _verdict(statement, scope)) is not None:
            verdict = found
            words.append(found[0] + (f" {found[1].split()[-1]}" if found[1] else ""))
        elif not any(k in statement for k in _ACTIONS):
            # limit, quota, meters, xt matches...: the rule applies to some packets only
            kinds.append(None)
            words.append(next(iter(statement), "?"))
    text = " ".join(words) or "(empty rule)"
    restriction = next((k for k in kinds if k not in (None, "icmp")), None)
    icmp = "icmp" in kinds
    unconditional = not kinds
    if vmap is not None:
        return _vmap_rules(vmap, kinds, words, admin, scope)
    if verdict is None:
        return [Rule(text=text, verdict=None)]
    return [
        Rule(
            text=text,
            verdict=verdict[0],
            target=verdict[1],
            restriction=restriction,
            icmp=icmp and restriction is None,
            unconditional=unconditional,
            opaque=opaque,
        )
    ]


def _vmap_rules(
    vmap: dict[str, Any],
    kinds: list[str | None],
    words: list[str],
    admin: Sequence[Network],
    scope: str,
) -> list[Rule]:
    """One rule per map element: ``key == element  verdict``."""
    rules: list[Rule] = []
    data = vmap.get("data", {})
    for element in _values(data):
        if not (isinstance(element, list) and len(element) == 2 and isinstance(element[1], dict)):
            rules.append(Rule(text=f"{_render(vmap.get('key'))} vmap (unreadable element)", verdict="accept"))
            continue
        value, statement = element
        found = _verdict(statement, scope)
        if found is None:
            continue
        match = {"op": "==", "left": vmap.get("key"), "right": value}
        element_kinds = [*kinds, _match_kind(match, admin)]
        restriction = next((k for k in element_kinds if k not in (None, "icmp")), None)
        text = " ".join([*words, f"{_render(vmap.get('key'))} {_render(value)} : {found[0]}"])
        rules.append(
            Rule(
                text=text,
                verdict=found[0],
                target=found[1],
                restriction=restriction,
                icmp="icmp" in element_kinds and restriction is None,
            )
        )
    return rules


def _json_flags(value: Any) -> frozenset[str] | None:
    """A table's flags from the JSON, or ``None`` when the value names no known flag."""
    words = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if words is None or not all(isinstance(w, str) and w in _KNOWN_TABLE_FLAGS for w in words):
        return None
    return frozenset(words)


def _inactive_tables(
    tables: dict[str, dict[str, Any]], text_flags: Mapping[str, frozenset[str]] | None
) -> dict[str, str]:
    """Tables whose chains cannot be counted, with the reason."""
    inactive: dict[str, str] = {}
    for key, table in tables.items():
        flags = set(_json_flags(table.get("flags")) or ())
        if text_flags is not None:
            if key not in text_flags:
                raise ValueError(f"table {key} is missing from the text listing (changed while read?)")
            flags |= text_flags[key]
        elif "flags" in table and _json_flags(table["flags"]) is None:
            inactive[key] = f"flags {table['flags']!r} cannot be read, so whether it is dormant is unknown"
            continue
        if "dormant" in flags:
            inactive[key] = "table is dormant (flags dormant): its chains are not attached to any hook"
        elif unknown := flags - _KNOWN_TABLE_FLAGS:
            names = ", ".join(sorted(unknown))
            inactive[key] = f"unknown table flags {names}: cannot tell whether it is active"
    return inactive


def _priority(head: dict[str, Any]) -> int:
    prio = head.get("prio", 0)
    if not isinstance(prio, int):
        raise ValueError(f"chain {head.get('table')}/{head.get('name')} has priority {prio!r}, not a number")
    return prio


def parse_nft_ruleset(
    text: str, admin: Sequence[Network], listing: NftListing | None = None
) -> NftRuleset:
    """Read the JSON of ``nft -j list ruleset``; ``listing`` is :func:`nft_listing` of the text.

    Raises ``ValueError`` when the text is not nft's JSON or is incomplete (a chain of an
    unlisted table, a rule of an unlisted chain, fewer rules than the text listing shows):
    a cut listing could hide the accept that opens the host.
    """
    document = json.loads(text)
    items = document.get("nftables") if isinstance(document, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError("not the JSON of `nft -j list ruleset`")
    if not any("metainfo" in item for item in items):
        raise ValueError("the listing has no metainfo entry, so it is not a whole `nft -j list ruleset`")
    tables: dict[str, dict[str, Any]] = {}
    heads: dict[str, dict[str, Any]] = {}
    bodies: dict[str, list[Rule]] = {}
    counts: dict[str, int] = {}
    for item in items:
        if "table" in item:
            table = item["table"]
            tables[f"{table['family']} {table['name']}"] = table
        elif "chain" in item:
            chain = item["chain"]
            if f"{chain['family']} {chain['table']}" not in tables:
                table_key = f"{chain['family']} {chain['table']}"
                raise ValueError(f"chain {chain['name']} of unlisted table {table_key}")
            key = f"{chain['family']} {chain['table']} {chain['name']}"
            heads[key] = chain
            bodies.setdefault(key, [])
        elif "rule" in item:
            rule = item["rule"]
            key = f"{rule['family']} {rule['table']} {rule['chain']}"
            if key not in heads:
                raise ValueError(f"rule of unlisted chain {key}")
            scope = f"{rule['family']} {rule['table']}"
            bodies[key].extend(_rules(rule.get("expr", []), admin, scope))
            counts[key] = counts.get(key, 0) + 1
    if listing is not None:
        for key in heads:
            if listing.rules.get(key, -1) != counts.get(key, 0):
                raise ValueError(
                    f"chain {key} has {counts.get(key, 0)} rules in the JSON listing but "
                    f"{listing.rules.get(key, 'no chain')} in the text listing (changed or cut while read?)"
                )
    inactive = _inactive_tables(tables, listing.flags if listing is not None else None)
    found = NftRuleset()
    for key, head in heads.items():
        found.chains[key] = Chain(
            name=f"{head['table']}/{head['name']}",
            family=head["family"],
            policy=head.get("policy") if head.get("hook") else None,
            rules=tuple(bodies.get(key, [])),
            source="nftables",
            hook=head.get("hook"),
            priority=_priority(head) if head.get("hook") else 0,
            kind=str(head.get("type", "filter")),
        )
    order = {hook: index for index, hook in enumerate(_INBOUND_HOOKS)}
    for key, head in heads.items():
        chain, table = found.chains[key], f"{head['family']} {head['table']}"
        if chain.hook is None:
            continue  # a regular chain: it runs only when a counted chain jumps to it
        reason = _not_counted(chain, inactive.get(table))
        if reason is None:
            found.inbound.append(chain)
        elif chain.hook in (*_INBOUND_HOOKS, "ingress") or chain.policy in ("drop", "reject"):
            found.not_counted.append(f"{chain.label} (hook {chain.hook}, policy {chain.policy}): {reason}")
    found.inbound.sort(key=lambda c: (order[c.hook or "input"], c.priority))
    return found


def _not_counted(chain: Chain, inactive: str | None) -> str | None:
    if inactive is not None:
        return inactive
    if chain.family not in _FAMILIES:
        return f"{chain.family} chains are not counted (they do not filter by this host's IP hooks)"
    if chain.hook not in _INBOUND_HOOKS:
        return f"hook {chain.hook} does not filter traffic addressed to this host"
    if chain.kind != "filter":
        return f"a {chain.kind} chain does not filter every packet (only filter chains are counted)"
    return None
