"""What a check expected and what it observed: the record behind every verdict."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from pytest_secagent.outcomes import not_observable
from pytest_secagent.redaction import DEFAULT_REDACTOR
from pytest_secagent.safetext import MAX_TEXT_LENGTH, printable

#: The longest expected or observed value kept, in characters (longer ones are cut, marked).
MAX_VALUE_LENGTH = MAX_TEXT_LENGTH
#: The longest observation name kept, in characters.
MAX_NAME_LENGTH = 500
#: How many observations one control keeps; later ones are counted, and failures still fail.
MAX_OBSERVATIONS = 200
#: How many characters of evidence one control keeps in all (names and values).
MAX_EVIDENCE_CHARACTERS = 64 * 1024


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
    #: Where the observed thing is written: ``FILE:LINE`` for a rendered file, else empty.
    location: str = ""

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
    return value if isinstance(value, str) else repr(value)


class Evidence:
    """Records what a check expected and observed; the reports carry every entry.

    A check calls :meth:`expect` for each assertion it makes, :meth:`observe` for facts
    worth keeping, :meth:`warn` for lower-severity findings, and ends with
    :meth:`conclude`, which fails the test listing every expectation that did not hold.
    Values are redacted before they are stored, so a credential never reaches a report, and
    made printable (control characters escaped, cut at :data:`MAX_VALUE_LENGTH`). One control
    keeps at most :data:`MAX_OBSERVATIONS` observations and :data:`MAX_EVIDENCE_CHARACTERS`
    characters; what comes after is counted by verdict, and a failure among it still fails.
    """

    def __init__(self, redact: Callable[[str], str] = DEFAULT_REDACTOR) -> None:
        self._redact = redact
        self._observations: list[Observation] = []
        self._characters = 0
        self._dropped: dict[Verdict, int] = {}

    @property
    def dropped(self) -> dict[Verdict, int]:
        """How many observations of each verdict were counted but not kept (over the bounds)."""
        return dict(self._dropped)

    @property
    def observations(self) -> tuple[Observation, ...]:
        """Everything recorded so far, in order."""
        return tuple(self._observations)

    @property
    def failures(self) -> tuple[Observation, ...]:
        """The expectations that did not hold."""
        return tuple(o for o in self._observations if o.verdict is Verdict.FAIL)

    @property
    def failed_count(self) -> int:
        """How many expectations did not hold, kept or not (see :attr:`dropped`)."""
        return len(self.failures) + self._dropped.get(Verdict.FAIL, 0)

    @property
    def unobserved_parts(self) -> tuple[Observation, ...]:
        """The parts of the control this target could not show (see :meth:`unobserved`)."""
        return tuple(o for o in self._observations if o.verdict is Verdict.UNOBSERVED)

    @property
    def warnings(self) -> tuple[Observation, ...]:
        """The lower-severity findings."""
        return tuple(o for o in self._observations if o.verdict is Verdict.WARN)

    def _add(
        self, name: str, expected: object, actual: object, verdict: Verdict, location: str | None = None
    ) -> None:
        full = len(self._observations) >= MAX_OBSERVATIONS or self._characters >= MAX_EVIDENCE_CHARACTERS
        if full:
            self._dropped[verdict] = self._dropped.get(verdict, 0) + 1
            return
        observation = Observation(
            name=printable(self._redact(name), MAX_NAME_LENGTH),
            expected=printable(self._redact(_render(expected)), MAX_VALUE_LENGTH),
            actual=printable(self._redact(_render(actual)), MAX_VALUE_LENGTH),
            verdict=verdict,
            location=printable(location or "", MAX_NAME_LENGTH),
        )
        self._characters += len(observation.name) + len(observation.expected) + len(observation.actual)
        self._observations.append(observation)

    def expect(
        self, name: str, *, expected: object, actual: object, ok: bool, location: str | None = None
    ) -> bool:
        """Record an expectation and whether it held; return ``ok``.

        ``location`` (``FILE:LINE``) says where the observed thing is written, for reports
        that point at source lines (SARIF).
        """
        self._add(name, expected, actual, Verdict.OK if ok else Verdict.FAIL, location)
        return ok

    def observe(self, name: str, actual: object) -> None:
        """Record an informational fact that does not decide the result."""
        self._add(name, "", actual, Verdict.INFO)

    def warn(self, name: str, *, expected: object, actual: object, location: str | None = None) -> None:
        """Record a lower-severity finding: reported, but it does not fail the control."""
        self._add(name, expected, actual, Verdict.WARN, location)

    def unobserved(self, name: str, *, expected: object, reason: str) -> None:
        """Record a part of the control that this kind of target cannot show.

        For example, a rendered manifest cannot show whether the cluster's CNI enforces
        NetworkPolicy. The part is reported with ``reason``; a control whose expectations all
        held but that has such a part ends as ``partial`` (a pass on partial evidence), never
        as a plain pass, and ``--secagent-strict-evidence`` counts it as not compliant.
        """
        self._add(name, expected, reason, Verdict.UNOBSERVED)

    def summary(self) -> str:
        """All observations, one per line, and a last line counting those not kept."""
        lines = [o.as_line() for o in self._observations]
        if self._dropped:
            lines.append(self._dropped_line())
        return "\n".join(lines)

    def _dropped_line(self) -> str:
        ordered = sorted(self._dropped.items(), key=lambda item: item[0].value)
        counts = ", ".join(f"{n} {verdict.value}" for verdict, n in ordered)
        return (
            f"[info] {sum(self._dropped.values())} more observation(s) not kept ({counts}): one control "
            f"keeps {MAX_OBSERVATIONS} observations and {MAX_EVIDENCE_CHARACTERS // 1024} KiB of evidence"
        )

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
        unkept = self._dropped.get(Verdict.FAIL, 0)
        if failures or unkept:
            lines = "\n".join(f"  - {o.name}: expected {o.expected}; observed {o.actual}" for o in failures)
            more = f"\n  - ... and {unkept} more not shown" if unkept else ""
            raise ControlFailed(f"{len(failures) + unkept} expectation(s) not met:\n{lines}{more}")
        unobserved = self.unobserved_parts
        if unobserved and not any(o.verdict is Verdict.OK for o in self._observations):
            not_observable("; ".join(f"{o.name}: {o.actual}" for o in unobserved))
