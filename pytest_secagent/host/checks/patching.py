"""SA-VULN-003 for hosts: no pending security updates, no old pending reboot, automatic updates on.

Everything is read from the package manager's cache and configuration; no upgrade is
simulated and no package list is refreshed. "No pending security update" counts only
when a security source is configured and enabled and its package lists (apt) or
metadata (dnf, yum) are fresh: without them the package manager cannot know of any
security update, and an empty answer means nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.checks.common import host_epoch, stat_path, stat_paths, systemd_running, unit_state
from pytest_secagent.host.shell import says_missing
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy

__all__ = [
    "DNF_CACHE_DIRS",
    "METADATA_MAX_AGE_DAYS",
    "AptSource",
    "apt_list_file_prefix",
    "apt_periodic_settings",
    "check_patch_currency",
    "parse_apt_sources",
    "parse_repolist",
    "pending_apt_security_updates",
]

#: The oldest package lists / repository metadata that can show a pending security update
#: (days). No policy key sets it; the limit applied is the lower of this and
#: ``vulnerability.patch_sla_critical_days``, since lists older than the critical patch SLA
#: cannot show a critical update that is already overdue.
METADATA_MAX_AGE_DAYS = 7

APT_CONF_DIR = "/etc/apt/apt.conf.d"
APT_LISTS_DIR = "/var/lib/apt/lists"
_APT_PART_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_PERIODIC = re.compile(r'APT::Periodic::([A-Za-z-]+)\s+"([^"]*)"\s*;')
_LISTED = 20
_SOURCE_PART_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.(list|sources)$")
_UPGRADABLE = re.compile(r"^(?P<name>[^/\s]+)/(?P<suites>\S+) \S+ \S+ \[upgradable from: [^\]]+\]$")
#: Characters apt escapes (as %xx) when it turns a URI into a file name under its lists folder.
_APT_QUOTED = '\\|{}[]<>"^~_=!@#$%&*'


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` source: a repository URI and one suite, and the file that declares it."""

    uri: str
    suite: str
    path: str

    @property
    def security(self) -> bool:
        """Whether the suite carries security updates (``*-security``, or the old ``*/updates``)."""
        suite = self.suite.lower().rstrip("/")
        return suite.endswith("-security") or (suite.endswith("/updates") and "security" in self.uri.lower())

    @property
    def label(self) -> str:
        """``suite from uri (file)`` for reports."""
        return f"{self.suite} from {self.uri} ({self.path})"


def _strip_source_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


def _one_line_sources(text: str, path: str) -> list[AptSource]:
    found = []
    for raw in text.splitlines():
        line = _strip_source_comment(raw)
        if not line:
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line, count=1)  # [arch=amd64 signed-by=...]
        words = line.split()
        if words[0] == "deb" and len(words) >= 3:
            found.append(AptSource(words[1], words[2], path))
    return found


def _deb822_sources(text: str, path: str) -> list[AptSource]:
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#"):
                continue
            if line[:1] in (" ", "\t") and key is not None:
                fields[key] += " " + line.strip()
            elif ":" in line:
                name, _, value = line.partition(":")
                key = name.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").strip().lower() in ("no", "false", "0"):
            continue
        for uri in fields.get("uris", "").split():
            found += [AptSource(uri, suite, path) for suite in fields.get("suites", "").split()]
    return found


def parse_apt_sources(text: str, path: str) -> list[AptSource]:
    """The ``deb`` sources of one file: deb822 for ``*.sources``, one-line format otherwise.

    ``deb-src`` entries, comments and deb822 stanzas with ``Enabled: no`` are left out.
    """
    return _deb822_sources(text, path) if path.endswith(".sources") else _one_line_sources(text, path)


def apt_list_file_prefix(source: AptSource) -> str:
    """The start of the names apt gives the downloaded lists of ``source`` in its lists folder."""
    uri = re.sub(r"^[A-Za-z0-9+.-]+://", "", source.uri)
    uri = re.sub(r"^[^/@]*@", "", uri)  # user:password@
    location = f"{uri.rstrip('/')}/dists/{source.suite.rstrip('/')}/"
    quoted = "".join(f"%{ord(c):02x}" if c in _APT_QUOTED else c for c in location)
    return quoted.replace("/", "_")


