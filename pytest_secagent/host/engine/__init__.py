"""The container engine on a host target (Docker or Podman) and the agent's containers on it.

Everything is read through :class:`pytest_secagent.host.base.HostConnection` with the
engine's own CLI (``version``, ``info``, ``ps``, ``container inspect``), ``ps``, ``stat``
and the engine's configuration files; nothing is changed on the host.
"""

from __future__ import annotations

from pytest_secagent.host.engine.client import EngineClient, EngineKind, detect_engine
from pytest_secagent.host.engine.snapshot import AgentContainers, EngineSnapshot, EngineSnapshots

__all__ = [
    "AgentContainers",
    "EngineClient",
    "EngineKind",
    "EngineSnapshot",
    "EngineSnapshots",
    "detect_engine",
]
