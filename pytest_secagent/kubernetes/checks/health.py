"""Agent health observability: SA-LOG-005 (probes, and live readiness and restarts)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.scope import age_days, agent_scope, parse_time
from pytest_secagent.kubernetes.checks.workload import judged_templates
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.kubernetes.workloads import containers
from pytest_secagent.policy.model import Policy

__all__ = ["BATCH_OWNERS", "MAX_RESTARTS_PER_DAY", "check_probes"]

BATCH_OWNERS = frozenset(
    {"Job", "CronJob", "Workflow", "WorkflowTemplate", "CronWorkflow", "ClusterWorkflowTemplate"}
)
"""Owners of run-to-completion pods, which need no liveness or readiness probe."""
MAX_RESTARTS_PER_DAY = 5
PROBES = ("livenessProbe", "readinessProbe")


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _recent_restarts(pod: Mapping[str, Any], now: dt.datetime) -> int:
    """Count restarts, unless the last one ended more than a day ago (then none are recent)."""
    total = 0
    for status in _map(pod.get("status")).get("containerStatuses") or []:
        entry = _map(status)
        count = entry.get("restartCount")
        if not isinstance(count, int) or count == 0:
            continue
        finished = parse_time(_map(_map(entry.get("lastState")).get("terminated")).get("finishedAt"))
        if finished is not None and age_days(finished, now) > 1:
            continue
        total += count
    return total


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = _map(pod.get("status")).get("conditions") or []
    return any(_map(c).get("type") == "Ready" and _map(c).get("status") == "True" for c in conditions)


def _desired_pods(kind: str, workload: Mapping[str, Any]) -> int:
    """How many pods a long-running controller asks for (0 for anything else)."""
    if kind == "DaemonSet":
        wanted = _map(workload.get("status")).get("desiredNumberScheduled")
        return wanted if isinstance(wanted, int) else 0
    if kind in ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"):
        replicas = _map(workload.get("spec")).get("replicas")
        return 1 if replicas is None else replicas if isinstance(replicas, int) else 0
    return 0


def check_probes(
    view: KubernetesView,
    policy: Policy,
    evidence: Evidence,
    namespace: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    """SA-LOG-005: long-running agent containers have liveness and readiness probes.

    On a live cluster each agent pod must also be Ready with fewer than five restarts in
    the last day, and a controller that asks for pods must have some running. Pods of
    Jobs and CronJobs run to completion and are only recorded.
    """
    scope = agent_scope(policy, namespace)
    now = now or dt.datetime.now(dt.timezone.utc)
    templates = judged_templates(view, scope, evidence)
    for template in templates:
        if template.owner.kind in BATCH_OWNERS:
            evidence.observe(f"{template.owner}", "runs to completion: no probes needed")
            continue
        for kind, container in containers(template.spec):
            if kind != "container":
                continue
            missing = [probe for probe in PROBES if not container.get(probe)]
            evidence.expect(
                f"{template.owner.kind}/{template.owner.name} container {container.get('name')}: probes",
                expected="livenessProbe and readinessProbe",
                actual="missing " + ", ".join(missing) if missing else "both defined",
                ok=not missing,
            )
        desired = _desired_pods(template.owner.kind, template.source)
        if view.live and not template.owner.note and not template.running and desired:
            evidence.expect(
                f"{template.owner}: running pods",
                expected=f"{desired} Ready",
                actual="none running",
                ok=False,
            )
        for pod in template.running:
            pod_name = str(_map(pod.get("metadata")).get("name"))
            restarts = _recent_restarts(pod, now)
            ready = _ready(pod)
            evidence.expect(
                f"Pod {pod_name}: health",
                expected=f"Ready, fewer than {MAX_RESTARTS_PER_DAY} restarts in the last day",
                actual=f"{'Ready' if ready else 'not Ready'}, {restarts} recent restarts",
                ok=ready and restarts < MAX_RESTARTS_PER_DAY,
            )
