"""Two real dockerd daemons of different configurations at once: each read as its own.

Both also listen on one shared socket (the later one, ``second``, took it over), so that
socket is claimed by two command lines at the same time.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_secagent.host.engine.client import EngineKind
from pytest_secagent.host.engine.daemon import EngineSettings, read_engine_settings
from pytest_secagent.host.local import LocalConnection
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy import Policy
from pytest_secagent.policy.model import EngineSection
from tests.host.engine.conftest import DEFAULT_CONFIG
from tests.host.engine.dockerd import DOCKER, TestDaemon, running_dockerd, worker_tag
from tests.host.engine.verdicts import snapshot

FIRST_CONFIG = {**DEFAULT_CONFIG, "no-new-privileges": True, "insecure-registries": ["first.saeng.test:5000"]}
SECOND_CONFIG = {
    **DEFAULT_CONFIG,
    "live-restore": True,
    "userland-proxy": False,
    "insecure-registries": ["second.saeng.test:5000"],
}


@dataclass(frozen=True)
class Pair:
    """Two running daemons and the socket both claim."""

    first: TestDaemon
    second: TestDaemon
    shared: Path


def pid_of(daemon: TestDaemon) -> int:
    assert daemon.process is not None
    return daemon.process.pid


@pytest.fixture(scope="module")
def pair(docker_tools: None) -> Iterator[Pair]:
    """``first`` and ``second`` running side by side, each on its own socket and the shared one."""
    folder = Path(tempfile.mkdtemp(prefix=f"saeng-shared-{worker_tag()}-", dir="/tmp"))
    shared = folder / "shared.sock"
    try:
        extra = ("--host", f"unix://{shared}")
        with (
            running_dockerd("first", FIRST_CONFIG, extra_args=extra) as first,
            running_dockerd("second", SECOND_CONFIG, extra_args=extra) as second,
        ):
            yield Pair(first, second, shared)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def narrow_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal width that cuts ``ps -o args`` output short, as a shell or xdist sets it."""
    monkeypatch.setenv("COLUMNS", "40")


def settings_at(endpoint: str) -> EngineSettings:
    policy = Policy(engine=EngineSection(cli=DOCKER, socket=endpoint))
    return snapshot(policy, LocalConnection(timeout=20.0)).settings()


@pytest.mark.usefixtures("narrow_terminal")
def test_each_daemon_is_read_as_its_own(pair: Pair) -> None:
    first = settings_at(pair.first.endpoint)
    second = settings_at(pair.second.endpoint)

    assert first.source == f"dockerd (pid {pid_of(pair.first)}) command line; {pair.first.root}/daemon.json"
    assert (first.no_new_privileges, first.userland_proxy) == (True, True)
    assert first.insecure_registries == ("first.saeng.test:5000",)
    assert first.hosts == (pair.first.endpoint, f"unix://{pair.shared}")
    assert second.source == f"dockerd (pid {pid_of(pair.second)}) command line; {pair.second.root}/daemon.json"
    assert (second.no_new_privileges, second.userland_proxy) == (False, False)
    assert second.insecure_registries == ("second.saeng.test:5000",)


def test_a_symlink_to_a_socket_reaches_its_daemon(pair: Pair, tmp_path: Path) -> None:
    link = tmp_path / "engine.sock"
    link.symlink_to(pair.first.socket)

    assert settings_at(f"unix://{link}").source.startswith(f"dockerd (pid {pid_of(pair.first)}) ")


def test_the_data_root_the_engine_reports_decides_on_a_shared_socket(pair: Pair) -> None:
    # Both command lines claim the shared socket; the engine answering there reports the
    # data root of the daemon that bound it last.
    engine = snapshot(Policy(engine=EngineSection(cli=DOCKER, socket=str(pair.shared))))

    assert engine.security().root_dir == str(pair.second.root / "data")
    assert engine.settings().source.startswith(f"dockerd (pid {pid_of(pair.second)}) ")


def test_a_shared_socket_without_a_data_root_is_ambiguous(pair: Pair) -> None:
    host = LocalConnection(timeout=20.0)

    with pytest.raises(EvidenceUnavailable) as raised:
        read_engine_settings(
            host, EngineKind.DOCKER, endpoint=f"unix://{pair.shared}", root_dir=None, rootless=False, timeout=20.0
        )

    message = str(raised.value)
    assert f"local: 2 dockerd processes could be the engine (all listen on unix://{pair.shared})" in message
    assert f"pid {pid_of(pair.first)} (" in message
    assert f"pid {pid_of(pair.second)} (" in message
    assert "set engine.socket in the policy" in message


def test_the_data_root_alone_attributes_when_only_one_daemon_owns_it(pair: Pair) -> None:
    host = LocalConnection(timeout=20.0)

    found = read_engine_settings(
        host,
        EngineKind.DOCKER,
        endpoint="unix:///nonexistent/saeng.sock",
        root_dir=str(pair.first.root / "data"),
        rootless=False,
        timeout=20.0,
    )

    assert found.source.startswith(f"dockerd (pid {pid_of(pair.first)}) ")


def test_a_root_that_contradicts_the_daemon_on_the_socket_is_an_error(pair: Pair) -> None:
    host = LocalConnection(timeout=20.0)

    with pytest.raises(EvidenceUnavailable, match="do not describe that engine"):
        read_engine_settings(
            host,
            EngineKind.DOCKER,
            endpoint=pair.first.endpoint,
            root_dir=str(pair.second.root / "data"),
            rootless=False,
            timeout=20.0,
        )


def test_no_daemon_on_the_socket_nor_the_root_is_an_error(pair: Pair) -> None:
    host = LocalConnection(timeout=20.0)

    with pytest.raises(EvidenceUnavailable, match=r"set engine\.socket"):
        read_engine_settings(
            host,
            EngineKind.DOCKER,
            endpoint="unix:///nonexistent/saeng.sock",
            root_dir="/nonexistent/saeng-root",
            rootless=False,
            timeout=20.0,
        )
