"""Engine version numbers: parsing, comparing, and which release lines are past their end of life."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pytest_secagent.host.engine.client import EngineKind

__all__ = ["LIFECYCLE", "ReleaseLine", "at_least", "lifecycle_of", "parse_version"]

_NUMBERS = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")


def parse_version(text: str) -> tuple[int, ...] | None:
    """The numeric part of a version string (``20.10.24+dfsg1`` -> ``(20, 10, 24)``), or ``None``."""
    match = _NUMBERS.match(text)
    if match is None:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


def at_least(version: tuple[int, ...], minimum: tuple[int, ...]) -> bool:
    """Whether ``version`` is at or above ``minimum``, missing parts counting as zero."""
    width = max(len(version), len(minimum))
    return version + (0,) * (width - len(version)) >= minimum + (0,) * (width - len(minimum))


@dataclass(frozen=True)
class ReleaseLine:
    """A release line of an engine and the day upstream stopped fixing it."""

    kind: EngineKind
    below: tuple[int, ...]
    end_of_life: dt.date
    note: str

    def covers(self, kind: EngineKind, version: tuple[int, ...]) -> bool:
        """Whether ``version`` of ``kind`` belongs to this line (or an older one)."""
        return kind is self.kind and not at_least(version, self.below)


# Upstream maintenance as published by the projects; a distribution may backport fixes to
# a line past these dates, which is why an end-of-life line is a warning, not a failure.
# Docker: moby/moby project/BRANCHES-AND-TAGS.md and the Docker Engine release notes.
# Podman: the project maintains its newest minor release only; 4.x ended with 5.0.
LIFECYCLE: tuple[ReleaseLine, ...] = (
    ReleaseLine(EngineKind.DOCKER, (23, 0), dt.date(2023, 12, 10),
                "Docker Engine 20.10 and older are no longer maintained upstream"),
    ReleaseLine(EngineKind.DOCKER, (24, 0), dt.date(2025, 5, 19),
                "Docker Engine 23.0 is no longer maintained upstream"),
    ReleaseLine(EngineKind.DOCKER, (25, 0), dt.date(2024, 6, 8),
                "Docker Engine 24.0 is no longer maintained upstream"),
    ReleaseLine(EngineKind.PODMAN, (5, 0), dt.date(2024, 3, 19),
                "Podman 4.x receives no upstream releases since Podman 5.0"),
)


def lifecycle_of(kind: EngineKind, version: tuple[int, ...], today: dt.date) -> ReleaseLine | None:
    """The end-of-life line ``version`` belongs to on ``today``, or ``None`` when it is maintained."""
    for line in LIFECYCLE:
        if line.covers(kind, version) and line.end_of_life <= today:
            return line
    return None
