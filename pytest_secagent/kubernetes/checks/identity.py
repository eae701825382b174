"""Workload identity: SA-RUNTIME-013 (service accounts) and SA-IAM-005 (no static cloud keys)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_secagent.detection import credential_kinds
from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import (
    agent_containers,
    agent_scope,
    list_if_served,
)
from pytest_secagent.kubernetes.checks.secrets import no_agent_pods_reason
from pytest_secagent.kubernetes.checks.workload import judged_templates, note_out_of_scope
from pytest_secagent.kubernetes.resources import (
    CONFIG_MAPS,
    DAPR_COMPONENTS,
    SECRETS,
    SERVICE_ACCOUNTS,
)
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.kubernetes.workloads import PodTemplate, pod_templates
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy

__all__ = [
    "CLOUD_KEY_KINDS",
    "STATIC_CLOUD_KEY_NAMES",
    "STATIC_KEY_METADATA",
    "check_cloud_keys",
    "check_service_accounts",
]

LEGACY_TOKEN_ANNOTATION = "kubernetes.io/service-account.name"  # noqa: S105 - a key name
STATIC_CLOUD_KEY_NAMES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_STORAGE_KEY",
        "AZURE_STORAGE_ACCESS_KEY",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_BATCH_ACCESS_KEY",
        "AZURE_BATCH_ACCOUNT_KEY",
        "AZURE_BATCH_KEY",
        "ARM_CLIENT_SECRET",
        "ARM_ACCESS_KEY",
    }
)
"""Environment variables that carry (or point to) a long-lived cloud key."""
CLOUD_KEY_KINDS = frozenset(
    {
        "AWS Access Key",
        "Azure Storage Account access key",
        "IBM Cloud IAM Key",
        "IBM COS HMAC Credentials",
    }
)
"""Credential kinds (:mod:`pytest_secagent.detection`) that are long-lived cloud keys whatever their name."""
KEY_FILE_VARIABLES = frozenset({"GOOGLE_APPLICATION_CREDENTIALS"})
STATIC_KEY_METADATA = frozenset(
    {
        "accesskey",
        "secretkey",
        "clientsecret",
        "privatekey",
        "private_key",
        "clientcertificate",
        "accountkey",
        "storageaccesskey",
        "masterkey",
    }
)
"""Dapr component metadata names (lower case) that hold a static cloud credential."""


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_map(obj.get("metadata")).get("name", ""))


def _token_volumes(spec: Mapping[str, Any], token_secrets: set[str]) -> list[str]:
    """Name each volume that hands the pod a service-account token whatever automount says."""
    found = []
    for volume in spec.get("volumes") or []:
        volume = _map(volume)
        name = volume.get("name")
        for source in _map(volume.get("projected")).get("sources") or []:
            if _map(source).get("serviceAccountToken") is not None:
                found.append(f"volume {name} projects a service-account token")
            secret = _map(_map(source).get("secret")).get("name")
            if secret in token_secrets:
                found.append(f"volume {name} projects the service-account token Secret {secret}")
        secret_name = _map(volume.get("secret")).get("secretName")
        if secret_name in token_secrets:
            found.append(f"volume {name} mounts the service-account token Secret {secret_name}")
    return found


def check_service_accounts(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-RUNTIME-013: dedicated service accounts, token automount only where needed.

    Also: the namespace's ``default`` ServiceAccount does not automount its token, and no
    legacy long-lived service-account token Secret exists in the namespace. A pod with
    ``automountServiceAccountToken: false`` that mounts a token anyway (a projected
    ``serviceAccountToken`` source, or a service-account token Secret) has an API token:
    it counts as mounted.
    """
    scope = agent_scope(policy, namespace)
    templates = judged_templates(view, scope, evidence)
    accounts = {_name(sa): sa for sa in view.list(SERVICE_ACCOUNTS, scope.namespace)}
    api_access = tuple(policy.agent.api_access)
    legacy = [
        _name(secret)
        for secret in view.list_metadata(SECRETS, scope.namespace)
        if LEGACY_TOKEN_ANNOTATION in _map(_map(secret.get("metadata")).get("annotations"))
    ]
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
        volumes = _token_volumes(template.spec, set(legacy))
        if volumes and not mounted:
            mounted, source = True, "; ".join(volumes)
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
    evidence.expect(
        f"legacy service-account token Secrets in {scope.namespace}",
        expected="none",
        actual=", ".join(legacy) or "none",
        ok=not legacy,
    )


