"""SA-LOG-004 with a real auditd and rules; SA-VULN-003 with this machine's apt."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_secagent.evidence import Evidence, Verdict
from pytest_secagent.host.checks.audit import (
    check_audit_and_time,
    clock_synchronised,
    covered_by_watches,
    engine_audit_targets,
    watched_paths,
)
from pytest_secagent.host.checks.patching import (
    apt_periodic_settings,
    check_patch_currency,
    pending_apt_security_updates,
)
from pytest_secagent.host.local import LocalConnection
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy
from tests.host.hosts import line, minimal_bin, verdicts
from tests.support import require_root, require_tool

HOST = LocalConnection(timeout=20)
UNWATCHED = "container engine files without an audit watch"


def audit_check(host: LocalConnection) -> Evidence:
    """Run SA-LOG-004; the clock part may be unreadable here, the audit part is kept."""
    evidence = Evidence()
    try:
        check_audit_and_time(host, Policy(), evidence)
    except EvidenceUnavailable as exc:
        if "clock is synchronised" not in str(exc):
            raise
    return evidence


def auditctl(*args: str) -> str:
    return subprocess.run(
        ["auditctl", *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout


@pytest.fixture
def auditd(tmp_path: Path) -> Iterator[Path]:
    """An auditd with its own configuration and log in tmp; the kernel's rules are put back after."""
    require_root()
    binary = require_tool("auditd", "auditd")
    require_tool("auditctl", "auditd")
    saved_rules = auditctl("-l")
    saved_enabled = re.search(r"^enabled (\d)", auditctl("-s"), re.MULTILINE)
    (tmp_path / "plugins.d").mkdir()
    (tmp_path / "auditd.conf").write_text(
        f"log_file = {tmp_path / 'audit.log'}\nwrite_logs = yes\nlog_format = RAW\n"
        f"flush = NONE\nplugin_dir = {tmp_path / 'plugins.d'}\nuse_libwrap = no\n"
        "space_left = 2\nadmin_space_left = 1\nspace_left_action = IGNORE\n"
        "admin_space_left_action = IGNORE\ndisk_full_action = IGNORE\ndisk_error_action = IGNORE\n"
    )
    (tmp_path / "auditd.conf").chmod(0o640)
    process = subprocess.Popen(
        [binary, "-n", "-c", str(tmp_path)], stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 20
        while "pid 0" in auditctl("-s") or f"pid {process.pid}" not in auditctl("-s"):
            assert process.poll() is None, "auditd exited"
            assert time.monotonic() < deadline, "auditd did not register with the kernel"
            time.sleep(0.1)
        yield tmp_path
    finally:
        process.terminate()
        process.wait(timeout=20)
        auditctl("-D")
        for rule in saved_rules.splitlines():
            if rule.startswith("-"):
                subprocess.run(["auditctl", *rule.split()], check=False, timeout=30)
        if saved_enabled is not None:
            auditctl("-e", saved_enabled.group(1))


def test_watches_on_every_engine_file_pass_and_a_missing_one_fails(auditd: Path) -> None:
    targets = engine_audit_targets(HOST)
    require_tool("dockerd", "docker.io")
    assert "dockerd binary" in targets
    rules = auditd / "docker.rules"
    rules.write_text("".join(f"-w {path} -p rwxa -k sa-host-docker\n" for path in targets.values()))
    auditctl("-R", str(rules))
    evidence = audit_check(HOST)
    assert verdicts(evidence)["auditd running"] is Verdict.OK
    assert verdicts(evidence)[UNWATCHED] is Verdict.OK, line(evidence, UNWATCHED)
    dockerd = targets["dockerd binary"]
    auditctl("-W", dockerd, "-p", "rwxa", "-k", "sa-host-docker")
    evidence = audit_check(HOST)
    assert verdicts(evidence)[UNWATCHED] is Verdict.FAIL
    assert f"dockerd binary ({dockerd})" in line(evidence, UNWATCHED)


def test_no_auditd_fails() -> None:
    require_tool("dockerd", "docker.io")
    evidence = audit_check(HOST)
    if verdicts(evidence)["auditd running"] is Verdict.OK:
        pytest.skip("an auditd runs on this machine")
    assert verdicts(evidence)["auditd running"] is Verdict.FAIL


def test_watched_paths_reads_watch_and_field_rules() -> None:
    text = "-w /usr/bin/dockerd -p rwxa -k docker\n-a always,exit -F dir=/var/lib/docker -F perm=wa\n"
    assert watched_paths(text) == ["/usr/bin/dockerd", "/var/lib/docker"]
    assert watched_paths("No rules\n") == []


def test_a_path_field_watches_one_file_not_a_tree() -> None:
    """``-F path=/etc/docker`` audits the folder's own inode, not ``daemon.json`` inside it."""
    rules = (
        "-a always,exit -F arch=b64 -S all -F path=/etc/docker -F perm=wa -k docker\n"
        "-a always,exit -F arch=b64 -S all -F dir=/var/lib/docker -F perm=wa -k docker\n"
        "-w /run/containerd -p rwxa -k docker\n"
    )
    assert covered_by_watches("/etc/docker", rules)
    assert not covered_by_watches("/etc/docker/daemon.json", rules)
    assert covered_by_watches("/var/lib/docker/containers", rules)
    assert covered_by_watches("/var/run/containerd/containerd.sock", rules)


def test_clock_without_readers_is_an_error(tmp_path: Path) -> None:
    bare = LocalConnection("bare", prefix=("env", f"PATH={minimal_bin(tmp_path / 'bin')}"))
    with pytest.raises(EvidenceUnavailable, match="neither timedatectl nor chronyc"):
        clock_synchronised(bare)


def test_pending_security_updates_match_apt() -> None:
    require_tool("apt", "apt")
    listed = subprocess.run(
        ["apt", "list", "--upgradable"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    expected = pending_apt_security_updates(listed)
    evidence = Evidence()
    check_patch_currency(HOST, Policy(), evidence)
    name = "pending security updates (apt)"
    assert verdicts(evidence)[name] is (Verdict.FAIL if expected else Verdict.OK)
    assert line(evidence, name).split("observed ", 1)[1].startswith(str(len(expected)))
    assert "automatic security updates (unattended-upgrades)" in verdicts(evidence)
    assert "pending reboot" in verdicts(evidence)


def test_security_suite_lines_are_recognised() -> None:
    text = (
        "Listing...\n"
        "apt/oldstable-security 2.6.2 amd64 [upgradable from: 2.6.1]\n"
        "base-files/oldstable 12.4+deb12u15 amd64 [upgradable from: 12.4+deb12u11]\n"
        "libssl3/jammy-updates,jammy-security 3.0.2 amd64 [upgradable from: 3.0.1]\n"
    )
    assert pending_apt_security_updates(text) == ["apt", "libssl3"]


def test_host_without_a_package_manager_is_an_error(tmp_path: Path) -> None:
    bare = LocalConnection("bare", prefix=("env", f"PATH={minimal_bin(tmp_path / 'bin')}"))
    with pytest.raises(EvidenceUnavailable, match="neither apt nor dnf"):
        check_patch_currency(bare, Policy(), Evidence())


def bound_over(mounts: dict[str, Path]) -> tuple[str, ...]:
    """A command prefix that runs each command in its own mount namespace with ``mounts`` bound."""
    require_root()
    require_tool("unshare", "util-linux")
    binds = " && ".join(f"mount --bind {source} {target}" for target, source in mounts.items())
    return ("unshare", "-m", "--propagation", "private", "sh", "-c", f'{binds} && exec "$@"', "sh")


def test_unattended_upgrades_configuration_is_read(tmp_path: Path) -> None:
    conf = tmp_path / "apt.conf.d"
    conf.mkdir()
    (conf / "20auto-upgrades").write_text(
        'APT::Periodic::Update-Package-Lists "1";\n'
        '// APT::Periodic::Unattended-Upgrade "0";\n'
        'APT::Periodic::Unattended-Upgrade "1"; // on\n'
    )
    (conf / "99override").write_text('APT::Periodic::Unattended-Upgrade "0";\n')
    host = LocalConnection("mnt", prefix=bound_over({"/etc/apt/apt.conf.d": conf}))
    settings, sources = apt_periodic_settings(host)
    assert settings["Unattended-Upgrade"] == "0", "the later file wins, as in apt"
    assert sources == ["/etc/apt/apt.conf.d/20auto-upgrades", "/etc/apt/apt.conf.d/99override"]
    (conf / "99override").unlink()
    assert apt_periodic_settings(host)[0]["Unattended-Upgrade"] == "1"


def test_an_unreadable_apt_configuration_file_is_an_error(tmp_path: Path) -> None:
    """A file the user cannot read may hold the setting that wins: never judge without it."""
    require_tool("setpriv", "util-linux")
    conf = tmp_path / "apt.conf.d"
    conf.mkdir()
    tmp_path.chmod(0o755)
    (conf / "20auto-upgrades").write_text('APT::Periodic::Unattended-Upgrade "1";\n')
    override = conf / "99override"
    override.write_text('APT::Periodic::Unattended-Upgrade "0";\n')
    override.chmod(0o600)
    as_nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    host = LocalConnection("mnt", prefix=(*bound_over({"/etc/apt/apt.conf.d": conf}), *as_nobody))
    with pytest.raises(EvidenceUnavailable, match=r"99override: Permission denied"):
        apt_periodic_settings(host)


def test_never_downloaded_package_lists_are_no_evidence(tmp_path: Path) -> None:
    """With no package index, apt lists no upgrade at all: that is not "nothing pending"."""
    require_tool("apt", "apt")
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    host = LocalConnection("mnt", timeout=60, prefix=bound_over({"/var/lib/apt/lists": lists}))
    with pytest.raises(EvidenceUnavailable, match="no package index in /var/lib/apt/lists"):
        check_patch_currency(host, Policy(), Evidence())


def test_old_pending_reboot_fails(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    marker = run_dir / "reboot-required"
    marker.write_text("*** System restart required ***\n")
    eight_days_ago = time.time() - 8 * 86400
    os.utime(marker, (eight_days_ago, eight_days_ago))
    host = LocalConnection("mnt", timeout=60, prefix=bound_over({"/run": run_dir}))
    evidence = Evidence()
    check_patch_currency(host, Policy(), evidence)
    assert verdicts(evidence)["pending reboot"] is Verdict.FAIL
    assert "reboot required for 8.0 days" in line(evidence, "pending reboot")
