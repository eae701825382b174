"""A ``compose://`` target as the container controls see it: the agent's services as containers."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pytest_secagent.compose.facts import DEFAULT_ENGINE_SOCKET, container_names, service_facts
from pytest_secagent.compose.loader import ComposeError, ComposeProject, compose_files, load_project
from pytest_secagent.host.engine.snapshot import AgentContainers
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import AgentSection, EngineSection

__all__ = ["ENGINE_SOCKET_PATHS", "ComposeView"]

#: Where engine sockets usually are; a service mounting any of them (or their folder) hands
#: over the engine.
ENGINE_SOCKET_PATHS = (
    DEFAULT_ENGINE_SOCKET,
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
)


class ComposeView:
    """The project of one ``compose://`` target, loaded once; a load error is kept and re-raised.

    Every service counts as the agent's unless the policy names containers
    (``agent.containers``: a service name, a ``container_name`` or Compose's
    ``PROJECT-SERVICE-1``) or labels (``agent.container_labels``).
    """

    def __init__(
        self, target_id: str, spec: str, *, base: Path, environ: Mapping[str, str] | None = None
    ) -> None:
        self._target_id = target_id
        self.spec = spec
        self.base = base
        self.environ = dict(os.environ if environ is None else environ)
        self._project: ComposeProject | EvidenceUnavailable | None = None
        self._agents: dict[str, AgentContainers | EvidenceUnavailable] = {}

    @property
    def target_id(self) -> str:
        """The compose target's ID."""
        return self._target_id

    def project(self) -> ComposeProject:
        """The loaded project; invalid files raise :class:`EvidenceUnavailable` naming file, line, key."""
        if self._project is None:
            try:
                files = compose_files(self.spec, self.base)
                self._project = load_project(files, self.environ)
            except ComposeError as exc:
                self._project = EvidenceUnavailable(f"{self._target_id}: {exc}")
            except OSError as exc:
                self._project = EvidenceUnavailable(
                    f"{self._target_id}: {exc.filename or 'a file'} cannot be read: {exc.strerror or exc}"
                )
            except (ValueError, TypeError, AttributeError) as exc:
                # Never the exception's text: it may quote an interpolated value.
                self._project = EvidenceUnavailable(
                    f"{self._target_id}: the files are not valid Compose ({type(exc).__name__})"
                )
        if isinstance(self._project, EvidenceUnavailable):
            raise EvidenceUnavailable(str(self._project))
        return self._project

    def socket_paths(self, engine: EngineSection) -> list[str]:
        """The engine socket paths a mount must not reach: the usual ones and ``engine.socket``."""
        paths = list(ENGINE_SOCKET_PATHS)
        configured = engine.socket or ""
        if configured.startswith("unix://"):
            configured = configured[len("unix://"):]
        if configured.startswith("/") and configured not in paths:
            paths.append(configured)
        return paths

    def agent_containers(self, agent: AgentSection) -> AgentContainers:
        """The agent's services as container facts, chosen by the policy."""
        key = f"{sorted(agent.containers)}:{sorted(agent.container_labels.items())}"
        if key not in self._agents:
            try:
                self._agents[key] = self._select(agent)
            except ComposeError as exc:
                self._agents[key] = EvidenceUnavailable(f"{self._target_id}: {exc}")
            except (ValueError, TypeError, AttributeError) as exc:
                # Never the exception's text: it may quote an interpolated value.
                self._agents[key] = EvidenceUnavailable(
                    f"{self._target_id}: a service holds a value of a shape Compose does not accept "
                    f"({type(exc).__name__})"
                )
        found = self._agents[key]
        if isinstance(found, EvidenceUnavailable):
            raise EvidenceUnavailable(str(found))
        return found

    def _select(self, agent: AgentSection) -> AgentContainers:
        project = self.project()
        names = list(dict.fromkeys(agent.containers))
        labels = dict(agent.container_labels)
        parts = []
        if names:
            parts.append("names " + ", ".join(names))
        if labels:
            parts.append("labels " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
        selector = " or ".join(parts) or f"every service of {', '.join(f.name for f in project.files)}"
        chosen = []
        matched: set[str] = set()
        for service in project.services.values():
            aliases = set(container_names(project, service))
            by_name = aliases & set(names)
            facts = service_facts(project, service) if (by_name or labels or not names) else None
            by_label = bool(labels) and facts is not None and all(
                facts.labels.get(k) == v for k, v in labels.items()
            )
            if facts is not None and (by_name or by_label or (not names and not labels)):
                chosen.append(facts)
                matched |= by_name
        missing = tuple(n for n in names if n not in matched)
        return AgentContainers(selector, True, tuple(sorted(chosen, key=lambda f: f.name)), missing)

    def close(self) -> None:
        """Nothing to release: the files were read once."""
