"""Fixtures of the container-engine checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_secagent.compose.view import ComposeView
from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.engine.snapshot import ContainerSource, EngineSnapshot, EngineSnapshots
from pytest_secagent.options import Settings
from pytest_secagent.policy import Policy
from pytest_secagent.targets import ComposeTarget, Target, TargetKind
from pytest_secagent.targets.pool import ConnectionPool

__all__ = ["secagent_containers", "secagent_engine", "secagent_engine_snapshots"]


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


@pytest.fixture
def secagent_containers(
    request: pytest.FixtureRequest, secagent_target: Target, secagent_connections: ConnectionPool
) -> ContainerSource:
    """The agent's containers of this test's target: a host's engine, or Compose files.

    On a host target this is :func:`secagent_engine`. On a ``compose://`` target each
    service stands for the container ``docker compose up`` would create from it: the files
    (and ``.env``, ``env_file``, ``extends``, ``include``) are read once per run, relative
    paths from the invocation folder; files that are not valid Compose make each check an
    error naming the file, line and key.
    """
    if secagent_target.kind is not TargetKind.COMPOSE:
        engine: EngineSnapshot = request.getfixturevalue("secagent_engine")
        return engine
    base = Path(request.config.invocation_params.dir)

    def open_compose_view(target: Target) -> ComposeView:
        assert isinstance(target, ComposeTarget)  # noqa: S101 - narrowed by the kind above
        return ComposeView(target.id, target.path, base=base)

    return secagent_connections.get(secagent_target, open_compose_view)
