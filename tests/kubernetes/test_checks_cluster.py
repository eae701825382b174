"""Cluster checks: versions, namespace, RBAC, control-plane flags, node agents and scan reports.

Live-only behaviour is driven through the test API server and the real live view.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import control_plane, namespace, node_agents, rbac, vulnerabilities
from pytest_secagent.kubernetes.checks.images import parse_image
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy import load_policy
from pytest_secagent.policy.model import EdrSection, Policy
from tests.kubernetes.checkviews import SKIPPED, deployment, failures, manifest_view, policy
from tests.kubernetes.conftest import ApiServerFactory
from tests.kubernetes.scenario_files import DEFAULT_HELM, HARDENED, POLICY, materialize

OpenLive = Callable[..., LiveClusterView]


@pytest.fixture
def open_live(k8s_apiserver_factory: ApiServerFactory) -> Iterator[OpenLive]:
    """Serve a scenario (or objects) and open a live view on it; views are closed afterwards."""
    views: list[LiveClusterView] = []

    def opener(scenario: Path | None = None, **kwargs: Any) -> LiveClusterView:
        server = k8s_apiserver_factory(scenario, **kwargs)
        view = LiveClusterView.from_kubeconfig(
            str(server.kubeconfig_for("auditor")), timeout=5, target_id="k8s:t"
        )
        views.append(view)
        return view

    yield opener
    for view in views:
        view.close()


@pytest.fixture
def scenario_policy() -> Policy:
    return load_policy(POLICY).policy


@pytest.fixture
def hardened(tmp_path: Path) -> Path:
    return materialize(tmp_path / "hardened", HARDENED)


# -- SA-RUNTIME-001 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "version"),
    [("v1.28.3-eks-4f4795d", (1, 28)), ("1.24", (1, 24)), ("v1.30.4+k3s1", (1, 30)), ("unknown", None)],
)
def test_parse_minor_version(text: str, version: tuple[int, int] | None) -> None:
    assert control_plane.parse_minor_version(text) == version


def test_managed_version_strings_are_understood(
    open_live: OpenLive, hardened: Path, scenario_policy: Policy
) -> None:
    view = open_live(hardened, version="v1.29.4-eks-036c24b")
    assert view.server_version()["minor"] == "29+"
    evidence = Evidence()
    control_plane.check_cluster_versions(view, scenario_policy, evidence)
    assert failures(evidence) == []
    assert [o.name for o in evidence.observations if o.name.startswith("node ")][:2] == [
        "node agent-1 kubelet version",
        "node agent-1 runtime",
    ]


def test_old_cluster_fails_on_control_plane_and_every_node(
    open_live: OpenLive, hardened: Path, scenario_policy: Policy
) -> None:
    evidence = Evidence()
    control_plane.check_cluster_versions(open_live(hardened, version="v1.23.17"), scenario_policy, evidence)
    assert failures(evidence) == [
        "control plane version: v1.23.17",
        "node agent-1 kubelet version: v1.23.17",
        "node agent-2 kubelet version: v1.23.17",
        "node system-1 kubelet version: v1.23.17",
    ]


def test_versions_are_not_applicable_to_manifests(tmp_path: Path) -> None:
    with pytest.raises(SKIPPED, match="not applicable: rendered manifests carry no cluster version"):
        control_plane.check_cluster_versions(manifest_view(tmp_path, deployment()), policy(), Evidence())


# -- SA-SECRET-005 / SA-LOG-001 -------------------------------------------------------------------


def test_apiserver_flags_both_forms() -> None:
    pod = {
        "spec": {
            "containers": [{"command": ["kube-apiserver", "--a=1", "--b", "2", "--c"], "args": ["--d=x=y"]}]
        }
    }
    assert control_plane.apiserver_flags(pod) == {"a": "1", "b": "2", "c": "", "d": "x=y"}


def test_hidden_control_plane_is_not_observable_never_a_pass(open_live: OpenLive, tmp_path: Path) -> None:
    view = open_live(materialize(tmp_path / "helm", DEFAULT_HELM))
    for check in (control_plane.check_secrets_encryption, control_plane.check_api_audit_logging):
        evidence = Evidence()
        with pytest.raises(SKIPPED, match="not observable: no kube-apiserver pod in kube-system"):
            check(view, policy(), evidence)
        assert evidence.observations == ()


def test_audit_flags_against_policy(open_live: OpenLive, hardened: Path, scenario_policy: Policy) -> None:
    view = open_live(hardened)
    strict = dataclasses.replace(
        scenario_policy, logging=dataclasses.replace(scenario_policy.logging, k8s_audit_maxage=90)
    )
    evidence = Evidence()
    control_plane.check_api_audit_logging(view, strict, evidence)
    assert failures(evidence) == ["kube-apiserver-system-1 --audit-log-maxage: 30"]


# -- SA-RUNTIME-005 / SA-SEG-001 ---------------------------------------------------------------------


def test_psa_label_missing_on_live_namespace(open_live: OpenLive, tmp_path: Path) -> None:
    evidence = Evidence()
    namespace.check_pod_security_admission(
        open_live(materialize(tmp_path / "h", DEFAULT_HELM)), policy(), evidence
    )
    assert failures(evidence) == ["namespace atlan-agent label pod-security.kubernetes.io/enforce: unset"]


def test_psa_without_rendered_namespace_is_not_applicable(tmp_path: Path) -> None:
    with pytest.raises(
        SKIPPED, match="not applicable: the manifests do not define the Namespace atlan-agent"
    ):
        namespace.check_pod_security_admission(manifest_view(tmp_path, deployment()), policy(), Evidence())


def test_shared_namespace_and_strangers(tmp_path: Path) -> None:
    view = manifest_view(
        tmp_path, deployment(labels={"app": "agent"}), deployment("db", labels={"app": "db"})
    )
    evidence = Evidence()
    namespace.check_dedicated_namespace(view, policy(selector={"app": "agent"}), evidence)
    assert failures(evidence) == [
        "workloads in atlan-agent that are not the agent's (namespace atlan-agent, selector app=agent): "
        "Deployment/db in namespace atlan-agent"
    ]
    evidence = Evidence()
    with pytest.raises(EvidenceUnavailable, match="no pods found in namespace default"):
        namespace.check_dedicated_namespace(view, policy(namespace="default"), evidence)
    assert failures(evidence) == ["agent namespace: default"]


# -- SA-IAM-001 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "cluster_wide", "failure", "warning"),
    [
        ({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}, False, [], []),
        ({"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}, False, ["wildcard in apiGroups"], []),
        (
            {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]},
            False,
            ["verbs impersonate"],
            [],
        ),
        ({"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}, True, ["nodes/proxy"], []),
        (
            {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
            False,
            ["create serviceaccounts/token"],
            [],
        ),
        (
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]},
            True,
            ["list secrets cluster-wide"],
            [],
        ),
        (
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
            False,
            [],
            ["get every Secret of the namespace"],
        ),
        (
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"], "verbs": ["get"]},
            False,
            [],
            [],
        ),
        ({"nonResourceURLs": ["*"], "verbs": ["get"]}, True, ["wildcard in nonResourceURLs"], []),
    ],
)
def test_rbac_rules(rule: dict[str, Any], cluster_wide: bool, failure: list[str], warning: list[str]) -> None:
    assert rbac.rule_problems(rule, cluster_wide) == (failure, warning)


def _binding(kind: str, name: str, role_kind: str, role: str, *subjects: dict[str, str]) -> dict[str, Any]:
    metadata: dict[str, str] = {"name": name}
    if kind == "RoleBinding":
        metadata["namespace"] = "atlan-agent"
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": list(subjects),
    }


AGENT_SA = {"kind": "ServiceAccount", "name": "agent", "namespace": "atlan-agent"}


def test_admin_binding_through_a_group_counts(tmp_path: Path) -> None:
    binding = _binding(
        "ClusterRoleBinding",
        "everyone-edits",
        "ClusterRole",
        "edit",
        {"kind": "Group", "name": "system:serviceaccounts:atlan-agent"},
    )
    other = _binding(
        "ClusterRoleBinding", "someone-else", "ClusterRole", "cluster-admin", {"kind": "User", "name": "bob"}
    )
    evidence = Evidence()
    rbac.check_rbac(manifest_view(tmp_path, deployment(), binding, other), policy(), evidence)
    assert failures(evidence) == [
        "RBAC bindings of the agent identities: ClusterRoleBinding/everyone-edits grants ClusterRole/edit"
    ]


def test_binding_that_names_the_service_account_as_a_user_counts(tmp_path: Path) -> None:
    """The API server authorizes a service account under its user name too."""
    binding = _binding(
        "ClusterRoleBinding",
        "agent-as-user",
        "ClusterRole",
        "cluster-admin",
        {"kind": "User", "name": "system:serviceaccount:atlan-agent:agent"},
    )
    evidence = Evidence()
    rbac.check_rbac(manifest_view(tmp_path, deployment(), binding), policy(), evidence)
    assert failures(evidence) == [
        "RBAC bindings of the agent identities: "
        "ClusterRoleBinding/agent-as-user grants ClusterRole/cluster-admin"
    ]


def test_unrendered_role_is_an_unobserved_part_in_manifests(tmp_path: Path) -> None:
    """A role the manifests do not render is never read as granting nothing."""
    binding = _binding("RoleBinding", "viewer", "ClusterRole", "agent-reader", AGENT_SA)
    evidence = Evidence()
    rbac.check_rbac(manifest_view(tmp_path, deployment(), binding), policy(), evidence)
    assert failures(evidence) == []
    assert [(o.name, o.actual) for o in evidence.unobserved_parts] == [
        (
            "RoleBinding/viewer in atlan-agent: ClusterRole/agent-reader",
            "not rendered; what it grants can only be seen on the live cluster (k8s://)",
        )
    ]


def test_unrendered_builtin_role_is_judged_with_its_default_rules(tmp_path: Path) -> None:
    """A built-in role is judged with its default rules; aggregated ones stay partly unobserved."""
    binding = _binding("RoleBinding", "view", "ClusterRole", "view", AGENT_SA)
    evidence = Evidence()
    rbac.check_rbac(manifest_view(tmp_path, deployment(), binding), policy(), evidence)
    assert failures(evidence) == []
    assert [o.name for o in evidence.unobserved_parts] == [
        "RoleBinding/view in atlan-agent: ClusterRole/view (aggregated)"
    ]


def test_declared_service_accounts_are_the_subjects(tmp_path: Path) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "installer"},
        "rules": [
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"]}
        ],
    }
    binding = _binding(
        "ClusterRoleBinding",
        "installer",
        "ClusterRole",
        "installer",
        {"kind": "ServiceAccount", "name": "installer", "namespace": "tools"},
    )
    view = manifest_view(tmp_path, deployment(), role, binding)
    evidence = Evidence()
    rbac.check_rbac(view, policy(service_accounts=["tools/installer", "agent"]), evidence)
    assert failures(evidence) == [
        "RBAC bindings of the agent identities: "
        "ClusterRoleBinding/installer (ClusterRole/installer): verbs bind, by ClusterRole/installer rule 1 "
        '{"verbs": ["bind"], "apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"]}'
    ]


def test_live_access_reviews_catch_what_the_api_allows(
    open_live: OpenLive, hardened: Path, scenario_policy: Policy
) -> None:
    reader = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "secret-reader"},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}],
    }
    everyone = _binding(
        "ClusterRoleBinding",
        "everyone-reads-secrets",
        "ClusterRole",
        "secret-reader",
        {"kind": "Group", "name": "system:authenticated"},
    )
    evidence = Evidence()
    rbac.check_rbac(open_live(hardened, objects=[reader, everyone]), scenario_policy, evidence)
    failed = failures(evidence)
    assert failed[0].startswith(
        "RBAC bindings of the agent identities: ClusterRoleBinding/everyone-reads-secrets"
    )
    assert failed[1:] == [
        "access review: ServiceAccount atlan-agent/atlan-agent get secrets cluster-wide: allowed",
        "access review: ServiceAccount atlan-agent/atlan-agent list secrets cluster-wide: allowed",
        "access review: ServiceAccount atlan-agent/atlan-agent watch secrets cluster-wide: allowed",
        "access review: system:authenticated get secrets cluster-wide: allowed",
        "access review: system:authenticated list secrets cluster-wide: allowed",
        "access review: system:authenticated watch secrets cluster-wide: allowed",
    ]


def test_live_access_reviews_pass_on_the_hardened_agent(
    open_live: OpenLive, hardened: Path, scenario_policy: Policy
) -> None:
    evidence = Evidence()
    rbac.check_rbac(open_live(hardened), scenario_policy, evidence)
    assert failures(evidence) == []
    reviews = [o for o in evidence.observations if o.name.startswith("access review")]
    assert len(reviews) == len(rbac.CLUSTER_REVIEWS) + len(rbac.namespace_reviews()) + 3


def test_denial_with_an_evaluation_error_is_no_evidence(
    open_live: OpenLive, hardened: Path, scenario_policy: Policy
) -> None:
    """A binding of the agent to a role that does not exist makes the API's denials uncertain."""
    dangling = _binding(
        "ClusterRoleBinding",
        "agent-dangling",
        "ClusterRole",
        "removed-role",
        {"kind": "ServiceAccount", "name": "atlan-agent", "namespace": "atlan-agent"},
    )
    with pytest.raises(EvidenceUnavailable, match=r"denied with an evaluation error.*removed-role"):
        rbac.check_rbac(open_live(hardened, objects=[dangling]), scenario_policy, Evidence())


