"""Docker Compose files as a target: the services the agent is installed from, as containers.

:func:`load_project` reads Compose files the way ``docker compose`` does (override files,
``.env`` and interpolation, ``extends``, ``include``, ``profiles``); :func:`service_facts`
turns each service into the container facts ``docker inspect`` would show once it is up, so
the container controls judge files and running containers alike. :class:`ComposeView` is
what a ``compose://`` target gives the checks.
"""

from __future__ import annotations

from pytest_secagent.compose.facts import service_facts
from pytest_secagent.compose.loader import (
    ComposeError,
    ComposeProject,
    ComposeService,
    compose_files,
    load_project,
)
from pytest_secagent.compose.view import ComposeView

__all__ = [
    "ComposeError",
    "ComposeProject",
    "ComposeService",
    "ComposeView",
    "compose_files",
    "load_project",
    "service_facts",
]
