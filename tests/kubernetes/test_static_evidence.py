"""Static evidence says it is static: what rendered files cannot show is recorded as unobserved.

A pass that rests on rendered files alone must say which part only a live cluster shows, so
that the control ends as ``partial`` rather than ``passed``; the same check on a live cluster
observes that part and records nothing unobserved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import drift, namespace
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.policy import Policy
from tests.kubernetes.checkviews import deployment, manifest_view
from tests.kubernetes.conftest import ApiServerFactory

NAMESPACE = "atlan-agent"
NAMESPACE_OBJECT: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}


def _live(factory: ApiServerFactory, tmp_path: Path, *objects: dict[str, Any]) -> LiveClusterView:
    scenario = tmp_path / "scenario"
    scenario.mkdir()
    server = factory(scenario, objects=objects)
    return LiveClusterView.from_kubeconfig(str(server.kubeconfig_for("auditor")), timeout=5, target_id="k8s:t")


def _unobserved(evidence: Evidence) -> list[str]:
    return [o.name for o in evidence.unobserved_parts]


def _dedicated(view: KubernetesView) -> Evidence:
    evidence = Evidence()
    try:
        namespace.check_dedicated_namespace(view, Policy(), evidence)
    finally:
        view.close()
    evidence.conclude()
    return evidence


def _architecture(view: KubernetesView) -> Evidence:
    evidence = Evidence()
    try:
        drift.check_declared_architecture(view, Policy(), evidence)
    finally:
        view.close()
    evidence.conclude()
    return evidence


def test_dedicated_namespace_on_rendered_files_is_partial(tmp_path: Path) -> None:
    evidence = _dedicated(manifest_view(tmp_path, deployment()))
    assert _unobserved(evidence) == [f"workloads in {NAMESPACE} from outside these files"]


def test_dedicated_namespace_on_a_live_cluster_is_observed(
    k8s_apiserver_factory: ApiServerFactory, tmp_path: Path
) -> None:
    evidence = _dedicated(_live(k8s_apiserver_factory, tmp_path, NAMESPACE_OBJECT, deployment()))
    assert _unobserved(evidence) == []


def test_a_namespace_the_files_leave_to_the_install_is_unobserved(tmp_path: Path) -> None:
    evidence = _architecture(manifest_view(tmp_path, deployment()))
    assert _unobserved(evidence) == [f"namespace {NAMESPACE} exists"]
    part = evidence.unobserved_parts[0]
    assert "the files define no Namespace atlan-agent" in part.actual


def test_a_namespace_the_files_define_is_not_assumed(tmp_path: Path) -> None:
    evidence = _architecture(manifest_view(tmp_path, NAMESPACE_OBJECT, deployment()))
    assert _unobserved(evidence) == []


def test_the_architecture_on_a_live_cluster_is_observed(
    k8s_apiserver_factory: ApiServerFactory, tmp_path: Path
) -> None:
    evidence = _architecture(_live(k8s_apiserver_factory, tmp_path, NAMESPACE_OBJECT, deployment()))
    assert _unobserved(evidence) == []
