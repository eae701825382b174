"""Command-line options and ini keys, resolved once into a frozen :class:`Settings`.

Precedence, for every setting that more than one place can give:
command line > ini file (``[pytest]`` / ``[tool.pytest.ini_options]``) > the policy file's
``run:`` section > built-in defaults. :func:`resolve_settings` is the only place that
applies it.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_secagent.catalog import load_catalog
from pytest_secagent.model import Severity
from pytest_secagent.policy import LoadedPolicy, PolicyError, load_policy
from pytest_secagent.redaction import Redactor
from pytest_secagent.targets import PolicyTarget, Target, TargetError, parse_target
from pytest_secagent.targets.preflight import target_problem
from pytest_secagent.targets.shard import INDEX_ENV, Shard, ShardError, parse_shard
from pytest_secagent.textfile import file_problem
from pytest_secagent.waivers import WaiverError, WaiverSet, load_waivers

__all__ = [
    "DEFAULT_POLICY_FILENAME",
    "DEFAULT_TIMEOUT",
    "SETTINGS_KEY",
    "Settings",
    "add_options",
    "resolve_settings",
]

DEFAULT_POLICY_FILENAME = "secagent.yaml"
DEFAULT_TIMEOUT = 10.0

USAGE_BAD_TARGET = "{option}: {error}"
USAGE_BAD_POLICY = (
    "secagent policy {error}\n"
    "fix the policy file (the schema is in the README, section 'Policy file'), "
    "or choose another with --secagent-policy"
)
USAGE_MISSING_POLICY = (
    "{option}: policy file {path} {problem}; give the path of a YAML policy file, "
    "or leave the option out to use the built-in defaults"
)
USAGE_BAD_SEVERITY = "{option}: {error}"
USAGE_BAD_TIMEOUT = (
    "{option}: {value!r} is not a timeout; give a positive number of seconds, such as 10"
)
USAGE_BAD_SECTION = "{option}: unknown baseline section {value!r}; valid sections: {valid}"
USAGE_BAD_CONTROL_PATTERN = (
    "{option}: {value!r} is not a control ID pattern; use IDs or fnmatch patterns such as "
    "SA-NET-007 or 'SA-RUNTIME-*'"
)
USAGE_MISSING_SSH_CONFIG = (
    "{option}: ssh configuration {path} {problem}; give the path of an ssh_config file, or "
    "leave the option out to use ~/.ssh/config"
)
USAGE_UNMATCHED_CONTROL_PATTERN = (
    "{option}: {value!r} matches no control of the catalog; control IDs look like SA-NET-007, "
    "patterns like 'SA-RUNTIME-*' (case matters); `secagent controls` or the README lists them"
)
USAGE_UNUSABLE_TARGET = "{option}: target {target}: {problem}"
WARNING_EMPTY_POLICY = "secagent: the policy file {source} is empty; the built-in defaults apply"
USAGE_BAD_REDACT = "secagent_redact: {value!r} is not a valid regular expression: {error}"
USAGE_MISSING_WAIVERS = (
    "{option}: waiver file {path} {problem}; give the path of a YAML waiver file "
    "(the format is in the README, section 'Waivers')"
)
USAGE_BAD_WAIVERS = (
    "secagent waivers {error}\n"
    "fix the waiver file (the format is in the README, section 'Waivers')"
)
USAGE_BAD_WAIVER_MAX_DAYS = (
    "{source}: key 'waivers.max_days': expected a positive number of days, got {value}"
)
USAGE_ALLOW_ERRORS_WITHOUT_GATE = (
    "{option} needs --secagent-fail-on: only the severity gate can let unverified controls pass; "
    "add --secagent-fail-on LEVEL (low, medium, high or critical)"
)
USAGE_BAD_SHARD = (
    "{option}: {error}; give INDEX/COUNT with 0 <= INDEX < COUNT, such as 0/3, or env/COUNT to read "
    "the index from ${env} (set in each pod of a Kubernetes Indexed Job)"
)
USAGE_OUTPUT_IS_DIRECTORY = (
    "{option}: {path} is a directory; give a file name such as {path}/secagent.{suffix}"
)

SETTINGS_KEY = pytest.StashKey["Settings"]()
_CONTROL_PATTERN = re.compile(r"^[A-Za-z0-9_*?\[\]!.-]+$")


@dataclass(frozen=True)
class Settings:
    """The run's effective configuration, resolved once at start-up."""

    targets: tuple[Target, ...]
    policy: LoadedPolicy
    timeout: float = DEFAULT_TIMEOUT
    controls: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()
    min_severity: Severity | None = None
    active_probes: bool = False
    include_suites: bool = True
    redact_patterns: tuple[str, ...] = ()
    ssh_config: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    waivers: WaiverSet | None = None
    strict_waivers: bool = False
    strict_evidence: bool = False
    fail_on: Severity | None = None
    allow_errors: bool = False
    json_path: Path | None = None
    sarif_path: Path | None = None
    html_path: Path | None = None
    junit_path: Path | None = None
    shard: Shard | None = None
    fleet_targets: tuple[Target, ...] = ()
    """With a shard: every target of the run, before the split (``targets`` are this shard's)."""

    @property
    def active(self) -> bool:
        """Whether this run checks anything: a target, or an explicitly chosen policy."""
        return bool(self.targets or self.fleet_targets) or self.sources.get("policy") in (
            "command line",
            "ini",
        )

    @property
    def policy_target(self) -> PolicyTarget:
        """The policy file as a target of the procedural controls."""
        return PolicyTarget(source=self.policy.source)

    @property
    def all_targets(self) -> tuple[Target, ...]:
        """Every target of the run: the configured ones plus the policy, when active.

        A shard other than shard 0 leaves the policy to shard 0.
        """
        if not self.active:
            return ()
        if self.shard is not None and not self.shard.owns(self.policy_target):
            return self.targets
        return (*self.targets, self.policy_target)

    @property
    def redactor(self) -> Redactor:
        """The redactor for evidence and reports."""
        return Redactor(self.redact_patterns)

    def selects(self, control_id: str, section: str, severity: Severity) -> bool:
        """Whether the control selection options keep this control."""
        if self.controls and not any(fnmatch.fnmatchcase(control_id, p) for p in self.controls):
            return False
        if self.sections and section.lower() not in {s.lower() for s in self.sections}:
            return False
        return self.min_severity is None or severity.rank >= self.min_severity.rank


