"""pytest-html: a compliance summary on top, control columns and row details; every value escaped.

Text that comes from a target (pod names, annotations, banners) reaches the report only
through :func:`html.escape`, and so does the test ID, which pytest-html itself inserts raw.
"""

from __future__ import annotations

import re
from collections import Counter
from html import escape
from typing import Any

import pytest

from pytest_secagent.model import Outcome, Severity
from pytest_secagent.results import RECORD_ATTRIBUTE
from pytest_secagent.scoring import SCORED_OUTCOMES, format_score, score

__all__ = ["HtmlColumns"]

_SUMMARY_PLUGIN = "secagent-summary"
_TEST_ID_CELL = re.compile(r'^<td class="col-testId">(.*)</td>$', re.DOTALL)
_OUTCOMES = (
    ("passed", Outcome.PASSED),
    ("partial", Outcome.PARTIAL),
    ("failed", Outcome.FAILED),
    ("waived", Outcome.WAIVED),
    ("errors", Outcome.ERROR),
    ("not applicable", Outcome.NOT_APPLICABLE),
    ("not observable", Outcome.NOT_OBSERVABLE),
    ("skipped", Outcome.SKIPPED),
)
_STYLE = (
    "<style>.secagent-summary table{border-collapse:collapse;margin:0.5em 0}"
    ".secagent-summary td,.secagent-summary th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    ".secagent-summary td:first-child,.secagent-summary th:first-child{text-align:left}"
    ".secagent-gate-fail{color:#b00;font-weight:bold}.secagent-gate-pass{color:#070;font-weight:bold}"
    "</style>"
)


def _record(report: pytest.TestReport) -> dict[str, Any]:
    record = getattr(report, RECORD_ATTRIBUTE, None)
    return record if isinstance(record, dict) else {}


def _e(value: object) -> str:
    return escape(str(value if value is not None else ""))


def _counts_table(title: str, rows: list[tuple[str, Counter[Outcome]]], scored: bool) -> str:
    head = "".join(f"<th>{_e(name)}</th>" for name, _ in _OUTCOMES)
    body = []
    for label, counts in rows:
        cells = "".join(f"<td>{counts[o]}</td>" for _, o in _OUTCOMES)
        extra = f"<td>{_e(format_score(score(counts)))}</td>" if scored else ""
        body.append(f"<tr><td>{_e(label)}</td>{extra}{cells}</tr>")
    score_head = "<th>score</th>" if scored else ""
    return (
        f"<table class='secagent-{_e(title)}'><tr><th>{_e(title)}</th>{score_head}{head}</tr>"
        + "".join(body)
        + "</table>"
    )


