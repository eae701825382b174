"""Real dockerd daemons the engine tests share: one per configuration, started once per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.host.engine.dockerd import (
    DOCKER,
    TestDaemon,
    build_rootfs_tar,
    remap_user,
    running_dockerd,
)
from tests.support import require, require_root, require_tool

DEFAULT_CONFIG = {"bridge": "none", "iptables": False, "ip6tables": False}
"""Debian's defaults, kept off the machine's network (no bridge, no iptables rules)."""

HARDENED_CONFIG = {
    "bridge": "none",
    "icc": False,
    "no-new-privileges": True,
    "live-restore": True,
    "userland-proxy": False,
}
"""CIS-style hardening; icc off needs iptables, so this daemon runs in its own netns."""

HARDENED_AGENT = (
    "--user", "1000:1000",
    "--read-only",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
    "--memory", "64m",
    "--cpus", "0.5",
    "--network", "none",
    "--tmpfs", "/tmp",
    "--health-cmd", "/bin/true",
    "--health-interval", "1s",
    "--label", "com.example.saeng.role=agent",
)
"""How a hardened agent container is created."""


@pytest.fixture(scope="session")
def docker_tools() -> None:
    """Skip (or fail in CI) unless dockerd, Debian's docker CLI and the test tools are here."""
    require_root()
    require_tool("dockerd", "docker.io")
    require(DOCKER, Path(DOCKER).exists(), "install the Debian package docker.io")
    require_tool("busybox", "busybox-static")
    require_tool("nsenter", "util-linux")
    require_tool("ip", "iproute2")
    require_tool("useradd", "passwd")


@pytest.fixture(scope="session")
def rootfs_tar(docker_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tar of a busybox-static root filesystem, the only image source of these tests."""
    return build_rootfs_tar(tmp_path_factory.mktemp("saeng-rootfs"))


@pytest.fixture(scope="session")
def remap_user_name(docker_tools: None) -> Iterator[str]:
    """A throw-away system user with subordinate ids for ``userns-remap``."""
    with remap_user() as name:
        yield name


@pytest.fixture(scope="session")
def default_daemon(rootfs_tar: Path) -> Iterator[TestDaemon]:
    """A dockerd with Debian's defaults (bridge and iptables off), the agent image imported."""
    with running_dockerd("default", DEFAULT_CONFIG, rootfs_tar=rootfs_tar) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def hardened_daemon(rootfs_tar: Path, remap_user_name: str) -> Iterator[TestDaemon]:
    """A hardened dockerd in its own netns, running one hardened, healthy container ``agent``.

    Hardened: userns-remap, no-new-privileges, icc off, live-restore, no userland proxy.
    """
    config = {**HARDENED_CONFIG, "userns-remap": remap_user_name}
    with running_dockerd("hardened", config, netns=True, rootfs_tar=rootfs_tar) as daemon:
        daemon.create("agent", *HARDENED_AGENT, start=True)
        daemon.wait_health("agent", "healthy")
        yield daemon
