"""Credential checks: SA-SECRET-001/002/003 and SA-IAM-005."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import identity, secrets
from pytest_secagent.kubernetes.checks.textscan import TextItem, secret_value_kinds
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.resources import SECRETS
from pytest_secagent.policy.model import AssessmentSection, CredentialReview
from tests.kubernetes.checkviews import (
    SKIPPED,
    container,
    deployment,
    failures,
    manifest_view,
    policy,
    warnings,
)
from tests.kubernetes.conftest import ApiServerFactory

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzY2VuYXJpby1vbmx5In0.c2NlbmFyaW8tb25seQ"


def component(
    name: str, kind: str, *metadata: dict[str, Any], scopes: list[str] | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name},
        "spec": {"type": kind, "version": "v1", "metadata": list(metadata)},
    }
    if scopes is not None:
        obj["scopes"] = scopes
    return obj


@pytest.mark.parametrize(
    ("key", "text", "kind"),
    [
        ("ATLAN_TOKEN", JWT, "JSON Web Token"),
        ("NOTES", "key AKIAABCDEFGHIJKLMNOP in use", "AWS Access Key"),
        ("key.pem", "-----BEGIN RSA PRIVATE KEY-----\nMII...", "Private Key"),
        ("DATABASE_URL", "postgres://agent:s3cr3tpass@db:5432/x", "Basic Auth Credentials"),
        ("config.yaml", "source:\n  password: hunter2hunter2\n", "secret-named setting with a literal value"),
        ("DB_PASSWORD", "hunter2hunter2", "literal value of secret-named DB_PASSWORD"),
    ],
)
def test_plaintext_credentials_found(key: str, text: str, kind: str) -> None:
    assert kind in secret_value_kinds(TextItem("x", key, text))


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("ATLAN_SECRET_STORE", "atlan-secretstore"),
        ("TOKEN_FILE", "/var/run/secrets/token"),
        ("DB_PASSWORD", "${DB_PASSWORD}"),
        ("ATLAN_TOKEN_REFRESH_SECONDS", "300"),
        ("TOKEN_URL", "https://acme.atlan.com/oauth/token"),
        ("config.yaml", "password: ${DB_PASSWORD}\nsecretName: agent\ntoken_path: /var/run/token\n"),
        ("ENABLE_SECRET_SCAN", "true"),
    ],
)
def test_not_credentials(key: str, text: str) -> None:
    assert secret_value_kinds(TextItem("x", key, text)) == []


def test_references_are_never_findings(tmp_path: Path) -> None:
    app = container(env=[{"name": "ATLAN_TOKEN", "valueFrom": {"secretKeyRef": {"name": "a", "key": "t"}}}])
    store = component(
        "vault",
        "secretstores.hashicorp.vault",
        {"name": "vaultToken", "secretKeyRef": {"name": "v", "key": "t"}},
    )
    evidence = Evidence()
    secrets.check_no_plaintext_secrets(
        manifest_view(tmp_path, deployment(containers=[app]), store), policy(), evidence
    )
    assert failures(evidence) == []


def test_plaintext_in_env_config_map_and_component_never_shows_the_value(tmp_path: Path) -> None:
    app = container(env=[{"name": "ATLAN_TOKEN", "value": JWT}])
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg"},
        "data": {"DB_PASSWORD": "hunter2hunter2"},
    }
    store = component(
        "aws", "secretstores.aws.secretmanager", {"name": "secretKey", "value": "abcdefghij1234567890"}
    )
    evidence = Evidence()
    secrets.check_no_plaintext_secrets(
        manifest_view(tmp_path, deployment(containers=[app]), config_map, store), policy(), evidence
    )
    [failure] = failures(evidence)
    assert "Deployment/agent container app env ATLAN_TOKEN (JSON Web Token)" in failure
    assert "ConfigMap/cfg key DB_PASSWORD (literal value of secret-named DB_PASSWORD)" in failure
    assert "Dapr Component/aws metadata secretKey" in failure
    for value in (JWT, "hunter2hunter2", "abcdefghij1234567890"):
        assert value not in evidence.summary()


def test_secret_store_enterprise_weak_and_missing(tmp_path: Path) -> None:
    evidence = Evidence()
    view = manifest_view(
        tmp_path / "vault", deployment(), component("v", "secretstores.hashicorp.vault", scopes=["agent"])
    )
    secrets.check_secret_store(view, policy(), evidence)
    assert (failures(evidence), warnings(evidence)) == ([], [])

    evidence = Evidence()
    view = manifest_view(tmp_path / "k8s", deployment(), component("k", "secretstores.kubernetes"))
    secrets.check_secret_store(view, policy(), evidence)
    assert failures(evidence) == []
    assert warnings(evidence) == [
        "Dapr Component/k (secretstores.kubernetes): secretstores.kubernetes",
        "Dapr Component/k (secretstores.kubernetes): scopes: none",
    ]
    review = CredentialReview(secret_store="kubernetes")  # noqa: S106 - a store type, not a password
    declared = dataclasses.replace(policy(), assessment=AssessmentSection(credential_review=review))
    evidence = Evidence()
    secrets.check_secret_store(view, declared, evidence)
    assert warnings(evidence) == ["Dapr Component/k (secretstores.kubernetes): scopes: none"]

    evidence = Evidence()
    secrets.check_secret_store(manifest_view(tmp_path / "none", deployment()), policy(), evidence)
    assert failures(evidence) == ["secret stores serving atlan-agent: none"]


def test_external_secrets_count_as_a_store(tmp_path: Path) -> None:
    external = {
        "apiVersion": "external-secrets.io/v1beta1",
        "kind": "ExternalSecret",
        "metadata": {"name": "atlan"},
        "spec": {"secretStoreRef": {"kind": "ClusterSecretStore", "name": "aws"}},
    }
    evidence = Evidence()
    secrets.check_secret_store(manifest_view(tmp_path, deployment(), external), policy(), evidence)
    assert failures(evidence) == []


def secret(name: str, created: str, *written: str, **annotations: str) -> dict[str, Any]:
    fields = [{"manager": "kubectl", "operation": "Update", "time": t} for t in written]
    metadata = {
        "name": name,
        "namespace": "atlan-agent",
        "creationTimestamp": created,
        "annotations": annotations,
    }
    return {"metadata": {**metadata, "managedFields": fields} if fields else metadata}


def test_secret_age_is_the_newest_write() -> None:
    written = secrets.secret_age(
        secret("s", "2024-01-01T00:00:00Z", "2024-12-01T00:00:00Z", "2024-06-01T00:00:00Z")
    )
    assert written == dt.datetime(2024, 12, 1, tzinfo=dt.timezone.utc)
    assert secrets.secret_age({"metadata": {}}) is None


def _live(factory: ApiServerFactory, *objects: dict[str, Any]) -> LiveClusterView:
    server = factory(
        None, objects=[{"apiVersion": "v1", "kind": "Secret", "type": "Opaque", **o} for o in objects]
    )
    return LiveClusterView.from_kubeconfig(
        str(server.kubeconfig_for("auditor")), timeout=5, target_id="k8s:test"
    )


def test_secret_age_against_rotation_maximum(k8s_apiserver_factory: ApiServerFactory) -> None:
    view = _live(
        k8s_apiserver_factory,
        secret("fresh", "2025-02-01T00:00:00Z"),
        secret("stale", "2024-10-01T00:00:00Z"),
        secret("ancient", "2023-01-01T00:00:00Z"),
        secret("sh.helm.release.v1.agent.v3", "2020-01-01T00:00:00Z"),
        secret("legacy-token", "2020-01-01T00:00:00Z", **{"kubernetes.io/service-account.name": "agent"}),
    )
    evidence = Evidence()
    try:
        secrets.check_secret_age(view, policy(), evidence, now=NOW)
    finally:
        view.close()
    assert failures(evidence) == [
        "Secret/ancient age: 790 days (over the hard maximum of 180) (last written 2023-01-01)",
        "Secret/stale age: 152 days (last written 2024-10-01)",
    ]
    assert "Secret/fresh age" in [o.name for o in evidence.observations]


ROTATED_IN_PLACE = {
    "metadata": {
        "name": "atlan-client",
        "namespace": "atlan-agent",
        "creationTimestamp": "2023-01-01T00:00:00Z",
        "managedFields": [
            {
                "manager": "kubectl-create",
                "operation": "Update",
                "apiVersion": "v1",
                "time": "2023-01-01T00:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}, "f:client_secret": {}}, "f:type": {}},
            },
            {
                "manager": "rotator",
                "operation": "Apply",
                "apiVersion": "v1",
                "time": "2025-02-20T09:30:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {"f:client_secret": {}}},
            },
        ],
    },
    "data": {"client_secret": "c2NlbmFyaW8tb25seQ=="},
}


def test_secret_rotated_in_place_is_judged_by_its_newest_write(
    k8s_apiserver_factory: ApiServerFactory, tmp_path: Path
) -> None:
    """A Secret created long ago but rewritten last week is fresh, live and rendered alike.

    Metadata-only objects keep when and by whom each write was made, never ``fieldsV1``
    (it names the data keys) nor the data itself.
    """
    live = _live(k8s_apiserver_factory, ROTATED_IN_PLACE)
    rendered = manifest_view(tmp_path, {"apiVersion": "v1", "kind": "Secret", **ROTATED_IN_PLACE})
    for view in (live, rendered):
        try:
            (listed,) = view.list_metadata(SECRETS, "atlan-agent")
            evidence = Evidence()
            secrets.check_secret_age(view, policy(), evidence, now=NOW)
        finally:
            view.close()
        assert listed["metadata"]["managedFields"] == [
            {"manager": "kubectl-create", "operation": "Update", "time": "2023-01-01T00:00:00Z"},
            {"manager": "rotator", "operation": "Apply", "time": "2025-02-20T09:30:00Z"},
        ]
        text = json.dumps(listed)
        for hidden in ("client_secret", "fieldsV1", "c2NlbmFyaW8"):
            assert hidden not in text
        evidence.conclude()
        assert [o.actual for o in evidence.observations] == ["9 days (last written 2025-02-20)"]


def test_no_credential_secret_is_not_applicable(k8s_apiserver_factory: ApiServerFactory) -> None:
    view = _live(k8s_apiserver_factory, secret("sh.helm.release.v1.agent.v1", "2020-01-01T00:00:00Z"))
    try:
        with pytest.raises(SKIPPED, match="not applicable: no credential Secrets in namespace atlan-agent"):
            secrets.check_secret_age(view, policy(), Evidence(), now=NOW)
    finally:
        view.close()


def test_static_cloud_keys_however_they_are_filled(tmp_path: Path) -> None:
    app = container(
        env=[
            {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "aws", "key": "id"}}},
            {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "aws", "key": "key"}}},
            {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/var/run/gcp/key.json"},
        ],
        envFrom=[{"configMapRef": {"name": "azure"}}],
    )
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "azure"},
        "data": {"AZURE_CLIENT_SECRET": "x"},
    }
    store = component(
        "aws",
        "secretstores.aws.secretmanager",
        {"name": "accessKey", "secretKeyRef": {"name": "a", "key": "b"}},
    )
    evidence = Evidence()
    identity.check_cloud_keys(
        manifest_view(tmp_path, deployment(containers=[app]), config_map, store), policy(), evidence
    )
    assert failures(evidence) == [
        "Deployment/agent container app: static cloud keys: env AWS_ACCESS_KEY_ID, "
        "env AWS_SECRET_ACCESS_KEY, envFrom ConfigMap azure key AZURE_CLIENT_SECRET",
        "Dapr Component aws: static keys: accessKey",
    ]
    assert warnings(evidence) == [
        "Deployment/agent container app: env GOOGLE_APPLICATION_CREDENTIALS: "
        "set (a key file or an external-account configuration)"
    ]


def test_env_injected_from_unreadable_sources_is_a_warning(tmp_path: Path) -> None:
    """Keys of an envFrom Secret (values stay unread) or a missing ConfigMap cannot be checked."""
    app = container(envFrom=[{"secretRef": {"name": "cloud"}}, {"configMapRef": {"name": "elsewhere"}}])
    evidence = Evidence()
    identity.check_cloud_keys(manifest_view(tmp_path, deployment(containers=[app])), policy(), evidence)
    assert failures(evidence) == []
    assert warnings(evidence) == [
        "Deployment/agent container app: envFrom Secret cloud: "
        "its key names are not read (Secrets are read as metadata only): confirm by hand",
        "Deployment/agent container app: envFrom ConfigMap elsewhere: not found, so its keys are unknown",
    ]
