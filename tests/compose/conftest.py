"""The real dockerd the agreement tests bring Compose files up on (shared with the engine tests)."""

from __future__ import annotations

from tests.host.engine.conftest import default_daemon, docker_tools, rootfs_tar

__all__ = ["default_daemon", "docker_tools", "rootfs_tar"]