def _config_map_data(view: KubernetesView, namespace: str) -> dict[str, Mapping[str, Any]]:
    return {_name(cm): _map(cm.get("data")) for cm in view.list(CONFIG_MAPS, namespace)}


def _cloud_key_value(name: str, value: str) -> str | None:
    """Name the cloud-key kinds a literal value shows, or ``None``."""
    kinds = [kind for kind in credential_kinds(name, value) if kind in CLOUD_KEY_KINDS]
    return ", ".join(kinds) if kinds else None


def check_cloud_keys(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-IAM-005: no long-lived cloud keys in the agent's environment or secret stores.

    Flags the key variables however they are filled (a literal or a Secret reference), any
    literal value shaped like a cloud key (an AWS access key ID, an Azure storage account
    key, ...) whatever its variable's name, and Dapr components that authenticate with a
    static key instead of a workload identity. Variables injected wholesale from a Secret
    (``envFrom``), or from a ConfigMap that is not there to read, cannot be seen: each is a
    warning, never a silent pass. The Dapr components are judged whether or not agent pods
    exist; with neither, the control is an error.
    """
    scope = agent_scope(policy, namespace)
    templates: list[PodTemplate] = []
    unreadable: str | None = None
    try:
        templates = list(pod_templates(view, scope.namespace, scope.selector))
    except EvidenceUnavailable as error:
        unreadable = str(error)
    else:
        note_out_of_scope(view, scope, evidence)
    config_maps: dict[str, Mapping[str, Any]] | None = None
    failed = False
    for ref in agent_containers(templates):
        found = []
        for variable in ref.container.get("env") or []:
            entry = _map(variable)
            name = str(entry.get("name", ""))
            literal_kind = _cloud_key_value(name, str(entry.get("value") or "")) if "value" in entry else None
            if name in STATIC_CLOUD_KEY_NAMES:
                found.append(f"env {name}")
            elif literal_kind:
                found.append(f"env {name} ({literal_kind})")
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
                    config_maps = _config_map_data(view, scope.namespace)
                if str(cm_name) not in config_maps:
                    evidence.warn(
                        f"{ref.label}: envFrom ConfigMap {cm_name}",
                        expected="no static cloud key among its keys",
                        actual="not found, so its keys are unknown",
                    )
                data = config_maps.get(str(cm_name), {})
                for key in sorted(data, key=str):
                    kind = _cloud_key_value(str(key), str(data[key] or ""))
                    if str(key) in STATIC_CLOUD_KEY_NAMES:
                        found.append(f"envFrom ConfigMap {cm_name} key {key}")
                    elif kind:
                        found.append(f"envFrom ConfigMap {cm_name} key {key} ({kind})")
            secret_name = _map(_map(source).get("secretRef")).get("name")
            if secret_name:
                evidence.warn(
                    f"{ref.label}: envFrom Secret {secret_name}",
                    expected="no static cloud key among its keys",
                    actual="its key names are not read (Secrets are read as metadata only): confirm by hand",
                )
        failed |= not evidence.expect(
            f"{ref.label}: static cloud keys",
            expected="none (use IRSA / Workload Identity / Managed Identity)",
            actual=", ".join(found) or "none",
            ok=not found,
        )
    try:
        components = list_if_served(view, DAPR_COMPONENTS, scope.namespace) or []
    except EvidenceUnavailable as error:
        if not failed:
            raise
        components = []
        evidence.unobserved("Dapr Components: static keys", expected="none", reason=str(error))
    for component in components:
        names = [
            str(_map(item).get("name", ""))
            for item in _map(component.get("spec")).get("metadata") or []
            if str(_map(item).get("name", "")).lower() in STATIC_KEY_METADATA
        ]
        failed |= not evidence.expect(
            f"Dapr Component {_name(component)}: static keys",
            expected="none (authenticate with the workload identity)",
            actual=", ".join(names) or "none",
            ok=not names,
        )
    if templates:
        return
    reason = unreadable or no_agent_pods_reason(view, scope)
    if not failed and (unreadable or not components):
        raise EvidenceUnavailable(reason)
    evidence.unobserved(
        "the agent's containers: static cloud keys",
        expected="none (use IRSA / Workload Identity / Managed Identity)",
        reason=reason,
    )
