"""Every secagent report, rendered by pure functions from the one JSON results document.

The plugin builds the document at the end of a run (:func:`build_document`) and writes each
format asked for from it (:func:`render_reports`, :func:`write_reports`); ``secagent report``
renders the same formats from one or more saved documents (:func:`merge_documents`), so a
merged report equals a single run's by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_secagent.reporting.document import build_document, dump_json, schema, schema_errors, summarize
from pytest_secagent.reporting.html_report import render_html
from pytest_secagent.reporting.junit import render_junit
from pytest_secagent.reporting.merge import MergeError, merge_documents
from pytest_secagent.reporting.sarif import dump_sarif, render_sarif
from pytest_secagent.reporting.write import ReportWriteError, write_reports

__all__ = [
    "FORMATS",
    "FORMAT_LABELS",
    "MergeError",
    "ReportWriteError",
    "build_document",
    "merge_documents",
    "render_html",
    "render_junit",
    "render_report",
    "render_reports",
    "render_sarif",
    "schema",
    "schema_errors",
    "summarize",
    "write_reports",
]

#: The report formats, in the order they are written and listed.
FORMATS = ("json", "sarif", "junit", "html")
#: How the terminal names each format.
FORMAT_LABELS = {
    "json": "JSON results",
    "sarif": "SARIF findings",
    "junit": "JUnit XML",
    "html": "HTML report",
}


def render_report(kind: str, document: Mapping[str, Any], srcroot: Path) -> str:
    """The text of one report format (``json``, ``sarif``, ``junit`` or ``html``) of a document."""
    if kind == "json":
        return dump_json(document)
    if kind == "sarif":
        return dump_sarif(document, srcroot)
    if kind == "junit":
        return render_junit(document)
    if kind == "html":
        return render_html(document)
    raise ValueError(f"unknown report format {kind!r}; known: {', '.join(FORMATS)}")


def render_reports(
    document: Mapping[str, Any], outputs: Mapping[str, Path], srcroot: Path
) -> dict[Path, str]:
    """The text of every requested report, by path; ``outputs`` maps a format to its file."""
    return {path: render_report(kind, document, srcroot) for kind, path in outputs.items()}
