"""Workload identity: SA-RUNTIME-013 (service accounts) and SA-IAM-005 (no static cloud keys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import (
    agent_containers,
    agent_scope,
    agent_templates,
    list_if_served,
)
from pytest_secagent.kubernetes.resources import (
    CONFIG_MAPS,
    DAPR_COMPONENTS,
    SECRETS,
    SERVICE_ACCOUNTS,
)
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.policy.model import Policy

__all__ = [
    "STATIC_CLOUD_KEY_NAMES",
    "STATIC_KEY_METADATA",
    "check_cloud_keys",
    "check_service_accounts",
]

LEGACY_TOKEN_ANNOTATION = "kubernetes.io/service-account.name"  # noqa: S105 - a key name
STATIC_CLOUD_KEY_NAMES = frozenset(
    {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH"}
)
"""Environment variables that carry (or point to) a long-lived cloud key."""
KEY_FILE_VARIABLES = frozenset({"GOOGLE_APPLICATION_CREDENTIALS"})
STATIC_KEY_METADATA = frozenset(
    {"accesskey", "secretkey", "clientsecret", "privatekey", "private_key", "clientcertificate"}
)
"""Dapr component metadata names (lower case) that hold a static cloud credential."""


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_map(obj.get("metadata")).get("name", ""))


def check_service_accounts(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-RUNTIME-013: dedicated service accounts, token automount only where needed.

    Also: the namespace's ``default`` ServiceAccount does not automount its token, and no
    legacy long-lived service-account token Secret exists in the namespace.
    """
    scope = agent_scope(policy, namespace)
    templates = agent_templates(view, scope)
    accounts = {_name(sa): sa for sa in view.list(SERVICE_ACCOUNTS, scope.namespace)}
    api_access = tuple(policy.agent.api_access)
    for template in templates:
        account = template.service_account
        evidence.expect(
            f"{template.owner}: service account",
            expected="a dedicated service account (not default)",
            actual=account,
            ok=account != "default",
        )
        pod_value = template.spec.get("automountServiceAccountToken")
        sa_value = accounts.get(account, {}).get("automountServiceAccountToken")
        if isinstance(pod_value, bool):
            mounted, source = pod_value, "pod spec"
        elif isinstance(sa_value, bool):
            mounted, source = sa_value, f"ServiceAccount {account}"
        else:
            mounted, source = True, "the API default"
        needs_api = bool(api_access) and template.owner.name.startswith(api_access)
        if needs_api:
            evidence.observe(f"{template.owner}: API access", "declared in agent.api_access")
        evidence.expect(
            f"{template.owner}: service-account token automount",
            expected="true only for agent.api_access components" if needs_api else "false",
            actual=f"{str(mounted).lower()} (from {source})",
            ok=needs_api or not mounted,
        )
    default = accounts.get("default")
    if default is None:
        evidence.warn(
            f"ServiceAccount default in {scope.namespace}",
            expected="automountServiceAccountToken: false",
            actual="not " + ("found" if view.live else "in the manifests"),
        )
    else:
        value = default.get("automountServiceAccountToken")
        evidence.expect(
            f"ServiceAccount default in {scope.namespace}: token automount",
            expected="false",
            actual=str(value).lower() if isinstance(value, bool) else "unset (true)",
            ok=value is False,
        )
    legacy = [
        _name(secret)
        for secret in view.list_metadata(SECRETS, scope.namespace)
        if LEGACY_TOKEN_ANNOTATION in _map(_map(secret.get("metadata")).get("annotations"))
    ]
    evidence.expect(
        f"legacy service-account token Secrets in {scope.namespace}",
        expected="none",
        actual=", ".join(legacy) or "none",
        ok=not legacy,
    )


def _config_map_keys(view: KubernetesView, namespace: str) -> dict[str, set[str]]:
    return {_name(cm): set(_map(cm.get("data"))) for cm in view.list(CONFIG_MAPS, namespace)}


def check_cloud_keys(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-IAM-005: no long-lived cloud keys in the agent's environment or secret stores.

    Flags the key variables however they are filled (a literal or a Secret reference), and
    Dapr components that authenticate with a static key instead of a workload identity.
    Variables injected wholesale from a Secret (``envFrom``), or from a ConfigMap that is
    not there to read, cannot be seen: each is a warning, never a silent pass.
    """
    scope = agent_scope(policy, namespace)
    templates = agent_templates(view, scope)
    config_maps: dict[str, set[str]] | None = None
    for ref in agent_containers(templates):
        found = []
        for variable in ref.container.get("env") or []:
            name = str(_map(variable).get("name", ""))
            if name in STATIC_CLOUD_KEY_NAMES:
                found.append(f"env {name}")
            elif name in KEY_FILE_VARIABLES:
                evidence.warn(
                    f"{ref.label}: env {name}",
                    expected="workload identity instead of a key file",
                    actual="set (a key file or an external-account configuration)",
                )
        for source in ref.container.get("envFrom") or []:
            cm_name = _map(_map(source).get("configMapRef")).get("name")
            if cm_name:
                if config_maps is None:
                    config_maps = _config_map_keys(view, scope.namespace)
                if str(cm_name) not in config_maps:
                    evidence.warn(
                        f"{ref.label}: envFrom ConfigMap {cm_name}",
                        expected="no static cloud key among its keys",
                        actual="not found, so its keys are unknown",
                    )
                keys = config_maps.get(str(cm_name), set()) & STATIC_CLOUD_KEY_NAMES
                found.extend(f"envFrom ConfigMap {cm_name} key {key}" for key in sorted(keys))
            secret_name = _map(_map(source).get("secretRef")).get("name")
            if secret_name:
                evidence.warn(
                    f"{ref.label}: envFrom Secret {secret_name}",
                    expected="no static cloud key among its keys",
                    actual="its key names are not read (Secrets are read as metadata only): confirm by hand",
                )
        evidence.expect(
            f"{ref.label}: static cloud keys",
            expected="none (use IRSA / Workload Identity / Managed Identity)",
            actual=", ".join(found) or "none",
            ok=not found,
        )
    components = list_if_served(view, DAPR_COMPONENTS, scope.namespace)
    for component in components or []:
        names = [
            str(_map(item).get("name", ""))
            for item in _map(component.get("spec")).get("metadata") or []
            if str(_map(item).get("name", "")).lower() in STATIC_KEY_METADATA
        ]
        evidence.expect(
            f"Dapr Component {_name(component)}: static keys",
            expected="none (authenticate with the workload identity)",
            actual=", ".join(names) or "none",
            ok=not names,
        )
