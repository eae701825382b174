"""Turn each control test's phases into a verdict with its evidence, fail-closed."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import pytest

from pytest_secagent import waivers
from pytest_secagent.applicability import TESTINFRA_MODE
from pytest_secagent.evidence import ControlFailed, Evidence
from pytest_secagent.finding import FindingRepr, evidence_lines, headline_for_failure
from pytest_secagent.keys import BINDING_KEY, DETAIL_KEY, EVIDENCE_KEY, OUTCOME_KEY
from pytest_secagent.markers import ControlBinding
from pytest_secagent.model import Outcome
from pytest_secagent.options import SETTINGS_KEY
from pytest_secagent.outcomes import NOT_APPLICABLE_PREFIX, NOT_OBSERVABLE_PREFIX, EvidenceUnavailable
from pytest_secagent.reporting.findings import evidence_line, waiver_properties
from pytest_secagent.safetext import printable
from pytest_secagent.targets import Target
from pytest_secagent.waivers import WaiverMatch

__all__ = ["RECORD_ATTRIBUTE", "WAIVED_SECTION", "WAIVER_EXPIRED_SECTION", "ResultRecorder", "skip_reason"]

RECORD_ATTRIBUTE = "secagent"
WAIVED_SECTION = "secagent: waived failure"
WAIVER_EXPIRED_SECTION = "secagent: waiver expired"
WAIVER_KEY = pytest.StashKey[dict[str, Any]]()
#: The longest failure text kept for one control (its evidence is bounded on its own).
MAX_LONGREPR_LENGTH = 100_000
#: How much evidence (characters) the reports of one run keep in all, per process.
MAX_RUN_EVIDENCE_CHARACTERS = 32 * 1024 * 1024
TRIMMED_KEY = pytest.StashKey[bool]()


def skip_reason(report: pytest.TestReport) -> str:
    """The reason text of a skipped report."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason.removeprefix("Skipped: ")
    return str(longrepr or "")


def _skip_outcome(reason: str) -> Outcome:
    if reason.startswith(NOT_APPLICABLE_PREFIX):
        return Outcome.NOT_APPLICABLE
    if reason.startswith(NOT_OBSERVABLE_PREFIX):
        return Outcome.NOT_OBSERVABLE
    return Outcome.SKIPPED


def _target_of(item: pytest.Item) -> Target | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    target: Target | None = callspec.params.get("secagent_target")
    return target


