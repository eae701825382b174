"""SA-SECRET-002 and SA-IAM-005 on real views: recall, references, and namespaces without pods.

Every case runs twice, on the live view (a test API server holding the objects) and on the
rendered manifests of the same objects, and must give the same verdict.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import identity, secrets
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.outcomes import EvidenceUnavailable
from tests.kubernetes.apiauth import Rule
from tests.kubernetes.checkviews import NAMESPACE, container, deployment, failures, manifest_view, policy
from tests.kubernetes.conftest import ApiServerFactory

AZURE_KEY = base64.b64encode(bytes(range(33, 97))).decode()
AWS_ID = "AKIA" + "QX7RM2VB9TL4KD8N"
BEARER = "Zq3aB9xY7Lm2Kp4Qr8Tn1Wv6"
NO_PODS = "no agent pods found (namespace atlan-agent"
Check = Callable[[KubernetesView, Any, Evidence], None]


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": data,
    }


def component(name: str, kind: str, *metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"type": kind, "version": "v1", "metadata": list(metadata)},
        "scopes": ["agent"],
    }


def with_env(*env: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return deployment(containers=[container(env=list(env), **fields)])


@pytest.fixture(params=["live", "manifests"])
def open_view(
    request: pytest.FixtureRequest, k8s_apiserver_factory: ApiServerFactory, tmp_path: Path
) -> Iterator[Callable[..., KubernetesView]]:
    """Open a view over objects: on a test API server (live) or as rendered manifests."""
    opened: list[KubernetesView] = []

    def open_(*objects: dict[str, Any]) -> KubernetesView:
        view: KubernetesView
        if request.param == "live":
            server = k8s_apiserver_factory(None, objects=objects)
            view = LiveClusterView.from_kubeconfig(
                str(server.kubeconfig_for("auditor")), timeout=5, target_id="k8s:test"
            )
        else:
            view = manifest_view(tmp_path / f"m{len(opened)}", *objects)
        opened.append(view)
        return view

    yield open_
    for view in opened:
        view.close()


def run(check: Check, view: KubernetesView) -> Evidence:
    evidence = Evidence()
    check(view, policy(), evidence)
    return evidence


def unobserved(evidence: Evidence) -> list[str]:
    return [f"{o.name}: {o.actual}" for o in evidence.unobserved_parts]


# --- recall on the agent's workloads -------------------------------------------------------

WORKLOAD_FINDINGS = [
    (
        {"name": "DB_PASSWORD", "value": "s3cr3"},
        "env DB_PASSWORD (literal value of secret-named DB_PASSWORD)",
    ),
    ({"name": "UPSTREAM_AUTH", "value": f"Bearer {BEARER}"}, "env UPSTREAM_AUTH (Bearer token)"),
    (
        {"name": "AZURE_STORAGE_KEY", "value": AZURE_KEY},
        "env AZURE_STORAGE_KEY (literal value of secret-named",
    ),
    ({"name": "S3_ID", "value": AWS_ID}, "env S3_ID (AWS Access Key)"),
    (
        {"name": "DATABASE_URL", "value": "postgres://agent:pw@db/x"},
        "env DATABASE_URL (Basic Auth Credentials)",
    ),
]


@pytest.mark.parametrize(("variable", "finding"), WORKLOAD_FINDINGS, ids=lambda v: str(v)[:40])
def test_literal_credentials_in_env_fail(
    open_view: Callable[..., KubernetesView], variable: dict[str, Any], finding: str
) -> None:
    evidence = run(secrets.check_no_plaintext_secrets, open_view(with_env(variable)))
    [failure] = failures(evidence)
    assert f"Deployment/agent container app {finding}" in failure
    assert str(variable["value"]) not in evidence.summary()


def test_credentials_in_args_fail(open_view: Callable[..., KubernetesView]) -> None:
    view = open_view(deployment(containers=[container(args=["--db-password", "s3cr3", "--verbose"])]))
    [failure] = failures(run(secrets.check_no_plaintext_secrets, view))
    assert "Deployment/agent container app args (secret-named setting with a literal value)" in failure


REFERENCES: list[dict[str, Any]] = [
    {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    {"name": "DB_PASSWORD", "value": "$(DB_PASSWORD_FROM_STORE)"},
    {"name": "DB_PASSWORD", "value": "${DB_PASSWORD}"},
    {"name": "ATLAN_SECRET_STORE", "value": "atlan-secretstore"},
    {"name": "TOKEN_FILE", "value": "/var/run/secrets/atlan/token"},
    {"name": "AWS_REGION", "value": "eu-west-1"},
]


def test_references_and_settings_pass(open_view: Callable[..., KubernetesView]) -> None:
    store = component(
        "vault",
        "secretstores.hashicorp.vault",
        {"name": "vaultToken", "secretKeyRef": {"name": "v", "key": "t"}},
        {"name": "vaultAddr", "value": "https://vault.internal:8200"},
    )
    app = with_env(*REFERENCES, envFrom=[{"secretRef": {"name": "agent-env"}}])
    settings = config_map(
        "cfg", {"secret_store": "vault", "config_path": "/etc/atlan/secret_access_key.yaml"}
    )
    evidence = run(secrets.check_no_plaintext_secrets, open_view(app, store, settings))
    assert failures(evidence) == []
    assert unobserved(evidence) == []


# --- namespace-level evidence without workloads ------------------------------------------


def test_config_map_credential_fails_without_pods(open_view: Callable[..., KubernetesView]) -> None:
    """A certain failure is a failure, not an error because no agent pod was found."""
    evidence = run(secrets.check_no_plaintext_secrets, open_view(config_map("cfg", {"db_password": "s3cr3"})))
    assert failures(evidence) == [
        "plaintext credentials in the agent's configuration: "
        "ConfigMap/cfg key db_password (literal value of secret-named db_password)"
    ]
    [part] = unobserved(evidence)
    assert part.startswith(f"the agent's containers (env, command, args): {NO_PODS}")


def test_component_credential_fails_without_pods(open_view: Callable[..., KubernetesView]) -> None:
    store = component("vault", "secretstores.hashicorp.vault", {"name": "vaultToken", "value": "hvs.s3cr3"})
    evidence = run(secrets.check_no_plaintext_secrets, open_view(store))
    assert failures(evidence) == [
        "plaintext credentials in the agent's configuration: "
        "Dapr Component/vault metadata vaultToken (literal value of secret-named vaultToken)"
    ]


def test_clean_namespace_without_pods_is_partial(open_view: Callable[..., KubernetesView]) -> None:
    """What was examined is clean; the containers that could not be are reported as not observed."""
    evidence = run(
        secrets.check_no_plaintext_secrets, open_view(config_map("cfg", {"secret_store": "vault"}))
    )
    assert failures(evidence) == []
    [part] = unobserved(evidence)
    assert NO_PODS in part


@pytest.mark.parametrize(
    "objects",
    [
        pytest.param((), id="nothing"),
        pytest.param(
            (config_map("kube-root-ca.crt", {"ca.crt": "-----BEGIN CERTIFICATE-----"}),), id="root-ca"
        ),
    ],
)
def test_nothing_to_examine_is_an_error(
    open_view: Callable[..., KubernetesView], objects: tuple[dict[str, Any], ...]
) -> None:
    with pytest.raises(EvidenceUnavailable, match=re.escape(NO_PODS)):
        run(secrets.check_no_plaintext_secrets, open_view(*objects))


# --- SA-IAM-005 --------------------------------------------------------------------------

CLOUD_KEYS = [
    ({"name": "AZURE_STORAGE_KEY", "value": AZURE_KEY}, "env AZURE_STORAGE_KEY"),
    ({"name": "AZURE_BATCH_ACCOUNT_KEY", "value": AZURE_KEY}, "env AZURE_BATCH_ACCOUNT_KEY"),
    ({"name": "S3_ID", "value": AWS_ID}, "env S3_ID (AWS Access Key)"),
    (
        {
            "name": "BLOB_CONNECTION",
            "value": f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={AZURE_KEY}",
        },
        "env BLOB_CONNECTION (Azure Storage Account access key)",
    ),
]


@pytest.mark.parametrize(("variable", "finding"), CLOUD_KEYS, ids=lambda v: str(v)[:30])
def test_static_cloud_keys_in_env(
    open_view: Callable[..., KubernetesView], variable: dict[str, Any], finding: str
) -> None:
    evidence = run(identity.check_cloud_keys, open_view(with_env(variable)))
    assert failures(evidence) == [f"Deployment/agent container app: static cloud keys: {finding}"]


def test_cloud_key_component_fails_without_pods(open_view: Callable[..., KubernetesView]) -> None:
    store = component("blob", "state.azure.blobstorage", {"name": "accountKey", "value": "x"})
    evidence = run(identity.check_cloud_keys, open_view(store))
    assert failures(evidence) == ["Dapr Component blob: static keys: accountKey"]
    [part] = unobserved(evidence)
    assert NO_PODS in part


def test_cloud_keys_without_pods_or_components_is_an_error(open_view: Callable[..., KubernetesView]) -> None:
    with pytest.raises(EvidenceUnavailable, match=re.escape(NO_PODS)):
        run(identity.check_cloud_keys, open_view(config_map("cfg", {"region": "eu-west-1"})))


def test_clean_component_without_pods_is_partial(open_view: Callable[..., KubernetesView]) -> None:
    store = component("secrets", "secretstores.aws.secretmanager", {"name": "region", "value": "eu-west-1"})
    evidence = run(identity.check_cloud_keys, open_view(store))
    assert failures(evidence) == []
    assert [NO_PODS in part for part in unobserved(evidence)] == [True]


# --- a source that cannot be read hides no credential found in another -------------------

CONFIG_MAPS_ONLY = (Rule(("get", "list", "watch"), ("configmaps",), (NAMESPACE,)),)


@pytest.mark.parametrize(
    ("data", "failed"),
    [({"db_password": "s3cr3"}, True), ({"secret_store": "vault"}, False)],
    ids=["credential", "clean"],
)
def test_unreadable_workloads_never_hide_a_found_credential(
    k8s_apiserver_factory: ApiServerFactory, data: dict[str, str], failed: bool
) -> None:
    """Workloads refused (403): a credential in a ConfigMap still fails; a clean one is an error."""
    server = k8s_apiserver_factory(
        None, {"reader": CONFIG_MAPS_ONLY}, objects=[with_env(), config_map("cfg", data)]
    )
    view = LiveClusterView.from_kubeconfig(
        str(server.kubeconfig_for("reader")), timeout=5, target_id="k8s:test"
    )
    try:
        if not failed:
            with pytest.raises(EvidenceUnavailable, match=r"forbidden \(403\)"):
                run(secrets.check_no_plaintext_secrets, view)
            return
        evidence = run(secrets.check_no_plaintext_secrets, view)
    finally:
        view.close()
    assert failures(evidence) == [
        "plaintext credentials in the agent's configuration: "
        "ConfigMap/cfg key db_password (literal value of secret-named db_password)"
    ]
    assert any("forbidden (403)" in part for part in unobserved(evidence))
