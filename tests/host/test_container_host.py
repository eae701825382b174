"""docker://CONTAINER targets against a real dockerd (the engine tests' daemon helper)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_secagent.host.checks.listeners import check_listeners
from pytest_secagent.host.container import ContainerConnection
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.targets import ContainerTarget
from tests.host.engine.dockerd import DOCKER, build_rootfs_tar, running_dockerd
from tests.host.hosts import run_check
from tests.support import require, require_root, require_tool

pytestmark = pytest.mark.needs("dockerd")

HOSTILE = "a b'c\"d $(id) `id`; id"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dockerd of our own running one busybox container; yields the daemon's endpoint."""
    require_root()
    require_tool("dockerd", "docker.io")
    require_tool("busybox", "busybox-static")
    require("docker CLI", Path(DOCKER).exists(), "install the Debian package docker.io")
    rootfs = build_rootfs_tar(tmp_path_factory.mktemp("sa-host-rootfs"))
    config = {"bridge": "none", "iptables": False, "ip6tables": False}
    with running_dockerd("sahost", config, rootfs_tar=rootfs) as daemon:
        daemon.create("sa-host-box", start=True)
        yield daemon.endpoint


@pytest.fixture
def container(box: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ContainerConnection]:
    monkeypatch.setenv("DOCKER_HOST", box)
    target = ContainerTarget(uri="docker://sa-host-box", container="sa-host-box")
    connection = ContainerConnection.connect(target, timeout=5, engine_cli=DOCKER)
    try:
        yield connection
    finally:
        connection.close()


def test_commands_run_inside_the_container_verbatim(container: ContainerConnection) -> None:
    assert container.run(["printf", "%s", HOSTILE]).stdout == HOSTILE
    assert container.run(["sh", "-c", "exit 4"]).exit_status == 4
    assert container.read_text("/no/such/file") is None
    assert container.which("sh") is not None
    assert container.read_text("/proc/1/cmdline") is not None


def test_timeout_kills_the_command_inside_the_container(container: ContainerConnection) -> None:
    with pytest.raises(EvidenceUnavailable, match=r"`sleep 30` did not finish within 1 s"):
        container.run(["sleep", "30"], timeout=1)
    rows = container.run(["ps", "-o", "pid,args"]).stdout.splitlines()[1:]
    commands = [row.split(None, 1)[1] for row in rows]
    assert not [c for c in commands if c.split()[0].endswith("sleep") and "30" in c.split()], commands


def test_listener_check_reads_the_container(container: ContainerConnection) -> None:
    evidence = run_check(check_listeners, container)
    evidence.conclude()


def test_missing_container_is_an_error(box: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", box)
    target = ContainerTarget(uri="docker://sa-host-absent", container="sa-host-absent")
    with pytest.raises(EvidenceUnavailable, match="cannot run commands in the container"):
        ContainerConnection.connect(target, timeout=5, engine_cli=DOCKER)
