"""Read ``iptables-save`` / ``ip6tables-save`` output into the firewall-neutral rule model."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from pytest_secagent.host.checks.rules import Chain, Network, Rule, within

__all__ = ["parse_iptables_save"]

_STATEFUL = frozenset({"ESTABLISHED", "RELATED"})
_ICMP = frozenset({"icmp", "icmpv6", "ipv6-icmp", "1", "58"})
_VERDICTS = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return", "NFQUEUE": "queue"}
_IGNORED_MODULES = frozenset({"comment", "limit", "tcp", "udp", "icmp", "icmp6"})


def _rule(line: str, admin: Sequence[Network]) -> Rule:
    words = shlex.split(line)[2:]  # drop "-A CHAIN"
    kinds: list[str | None] = []
    verdict: str | None = None
    target: str | None = None
    negate = False
    index = 0
    while index < len(words):
        word = words[index]
        value = words[index + 1] if index + 1 < len(words) else ""
        step = 2
        if word == "!":
            negate, index = True, index + 1
            continue
        if word in ("-j", "--jump", "-g", "--goto"):
            verdict = _VERDICTS.get(value, "goto" if word in ("-g", "--goto") else "jump")
            target = None if value in _VERDICTS else value
            step = len(words) - index  # target options follow; the verdict is all we need
        elif word in ("-i", "--in-interface"):
            kinds.append("loopback" if value == "lo" and not negate else None)
        elif word in ("-s", "--source", "--src"):
            ok = not negate and within(value.split(","), admin)
            kinds.append("admin source" if ok else None)
        elif word in ("-p", "--protocol"):
            kinds.append("icmp" if value.lower() in _ICMP and not negate else None)
        elif word in ("--ctstate", "--state"):
            states = set(value.upper().split(","))
            kinds.append("established/related" if states <= _STATEFUL and not negate else None)
        elif word in ("-m", "--match"):
            step = 2
            if value not in _IGNORED_MODULES and value not in ("conntrack", "state"):
                kinds.append(None)
        elif word.startswith("-"):
            # any other match option narrows the rule without making it an allowed exception
            kinds.append(None)
            step = 2 if value and not value.startswith("-") and value != "!" else 1
        else:
            step = 1
        negate = False
        index += step
    restriction = next((k for k in kinds if k not in (None, "icmp")), None)
    return Rule(
        text=line,
        verdict=verdict,
        target=target,
        restriction=restriction,
        icmp="icmp" in kinds and restriction is None,
        unconditional=not kinds,
    )


def _extension_targets(rules: list[Rule], declared: dict[str, str | None]) -> list[Rule]:
    """Rules jumping to a target that is no chain (LOG, MARK, NFLOG...) decide nothing.

    Such targets act on the packet and let it continue; reading them as jumps to an
    unknown chain would report an open rule that is not there.
    """
    return [
        Rule(text=rule.text, verdict=None)
        if rule.verdict == "jump" and rule.target is not None and rule.target not in declared
        else rule
        for rule in rules
    ]


def parse_iptables_save(
    text: str, family: str, admin: Sequence[Network], source: str
) -> tuple[list[Chain], dict[str, Chain]]:
    """Return the ``filter`` table's INPUT chain (if any) and every chain of that table."""
    policies: dict[str, str | None] = {}
    bodies: dict[str, list[Rule]] = {}
    table = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table = line[1:]
        elif table != "filter" or not line or line.startswith("#") or line == "COMMIT":
            continue
        elif line.startswith(":"):
            name, policy = [*line[1:].split(), "-"][:2]
            policies[name] = None if policy == "-" else policy.lower()
            bodies.setdefault(name, [])
        elif line.startswith("-A "):
            name = line.split()[1]
            bodies.setdefault(name, []).append(_rule(line, admin))
    chains = {
        name: Chain(
            name=name,
            family=family,
            policy=policies.get(name),
            rules=tuple(_extension_targets(rules, policies)),
            source=source,
        )
        for name, rules in bodies.items()
    }
    base = [chains["INPUT"]] if "INPUT" in chains else []
    return base, chains
