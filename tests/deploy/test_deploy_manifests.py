"""The plugin's own deployment (``deploy/``) passes the plugin's own Kubernetes controls.

The Kubernetes suites run on ``manifests://deploy/`` with ``tests/deploy/policy.yaml``, which
declares the checks as the agent of the ``secagent`` namespace. Rendered files cannot show
the CNI or the rest of the namespace, so those controls end ``partial``; every other control
that runs on manifests must pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pytest_secagent.model import Outcome
from tests.kubernetes.test_scenarios import BOTH_VIEWS, LIVE_ONLY, RENDERED_PARTIAL, Verdicts, run_suites

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
POLICY = Path(__file__).parent / "policy.yaml"
NOT_FOR_THE_CHECKS = {
    "SA-SECRET-001": "the checks hold no credential a secret store could serve: their only one is the "
    "service-account token the API server issues to the CronJob's pod",
}
"""Controls about the agent's own credentials, which the plugin does not have."""


@pytest.fixture
def verdicts(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Verdicts:
    """The verdicts of the Kubernetes suites on ``manifests://deploy/``."""
    monkeypatch.setattr("tests.kubernetes.test_scenarios.POLICY", POLICY)
    return run_suites(pytester, {"deploy": f"manifests://{DEPLOY}"})["deploy"]


def _show(verdicts: Verdicts) -> str:
    return "\n".join(f"  {cid}: {verdict}" for cid, verdict in sorted(verdicts.items()))


def test_the_deployment_passes_every_applicable_control(verdicts: Verdicts) -> None:
    assert {cid for cid, v in verdicts.items() if v.outcome is Outcome.NOT_APPLICABLE} == LIVE_ONLY
    expected = {
        cid: Outcome.PARTIAL if cid in RENDERED_PARTIAL else Outcome.PASSED
        for cid in BOTH_VIEWS - NOT_FOR_THE_CHECKS.keys()
    }
    actual = {cid: verdicts[cid].outcome for cid in expected}
    assert actual == expected, _show(verdicts)


def test_the_controls_left_out_fail_only_for_want_of_a_credential_store(verdicts: Verdicts) -> None:
    verdict = verdicts["SA-SECRET-001"]
    assert verdict.outcome is Outcome.FAILED
    assert "observed none" in verdict.detail, verdict


def _documents() -> list[dict[str, object]]:
    found = []
    for path in sorted(DEPLOY.rglob("*.yaml")):
        found += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return found


def test_every_pod_template_is_hardened() -> None:
    """What the restricted Pod Security Standard and the issue ask of the checks' own pods."""
    templates = []
    for document in _documents():
        spec: dict[str, object] = document.get("spec") or {}  # type: ignore[assignment]
        if document.get("kind") == "CronJob":
            spec = spec["jobTemplate"]["spec"]  # type: ignore[index]
        if document.get("kind") in ("CronJob", "Job"):
            templates.append(spec["template"]["spec"])  # type: ignore[index]
    assert templates
    for pod in templates:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])
            assert "@sha256:" in container["image"]


def test_the_kustomization_lists_every_manifest() -> None:
    for folder in (DEPLOY, DEPLOY / "fleet"):
        listed = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))["resources"]
        present = sorted(p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")
        assert sorted(r for r in listed if r.endswith(".yaml")) == present