def add_options(parser: pytest.Parser) -> None:
    """Add the plugin's command-line options and ini keys."""
    group = parser.getgroup("secagent", "security baselines (pytest-secagent)")
    group.addoption(
        "--secagent-target",
        action="append",
        dest="secagent_targets",
        metavar="URI",
        default=None,
        help="target to check (repeatable): local://, ssh://[USER@]HOST[:PORT], docker://CONTAINER, "
        "k8s://[CONTEXT][/NAMESPACE], k8s-incluster://[NAMESPACE], manifests://PATH, "
        "tls://HOST:PORT, https://HOST[:PORT]",
    )
    group.addoption(
        "--secagent-policy",
        dest="secagent_policy",
        metavar="PATH",
        default=None,
        help=f"policy file (YAML); default: {DEFAULT_POLICY_FILENAME} in the rootdir when present, "
        "else the built-in defaults",
    )
    group.addoption(
        "--secagent-controls",
        action="append",
        dest="secagent_controls",
        metavar="PATTERNS",
        default=None,
        help="run only these control IDs (comma-separated fnmatch patterns, e.g. 'SA-NET-*')",
    )
    group.addoption(
        "--secagent-section",
        action="append",
        dest="secagent_sections",
        metavar="SECTION",
        default=None,
        help="run only controls of this baseline section (repeatable)",
    )
    group.addoption(
        "--secagent-severity",
        dest="secagent_severity",
        metavar="LEVEL",
        default=None,
        help="run only controls of at least this severity: low, medium, high, critical",
    )
    group.addoption(
        "--secagent-timeout",
        dest="secagent_timeout",
        metavar="SECONDS",
        default=None,
        help=f"timeout of every network or remote call (default {DEFAULT_TIMEOUT:g})",
    )
    group.addoption(
        "--secagent-active-probes",
        action="store_true",
        dest="secagent_active_probes",
        default=None,
        help="also run the active network probes (connections from and to the agent's host); "
        "needs authorisation",
    )
    group.addoption(
        "--secagent-ssh-config",
        dest="secagent_ssh_config",
        metavar="PATH",
        default=None,
        help="ssh client configuration for ssh:// targets (default: the user's ~/.ssh/config)",
    )
    group.addoption(
        "--secagent-no-suites",
        action="store_false",
        dest="secagent_suites",
        default=None,
        help="do not collect the built-in suites; run only the test files given",
    )
    group.addoption(
        "--secagent-waivers",
        dest="secagent_waivers",
        metavar="FILE",
        default=None,
        help="waiver file (YAML): failures accepted until an expiry date, with reason and owner",
    )
    group.addoption(
        "--secagent-strict-waivers",
        action="store_true",
        dest="secagent_strict_waivers",
        default=None,
        help="fail the run when a waiver has expired or matched no failure",
    )
    group.addoption(
        "--secagent-strict-evidence",
        action="store_true",
        dest="secagent_strict_evidence",
        default=None,
        help="a control that passed on partial evidence (a part this kind of target cannot show, "
        "such as the CNI behind a rendered NetworkPolicy) fails instead of passing as partial",
    )
    group.addoption(
        "--secagent-fail-on",
        dest="secagent_fail_on",
        metavar="LEVEL",
        default=None,
        help="severity gate: failures of this severity or higher (low, medium, high, critical) fail "
        "the run, lower ones do not; unverified controls fail it too (exit status 6)",
    )
    group.addoption(
        "--secagent-allow-errors",
        action="store_true",
        dest="secagent_allow_errors",
        default=None,
        help="with --secagent-fail-on: controls that could not be verified do not fail the run",
    )
    group.addoption(
        "--secagent-json",
        dest="secagent_json",
        metavar="FILE",
        default=None,
        help="write the results as JSON (schema: pytest_secagent/schemas/results-v1.json)",
    )
    group.addoption(
        "--secagent-sarif",
        dest="secagent_sarif",
        metavar="FILE",
        default=None,
        help="write the findings as SARIF 2.1.0, for code scanning (file and line for manifests)",
    )
    group.addoption(
        "--secagent-html",
        dest="secagent_html",
        metavar="FILE",
        default=None,
        help="write the compliance report as one self-contained HTML file",
    )
    group.addoption(
        "--secagent-junit",
        dest="secagent_junit",
        metavar="FILE",
        default=None,
        help="write the controls as JUnit XML: one testcase per control and target, finding first",
    )
    group.addoption(
        "--secagent-shard",
        dest="secagent_shard",
        metavar="INDEX/COUNT",
        default=None,
        help="check only shard INDEX (from 0) of COUNT of the targets, split by a hash of each URI; "
        f"env/COUNT reads INDEX from ${INDEX_ENV} (Kubernetes Indexed Jobs); merge the shards' JSON "
        "with `secagent report`",
    )
    parser.addini("secagent_targets", "targets to check, one URI per line", type="linelist")
    parser.addini("secagent_policy", "policy file (YAML), relative to the rootdir", type="string")
    parser.addini("secagent_controls", "control ID patterns to run, one per line", type="linelist")
    parser.addini("secagent_sections", "baseline sections to run, one per line", type="linelist")
    parser.addini("secagent_severity", "minimum severity of the controls to run", type="string")
    parser.addini("secagent_timeout", "timeout of every network or remote call, seconds", type="string")
    parser.addini("secagent_active_probes", "run the active network probes", type="bool", default=False)
    parser.addini("secagent_suites", "collect the built-in suites", type="bool", default=True)
    parser.addini("secagent_ssh_config", "ssh client configuration for ssh:// targets", type="string")
    parser.addini("secagent_waivers", "waiver file (YAML), relative to the rootdir", type="string")
    parser.addini(
        "secagent_strict_waivers", "fail the run on expired or unused waivers", type="bool", default=False
    )
    parser.addini(
        "secagent_strict_evidence", "a pass on partial evidence fails the control", type="bool",
        default=False,
    )
    parser.addini("secagent_fail_on", "severity gate: lowest severity whose failures fail the run",
                  type="string")
    parser.addini(
        "secagent_allow_errors", "with the severity gate: unverified controls do not fail the run",
        type="bool", default=False,
    )
    parser.addini("secagent_json", "JSON results file, relative to the rootdir", type="string")
    parser.addini("secagent_sarif", "SARIF 2.1.0 findings file, relative to the rootdir", type="string")
    parser.addini("secagent_html", "HTML compliance report, relative to the rootdir", type="string")
    parser.addini("secagent_junit", "JUnit XML of the controls, relative to the rootdir", type="string")
    parser.addini("secagent_shard", "check only this shard of the targets: INDEX/COUNT or env/COUNT",
                  type="string")
    parser.addini(
        "secagent_redact",
        "regular expressions whose matches are masked in evidence and reports",
        type="linelist",
    )


