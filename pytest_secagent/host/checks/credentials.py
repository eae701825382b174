"""SA-SECRET-002 for hosts: credential files are private to the agent user."""

from __future__ import annotations

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.checks.common import stat_path
from pytest_secagent.outcomes import EvidenceUnavailable, not_applicable
from pytest_secagent.policy.model import Policy

__all__ = ["check_credential_files"]


def check_credential_files(host: HostConnection, policy: Policy, evidence: Evidence) -> None:
    """Record, per declared credential file, that others cannot read it and the agent user owns it.

    Group access is a lower-severity finding; a declared file that is missing is an error,
    since its protection cannot be shown.
    """
    files = policy.credentials.files
    if not files:
        not_applicable("no credential files declared (policy credentials.files)")
    owner = policy.agent.user
    missing = []
    for path in files:
        info = stat_path(host, path)
        if info is None:
            missing.append(path)
            continue
        evidence.expect(
            f"{path} not accessible to others",
            expected="no permission bits for others (mode ≤ 0770, ideally 0600)",
            actual=f"mode {info.mode:04o}",
            ok=info.world_bits == 0,
        )
        evidence.expect(
            f"{path} owner",
            expected=f"the agent user {owner!r}",
            actual=f"{info.user!r} (uid {info.uid})",
            ok=info.user == owner,
        )
        if info.group_bits:
            evidence.warn(
                f"{path} group access",
                expected="mode 0600 (owner only)",
                actual=f"mode {info.mode:04o}, group {info.group!r}",
            )
    if missing:
        raise EvidenceUnavailable(
            f"{host.target_id}: declared credential file(s) {', '.join(missing)} do not exist, "
            f"so their protection cannot be shown; fix credentials.files"
        )
