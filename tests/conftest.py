"""Fixtures shared by the plugin's own tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose inner runs ignore the caller's PYTEST_ADDOPTS."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return pytester
