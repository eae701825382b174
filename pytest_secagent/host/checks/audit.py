"""SA-LOG-004 for hosts: auditd watches the container engine's files; the clock is synchronised."""

from __future__ import annotations

import re
import shlex

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.checks.common import (
    find_tools,
    process_names,
    stat_paths,
    systemd_running,
    unit_state,
)
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy

__all__ = [
    "audit_status",
    "check_audit_and_time",
    "clock_synchronised",
    "covered_by_watches",
    "engine_audit_targets",
    "normalise",
    "watched_paths",
]

_ALIASES = (("/var/run/", "/run/"), ("/bin/", "/usr/bin/"), ("/sbin/", "/usr/sbin/"), ("/lib/", "/usr/lib/"))
_UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
_FIXED_TARGETS = {
    "/var/lib/docker": "/var/lib/docker",
    "/etc/docker": "/etc/docker",
    "/etc/docker/daemon.json": "/etc/docker/daemon.json",
    "/etc/containerd/config.toml": "/etc/containerd/config.toml",
    "docker.sock": "/run/docker.sock",
    "containerd.sock": "/run/containerd/containerd.sock",
}


def normalise(path: str) -> str:
    """Fold merged-/usr and /var/run aliases so equal files compare equal."""
    path = path.rstrip("/") or "/"
    for alias, real in _ALIASES:
        if (path + "/").startswith(alias):
            return real + path[len(alias) :]
    return path


def _watches(rules: str) -> list[tuple[str, bool]]:
    """``(path, covers what lies below)`` for each watch of ``auditctl -l``.

    ``-w`` and ``-F dir=`` watch a whole tree; ``-F path=`` watches that one inode only.
    """
    found = []
    for line in rules.splitlines():
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        for index, word in enumerate(words[:-1]):
            value = words[index + 1]
            if word == "-w":
                found.append((value, True))
            elif word == "-F" and value.startswith(("path=", "dir=")):
                kind, _, path = value.partition("=")
                found.append((path, kind == "dir"))
    return found


def watched_paths(rules: str) -> list[str]:
    """Paths ``auditctl -l`` watches: ``-w PATH`` and ``-F path=`` / ``-F dir=`` rules."""
    return [path for path, _ in _watches(rules)]


def engine_audit_targets(host: HostConnection) -> dict[str, str]:
    """The container engine's files that exist on the host, by what they are."""
    targets: dict[str, str] = {}
    for binary, path in find_tools(host, ["dockerd", "containerd"]).items():
        if path is not None:
            targets[f"{binary} binary"] = path
    units = {
        f"{folder}/{unit}": unit
        for unit in ("docker.service", "docker.socket", "containerd.service")
        for folder in _UNIT_DIRS
    }
    candidates = [*units, *_FIXED_TARGETS.values()]
    existing = {path for path, info in stat_paths(host, candidates).items() if info is not None}
    for path, unit in units.items():
        if path in existing and unit not in targets:
            targets[unit] = path
    for label, path in _FIXED_TARGETS.items():
        if path in existing:
            targets[label] = path
    return targets


def covered_by_watches(path: str, rules: str) -> bool:
    """Whether the watches of ``auditctl -l`` output ``rules`` cover ``path``."""
    return _covered(path, _watches(rules))


def _covered(path: str, watches: list[tuple[str, bool]]) -> bool:
    wanted = normalise(path)
    for watched, tree in watches:
        watched = normalise(watched)
        if wanted == watched or (tree and wanted.startswith(watched.rstrip("/") + "/")):
            return True
    return False


def clock_synchronised(host: HostConnection) -> tuple[bool, str]:
    """Whether the clock is NTP-synchronised, from ``timedatectl`` or ``chronyc``.

    Raises ``EvidenceUnavailable`` when neither can tell.
    """
    reasons = []
    if host.which("timedatectl"):
        result = host.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
        value = result.stdout.strip()
        if result.succeeded and value in ("yes", "no"):
            return value == "yes", f"timedatectl NTPSynchronized={value}"
        reasons.append(f"timedatectl: {result.stderr.strip() or result.exit_status}")
    if host.which("chronyc"):
        result = host.run(["chronyc", "-n", "tracking"])
        leap = re.search(r"^Leap status\s*:\s*(.+)$", result.stdout, re.MULTILINE)
        if result.succeeded and leap:
            status = leap.group(1).strip()
            return status != "Not synchronised", f"chronyc tracking: leap status {status}"
        reasons.append(f"chronyc: {result.stderr.strip() or result.stdout.strip() or result.exit_status}")
    raise EvidenceUnavailable(
        f"{host.target_id}: cannot tell whether the clock is synchronised "
        f"({'; '.join(reasons) or 'neither timedatectl nor chronyc is installed'})"
    )