def _split_patterns(values: list[str]) -> list[str]:
    return [p.strip() for value in values for p in value.split(",") if p.strip()]


def _policy_path(config: pytest.Config) -> tuple[Path | None, str]:
    option = config.getoption("secagent_policy")
    if option:
        path = Path(option)
        path = path if path.is_absolute() else Path(config.invocation_params.dir) / path
        if problem := file_problem(path):
            raise pytest.UsageError(
                USAGE_MISSING_POLICY.format(option="--secagent-policy", path=path, problem=problem)
            )
        return path, "command line"
    ini = str(config.getini("secagent_policy") or "")
    if ini:
        path = Path(ini) if Path(ini).is_absolute() else config.rootpath / ini
        if problem := file_problem(path):
            raise pytest.UsageError(
                USAGE_MISSING_POLICY.format(option="secagent_policy (ini)", path=path, problem=problem)
            )
        return path, "ini"
    default = config.rootpath / DEFAULT_POLICY_FILENAME
    if default.is_file():
        return default, "rootdir"
    return None, "built-in"


def _ssh_config(config: pytest.Config) -> str | None:
    option = config.getoption("secagent_ssh_config")
    if option:
        path = Path(option)
        path = path if path.is_absolute() else Path(config.invocation_params.dir) / path
        option_name = "--secagent-ssh-config"
    elif config.getini("secagent_ssh_config"):
        ini = str(config.getini("secagent_ssh_config"))
        path = Path(ini) if Path(ini).is_absolute() else config.rootpath / ini
        option_name = "secagent_ssh_config (ini)"
    else:
        return None
    if problem := file_problem(path):
        raise pytest.UsageError(
            USAGE_MISSING_SSH_CONFIG.format(option=option_name, path=path, problem=problem)
        )
    return str(path)


