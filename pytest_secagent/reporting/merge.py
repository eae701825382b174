"""Merge the results documents of several runs (machines, shards) into the document of one run.

The results are concatenated and de-duplicated by control and target: a control and target
found in two inputs with the same result (apart from its timing and test ID, as the policy's
own controls are on every machine) is kept once; with different results it is an error that
names both files. The summary, the score and the gate are computed again from the merged
results, so a merged report equals that of a single run over the same targets. The run's
metadata: the earliest start, the latest finish, the union of the targets, the union of the
failed tests that are not controls; the waivers' uses are counted again over the merged results.

Runs merge only when they used the same policy, selection, gate, evidence mode and waiver file;
anything else would not describe one run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_secagent.gate import evaluate_gate
from pytest_secagent.model import Outcome, Severity
from pytest_secagent.reporting.document import SCHEMA_VERSION, gate_record, summarize

__all__ = ["MergeError", "merge_documents"]

_FAILING = (Outcome.FAILED.value, Outcome.ERROR.value)


class MergeError(ValueError):
    """The inputs cannot be merged; the message names the files and the fix."""


def _comparable(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("timing", "nodeid")}


def _key(record: Mapping[str, Any]) -> tuple[str, str]:
    return str(record["control_id"]), str(record.get("target") or "")


def _same(
    inputs: Sequence[tuple[str, Mapping[str, Any]]], what: str, value: Any, fix: str
) -> None:
    first_name, first = inputs[0]
    expected = value(first)
    for name, document in inputs[1:]:
        if value(document) != expected:
            raise MergeError(
                f"{first_name} and {name} were run with different {what}; {fix}"
            )


def _check_compatible(inputs: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    _same(inputs, "policies", lambda d: d["run"]["policy"]["sha256"],
          "merge only runs of the same policy file")
    _same(inputs, "control selections", lambda d: d["run"]["selection"],
          "merge only runs of the same --secagent-controls, --secagent-section and --secagent-severity")
    _same(inputs, "severity gates",
          lambda d: (d["run"]["gate"] or {}).get("fail_on"),
          "merge only runs with the same --secagent-fail-on")
    _same(inputs, "gate settings",
          lambda d: (d["run"]["gate"] or {}).get("allow_errors"),
          "merge only runs with the same --secagent-allow-errors")
    _same(inputs, "evidence modes", lambda d: bool(d["run"].get("strict_evidence", False)),
          "merge only runs with the same --secagent-strict-evidence")
    _same(inputs, "waiver files",
          lambda d: ((d["run"]["waivers"] or {}).get("sha256"), (d["run"]["waivers"] or {}).get("strict")),
          "merge only runs with the same --secagent-waivers and --secagent-strict-waivers")


def _results(inputs: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    owner: dict[tuple[str, str], tuple[str, list[dict[str, Any]]]] = {}
    merged: list[dict[str, Any]] = []
    for name, document in inputs:
        mine: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for record in document["results"]:
            mine.setdefault(_key(record), []).append(dict(record))
        for key, records in mine.items():
            if key not in owner:
                owner[key] = (name, records)
                merged.extend(records)
                continue
            first_name, first_records = owner[key]
            ours = sorted((_comparable(r) for r in records), key=repr)
            theirs = sorted((_comparable(r) for r in first_records), key=repr)
            if ours != theirs:
                control, target = key
                raise MergeError(
                    f"{control} on {target or 'no target'} is in both {first_name} and {name} with "
                    "different results; merge runs over distinct targets, or leave one of the two "
                    "files out"
                )
    merged.sort(key=lambda r: (str(r["control_id"]), str(r.get("target") or ""), str(r["nodeid"])))
    return merged


def _targets(inputs: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for _, document in inputs:
        for target in document["run"]["targets"]:
            seen.setdefault(str(target["uri"]), dict(target))
    ordered = list(seen.values())
    # The policy target comes last, as in a single run.
    return sorted(ordered, key=lambda t: t["kind"] == "policy")


def _waivers(
    inputs: Sequence[tuple[str, Mapping[str, Any]]], records: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The waiver file's entries, their uses counted again over the merged (de-duplicated) results."""
    first = inputs[0][1]["run"]["waivers"]
    if first is None:
        return None
    uses: dict[int, int] = {}
    for record in records:
        waiver = record.get("waiver")
        if isinstance(waiver, Mapping) and waiver.get("status") == "applied":
            uses[int(waiver["entry"])] = uses.get(int(waiver["entry"]), 0) + 1
    ran = {str(r["control_id"]) for r in records}
    entries: dict[int, dict[str, Any]] = {}
    expired: set[int] = set()
    for _, document in inputs:
        for entry in document["run"]["waivers"]["entries"]:
            index = int(entry["entry"])
            entries.setdefault(index, dict(entry))
            if entry["status"] == "expired":
                expired.add(index)
    for index, entry in entries.items():
        entry["uses"] = uses.get(index, 0)
        if index in expired:
            entry["status"] = "expired"
        elif entry["uses"]:
            entry["status"] = "applied"
        elif entry["control"] in ran:
            entry["status"] = "unused"
        else:
            entry["status"] = "not run"
    return {**first, "entries": [entries[i] for i in sorted(entries)]}


