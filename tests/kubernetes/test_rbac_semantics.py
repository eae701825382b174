"""Effective RBAC for SA-IAM-001: the reported inputs, the evidence they leave, and static/live agreement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import rbac
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.manifests import ManifestView
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy import load_policy
from tests.kubernetes.checkviews import deployment, failures, manifest_view, policy
from tests.kubernetes.conftest import ApiServerFactory
from tests.kubernetes.scenario_files import HARDENED, POLICY, materialize
from tests.kubernetes.test_rbac_semantics_matrix import ALL, CREATE_PODS, binding, cluster_role

AGENT = {"kind": "ServiceAccount", "name": "agent", "namespace": "atlan-agent"}
IAM = "RBAC bindings of the agent identities: "


def test_a_binding_to_an_aggregated_role_gets_the_selected_rules(tmp_path: Path) -> None:
    """The reported input: the aggregated role selects a role granting everything."""
    objects = [
        cluster_role("agent", aggregate=[{"matchLabels": {"to-agent": "true"}}]),
        cluster_role("everything", ALL, labels={"to-agent": "true"}),
        binding("RoleBinding", "agent", "agent", AGENT),
    ]
    evidence = Evidence()
    rbac.check_rbac(manifest_view(tmp_path, deployment(), *objects), policy(), evidence)
    assert failures(evidence) == [
        IAM + "RoleBinding/agent in atlan-agent (ClusterRole/agent (aggregated)): "
        "wildcard in verbs, resources, apiGroups, by ClusterRole/everything rule 1 "
        '{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}'
    ]
    assert any("aggregates ClusterRole/everything" in o.actual for o in evidence.observations)


def test_create_pods_cluster_wide_fails_naming_binding_and_rule(tmp_path: Path) -> None:
    """The reported input: a ClusterRoleBinding granting the agent ``create pods``."""
    objects = [cluster_role("pod-maker", CREATE_PODS), binding("ClusterRoleBinding", "agent-pods", "pod-maker", AGENT)]
    evidence = Evidence()
    rbac.check_rbac(manifest_view(tmp_path, deployment(), *objects), policy(), evidence)
    assert failures(evidence) == [
        IAM + "ClusterRoleBinding/agent-pods (ClusterRole/pod-maker): create pods cluster-wide, "
        'by ClusterRole/pod-maker rule 1 {"verbs": ["create"], "apiGroups": [""], "resources": ["pods"]}'
    ]


def test_a_role_binding_in_another_namespace_grants_there(tmp_path: Path) -> None:
    objects = [
        cluster_role("maker", [{"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["create"]}]),
        binding("RoleBinding", "elsewhere", "maker", AGENT, namespace="kube-system"),
        binding("RoleBinding", "here", "maker", AGENT),
    ]
    evidence = Evidence()
    rbac.check_rbac(manifest_view(tmp_path, deployment(), *objects), policy(), evidence)
    [failure] = failures(evidence)
    assert "RoleBinding/elsewhere in kube-system (ClusterRole/maker): create daemonsets outside the agent " \
        "namespace (kube-system)" in failure
    assert "RoleBinding/here" not in failure


@pytest.mark.parametrize(
    ("objects", "message"),
    [
        ([cluster_role("r", [{"apiGroups": [""], "resources": ["pods"], "verbs": None}])], "verbs is required"),
        ([cluster_role("r", [{"apiGroups": [""], "resources": ["pods"], "verbs": "create"}])], "not a list"),
        ([cluster_role("r", [{"resources": ["pods"], "verbs": ["get"]}])], "apiGroups is required"),
        ([cluster_role("r", aggregate=[])], "at least one selector is required"),
        ([cluster_role("r", aggregate=[{"matchLabels": {"a": 1}}])], "matchLabels is not a mapping of strings"),
    ],
)
def test_a_role_the_api_rejects_is_an_error_naming_it(
    tmp_path: Path, objects: list[dict[str, Any]], message: str
) -> None:
    view = manifest_view(tmp_path, deployment(), *objects, binding("ClusterRoleBinding", "b", "r", AGENT))
    with pytest.raises(EvidenceUnavailable, match=r"ClusterRoleBinding/b: ClusterRole/r: .*") as caught:
        rbac.check_rbac(view, policy(), Evidence())
    assert message in str(caught.value)


def test_an_aggregation_selecting_nothing_rendered_is_partial(tmp_path: Path) -> None:
    objects = [cluster_role("agent", aggregate=[{"matchLabels": {"nobody": "true"}}]), binding("RoleBinding", "b", "agent", AGENT)]
    evidence = Evidence()
    rbac.check_rbac(manifest_view(tmp_path, deployment(), *objects), policy(), evidence)
    assert failures(evidence) == []
    [part] = evidence.unobserved_parts
    assert "matches no rendered ClusterRole" in part.actual


def _live(factory: ApiServerFactory, tmp_path: Path, objects: list[dict[str, Any]]) -> LiveClusterView:
    server = factory(materialize(tmp_path / "s", HARDENED), objects=objects)
    return LiveClusterView.from_kubeconfig(str(server.kubeconfig_for("auditor")), timeout=5, target_id="k8s:t")


SA = {"kind": "ServiceAccount", "name": "atlan-agent", "namespace": "atlan-agent"}


@pytest.mark.parametrize(
    ("rules", "kind", "namespace", "review"),
    [
        (CREATE_PODS, "ClusterRoleBinding", None, "create pods in namespace kube-system"),
        ([{"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["create"]}], "RoleBinding", "team",
         "create cronjobs.batch in namespace team"),
        ([{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}], "ClusterRoleBinding", None,
         "create pods/exec in namespace kube-system"),
        ([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["escalate"]}],
         "ClusterRoleBinding", None, "escalate clusterroles.rbac.authorization.k8s.io cluster-wide"),
        ([{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}], "ClusterRoleBinding", None,
         "impersonate users cluster-wide"),
        ([{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}], "ClusterRoleBinding", None,
         "get nodes/proxy cluster-wide"),
        ([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["watch"]}], "ClusterRoleBinding", None,
         "watch secrets cluster-wide"),
    ],
)
def test_static_part_and_access_review_agree(
    k8s_apiserver_factory: ApiServerFactory,
    tmp_path: Path,
    rules: list[Any],
    kind: str,
    namespace: str | None,
    review: str,
) -> None:
    """What the live access review allows, the static part fails too (same objects, both views)."""
    objects = [cluster_role("extra", rules), binding(kind, "extra", "extra", SA, namespace=namespace)]
    scenario_policy = load_policy(POLICY).policy
    view = _live(k8s_apiserver_factory, tmp_path, objects)
    try:
        evidence = Evidence()
        rbac.check_rbac(view, scenario_policy, evidence)
    finally:
        view.close()
    failed = failures(evidence)
    assert failed[0].startswith(IAM + f"{'ClusterRoleBinding/extra' if namespace is None else 'RoleBinding/extra'}")
    assert f"access review: ServiceAccount atlan-agent/atlan-agent {review}: allowed" in failed[1:]
    rendered = materialize(tmp_path / "m", HARDENED)
    (rendered / "extra.yaml").write_text(yaml.safe_dump_all(objects), encoding="utf-8")
    static = Evidence()
    rbac.check_rbac(ManifestView(str(rendered), default_namespace="atlan-agent"), scenario_policy, static)
    [rendered_failure] = failures(static)
    assert rendered_failure == failed[0]
