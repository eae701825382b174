"""Fixtures of the container-engine checks."""

from __future__ import annotations

import pytest

from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.engine.snapshot import EngineSnapshot, EngineSnapshots
from pytest_secagent.options import Settings
from pytest_secagent.policy import Policy

__all__ = ["secagent_engine", "secagent_engine_snapshots"]


@pytest.fixture(scope="session")
def secagent_engine_snapshots() -> EngineSnapshots:
    """What each host's container engine said, kept for the run so every check reads it once."""
    return EngineSnapshots()


@pytest.fixture
def secagent_engine(
    secagent_host: HostConnection,
    secagent_policy: Policy,
    secagent_settings: Settings,
    secagent_engine_snapshots: EngineSnapshots,
) -> EngineSnapshot:
    """The container engine (Docker or Podman) on this test's host target.

    Found through the policy's ``engine.cli`` (default: docker, else podman on ``PATH``) and
    reached at ``engine.socket`` (default: the CLI's own, honouring ``DOCKER_HOST``). A host
    without an engine makes the check *not applicable*; an engine that does not answer, or
    refuses us, makes it an error with the reason. Read-only: ``version``, ``info``, ``ps``,
    ``container inspect``, ``ps -C dockerd``, ``stat`` and the engine's configuration files.
    """
    return secagent_engine_snapshots.get(
        secagent_host, secagent_policy.engine, timeout=secagent_settings.timeout
    )