def _exit_status(
    inputs: Sequence[tuple[str, Mapping[str, Any]]],
    records: Sequence[Mapping[str, Any]],
    gate: Mapping[str, Any] | None,
    failing_other: bool,
    strict_evidence: bool,
) -> int:
    statuses = [d["run"]["exit_status"] for _, d in inputs]
    if any(d["run"]["interrupted"] for _, d in inputs):
        return 2
    for status in statuses:
        if status in (3, 4):
            return int(status)
    if gate is not None and gate["applied"]:
        return int(gate["exit_status"])
    failing = failing_other or any(
        r["outcome"] in _FAILING or (strict_evidence and r["outcome"] == Outcome.PARTIAL.value)
        for r in records
    )
    if failing:
        return 1
    if not records and all(s == 5 for s in statuses):
        return 5
    return 0


def merge_documents(inputs: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """The document of one run made of the ``(file name, document)`` inputs; raise :class:`MergeError`."""
    if not inputs:
        raise MergeError("no results file given")
    _check_compatible(inputs)
    records = _results(inputs)
    first = inputs[0][1]["run"]
    strict_evidence = bool(first.get("strict_evidence", False))
    starts = sorted(d["run"]["started_at"] for _, d in inputs if d["run"]["started_at"])
    finishes = sorted(d["run"]["finished_at"] for _, d in inputs if d["run"]["finished_at"])
    other = sorted({n for _, d in inputs for n in d["run"]["other_test_failures"]})
    waivers = _waivers(inputs, records)
    gate = None
    if first["gate"] is not None:
        problems = (
            sum(1 for w in waivers["entries"] if w["status"] in ("expired", "unused"))
            if waivers is not None and waivers["strict"] else 0
        )
        verdict = evaluate_gate(
            ((Outcome(r["outcome"]), Severity.parse(str(r["severity"]))) for r in records),
            fail_on=Severity.parse(first["gate"]["fail_on"]),
            allow_errors=bool(first["gate"]["allow_errors"]),
            strict_evidence=strict_evidence,
            other_test_failures=len(other),
            waiver_problems=problems,
        )
        gate = gate_record(verdict, applied=all(d["run"]["gate"]["applied"] for _, d in inputs))
    waiver_failing = bool(
        waivers is not None and waivers["strict"]
        and any(w["status"] in ("expired", "unused") for w in waivers["entries"])
    )
    run = {
        "plugin": dict(first["plugin"]),
        "pytest_version": first["pytest_version"],
        "python_version": first["python_version"],
        "started_at": starts[0] if starts else None,
        "finished_at": finishes[-1] if finishes else None,
        "exit_status": 0,
        "interrupted": any(d["run"]["interrupted"] for _, d in inputs),
        "targets": _targets(inputs),
        "policy": dict(first["policy"]),
        "selection": dict(first["selection"]),
        "strict_evidence": strict_evidence,
        "gate": gate,
        "waivers": waivers,
        "other_test_failures": other,
    }
    run["exit_status"] = _exit_status(inputs, records, gate, bool(other) or waiver_failing, strict_evidence)
    return {
        "schema_version": SCHEMA_VERSION,
        "run": run,
        "summary": summarize(records),
        "results": records,
    }
