"""Scanner evidence for the agent's images: SA-VULN-001 (findings) and SA-VULN-002 (freshness).

Reads the Trivy operator's ``VulnerabilityReport`` objects (``aquasecurity.github.io/v1alpha1``)
of the agent namespace. A cluster without the operator makes both controls not
applicable, with the reason; an agent image without a report is never a pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks.images import ImageRef, parse_image
from pytest_secagent.kubernetes.checks.scope import (
    age_days,
    agent_containers,
    agent_scope,
    list_if_served,
    parse_time,
)
from pytest_secagent.kubernetes.checks.workload import judged_templates
from pytest_secagent.kubernetes.resources import VULNERABILITY_REPORTS
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.outcomes import EvidenceUnavailable, not_applicable
from pytest_secagent.policy.model import Policy

__all__ = [
    "check_image_vulnerabilities",
    "check_scan_freshness",
    "fixable_findings",
    "report_matches",
]

BLOCKING_SEVERITIES = frozenset({"CRITICAL", "HIGH"})


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _reports(view: KubernetesView, namespace: str) -> list[dict[str, Any]]:
    if not view.live:
        not_applicable("vulnerability reports are read from a live cluster (the scanner operator's objects)")
    reports = list_if_served(view, VULNERABILITY_REPORTS, namespace)
    if reports is None:
        not_applicable(
            "the Trivy operator is not installed: the cluster does not serve "
            f"{VULNERABILITY_REPORTS.plural}.{VULNERABILITY_REPORTS.group}/{VULNERABILITY_REPORTS.version}"
        )
    return reports


def report_matches(report: Mapping[str, Any], image: ImageRef) -> bool:
    """Tell whether a VulnerabilityReport is about ``image`` (same repository, digest or tag)."""
    body = _map(report.get("report"))
    artifact = _map(body.get("artifact"))
    server = str(_map(body.get("registry")).get("server", ""))
    repository = str(artifact.get("repository", ""))
    scanned = parse_image(f"{server}/{repository}" if server else repository)
    if scanned.name != image.name:
        return False
    digest, tag = artifact.get("digest"), artifact.get("tag")
    if image.digest and digest:
        return bool(image.digest == digest)
    return bool(tag) and tag == (image.tag or "latest")


def fixable_findings(report: Mapping[str, Any]) -> tuple[int, str]:
    """Return the number of fixable Critical/High findings and how it was counted.

    A report with neither a ``vulnerabilities`` list nor summary counts raises
    ``EvidenceUnavailable``: it says nothing about the image.
    """
    body = _map(report.get("report"))
    vulnerabilities = body.get("vulnerabilities")
    if isinstance(vulnerabilities, list):
        count = sum(
            1
            for v in map(_map, vulnerabilities)
            if str(v.get("severity", "")).upper() in BLOCKING_SEVERITIES and v.get("fixedVersion")
        )
        return count, "fixable"
    summary = _map(body.get("summary"))
    values: list[object] = [summary.get("criticalCount"), summary.get("highCount")]
    counts = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    if len(counts) != 2:
        name = _map(report.get("metadata")).get("name", "?")
        raise EvidenceUnavailable(
            f"VulnerabilityReport {name} lists no vulnerabilities and its summary has no "
            "criticalCount/highCount, so its findings are unknown"
        )
    return sum(counts), "from the summary (fixability unknown)"


def _agent_images(
    view: KubernetesView, policy: Policy, namespace: str | None, evidence: Evidence
) -> tuple[str, dict[str, ImageRef]]:
    scope = agent_scope(policy, namespace)
    templates = judged_templates(view, scope, evidence)
    images = {}
    for ref in agent_containers(templates):
        reference = str(ref.container.get("image") or "")
        if reference:
            images[reference] = parse_image(reference)
    return scope.namespace, images


def _report_time(report: Mapping[str, Any]) -> dt.datetime | None:
    return parse_time(_map(report.get("report")).get("updateTimestamp")) or parse_time(
        _map(report.get("metadata")).get("creationTimestamp")
    )


def check_image_vulnerabilities(
    view: KubernetesView, policy: Policy, evidence: Evidence, namespace: str | None = None
) -> None:
    """SA-VULN-001: every agent image has a report with zero fixable Critical/High findings."""
    ns, images = _agent_images(view, policy, namespace, evidence)
    reports = _reports(view, ns)
    for reference, image in sorted(images.items()):
        matching = [r for r in reports if report_matches(r, image)]
        if not matching:
            evidence.expect(
                f"image {reference}", expected="a VulnerabilityReport", actual="none: not scanned", ok=False
            )
            continue
        newest = max(
            matching, key=lambda r: _report_time(r) or dt.datetime.min.replace(tzinfo=dt.timezone.utc)
        )
        count, how = fixable_findings(newest)
        name = str(_map(newest.get("metadata")).get("name", ""))
        evidence.expect(
            f"image {reference} (VulnerabilityReport {name})",
            expected="0 fixable Critical/High findings",
            actual=f"{count} Critical/High {how}",
            ok=count == 0,
        )


def check_scan_freshness(
    view: KubernetesView,
    policy: Policy,
    evidence: Evidence,
    namespace: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    """SA-VULN-002: every agent image was scanned within ``vulnerability.scan_max_age_days``.

    The scan time is the report's ``updateTimestamp`` (else its creation time). The
    policy's declared ``last_host_scan`` is checked too when present (a warning when absent:
    host scans are not visible in the cluster).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    limit = policy.vulnerability.scan_max_age_days
    ns, images = _agent_images(view, policy, namespace, evidence)
    reports = _reports(view, ns)
    for reference, image in sorted(images.items()):
        times = [t for r in reports if report_matches(r, image) and (t := _report_time(r)) is not None]
        if not times:
            evidence.expect(
                f"image {reference} last scan", expected=f"within {limit} days", actual="never", ok=False
            )
            continue
        newest = max(times)
        days = age_days(newest, now)
        evidence.expect(
            f"image {reference} last scan",
            expected=f"within {limit} days",
            actual=f"{newest:%Y-%m-%d %H:%M}Z ({days:.1f} days ago)",
            ok=days <= limit,
        )
    host_scan = policy.vulnerability.last_host_scan
    if host_scan is None:
        evidence.warn("vulnerability.last_host_scan", expected=f"within {limit} days", actual="not declared")
    else:
        days_ago = (now.date() - host_scan).days
        evidence.expect(
            "vulnerability.last_host_scan",
            expected=f"within {limit} days",
            actual=f"{host_scan} ({days_ago} days ago)",
            ok=0 <= days_ago <= limit,
        )
