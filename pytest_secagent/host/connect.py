"""Open the right connection for a host target: the one factory the fixtures use."""

from __future__ import annotations

import os
from typing import Protocol

from pytest_secagent.host.base import HostConnection
from pytest_secagent.host.container import ContainerConnection
from pytest_secagent.host.local import LocalConnection
from pytest_secagent.host.ssh import SshConnection
from pytest_secagent.targets import ContainerTarget, LocalTarget, SshTarget, Target

__all__ = ["SSH_CONFIG_ENV", "ConnectionSettings", "open_host"]

SSH_CONFIG_ENV = "SECAGENT_SSH_CONFIG"
"""Environment variable naming an ssh client configuration file to use instead of ~/.ssh/config."""


class ConnectionSettings(Protocol):
    """What opening a host needs from the run's settings."""

    @property
    def timeout(self) -> float:
        """Timeout of every remote call, in seconds."""


def _ssh_config(settings: ConnectionSettings) -> str | None:
    configured: str | os.PathLike[str] | None = getattr(settings, "ssh_config", None)
    if configured:
        return os.fspath(configured)
    return os.environ.get(SSH_CONFIG_ENV) or None


def open_host(target: Target, settings: ConnectionSettings) -> HostConnection:
    """Open a connection to a host target (``local://``, ``ssh://``, ``docker://``).

    Raises :class:`pytest_secagent.outcomes.EvidenceUnavailable` when the host cannot be
    reached or its ssh host key does not verify, and ``ValueError`` for a target that is
    not a host.
    """
    if isinstance(target, LocalTarget):
        return LocalConnection(target.id, timeout=settings.timeout)
    if isinstance(target, SshTarget):
        return SshConnection.connect(
            target, timeout=settings.timeout, ssh_config=_ssh_config(settings)
        )
    if isinstance(target, ContainerTarget):
        return ContainerConnection.connect(target, timeout=settings.timeout)
    raise ValueError(f"{target.uri} is not a host target")
