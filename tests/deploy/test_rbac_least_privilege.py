"""The RBAC of ``deploy/`` is exactly what the Kubernetes suites need.

The suites run against the test API server with a token that holds only the grants of
``deploy/rbac.yaml`` (each ClusterRole's rules, cluster-wide through a ClusterRoleBinding or
in one namespace through a RoleBinding, as the API server applies them). With all of them, no
control errors for a missing grant and every request stays inside them; every grant is used.
Without any one of them, some control errors and names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_secagent.model import Outcome
from tests.kubernetes.apiauth import Rule, User
from tests.kubernetes.apiserver import LoggedRequest
from tests.kubernetes.scenario_files import HARDENED, materialize
from tests.kubernetes.test_scenarios import ApiServerFactory, Verdicts, live_runs

RBAC = Path(__file__).resolve().parents[2] / "deploy" / "rbac.yaml"
SUBJECT = ("secagent", "secagent")
"""The ServiceAccount (namespace, name) the checks run as."""
OPTIONAL_KINDS = (
    ("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes"),
    ("gateway.networking.k8s.io", "v1", "GRPCRoute", "grpcroutes"),
    ("gateway.networking.k8s.io", "v1alpha2", "TLSRoute", "tlsroutes"),
    ("gateway.networking.k8s.io", "v1alpha2", "TCPRoute", "tcproutes"),
    ("gateway.networking.k8s.io", "v1alpha2", "UDPRoute", "udproutes"),
    ("gateway.networking.k8s.io", "v1beta1", "ReferenceGrant", "referencegrants"),
    ("route.openshift.io", "v1", "Route", "routes"),
    ("external-secrets.io", "v1beta1", "ExternalSecret", "externalsecrets"),
    ("secrets-store.csi.x-k8s.io", "v1", "SecretProviderClass", "secretproviderclasses"),
    ("argoproj.io", "v1alpha1", "Workflow", "workflows"),
    ("argoproj.io", "v1alpha1", "WorkflowTemplate", "workflowtemplates"),
    ("argoproj.io", "v1alpha1", "CronWorkflow", "cronworkflows"),
    ("argoproj.io", "v1alpha1", "ClusterWorkflowTemplate", "clusterworkflowtemplates"),
    ("networking.istio.io", "v1beta1", "VirtualService", "virtualservices"),
    ("networking.istio.io", "v1beta1", "Gateway", "gateways"),
)
"""Custom resources some controls read when the cluster serves them; served here, so they are read."""


@dataclass(frozen=True)
class Grant:
    """One verb on one resource, cluster-wide (``namespace`` None) or in one namespace."""

    verb: str
    resource: str
    namespace: str | None

    def __str__(self) -> str:
        where = f"in {self.namespace}" if self.namespace else "cluster-wide"
        return f"{self.verb} {self.resource} {where}"

    @property
    def api_name(self) -> str:
        """The name the API's messages use: ``deployments.apps``, ``pods``."""
        group, _, plural = self.resource.rpartition("/")
        return f"{plural}.{group}" if group else plural

    def rule(self) -> Rule:
        """This grant as a rule of the test server."""
        return Rule((self.verb,), (self.resource,), None if self.namespace is None else (self.namespace,))


def _documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(RBAC.read_text(encoding="utf-8")) if d]


