"""Helpers of the host tests: run a check the way the suite does and read its evidence."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pytest_secagent.evidence import Evidence, Verdict
from pytest_secagent.host.base import HostConnection
from pytest_secagent.policy.model import Policy

Check = Callable[[HostConnection, Policy, Evidence], None]

MINIMAL_TOOLS = ("sh", "cat", "date", "stat", "ls", "test", "env")


def run_check(check: Check, host: HostConnection, policy: Policy | None = None) -> Evidence:
    evidence = Evidence()
    check(host, policy or Policy(), evidence)
    return evidence


def verdicts(evidence: Evidence) -> dict[str, Verdict]:
    return {o.name: o.verdict for o in evidence.observations}


def line(evidence: Evidence, name: str) -> str:
    return next(o.as_line() for o in evidence.observations if o.name == name)


def minimal_bin(folder: Path) -> Path:
    """A folder with only a shell and core utilities: a host without any other tool."""
    folder.mkdir(parents=True, exist_ok=True)
    for tool in MINIMAL_TOOLS:
        for prefix in ("/usr/bin", "/bin"):
            if Path(prefix, tool).exists():
                os.symlink(Path(prefix, tool), folder / tool)
                break
    return folder