def pending_apt_security_updates(text: str) -> list[str]:
    """Packages of ``apt list --upgradable`` whose candidate comes from a ``-security`` suite.

    Raises ``ValueError`` on output of another shape (no ``Listing...`` line, a line that
    is no upgradable package): read leniently, such output would count as zero pending.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("Listing..."):
        raise ValueError(f"`apt list --upgradable` printed no `Listing...` line: {text[:200]!r}")
    pending = []
    for line in lines[1:]:
        if line.startswith("N: "):
            continue  # notices such as "There is 1 additional version"
        match = _UPGRADABLE.match(line)
        if match is None:
            raise ValueError(f"not a line of `apt list --upgradable`: {line[:200]!r}")
        suites = match.group("suites").split(",")
        if any(suite.endswith("-security") or "-security-" in suite for suite in suites):
            pending.append(match.group("name"))
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


def _apt_paths(host: HostConnection) -> tuple[str, str, str]:
    """The sources.list file and sources.list.d and lists folders, as apt's configuration sets them."""
    defaults = ("/etc/apt/sources.list", "/etc/apt/sources.list.d/", APT_LISTS_DIR + "/")
    result = host.run(
        ["apt-config", "shell", "SL", "Dir::Etc::sourcelist/f", "SP", "Dir::Etc::sourceparts/d",
         "LISTS", "Dir::State::lists/d"]
    )
    if not result.succeeded:
        return defaults
    values = dict(re.findall(r"^(SL|SP|LISTS)='([^']*)'$", result.stdout, re.MULTILINE))
    return values.get("SL", defaults[0]), values.get("SP", defaults[1]), values.get("LISTS", defaults[2])


def _apt_sources(host: HostConnection, main: str, parts: str) -> tuple[list[AptSource], list[str]]:
    listing = host.run(["ls", "-1", "--", parts])
    if not listing.succeeded and not says_missing(listing.stderr, parts.rstrip("/")):
        raise EvidenceUnavailable(f"{host.target_id}: cannot list {parts}: {listing.stderr.strip()}")
    names = sorted(n for n in listing.stdout.split() if _SOURCE_PART_NAME.match(n))
    paths = [main, *(parts.rstrip("/") + "/" + name for name in names)]
    sources: list[AptSource] = []
    read = []
    for path in paths:
        text = host.read_text(path)
        if text is not None:
            read.append(path)
            sources += parse_apt_sources(text, path)
    return sources, read


def _security_lists_age(
    host: HostConnection, security: list[AptSource], lists_dir: str
) -> tuple[float | None, str]:
    """Age in days of the oldest security source's lists, or ``None`` with why they are missing."""
    listing = host.run(["ls", "-1", "--", lists_dir])
    if not listing.succeeded:
        raise EvidenceUnavailable(f"{host.target_id}: cannot list {lists_dir}: {listing.stderr.strip()}")
    names = listing.stdout.split()
    releases: dict[AptSource, list[str]] = {}
    for source in security:
        prefix = apt_list_file_prefix(source)
        mine = [name for name in names if name.startswith(prefix)]
        if not any("_Packages" in name for name in mine):
            return None, f"no package list of {source.label} in {lists_dir} (never downloaded)"
        folder = lists_dir.rstrip("/")
        releases[source] = [f"{folder}/{n}" for n in mine if n.endswith(("InRelease", "Release"))]
        if not releases[source]:
            return None, f"no Release file of {source.label} in {lists_dir}"
    info = stat_paths(host, [path for paths in releases.values() for path in paths])
    now = host_epoch(host)
    oldest, where = 0.0, ""
    for source, paths in releases.items():
        stamps = [(stat.mtime, path) for path in paths if (stat := info[path]) is not None]
        if not stamps:
            return None, f"the Release file of {source.label} vanished while read"
        newest = max(stamps)
        age = (now - newest[0]) / 86400
        if age >= oldest:
            oldest, where = age, newest[1]
    return oldest, f"{oldest:.1f} days ago ({where})"


