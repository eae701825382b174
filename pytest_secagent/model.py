"""The control metadata model: severities, controls and result states."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.Enum):
    """How much a failed control matters, from ``low`` to ``critical``."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Numeric order of the severity: low is 1, critical is 4."""
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        """Return the severity named by ``value`` (case-insensitive).

        Raises ``ValueError`` naming the valid severities when ``value`` is not one.
        """
        try:
            return cls(value.strip().lower())
        except ValueError:
            valid = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {value!r}; valid severities: {valid}") from None


_SEVERITY_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


class Outcome(enum.Enum):
    """The state a control ends in for one target."""

    PASSED = "passed"
    #: Every expectation held, but part of the control cannot be seen on this kind of
    #: target (a rendered manifest cannot show the CNI that runs): a pass on partial evidence.
    PARTIAL = "partial"
    FAILED = "failed"
    WAIVED = "waived"
    ERROR = "error"
    NOT_APPLICABLE = "not applicable"
    NOT_OBSERVABLE = "not observable"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Control:
    """One checkable control: a stable ID plus what a report needs to explain it."""

    id: str
    title: str
    section: str
    severity: Severity
    baseline: str = ""
    remediation: str = ""
    references: tuple[str, ...] = ()
    target_kinds: tuple[str, ...] = ()
    mode: str = ""
    tags: tuple[str, ...] = field(default=())
