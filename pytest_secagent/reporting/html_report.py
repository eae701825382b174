"""The HTML compliance report: one self-contained page a security lead reads top to bottom.

From the top: the run (targets, policy and its sha256, start and duration, the gate's verdict,
a banner for an interrupted run); a chart (score per baseline section, failures per
severity) drawn as inline SVG; the section table; then every result, most severe first and,
within a severity, failed, error, partial, waived, passed. Each result is a ``<details>`` row
that opens on its evidence (expected and observed), remediation and references; the most
severe failure is open from the start, and a URL fragment (``#SA-NET-003--local``) opens its
row. Controls that did not apply are folded into one line per target kind. Filters by
section, severity, target and outcome are a few lines of inline script; the page loads
nothing from anywhere. Every value is escaped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_secagent.model import Outcome
from pytest_secagent.reporting.findings import (
    OUTCOME_ORDER,
    SEVERITY_ORDER,
    finding,
    first_line,
    result_sort_key,
    target_label,
)
from pytest_secagent.scoring import format_score

__all__ = ["render_html"]

_NO_TARGET = "no target of their kind in this run"
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_COUNT_COLUMNS = (
    ("passed", "passed"), ("partial", "partial"), ("failed", "failed"), ("waived", "waived"),
    ("error", "errors"), ("not applicable", "n/a"), ("not observable", "not observable"),
    ("skipped", "skipped"),
)

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1100px;
padding:1em 1.5em;color:#1b1b1b;line-height:1.4}
h1{margin:.2em 0}h2{margin-top:1.4em;border-bottom:1px solid #ddd}
.sub{color:#555;margin-top:0}
.banner{background:#fde8e8;border:2px solid #b00;color:#700;padding:.6em 1em;font-weight:bold}
dl.run{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dl.run dt{font-weight:bold}
dl.run dd{margin:0}code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em}
.verdict-compliant{color:#0a6b0a;font-weight:bold}.verdict-non-compliant,.verdict-unverified{color:#b00;font-weight:bold}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}
table.counts td.n{text-align:right}
svg text{font-size:12px;fill:#1b1b1b}.bar-bg{fill:#eee}.bar-score{fill:#2f6fb3}.bar-failed{fill:#c62828}
.bar-error{fill:#e0a000}
form.filters{display:flex;flex-wrap:wrap;gap:1em;margin:.5em 0}
details.result{border:1px solid #ccc;border-left:6px solid #999;margin:.3em 0;padding:.2em .6em}
details.result>summary{cursor:pointer}
details.sev-critical{border-left-color:#7b0000}details.sev-high{border-left-color:#c62828}
details.sev-medium{border-left-color:#e0a000}details.sev-low{border-left-color:#2f6fb3}
.badge{display:inline-block;border-radius:3px;padding:0 .4em;font-size:.85em;font-weight:bold;color:#fff;
background:#777}
.badge.sev-critical{background:#7b0000}.badge.sev-high{background:#c62828}.badge.sev-medium{background:#a66f00}
.badge.sev-low{background:#2f6fb3}
.badge.out-failed{background:#c62828}.badge.out-error{background:#a66f00}.badge.out-partial{background:#6a5acd}
.badge.out-waived{background:#555}.badge.out-passed{background:#0a6b0a}
.finding{display:block;color:#333;margin:.1em 0 .1em 1.2em;font-size:.95em}
table.evidence{margin:.4em 0;width:100%}tr.v-fail td{background:#fdecea}tr.v-warn td{background:#fff6dd}
tr.v-unobserved td{background:#eeeaff}
.meta{color:#666;font-size:.85em}
"""