class HtmlColumns:
    """Adds the compliance summary, the Control/Severity/Target/Outcome columns and row details."""

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        """Put the compliance summary above pytest-html's own counts."""
        results = session.config.pluginmanager.get_plugin(_SUMMARY_PLUGIN)
        if results is None or not results.results:
            return
        sections: dict[str, Counter[Outcome]] = results.counts_by_section()
        severities: dict[Severity, Counter[Outcome]] = results.counts_by_severity()
        total: Counter[Outcome] = results.totals()
        scored = sum(total[o] for o in SCORED_OUTCOMES)
        parts = [
            _STYLE,
            '<div class="secagent-summary"><h2>Security baseline compliance</h2>',
            f"<p>Score: <strong>{_e(format_score(score(total)))}</strong> "
            f"({total[Outcome.PASSED]} passed of {scored} scored; waived failures and errors "
            "count against it). "
            f"Waived: {total[Outcome.WAIVED]}; not applicable: {total[Outcome.NOT_APPLICABLE]}; "
            f"errors (could not verify): {total[Outcome.ERROR]}.</p>",
        ]
        if results.interrupted:
            parts.append(
                '<p class="secagent-gate-fail">Interrupted: the run did not finish, so these results '
                "are incomplete (exit status 2).</p>"
            )
        gate = results.gate
        if gate is not None:
            css = "secagent-gate-pass" if gate.status == 0 else "secagent-gate-fail"
            parts.append(f'<p class="{css}">Gate: {_e(results.gate_note or gate.describe())}</p>')
        parts.append(_counts_table("section", list(sections.items()), scored=True))
        parts.append(
            _counts_table("severity", [(s.value, c) for s, c in severities.items() if c], scored=False)
        )
        waived = [r for r in results.ordered() if r.outcome is Outcome.WAIVED and r.waiver]
        if waived:
            rows = "".join(
                f"<tr><td>{_e(r.control_id)}</td><td>{_e(r.target or '-')}</td>"
                f"<td>{_e(r.waiver['owner'])}</td><td>{_e(r.waiver['expires'])}</td>"
                f"<td>{_e(r.waiver['reason'])}</td></tr>"
                for r in waived
            )
            parts.append(
                "<table class='secagent-waived'><tr><th>waived control</th><th>target</th><th>owner</th>"
                f"<th>expires</th><th>reason</th></tr>{rows}</table>"
            )
        problems = [s for s in results.waiver_states if s.status.value in ("expired", "unused", "not run")]
        if problems:
            items = "".join(
                f"<li>{_e(s.status.value)}: {_e(s.waiver.label)} {_e(s.waiver.control)} on "
                f"{_e(s.waiver.target)} (owner {_e(s.waiver.owner)}, expires {_e(s.waiver.expires)})</li>"
                for s in problems
            )
            parts.append(f"<p>Waivers not applied:</p><ul class='secagent-waivers'>{items}</ul>")
        parts.append("</div>")
        prefix.append("".join(parts))

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        """Insert the control columns after the result column."""
        cells.insert(1, '<th class="sortable" data-column-type="control">Control</th>')
        cells.insert(2, '<th class="sortable" data-column-type="severity">Severity</th>')
        cells.insert(3, '<th class="sortable" data-column-type="target">Target</th>')
        cells.insert(4, '<th class="sortable" data-column-type="outcome">Outcome</th>')

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        """Fill the control columns of one row, and escape the test ID pytest-html inserts raw."""
        for index, cell in enumerate(cells):
            found = _TEST_ID_CELL.match(cell)
            if found is not None:
                cells[index] = f'<td class="col-testId">{escape(found.group(1))}</td>'
        record = _record(report)
        cells.insert(1, f'<td class="col-control">{_e(record.get("control_id"))}</td>')
        cells.insert(2, f'<td class="col-severity">{_e(record.get("severity"))}</td>')
        cells.insert(3, f'<td class="col-target">{_e(record.get("target"))}</td>')
        cells.insert(4, f'<td class="col-outcome">{_e(record.get("outcome"))}</td>')

    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        """Add the control's title, evidence, waiver and remediation to the row's details."""
        record = _record(report)
        if not record:
            return
        rows = "".join(
            "<tr>"
            f"<td>{_e(e['verdict'])}</td><td>{_e(e['name'])}</td>"
            f"<td>{_e(e['expected'])}</td><td>{_e(e['actual'])}</td>"
            "</tr>"
            for e in record.get("evidence", [])
        )
        parts = [
            '<div class="secagent-control">',
            f"<p><strong>{_e(record['control_id'])}</strong> {_e(record['title'])} "
            f"({_e(record['severity'])}, {_e(record['section'])})</p>",
            f"<p>Target: {_e(record.get('target_uri') or record.get('target') or '-')}; "
            f"outcome: {_e(record.get('outcome') or '-')}</p>",
        ]
        if record.get("detail"):
            parts.append(f"<p>Detail: {_e(record['detail'])}</p>")
        waiver = record.get("waiver")
        if isinstance(waiver, dict):
            state = "waived" if waiver.get("status") == "applied" else "waiver EXPIRED, the failure counts"
            parts.append(
                f"<p class='secagent-waiver'>{_e(state)}: owner {_e(waiver['owner'])}, expires "
                f"{_e(waiver['expires'])}, target pattern {_e(waiver['target'])}; reason: "
                f"{_e(waiver['reason'])}</p>"
            )
        if rows:
            parts.append(
                "<table class='secagent-evidence'><tr><th>verdict</th><th>evidence</th>"
                f"<th>expected</th><th>observed</th></tr>{rows}</table>"
            )
        parts.append(f"<p>Remediation: {_e(record.get('remediation') or '-')}</p>")
        parts.append("</div>")
        data.append("".join(parts))
