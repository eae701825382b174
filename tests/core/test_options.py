"""Every UsageError the options can raise, pinned word for word."""

from __future__ import annotations

import pytest

from pytest_secagent.targets import TARGET_FORMS

USAGE_ERROR = pytest.ExitCode.USAGE_ERROR


def _stderr(result: pytest.RunResult) -> str:
    return "\n".join(result.errlines).strip()


def test_help_lists_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "security baselines (pytest-secagent):",
            "*--secagent-target=URI*",
            "*--secagent-policy=PATH*",
            "*--secagent-controls=PATTERNS*",
            "*--secagent-section=SECTION*",
            "*--secagent-severity=LEVEL*",
            "*--secagent-timeout=SECONDS*",
            "*--secagent-active-probes*",
            "*--secagent-ssh-config=PATH*",
            "*--secagent-no-suites*",
            "*secagent_targets (linelist):*",
            "*secagent_policy (string):*",
            "*secagent_redact (linelist):*",
        ]
    )


def test_bad_policy_in_rootdir_does_not_break_help(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", secagent="tls: [")
    assert pytester.runpytest("--help").ret == pytest.ExitCode.OK


def test_unknown_scheme_lists_the_valid_forms(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--secagent-target", "bogus://x")
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        "ERROR: --secagent-target: invalid target 'bogus://x': unknown scheme 'bogus'\n" + TARGET_FORMS
    )


def test_bad_target_in_ini_names_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsecagent_targets =\n    local://\n    tls://nowhere\n")
    result = pytester.runpytest()
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: secagent_targets (ini): invalid target 'tls://nowhere': a tls target needs a port: "
            "tls://HOST:PORT"
        ]
    )


def test_bad_target_in_policy_names_the_policy_file(pytester: pytest.Pytester) -> None:
    policy = pytester.makefile(".yaml", policy="run:\n  targets: [ftp://x]\n")
    result = pytester.runpytest("--secagent-policy", str(policy))
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: {policy}: run.targets: invalid target 'ftp://x': unknown scheme 'ftp'"]
    )


def test_missing_policy_file(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--secagent-policy", "nope.yaml")
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        f"ERROR: --secagent-policy: policy file {pytester.path / 'nope.yaml'} does not exist; give the "
        "path of a YAML policy file, or leave the option out to use the built-in defaults"
    )


def test_missing_policy_file_from_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsecagent_policy = policies/prod.yaml\n")
    result = pytester.runpytest()
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        f"ERROR: secagent_policy (ini): policy file {pytester.path / 'policies/prod.yaml'} does not "
        "exist; give the path of a YAML policy file, or leave the option out to use the built-in defaults"
    )


def test_policy_with_wrong_type_names_file_line_and_key(pytester: pytest.Pytester) -> None:
    policy = pytester.makefile(
        ".yaml",
        policy="versions:\n  kubernetes_min: '1.24'\ntls:\n  cert_min_days_left: soon\n",
    )
    result = pytester.runpytest("--secagent-policy", str(policy))
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        f"ERROR: secagent policy {policy}:4: key 'tls.cert_min_days_left': expected an integer, got "
        "'soon'\nfix the policy file (the schema is in the README, section 'Policy file'), or choose "
        "another with --secagent-policy"
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_default_policy_in_rootdir_is_validated(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", secagent="agent:\n  namespcae: atlan\n")
    result = pytester.runpytest("--secagent-target", "local://")
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: secagent policy {pytester.path / 'secagent.yaml'}:2: key 'agent.namespcae': "
            "unknown key; valid keys here: api_access, container_labels, containers, namespace, "
            "platform_services, selector, service_accounts, user"
        ]
    )


@pytest.mark.parametrize("value", ["urgent", ""])
def test_bad_severity(pytester: pytest.Pytester, value: str) -> None:
    result = pytester.runpytest("--secagent-severity", value or " ")
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        f"ERROR: --secagent-severity: unknown severity {(value or ' ')!r}; valid severities: "
        "low, medium, high, critical"
    )


def test_bad_severity_in_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsecagent_severity = severe\n")
    result = pytester.runpytest()
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        "ERROR: secagent_severity (ini): unknown severity 'severe'; valid severities: "
        "low, medium, high, critical"
    )