def _targets(specs: list[str], option: str) -> tuple[Target, ...]:
    targets: dict[str, Target] = {}
    for spec in specs:
        try:
            target = parse_target(spec)
        except TargetError as exc:
            raise pytest.UsageError(USAGE_BAD_TARGET.format(option=option, error=exc)) from None
        targets.setdefault(target.uri, target)
    return tuple(targets.values())


def _timeout(value: str | float, option: str) -> float:
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        raise pytest.UsageError(USAGE_BAD_TIMEOUT.format(option=option, value=value)) from None
    if not timeout > 0 or timeout != timeout or timeout == float("inf"):
        raise pytest.UsageError(USAGE_BAD_TIMEOUT.format(option=option, value=value))
    return timeout


def _severity(value: str, option: str) -> Severity:
    try:
        return Severity.parse(value)
    except ValueError as exc:
        raise pytest.UsageError(USAGE_BAD_SEVERITY.format(option=option, error=exc)) from None


def _option_path(config: pytest.Config, name: str, flag: str) -> tuple[Path, str] | None:
    """A path option: the command line (relative to the invocation dir), else the ini (to the rootdir)."""
    option = config.getoption(name)
    if option:
        path = Path(option)
        return (path if path.is_absolute() else Path(config.invocation_params.dir) / path), flag
    ini = str(config.getini(name) or "")
    if ini:
        path = Path(ini)
        return (path if path.is_absolute() else config.rootpath / path), f"{name} (ini)"
    return None


