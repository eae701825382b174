"""Manifest objects know the file and line they are written on, and workload findings carry it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_secagent.evidence import Evidence, Verdict
from pytest_secagent.kubernetes.checks import workload
from pytest_secagent.kubernetes.manifests import ManifestView, location_of
from pytest_secagent.kubernetes.resources import CONFIG_MAPS, DEPLOYMENTS
from pytest_secagent.policy import Policy

FILE = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: atlan-agent}
data: {mode: x}
---
# the agent
apiVersion: apps/v1
kind: Deployment
metadata: {name: agent, namespace: atlan-agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers:
        - name: agent
          image: public.ecr.aws/atlanhq/agent@sha256:%s
          securityContext: {privileged: true}
""" % ("a" * 64)

LIST = """\
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: one, namespace: atlan-agent}
"""


@pytest.fixture
def rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "agent.yaml").write_text(FILE, encoding="utf-8")
    (tmp_path / "deploy" / "list.yaml").write_text(LIST, encoding="utf-8")
    return tmp_path / "deploy"


def test_objects_know_their_file_and_first_line(rendered: Path) -> None:
    view = ManifestView("deploy", default_namespace="atlan-agent")
    (deployment,) = view.list(DEPLOYMENTS, "atlan-agent")
    assert location_of(deployment) == "deploy/agent.yaml:7"
    names = {c["metadata"]["name"]: location_of(c) for c in view.list(CONFIG_MAPS, "atlan-agent")}
    assert names == {"settings": "deploy/agent.yaml:1", "one": "deploy/list.yaml:1"}


def test_a_privileged_container_is_reported_on_its_deployment(rendered: Path) -> None:
    evidence = Evidence()
    workload.check_privileges(ManifestView("deploy", default_namespace="atlan-agent"), Policy(), evidence)
    failed = [o for o in evidence.observations if o.verdict is Verdict.FAIL]
    assert failed
    assert {o.location for o in failed} == {"deploy/agent.yaml:7"}


def test_live_objects_have_no_location() -> None:
    assert location_of({"kind": "Deployment"}) is None