# -- SA-LOG-002 / SA-EDR-001 -----------------------------------------------------------------------


def test_declared_edr_missing_fails(open_live: OpenLive, hardened: Path, scenario_policy: Policy) -> None:
    wanted = dataclasses.replace(scenario_policy, edr=EdrSection(daemonsets=["security/sentinelone"]))
    evidence = Evidence()
    node_agents.check_edr_coverage(open_live(hardened), wanted, evidence)
    assert failures(evidence) == ["EDR DaemonSets (declared: security/sentinelone): none"]


def test_edr_recognised_by_name_and_not_ready_on_an_agent_node(
    open_live: OpenLive, hardened: Path, scenario_policy: Policy
) -> None:
    guess = dataclasses.replace(scenario_policy, edr=EdrSection(daemonsets=[]))
    evidence = Evidence()
    node_agents.check_edr_coverage(open_live(hardened), guess, evidence)
    assert failures(evidence) == []
    assert "falcon-system/falcon-node-sensor" in evidence.observations[-1].actual

    (hardened / "cluster-edr.yaml").write_text(
        (hardened / "cluster-edr.yaml")
        .read_text()
        .replace("spec:\n  selector:", "status:\n  numberReady: 1\nspec:\n  selector:"),
        encoding="utf-8",
    )
    evidence = Evidence()
    node_agents.check_edr_coverage(open_live(hardened), scenario_policy, evidence)
    assert failures(evidence) == [
        "DaemonSet falcon-system/falcon-node-sensor: 1/3 ready; no ready pod on agent-2"
    ]


