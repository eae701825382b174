"""Read ``nft -j list ruleset`` into the firewall-neutral rule model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pytest_secagent.host.checks.rules import Chain, Network, Rule, within

__all__ = ["parse_nft_ruleset"]

_FAMILIES = ("ip", "ip6", "inet")
_VERDICTS = ("accept", "drop", "reject", "queue", "return", "jump", "goto", "continue")
_ICMP = frozenset({"icmp", "icmpv6", "ipv6-icmp"})
_LOOPBACK = frozenset({"lo"})
_STATEFUL = frozenset({"established", "related"})


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
    kinds: list[str | None] = []
    words: list[str] = []
    verdict: tuple[str, str | None] | None = None
    vmap: dict[str, Any] | None = None
    for statement in expr:
        if "match" in statement:
            match = statement["match"]
            kinds.append(_match_kind(match, admin))
            words.append(f"{_render(match.get('left'))} {match.get('op')} {_render(match.get('right'))}")
        elif "vmap" in statement:
            vmap = statement["vmap"]
        elif (found := _verdict(statement, scope)) is not None:
            verdict = found
            words.append(found[0] + (f" {found[1].split()[-1]}" if found[1] else ""))
        elif not any(k in statement for k in ("counter", "log", "limit", "comment", "meter")):
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


def parse_nft_ruleset(text: str, admin: Sequence[Network]) -> tuple[list[Chain], dict[str, Chain]]:
    """Return the input-hook base chains and every chain by ``"family table name"``.

    Raises ``ValueError`` when the text is not nft's JSON.
    """
    document = json.loads(text)
    items = document.get("nftables") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ValueError("not the JSON of `nft -j list ruleset`")
    heads: dict[str, dict[str, Any]] = {}
    bodies: dict[str, list[Rule]] = {}
    for item in items:
        if "chain" in item:
            chain = item["chain"]
            key = f"{chain['family']} {chain['table']} {chain['name']}"
            heads[key] = chain
            bodies.setdefault(key, [])
        elif "rule" in item:
            rule = item["rule"]
            key = f"{rule['family']} {rule['table']} {rule['chain']}"
            scope = f"{rule['family']} {rule['table']}"
            bodies.setdefault(key, []).extend(_rules(rule.get("expr", []), admin, scope))
    chains: dict[str, Chain] = {}
    for key, head in heads.items():
        chains[key] = Chain(
            name=f"{head['table']}/{head['name']}",
            family=head["family"],
            policy=head.get("policy") if head.get("hook") else None,
            rules=tuple(bodies.get(key, [])),
            source="nftables",
        )
    base = [
        chains[key]
        for key, head in heads.items()
        if head.get("hook") == "input" and head.get("family") in _FAMILIES
        and head.get("type", "filter") == "filter"
    ]
    return base, chains