_SCRIPT = """
(function () {
  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  var rows = Array.prototype.slice.call(document.querySelectorAll("details.result"));
  var counter = document.getElementById("shown");
  function apply() {
    var shown = 0;
    rows.forEach(function (row) {
      var keep = selects.every(function (s) {
        return !s.value || row.dataset[s.dataset.filter] === s.value;
      });
      row.hidden = !keep;
      if (keep) { shown += 1; }
    });
    if (counter) { counter.textContent = String(shown); }
  }
  function openFromHash() {
    if (!location.hash) { return; }
    var row = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (row && row.tagName === "DETAILS") { row.open = true; row.scrollIntoView(); }
  }
  selects.forEach(function (s) { s.addEventListener("change", apply); });
  window.addEventListener("hashchange", openFromHash);
  openFromHash();
})();
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _parse_utc(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _duration(run: Mapping[str, Any]) -> str:
    start, end = _parse_utc(run.get("started_at")), _parse_utc(run.get("finished_at"))
    if start is None or end is None:
        return "-"
    seconds = max((end - start).total_seconds(), 0.0)
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.1f} s" if minutes else f"{rest:.1f} s"


def _when(text: str | None) -> str:
    moment = _parse_utc(text)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "-"


def _gate_text(run: Mapping[str, Any]) -> tuple[str, str]:
    gate = run.get("gate")
    if not gate:
        return (
            "verdict-none",
            f"no severity gate (--secagent-fail-on not given); exit status {run.get('exit_status')}",
        )
    if not gate["applied"]:
        return "verdict-none", "not applied: the run stopped early, so pytest's exit status stands"
    reasons = "; ".join(gate["reasons"])
    text = f"{gate['status']} (fail on {gate['fail_on']} and above)"
    if reasons:
        text += f": {reasons}"
    return f"verdict-{gate['status']}", f"{text}; exit status {gate['exit_status']}"


def _header(document: Mapping[str, Any]) -> str:
    run = document["run"]
    policy = run["policy"]
    summary = document["summary"]
    css, verdict = _gate_text(run)
    targets = "".join(
        f"<li><code>{_e(t['uri'])}</code> ({_e(t['kind'])})</li>" for t in run["targets"]
    ) or "<li>none</li>"
    parts = [
        '<header id="run-header">',
        "<h1>Security baseline compliance report</h1>",
        f'<p class="sub">pytest-secagent {_e(run["plugin"]["version"])} &middot; run of '
        f"{_e(_when(run.get('started_at')))} &middot; {len(run['targets'])} target(s)</p>",
    ]
    if run["interrupted"]:
        parts.append(
            '<p class="banner" id="interrupted">Interrupted: the run did not finish, so these results '
            "are incomplete; a control that did not reach its check is absent.</p>"
        )
    waivers = run.get("waivers")
    waiver_text = (
        f"<code>{_e(waivers['source'])}</code> (sha256 <code>{_e(waivers['sha256'])}</code>)"
        if waivers else "none"
    )
    parts.extend([
        '<dl class="run">',
        f"<dt>Gate</dt><dd class=\"{_e(css)}\" id=\"verdict\">{_e(verdict)}</dd>",
        f"<dt>Score</dt><dd>{_e(format_score(summary['score']))} "
        f"({summary['outcomes']['passed']} fully passed of "
        f"{sum(summary['outcomes'][o.value] for o in OUTCOME_ORDER[:5])} scored)</dd>",
        f"<dt>Targets</dt><dd><ul>{targets}</ul></dd>",
        f"<dt>Policy</dt><dd><code>{_e(policy['source'])}</code>"
        + (f" sha256 <code>{_e(policy['sha256'])}</code>" if policy.get("sha256") else "")
        + f" (from {_e(policy['from'])})</dd>",
        f"<dt>Started</dt><dd>{_e(_when(run.get('started_at')))}</dd>",
        f"<dt>Duration</dt><dd>{_e(_duration(run))}</dd>",
        f"<dt>Waivers</dt><dd>{waiver_text}</dd>",
        "</dl>",
        "</header>",
    ])
    return "\n".join(parts)


def _chart(document: Mapping[str, Any]) -> str:
    """Score per section (bars 0-100 %) and failures per severity (failed and unverified, stacked)."""
    summary = document["summary"]
    sections = summary["by_section"]
    label_w, bar_w, row_h = 250, 320, 22
    width = label_w + bar_w + 170
    y = 24
    shapes = ['<text x="0" y="14" font-weight="bold">Score per baseline section</text>']
    for entry in sections:
        value = entry["score"]
        shapes.append(f'<text x="0" y="{y + 14}">{_e(entry["section"])}</text>')
        shapes.append(
            f'<rect class="bar-bg" x="{label_w}" y="{y + 2}" width="{bar_w}" height="{row_h - 6}"/>'
        )
        if value is not None:
            shapes.append(
                f'<rect class="bar bar-score" data-section="{_e(entry["section"])}" x="{label_w}" '
                f'y="{y + 2}" width="{bar_w * float(value):.1f}" height="{row_h - 6}">'
                f"<title>{_e(entry['section'])}: {_e(format_score(value))}</title></rect>"
            )
        shapes.append(f'<text x="{label_w + bar_w + 8}" y="{y + 14}">{_e(format_score(value))}</text>')
        y += row_h
    y += 18
    shapes.append(f'<text x="0" y="{y + 14}" font-weight="bold">Failures per severity</text>')
    y += 24
    severities = summary["by_severity"]
    peak = max(
        [severities[s.value]["failed"] + severities[s.value]["error"] for s in SEVERITY_ORDER] + [1]
    )
    for severity in SEVERITY_ORDER:
        counts = severities[severity.value]
        failed, errors = counts["failed"], counts["error"]
        failed_w = bar_w * failed / peak
        error_w = bar_w * errors / peak
        shapes.append(f'<text x="0" y="{y + 14}">{_e(severity.value)}</text>')
        shapes.append(
            f'<rect class="bar-bg" x="{label_w}" y="{y + 2}" width="{bar_w}" height="{row_h - 6}"/>'
        )
        shapes.append(
            f'<rect class="bar bar-failed" data-severity="{severity.value}" x="{label_w}" y="{y + 2}" '
            f'width="{failed_w:.1f}" height="{row_h - 6}"><title>{failed} failed</title></rect>'
        )
        shapes.append(
            f'<rect class="bar bar-error" data-severity="{severity.value}" x="{label_w + failed_w:.1f}" '
            f'y="{y + 2}" width="{error_w:.1f}" height="{row_h - 6}">'
            f"<title>{errors} unverified</title></rect>"
        )
        shapes.append(
            f'<text x="{label_w + bar_w + 8}" y="{y + 14}">{failed} failed, {errors} unverified</text>'
        )
        y += row_h
    height = y + 8
    return (
        f'<svg id="chart" role="img" aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        '<title id="chart-title">Score per baseline section and failures per severity</title>'
        + "".join(shapes)
        + "</svg>"
    )


def _counts_table(document: Mapping[str, Any]) -> str:
    head = "".join(f"<th>{_e(label)}</th>" for _, label in _COUNT_COLUMNS)
    rows = []
    for entry in document["summary"]["by_section"]:
        cells = "".join(f'<td class="n">{entry["outcomes"][key]}</td>' for key, _ in _COUNT_COLUMNS)
        rows.append(
            f"<tr><td>{_e(entry['section'])}</td><td class=\"n\">{_e(format_score(entry['score']))}</td>"
            f"{cells}</tr>"
        )
    total = document["summary"]
    cells = "".join(f'<td class="n">{total["outcomes"][key]}</td>' for key, _ in _COUNT_COLUMNS)
    rows.append(
        f"<tr><th>total</th><td class=\"n\">{_e(format_score(total['score']))}</td>{cells}</tr>"
    )
    return (
        f'<table class="counts"><thead><tr><th>section</th><th>score</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _options(name: str, label: str, values: Sequence[str]) -> str:
    options = "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)
    return (
        f'<label>{_e(label)} <select data-filter="{_e(name)}" name="{_e(name)}">'
        f'<option value="">all</option>{options}</select></label>'
    )


def _filters(rows: Sequence[Mapping[str, Any]]) -> str:
    def distinct(key: str) -> list[str]:
        seen: dict[str, None] = {}
        for row in rows:
            seen.setdefault(str(row[key]), None)
        return list(seen)

    sections = sorted(distinct("section"))
    severities = [s.value for s in SEVERITY_ORDER if s.value in distinct("severity")]
    targets = sorted({target_label(r) for r in rows})
    outcomes = [o.value for o in OUTCOME_ORDER if o.value in distinct("outcome")]
    return (
        '<form class="filters" onsubmit="return false">'
        + _options("section", "Section", sections)
        + _options("severity", "Severity", severities)
        + _options("target", "Target", targets)
        + _options("outcome", "Outcome", outcomes)
        + "</form>"
    )


def _evidence_table(record: Mapping[str, Any]) -> str:
    evidence = list(record.get("evidence", []))
    if not evidence:
        return '<p class="no-evidence">No evidence was recorded.</p>'
    rows = "".join(
        f'<tr class="v-{_e(e["verdict"])}"><td>{_e(e["verdict"])}</td><td>{_e(e["name"])}</td>'
        f"<td>{_e(e['expected'])}</td><td>{_e(e['actual'])}</td><td>{_e(e.get('location') or '')}</td></tr>"
        for e in evidence
    )
    return (
        '<table class="evidence"><thead><tr><th>verdict</th><th>evidence</th><th>expected</th>'
        f"<th>observed</th><th>where</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _references(record: Mapping[str, Any]) -> str:
    items = []
    for reference in record.get("references", []):
        text = str(reference)
        if text.startswith(("https://", "http://")):
            items.append(f'<li><a href="{_e(text)}" rel="noreferrer">{_e(text)}</a></li>')
        else:
            items.append(f"<li>{_e(text)}</li>")
    if not items:
        return ""
    return f'<p><strong>References:</strong></p><ul class="references">{"".join(items)}</ul>'


def _waiver(record: Mapping[str, Any]) -> str:
    waiver = record.get("waiver")
    if not isinstance(waiver, Mapping):
        return ""
    state = "Waived" if waiver.get("status") == "applied" else "Waiver EXPIRED, the failure counts"
    return (
        f'<p class="waiver"><strong>{_e(state)}</strong>: until {_e(waiver["expires"])}, owner '
        f"{_e(waiver['owner'])}, target pattern <code>{_e(waiver['target'])}</code>; reason: "
        f"{_e(waiver['reason'])}</p>"
    )


def _row_id(record: Mapping[str, Any], used: set[str]) -> str:
    base = _ID_UNSAFE.sub("_", f"{record['control_id']}--{target_label(record)}")
    candidate, n = base, 1
    while candidate in used:
        n += 1
        candidate = f"{base}-{n}"
    used.add(candidate)
    return candidate


def _row(record: Mapping[str, Any], row_id: str, is_open: bool) -> str:
    severity, outcome = str(record["severity"]), str(record["outcome"])
    failing = any(e.get("verdict") == "fail" for e in record.get("evidence", []))
    detail = "" if failing else first_line(str(record.get("detail") or ""))
    duration = float(record["timing"]["duration_seconds"])
    return (
        f'<details class="result sev-{_e(severity)} out-{_e(outcome.replace(" ", "-"))}" id="{_e(row_id)}" '
        f'data-section="{_e(record["section"])}" data-severity="{_e(severity)}" '
        f'data-target="{_e(target_label(record))}" data-outcome="{_e(outcome)}"'
        + (" open" if is_open else "")
        + ">"
        f'<summary><span class="badge sev sev-{_e(severity)}">{_e(severity)}</span> '
        f'<span class="badge out out-{_e(outcome.replace(" ", "-"))}">{_e(outcome)}</span> '
        f'<code class="control">{_e(record["control_id"])}</code> '
        f'<span class="title">{_e(record["title"])}</span> '
        f'<span class="target">on {_e(target_label(record))}</span>'
        f'<span class="finding">{_e(finding(record))}</span></summary>'
        '<div class="body">'
        + (f'<p class="detail">{_e(detail)}</p>' if detail else "")
        + _waiver(record)
        + _evidence_table(record)
        + f'<p class="remediation"><strong>Remediation:</strong> {_e(record.get("remediation") or "-")}</p>'
        + _references(record)
        + f'<p class="meta">{_e(record["section"])}'
        + (f" &middot; {_e(record['baseline'])}" if record.get("baseline") else "")
        + f" &middot; target <code>{_e(record.get('target_uri') or '-')}</code>"
        + f" &middot; test <code>{_e(record['nodeid'])}</code> &middot; {duration:.2f} s</p>"
        "</div></details>"
    )


def _not_applicable(document: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    kinds = {str(t["id"]): str(t["kind"]) for t in document["run"]["targets"]}
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        target = record.get("target")
        kind = f"{kinds.get(str(target), 'other')} targets" if target else _NO_TARGET
        groups.setdefault(kind, []).append(record)
    if not groups:
        return ""
    lines = []
    for kind, group in sorted(groups.items()):
        controls = sorted({str(r["control_id"]) for r in group})
        items = "".join(
            f"<li><code>{_e(r['control_id'])}</code> on {_e(target_label(r))}: "
            f"{_e(r.get('detail') or '')}</li>"
            for r in sorted(group, key=lambda r: (str(r["control_id"]), target_label(r)))
        )
        lines.append(
            f'<details class="not-applicable" data-kind="{_e(kind)}"><summary>{_e(kind)}: '
            f"{len(group)} result(s) not applicable ({_e(', '.join(controls))})</summary>"
            f"<ul>{items}</ul></details>"
        )
    return '<section id="not-applicable"><h2>Not applicable</h2>' + "".join(lines) + "</section>"


def _waiver_problems(run: Mapping[str, Any]) -> str:
    waivers = run.get("waivers")
    if not waivers:
        return ""
    listed = [w for w in waivers["entries"] if w["status"] in ("expired", "unused", "not run")]
    if not listed:
        return ""
    items = "".join(
        f"<li>{_e(w['status'])}: waivers[{w['entry']}] (line {w['line']}) {_e(w['control'])} on "
        f"{_e(w['target'])} (owner {_e(w['owner'])}, expires {_e(w['expires'])})</li>"
        for w in listed
    )
    return f'<section id="waivers"><h2>Waivers not applied</h2><ul>{items}</ul></section>'


def _other_failures(run: Mapping[str, Any]) -> str:
    failures = run.get("other_test_failures") or []
    if not failures:
        return ""
    items = "".join(f"<li><code>{_e(n)}</code></li>" for n in failures)
    return (
        '<section id="other-failures"><h2>Failed tests that are not controls</h2>'
        f"<ul>{items}</ul></section>"
    )


def render_html(document: Mapping[str, Any]) -> str:
    """The self-contained HTML report of a results document."""
    run = document["run"]
    records = sorted(document["results"], key=result_sort_key)
    rows = [r for r in records if r["outcome"] != Outcome.NOT_APPLICABLE.value]
    skipped = [r for r in records if r["outcome"] == Outcome.NOT_APPLICABLE.value]
    first_failed = next((i for i, r in enumerate(rows) if r["outcome"] == Outcome.FAILED.value), None)
    used: set[str] = set()
    rendered = [_row(r, _row_id(r, used), i == first_failed) for i, r in enumerate(rows)]
    targets = ", ".join(t["id"] for t in run["targets"]) or "no target"
    title = f"pytest-secagent compliance report: {targets}, run of {_when(run.get('started_at'))}"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">",
        f"<title>{_e(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        _header(document),
        '<section id="overview"><h2>Overview</h2>',
        _chart(document),
        _counts_table(document),
        "</section>",
        '<section id="results"><h2>Results</h2>',
        _filters(rows),
        f'<p class="shown"><span id="shown">{len(rows)}</span> of {len(rows)} results shown, most severe '
        "first; open a row for its evidence.</p>",
        "\n".join(rendered) if rendered else "<p>No control results.</p>",
        "</section>",
        _not_applicable(document, skipped),
        _waiver_problems(run),
        _other_failures(run),
        f"<script>{_SCRIPT}</script>",
        "</body>",
        "</html>",
        "",
    ])
