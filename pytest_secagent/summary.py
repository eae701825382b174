"""The controller's view of the run: one result per control and target, and the summary table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_secagent.catalog import load_catalog
from pytest_secagent.model import Outcome
from pytest_secagent.results import RECORD_ATTRIBUTE

__all__ = ["ComplianceResults", "ControlResult"]

_COLUMNS = (
    ("passed", Outcome.PASSED),
    ("failed", Outcome.FAILED),
    ("errors", Outcome.ERROR),
    ("n/a", Outcome.NOT_APPLICABLE),
    ("not observable", Outcome.NOT_OBSERVABLE),
    ("skipped", Outcome.SKIPPED),
)


@dataclass
class ControlResult:
    """The final verdict of one control test item on one target."""

    nodeid: str
    record: dict[str, Any]
    outcome: Outcome
    duration: float = 0.0
    phases: dict[str, str] = field(default_factory=dict)

    @property
    def control_id(self) -> str:
        """The control's ID."""
        return str(self.record["control_id"])

    @property
    def section(self) -> str:
        """The control's baseline section."""
        return str(self.record["section"])


class ComplianceResults:
    """Collects control results on the controller (also under xdist) and prints the summary."""

    def __init__(self) -> None:
        self.results: dict[str, ControlResult] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the latest record of each control test; the teardown record is final."""
        record = getattr(report, RECORD_ATTRIBUTE, None)
        if not isinstance(record, dict):
            return
        outcome_text = record.get("outcome") or ""
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
        self.results[report.nodeid] = ControlResult(report.nodeid, record, outcome, duration, phases)

    def counts_by_section(self) -> dict[str, Counter[Outcome]]:
        """Outcome counts per baseline section, in catalog order, custom sections last."""
        ordered = {section: Counter[Outcome]() for section in load_catalog().sections}
        for result in self.results.values():
            ordered.setdefault(result.section, Counter())[result.outcome] += 1
        return {section: counts for section, counts in ordered.items() if counts}

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the compliance table: one row per baseline section."""
        counts = self.counts_by_section()
        if not counts:
            return
        tr = terminalreporter
        tr.write_sep("=", "secagent compliance summary")
        width = max(len("section"), *(len(s) for s in counts))
        header = f"{'section':<{width}}  " + "  ".join(f"{name:>{len(name)}}" for name, _ in _COLUMNS)
        tr.write_line(header)
        total: Counter[Outcome] = Counter()
        for section, counter in counts.items():
            total.update(counter)
            cells = "  ".join(f"{counter[o]:>{len(name)}}" for name, o in _COLUMNS)
            tr.write_line(f"{section:<{width}}  {cells}")
        cells = "  ".join(f"{total[o]:>{len(name)}}" for name, o in _COLUMNS)
        tr.write_line(f"{'total':<{width}}  {cells}")
        failed = sorted(
            (r for r in self.results.values() if r.outcome in (Outcome.FAILED, Outcome.ERROR)),
            key=lambda r: (r.control_id, r.record.get("target", "")),
        )
        for result in failed:
            label = "FAILED" if result.outcome is Outcome.FAILED else "ERROR"
            tr.write_line(
                f"{label} {result.control_id} [{result.record['severity']}] on "
                f"{result.record.get('target') or '-'}: {result.record.get('title', '')}"
            )
