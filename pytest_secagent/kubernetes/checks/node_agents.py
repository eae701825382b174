"""Node agents beside the agent's pods: SA-LOG-002 (log collector) and SA-EDR-001 (EDR).

Both need a DaemonSet that is ready and runs a ready pod on every node that runs an
agent pod. Readiness and placement only exist on a live cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import agent_scope
from pytest_secagent.kubernetes.checks.workload import judged_templates
from pytest_secagent.kubernetes.resources import DAEMON_SETS, PODS
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.outcomes import EvidenceUnavailable, not_applicable
from pytest_secagent.policy.model import Policy

__all__ = [
    "EDR_DAEMONSETS",
    "LOG_COLLECTOR_DAEMONSETS",
    "check_edr_coverage",
    "check_log_collection",
    "daemonset_coverage",
]

LOG_COLLECTOR_DAEMONSETS = (
    "fluent-bit",
    "fluentbit",
    "fluentd",
    "vector",
    "opentelemetry-collector",
    "otel-collector",
    "otelcol",
    "alloy",
    "promtail",
    "datadog",
    "splunk-otel-collector",
    "filebeat",
    "elastic-agent",
    "cloudwatch-agent",
    "aws-for-fluent-bit",
    "ama-logs",
    "omsagent",
    "fluentbit-gke",
    "stackdriver-logging-agent",
    "logging-agent",
    "sumologic",
    "newrelic-logging",
)
"""Name prefixes of well-known log-collector DaemonSets (used when the policy names none)."""

EDR_DAEMONSETS = (
    "falcon-node-sensor",
    "falcon-sensor",
    "crowdstrike",
    "sentinelone",
    "s1-agent",
    "microsoft-defender",
    "mdatp",
    "aws-guardduty-agent",
    "tetragon",
    "falco",
    "sysdig-agent",
    "aqua-enforcer",
    "twistlock-defender",
    "prisma-cloud-defender",
    "wazuh-agent",
    "ds-agent",
    "carbonblack",
    "lacework-agent",
)
"""Name prefixes of well-known EDR / runtime-security DaemonSets (used when the policy names none)."""


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _ref(ds: Mapping[str, Any]) -> str:
    meta = _map(ds.get("metadata"))
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    conditions = _map(pod.get("status")).get("conditions") or []
    return any(_map(c).get("type") == "Ready" and _map(c).get("status") == "True" for c in conditions)


def daemonset_coverage(view: KubernetesView, ds: Mapping[str, Any]) -> set[str]:
    """Return the nodes where a ready pod of the DaemonSet runs."""
    meta = _map(ds.get("metadata"))
    name, uid = meta.get("name"), meta.get("uid")
    nodes = set()
    for pod in view.list(PODS, str(meta.get("namespace"))):
        owners = _map(pod.get("metadata")).get("ownerReferences") or []
        owned = any(
            _map(o).get("kind") == "DaemonSet"
            and _map(o).get("name") == name
            and (uid is None or _map(o).get("uid") in (None, uid))
            for o in owners
        )
        node = _map(pod.get("spec")).get("nodeName")
        if owned and node and _pod_ready(pod):
            nodes.add(str(node))
    return nodes


def _matches(ds: Mapping[str, Any], entry: str) -> bool:
    meta = _map(ds.get("metadata"))
    return entry in (f"{meta.get('namespace')}/{meta.get('name')}", str(meta.get("name")))


def _select(
    daemonsets: list[dict[str, Any]], declared: list[str], known: tuple[str, ...]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Return the DaemonSets that count, and the declared entries that match none."""
    if not declared:
        return [
            ds for ds in daemonsets if str(_map(ds.get("metadata")).get("name", "")).startswith(known)
        ], []
    chosen = [ds for ds in daemonsets if any(_matches(ds, entry) for entry in declared)]
    missing = [entry for entry in declared if not any(_matches(ds, entry) for ds in daemonsets)]
    return chosen, missing


def _check_node_agents(
    view: KubernetesView,
    policy: Policy,
    evidence: Evidence,
    namespace: str | None,
    *,
    what: str,
    declared: list[str],
    known: tuple[str, ...],
) -> None:
    if not view.live:
        not_applicable(f"{what} readiness is only known on a live cluster")
    templates = judged_templates(view, agent_scope(policy, namespace), evidence)
    agent_nodes = sorted({node for t in templates for node in t.nodes})
    if not agent_nodes:
        raise EvidenceUnavailable("the agent's pods run on no node yet (pending?)")
    evidence.observe("nodes running agent pods", ", ".join(agent_nodes))
    daemonsets, missing = _select(view.list(DAEMON_SETS, None), declared, known)
    source = "declared: " + ", ".join(declared) if declared else "recognised by name"
    found = ", ".join(_ref(ds) for ds in daemonsets) or "none"
    evidence.expect(
        f"{what} DaemonSets ({source})",
        expected="at least one" if not declared else "every declared DaemonSet",
        actual=found + (f"; not found: {', '.join(missing)}" if missing and daemonsets else ""),
        ok=bool(daemonsets) and not missing,
    )
    covering = []
    for ds in daemonsets:
        status = _map(ds.get("status"))
        desired, ready = status.get("desiredNumberScheduled"), status.get("numberReady")
        missing = [n for n in agent_nodes if n not in daemonset_coverage(view, ds)]
        fine = isinstance(desired, int) and desired > 0 and ready == desired and not missing
        actual = f"{ready}/{desired} ready" + (f"; no ready pod on {', '.join(missing)}" if missing else "")
        if declared:
            evidence.expect(
                f"DaemonSet {_ref(ds)}",
                expected="all pods ready, one on every agent node",
                actual=actual,
                ok=fine,
            )
        elif not fine:
            evidence.warn(
                f"DaemonSet {_ref(ds)}", expected="all pods ready, one on every agent node", actual=actual
            )
        if fine:
            covering.append(_ref(ds))
    if not declared and daemonsets:
        evidence.expect(
            f"{what} on every agent node",
            expected="a recognised DaemonSet ready on every agent node",
            actual=", ".join(covering) or "none ready everywhere",
            ok=bool(covering),
        )


def check_log_collection(
    view: KubernetesView,
    policy: Policy,
    evidence: Evidence,
    namespace: str | None = None,
) -> None:
    """SA-LOG-002: a log collector runs, ready, on every node of the agent; retention declared.

    The DaemonSets are those of ``logging.collector_daemonsets``, else recognised by
    well-known names. Declared retention below the policy minimum fails; undeclared
    retention is a warning.
    """
    _check_node_agents(
        view,
        policy,
        evidence,
        namespace,
        what="log collector",
        declared=list(policy.logging.collector_daemonsets),
        known=LOG_COLLECTOR_DAEMONSETS,
    )
    retention, minimum = policy.logging.retention_days, policy.logging.retention_min_days
    if retention is None:
        evidence.warn("logging.retention_days", expected=f">= {minimum} days", actual="not declared")
    else:
        evidence.expect(
            "logging.retention_days",
            expected=f">= {minimum} days",
            actual=f"{retention} days",
            ok=retention >= minimum,
        )


def check_edr_coverage(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-EDR-001: the EDR / runtime-security DaemonSet is ready on every node of the agent.

    The DaemonSets are those of ``edr.daemonsets`` (``NAMESPACE/NAME`` or ``NAME``), else
    recognised by well-known names.
    """
    _check_node_agents(
        view,
        policy,
        evidence,
        namespace,
        what="EDR",
        declared=list(policy.edr.daemonsets),
        known=EDR_DAEMONSETS,
    )
