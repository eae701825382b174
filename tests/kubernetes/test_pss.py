"""The Pod Security Standards evaluator agrees with the upstream fixtures on every case."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_secagent.kubernetes.pss import RULES, Level, evaluate, pod_metadata_and_spec
from tests.support import require

FIXTURES = Path(
    os.environ.get(
        "SECAGENT_PSS_FIXTURES",
        Path(__file__).resolve().parents[3] / "shared" / "testdata" / "pod-security-standards",
    )
)


def _fixture_files() -> list[Any]:
    files = sorted(FIXTURES.glob("*/*/*.yaml"))
    if not files:
        return [pytest.param(None, id="fixtures-missing")]
    return [pytest.param(f, id=str(f.relative_to(FIXTURES).with_suffix(""))) for f in files]


def _expected_rules(stem: str, level: Level) -> set[str]:
    """Return the rule a failing fixture is about (its file name) and rules overriding it."""
    base = re.sub(r"\d+$", "", stem)
    rule_ids = {r.id for r in RULES if r.id.lower() == base}
    assert rule_ids, f"no rule matches fixture {stem}"
    if level is Level.RESTRICTED:
        rule_ids |= {r.id for r in RULES if set(r.overrides) & rule_ids}
    return rule_ids


@pytest.mark.parametrize("path", _fixture_files())
def test_upstream_fixture(path: Path | None) -> None:
    require(
        "the upstream Pod Security Standards fixtures",
        path is not None,
        f"put them at {FIXTURES} or point SECAGENT_PSS_FIXTURES at them",
    )
    assert path is not None
    level = Level(path.parent.parent.name)
    expectation = path.parent.name
    result = evaluate(yaml.safe_load(path.read_text()))
    if expectation == "pass":
        assert result.at(level) == ()
        assert result.baseline == ()
    else:
        flagged = {v.rule for v in result.at(level)}
        assert flagged & _expected_rules(path.stem, level), result.at(level)
        assert result.restricted, "a pod that fails baseline fails restricted too"


def test_fixture_count_is_complete() -> None:
    files = list(FIXTURES.glob("*/*/*.yaml"))
    require("the upstream Pod Security Standards fixtures", bool(files), f"put them at {FIXTURES}")
    assert len(files) >= 140


def _pod(**spec: Any) -> dict[str, Any]:
    containers = spec.pop("containers", [{"name": "app", "image": "x"}])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": containers, **spec},
    }


def test_ephemeral_containers_are_checked() -> None:
    pod = _pod(ephemeralContainers=[{"name": "debug", "securityContext": {"privileged": True}}])
    assert [v.rule for v in evaluate(pod).baseline] == ["privileged"]
    assert '"debug"' in evaluate(pod).baseline[0].detail


def test_workloads_are_unwrapped() -> None:
    template: dict[str, Any] = {
        "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}},
        "spec": {"containers": [{"name": "app"}], "hostPID": True},
    }
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": template}}
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {"jobTemplate": {"spec": {"template": template}}},
    }
    for obj in (deployment, cronjob, template["spec"]):
        rules = {v.rule for v in evaluate(obj).baseline}
        assert "hostNamespaces" in rules
    assert {v.rule for v in evaluate(deployment).baseline} == {"hostNamespaces", "appArmorProfile"}


def test_object_without_pod_spec_is_rejected() -> None:
    with pytest.raises(ValueError, match="ConfigMap holds no pod spec"):
        pod_metadata_and_spec({"kind": "ConfigMap", "data": {}})


def test_restricted_reports_overridden_rule_once() -> None:
    pod = _pod(volumes=[{"name": "h", "hostPath": {"path": "/"}}])
    assert [v.rule for v in evaluate(pod).baseline] == ["hostPathVolumes"]
    restricted = {v.rule for v in evaluate(pod).restricted}
    assert "restrictedVolumes" in restricted
    assert "hostPathVolumes" not in restricted


def test_hardened_pod_is_clean_at_both_levels() -> None:
    pod = _pod(
        containers=[
            {
                "name": "app",
                "image": "x",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "readOnlyRootFilesystem": True,
                },
            }
        ],
        securityContext={
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        volumes=[{"name": "tmp", "emptyDir": {}}],
    )
    assert evaluate(pod).violations == ()
    assert evaluate(pod).allowed(Level.RESTRICTED)
