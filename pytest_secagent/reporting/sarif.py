"""SARIF 2.1.0: the findings of a results document, for code scanning and code review.

* One rule per control in the document: its title, the remediation and references as help,
  its severity as the default level and as ``security-severity`` (critical 9.5, high 8.0,
  medium 5.5, low 3.0), and its section as a tag.
* One result per failed, waived or errored control and target; the message is the one-line
  finding. A failure (and a waived one) is of kind ``fail`` at the level of its severity
  (critical and high ``error``, medium ``warning``, low ``note``). A control that could not be
  verified is of kind ``review``: nobody knows whether it holds, and SARIF gives results of
  any kind but ``fail`` the level ``none``; the rule still carries the severity.
* A pass on partial evidence is not a finding and is left out, unless the run used
  ``--secagent-strict-evidence``, where it counts as a failure.
* Where the evidence says in which file and on which line the observed thing is written
  (``FILE:LINE``, rendered manifests), the result points there, relative to ``%SRCROOT%``;
  other results get a logical location naming the target and the control.
* A waived failure carries an external, accepted suppression with the waiver's reason, owner
  and expiry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from pytest_secagent.model import Outcome
from pytest_secagent.reporting.findings import evidence_line, finding, target_label

__all__ = ["SARIF_SCHEMA_URI", "SECURITY_SEVERITY", "dump_sarif", "render_sarif"]

SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "SRCROOT"
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
#: Results with file locations beyond this many point at the first ones; the rest is in the JSON.
MAX_LOCATIONS = 10


def _rule(record: Mapping[str, Any]) -> dict[str, Any]:
    severity = str(record["severity"])
    references = [str(r) for r in record.get("references", [])]
    remediation = str(record.get("remediation") or "")
    help_text = f"Remediation: {remediation or '-'}"
    help_markdown = f"**Remediation:** {remediation or '-'}"
    if references:
        help_text += "\nReferences:\n" + "\n".join(f"- {r}" for r in references)
        help_markdown += "\n\n**References:**\n\n" + "\n".join(f"- <{r}>" for r in references)
    rule: dict[str, Any] = {
        "id": record["control_id"],
        "name": str(record["control_id"]).replace("-", ""),
        "shortDescription": {"text": record["title"]},
        "fullDescription": {
            "text": f"{record['title']} ({record['section']}"
            + (f"; baseline: {record['baseline']}" if record.get("baseline") else "")
            + ")"
        },
        "help": {"text": help_text, "markdown": help_markdown},
        "defaultConfiguration": {"level": _LEVEL.get(severity, "warning")},
        "properties": {
            "security-severity": SECURITY_SEVERITY.get(severity, "5.5"),
            "severity": severity,
            "section": record["section"],
            "tags": ["security", "compliance", str(record["section"]), f"severity:{severity}"],
        },
    }
    web = [r for r in references if r.startswith(("https://", "http://"))]
    if web:
        rule["helpUri"] = web[0]
    return rule


def _split_location(location: str) -> tuple[str, int | None]:
    path, _, line = location.rpartition(":")
    if path and line.isdigit() and int(line) >= 1:
        return path, int(line)
    return location, None


def _artifact(path: str, srcroot: Path) -> dict[str, Any]:
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            relative = candidate.resolve().relative_to(srcroot.resolve())
        except ValueError:
            return {"uri": candidate.as_uri()}
        return {"uri": quote(relative.as_posix()), "uriBaseId": SRCROOT}
    posix = PurePosixPath(*candidate.parts)
    return {"uri": quote(str(posix).removeprefix("./")), "uriBaseId": SRCROOT}


def _locations(record: Mapping[str, Any], srcroot: Path) -> list[dict[str, Any]]:
    evidence = [e for e in record.get("evidence", []) if e.get("location")]
    failing = [e for e in evidence if e.get("verdict") == "fail"]
    chosen = failing or evidence
    seen: dict[str, None] = {}
    for entry in chosen:
        seen.setdefault(str(entry["location"]), None)
    locations = []
    for location in list(seen)[:MAX_LOCATIONS]:
        path, line = _split_location(location)
        physical: dict[str, Any] = {"artifactLocation": _artifact(path, srcroot)}
        if line is not None:
            physical["region"] = {"startLine": line}
        locations.append({"physicalLocation": physical})
    if locations:
        return locations
    target = target_label(record)
    return [{
        "logicalLocations": [{
            "name": f"{record['control_id']} on {target}",
            "fullyQualifiedName": f"{record.get('target_uri') or target}::{record['control_id']}",
            "kind": "resource",
        }]
    }]


def _result(
    record: Mapping[str, Any], rule_index: int, srcroot: Path, strict_evidence: bool
) -> dict[str, Any]:
    outcome = str(record["outcome"])
    severity = str(record["severity"])
    result: dict[str, Any] = {"ruleId": record["control_id"], "ruleIndex": rule_index}
    if outcome == Outcome.ERROR.value:
        result["kind"] = "review"
        result["level"] = "none"
    else:
        result["kind"] = "fail"
        result["level"] = _LEVEL.get(severity, "warning")
    message = finding(record)
    if outcome == Outcome.PARTIAL.value and strict_evidence:
        message += f" -- {record.get('detail') or 'passed on partial evidence'}"
    result["message"] = {"text": message}
    result["locations"] = _locations(record, srcroot)
    result["partialFingerprints"] = {
        "secagentFinding/v1": f"{record['control_id']}:{record.get('target_uri') or target_label(record)}"
    }
    waiver = record.get("waiver")
    if outcome == Outcome.WAIVED.value and isinstance(waiver, Mapping):
        result["suppressions"] = [{
            "kind": "external",
            "status": "accepted",
            "justification": str(waiver["reason"]),
            "properties": {
                "owner": waiver["owner"],
                "expires": waiver["expires"],
                "waiverEntry": waiver["entry"],
                "waiverLine": waiver["line"],
                "waiverTarget": waiver["target"],
            },
        }]
    result["properties"] = {
        "outcome": outcome,
        "severity": severity,
        "section": record["section"],
        "target": record.get("target"),
        "targetUri": record.get("target_uri"),
        "evidence": [evidence_line(e) for e in record.get("evidence", [])],
    }
    return result


def _is_finding(record: Mapping[str, Any], strict_evidence: bool) -> bool:
    outcome = record["outcome"]
    if outcome in (Outcome.FAILED.value, Outcome.WAIVED.value, Outcome.ERROR.value):
        return True
    return strict_evidence and outcome == Outcome.PARTIAL.value


def render_sarif(document: Mapping[str, Any], srcroot: Path) -> dict[str, Any]:
    """The SARIF 2.1.0 log of a results document; file locations relative to ``srcroot``."""
    run = document["run"]
    records = list(document["results"])
    strict_evidence = bool(run.get("strict_evidence", False))
    rules: dict[str, dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: str(r["control_id"])):
        rules.setdefault(str(record["control_id"]), _rule(record))
    index = {control: i for i, control in enumerate(rules)}
    results = [
        _result(r, index[str(r["control_id"])], srcroot, strict_evidence)
        for r in records
        if _is_finding(r, strict_evidence)
    ]
    invocation: dict[str, Any] = {
        "executionSuccessful": not run["interrupted"] and run["exit_status"] in (0, 1, 6),
    }
    if run.get("exit_status") is not None:
        invocation["exitCode"] = run["exit_status"]
    if run.get("started_at"):
        invocation["startTimeUtc"] = run["started_at"]
    if run.get("finished_at"):
        invocation["endTimeUtc"] = run["finished_at"]
    root_uri = srcroot.resolve().as_uri().rstrip("/") + "/"
    gate = run.get("gate")
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "pytest-secagent",
                    "version": run["plugin"]["version"],
                    "rules": list(rules.values()),
                }
            },
            "invocations": [invocation],
            "originalUriBaseIds": {SRCROOT: {"uri": root_uri}},
            "results": results,
            "properties": {
                "targets": [t["uri"] for t in run["targets"]],
                "policy": run["policy"],
                "score": document["summary"]["score"],
                "outcomes": document["summary"]["outcomes"],
                "gate": gate["status"] if gate else None,
                "interrupted": run["interrupted"],
            },
        }],
    }


def dump_sarif(document: Mapping[str, Any], srcroot: Path) -> str:
    """The SARIF log of a results document as the text of a ``.sarif`` file."""
    return json.dumps(render_sarif(document, srcroot), indent=2, ensure_ascii=False) + "\n"