def _apt(host: HostConnection, policy: Policy, evidence: Evidence) -> None:
    result = host.run(["apt", "list", "--upgradable"])
    if not result.succeeded:
        reason = result.stderr.strip() or f"exit status {result.exit_status}"
        raise EvidenceUnavailable(f"{host.target_id}: `apt list --upgradable` failed: {reason}")
    try:
        pending = pending_apt_security_updates(result.stdout)
    except ValueError as exc:
        raise EvidenceUnavailable(f"{host.target_id}: {exc}") from exc
    main, parts, lists_dir = _apt_paths(host)
    indexes = host.run(["ls", "-1", "--", lists_dir])
    if not any("_Packages" in name for name in indexes.stdout.split()):
        raise EvidenceUnavailable(
            f"{host.target_id}: no package index in {lists_dir.rstrip('/')} "
            f"({indexes.stderr.strip() or 'never downloaded'}), so apt knows of no update at all; "
            "pending security updates cannot be read"
        )
    sources, read = _apt_sources(host, main, parts)
    security = [source for source in sources if source.security]
    evidence.expect(
        "security update source (apt)",
        expected="an enabled `deb` source of a security suite (*-security)",
        actual=(
            "; ".join(source.label for source in security)
            if security
            else f"none: suites {', '.join(sorted({s.suite for s in sources})) or 'none'} "
            f"(read {', '.join(read) or 'no sources file'})"
        ),
        ok=bool(security),
    )
    limit = min(METADATA_MAX_AGE_DAYS, policy.vulnerability.patch_sla_critical_days)
    age, how = _security_lists_age(host, security, lists_dir) if security else (None, "no security source")
    if security:
        evidence.expect(
            "security package lists refreshed (apt)",
            expected=f"at most {limit} days ago (METADATA_MAX_AGE_DAYS={METADATA_MAX_AGE_DAYS}, "
            f"capped by vulnerability.patch_sla_critical_days)",
            actual=how,
            ok=age is not None and age <= limit,
        )
    known = age is not None and age <= limit
    shown = ", ".join(pending[:_LISTED])
    if len(pending) > _LISTED:
        shown += f" (+{len(pending) - _LISTED} more)"
    if pending or known:
        evidence.expect(
            "pending security updates (apt)",
            expected="0",
            actual=f"{len(pending)}: {shown}" if pending else "0",
            ok=not pending,
        )
    else:
        evidence.observe(
            "pending security updates (apt)",
            f"unknown: apt lists none, but it cannot know of security updates ({how})",
        )
    settings, sources_read = apt_periodic_settings(host)
    enabled = settings.get("Enable", "1") != "0"
    unattended = settings.get("Unattended-Upgrade", "0")
    installed = host.which("unattended-upgrade") is not None
    evidence.expect(
        "automatic security updates (unattended-upgrades)",
        expected='installed, APT::Periodic::Unattended-Upgrade "1" (or more)',
        actual=(
            f"{'installed' if installed else 'not installed'}, "
            f"Unattended-Upgrade={unattended!r}{'' if enabled else ', APT::Periodic::Enable=0'}"
            f" (from {', '.join(sources_read) or 'no file'})"
        ),
        ok=installed and enabled and unattended.isdigit() and int(unattended) >= 1,
    )


#: Where dnf (4 and 5) and yum keep downloaded repository metadata.
DNF_CACHE_DIRS = ("/var/cache/dnf", "/var/cache/libdnf5", "/var/cache/yum")
_REPO_HEADER = re.compile(r"^repo id\s+repo name", re.IGNORECASE)


