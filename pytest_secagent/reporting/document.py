"""The JSON results document: one record per control and target plus the run's metadata.

Every report format is rendered from this one document, by pure functions, so a report
written at the end of a run and one re-rendered later (or merged from several runs by
``secagent report``) say the same thing.

The document follows the versioned JSON Schema shipped in the package
(``pytest_secagent/schemas/results-v1.json``, see :func:`schema`). ``schema_version``
changes only when a field is removed, renamed or changes meaning; new fields may be added
(and the shipped schema with them).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_secagent._version import __version__
from pytest_secagent.catalog import load_catalog
from pytest_secagent.model import Outcome, Severity
from pytest_secagent.safetext import printable
from pytest_secagent.scoring import score

if TYPE_CHECKING:
    import pytest

    from pytest_secagent.gate import GateVerdict
    from pytest_secagent.options import Settings
    from pytest_secagent.summary import ComplianceResults, ControlResult

__all__ = [
    "SCHEMA_RESOURCE",
    "SCHEMA_VERSION",
    "build_document",
    "dump_json",
    "gate_record",
    "schema",
    "schema_errors",
    "summarize",
    "write_json",
]

SCHEMA_VERSION = 1
SCHEMA_RESOURCE = "schemas/results-v1.json"


def schema() -> dict[str, Any]:
    """The JSON Schema of the results document, as shipped in the package."""
    text = resources.files("pytest_secagent").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def schema_errors(document: object, limit: int = 3) -> list[str]:
    """Where ``document`` breaks the shipped schema: at most ``limit`` messages, empty when valid."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    messages = []
    for error in errors[:limit]:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        messages.append(f"at {where}: {error.message}")
    return messages


def _utc(timestamp: float) -> str | None:
    if not timestamp:
        return None
    moment = dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _outcomes(counts: Counter[Outcome]) -> dict[str, int]:
    return {o.value: counts[o] for o in Outcome}


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``summary`` of a document from its result records: outcomes, score, by severity and section.

    Sections come in catalog order, sections the catalog does not know after them in the
    order of the records; severities critical first.
    """
    totals: Counter[Outcome] = Counter()
    by_severity = {s: Counter[Outcome]() for s in sorted(Severity, key=lambda s: -s.rank)}
    by_section = {section: Counter[Outcome]() for section in load_catalog().sections}
    for record in records:
        outcome = Outcome(record["outcome"])
        totals[outcome] += 1
        by_severity[Severity.parse(str(record["severity"]))][outcome] += 1
        by_section.setdefault(str(record["section"]), Counter())[outcome] += 1
    return {
        "outcomes": _outcomes(totals),
        "score": score(totals),
        "by_severity": {severity.value: _outcomes(counts) for severity, counts in by_severity.items()},
        "by_section": [
            {"section": section, "score": score(counts), "outcomes": _outcomes(counts)}
            for section, counts in by_section.items()
            if counts
        ],
    }


def gate_record(gate: GateVerdict | None, *, applied: bool) -> dict[str, Any] | None:
    """The ``run.gate`` object of a gate verdict (``None`` without a gate)."""
    if gate is None:
        return None
    return {
        "fail_on": gate.fail_on.value,
        "allow_errors": gate.allow_errors,
        "applied": applied,
        "status": gate.status.name.lower().replace("_", "-"),
        "exit_status": int(gate.status),
        "gating_failures": gate.gating_failures,
        "failures_below_threshold": gate.other_control_failures,
        "errors": gate.errors,
        "other_test_failures": gate.other_test_failures,
        "waiver_problems": gate.waiver_problems,
        "reasons": gate.reasons,
    }


def _waivers(results: ComplianceResults, settings: Settings) -> dict[str, Any] | None:
    waivers = settings.waivers
    if waivers is None:
        return None
    return {
        "source": waivers.source,
        "sha256": waivers.sha256,
        "strict": settings.strict_waivers,
        "entries": [
            {**state.waiver.as_dict(state.status.value), "uses": state.uses}
            for state in results.waiver_states
        ],
    }


def _record(result: ControlResult) -> dict[str, Any]:
    record = result.record
    return {
        "nodeid": result.nodeid,
        "control_id": record["control_id"],
        "title": record["title"],
        "section": record["section"],
        "baseline": record.get("baseline") or "",
        "severity": record["severity"],
        "target": record.get("target") or None,
        "target_uri": record.get("target_uri") or None,
        "outcome": result.outcome.value,
        "detail": record.get("detail") or "",
        "evidence": [
            {
                "name": e["name"], "expected": e["expected"], "actual": e["actual"], "verdict": e["verdict"],
                **({"location": e["location"]} if e.get("location") else {}),
            }
            for e in record.get("evidence", [])
        ],
        "remediation": record.get("remediation") or "",
        "references": list(record.get("references", [])),
        "waiver": result.waiver,
        "timing": {
            "started_at": _utc(result.start),
            "finished_at": _utc(result.stop),
            "duration_seconds": round(result.duration, 6),
        },
    }


def build_document(results: ComplianceResults, settings: Settings, config: pytest.Config) -> dict[str, Any]:
    """The results document of a finished run."""
    policy = settings.policy
    records = [_record(r) for r in results.ordered()]
    return {
        "schema_version": SCHEMA_VERSION,
        "run": {
            "plugin": {"name": "pytest-secagent", "version": __version__},
            "pytest_version": metadata.version("pytest"),
            "python_version": platform.python_version(),
            "started_at": _utc(results.started),
            "finished_at": _utc(results.finished),
            "exit_status": results.exit_status,
            "interrupted": results.interrupted,
            "targets": [
                {"uri": printable(t.uri), "id": printable(t.id), "kind": t.kind.value}
                for t in settings.all_targets
            ],
            "policy": {
                "source": policy.source,
                "sha256": policy.sha256 or None,
                "from": settings.sources.get("policy", ""),
            },
            "selection": {
                "controls": list(settings.controls),
                "sections": list(settings.sections),
                "min_severity": settings.min_severity.value if settings.min_severity else None,
            },
            "strict_evidence": settings.strict_evidence,
            "gate": gate_record(results.gate, applied=not results.gate_note),
            "waivers": _waivers(results, settings),
            "other_test_failures": sorted(results.other_failures),
        },
        "summary": summarize(records),
        "results": records,
    }


def dump_json(document: Mapping[str, Any]) -> str:
    """The document as the text of a JSON results file."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` atomically: a temporary file in the same folder, renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(dump_json(document))
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
