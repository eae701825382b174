"""How a check says it could not decide: an error (fail closed) or a reasoned skip."""

from __future__ import annotations

from typing import NoReturn

import pytest

NOT_APPLICABLE_PREFIX = "not applicable: "
NOT_OBSERVABLE_PREFIX = "not observable: "


class EvidenceUnavailable(Exception):
    """The evidence a check needs could not be gathered (timeout, 403, missing tool...).

    Raised anywhere in a check or in a fixture it uses, it makes the test an *error* that
    carries the reason: a check that could not look never passes.
    """


def not_applicable(reason: str) -> NoReturn:
    """Skip the current check because the target has nothing it applies to."""
    __tracebackhide__ = True
    pytest.skip(NOT_APPLICABLE_PREFIX + reason)


def not_observable(reason: str) -> NoReturn:
    """Skip the current check because the target hides the evidence by design.

    Use it for managed control planes that do not expose what the check reads; it is
    reported as ``not observable``, never as a pass.
    """
    __tracebackhide__ = True
    pytest.skip(NOT_OBSERVABLE_PREFIX + reason)
