"""Fixtures of the Kubernetes tests: a real HTTPS test API server seeded from scenarios."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.kubernetes.apiauth import Rule, User
from tests.kubernetes.apiserver import FakeApiServer, SilentServer, start_apiserver

SCENARIOS = Path(__file__).parent / "scenarios"

ApiServerFactory = Callable[..., FakeApiServer]


@pytest.fixture
def k8s_apiserver_factory(tmp_path: Path) -> Iterator[ApiServerFactory]:
    """Start test API servers: ``factory(scenario_dir=None, users=None, *, version=None, objects=())``.

    ``scenario_dir`` is a folder of manifests (``apiserver.cfg`` optional), ``users`` maps user
    names to :class:`tests.kubernetes.apiauth.Rule` tuples (default: ``admin`` and a read-only
    ``auditor``). The server has ``.kubeconfig_for(user)``, ``.request_log`` and ``.url``;
    every server is stopped after the test.
    """
    servers: list[FakeApiServer] = []
    counter = itertools.count()

    def factory(
        scenario_dir: Path | str | None = None,
        users: dict[str, Sequence[Rule]] | Iterable[User] | None = None,
        *,
        version: str | None = None,
        objects: Iterable[dict[str, Any]] = (),
        default_namespace: str = "default",
    ) -> FakeApiServer:
        scenario = Path(scenario_dir) if scenario_dir is not None else None
        server = start_apiserver(
            tmp_path / f"apiserver-{next(counter)}",
            scenario,
            users,
            version=version,
            objects=objects,
            default_namespace=default_namespace,
        )
        servers.append(server)
        return server

    try:
        yield factory
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def k8s_silent_server() -> Iterator[SilentServer]:
    """A loopback TCP server that accepts connections and never answers (for timeouts)."""
    server = SilentServer().start()
    try:
        yield server
    finally:
        server.stop()
