"""SA-VULN-003 for hosts: no pending security updates, no old pending reboot, automatic updates on.

Everything is read from the package manager's cache and configuration; no upgrade is
simulated and no package list is refreshed.
"""

from __future__ import annotations

import re

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.checks.common import host_epoch, stat_path, systemd_running, unit_state
from pytest_secagent.host.shell import says_missing
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy

__all__ = [
    "apt_periodic_settings",
    "check_patch_currency",
    "pending_apt_security_updates",
]

APT_CONF_DIR = "/etc/apt/apt.conf.d"
APT_LISTS_DIR = "/var/lib/apt/lists"
_APT_PART_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_PERIODIC = re.compile(r'APT::Periodic::([A-Za-z-]+)\s+"([^"]*)"\s*;')
_LISTED = 20


def pending_apt_security_updates(text: str) -> list[str]:
    """Packages of ``apt list --upgradable`` whose candidate comes from a ``-security`` suite."""
    pending = []
    for line in text.splitlines():
        name, slash, rest = line.partition("/")
        if not slash or not rest:
            continue
        suites = rest.split(" ", 1)[0].split(",")
        if any(suite.endswith("-security") or "-security-" in suite for suite in suites):
            pending.append(name)
    return pending


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return "\n".join(re.split(r"(^|\s)(//|#)", line, maxsplit=1)[0] for line in text.splitlines())


def apt_periodic_settings(host: HostConnection) -> tuple[dict[str, str], list[str]]:
    """``APT::Periodic::*`` values as apt would resolve them, and the files that set them."""
    listing = host.run(["ls", "-1", "--", APT_CONF_DIR])
    names = sorted(n for n in listing.stdout.split() if _APT_PART_NAME.match(n)) if listing.succeeded else []
    paths = ["/etc/apt/apt.conf", *(f"{APT_CONF_DIR}/{name}" for name in names)]
    settings: dict[str, str] = {}
    sources: list[str] = []
    # One grep reads every file (in apt's order); each line is "path:text".
    result = host.run(["grep", "-H", "-e", "APT::Periodic", "--", *paths])
    # Status 2 is fine when its only complaint is a file that does not exist (apt.conf
    # usually); a file that cannot be read could hold the setting that wins.
    unread = [
        line for line in result.stderr.splitlines()
        if line.strip() and not any(says_missing(line, path) for path in paths)
    ]
    if result.exit_status not in (0, 1, 2) or unread:
        reason = "; ".join(unread)[:500] or result.stderr.strip() or f"exit status {result.exit_status}"
        raise EvidenceUnavailable(f"{host.target_id}: cannot read the apt configuration: {reason}")
    for path in paths:
        prefix = path + ":"
        text = "\n".join(ln[len(prefix) :] for ln in result.stdout.splitlines() if ln.startswith(prefix))
        found = _PERIODIC.findall(_strip_comments(text))
        if found:
            sources.append(path)
            settings.update(found)
    return settings, sources


def _apt(host: HostConnection, policy: Policy, evidence: Evidence) -> None:
    result = host.run(["apt", "list", "--upgradable"])
    if not result.succeeded:
        reason = result.stderr.strip() or f"exit status {result.exit_status}"
        raise EvidenceUnavailable(f"{host.target_id}: `apt list --upgradable` failed: {reason}")
    pending = pending_apt_security_updates(result.stdout)
    indexes = host.run(["ls", "-1", "--", APT_LISTS_DIR])
    if not any("_Packages" in name for name in indexes.stdout.split()):
        raise EvidenceUnavailable(
            f"{host.target_id}: no package index in {APT_LISTS_DIR} "
            f"({indexes.stderr.strip() or 'never downloaded'}), so apt knows of no update at all; "
            "pending security updates cannot be read"
        )
    lists = stat_path(host, APT_LISTS_DIR)
    if lists is not None:
        age_days = (host_epoch(host) - lists.mtime) / 86400
        evidence.observe("package lists last refreshed", f"{age_days:.1f} days ago")
    shown = ", ".join(pending[:_LISTED])
    if len(pending) > _LISTED:
        shown += f" (+{len(pending) - _LISTED} more)"
    evidence.expect(
        "pending security updates (apt)",
        expected="0",
        actual=f"{len(pending)}: {shown}" if pending else "0",
        ok=not pending,
    )
    settings, sources = apt_periodic_settings(host)
    enabled = settings.get("Enable", "1") != "0"
    unattended = settings.get("Unattended-Upgrade", "0")
    installed = host.which("unattended-upgrade") is not None
    evidence.expect(
        "automatic security updates (unattended-upgrades)",
        expected='installed, APT::Periodic::Unattended-Upgrade "1" (or more)',
        actual=(
            f"{'installed' if installed else 'not installed'}, "
            f"Unattended-Upgrade={unattended!r}{'' if enabled else ', APT::Periodic::Enable=0'}"
            f" (from {', '.join(sources) or 'no file'})"
        ),
        ok=installed and enabled and unattended.isdigit() and int(unattended) >= 1,
    )


