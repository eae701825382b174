"""Hook specifications other plugins and conftest files can implement."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_secagent.summary import ControlResult


@pytest.hookspec
def pytest_secagent_results(config: pytest.Config, results: list[ControlResult]) -> None:
    """Receive every control result of the run once, on the controller, at session finish.

    Each result's ``outcome`` is final (``waived`` for a failure a current waiver accepts) and
    the severity gate has already set the exit status (``session.exitstatus``).
    """
