"""What a check expected and what it observed: the record behind every verdict."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from pytest_secagent.outcomes import not_observable
from pytest_secagent.redaction import DEFAULT_REDACTOR

MAX_VALUE_LENGTH = 2000


class Verdict(enum.Enum):
    """How one observation counts towards the control's result."""

    OK = "ok"
    FAIL = "fail"
    WARN = "warn"
    INFO = "info"
    #: A part of the control this kind of target cannot show; the control is at best partial.
    UNOBSERVED = "unobserved"


@dataclass(frozen=True)
class Observation:
    """One recorded fact: its name, the expectation, the observed value and the verdict."""

    name: str
    expected: str
    actual: str
    verdict: Verdict

    def as_line(self) -> str:
        """Render the observation as one report line."""
        if self.verdict is Verdict.INFO:
            return f"[info] {self.name}: {self.actual}"
        if self.verdict is Verdict.UNOBSERVED:
            return f"[unobserved] {self.name}: expected {self.expected}; not observed: {self.actual}"
        return f"[{self.verdict.value}] {self.name}: expected {self.expected}; observed {self.actual}"


class ControlFailed(AssertionError):
    """A control's expectations did not hold; the message lists each one that failed."""


def _render(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    if len(text) > MAX_VALUE_LENGTH:
        text = text[:MAX_VALUE_LENGTH] + f"... ({len(text) - MAX_VALUE_LENGTH} more characters)"
    return text


class Evidence:
    """Records what a check expected and observed; the reports carry every entry.

    A check calls :meth:`expect` for each assertion it makes, :meth:`observe` for facts
    worth keeping, :meth:`warn` for lower-severity findings, and ends with
    :meth:`conclude`, which fails the test listing every expectation that did not hold.
    Values are redacted before they are stored, so a credential never reaches a report.
    """

    def __init__(self, redact: Callable[[str], str] = DEFAULT_REDACTOR) -> None:
        self._redact = redact
        self._observations: list[Observation] = []

    @property
    def observations(self) -> tuple[Observation, ...]:
        """Everything recorded so far, in order."""
        return tuple(self._observations)

    @property
    def failures(self) -> tuple[Observation, ...]:
        """The expectations that did not hold."""
        return tuple(o for o in self._observations if o.verdict is Verdict.FAIL)

    @property
    def unobserved_parts(self) -> tuple[Observation, ...]:
        """The parts of the control this target could not show (see :meth:`unobserved`)."""
        return tuple(o for o in self._observations if o.verdict is Verdict.UNOBSERVED)

    @property
    def warnings(self) -> tuple[Observation, ...]:
        """The lower-severity findings."""
        return tuple(o for o in self._observations if o.verdict is Verdict.WARN)

    def _add(self, name: str, expected: object, actual: object, verdict: Verdict) -> None:
        self._observations.append(
            Observation(
                name=self._redact(name),
                expected=self._redact(_render(expected)),
                actual=self._redact(_render(actual)),
                verdict=verdict,
            )
        )

    def expect(self, name: str, *, expected: object, actual: object, ok: bool) -> bool:
        """Record an expectation and whether it held; return ``ok``."""
        self._add(name, expected, actual, Verdict.OK if ok else Verdict.FAIL)
        return ok

    def observe(self, name: str, actual: object) -> None:
        """Record an informational fact that does not decide the result."""
        self._add(name, "", actual, Verdict.INFO)

    def warn(self, name: str, *, expected: object, actual: object) -> None:
        """Record a lower-severity finding: reported, but it does not fail the control."""
        self._add(name, expected, actual, Verdict.WARN)

    def unobserved(self, name: str, *, expected: object, reason: str) -> None:
        """Record a part of the control that this kind of target cannot show.

        For example, a rendered manifest cannot show whether the cluster's CNI enforces
        NetworkPolicy. The part is reported with ``reason``; a control whose expectations all
        held but that has such a part ends as ``partial`` (a pass on partial evidence), never
        as a plain pass, and ``--secagent-strict-evidence`` counts it as not compliant.
        """
        self._add(name, expected, reason, Verdict.UNOBSERVED)

    def summary(self) -> str:
        """All observations, one per line."""
        return "\n".join(o.as_line() for o in self._observations)

    def conclude(self) -> None:
        """Fail with every unmet expectation listed, or return when all held.

        An empty record also fails: a control that observed nothing proves nothing. A
        record holding only parts this target cannot show (:meth:`unobserved`) and no
        expectation is *not observable* (a reasoned skip), never a pass.
        """
        __tracebackhide__ = True
        if not self._observations:
            raise ControlFailed("no evidence was recorded, so the control is not proven")
        failures = self.failures
        if failures:
            lines = "\n".join(f"  - {o.name}: expected {o.expected}; observed {o.actual}" for o in failures)
            raise ControlFailed(f"{len(failures)} expectation(s) not met:\n{lines}")
        unobserved = self.unobserved_parts
        if unobserved and not any(o.verdict is Verdict.OK for o in self._observations):
            not_observable("; ".join(f"{o.name}: {o.actual}" for o in unobserved))