def test_log_retention_declared_below_minimum(
    open_live: OpenLive, hardened: Path, scenario_policy: Policy
) -> None:
    short = dataclasses.replace(
        scenario_policy, logging=dataclasses.replace(scenario_policy.logging, retention_days=30)
    )
    evidence = Evidence()
    node_agents.check_log_collection(open_live(hardened), short, evidence)
    assert failures(evidence) == ["logging.retention_days: 30 days"]


# -- SA-VULN-001 / SA-VULN-002 ----------------------------------------------------------------------


def test_without_the_scanner_operator_it_is_not_applicable_with_the_reason(
    open_live: OpenLive, tmp_path: Path
) -> None:
    view = open_live(materialize(tmp_path / "h", DEFAULT_HELM))
    with pytest.raises(
        SKIPPED, match="Trivy operator is not installed: the cluster does not serve vulnerabilityreports"
    ):
        vulnerabilities.check_image_vulnerabilities(view, policy(), Evidence())


def _report(repository: str, tag: str, digest: str, *vulns: dict[str, str], **summary: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "r"},
        "report": {
            "registry": {"server": "index.docker.io"},
            "artifact": {"repository": repository, "tag": tag, "digest": digest},
            "summary": summary,
            **({"vulnerabilities": list(vulns)} if vulns or not summary else {}),
        },
    }