def audit_status(text: str) -> tuple[int, int]:
    """``(enabled, pid)`` from ``auditctl -s``: kernel auditing on (1, or 2 when locked) and the daemon.

    Raises ``ValueError`` when either value is missing: the status is then unknown.
    """
    enabled = re.search(r"^enabled (\d+)\s*$", text, re.MULTILINE)
    pid = re.search(r"^pid (\d+)\s*$", text, re.MULTILINE)
    if enabled is None or pid is None:
        raise ValueError(f"not the output of `auditctl -s`: {text.strip()[:200]!r}")
    return int(enabled.group(1)), int(pid.group(1))


def _audit_rules(text: str) -> str:
    """The text of ``auditctl -l`` once its shape is checked: ``No rules`` or rule lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    odd = [line for line in lines if line != "No rules" and not line.startswith("-")]
    if odd:
        raise ValueError(f"not a rule of `auditctl -l`: {odd[0][:200]!r}")
    return text


def _auditd_running(host: HostConnection) -> tuple[bool, str]:
    if systemd_running(host):
        state = unit_state(host, "auditd.service")
        running, how = state.running, f"auditd.service {state.active or 'not found'}"
    else:
        running = "auditd" in process_names(host)
        how = "auditd process running" if running else "no auditd process"
    if not running:
        return False, how
    # A running daemon records nothing while kernel auditing is off (`auditctl -e 0`) or
    # while no daemon is registered with the kernel to receive the events.
    auditctl = host.which("auditctl")
    if auditctl is None:
        raise EvidenceUnavailable(
            f"{host.target_id}: auditd runs but auditctl is not installed, "
            "so whether the kernel audits is unknown"
        )
    result = host.run([auditctl, "-s"])
    if not result.succeeded:
        reason = result.stderr.strip() or f"exit status {result.exit_status}"
        raise EvidenceUnavailable(f"{host.target_id}: `auditctl -s` failed: {reason}")
    try:
        enabled, pid = audit_status(result.stdout)
    except ValueError as exc:
        raise EvidenceUnavailable(f"{host.target_id}: {exc}") from exc
    how += f"; auditctl -s: enabled {enabled}, pid {pid}"
    if enabled not in (1, 2):
        return False, how + " (kernel auditing disabled)"
    if pid == 0:
        return False, how + " (no audit daemon registered with the kernel)"
    return True, how


def check_audit_and_time(host: HostConnection, policy: Policy, evidence: Evidence) -> None:
    """Record auditd running, audit watches on the engine's files, and clock synchronisation."""
    del policy  # the watched files are the CIS Docker host list, not a policy choice
    running, how = _auditd_running(host)
    evidence.expect(
        "auditd running",
        expected="running, kernel auditing enabled and the daemon registered",
        actual=how,
        ok=running,
    )
    targets = engine_audit_targets(host)
    if not targets:
        evidence.observe("container engine files", "no docker or containerd files on the host")
    elif running:
        auditctl = host.which("auditctl")
        if auditctl is None:
            raise EvidenceUnavailable(f"{host.target_id}: auditd runs but auditctl is not installed")
        result = host.run([auditctl, "-l"])
        if not result.succeeded:
            reason = result.stderr.strip() or f"exit status {result.exit_status}"
            raise EvidenceUnavailable(f"{host.target_id}: `auditctl -l` failed: {reason}")
        try:
            watches = _watches(_audit_rules(result.stdout))
        except ValueError as exc:
            raise EvidenceUnavailable(f"{host.target_id}: {exc}") from exc
        evidence.observe("audit watches", ", ".join(path for path, _ in watches) or "none")
        missing = [f"{label} ({path})" for label, path in targets.items() if not _covered(path, watches)]
        evidence.expect(
            "container engine files without an audit watch",
            expected="none",
            actual=", ".join(missing) or "none",
            ok=not missing,
        )
    synced, source = clock_synchronised(host)
    evidence.expect("clock synchronised", expected="synchronised (NTP)", actual=source, ok=synced)
