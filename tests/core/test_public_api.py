"""The public API, importable from the package root and usable without pytest running."""

from __future__ import annotations

import pytest_secagent
from pytest_secagent import Evidence, EvidenceUnavailable, Severity, TargetKind, parse_target


def test_public_names_are_exported() -> None:
    assert set(pytest_secagent.__all__) >= {"Evidence", "EvidenceUnavailable", "parse_target", "Policy"}
    for name in pytest_secagent.__all__:
        assert hasattr(pytest_secagent, name)


def test_library_use_without_pytest_hooks() -> None:
    target = parse_target("https://acme.atlan.com")
    assert target.kind is TargetKind.ENDPOINT
    evidence = Evidence()
    evidence.expect("tls", expected="TLSv1.2+", actual="TLSv1.3", ok=True)
    evidence.conclude()
    assert Severity.parse("HIGH").rank == 3
    assert issubclass(EvidenceUnavailable, Exception)
