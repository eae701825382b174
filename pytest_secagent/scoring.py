"""The compliance score: the share of scored results that passed."""

from __future__ import annotations

from collections import Counter

from pytest_secagent.model import Outcome

__all__ = ["SCORED_OUTCOMES", "format_score", "score"]

#: The outcomes a score counts: waived failures, unverified controls and passes on partial
#: evidence count against it; not applicable, not observable and skipped results are left out.
SCORED_OUTCOMES = (Outcome.PASSED, Outcome.PARTIAL, Outcome.FAILED, Outcome.WAIVED, Outcome.ERROR)


def score(counts: Counter[Outcome]) -> float | None:
    """Share of scored results that fully passed (0..1), or ``None`` when nothing was scored.

    A pass on partial evidence is scored but is not a full pass: a run on rendered files can
    not reach 100% on a control whose part only a live cluster shows.
    """
    scored = sum(counts[o] for o in SCORED_OUTCOMES)
    return counts[Outcome.PASSED] / scored if scored else None


def format_score(value: float | None) -> str:
    """A score as a whole percentage, ``-`` when nothing was scored."""
    return "-" if value is None else f"{value * 100:.0f}%"
