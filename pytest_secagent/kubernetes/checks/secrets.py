"""Credential handling: SA-SECRET-001 (secret store), -002 (no plaintext), -003 (age).

Secret values are never read: Secrets are listed metadata-only, and plaintext findings
name where a credential sits and what it looks like, never the value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import (
    AgentScope,
    age_days,
    agent_containers,
    agent_scope,
    list_if_served,
    parse_time,
)
from pytest_secagent.kubernetes.checks.textscan import (
    ScanBudget,
    TextItem,
    component_items,
    config_map_items,
    container_items,
    pod_items,
    secret_value_kinds,
)
from pytest_secagent.kubernetes.checks.workload import note_out_of_scope
from pytest_secagent.kubernetes.resources import CONFIG_MAPS, DAPR_COMPONENTS, SECRETS
from pytest_secagent.kubernetes.view import KubernetesView, Resource
from pytest_secagent.kubernetes.workloads import PodTemplate, pod_templates
from pytest_secagent.outcomes import EvidenceUnavailable, not_applicable
from pytest_secagent.policy.model import Policy

__all__ = [
    "ENTERPRISE_STORES",
    "WEAK_STORES",
    "check_no_plaintext_secrets",
    "check_secret_age",
    "check_secret_store",
    "no_agent_pods_reason",
    "secret_age",
]

ENTERPRISE_STORES = frozenset(
    {
        "secretstores.aws.secretmanager",
        "secretstores.aws.parameterstore",
        "secretstores.azure.keyvault",
        "secretstores.gcp.secretmanager",
        "secretstores.hashicorp.vault",
    }
)
WEAK_STORES: Mapping[str, str] = {
    "secretstores.kubernetes": "kubernetes",
    "secretstores.local.env": "env",
    "secretstores.local.file": "env",
}
"""Dapr store types that are no enterprise vault, with the declared store type that accepts them."""
EXTERNAL_SECRETS = Resource("external-secrets.io", "v1beta1", "externalsecrets")
CSI_SECRET_PROVIDERS = Resource("secrets-store.csi.x-k8s.io", "v1", "secretproviderclasses")
HELM_RELEASE_PREFIX = "sh.helm.release.v1."
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
"""The ConfigMap the control plane puts in every namespace; it alone is no agent configuration."""
LEGACY_TOKEN_ANNOTATION = "kubernetes.io/service-account.name"  # noqa: S105 - a key name


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(_map(obj.get("metadata")).get("name", ""))


def check_secret_store(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-SECRET-001: the agent's credentials come from an enterprise secret store.

    Accepted: Dapr secret-store Components (AWS Secrets Manager / Parameter Store, Azure
    Key Vault, GCP Secret Manager, HashiCorp Vault), External Secrets ``ExternalSecret``
    objects and Secrets Store CSI ``SecretProviderClass`` objects. Kubernetes, env and file
    stores are warnings unless the credential review declares that store type; a Dapr
    Component without ``scopes`` is a warning.
    """
    scope = agent_scope(policy, namespace)
    ns = scope.namespace
    declared = policy.assessment.credential_review.secret_store
    stores: list[str] = []
    weak: list[str] = []
    for component in list_if_served(view, DAPR_COMPONENTS, ns) or []:
        kind = str(_map(component.get("spec")).get("type", ""))
        if not kind.startswith("secretstores."):
            continue
        label = f"Dapr Component/{_name(component)} ({kind})"
        if kind in WEAK_STORES:
            weak.append(label)
            if WEAK_STORES[kind] != declared:
                evidence.warn(label, expected="an enterprise vault, or this store type declared", actual=kind)
        else:
            stores.append(label)
        if not component.get("scopes"):
            evidence.warn(f"{label}: scopes", expected="limited to the agent's app IDs", actual="none")
    for external in list_if_served(view, EXTERNAL_SECRETS, ns) or []:
        ref = _map(_map(external.get("spec")).get("secretStoreRef"))
        stores.append(
            f"ExternalSecret/{_name(external)} from {ref.get('kind', 'SecretStore')}/{ref.get('name')}"
        )
    for provider in list_if_served(view, CSI_SECRET_PROVIDERS, ns) or []:
        stores.append(f"SecretProviderClass/{_name(provider)} ({_map(provider.get('spec')).get('provider')})")
    if declared is not None:
        evidence.observe("declared secret store (assessment.credential_review.secret_store)", declared)
    evidence.expect(
        f"secret stores serving {ns}",
        expected="an enterprise secret store (Dapr vault component, External Secrets, CSI provider)",
        actual=", ".join(stores + weak) or "none",
        ok=bool(stores or weak),
    )


def no_agent_pods_reason(view: KubernetesView, scope: AgentScope) -> str:
    """Say that no agent pod was found, and how to point the check at the agent."""
    return (
        f"no agent pods found ({scope.describe()}) on {view.target_id}; "
        "set agent.namespace / agent.selector in the policy or name the namespace in the target"
    )


