"""What a failed or unverified control shows: the finding first, Python last.

A control failure is a finding, not a crash of Python code: its report leads with one line,
``SA-NET-003 [critical] on local: <first unmet expectation>``, then the evidence (expected
and observed, one line each), the remediation and the references. A Python traceback follows
only for an internal error of a check, or when asked for with ``--tb=long``.

:class:`FindingRepr` is what pytest keeps as the report's ``longrepr``: pytest's terminal
prints it with :meth:`FindingRepr.toterminal`, the short summary (``-ra``) and pytest's own
JUnit ``message`` use its ``reprcrash.message`` (the one-line finding), and under xdist it
travels as its text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_secagent.evidence import Evidence, Observation, Verdict
from pytest_secagent.reporting.findings import unmet_text

__all__ = ["FindingLocation", "FindingRepr", "headline_for_failure"]

#: The order evidence lines are shown in: what failed first.
_ORDER = (Verdict.FAIL, Verdict.WARN, Verdict.UNOBSERVED, Verdict.OK, Verdict.INFO)


@dataclass(frozen=True)
class FindingLocation:
    """Where pytest would point: the test's file and line, with the one-line finding."""

    path: str
    lineno: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.message}"

    def toterminal(self, tw: Any) -> None:
        """Write the location line (pytest calls this for ``--tb=line``)."""
        tw.line(str(self))


class FindingRepr:
    """A report body that leads with the finding; see the module docstring."""

    def __init__(
        self,
        headline: str,
        *,
        evidence_lines: Sequence[str] = (),
        remediation: str = "",
        references: Sequence[str] = (),
        traceback: str = "",
        path: str = "",
        lineno: int = 0,
        style: str = "auto",
    ) -> None:
        self.reprcrash = FindingLocation(path, lineno, headline)
        self.style = style
        self.headline = headline
        self.evidence_lines = tuple(evidence_lines)
        self.remediation = remediation
        self.references = tuple(references)
        self.traceback = traceback

    def lines(self) -> list[str]:
        """The report as plain lines: finding, evidence, remediation, references, traceback."""
        lines = [self.headline]
        if self.evidence_lines:
            lines += ["evidence:", *(f"  {line}" for line in self.evidence_lines)]
        if self.remediation:
            lines.append(f"remediation: {self.remediation}")
        if self.references:
            lines.append(f"references: {' '.join(self.references)}")
        if self.traceback:
            lines += ["", self.traceback]
        return lines

    def toterminal(self, tw: Any) -> None:
        """Write the report to pytest's terminal writer, the finding in red.

        ``--tb=line`` shows only the location line pytest adds itself; ``--tb=short`` the
        finding and its evidence; every other style the whole report.
        """
        if self.style == "line":
            return
        tw.line(self.headline, red=True, bold=True)
        if self.style == "short":
            for line in self.evidence_lines:
                tw.line(f"  {line}")
            return
        for line in self.lines()[1:]:
            tw.line(line)

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _as_line(observation: Observation) -> str:
    return observation.as_line()


def evidence_lines(evidence: Evidence | None, *, verbose: bool) -> list[str]:
    """The evidence to show under a finding: every problem, and what held when ``verbose``."""
    if evidence is None:
        return []
    shown: list[str] = []
    held = 0
    for verdict in _ORDER:
        for observation in evidence.observations:
            if observation.verdict is not verdict:
                continue
            if verdict in (Verdict.OK, Verdict.INFO) and not verbose:
                held += 1
                continue
            shown.append(_as_line(observation))
    if held:
        shown.append(
            f"({held} more observation(s) held or informational; -v shows them, every report keeps them)"
        )
    dropped = evidence.dropped
    if dropped:
        shown.append(
            f"({sum(dropped.values())} observation(s) past the evidence bound were counted, not kept)"
        )
    return shown


def headline_for_failure(where: str, severity: str, evidence: Evidence | None, fallback: str) -> str:
    """``CONTROL [severity] on TARGET: <first unmet expectation>`` (``where`` is ``CONTROL on TARGET``).

    ``fallback`` (an assertion's message, say) stands in when no expectation was recorded.
    """
    control, _, target = where.partition(" on ")
    prefix = f"{control} [{severity}] on {target}"
    failures = evidence.failures if evidence is not None else ()
    if failures and evidence is not None:
        first = failures[0]
        return f"{prefix}: {unmet_text(first.name, first.expected, first.actual, evidence.failed_count - 1)}"
    text = fallback.strip().splitlines()[0] if fallback.strip() else "the control failed"
    text = text.removeprefix("AssertionError: ")
    return f"{prefix}: {text}"
