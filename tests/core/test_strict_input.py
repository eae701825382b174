"""The user's files are strict and bounded: tags, duplicate keys, aliases, directories and size.

Each fault is tried on both files the user writes (policy and waivers), through the real
command line, and must end the run at start with one usage error naming the file, the line
and the key, and the fix; nothing runs.
"""

from __future__ import annotations

import pytest

from pytest_secagent.strictyaml import MAX_NODES
from pytest_secagent.textfile import MAX_CONFIG_BYTES

WAIVER = "  - control: SA-NET-007\n    reason: r\n    owner: o\n    expires: 2999-01-01\n"

#: name -> (policy text, waiver text, the error's text after "<file>:")
FAULTS: dict[str, tuple[str, str, str]] = {
    "object tag on a mapping": (
        "agent: !!python/object/apply:os.system\n  user: x\n",
        "waivers: !!python/object/apply:os.system\n" + WAIVER,
        "1: key '{key}': the tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
    ),
    "object tag on a list": (
        "firewall_rules:\n  outbound_allowed: !!python/object/new:list\n    - destination: a\n",
        "waivers: !!python/object/new:list\n" + WAIVER,
        "{line}: key '{key2}': the tag 'tag:yaml.org,2002:python/object/new:list' is not allowed",
    ),
    "local tag": (
        "tls: !secret\n  min_version: TLSv1.2\n",
        "waivers: !secret\n" + WAIVER,
        "1: key '{key3}': the tag '!secret' is not allowed",
    ),
    "duplicate top-level key": (
        "tls:\n  min_version: TLSv1.2\ntls: {}\n",
        "waivers:\n" + WAIVER + "waivers: []\n",
        "{dupline}: key '{dupkey}': appears twice (first on line 1); keep one",
    ),
}


def _expected(name: str, which: str) -> str:
    fields = {
        "policy": {"key": "agent", "key2": "firewall_rules.outbound_allowed", "line": "2", "key3": "tls",
                   "dupline": "3", "dupkey": "tls"},
        "waivers": {"key": "waivers", "key2": "waivers", "line": "1", "key3": "waivers", "dupline": "6",
                    "dupkey": "waivers"},
    }[which]
    return FAULTS[name][2].format(**fields)


def _run(pytester: pytest.Pytester, which: str, text: str) -> pytest.RunResult:
    pytester.makefile(".yaml", policy="" if which == "waivers" else text, waivers=text if which == "waivers" else "")
    args = ["--secagent-no-suites", "--secagent-policy", "policy.yaml"]
    if which == "waivers":
        args += ["--secagent-waivers", "waivers.yaml"]
    return pytester.runpytest(*args)


@pytest.mark.parametrize("which", ["policy", "waivers"])
@pytest.mark.parametrize("name", sorted(FAULTS))
def test_a_file_that_means_more_than_it_says_is_refused(pytester: pytest.Pytester, which: str, name: str) -> None:
    policy_text, waiver_text, _ = FAULTS[name]
    result = _run(pytester, which, policy_text if which == "policy" else waiver_text)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    filename = f"{which}.yaml" if which == "waivers" else "policy.yaml"
    result.stderr.fnmatch_lines([f"*{filename}:{_expected(name, which)}*"])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize("which", ["policy", "waivers"])
def test_aliases_that_expand_beyond_the_bound_are_refused(pytester: pytest.Pytester, which: str) -> None:
    # Nine levels of ten aliases each: 10**9 values from a file of a few hundred bytes.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    text = "\n".join(lines) + "\n"
    result = _run(pytester, which, text)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        f"*{which}.yaml: more than {MAX_NODES} values once anchors and aliases are expanded; write the values "
        "out, or split the file*"
    ])


@pytest.mark.parametrize(
    ("option", "label", "fix"),
    [
        ("--secagent-policy", "policy file", "give the path of a YAML policy file"),
        ("--secagent-waivers", "waiver file", "give the path of a YAML waiver file"),
        ("--secagent-ssh-config", "ssh configuration", "give the path of an ssh_config file"),
    ],
)
def test_a_directory_given_as_a_file_is_named_as_such(
    pytester: pytest.Pytester, option: str, label: str, fix: str
) -> None:
    pytester.mkdir("conf")
    result = pytester.runpytest("--secagent-no-suites", "--secagent-target", "local://", option, "conf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}: {label} {pytester.path / 'conf'} is a directory, not a file; {fix}*"])


@pytest.mark.parametrize("which", ["policy", "waivers"])
def test_an_oversized_file_is_refused_without_reading_it_whole(pytester: pytest.Pytester, which: str) -> None:
    # A 50 MB file, sparse: the refusal must not depend on reading it.
    name = "policy.yaml" if which == "policy" else "waivers.yaml"
    pytester.makefile(".yaml", policy="")
    with (pytester.path / name).open("wb") as stream:
        stream.write(b"tls: {}\n")
        stream.truncate(50 * 1024 * 1024)
    args = ["--secagent-no-suites", "--secagent-policy", "policy.yaml"]
    if which == "waivers":
        args += ["--secagent-waivers", "waivers.yaml"]
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    label = "policy file" if which == "policy" else "waiver file"
    result.stderr.fnmatch_lines([
        f"*{name}: the {label} is larger than {MAX_CONFIG_BYTES // 1024} KiB; a {label} holds settings, "
        "not data: check that this is the right file*"
    ])
