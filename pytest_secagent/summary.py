"""The controller's view of the run: one result per control and target, the gate and the summary.

Registered only on the controller (also under xdist), so everything here happens once: the
terminal summary, the severity gate's exit status, the waiver accounting and the report files
(JSON, SARIF, JUnit, HTML), all rendered from the one results document and written together.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_secagent import waivers
from pytest_secagent.catalog import load_catalog
from pytest_secagent.gate import GateVerdict, evaluate_gate, gated_exit_status
from pytest_secagent.model import Outcome, Severity
from pytest_secagent.options import SETTINGS_KEY, Settings
from pytest_secagent.reporting import FORMAT_LABELS, FORMATS, ReportWriteError, render_reports, write_reports
from pytest_secagent.reporting.document import build_document
from pytest_secagent.results import RECORD_ATTRIBUTE
from pytest_secagent.scoring import format_score, score
from pytest_secagent.waivers import WaiverState, WaiverStatus, waiver_states

__all__ = ["ComplianceResults", "ControlResult"]

_COLUMNS = (
    ("passed", Outcome.PASSED),
    ("partial", Outcome.PARTIAL),
    ("failed", Outcome.FAILED),
    ("waived", Outcome.WAIVED),
    ("errors", Outcome.ERROR),
    ("n/a", Outcome.NOT_APPLICABLE),
    ("not observable", Outcome.NOT_OBSERVABLE),
    ("skipped", Outcome.SKIPPED),
)

#: Terminal colours of the outcomes that matter (markup is dropped with --color=no).
_CELL_COLOURS: dict[Outcome, dict[str, bool]] = {
    Outcome.PASSED: {"green": True},
    Outcome.PARTIAL: {"yellow": True},
    Outcome.FAILED: {"red": True, "bold": True},
    Outcome.ERROR: {"yellow": True, "bold": True},
    Outcome.WAIVED: {"cyan": True},
}


@dataclass
class ControlResult:
    """The final verdict of one control test item on one target."""

    nodeid: str
    record: dict[str, Any]
    outcome: Outcome
    duration: float = 0.0
    phases: dict[str, str] = field(default_factory=dict)
    start: float = 0.0
    stop: float = 0.0

    @property
    def control_id(self) -> str:
        """The control's ID."""
        return str(self.record["control_id"])

    @property
    def section(self) -> str:
        """The control's baseline section."""
        return str(self.record["section"])

    @property
    def severity(self) -> Severity:
        """The control's severity."""
        return Severity.parse(str(self.record["severity"]))

    @property
    def target(self) -> str:
        """The target's ID, empty when the control had no target."""
        return str(self.record.get("target") or "")

    @property
    def waiver(self) -> dict[str, Any] | None:
        """The waiver that matched a failure of this result (applied or expired), if any."""
        waiver = self.record.get("waiver")
        return waiver if isinstance(waiver, dict) else None


