"""The words every report uses for a result: the one-line finding, evidence lines, orderings.

A finding leads with the control, its severity and the target, then says what was expected
and what was observed; it is built from the record's fields, never from a Python repr.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pytest_secagent.model import Outcome, Severity

__all__ = [
    "OUTCOME_ORDER",
    "SEVERITY_ORDER",
    "evidence_line",
    "finding",
    "first_line",
    "result_sort_key",
    "target_label",
    "unmet_text",
    "waiver_properties",
]

#: Most severe first.
SEVERITY_ORDER = tuple(sorted(Severity, key=lambda s: -s.rank))
#: The order a reader acts on: what failed, what could not be checked, what passed only in part.
OUTCOME_ORDER = (
    Outcome.FAILED,
    Outcome.ERROR,
    Outcome.PARTIAL,
    Outcome.WAIVED,
    Outcome.PASSED,
    Outcome.NOT_OBSERVABLE,
    Outcome.SKIPPED,
    Outcome.NOT_APPLICABLE,
)
_OUTCOME_RANK = {o.value: i for i, o in enumerate(OUTCOME_ORDER)}
_SEVERITY_RANK = {s.value: i for i, s in enumerate(SEVERITY_ORDER)}


_QUALIFIED_EXCEPTION = re.compile(r"^(?:[a-z_]\w*\.)+[A-Z]\w*: ")


def first_line(text: str) -> str:
    r"""The first non-empty line of ``text``, stripped (also where the newline is shown as ``\\x0a``)."""
    for line in str(text).replace("\\x0a", "\n").splitlines():
        if line.strip():
            return _QUALIFIED_EXCEPTION.sub("", line.strip())
    return ""


def target_label(record: Mapping[str, Any]) -> str:
    """The target's ID, or ``-`` for a control that had no target of its kinds."""
    return str(record.get("target") or "-")


def result_sort_key(record: Mapping[str, Any]) -> tuple[int, int, str, str, str]:
    """Severity first (critical first), then outcome (failed, error, partial, waived, passed, ...)."""
    return (
        _SEVERITY_RANK.get(str(record["severity"]), len(_SEVERITY_RANK)),
        _OUTCOME_RANK.get(str(record["outcome"]), len(_OUTCOME_RANK)),
        str(record["control_id"]),
        str(record.get("target") or ""),
        str(record.get("nodeid") or ""),
    )


def evidence_line(entry: Mapping[str, Any]) -> str:
    """One evidence entry as a line: verdict, name, expected and observed, and where it is written."""
    verdict = str(entry["verdict"])
    if verdict == "info":
        text = f"[info] {entry['name']}: {entry['actual']}"
    elif verdict == "unobserved":
        text = f"[unobserved] {entry['name']}: expected {entry['expected']}; not observed: {entry['actual']}"
    else:
        text = f"[{verdict}] {entry['name']}: expected {entry['expected']}; observed {entry['actual']}"
    location = entry.get("location")
    return f"{text} (at {location})" if location else text


def unmet_text(name: str, expected: str, actual: str, more: int) -> str:
    """The first unmet expectation as a finding says it, with how many more did not hold."""
    extra = f" (and {more} more unmet)" if more > 0 else ""
    return f"{name}: expected {expected}; observed {actual}{extra}"


def waiver_properties(waiver: Mapping[str, Any] | None) -> list[tuple[str, object]]:
    """The JUnit properties of a waiver that matched a failure (applied or expired)."""
    if not waiver:
        return []
    return [
        (f"waiver_{key}", waiver[key]) for key in ("status", "reason", "owner", "expires", "target", "entry")
    ]


def _unmet(record: Mapping[str, Any]) -> str:
    failed = [e for e in record.get("evidence", []) if e.get("verdict") == "fail"]
    if not failed:
        return ""
    first = failed[0]
    return unmet_text(str(first["name"]), str(first["expected"]), str(first["actual"]), len(failed) - 1)


def finding(record: Mapping[str, Any]) -> str:
    """The one-line finding of a result, as every report leads with it.

    ``SA-NET-003 [critical] on local: <first unmet expectation: expected X, observed Y>`` for a
    failure (and a waived one); ``could not verify SA-X on T: <reason>`` for an error; the
    control's title and the reason for the other outcomes.
    """
    control = str(record["control_id"])
    target = target_label(record)
    detail = first_line(str(record.get("detail") or ""))
    outcome = str(record["outcome"])
    if outcome == Outcome.ERROR.value:
        if detail.startswith("could not verify"):
            return detail
        return f"could not verify {control} on {target}: {detail or 'no reason was recorded'}"
    head = f"{control} [{record['severity']}] on {target}"
    if outcome in (Outcome.FAILED.value, Outcome.WAIVED.value):
        unmet = _unmet(record)
        if unmet:
            return f"{head}: {unmet}"
        return f"{head}: {record['title']}" + (f": {detail}" if detail else "")
    if outcome in (Outcome.PASSED.value,):
        return f"{head}: {record['title']}"
    return f"{head}: {record['title']}" + (f": {detail}" if detail else "")