def test_report_matching_by_digest_then_tag() -> None:
    report = _report("atlanhq/agent", "2.0", "sha256:aa")
    assert vulnerabilities.report_matches(report, parse_image("atlanhq/agent@sha256:aa"))
    assert not vulnerabilities.report_matches(report, parse_image("atlanhq/agent@sha256:bb"))
    assert vulnerabilities.report_matches(report, parse_image("docker.io/atlanhq/agent:2.0"))
    assert not vulnerabilities.report_matches(report, parse_image("atlanhq/other:2.0"))


def test_only_fixable_critical_and_high_count() -> None:
    report = _report(
        "a",
        "1",
        "d",
        {"severity": "CRITICAL", "fixedVersion": "1.2"},
        {"severity": "HIGH", "fixedVersion": ""},
        {"severity": "MEDIUM", "fixedVersion": "2"},
    )
    assert vulnerabilities.fixable_findings(report) == (1, "fixable")
    assert vulnerabilities.fixable_findings(_report("a", "1", "d", criticalCount=2, highCount=1)) == (
        3,
        "from the summary (fixability unknown)",
    )


def test_report_without_findings_or_counts_is_no_evidence() -> None:
    """A report whose body lost both the findings and the summary never counts as zero."""
    empty = _report("a", "1", "d", criticalCount=0)
    del empty["report"]["summary"]
    for report in (empty, _report("a", "1", "d", mediumCount=4)):
        with pytest.raises(EvidenceUnavailable, match="findings are unknown"):
            vulnerabilities.fixable_findings(report)