class ResultRecorder:
    """Hook implementations that attach control metadata and evidence to every report."""

    def __init__(self, redact: Any) -> None:
        self._redact = redact
        self._spent = 0

    def _evidence_entries(self, item: pytest.Item, evidence: Evidence | None) -> list[dict[str, str]]:
        """The evidence of ``item`` for the reports, within the run's budget.

        Each control keeps its own bounded evidence (see :mod:`pytest_secagent.evidence`); past
        :data:`MAX_RUN_EVIDENCE_CHARACTERS` in one process, controls keep only what did not
        hold (failures, warnings, unobserved parts) and say so, so no report grows without end.
        """
        entries = [
            {
                "name": o.name, "expected": o.expected, "actual": o.actual, "verdict": o.verdict.value,
                **({"location": o.location} if o.location else {}),
            }
            for o in (evidence.observations if evidence is not None else ())
        ]
        trimmed = item.stash.get(TRIMMED_KEY, None)
        if trimmed is None and entries:
            size = sum(len(e["name"]) + len(e["expected"]) + len(e["actual"]) for e in entries)
            trimmed = self._spent + size > MAX_RUN_EVIDENCE_CHARACTERS
            if not trimmed:
                self._spent += size
            item.stash[TRIMMED_KEY] = trimmed
        if not trimmed:
            return entries
        kept = [e for e in entries if e["verdict"] not in ("ok", "info")]
        note = {
            "name": "evidence not kept", "expected": "", "verdict": "info",
            "actual": f"{len(entries) - len(kept)} observation(s) that held were left out: this run's "
            f"reports already hold {MAX_RUN_EVIDENCE_CHARACTERS // (1024 * 1024)} MiB of evidence",
        }
        return [*kept, note]

    def _record(self, item: pytest.Item, binding: ControlBinding) -> dict[str, Any]:
        control = binding.control
        target = _target_of(item)
        evidence = item.stash.get(EVIDENCE_KEY, None)
        outcome = item.stash.get(OUTCOME_KEY, None)
        return {
            "control_id": control.id,
            "title": control.title,
            "severity": control.severity.value,
            "section": control.section,
            "baseline": control.baseline,
            "remediation": control.remediation,
            "references": list(control.references),
            # A target string may hold anything (a path with escapes): every report shows it safely.
            "target": printable(target.id) if target is not None else "",
            "target_uri": printable(target.uri) if target is not None else "",
            "outcome": outcome.value if outcome is not None else "",
            "detail": printable(self._redact(item.stash.get(DETAIL_KEY, ""))),
            "waiver": item.stash.get(WAIVER_KEY, None),
            "evidence": self._evidence_entries(item, evidence),
        }

    def _junit_properties(self, record: dict[str, Any]) -> list[tuple[str, object]]:
        evidence = "\n".join(evidence_line(e) for e in record["evidence"])
        return [
            ("control_id", record["control_id"]),
            ("control_title", record["title"]),
            ("severity", record["severity"]),
            ("section", record["section"]),
            ("baseline", record["baseline"]),
            ("target", record["target"]),
            ("outcome", record["outcome"]),
            ("outcome_detail", record["detail"]),
            ("evidence", evidence),
            ("remediation", record["remediation"]),
            ("references", " ".join(record["references"])),
            *waiver_properties(record.get("waiver")),
        ]

    def _settle_call(self, item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None],
                     binding: ControlBinding) -> None:
        """Apply the fail-closed rules to a call phase that passed or failed on an assertion."""
        evidence: Evidence | None = item.stash.get(EVIDENCE_KEY, None)
        where = _where(item, binding)
        if report.passed and binding.control.mode == TESTINFRA_MODE and evidence is None:
            # A testinfra check's assertions are its evidence.
            evidence = item.stash[EVIDENCE_KEY] = Evidence(redact=self._redact)
            evidence.expect(f"assertions of {item.name}", expected="hold", actual="held", ok=True)
        if report.passed:
            if evidence is None or not evidence.observations:
                report.outcome = "failed"
                report.longrepr = (
                    f"{where} passed without recording any evidence; a control test records what it "
                    "observed with the secagent_evidence fixture"
                )
            elif evidence.failed_count:
                report.outcome = "failed"
                report.longrepr = (
                    f"{where} recorded {evidence.failed_count} unmet expectation(s) but did not "
                    "fail; call secagent_evidence.conclude() at the end of the check\n"
                    + evidence.summary()
                )

    def _settle_exception(
        self, item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None],
        binding: ControlBinding,
    ) -> bool:
        """Settle a phase that raised anything but an assertion; return whether it was handled.

        Evidence that could not be gathered (:class:`EvidenceUnavailable`) and internal errors
        of a check (``TypeError``, ``KeyError``...) make the control an *error*, unless the
        check had already recorded an unmet expectation: a proven failure stays a failure and
        the report adds what could not be verified.
        """
        excinfo = call.excinfo
        if excinfo is None or report.skipped:
            return False
        unavailable = excinfo.errisinstance(EvidenceUnavailable)
        # Assertions (and pytest.fail) are verdicts; skips and exits are not Exceptions.
        internal = not unavailable and excinfo.errisinstance(Exception) and not excinfo.errisinstance(
            AssertionError
        )
        if not (unavailable or internal):
            return False
        target = _target_of(item)
        where = printable(target.id) if target else "?"
        if unavailable:
            # Connections name their target already; say it once.
            reason = str(excinfo.value).removeprefix(f"{where}: ")
        else:
            reason = f"internal error in the check: {excinfo.typename}: {excinfo.value}"
        reason = printable(self._redact(reason))
        traceback = "" if unavailable else "\n\n" + self._redact(str(report.longrepr))
        evidence: Evidence | None = item.stash.get(EVIDENCE_KEY, None)
        failures = evidence.failures if evidence is not None and call.when == "call" else ()
        failed = evidence.failed_count if evidence is not None and call.when == "call" else 0
        if failed:
            lines = "\n".join(f"  - {o.name}: expected {o.expected}; observed {o.actual}" for o in failures)
            report.outcome = "failed"
            report.longrepr = (
                f"{failed} expectation(s) not met:\n{lines}\n"
                f"also could not verify the rest of {binding.control.id} on {where}: {reason}{traceback}"
            )
            item.stash[OUTCOME_KEY] = Outcome.FAILED
            item.stash[DETAIL_KEY] = (
                f"{failed} expectation(s) not met; also could not verify: {reason}"
            )
            return True
        report.outcome = "failed"
        report.longrepr = f"could not verify {binding.control.id} on {where}: {reason}{traceback}"
        if call.when == "call":
            # Pytest counts only setup and teardown failures as errors.
            report.when = "setup"
        item.stash[OUTCOME_KEY] = Outcome.ERROR
        item.stash[DETAIL_KEY] = f"could not verify {binding.control.id} on {where}: {reason}"
        return True

    def _finding(
        self, item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None],
        binding: ControlBinding,
    ) -> FindingRepr:
        """The failed report's body: the one-line finding, the evidence, then Python if needed.

        A failure message may quote observed values: credentials are masked in it too, and
        what a target sent is escaped so that it cannot act on the reader's terminal.
        """
        original = report.longrepr
        crash = getattr(getattr(original, "reprcrash", None), "message", None)
        text = str(original)
        if not isinstance(original, str):
            text = self._redact(text)
        text = printable(text, MAX_LONGREPR_LENGTH, lines=True)
        evidence: Evidence | None = item.stash.get(EVIDENCE_KEY, None)
        control = binding.control
        style = str(item.config.getoption("tbstyle", "auto"))
        long_traceback = style == "long"
        verbose = int(item.config.getoption("verbose", 0) or 0) > 0
        outcome = item.stash.get(OUTCOME_KEY, None)
        if outcome is Outcome.ERROR:
            headline = printable(self._redact(str(item.stash.get(DETAIL_KEY, "")))) or text.splitlines()[0]
            # Our own reasons are the headline; a traceback is kept only for internal errors.
            block = "" if isinstance(original, str) and not _has_traceback(text) else text
            if isinstance(original, str) and _has_traceback(text):
                block = text.partition("\n\n")[2]
        else:
            own = isinstance(original, str)
            fallback = text if own else printable(self._redact(crash or ""), MAX_LONGREPR_LENGTH, lines=True)
            headline = headline_for_failure(_where(item, binding), control.severity.value, evidence, fallback)
            if own:
                block = text  # our own words: no evidence was recorded, or a part could not be verified
            elif call.excinfo is not None and call.excinfo.errisinstance(ControlFailed):
                block = text if long_traceback else ""
            else:
                block = text if long_traceback else fallback  # a plain assertion: its comparison
        path, lineno, _ = report.location
        return FindingRepr(
            headline,
            evidence_lines=evidence_lines(evidence, verbose=verbose),
            remediation=control.remediation,
            references=control.references,
            traceback=block,
            path=str(path),
            lineno=(lineno or 0) + 1,
            style=style,
        )

    def _settle_partial(self, item: pytest.Item, report: pytest.TestReport, binding: ControlBinding) -> None:
        """A pass with parts this target cannot show is ``partial``; strict evidence fails it."""
        evidence: Evidence | None = item.stash.get(EVIDENCE_KEY, None)
        parts = evidence.unobserved_parts if evidence is not None else ()
        if not report.passed or not parts:
            return
        missing = "; ".join(f"{o.name} ({o.actual})" for o in parts)
        item.stash[OUTCOME_KEY] = Outcome.PARTIAL
        item.stash[DETAIL_KEY] = f"passed on partial evidence; not observed: {missing}"
        settings = item.config.stash.get(SETTINGS_KEY, None)
        if settings is not None and settings.strict_evidence and evidence is not None:
            report.outcome = "failed"
            report.longrepr = (
                f"{_where(item, binding)} passed only on partial evidence, which "
                f"--secagent-strict-evidence does not accept; not observed: {missing}\n" + evidence.summary()
            )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Attach the control record to the report; settle errors, failures and partial passes."""
        binding = item.stash.get(BINDING_KEY, None)
        if binding is None:
            return (yield)
        if call.when == "teardown":
            # Properties are read from the teardown report; the record is complete by then.
            item.user_properties.extend(self._junit_properties(self._record(item, binding)))
        report = yield
        if self._settle_exception(item, report, call, binding):
            pass
        elif call.when == "call":
            self._settle_call(item, report, call, binding)
            if report.skipped:
                reason = skip_reason(report)
                item.stash[OUTCOME_KEY] = _skip_outcome(reason)
                item.stash[DETAIL_KEY] = reason
            else:
                item.stash[OUTCOME_KEY] = Outcome.PASSED if report.passed else Outcome.FAILED
                if report.failed:
                    item.stash[DETAIL_KEY] = _first_line(report)
                self._settle_partial(item, report, binding)
        elif report.failed:
            item.stash[OUTCOME_KEY] = Outcome.ERROR
            item.stash[DETAIL_KEY] = _first_line(report)
        elif report.skipped:
            reason = skip_reason(report)
            item.stash[OUTCOME_KEY] = _skip_outcome(reason)
            item.stash[DETAIL_KEY] = reason
        if report.failed:
            # pytest prints any object with toterminal() and reads reprcrash for -ra and JUnit.
            report.longrepr = self._finding(item, report, call, binding)  # type: ignore[assignment]
        elif report.skipped and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
            path, lineno, message = report.longrepr
            report.longrepr = (path, lineno, printable(self._redact(str(message))))
        if call.when == "call" and item.stash.get(OUTCOME_KEY, None) is Outcome.FAILED:
            self._apply_waiver(item, report, binding)
        setattr(report, RECORD_ATTRIBUTE, self._record(item, binding))
        return report

    def _apply_waiver(self, item: pytest.Item, report: pytest.TestReport, binding: ControlBinding) -> None:
        """Turn a failure into ``waived`` when a current waiver matches; say so when it expired.

        Only failures are waivable: an error (evidence that could not be gathered) never is.
        """
        settings = item.config.stash.get(SETTINGS_KEY, None)
        if settings is None or settings.waivers is None:
            return
        target = _target_of(item)
        match: WaiverMatch | None = settings.waivers.match(
            binding.control.id, target.id if target else "", target.uri if target else "", waivers.today()
        )
        if match is None:
            return
        waiver = match.waiver
        where = f"{settings.waivers.source}, {waiver.label}"
        if not match.applied:
            item.stash[WAIVER_KEY] = waiver.as_dict("expired")
            report.sections.append((
                WAIVER_EXPIRED_SECTION,
                f"the waiver of {waiver.control} owned by {waiver.owner} expired on {waiver.expires} "
                f"({where}); it no longer applies, so this failure counts. Fix the control, or renew "
                f"the waiver with a new expiry date. Its reason was: {waiver.reason}",
            ))
            return
        item.stash[WAIVER_KEY] = waiver.as_dict("applied")
        item.stash[OUTCOME_KEY] = Outcome.WAIVED
        report.sections.append((WAIVED_SECTION, report.longreprtext))
        path, lineno, _ = report.location
        report.outcome = "skipped"
        report.longrepr = (
            str(path),
            (lineno or 0) + 1,
            f"waived until {waiver.expires} by {waiver.owner}: {waiver.reason} ({where})",
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport, config: pytest.Config
    ) -> tuple[str, str, str | tuple[str, Mapping[str, bool]]] | None:
        """Show a waived failure as ``waived`` (``w``), a pass on partial evidence as ``partial`` (``p``)."""
        record = getattr(report, RECORD_ATTRIBUTE, None)
        waived = isinstance(record, dict) and record.get("outcome") == Outcome.WAIVED.value
        if report.when == "call" and waived:
            return "waived", "w", ("WAIVED", {"yellow": True})
        partial = isinstance(record, dict) and record.get("outcome") == Outcome.PARTIAL.value
        if report.when == "call" and partial and report.passed:
            return "partial", "p", ("PARTIAL", {"yellow": True})
        return None


def _has_traceback(text: str) -> bool:
    return "Traceback" in text or "\n\n" in text


def _where(item: pytest.Item, binding: ControlBinding) -> str:
    target = _target_of(item)
    return f"{binding.control.id} on {printable(target.id) if target else '?'}"


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(report.longrepr or "").strip().splitlines()[-1:][0] if report.longrepr else ""
