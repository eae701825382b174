"""SA-ASSESS-003: the declared architecture against rendered manifests and a live test API server."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import drift
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.network.reachability import Destination
from pytest_secagent.policy import Policy
from pytest_secagent.policy.model import AssessmentSection, CredentialReview, SecretStoreType
from tests.kubernetes.checkviews import container, deployment, failures, manifest_view
from tests.kubernetes.conftest import ApiServerFactory

NAMESPACE = "atlan-agent"
AGENT_ENV: list[dict[str, Any]] = [
    {"name": "ATLAN_BASE_URL", "value": "https://acme.atlan.com/api/service"},
    {"name": "DAPR_HTTP_ENDPOINT", "value": "http://localhost:3500"},
    {"name": "ATLAN_TOKEN", "valueFrom": {"secretKeyRef": {"name": "atlan", "key": "token"}}},
]
NAMESPACE_SECTION = "namespace atlan-agent"
WORKLOADS = "agent workloads (namespace atlan-agent)"
STORE = "declared secret store (assessment.credential_review.secret_store)"
ENDPOINTS = "endpoints referenced in env and Dapr metadata outside firewall_rules.outbound_allowed"


def component(name: str, kind: str, **metadata: str) -> dict[str, Any]:
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "type": kind,
            "version": "v1",
            "metadata": [{"name": key, "value": value} for key, value in metadata.items()],
        },
    }


VAULT = component("agent-secrets", "secretstores.hashicorp.vault", vaultAddr="https://vault.vault.svc:8200")


def agent(env: list[dict[str, Any]] | None = None, namespace: str = NAMESPACE) -> dict[str, Any]:
    workload = deployment("agent", containers=[container(env=AGENT_ENV if env is None else env)])
    workload["metadata"]["namespace"] = namespace
    return workload


def declaring(store: SecretStoreType | None) -> Policy:
    review = CredentialReview(secret_store=store)
    return dataclasses.replace(Policy(), assessment=AssessmentSection(credential_review=review))


def run(view: KubernetesView, policy: Policy) -> Evidence:
    evidence = Evidence()
    try:
        drift.check_declared_architecture(view, policy, evidence)
    finally:
        view.close()
    return evidence


def actual(evidence: Evidence, name: str) -> str:
    return next(str(o.actual) for o in evidence.observations if o.name == name)


def live(
    factory: ApiServerFactory, tmp_path: Path, *objects: dict[str, Any], dapr: bool = True
) -> LiveClusterView:
    scenario = tmp_path / "scenario"
    scenario.mkdir()
    if not dapr:
        (scenario / "apiserver.cfg").write_text(
            "[apiserver]\nunserved = dapr.io/components\n", encoding="utf-8"
        )
    server = factory(scenario, objects=objects)
    return LiveClusterView.from_kubeconfig(
        str(server.kubeconfig_for("auditor")), timeout=5, target_id="k8s:test"
    )


# -- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://acme.atlan.com/api", [Destination("acme.atlan.com", 443)]),
        ("http://minio:9000", [Destination("minio", 9000)]),
        ("HTTPS://S3.Amazonaws.com.", [Destination("s3.amazonaws.com", 443)]),
        ("https://agent:hunter2@db.example.com:5432/x?a=b", [Destination("db.example.com", 5432)]),
        ("https://[2001:db8::1]:8443/", [Destination("2001:db8::1", 8443)]),
        (
            "a=https://a.example.com,b=https://b.example.com:8443",
            [
                Destination("a.example.com", 443),
                Destination("b.example.com", 8443),
            ],
        ),
        ("https://bad.example.com:99999/", [None]),
        ("s3.amazonaws.com:443 /var/run/token grpc://x:1", []),
    ],
)
def test_url_destinations(text: str, expected: list[Destination | None]) -> None:
    assert list(drift.url_destinations(text)) == expected


# -- rendered manifests -------------------------------------------------------------------------


def test_matching_manifests_pass(tmp_path: Path) -> None:
    evidence = run(manifest_view(tmp_path, agent(), VAULT), declaring("hashicorp-vault"))
    evidence.conclude()
    assert actual(evidence, NAMESPACE_SECTION) == "1 workloads placed there"
    assert actual(evidence, WORKLOADS) == "Deployment/agent in namespace atlan-agent"
    assert actual(evidence, STORE) == "secretstores.hashicorp.vault (Component/agent-secrets)"
    assert "allowed: acme.atlan.com:443" in actual(evidence, ENDPOINTS)
    assert actual(evidence, "endpoints that are not egress") == (
        "localhost:3500 (loopback), vault.vault.svc:8200 (in-cluster Service)"
    )


def test_workloads_in_another_namespace_fail(tmp_path: Path) -> None:
    evidence = run(manifest_view(tmp_path, agent(namespace="tools"), VAULT), declaring(None))
    assert failures(evidence) == [
        f"{NAMESPACE_SECTION}: no workload placed there (namespaces used: tools)",
        f"{WORKLOADS}: none (workloads in the files are in: tools)",
    ]


def test_declared_store_without_its_component_fails(tmp_path: Path) -> None:
    evidence = run(manifest_view(tmp_path, agent(), VAULT), declaring("aws-secrets-manager"))
    assert failures(evidence) == [f"{STORE}: secretstores.hashicorp.vault (Component/agent-secrets)"]
    expected = next(o.expected for o in evidence.observations if o.name == STORE)
    assert (
        expected == "a Dapr Component of type secretstores.aws.secretmanager (declared aws-secrets-manager)"
    )


def test_declared_store_without_any_component_fails(tmp_path: Path) -> None:
    evidence = run(manifest_view(tmp_path, agent()), declaring("env"))
    assert failures(evidence) == [f"{STORE}: none: no Dapr secret-store Component in namespace {NAMESPACE}"]


def test_undeclared_store_is_recorded_only(tmp_path: Path) -> None:
    evidence = run(manifest_view(tmp_path, agent()), declaring(None))
    evidence.conclude()
    name = "Dapr secret stores (assessment.credential_review.secret_store not declared)"
    assert actual(evidence, name) == f"none: no Dapr secret-store Component in namespace {NAMESPACE}"


def test_endpoints_outside_the_allow_list_fail(tmp_path: Path) -> None:
    env: list[dict[str, Any]] = [
        *AGENT_ENV,
        {"name": "S3_ENDPOINT", "value": "https://s3.eu-west-1.amazonaws.com"},
        {"name": "ATLAN_GRPC", "value": "https://acme-temporal.atlan.com:7233"},
    ]
    store = component(
        "object-store", "bindings.aws.s3", endpoint="https://agent:hunter2@minio.example.com:9000/bucket"
    )
    evidence = run(manifest_view(tmp_path, agent(env), store), declaring(None))
    assert failures(evidence) == [
        f"{ENDPOINTS}: s3.eu-west-1.amazonaws.com:443 (Deployment/agent container app env S3_ENDPOINT); "
        "acme-temporal.atlan.com:7233 (Deployment/agent container app env ATLAN_GRPC); "
        "minio.example.com:9000 (Dapr Component/object-store metadata endpoint)"
    ]
    assert "hunter2" not in evidence.summary()


def test_declared_egress_allows_the_endpoint(tmp_path: Path) -> None:
    env: list[dict[str, Any]] = [
        *AGENT_ENV,
        {"name": "S3_ENDPOINT", "value": "https://s3.eu-west-1.amazonaws.com"},
    ]
    policy = dataclasses.replace(
        declaring(None),
        firewall_rules=dataclasses.replace(
            Policy().firewall_rules,
            outbound_allowed=[
                *Policy().firewall_rules.outbound_allowed,
                dataclasses.replace(
                    Policy().firewall_rules.outbound_allowed[0], destination="*.amazonaws.com"
                ),
            ],
        ),
    )
    evidence = run(manifest_view(tmp_path, agent(env)), policy)
    evidence.conclude()
    assert "s3.eu-west-1.amazonaws.com:443" in actual(evidence, ENDPOINTS)


def test_unparsable_url_fails(tmp_path: Path) -> None:
    env = [{"name": "PROXY", "value": "https://proxy.example.com:70000/"}]
    evidence = run(manifest_view(tmp_path, agent(env)), declaring(None))
    assert failures(evidence) == [
        f"{ENDPOINTS}: Deployment/agent container app env PROXY: a URL whose host or port does not parse"
    ]


# -- live cluster -------------------------------------------------------------------------------


def test_matching_live_cluster_passes(k8s_apiserver_factory: ApiServerFactory, tmp_path: Path) -> None:
    view = live(k8s_apiserver_factory, tmp_path, agent(), VAULT)
    evidence = run(view, declaring("hashicorp-vault"))
    evidence.conclude()
    assert actual(evidence, NAMESPACE_SECTION) == "exists"
    assert actual(evidence, WORKLOADS) == "Deployment/agent in namespace atlan-agent"


def test_missing_live_namespace_fails(k8s_apiserver_factory: ApiServerFactory, tmp_path: Path) -> None:
    view = live(k8s_apiserver_factory, tmp_path, agent(namespace="tools"))
    evidence = run(view, declaring(None))
    assert failures(evidence) == [f"{NAMESPACE_SECTION}: not found on the cluster", f"{WORKLOADS}: none"]


def test_dapr_not_served_with_a_declared_store_fails(
    k8s_apiserver_factory: ApiServerFactory, tmp_path: Path
) -> None:
    view = live(k8s_apiserver_factory, tmp_path, agent(), dapr=False)
    evidence = run(view, declaring("hashicorp-vault"))
    assert failures(evidence) == [
        f"{STORE}: none: the cluster does not serve Dapr components (dapr.io/v1alpha1)"
    ]


def test_live_endpoint_outside_the_allow_list_fails(
    k8s_apiserver_factory: ApiServerFactory, tmp_path: Path
) -> None:
    store = component("vault", "secretstores.hashicorp.vault", vaultAddr="https://vault.corp.example:8200")
    view = live(k8s_apiserver_factory, tmp_path, agent(), store)
    evidence = run(view, declaring("hashicorp-vault"))
    assert failures(evidence) == [
        f"{ENDPOINTS}: vault.corp.example:8200 (Dapr Component/vault metadata vaultAddr)"
    ]