@pytest.mark.parametrize("value", ["0", "-1", "ten", "nan", "inf"])
def test_bad_timeout(pytester: pytest.Pytester, value: str) -> None:
    result = pytester.runpytest("--secagent-timeout", value)
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        f"ERROR: --secagent-timeout: {value!r} is not a timeout; give a positive number of seconds, "
        "such as 10"
    )


def test_bad_timeout_in_policy(pytester: pytest.Pytester) -> None:
    policy = pytester.makefile(".yaml", policy="run:\n  timeout_seconds: 0\n")
    result = pytester.runpytest("--secagent-policy", str(policy))
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: secagent policy {policy}: key 'run.timeout_seconds': expected a positive number of "
            "seconds, got 0.0"
        ]
    )


def test_bad_section(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--secagent-section", "Networking")
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        "ERROR: --secagent-section: unknown baseline section 'Networking'; valid sections: "
        "Security assessment, Infrastructure security, Network security controls, "
        "Identity and access management, Ongoing security requirements"
    )


def test_bad_control_pattern(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--secagent-controls", "SA-NET-007,SA NET")
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        "ERROR: --secagent-controls: 'SA NET' is not a control ID pattern; use IDs or fnmatch "
        "patterns such as SA-NET-007 or 'SA-RUNTIME-*'"
    )


def test_bad_redaction_pattern(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsecagent_redact = (unclosed\n")
    result = pytester.runpytest()
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        "ERROR: secagent_redact: '(unclosed' is not a valid regular expression: "
        "missing ), unterminated subpattern at position 0"
    )


def test_precedence_cli_over_ini_over_policy(pytester: pytest.Pytester) -> None:
    policy = pytester.makefile(
        ".yaml", policy="run:\n  targets: ['tls://policy.example:443']\n  timeout_seconds: 3\n"
    )
    pytester.makeini(
        f"[pytest]\nsecagent_policy = {policy.name}\nsecagent_targets = tls://ini.example:443\n"
        "secagent_timeout = 4\n"
    )
    pytester.makepyfile(
        """
        def test_settings(secagent_settings):
            print("TARGETS", [t.uri for t in secagent_settings.targets])
            print("TIMEOUT", secagent_settings.timeout)
        """
    )
    result = pytester.runpytest("-s", "--secagent-no-suites")
    assert "TARGETS ['tls://ini.example:443']\nTIMEOUT 4.0" in result.stdout.str()
    result = pytester.runpytest(
        "-s", "--secagent-no-suites", "--secagent-target", "tls://cli.example:443", "--secagent-timeout", "5"
    )
    assert "TARGETS ['tls://cli.example:443']\nTIMEOUT 5.0" in result.stdout.str()
    pytester.makeini(f"[pytest]\nsecagent_policy = {policy.name}\n")
    result = pytester.runpytest("-s", "--secagent-no-suites")
    assert "TARGETS ['tls://policy.example:443']\nTIMEOUT 3.0" in result.stdout.str()


def test_report_header_names_policy_and_targets(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(
        "--secagent-no-suites", "--secagent-target", "local://", "--secagent-severity", "high"
    )
    result.stdout.fnmatch_lines(
        [
            "secagent: policy: built-in defaults [from built-in]",
            "secagent: targets: local://, policy:// [from command line]",
            "secagent: catalog: 52 controls; timeout 10s; active probes off",
            "secagent: selection: severity >= high",
        ]
    )


def test_inactive_without_targets(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("secagent:*")


def test_missing_ssh_config(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--secagent-ssh-config", "nope_config")
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        f"ERROR: --secagent-ssh-config: ssh configuration {pytester.path / 'nope_config'} does not exist; "
        "give the path of an ssh_config file, or leave the option out to use ~/.ssh/config"
    )


def test_ssh_config_reaches_the_settings(pytester: pytest.Pytester) -> None:
    (pytester.path / "ssh_config").write_text("Host *\n  ConnectTimeout 3\n")
    pytester.makeini("[pytest]\nsecagent_ssh_config = ssh_config\n")
    pytester.makepyfile("def test_it(secagent_settings):\n    print('SSH', secagent_settings.ssh_config)\n")
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines([f"*SSH {pytester.path / 'ssh_config'}"])
