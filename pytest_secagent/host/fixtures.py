"""Fixtures of the host checks."""

from __future__ import annotations

import pytest

from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.connect import open_host
from pytest_secagent.options import Settings
from pytest_secagent.outcomes import not_applicable
from pytest_secagent.targets import Target, TargetKind
from pytest_secagent.targets.pool import ConnectionPool

__all__ = ["secagent_host"]


@pytest.fixture
def secagent_host(
    secagent_target: Target, secagent_connections: ConnectionPool, secagent_settings: Settings
) -> HostConnection:
    """The open connection to this test's host target (``local://``, ``ssh://``, ``docker://``).

    One connection per host serves every check of the run (one per worker under
    ``pytest -n``). Every command is quoted and bounded by ``--secagent-timeout``; ssh host
    keys are verified strictly, and a host that cannot be reached, or whose key does not
    verify, makes each of its checks an error with the reason. Nothing is written to the host.
    """
    if secagent_target.kind is not TargetKind.HOST:
        not_applicable(f"{secagent_target.id} is not a host")

    def open_host_connection(target: Target) -> HostConnection:
        return open_host(target, secagent_settings)

    return secagent_connections.get(secagent_target, open_host_connection)