def test_scan_freshness_and_the_declared_host_scan(
    open_live: OpenLive, hardened: Path, scenario_policy: Policy
) -> None:
    view = open_live(hardened)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=10)
    declared = dataclasses.replace(
        scenario_policy,
        vulnerability=dataclasses.replace(
            scenario_policy.vulnerability, last_host_scan=later.date() - dt.timedelta(days=3)
        ),
    )
    evidence = Evidence()
    vulnerabilities.check_scan_freshness(view, declared, evidence, now=later)
    assert [f.split("@")[0] for f in failures(evidence)] == [
        "image public.ecr.aws/atlanhq/redshift-app",
        "image public.ecr.aws/atlanhq/sdr-init",
    ]
    assert all("days ago" in f for f in failures(evidence))


def test_every_declared_daemonset_must_exist(
    open_live: OpenLive, hardened: Path, scenario_policy: Policy
) -> None:
    both = ["falcon-system/falcon-node-sensor", "security/sentinelone"]
    evidence = Evidence()
    node_agents.check_edr_coverage(
        open_live(hardened), dataclasses.replace(scenario_policy, edr=EdrSection(daemonsets=both)), evidence
    )
    assert failures(evidence) == [
        "EDR DaemonSets (declared: falcon-system/falcon-node-sensor, security/sentinelone): "
        "falcon-system/falcon-node-sensor; not found: security/sentinelone"
    ]