def check_no_plaintext_secrets(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-SECRET-002: no literal credential in the agent's pod specs, ConfigMaps or Dapr components.

    Every value is read, not a list of known places: env, command, args, probes (HTTP
    headers), lifecycle hooks and every other field of each container and pod spec, pod
    and workload annotations, ConfigMap ``data`` and decoded ``binaryData`` (JSON and YAML
    values also parsed), and each Dapr component's spec (a literal ``value`` beside a
    ``secretKeyRef`` is still stored, so it counts). The scan is bounded
    (:class:`~pytest_secagent.kubernetes.checks.textscan.ScanBudget`); what a bound left
    out is reported as not observed.

    Credentials are found by :mod:`pytest_secagent.detection` (provider shapes, keyword,
    entropy, secret-named settings with any literal value, ``Bearer`` tokens); references
    (``secretKeyRef``, ``valueFrom``, ``envFrom``, secret-store references, ``${VAR}``)
    are fine. Reports where and what kind, never the value.

    The namespace's own objects (ConfigMaps, Dapr components) are judged whether or not
    agent pods exist: a credential in them fails the control even when the containers
    cannot be seen. Without agent pods and with nothing else to examine, the control is an
    error; with namespace objects examined and clean, the containers are reported as not
    observed (a pass on partial evidence). A source that could not be read never hides a
    credential found in another.
    """
    scope = agent_scope(policy, namespace)
    items: list[TextItem] = []
    unreadable: list[str] = []
    templates: list[PodTemplate] = []
    try:
        templates = list(pod_templates(view, scope.namespace, scope.selector))
    except EvidenceUnavailable as error:
        unreadable.append(str(error))
    else:
        note_out_of_scope(view, scope, evidence)
    budget = ScanBudget()
    for ref in agent_containers(templates):
        items.extend(container_items(ref, budget))
    for template in templates:
        items.extend(pod_items(template, budget))
    namespace_settings = 0
    try:
        for config_map in view.list(CONFIG_MAPS, scope.namespace):
            entries = list(config_map_items(config_map, budget))
            if _name(config_map) != ROOT_CA_CONFIG_MAP:
                namespace_settings += len(entries)
            items.extend(entries)
    except EvidenceUnavailable as error:
        unreadable.append(str(error))
    try:
        for component in list_if_served(view, DAPR_COMPONENTS, scope.namespace) or []:
            entries = list(component_items(component, budget))
            namespace_settings += len(entries)
            items.extend(entries)
    except EvidenceUnavailable as error:
        unreadable.append(str(error))
    found = [f"{item.where} ({', '.join(kinds)})" for item in items if (kinds := secret_value_kinds(item))]
    pods_missing = not templates and not unreadable
    if not found and (unreadable or (pods_missing and not namespace_settings)):
        raise EvidenceUnavailable("; ".join(unreadable) or no_agent_pods_reason(view, scope))
    for reason in unreadable:
        evidence.unobserved(
            "part of the agent's configuration", expected="no literal credential", reason=reason
        )
    for cut in budget.cut:
        evidence.unobserved(
            "part of the agent's configuration beyond the scan bounds",
            expected="no literal credential",
            reason=f"not scanned in full: {cut}",
        )
    if pods_missing:
        evidence.unobserved(
            "the agent's containers (env, command, args)",
            expected="no literal credential",
            reason=no_agent_pods_reason(view, scope),
        )
    evidence.expect(
        "plaintext credentials in the agent's configuration",
        expected="none (reference Secrets or the secret store instead)",
        actual="; ".join(found) or f"none in {len(items)} settings",
        ok=not found,
    )


def secret_age(secret: Mapping[str, Any]) -> dt.datetime | None:
    """Return when a Secret was last written: its newest managedFields time, else its creation."""
    metadata = _map(secret.get("metadata"))
    times = [parse_time(_map(entry).get("time")) for entry in metadata.get("managedFields") or []]
    times.append(parse_time(metadata.get("creationTimestamp")))
    known = [t for t in times if t is not None]
    return max(known) if known else None


def check_secret_age(
    view: KubernetesView,
    policy: Policy,
    evidence: Evidence,
    namespace: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    """SA-SECRET-003: every credential Secret of the agent namespace is younger than the rotation maximum.

    Age comes from metadata only (the newest ``managedFields`` time, or the creation time).
    Helm release records and legacy service-account tokens (SA-RUNTIME-013) are skipped.
    """
    scope = agent_scope(policy, namespace)
    now = now or dt.datetime.now(dt.timezone.utc)
    limit = policy.credentials.rotation_max_days
    hard = policy.credentials.rotation_hard_max_days
    secrets = [
        s
        for s in view.list_metadata(SECRETS, scope.namespace)
        if not _name(s).startswith(HELM_RELEASE_PREFIX)
        and LEGACY_TOKEN_ANNOTATION not in _map(_map(s.get("metadata")).get("annotations"))
    ]
    if not secrets:
        not_applicable(f"no credential Secrets in namespace {scope.namespace}")
    for secret in secrets:
        written = secret_age(secret)
        label = f"Secret/{_name(secret)} age"
        if written is None:
            evidence.expect(
                label, expected=f"at most {limit} days", actual="no timestamp in metadata", ok=False
            )
            continue
        days = age_days(written, now)
        note = f" (over the hard maximum of {hard})" if days > hard else ""
        evidence.expect(
            label,
            expected=f"at most {limit} days",
            actual=f"{days:.0f} days{note} (last written {written:%Y-%m-%d})",
            ok=days <= limit,
        )
