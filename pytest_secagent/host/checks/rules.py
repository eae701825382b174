"""A firewall-neutral model of inbound rules, and the default-deny verdict over it.

nftables and iptables rules are both turned into :class:`Chain` objects whose rules know
what they accept and under which restriction; :func:`evaluate_chain` then walks a base
input chain the way the kernel would and says whether inbound traffic is denied by
default with only established/related, loopback and admin-source exceptions.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "Chain",
    "ChainVerdict",
    "Network",
    "Rule",
    "evaluate_chain",
    "parse_networks",
    "within",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ACCEPTING = frozenset({"accept", "queue"})
DENYING = frozenset({"drop", "reject"})
_MAX_DEPTH = 16


@dataclass(frozen=True)
class Rule:
    """One rule: its text, its verdict and whether its matches restrict what it lets in.

    ``restriction`` names why an accepting rule is harmless (``established/related``,
    ``loopback``, ``admin source``) or is ``None``; ``icmp`` marks rules that only match
    ICMP; ``unconditional`` rules match every packet. ``opaque`` rules hold a match the
    reader cannot see into (an iptables extension shown by nft as ``xt``).
    """

    text: str
    verdict: str | None
    target: str | None = None
    restriction: str | None = None
    icmp: bool = False
    unconditional: bool = False
    opaque: bool = False


@dataclass(frozen=True)
class Chain:
    """A chain: a base chain carries a ``policy`` and a ``hook``, a regular chain neither.

    ``priority`` orders base chains on the same hook (lower runs first) and ``kind`` is the
    nftables chain type (``filter``, ``nat``, ``route``).
    """

    name: str
    family: str
    policy: str | None
    rules: tuple[Rule, ...]
    source: str
    hook: str | None = None
    priority: int = 0
    kind: str = "filter"

    @property
    def label(self) -> str:
        """How reports name the chain."""
        return f"{self.source} {self.family} {self.name}"


@dataclass
class ChainVerdict:
    """What walking one base input chain showed."""

    chain: Chain
    denies_by_default: bool = False
    how: str = ""
    open_rules: list[str] = field(default_factory=list)
    icmp_rules: list[str] = field(default_factory=list)
    opaque_open_rules: int = 0

    @property
    def clean(self) -> bool:
        """Default-deny with nothing accepted beyond the allowed exceptions."""
        return self.denies_by_default and not self.open_rules


def evaluate_chain(chain: Chain, chains: Mapping[str, Chain]) -> ChainVerdict:
    """Walk a base input chain (following jumps) and judge its default-deny."""
    verdict = ChainVerdict(chain)
    ended = _walk(chain, chains, verdict, depth=0)
    if ended is not None:
        verdict.denies_by_default = True
        verdict.how = ended
    elif (chain.policy or "accept") in DENYING:
        verdict.denies_by_default = True
        verdict.how = f"policy {chain.policy}"
    else:
        verdict.how = f"policy {chain.policy or 'accept'} and no final drop or reject rule"
    return verdict


def _walk(chain: Chain, chains: Mapping[str, Chain], verdict: ChainVerdict, depth: int) -> str | None:
    """Return a description of the unconditional deny that ends the walk, or ``None``."""
    if depth > _MAX_DEPTH:
        verdict.open_rules.append(f"{chain.name}: jumps nested too deep to follow")
        return None
    for rule in chain.rules:
        where = f"{chain.name}: {rule.text}"
        if rule.verdict in ACCEPTING:
            if rule.restriction is not None:
                continue
            if rule.icmp:
                verdict.icmp_rules.append(where)
                continue
            verdict.open_rules.append(where)
            verdict.opaque_open_rules += rule.opaque
            if rule.unconditional:
                return None
        elif rule.verdict in DENYING and rule.unconditional:
            return f"final rule `{where}`"
        elif rule.verdict in ("jump", "goto") and rule.target is not None:
            if rule.restriction is not None:
                continue
            inner = chains.get(rule.target)
            if inner is None:
                verdict.open_rules.append(f"{where} (unknown chain)")
                continue
            ended = _walk(inner, chains, verdict, depth + 1)
            if ended is not None and rule.unconditional:
                return ended
            if rule.verdict == "goto" and rule.unconditional:
                return None
        elif rule.verdict == "return" and rule.unconditional:
            return None
    return None


def parse_networks(values: Iterable[str]) -> list[Network]:
    """Parse CIDRs and addresses, ignoring values that are not networks."""
    networks: list[Network] = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            continue
    return networks


def within(addresses: Iterable[str], allowed: Iterable[Network]) -> bool:
    """Whether every address or prefix in ``addresses`` lies inside an allowed network."""
    allowed = list(allowed)
    values = list(addresses)
    if not values or not allowed:
        return False
    for value in values:
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return False
        if not any(
            network.version == candidate.version and network.subnet_of(candidate)  # type: ignore[arg-type]
            for candidate in allowed
        ):
            return False
    return True