def role_grants() -> list[Grant]:
    """Every grant ``deploy/rbac.yaml`` gives the checks' ServiceAccount."""
    documents = _documents()
    roles = {d["metadata"]["name"]: d for d in documents if d["kind"] == "ClusterRole"}
    grants: list[Grant] = []
    for binding in documents:
        if binding["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        subjects = {(s.get("namespace"), s["name"]) for s in binding["subjects"] if s["kind"] == "ServiceAccount"}
        if SUBJECT not in subjects:
            continue
        assert binding["roleRef"]["kind"] == "ClusterRole", binding
        namespace = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        for rule in roles[binding["roleRef"]["name"]]["rules"]:
            assert "resourceNames" not in rule, rule
            assert "nonResourceURLs" not in rule, rule
            grants += [
                Grant(verb, f"{group}/{resource}" if group else resource, namespace)
                for group in rule["apiGroups"]
                for resource in rule["resources"]
                for verb in rule["verbs"]
            ]
    return grants


GRANTS = role_grants()


def _crds() -> Iterator[dict[str, Any]]:
    for group, version, kind, plural in OPTIONAL_KINDS:
        yield {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {
                "group": group,
                "scope": "Cluster" if kind.startswith("Cluster") else "Namespaced",
                "names": {"plural": plural, "kind": kind},
                "versions": [{"name": version, "served": True, "storage": True}],
            },
        }


LIMIT_RANGE = {
    "apiVersion": "v1",
    "kind": "LimitRange",
    "metadata": {"name": "agent-defaults", "namespace": "atlan-agent"},
    "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "512Mi"}}]},
}
"""Default limits, for a container that sets none (so that SA-RUNTIME-010 reads LimitRanges)."""


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    """The hardened scenario with every read path taken.

    Every custom resource a control may read is installed, and the init container takes its
    limits from a LimitRange.
    """
    folder = materialize(tmp_path / "hardened", HARDENED)
    (folder / "crds.yaml").write_text(yaml.safe_dump_all([*_crds(), LIMIT_RANGE]), encoding="utf-8")
    deployment_file = folder / "deployment.yaml"
    deployment = yaml.safe_load(deployment_file.read_text(encoding="utf-8"))
    del deployment["spec"]["template"]["spec"]["initContainers"][0]["resources"]["limits"]
    deployment_file.write_text(yaml.safe_dump(deployment), encoding="utf-8")
    return folder


def _requested(entry: LoggedRequest) -> Grant | None:
    """The grant a logged request needs (None for ``/version`` and discovery)."""
    parts = entry.path.strip("/").split("/")
    if parts[0] == "api" and len(parts) > 2:
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) > 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = None
    if rest[0] == "namespaces" and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    verb = entry.verb or ("create" if entry.method == "POST" else "list")
    return Grant(verb, f"{group}/{rest[0]}" if group else rest[0], namespace)


def _allowed(grant: Grant, grants: list[Grant]) -> bool:
    user = User("checks", tuple(g.rule() for g in grants))
    group, _, plural = grant.resource.rpartition("/")
    return user.allows(grant.verb, group, plural, grant.namespace)


def _run(
    pytester: pytest.Pytester,
    factory: ApiServerFactory,
    cluster: Path,
    monkeypatch: pytest.MonkeyPatch,
    grants: list[Grant],
) -> tuple[Verdicts, list[LoggedRequest]]:
    users = {"checks": tuple(g.rule() for g in grants)}
    runs, servers = live_runs(pytester, factory, {"rbac": cluster}, monkeypatch, user="checks", users=users)
    return runs["rbac"], servers["rbac"].request_log


def _show(verdicts: Verdicts) -> str:
    return "\n".join(f"  {cid}: {verdict}" for cid, verdict in sorted(verdicts.items()))


def test_the_role_grants_only_reads_and_access_reviews() -> None:
    assert GRANTS
    assert {(g.verb, g.resource) for g in GRANTS if g.verb != "list"} == {
        ("create", "authorization.k8s.io/subjectaccessreviews")
    }
    assert not [g for g in GRANTS if g.resource == "secrets" and g.namespace is None], "secrets cluster-wide"


def test_the_role_is_enough_and_every_grant_is_used(
    pytester: pytest.Pytester,
    k8s_apiserver_factory: ApiServerFactory,
    cluster: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verdicts, log = _run(pytester, k8s_apiserver_factory, cluster, monkeypatch, GRANTS)
    forbidden = {cid: str(v) for cid, v in verdicts.items() if "forbidden" in v.detail or "(403)" in v.detail}
    assert forbidden == {}, _show(verdicts)
    assert not [cid for cid, v in verdicts.items() if v.outcome is Outcome.ERROR], _show(verdicts)
    assert [f"{r.method} {r.path}" for r in log if r.status in (401, 403)] == []
    requested = [g for g in (_requested(r) for r in log) if g is not None]
    outside = sorted({str(g) for g in requested if not _allowed(g, GRANTS)})
    assert outside == []
    unused = [str(g) for g in GRANTS if not any(_allowed(r, [g]) for r in requested)]
    assert unused == []


@pytest.mark.parametrize("removed", GRANTS, ids=str)
def test_without_any_one_grant_a_control_errors_naming_it(
    pytester: pytest.Pytester,
    k8s_apiserver_factory: ApiServerFactory,
    cluster: Path,
    monkeypatch: pytest.MonkeyPatch,
    removed: Grant,
) -> None:
    verdicts, _ = _run(
        pytester, k8s_apiserver_factory, cluster, monkeypatch, [g for g in GRANTS if g != removed]
    )
    naming = {
        cid
        for cid, v in verdicts.items()
        if v.outcome is Outcome.ERROR and "(403)" in v.detail and f"'{removed.api_name}'" in v.detail
    }
    assert naming, _show(verdicts)
