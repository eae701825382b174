"""pytest-html columns and row details for control tests; every value escaped."""

from __future__ import annotations

from html import escape
from typing import Any

import pytest

from pytest_secagent.results import RECORD_ATTRIBUTE

__all__ = ["HtmlColumns"]


def _record(report: pytest.TestReport) -> dict[str, Any]:
    record = getattr(report, RECORD_ATTRIBUTE, None)
    return record if isinstance(record, dict) else {}


class HtmlColumns:
    """Adds Control, Severity and Target columns and an evidence block to pytest-html."""

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        """Insert the control columns after the result column."""
        cells.insert(1, '<th class="sortable" data-column-type="control">Control</th>')
        cells.insert(2, '<th class="sortable" data-column-type="severity">Severity</th>')
        cells.insert(3, '<th class="sortable" data-column-type="target">Target</th>')

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        """Fill the control columns of one row."""
        record = _record(report)
        cells.insert(1, f'<td class="col-control">{escape(str(record.get("control_id", "")))}</td>')
        cells.insert(2, f'<td class="col-severity">{escape(str(record.get("severity", "")))}</td>')
        cells.insert(3, f'<td class="col-target">{escape(str(record.get("target", "")))}</td>')

    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        """Add the control's title, evidence and remediation to the row's details."""
        record = _record(report)
        if not record:
            return
        rows = "".join(
            "<tr>"
            f"<td>{escape(e['verdict'])}</td><td>{escape(e['name'])}</td>"
            f"<td>{escape(e['expected'])}</td><td>{escape(e['actual'])}</td>"
            "</tr>"
            for e in record.get("evidence", [])
        )
        parts = [
            '<div class="secagent-control">',
            f"<p><strong>{escape(record['control_id'])}</strong> {escape(record['title'])} "
            f"({escape(record['severity'])}, {escape(record['section'])})</p>",
            f"<p>Target: {escape(record.get('target_uri') or record.get('target') or '-')}; "
            f"outcome: {escape(record.get('outcome') or '-')}</p>",
        ]
        if record.get("detail"):
            parts.append(f"<p>Detail: {escape(record['detail'])}</p>")
        if rows:
            parts.append(
                "<table class='secagent-evidence'><tr><th>verdict</th><th>evidence</th>"
                f"<th>expected</th><th>observed</th></tr>{rows}</table>"
            )
        parts.append(f"<p>Remediation: {escape(record.get('remediation') or '-')}</p>")
        parts.append("</div>")
        data.append("".join(parts))