def _waivers(config: pytest.Config, loaded: LoadedPolicy) -> WaiverSet | None:
    found = _option_path(config, "secagent_waivers", "--secagent-waivers")
    if found is None:
        return None
    path, option = found
    if problem := file_problem(path):
        raise pytest.UsageError(USAGE_MISSING_WAIVERS.format(option=option, path=path, problem=problem))
    max_days = loaded.policy.waivers.max_days
    if max_days < 1:
        raise pytest.UsageError(USAGE_BAD_WAIVER_MAX_DAYS.format(source=loaded.source, value=max_days))
    try:
        return load_waivers(path, max_days=max_days)
    except WaiverError as exc:
        raise pytest.UsageError(USAGE_BAD_WAIVERS.format(error=exc)) from None


def _shard(config: pytest.Config) -> Shard | None:
    option = config.getoption("secagent_shard")
    if option:
        value, name = option, "--secagent-shard"
    else:
        value, name = config.getini("secagent_shard"), "secagent_shard (ini)"
    if not value:
        return None
    try:
        return parse_shard(str(value))
    except ShardError as exc:
        raise pytest.UsageError(USAGE_BAD_SHARD.format(option=name, error=exc, env=INDEX_ENV)) from None


def _has_content(path: Path) -> bool:
    """Whether a policy file holds anything but blank lines and comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return True
    return any(line.strip() and not line.strip().startswith("#") for line in text.splitlines())


def _flag(config: pytest.Config, name: str) -> bool:
    option = config.getoption(name)
    return bool(option) if option is not None else bool(config.getini(name))


def resolve_settings(config: pytest.Config) -> Settings:
    """Resolve every setting with the documented precedence; raise UsageError on bad input."""
    sources: dict[str, str] = {}
    path, sources["policy"] = _policy_path(config)
    try:
        loaded = load_policy(path)
    except PolicyError as exc:
        raise pytest.UsageError(USAGE_BAD_POLICY.format(error=exc)) from None
    run = loaded.policy.run

    cli_targets = config.getoption("secagent_targets")
    ini_targets = config.getini("secagent_targets")
    if cli_targets:
        targets, sources["targets"] = _targets(cli_targets, "--secagent-target"), "command line"
    elif ini_targets:
        targets, sources["targets"] = _targets(ini_targets, "secagent_targets (ini)"), "ini"
    else:
        targets = _targets(run.targets, f"{loaded.source}: run.targets")
        sources["targets"] = "policy file" if run.targets else "none"

    shard = _shard(config)
    fleet_targets: tuple[Target, ...] = ()
    if shard is not None:
        fleet_targets, targets = targets, shard.select(targets)

    base = Path(config.invocation_params.dir)
    for target in targets:
        problem = target_problem(target, base=base)
        if problem is not None:
            option = {"command line": "--secagent-target", "ini": "secagent_targets (ini)"}.get(
                sources["targets"], f"{loaded.source}: run.targets"
            )
            raise pytest.UsageError(
                USAGE_UNUSABLE_TARGET.format(option=option, target=target.uri, problem=problem)
            )
    if path is not None and not _has_content(path):
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(WARNING_EMPTY_POLICY.format(source=loaded.source)), stacklevel=2
        )

    cli_timeout = config.getoption("secagent_timeout")
    ini_timeout = config.getini("secagent_timeout")
    if cli_timeout is not None:
        timeout = _timeout(cli_timeout, "--secagent-timeout")
    elif ini_timeout:
        timeout = _timeout(ini_timeout, "secagent_timeout (ini)")
    else:
        timeout = run.timeout_seconds

    cli_controls = config.getoption("secagent_controls")
    patterns = (
        _split_patterns(cli_controls) if cli_controls
        else _split_patterns(config.getini("secagent_controls")) or list(run.controls)
    )
    catalog_ids = [control.id for control in load_catalog()]
    for pattern in patterns:
        if not _CONTROL_PATTERN.match(pattern):
            raise pytest.UsageError(
                USAGE_BAD_CONTROL_PATTERN.format(option="--secagent-controls", value=pattern)
            )
        if not any(fnmatch.fnmatchcase(control_id, pattern) for control_id in catalog_ids):
            raise pytest.UsageError(
                USAGE_UNMATCHED_CONTROL_PATTERN.format(option="--secagent-controls", value=pattern)
            )

    cli_sections = config.getoption("secagent_sections")
    sections = cli_sections or config.getini("secagent_sections")
    catalog_sections = load_catalog().sections
    valid = {s.lower() for s in catalog_sections}
    for section in sections:
        if section.lower() not in valid:
            raise pytest.UsageError(
                USAGE_BAD_SECTION.format(
                    option="--secagent-section", value=section, valid=", ".join(catalog_sections)
                )
            )

    cli_severity = config.getoption("secagent_severity")
    ini_severity = config.getini("secagent_severity")
    if cli_severity:
        min_severity: Severity | None = _severity(cli_severity, "--secagent-severity")
    elif ini_severity:
        min_severity = _severity(str(ini_severity), "secagent_severity (ini)")
    elif run.min_severity:
        min_severity = _severity(run.min_severity, f"{loaded.source}: run.min_severity")
    else:
        min_severity = None

    cli_probes = config.getoption("secagent_active_probes")
    active_probes = (
        bool(cli_probes) if cli_probes is not None else bool(config.getini("secagent_active_probes"))
    )
    cli_suites = config.getoption("secagent_suites")
    include_suites = bool(cli_suites) if cli_suites is not None else bool(config.getini("secagent_suites"))

    ssh_config = _ssh_config(config)
    redact = tuple(config.getini("secagent_redact"))
    for pattern in redact:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise pytest.UsageError(USAGE_BAD_REDACT.format(value=pattern, error=exc)) from None

    cli_fail_on = config.getoption("secagent_fail_on")
    ini_fail_on = config.getini("secagent_fail_on")
    if cli_fail_on:
        fail_on: Severity | None = _severity(cli_fail_on, "--secagent-fail-on")
    elif ini_fail_on:
        fail_on = _severity(str(ini_fail_on), "secagent_fail_on (ini)")
    else:
        fail_on = None
    allow_errors = _flag(config, "secagent_allow_errors")
    if allow_errors and fail_on is None:
        option = (
            "--secagent-allow-errors" if config.getoption("secagent_allow_errors")
            else "secagent_allow_errors (ini)"
        )
        raise pytest.UsageError(USAGE_ALLOW_ERRORS_WITHOUT_GATE.format(option=option))

    outputs: dict[str, Path | None] = {}
    for kind in ("json", "sarif", "html", "junit"):
        found = _option_path(config, f"secagent_{kind}", f"--secagent-{kind}")
        if found is not None and found[0].is_dir():
            suffix = {"json": "json", "sarif": "sarif", "html": "html", "junit": "xml"}[kind]
            raise pytest.UsageError(
                USAGE_OUTPUT_IS_DIRECTORY.format(option=found[1], path=found[0], suffix=suffix)
            )
        outputs[kind] = found[0] if found is not None else None

    return Settings(
        targets=targets,
        policy=loaded,
        timeout=timeout,
        controls=tuple(patterns),
        sections=tuple(sections),
        min_severity=min_severity,
        active_probes=active_probes,
        include_suites=include_suites,
        redact_patterns=redact,
        ssh_config=ssh_config,
        sources=sources,
        waivers=_waivers(config, loaded),
        strict_waivers=_flag(config, "secagent_strict_waivers"),
        strict_evidence=_flag(config, "secagent_strict_evidence"),
        fail_on=fail_on,
        allow_errors=allow_errors,
        json_path=outputs["json"],
        sarif_path=outputs["sarif"],
        html_path=outputs["html"],
        junit_path=outputs["junit"],
        shard=shard,
        fleet_targets=fleet_targets,
    )
