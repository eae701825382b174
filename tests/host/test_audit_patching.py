"""SA-LOG-004 with a real auditd and rules; SA-VULN-003 with this machine's apt."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_secagent.evidence import ControlFailed, Evidence, Verdict
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
from pytest_secagent.policy.model import Policy, VulnerabilitySection
from tests.host.hosts import line, minimal_bin, verdicts
from tests.support import require, require_root, require_tool

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
    with _kernel_audit_lock():
        yield from _run_auditd(binary, tmp_path)


#: The audit key of every rule these tests add.
TEST_KEY = "sa-host-docker"


@contextlib.contextmanager
def _kernel_audit_lock() -> Iterator[None]:
    """The kernel has one audit state: tests that start auditd take turns, across test workers."""
    with open("/tmp/sa-host-auditd.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_auditd(binary: str, tmp_path: Path) -> Iterator[Path]:
    # Rules of these tests left by a run that was killed are not the machine's: drop them.
    subprocess.run(["auditctl", "-D", "-k", TEST_KEY], check=False, timeout=30, capture_output=True)
    saved_rules = "\n".join(line for line in auditctl("-l").splitlines() if TEST_KEY not in line)
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


def test_disabled_kernel_auditing_fails_although_auditd_runs(auditd: Path) -> None:
    """``auditctl -e 0``: the daemon runs and the watches are loaded, but nothing is recorded."""
    targets = engine_audit_targets(HOST)
    rules = auditd / "engine.rules"
    rules.write_text("".join(f"-w {path} -p rwxa -k sa-host-engine\n" for path in targets.values()))
    if targets:
        auditctl("-R", str(rules))
    assert verdicts(audit_check(HOST))["auditd running"] is Verdict.OK
    auditctl("-e", "0")
    evidence = audit_check(HOST)
    assert verdicts(evidence)["auditd running"] is Verdict.FAIL
    assert "auditctl -s: enabled 0," in line(evidence, "auditd running")
    assert "kernel auditing disabled" in line(evidence, "auditd running")


def test_no_auditd_fails() -> None:
    require_tool("dockerd", "docker.io")
    # Not while another test's auditd runs: only the machine's own one is a reason to skip.
    with _kernel_audit_lock():
        evidence = audit_check(HOST)
    if verdicts(evidence)["auditd running"] is Verdict.OK:
        pytest.skip("the machine runs its own auditd")
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


# -- no security source is not "0 pending" ------------------------------------------------------
# Real apt reads a sources folder, lists folder and cache of the test's own (APT_CONFIG), with
# package lists copied from this machine's own downloads and aged as each case needs.

SOURCE = "security update source (apt)"
FRESH = "security package lists refreshed (apt)"
PENDING = "pending security updates (apt)"
MAIN = "http://deb.debian.org/debian"
SECURITY = "http://deb.debian.org/debian-security"
DEB822_MAIN = f"Types: deb\nURIs: {MAIN}\nSuites: bookworm bookworm-updates\nComponents: main\n"
DEB822_SECURITY = f"Types: deb\nURIs: {SECURITY}\nSuites: bookworm-security\nComponents: main\n"

# name: (files in sources.list.d, {list prefix: age in days}, critical SLA, source ok, lists fresh)
SOURCES = {
    "deb822-without-security-suite": ({"debian.sources": DEB822_MAIN}, {}, 7, False, None),
    "one-line-without-security-suite": (
        {"debian.list": f"deb {MAIN} bookworm main\ndeb {MAIN} bookworm-updates main\n"}, {}, 7, False, None,
    ),
    "security-line-commented-out": (
        {"debian.list": f"deb {MAIN} bookworm-updates main\n# deb {SECURITY} bookworm-security main\n"},
        {"security": 0}, 7, False, None,
    ),
    "security-as-deb-src-only": (
        {"debian.list": f"deb {MAIN} bookworm-updates main\ndeb-src {SECURITY} bookworm-security main\n"},
        {"security": 0}, 7, False, None,
    ),
    "security-stanza-disabled": (
        {"debian.sources": DEB822_MAIN + "\n" + DEB822_SECURITY + "Enabled: no\n"}, {"security": 0}, 7, False, None,
    ),
    "security-in-a-file-apt-ignores": (
        {"debian.sources": DEB822_MAIN, "security.list.disabled": f"deb {SECURITY} bookworm-security main\n"},
        {"security": 0}, 7, False, None,
    ),
    "security-lists-never-downloaded": ({"debian.sources": DEB822_MAIN + "\n" + DEB822_SECURITY}, {}, 7, True, False),
    "security-lists-thirty-days-old": (
        {"debian.sources": DEB822_MAIN + "\n" + DEB822_SECURITY}, {"security": 30}, 7, True, False,
    ),
    "security-lists-older-than-the-critical-sla": (
        {"debian.sources": DEB822_MAIN + "\n" + DEB822_SECURITY}, {"security": 3}, 1, True, False,
    ),
    "deb822-security-stanza-fresh": (
        {"debian.sources": DEB822_MAIN + "\n" + DEB822_SECURITY}, {"security": 0}, 7, True, True,
    ),
    "one-line-security-with-options-fresh": (
        {"security.list": f"deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
                          f"{SECURITY} bookworm-security main # the security suite\n"},
        {"security": 0}, 7, True, True,
    ),
    "security-in-a-deb822-suites-list-fresh": (
        {"debian.sources": f"Types: deb\nURIs: {MAIN}\nSuites: bookworm\n  bookworm-updates bookworm-security\n"
                           "Components: main\n"},
        {"main-security": 0}, 7, True, True,
    ),
}

SYSTEM_LISTS = Path("/var/lib/apt/lists")
LIST_PREFIXES = {
    "updates": "deb.debian.org_debian_dists_bookworm-updates_",
    "security": "deb.debian.org_debian-security_dists_bookworm-security_",
}


def apt_root(tmp_path: Path, files: dict[str, str], lists: dict[str, int]) -> LocalConnection:
    """An apt with its own sources, lists and cache folders (through APT_CONFIG)."""
    require_tool("apt", "apt")
    sources, folder, cache = tmp_path / "sources.list.d", tmp_path / "lists", tmp_path / "cache"
    for path in (sources, folder / "partial", cache):
        path.mkdir(parents=True)
    for name, text in files.items():
        (sources / name).write_text(text)
    wanted = {"updates": 0, **lists}
    for key, age in wanted.items():
        system_prefix = LIST_PREFIXES["security" if "security" in key else key]
        copies = sorted(SYSTEM_LISTS.glob(system_prefix + "*"))
        require("downloaded Debian bookworm package lists", bool(copies), "run apt-get update")
        prefix = "deb.debian.org_debian_dists_bookworm-security_" if key == "main-security" else system_prefix
        for copy in copies:
            target = folder / (prefix + copy.name[len(system_prefix):])
            shutil.copyfile(copy, target)
            stamp = time.time() - age * 86400
            os.utime(target, (stamp, stamp))
    config = tmp_path / "apt.conf"
    config.write_text(
        f'Dir::Etc::sourcelist "{tmp_path / "sources.list"}";\nDir::Etc::sourceparts "{sources}";\n'
        f'Dir::State::lists "{folder}";\nDir::Cache "{cache}";\n'
    )
    return LocalConnection("apt-root", timeout=60, prefix=("env", f"APT_CONFIG={config}"))


@pytest.mark.parametrize(("files", "lists", "sla", "source_ok", "fresh"), SOURCES.values(), ids=SOURCES)
def test_zero_pending_counts_only_with_a_fresh_security_source(
    tmp_path: Path, files: dict[str, str], lists: dict[str, int], sla: int, source_ok: bool, fresh: bool | None
) -> None:
    host = apt_root(tmp_path, files, lists)
    policy = dataclasses.replace(
        Policy(), vulnerability=VulnerabilitySection(patch_sla_critical_days=sla)
    )
    evidence = Evidence()
    check_patch_currency(host, policy, evidence)
    found = verdicts(evidence)
    assert found[SOURCE] is (Verdict.OK if source_ok else Verdict.FAIL), line(evidence, SOURCE)
    if fresh is None:
        assert FRESH not in found
    else:
        assert found[FRESH] is (Verdict.OK if fresh else Verdict.FAIL), line(evidence, FRESH)
    if not (source_ok and fresh):
        assert found[PENDING] is not Verdict.OK, line(evidence, PENDING)
        with pytest.raises(ControlFailed):
            evidence.conclude()
    else:
        assert found[PENDING] in (Verdict.OK, Verdict.FAIL)


# -- dnf: an enabled repository with security metadata, fresh -----------------------------------
# Real dnf, with its configuration folder and cache bound over /etc/dnf and /var/cache in a
# private mount namespace; the repositories are local ones made with createrepo_c, one of
# them carrying an updateinfo (security advisory) record.

UPDATEINFO = """<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="security@example.org" status="final" type="security" version="1">
    <id>SA-TEST-2026:0001</id>
    <title>Important: example security update</title>
    <severity>Important</severity>
    <issued date="2026-11-01 00:00:00"/>
    <description>An advisory for a package that is not installed.</description>
    <pkglist><collection short="test"><name>test</name>
      <package name="sa-test" version="1.0" release="2" epoch="0" arch="noarch">
        <filename>sa-test-1.0-2.noarch.rpm</filename>
      </package>
    </collection></pkglist>
  </update>
