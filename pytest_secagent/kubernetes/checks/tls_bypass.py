"""TLS verification in the agent's configuration: SA-NET-009."""

from __future__ import annotations

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import (
    agent_containers,
    agent_scope,
    list_if_served,
)
from pytest_secagent.kubernetes.checks.textscan import (
    ScanBudget,
    TextItem,
    component_items,
    config_map_items,
    container_items,
    pod_items,
    tls_bypass_kinds,
)
from pytest_secagent.kubernetes.checks.workload import judged_templates
from pytest_secagent.kubernetes.resources import CONFIG_MAPS, DAPR_COMPONENTS
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.policy.model import Policy

__all__ = ["check_no_tls_bypass"]


def check_no_tls_bypass(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-NET-009: no TLS-verification bypass in env, args, ConfigMaps or Dapr components.

    Looks for ``insecureSkipVerify``/``skipTLSVerify``/``insecure: true``, insecure
    command-line flags, ``NODE_TLS_REJECT_UNAUTHORIZED=0``, ``PYTHONHTTPSVERIFY=0``, empty
    CA bundles, ``GODEBUG=x509ignoreCN``, ``sslmode=disable`` and plain ``http://`` URLs
    to Atlan, object stores and secret stores; also ``VAULT_SKIP_VERIFY``, Dapr
    ``skipVerify``-style fields, ``verify: false`` under a TLS setting, ``curl -k`` and
    ``--no-verify-ssl``. Every value of the agent's pod specs, ConfigMaps and Dapr
    components is read; JSON and YAML held in a value are parsed and each setting judged
    by name and value, so escapes, nesting and line breaks do not hide one. What the scan
    bounds left out is reported as not observed.
    """
    scope = agent_scope(policy, namespace)
    templates = judged_templates(view, scope, evidence)
    items: list[TextItem] = []
    budget = ScanBudget()
    for ref in agent_containers(templates):
        items.extend(container_items(ref, budget))
    for template in templates:
        items.extend(pod_items(template, budget))
    config_maps = view.list(CONFIG_MAPS, scope.namespace)
    for config_map in config_maps:
        items.extend(config_map_items(config_map, budget))
    components = list_if_served(view, DAPR_COMPONENTS, scope.namespace) or []
    for component in components:
        items.extend(component_items(component, budget))
    for cut in budget.cut:
        evidence.unobserved(
            "part of the agent's configuration beyond the scan bounds",
            expected="no TLS-verification bypass",
            reason=f"not scanned in full: {cut}",
        )
    found = [f"{item.where} ({', '.join(kinds)})" for item in items if (kinds := tls_bypass_kinds(item))]
    evidence.expect(
        "TLS-verification bypass in the agent's configuration",
        expected="none",
        actual="; ".join(found) or f"none in {len(items)} settings",
        ok=not found,
    )