def _dnf(host: HostConnection, dnf: str, evidence: Evidence) -> None:
    result = host.run(
        [dnf, "-C", "-q", "updateinfo", "list", "--security", "--sec-severity=Critical",
         "--sec-severity=Important"],
    )
    if not result.succeeded:
        raise EvidenceUnavailable(f"{host.target_id}: `{dnf} updateinfo` failed: {result.stderr.strip()}")
    pending = [line.split()[-1] for line in result.stdout.splitlines() if len(line.split()) >= 3]
    evidence.expect(
        f"pending Critical/Important security updates ({dnf})",
        expected="0",
        actual=f"{len(pending)}: {', '.join(pending[:_LISTED])}" if pending else "0",
        ok=not pending,
    )
    timers = ["dnf-automatic.timer", "dnf-automatic-install.timer"]
    if systemd_running(host):
        states = [unit_state(host, timer) for timer in timers]
        on = [s.unit for s in states if s.is_enabled]
        evidence.expect(
            "automatic updates (dnf-automatic)",
            expected="dnf-automatic(-install).timer enabled",
            actual=", ".join(on) or "no dnf-automatic timer enabled",
            ok=bool(on),
        )
    else:
        raise EvidenceUnavailable(
            f"{host.target_id}: systemd does not run, so the dnf-automatic timers cannot be read"
        )


def _reboot(host: HostConnection, policy: Policy, evidence: Evidence, *, marker_is_the_signal: bool) -> None:
    """Record a pending reboot from Debian's marker file or ``needs-restarting -r``.

    ``marker_is_the_signal``: the package manager writes ``/var/run/reboot-required``
    (Debian, Ubuntu), so its absence means no reboot is pending. Elsewhere only
    ``needs-restarting`` can tell, and without it the answer is unknown.
    """
    limit = policy.vulnerability.reboot_pending_max_days
    marker = stat_path(host, "/var/run/reboot-required")
    if marker is not None:
        days = (host_epoch(host) - marker.mtime) / 86400
        evidence.expect(
            "pending reboot",
            expected=f"none older than {limit} days",
            actual=f"reboot required for {days:.1f} days (/var/run/reboot-required)",
            ok=days <= limit,
        )
        return
    if host.which("needs-restarting"):
        result = host.run(["needs-restarting", "-r"])
        if result.exit_status == 1:
            evidence.expect(
                "pending reboot",
                expected=f"none older than {limit} days",
                actual="reboot required, since an unknown time (needs-restarting -r)",
                ok=False,
            )
            return
        if result.exit_status != 0:
            reason = result.stderr.strip()[:300] or f"exit status {result.exit_status}"
            raise EvidenceUnavailable(f"{host.target_id}: `needs-restarting -r` failed: {reason}")
        source = "needs-restarting -r"
    elif marker_is_the_signal:
        source = "no /var/run/reboot-required"
    else:
        raise EvidenceUnavailable(
            f"{host.target_id}: cannot tell whether a reboot is pending: no /var/run/reboot-required "
            "and no needs-restarting (install dnf-utils / yum-utils)"
        )
    evidence.expect(
        "pending reboot", expected=f"none older than {limit} days", actual=f"none ({source})", ok=True
    )


def check_patch_currency(host: HostConnection, policy: Policy, evidence: Evidence) -> None:
    """Record pending security updates, a pending reboot and automatic-update configuration."""
    apt = host.which("apt") is not None
    if apt:
        _apt(host, policy, evidence)
    elif dnf := host.which("dnf") or host.which("yum"):
        _dnf(host, dnf.rsplit("/", 1)[-1], evidence)
    else:
        raise EvidenceUnavailable(
            f"{host.target_id}: neither apt nor dnf is installed, so pending updates cannot be read"
        )
    _reboot(host, policy, evidence, marker_is_the_signal=apt)