</updates>
"""

DNF_SOURCE = "security update source (dnf)"
DNF_FRESH = "repository metadata refreshed (dnf)"
DNF_PENDING = "pending Critical/Important security updates (dnf)"

# name: ({repo id: (enabled, has updateinfo, downloaded, age in days)}, source ok, fresh ok)
DNF_CASES = {
    "security-repository-fresh": ({"sec": (True, True, True, 0)}, True, True),
    "repository-without-updateinfo": ({"plain": (True, False, True, 0)}, False, None),
    "security-repository-disabled": ({"sec": (False, True, True, 0)}, False, None),
    "metadata-never-downloaded": ({"sec": (True, True, False, 0)}, False, None),
    "metadata-thirty-days-old": ({"sec": (True, True, True, 30)}, True, False),
    "second-repository-never-downloaded": (
        {"sec": (True, True, True, 0), "plain": (True, False, False, 0)}, True, False,
    ),
}


def dnf_root(tmp_path: Path, repos: dict[str, tuple[bool, bool, bool, int]]) -> LocalConnection:
    """A dnf (and no apt) whose /etc/dnf and /var/cache are the test's own."""
    dnf = require_tool("dnf", "dnf")
    require_tool("createrepo_c", "createrepo-c")
    etc, cache = tmp_path / "etc-dnf", tmp_path / "var-cache"
    (etc / "repos.d").mkdir(parents=True)
    (etc / "vars").mkdir()
    (etc / "vars" / "releasever").write_text("1\n")
    (cache / "dnf").mkdir(parents=True)
    config = "[main]\nreposdir=/etc/dnf/repos.d\ncachedir=/var/cache/dnf\n"
    (etc / "dnf.conf").write_text(config)
    build = tmp_path / "build.conf"
    build.write_text(config.replace("/etc/dnf", str(etc)).replace("/var/cache", str(cache)))
    for repo, (enabled, updateinfo, downloaded, age) in repos.items():
        folder = tmp_path / "repos" / repo
        folder.mkdir(parents=True)
        subprocess.run(["createrepo_c", "-q", str(folder)], check=True, timeout=60)
        if updateinfo:
            (tmp_path / "updateinfo.xml").write_text(UPDATEINFO)
            subprocess.run(
                ["modifyrepo_c", "--mdtype=updateinfo", str(tmp_path / "updateinfo.xml"), str(folder / "repodata")],
                check=True, timeout=60, capture_output=True,
            )
        (etc / "repos.d" / f"{repo}.repo").write_text(
            f"[{repo}]\nname={repo}\nbaseurl=file://{folder}\nenabled={int(enabled)}\ngpgcheck=0\n"
        )
        if downloaded:
            subprocess.run(
                [dnf, "-c", str(build), "-q", "--releasever=1", f"--repo={repo}", "makecache"],
                check=True, timeout=120, capture_output=True,
            )
            for stamp_file in (cache / "dnf").glob(f"{repo}-*/repodata/repomd.xml"):
                stamp = time.time() - age * 86400
                os.utime(stamp_file, (stamp, stamp))
    folder = minimal_bin(tmp_path / "bin")
    for tool in ("dnf", "find", "bash"):
        found = shutil.which(tool)
        assert found is not None
        (folder / tool).symlink_to(found)
    mounts = bound_over({"/etc/dnf": etc, "/var/cache": cache})
    return LocalConnection("dnf-root", timeout=120, prefix=(*mounts, "env", f"PATH={folder}"))


@pytest.mark.parametrize(("repos", "source_ok", "fresh"), DNF_CASES.values(), ids=DNF_CASES)
def test_dnf_zero_pending_counts_only_with_fresh_security_metadata(
    tmp_path: Path, repos: dict[str, tuple[bool, bool, bool, int]], source_ok: bool, fresh: bool | None
) -> None:
    evidence = Evidence()
    with pytest.raises(EvidenceUnavailable, match=r"systemd does not run|reboot is pending"):
        check_patch_currency(dnf_root(tmp_path, repos), Policy(), evidence)
    found = verdicts(evidence)
    assert found[DNF_SOURCE] is (Verdict.OK if source_ok else Verdict.FAIL), line(evidence, DNF_SOURCE)
    if fresh is None:
        assert DNF_FRESH not in found
    else:
        assert found[DNF_FRESH] is (Verdict.OK if fresh else Verdict.FAIL), line(evidence, DNF_FRESH)
    if source_ok and fresh:
        assert found[DNF_PENDING] is Verdict.OK, line(evidence, DNF_PENDING)
    else:
        assert found[DNF_PENDING] is Verdict.INFO, line(evidence, DNF_PENDING)
        assert "unknown" in line(evidence, DNF_PENDING)