class ComplianceResults:
    """Collects control results on the controller and turns them into the run's verdict."""

    def __init__(self) -> None:
        self.results: dict[str, ControlResult] = {}
        self.other_failures: dict[str, str] = {}
        self.started = 0.0
        self.finished = 0.0
        self.gate: GateVerdict | None = None
        self.gate_note = ""
        self.waiver_states: list[WaiverState] = []
        self.exit_status: int | None = None
        self.interrupted = False
        self.reports_written: dict[str, str] = {}
        self.reports_requested: tuple[str, ...] = ()
        self.report_error = ""

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Note when the run started."""
        self.started = dt.datetime.now(dt.timezone.utc).timestamp()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the latest record of each control test; the teardown record is final."""
        record = getattr(report, RECORD_ATTRIBUTE, None)
        if not isinstance(record, dict):
            if report.failed:
                self.other_failures.setdefault(report.nodeid, report.when or "?")
            return
        outcome_text = record.get("outcome") or ""
        if not outcome_text and report.passed:
            # A phase that decided nothing (a setup that passed): the control has no verdict yet,
            # and an interrupted run that never reached its call must not count it as passed.
            return
        try:
            outcome = Outcome(outcome_text)
        except ValueError:
            outcome = Outcome.ERROR if report.failed else Outcome.PASSED
        previous = self.results.get(report.nodeid)
        duration = (previous.duration if previous else 0.0) + float(report.duration or 0.0)
        phases = dict(previous.phases) if previous else {}
        phases[report.when or "?"] = report.outcome
        if previous is not None and previous.outcome is Outcome.ERROR:
            outcome = Outcome.ERROR
        if report.failed and report.when == "teardown":
            outcome = Outcome.ERROR
        start = previous.start if previous and previous.start else float(getattr(report, "start", 0.0))
        stop = max(previous.stop if previous else 0.0, float(getattr(report, "stop", 0.0)))
        self.results[report.nodeid] = ControlResult(
            report.nodeid, record, outcome, duration, phases, start, stop
        )

    def pytest_keyboard_interrupt(self) -> None:
        """Note that the run did not finish: every report says so."""
        self.interrupted = True

    def ordered(self) -> list[ControlResult]:
        """The results sorted by control and target."""
        return sorted(self.results.values(), key=lambda r: (r.control_id, r.target, r.nodeid))

    def counts_by_section(self) -> dict[str, Counter[Outcome]]:
        """Outcome counts per baseline section, in catalog order, custom sections last."""
        ordered = {section: Counter[Outcome]() for section in load_catalog().sections}
        for result in self.results.values():
            ordered.setdefault(result.section, Counter())[result.outcome] += 1
        return {section: counts for section, counts in ordered.items() if counts}

    def counts_by_severity(self) -> dict[Severity, Counter[Outcome]]:
        """Outcome counts per severity, critical first."""
        counts = {s: Counter[Outcome]() for s in sorted(Severity, key=lambda s: -s.rank)}
        for result in self.results.values():
            counts[result.severity][result.outcome] += 1
        return counts

    def totals(self) -> Counter[Outcome]:
        """Outcome counts over every result."""
        return Counter(r.outcome for r in self.results.values())

    def _settle_waivers(self, settings: Settings) -> None:
        if settings.waivers is None:
            return
        applied = [
            int(r.waiver["entry"])
            for r in self.results.values()
            if r.waiver is not None and r.waiver.get("status") == "applied"
        ]
        controls_run = {r.control_id for r in self.results.values()}
        self.waiver_states = waiver_states(settings.waivers, applied, controls_run, waivers.today())

    @property
    def waiver_problems(self) -> list[WaiverState]:
        """Expired waivers and current waivers that matched no failure of a control that ran."""
        return [s for s in self.waiver_states if s.problem]

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Settle the waivers, apply the gate to the exit status, and write the JSON results."""
        self.finished = dt.datetime.now(dt.timezone.utc).timestamp()
        self.interrupted = self.interrupted or int(session.exitstatus) == int(pytest.ExitCode.INTERRUPTED)
        settings: Settings | None = session.config.stash.get(SETTINGS_KEY, None)
        if settings is None:
            return
        self._settle_waivers(settings)
        problems = len(self.waiver_problems) if settings.strict_waivers else 0
        status: int | pytest.ExitCode = session.exitstatus
        if settings.fail_on is not None:
            self.gate = evaluate_gate(
                ((r.outcome, r.severity) for r in self.results.values()),
                fail_on=settings.fail_on,
                allow_errors=settings.allow_errors,
                strict_evidence=settings.strict_evidence,
                other_test_failures=len(self.other_failures),
                waiver_problems=problems,
            )
            if session.shouldfail or session.shouldstop:
                # A run cut short (-x, --maxfail) did not check everything: keep pytest's status.
                self.gate_note = "not applied: the run stopped early, so pytest's exit status stands"
            else:
                status = gated_exit_status(status, self.gate)
        elif problems and status == pytest.ExitCode.OK:
            status = pytest.ExitCode.TESTS_FAILED
        session.exitstatus = status
        self.exit_status = int(status)
        self._write_reports(session, settings)

    def _write_reports(self, session: pytest.Session, settings: Settings) -> None:
        """Write every requested report from one document: all of them or none, each atomically."""
        paths = {
            "json": settings.json_path, "sarif": settings.sarif_path,
            "junit": settings.junit_path, "html": settings.html_path,
        }
        outputs = {kind: path for kind in FORMATS if (path := paths[kind]) is not None}
        if not outputs:
            return
        self.reports_requested = tuple(outputs)
        document = build_document(self, settings, session.config)
        try:
            try:
                files = render_reports(document, outputs, Path(session.config.invocation_params.dir))
            except Exception as exc:
                raise ReportWriteError(f"could not render the reports: {type(exc).__name__}: {exc}") from exc
            write_reports(files)
        except ReportWriteError as exc:
            # The report files are part of the run's result: their loss must not pass silently.
            self.report_error = str(exc)
            if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
                session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        else:
            self.reports_written = {kind: str(path) for kind, path in outputs.items()}

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the compliance table, what failed or was waived, the waivers and the gate."""
        tr = terminalreporter
        counts = self.counts_by_section()
        if counts:
            self._write_table(tr, counts)
            self._write_findings(tr)
        self._write_waivers(tr)
        if self.gate is not None:
            tr.write_line(f"secagent gate: {self.gate_note or self.gate.describe()}")
        for kind, path in self.reports_written.items():
            tr.write_line(f"secagent {FORMAT_LABELS[kind]}: {path}")
        if self.report_error:
            for kind in self.reports_requested:
                tr.write_line(
                    f"secagent {FORMAT_LABELS[kind]} NOT written: {self.report_error}", red=True, bold=True
                )

    def _write_table(self, tr: pytest.TerminalReporter, counts: dict[str, Counter[Outcome]]) -> None:
        tr.write_sep("=", "secagent compliance summary")
        width = max(len("section"), *(len(s) for s in counts))
        header = f"{'section':<{width}}  score  " + "  ".join(name for name, _ in _COLUMNS)
        tr.write_line(header)
        total: Counter[Outcome] = Counter()
        for section, counter in counts.items():
            total.update(counter)
            self._write_row(tr, section, width, counter)
        self._write_row(tr, "total", width, total)

    @staticmethod
    def _write_row(tr: pytest.TerminalReporter, label: str, width: int, counter: Counter[Outcome]) -> None:
        """One table row; counts that matter in colour where the terminal has it (not with --color=no)."""
        tr.ensure_newline()
        tr.write(f"{label:<{width}}  {format_score(score(counter)):>5}")
        for name, outcome in _COLUMNS:
            count = counter[outcome]
            markup = _CELL_COLOURS.get(outcome, {}) if count else {}
            tr.write("  ")
            tr.write(f"{count:>{len(name)}}", **markup)
        tr.write("\n")

    def _write_findings(self, tr: pytest.TerminalReporter) -> None:
        labels = {
            Outcome.FAILED: "FAILED", Outcome.ERROR: "ERROR", Outcome.WAIVED: "WAIVED",
            Outcome.PARTIAL: "PARTIAL",
        }
        for result in self.ordered():
            label = labels.get(result.outcome)
            if label is None:
                continue
            markup = _CELL_COLOURS.get(result.outcome, {})
            line = (
                f"{label} {result.control_id} [{result.record['severity']}] on "
                f"{result.target or '-'}: {result.record.get('title', '')}"
            )
            waiver = result.waiver
            if waiver is not None and result.outcome is Outcome.WAIVED:
                line += (
                    f" -- waived until {waiver['expires']} by {waiver['owner']}: {waiver['reason']}"
                )
            elif waiver is not None:
                line += f" -- waiver expired on {waiver['expires']} (owner {waiver['owner']})"
            elif result.outcome is Outcome.PARTIAL:
                line += f" -- {result.record.get('detail', '')}"
            tr.write_line(line, **markup)
        self._write_unreachable(tr)

    def _write_unreachable(self, tr: pytest.TerminalReporter) -> None:
        """One line per target whose controls could not be verified for one same reason."""
        reasons: dict[str, Counter[str]] = {}
        for result in self.ordered():
            if result.outcome is not Outcome.ERROR or not result.target:
                continue
            detail = str(result.record.get("detail") or "")
            reason = detail.removeprefix(f"could not verify {result.control_id} on {result.target}: ")
            reasons.setdefault(result.target, Counter())[reason] += 1
        shared = [
            (target, reason, count)
            for target, counter in reasons.items()
            for reason, count in counter.most_common()
            if count >= 2
        ]
        if not shared:
            return
        tr.write_sep("-", "secagent targets that could not be checked")
        for target, reason, count in shared:
            tr.write_line(f"{target}: {count} controls could not be verified: {reason}", yellow=True)

    def _write_waivers(self, tr: pytest.TerminalReporter) -> None:
        notes = {
            WaiverStatus.EXPIRED: "expired on {expires}; it no longer applies",
            WaiverStatus.UNUSED: "matched no failure; remove it, or fix its control or target pattern",
            WaiverStatus.NOT_RUN: "its control did not run in this session",
        }
        listed = [s for s in self.waiver_states if s.status in notes]
        if not listed:
            return
        tr.write_sep("-", "secagent waivers not applied")
        for state in listed:
            waiver = state.waiver
            note = notes[state.status].format(expires=waiver.expires)
            tr.write_line(
                f"{state.status.value.upper()} waiver {waiver.label} {waiver.control} on {waiver.target} "
                f"(owner {waiver.owner}, expires {waiver.expires}): {note}"
            )
