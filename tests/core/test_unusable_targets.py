"""A target that cannot work at all is one usage error at start, naming what is missing and the fix.

Each case is pinned by its text and must end the run with exit status 4 before any control
runs (not with dozens of identical errors and exit status 1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_secagent.options import WARNING_EMPTY_POLICY
from pytest_secagent.targets.preflight import IN_CLUSTER_TOKEN


def _kubeconfig(path: Path, contexts: list[str], current: str | None) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": "u"}} for n in contexts],
    }
    if current is not None:
        document["current-context"] = current
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _usage_error(result: pytest.RunResult, text: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert result.stderr.str().strip().splitlines()[0] == f"ERROR: {text}"


def test_no_kubeconfig(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = pytester.path / "nowhere" / "config"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    result = pytester.runpytest("--secagent-target", "k8s://prod/atlan-agent")
    _usage_error(
        result,
        f"--secagent-target: target k8s://prod/atlan-agent: no kubeconfig: {missing} does not exist; set "
        "KUBECONFIG to your cluster's kubeconfig, or run inside the cluster with --secagent-target "
        "k8s-incluster://",
    )


def test_unknown_context_lists_the_contexts(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _kubeconfig(pytester.path / "kubeconfig", ["staging", "prod-eu"], "staging")
    monkeypatch.setenv("KUBECONFIG", str(config))
    result = pytester.runpytest("--secagent-target", "k8s://prod")
    _usage_error(
        result,
        f"--secagent-target: target k8s://prod: context 'prod' is not in {config}; contexts: staging, "
        "prod-eu (kubectl config get-contexts lists them)",
    )


def test_no_current_context(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _kubeconfig(pytester.path / "kubeconfig", ["staging"], None)
    monkeypatch.setenv("KUBECONFIG", str(config))
    result = pytester.runpytest("--secagent-target", "k8s://")
    _usage_error(
        result,
        f"--secagent-target: target k8s://: {config} sets no current-context; name one in the target "
        "(k8s://CONTEXT/NAMESPACE); contexts: staging",
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("clusters: [\n", "is not valid YAML: "),
        ("- just\n- a list\n", "is not a kubeconfig (expected a mapping)"),
    ],
)
def test_unreadable_kubeconfig(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, content: str, problem: str
) -> None:
    config = pytester.path / "kubeconfig"
    config.write_text(content, encoding="utf-8")
    monkeypatch.setenv("KUBECONFIG", str(config))
    result = pytester.runpytest("--secagent-target", "k8s://")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --secagent-target: target k8s://: kubeconfig {config} {problem}*"])


def test_a_known_context_is_accepted_at_start(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _kubeconfig(pytester.path / "kubeconfig", ["prod"], None)
    monkeypatch.setenv("KUBECONFIG", str(config))
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest("--secagent-no-suites", "--secagent-target", "k8s://prod/atlan-agent", "test_x.py")
    result.assert_outcomes(passed=1)


def test_in_cluster_outside_a_pod(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = pytester.runpytest("--secagent-target", "k8s-incluster://atlan-agent")
    _usage_error(
        result,
        "--secagent-target: target k8s-incluster://atlan-agent: not running inside a Kubernetes pod (no "
        f"KUBERNETES_SERVICE_HOST or service-account token at {IN_CLUSTER_TOKEN}); from outside the cluster "
        "use --secagent-target k8s://CONTEXT/NAMESPACE",
    )


def test_manifests_that_do_not_exist(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--secagent-target", "manifests://rendered/")
    _usage_error(
        result,
        f"--secagent-target: target manifests://rendered/: {pytester.path / 'rendered/'} does not exist; give a "
        "rendered manifest file or folder (helm template > FILE)",
    )


def test_manifests_without_yaml(pytester: pytest.Pytester) -> None:
    (pytester.path / "rendered").mkdir()
    (pytester.path / "rendered" / "notes.txt").write_text("x", encoding="utf-8")
    result = pytester.runpytest("--secagent-target", "manifests://rendered")
    _usage_error(
        result,
        "--secagent-target: target manifests://rendered: no manifest file (*.yaml, *.yml, *.json) in "
        "'rendered'; render the chart first (helm template)",
    )


def test_a_glob_that_matches_nothing(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--secagent-target", "manifests://out/*.yaml")
    _usage_error(
        result,
        f"--secagent-target: target manifests://out/*.yaml: no file matches 'out/*.yaml'; check the pattern "
        f"(relative to {pytester.path})",
    )


def test_a_target_from_the_policy_file_is_named_by_its_key(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", policy="run:\n  targets: [manifests://gone]\n")
    result = pytester.runpytest("--secagent-policy", "policy.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {pytester.path / 'policy.yaml'}: run.targets: target manifests://gone: *"])


@pytest.mark.parametrize("pattern", ["SA-NOPE-*", "sa-net-007", "SA-NET-0077"])
def test_control_patterns_that_match_nothing(pytester: pytest.Pytester, pattern: str) -> None:
    result = pytester.runpytest("--secagent-target", "local://", "--secagent-controls", pattern)
    _usage_error(
        result,
        f"--secagent-controls: {pattern!r} matches no control of the catalog; control IDs look like "
        "SA-NET-007, patterns like 'SA-RUNTIME-*' (case matters); `secagent controls` or the README lists them",
    )


def test_an_empty_policy_file_warns_that_the_defaults_apply(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", policy="# nothing here yet\n\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest("--secagent-no-suites", "--secagent-policy", "policy.yaml", "test_x.py")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines([f"*{WARNING_EMPTY_POLICY.format(source=pytester.path / 'policy.yaml')}*"])
