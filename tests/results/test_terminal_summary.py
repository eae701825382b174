"""The terminal summary: colour where the terminal has it, and unreachable targets grouped."""

from __future__ import annotations

import pytest

from tests.results.helpers import BASE_ARGS, MEDIUM_FAIL, make_run

UNREACHABLE = """
@pytest.mark.secagent_control("SA-IAM-003")
def test_access(secagent_target, secagent_evidence):
    raise EvidenceUnavailable("ssh could not connect: connection refused")

@pytest.mark.secagent_control("SA-OPS-003")
def test_ir(secagent_target, secagent_evidence):
    raise EvidenceUnavailable("ssh could not connect: connection refused")
"""



def test_counts_are_coloured_only_with_colour(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL)
    coloured = pytester.runpytest(*BASE_ARGS, "--color=yes").stdout.str()
    plain = pytester.runpytest(*BASE_ARGS, "--color=no").stdout.str()
    assert "\x1b[31m" in coloured
    assert "\x1b[" not in plain
    assert "Security assessment     0%       0        0       1       0       0    0               0        0" in plain


def test_unreachable_targets_are_one_line_each(pytester: pytest.Pytester) -> None:
    make_run(pytester, UNREACHABLE)
    result = pytester.runpytest(*BASE_ARGS)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([
        "*- secagent targets that could not be checked -*",
        "policy: 2 controls could not be verified: ssh could not connect: connection refused",
    ])
