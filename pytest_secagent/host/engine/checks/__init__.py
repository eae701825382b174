"""The container-engine and agent-container checks: pure functions over gathered facts."""

from __future__ import annotations

from pytest_secagent.host.engine.checks.engine import check_engine_security, check_engine_version
from pytest_secagent.host.engine.checks.exposure import check_health, check_published_ports
from pytest_secagent.host.engine.checks.socket import check_declared_socket_mounts, check_engine_socket
from pytest_secagent.host.engine.checks.supply import check_image_provenance
from pytest_secagent.host.engine.checks.workload import (
    check_host_isolation,
    check_non_root,
    check_privileges,
    check_read_only_root,
    check_resource_limits,
)

__all__ = [
    "check_declared_socket_mounts",
    "check_engine_security",
    "check_engine_socket",
    "check_engine_version",
    "check_health",
    "check_host_isolation",
    "check_image_provenance",
    "check_non_root",
    "check_privileges",
    "check_published_ports",
    "check_read_only_root",
    "check_resource_limits",
]