def parse_repolist(text: str) -> list[str]:
    """Repository ids from ``dnf repolist --enabled`` / ``yum repolist enabled`` output.

    Raises ``ValueError`` when the ``repo id`` header is missing (another shape of output);
    no repository at all gives an empty list.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    header = next((i for i, line in enumerate(lines) if _REPO_HEADER.match(line.strip())), None)
    if header is None:
        if any("no repositor" in line.lower() for line in lines) or not lines:
            return []
        raise ValueError(f"not the output of `repolist`: {text[:200]!r}")
    ids = []
    for line in lines[header + 1 :]:
        if line.lower().startswith("repolist:"):
            continue  # yum's total line
        word = line.split()[0].lstrip("!*")
        ids.append(word.split("/", 1)[0])  # yum: base/7/x86_64
    return ids


def _repo_metadata(host: HostConnection, repos: list[str]) -> dict[str, tuple[int | None, bool]]:
    """Per repository: the newest cached ``repomd.xml`` time and whether updateinfo is cached."""
    script = (
        'for d in "$@"; do [ -d "$d" ] || continue; '
        "find \"$d\" \\( -name repomd.xml -o -name '*updateinfo.xml*' \\) -printf '%T@ %p\\n'; done"
    )
    result = host.run(["sh", "-c", script, "sh", *DNF_CACHE_DIRS])
    if not result.succeeded:
        reason = result.stderr.strip()[:300] or f"exit status {result.exit_status}"
        raise EvidenceUnavailable(f"{host.target_id}: cannot read the repository metadata cache: {reason}")
    found: dict[str, tuple[int | None, bool]] = {repo: (None, False) for repo in repos}
    for line in result.stdout.splitlines():
        stamp, _, path = line.partition(" ")
        parts = path.split("/")
        for repo in repos:
            owner = re.compile(rf"^{re.escape(repo)}(-[0-9a-f]{{16}})?$")
            if not any(owner.match(part) for part in parts[3:]):
                continue
            newest, updateinfo = found[repo]
            if parts[-1] == "repomd.xml":
                seconds = int(float(stamp))
                newest = seconds if newest is None else max(newest, seconds)
            else:
                updateinfo = True
            found[repo] = (newest, updateinfo)
    return found


def _dnf_sources(host: HostConnection, dnf: str, policy: Policy, evidence: Evidence) -> bool:
    """Record the enabled repositories' security metadata; whether an empty answer can be trusted."""
    listing = host.run([dnf, "-C", "-q", "repolist", "enabled"])
    if not listing.succeeded:
        reason = listing.stderr.strip()[:300] or f"exit status {listing.exit_status}"
        raise EvidenceUnavailable(f"{host.target_id}: `{dnf} repolist enabled` failed: {reason}")
    try:
        repos = parse_repolist(listing.stdout)
    except ValueError as exc:
        raise EvidenceUnavailable(f"{host.target_id}: {exc}") from exc
    metadata = _repo_metadata(host, repos) if repos else {}
    with_security = [repo for repo, (_, updateinfo) in metadata.items() if updateinfo]
    evidence.expect(
        f"security update source ({dnf})",
        expected="an enabled repository whose cached metadata carries updateinfo (security advisories)",
        actual=(
            ", ".join(with_security)
            if with_security
            else f"none: enabled repositories {', '.join(repos) or 'none'} have no cached updateinfo"
        ),
        ok=bool(with_security),
    )
    if not with_security:
        return False
    limit = min(METADATA_MAX_AGE_DAYS, policy.vulnerability.patch_sla_critical_days)
    now = host_epoch(host)
    ages = {
        repo: None if newest is None else (now - newest) / 86400 for repo, (newest, _) in metadata.items()
    }
    stale = [
        f"{repo} ({'never downloaded' if age is None else f'{age:.1f} days old'})"
        for repo, age in ages.items()
        if age is None or age > limit
    ]
    known = [age for age in ages.values() if age is not None]
    evidence.expect(
        f"repository metadata refreshed ({dnf})",
        expected=f"every enabled repository at most {limit} days old (METADATA_MAX_AGE_DAYS="
        f"{METADATA_MAX_AGE_DAYS}, capped by vulnerability.patch_sla_critical_days)",
        actual="; ".join(stale) if stale else f"oldest {max(known):.1f} days old",
        ok=not stale,
    )
    return not stale


def _dnf(host: HostConnection, dnf: str, policy: Policy, evidence: Evidence) -> None:
    trusted = _dnf_sources(host, dnf, policy, evidence)
    result = host.run(
        [dnf, "-C", "-q", "updateinfo", "list", "--security", "--sec-severity=Critical",
         "--sec-severity=Important"],
    )
    name = f"pending Critical/Important security updates ({dnf})"
    if not result.succeeded:
        reason = result.stderr.strip()[:300] or f"exit status {result.exit_status}"
        if not trusted:  # the missing or stale metadata, already failed above, is why
            evidence.observe(name, f"unknown: `{dnf} updateinfo` failed: {reason}")
            return _dnf_automatic(host, evidence)
        raise EvidenceUnavailable(f"{host.target_id}: `{dnf} updateinfo` failed: {reason}")
    lines = [line.split() for line in result.stdout.splitlines() if line.strip()]
    odd = [" ".join(words) for words in lines if len(words) < 3]
    if odd:
        raise EvidenceUnavailable(
            f"{host.target_id}: not a line of `{dnf} updateinfo list`: {odd[0][:200]!r}"
        )
    pending = [words[-1] for words in lines]
    if pending or trusted:
        evidence.expect(
            name,
            expected="0",
            actual=f"{len(pending)}: {', '.join(pending[:_LISTED])}" if pending else "0",
            ok=not pending,
        )
    else:
        evidence.observe(name, "unknown: none listed, but no fresh security metadata to list them from")
    _dnf_automatic(host, evidence)


def _dnf_automatic(host: HostConnection, evidence: Evidence) -> None:
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
        _dnf(host, dnf.rsplit("/", 1)[-1], policy, evidence)
    else:
        raise EvidenceUnavailable(
            f"{host.target_id}: neither apt nor dnf is installed, so pending updates cannot be read"
        )
    _reboot(host, policy, evidence, marker_is_the_signal=apt)
