"""The severity gate: which control results fail the run, and with which exit status.

Exit statuses when ``--secagent-fail-on`` is given (pytest's own statuses 2 to 5, for an
interrupted run, an internal error, a usage error or no tests, are never changed):

* ``0`` compliant: no failure at or above the threshold, no unverified control (or
  ``--secagent-allow-errors``), and no problem with the waivers in strict mode;
* ``1`` non-compliant: a control failed at or above the threshold, a test that is not a
  control failed, or (strict mode) a waiver expired or matched no failure;
* ``6`` unverified: nothing above failed, but a control could not be verified (an error)
  and errors are not allowed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from pytest_secagent.model import Outcome, Severity

__all__ = ["EXIT_UNVERIFIED", "GateStatus", "GateVerdict", "evaluate_gate", "gated_exit_status"]

EXIT_UNVERIFIED = 6


class GateStatus(enum.IntEnum):
    """The documented exit statuses of a gated run."""

    COMPLIANT = 0
    NON_COMPLIANT = 1
    UNVERIFIED = EXIT_UNVERIFIED


@dataclass(frozen=True)
class GateVerdict:
    """What the gate decided, with the counts behind it."""

    fail_on: Severity
    allow_errors: bool
    status: GateStatus
    gating_failures: int
    other_control_failures: int
    errors: int
    other_test_failures: int
    waiver_problems: int

    @property
    def reasons(self) -> list[str]:
        """Why the run fails (empty when it passes the gate)."""
        reasons: list[str] = []
        if self.gating_failures:
            reasons.append(f"{self.gating_failures} control failure(s) at or above {self.fail_on.value}")
        if self.other_test_failures:
            reasons.append(f"{self.other_test_failures} test(s) outside the controls failed")
        if self.waiver_problems:
            reasons.append(f"{self.waiver_problems} expired or unused waiver(s) in strict mode")
        if self.errors and not self.allow_errors:
            reasons.append(f"{self.errors} control(s) could not be verified")
        return reasons

    def describe(self) -> str:
        """One line for the terminal summary."""
        below = (
            f"; {self.other_control_failures} failure(s) below {self.fail_on.value} do not gate"
            if self.other_control_failures
            else ""
        )
        allowed = (
            f"; {self.errors} unverified control(s) allowed" if self.errors and self.allow_errors else ""
        )
        if self.status is GateStatus.COMPLIANT:
            return f"passed (fail on {self.fail_on.value} and above{below}{allowed}): exit status 0"
        label = "non-compliant" if self.status is GateStatus.NON_COMPLIANT else "unverified"
        return f"{label}: {'; '.join(self.reasons)}{below}{allowed}: exit status {int(self.status)}"


def evaluate_gate(
    results: Iterable[tuple[Outcome, Severity]],
    *,
    fail_on: Severity,
    allow_errors: bool,
    strict_evidence: bool = False,
    other_test_failures: int = 0,
    waiver_problems: int = 0,
) -> GateVerdict:
    """Decide the gate from each control result's outcome and severity.

    Waived failures never gate; expired waivers leave the failure as it is. With
    ``strict_evidence`` a pass on partial evidence counts as a failure of its severity.
    """
    gating = below = errors = 0
    for outcome, severity in results:
        if outcome is Outcome.FAILED or (strict_evidence and outcome is Outcome.PARTIAL):
            if severity.rank >= fail_on.rank:
                gating += 1
            else:
                below += 1
        elif outcome is Outcome.ERROR:
            errors += 1
    if gating or other_test_failures or waiver_problems:
        status = GateStatus.NON_COMPLIANT
    elif errors and not allow_errors:
        status = GateStatus.UNVERIFIED
    else:
        status = GateStatus.COMPLIANT
    return GateVerdict(
        fail_on=fail_on,
        allow_errors=allow_errors,
        status=status,
        gating_failures=gating,
        other_control_failures=below,
        errors=errors,
        other_test_failures=other_test_failures,
        waiver_problems=waiver_problems,
    )


def gated_exit_status(current: int | pytest.ExitCode, verdict: GateVerdict) -> int | pytest.ExitCode:
    """The run's exit status under the gate: pytest's own failures of the run itself stay."""
    if current not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return current
    return pytest.ExitCode(int(verdict.status)) if verdict.status < 2 else int(verdict.status)
