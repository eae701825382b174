"""Small probes the host checks share: file metadata, the host's clock, processes, units."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.process import FIND_EXECUTABLE
from pytest_secagent.host.shell import says_missing
from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = [
    "FileInfo",
    "UnitState",
    "find_tools",
    "host_epoch",
    "process_names",
    "stat_path",
    "stat_paths",
    "systemd_running",
    "unit_state",
]



@dataclass(frozen=True)
class FileInfo:
    """What ``stat`` says about a path (symlinks followed)."""

    path: str
    mode: int
    uid: int
    user: str
    gid: int
    group: str
    mtime: int
    kind: str

    @property
    def world_bits(self) -> int:
        """The permission bits for others (0-7)."""
        return self.mode & 0o7

    @property
    def group_bits(self) -> int:
        """The permission bits for the group (0-7)."""
        return (self.mode >> 3) & 0o7


def stat_path(host: HostConnection, path: str) -> FileInfo | None:
    """Return the metadata of ``path`` on the host, or ``None`` when it does not exist."""
    result = host.run(["stat", "-L", "-c", "%a|%u|%U|%g|%G|%Y|%F", "--", path])
    if not result.succeeded:
        if says_missing(result.stderr, path):
            return None
        reason = result.stderr.strip() or f"exit status {result.exit_status}"
        raise EvidenceUnavailable(f"{host.target_id}: cannot stat {path}: {reason}")
    fields = result.stdout.strip().split("|")
    if len(fields) != 7:
        raise EvidenceUnavailable(f"{host.target_id}: unexpected stat output for {path}: {result.stdout!r}")
    mode, uid, user, gid, group, mtime, kind = fields
    return FileInfo(path, int(mode, 8), int(uid), user, int(gid), group, int(mtime), kind)


def stat_paths(host: HostConnection, paths: list[str]) -> dict[str, FileInfo | None]:
    """Metadata of several paths in one command; ``None`` for those that do not exist."""
    if not paths:
        return {}
    result = host.run(["stat", "-L", "-c", "%a|%u|%U|%g|%G|%Y|%F|%n", "--", *paths])
    found: dict[str, FileInfo | None] = dict.fromkeys(paths)
    for line in result.stdout.splitlines():
        fields = line.split("|", 7)
        if len(fields) == 8 and fields[7] in found:
            mode, uid, user, gid, group, mtime, kind, path = fields
            found[path] = FileInfo(path, int(mode, 8), int(uid), user, int(gid), group, int(mtime), kind)
    errors = [
        line for line in result.stderr.splitlines()
        if line.strip() and not any(says_missing(line, path) for path in paths)
    ]
    if errors:
        raise EvidenceUnavailable(f"{host.target_id}: cannot stat: {'; '.join(errors)[:500]}")
    unexplained = [
        path for path, info in found.items() if info is None and not says_missing(result.stderr, path)
    ]
    if unexplained:
        raise EvidenceUnavailable(
            f"{host.target_id}: stat said nothing about {', '.join(unexplained)} "
            f"(exit status {result.exit_status}), so whether they exist is unknown"
        )
    return found


def find_tools(host: HostConnection, names: list[str]) -> dict[str, str | None]:
    """Absolute paths of several executables on the host, in one command."""
    script = FIND_EXECUTABLE + '; for n in "$@"; do p=$(find_exe "$n") || p=; echo "$n=$p"; done'
    result = host.run(["sh", "-c", script, "sh", *names])
    found: dict[str, str | None] = dict.fromkeys(names)
    answered = set()
    for line in result.stdout.splitlines():
        name, equals, path = line.partition("=")
        if name in found and equals:
            answered.add(name)
            if path.startswith("/"):
                found[name] = path
    if not result.succeeded or answered != set(names):
        reason = result.stderr.strip() or f"exit status {result.exit_status}"
        raise EvidenceUnavailable(
            f"{host.target_id}: cannot look for {', '.join(sorted(set(names) - answered)) or 'tools'} "
            f"on the host: {reason[:300]}"
        )
    return found


def host_epoch(host: HostConnection) -> int:
    """The host's own clock, in seconds since the epoch (ages are measured against it)."""
    result = host.run(["date", "+%s"])
    text = result.stdout.strip()
    if not result.succeeded or not text.isdigit():
        raise EvidenceUnavailable(f"{host.target_id}: cannot read the host's clock: {result.stderr.strip()}")
    return int(text)


def process_names(host: HostConnection) -> set[str]:
    """The command names (``comm``) of every process the connection can see."""
    result = host.run(["ps", "-e", "-o", "comm="])
    if result.succeeded and result.stdout.strip():
        return {line.strip() for line in result.stdout.splitlines() if line.strip()}
    fallback = host.run(["sh", "-c", "cat /proc/[0-9]*/comm 2>/dev/null; true"])
    names = {line.strip() for line in fallback.stdout.splitlines() if line.strip()}
    if not names:
        raise EvidenceUnavailable(
            f"{host.target_id}: cannot list processes (no ps, /proc unreadable): {result.stderr.strip()}"
        )
    return names


def systemd_running(host: HostConnection) -> bool:
    """Whether systemd manages the host (the ``sd_booted`` test)."""
    return host.run(["test", "-d", "/run/systemd/system"]).succeeded


@dataclass(frozen=True)
class UnitState:
    """A systemd unit's load, activity and enablement."""

    unit: str
    load: str
    active: str
    enabled: str

    @property
    def present(self) -> bool:
        """Whether the unit exists on the host."""
        return self.load not in ("", "not-found")

    @property
    def running(self) -> bool:
        """Whether the unit is active."""
        return self.active == "active"

    @property
    def is_enabled(self) -> bool:
        """Whether the unit starts at boot."""
        return self.enabled in ("enabled", "enabled-runtime", "static", "alias", "indirect")


def unit_state(host: HostConnection, unit: str) -> UnitState:
    """Read a unit's state with ``systemctl show`` (read-only)."""
    result = host.run(
        ["systemctl", "show", "--property=LoadState,ActiveState,UnitFileState", "--", unit]
    )
    if not result.succeeded:
        raise EvidenceUnavailable(
            f"{host.target_id}: systemctl show {unit} failed: {result.stderr.strip() or result.exit_status}"
        )
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return UnitState(
        unit,
        values.get("LoadState", ""),
        values.get("ActiveState", ""),
        values.get("UnitFileState", ""),
    )
