"""Split a run's targets over several runs (shards), so that N pods check N parts in parallel.

A target belongs to shard ``sha256(uri) mod COUNT``: the split depends on nothing but the
target's own URI, so reordering, adding or removing other targets never moves it, and every
shard computes the same split without talking to the others. The policy target belongs to
shard 0 only, so that a merge of the shards' results (``secagent report``) holds it once.

A control none of a shard's targets is of a kind for, while another shard has such a target,
is left out of that shard (:class:`ShardDeselection`) instead of being reported "not
applicable": the merged report then equals that of a single run over all the targets.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pytest

from pytest_secagent.targets import Target, TargetKind

__all__ = [
    "INDEX_ENV",
    "Shard",
    "ShardDeselection",
    "ShardError",
    "parse_shard",
    "shard_of",
]

INDEX_ENV = "JOB_COMPLETION_INDEX"
"""Where ``env/COUNT`` reads the index: the variable a Kubernetes Indexed Job sets in each pod."""
_FORM = re.compile(r"^\s*(?P<index>[0-9]+|env)\s*/\s*(?P<count>[0-9]+)\s*$")


class ShardError(ValueError):
    """A shard specification that cannot be used; the message says why."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (0-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, target: Target) -> bool:
        """Whether ``target`` is checked by this shard (the policy target: by shard 0 only)."""
        if target.kind is TargetKind.POLICY:
            return self.index == 0
        return shard_of(target.uri, self.count) == self.index

    def select(self, targets: Iterable[Target]) -> tuple[Target, ...]:
        """The targets this shard checks, in their given order."""
        return tuple(t for t in targets if self.owns(t))


def shard_of(uri: str, count: int) -> int:
    """Return the shard (0 to ``count - 1``) a target URI belongs to."""
    digest = hashlib.sha256(uri.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(value: str, environ: Mapping[str, str] | None = None) -> Shard:
    """Parse ``INDEX/COUNT`` (``1/3``) or ``env/COUNT``, whose index is ``$JOB_COMPLETION_INDEX``.

    Raise :class:`ShardError` naming what is wrong: the form, a zero count, an index out
    of range, or a missing or non-numeric environment variable.
    """
    match = _FORM.match(value)
    if match is None:
        raise ShardError(f"{value!r} is not INDEX/COUNT")
    count = int(match["count"])
    if count < 1:
        raise ShardError(f"{value!r} has no shard: COUNT must be at least 1")
    if match["index"] == "env":
        environ = os.environ if environ is None else environ
        found = environ.get(INDEX_ENV)
        if found is None:
            raise ShardError(f"{value!r} reads ${INDEX_ENV}, which is not set")
        if not found.strip().isdigit():
            raise ShardError(f"{value!r} reads ${INDEX_ENV}, which is {found!r}, not an index")
        index = int(found)
    else:
        index = int(match["index"])
    if index >= count:
        raise ShardError(f"{value!r}: index {index} is not below the count {count} (indexes start at 0)")
    return Shard(index, count)


class ShardDeselection:
    """Leave out the "not applicable" item of a control another shard has a target for.

    Registered (with the shard's whole target list) only on sharded runs.
    """

    def __init__(self, kinds_elsewhere: Iterable[TargetKind]) -> None:
        self._kinds = frozenset(kinds_elsewhere)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Deselect the items whose control this shard has no target for, but another shard has."""
        from pytest_secagent.applicability import TARGET_FIXTURE, binding_for

        kept: list[pytest.Item] = []
        deselected: list[pytest.Item] = []
        for item in items:
            callspec = getattr(item, "callspec", None)
            binding = binding_for(item, item.nodeid, getattr(item, "fixturenames", ()))
            if (
                binding is not None
                and callspec is not None
                and callspec.params.get(TARGET_FIXTURE, ...) is None
                and self._kinds & set(binding.applies_to)
            ):
                deselected.append(item)
            else:
                kept.append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = kept
