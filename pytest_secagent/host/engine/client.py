"""Find the container engine's CLI on a host and ask it read-only questions, each bounded."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_secagent.host.base import CommandResult, HostConnection
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import EngineSection

__all__ = ["EngineClient", "EngineKind", "detect_engine", "normalize_endpoint"]


class EngineKind(enum.Enum):
    """The container engines the checks understand."""

    DOCKER = "docker"
    PODMAN = "podman"


_CANDIDATES = ("docker", "podman")
_MAX_REASON = 300


def normalize_endpoint(value: str) -> str:
    """An engine endpoint as a URL: a bare socket path becomes ``unix://PATH``."""
    value = value.strip()
    return f"unix://{value}" if value.startswith("/") else value


def _first_lines(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    reason = " ".join(lines[:2])
    return reason if len(reason) <= _MAX_REASON else reason[:_MAX_REASON] + "..."


@dataclass(frozen=True)
class EngineClient:
    """The engine CLI on one host; it only ever runs read-only subcommands.

    ``endpoint`` (from the policy's ``engine.socket``) is passed as ``--host`` to docker and
    ``--url`` to podman; without it the CLI uses its own default, honouring ``DOCKER_HOST``
    (or ``CONTAINER_HOST``) on the host.
    """

    host: HostConnection
    kind: EngineKind
    cli: str
    endpoint: str | None = None
    timeout: float | None = None

    @property
    def target_id(self) -> str:
        """The ID of the host target the engine runs on."""
        return self.host.target_id

    def _argv(self, args: Sequence[str]) -> list[str]:
        argv = [self.cli]
        if self.endpoint:
            argv += ["--host" if self.kind is EngineKind.DOCKER else "--url", self.endpoint]
        return argv + list(args)

    def _run(self, args: Sequence[str]) -> CommandResult:
        return self.host.run(self._argv(args), timeout=self.timeout)

    def _unavailable(self, what: str, result: CommandResult) -> EvidenceUnavailable:
        reason = _first_lines(result.stderr) or _first_lines(result.stdout)
        reason = reason or f"exit status {result.exit_status}"
        return EvidenceUnavailable(
            f"{self.target_id}: the {self.kind.value} engine did not answer `{what}`: {reason}"
        )

    def _json(self, args: Sequence[str], what: str) -> Any:
        result = self._run(args)
        if not result.succeeded:
            raise self._unavailable(what, result)
        try:
            return json.loads(result.stdout)
        except ValueError:
            raise self._unavailable(what, result) from None

    def version(self) -> Mapping[str, Any]:
        """``version`` as JSON; raises ``EvidenceUnavailable`` when the engine does not answer."""
        if self.kind is EngineKind.DOCKER:
            # docker prints the client half and exits 1 when the daemon does not answer.
            result = self._run(["version", "--format", "{{json .}}"])
            try:
                data = json.loads(result.stdout)
            except ValueError:
                data = None
            if not isinstance(data, dict) or not isinstance(data.get("Server"), dict):
                raise self._unavailable("docker version", result)
            return data
        data = self._json(["version", "--format", "json"], "podman version")
        if not isinstance(data, dict):
            raise EvidenceUnavailable(f"{self.target_id}: `podman version` gave no JSON object")
        return data

    def info(self) -> Mapping[str, Any]:
        """``info`` as JSON; raises ``EvidenceUnavailable`` when the engine does not answer."""
        what = f"{self.kind.value} info"
        fmt = "{{json .}}" if self.kind is EngineKind.DOCKER else "json"
        data = self._json(["info", "--format", fmt], what)
        if not isinstance(data, dict):
            raise EvidenceUnavailable(f"{self.target_id}: `{what}` gave no JSON object")
        errors = data.get("ServerErrors")
        if errors:
            raise EvidenceUnavailable(
                f"{self.target_id}: the {self.kind.value} engine did not answer `{what}`: "
                + _first_lines("\n".join(str(e) for e in errors))
            )
        return data

    def current_endpoint(self) -> str | None:
        """The endpoint the CLI talks to: the policy's, else the CLI's current context."""
        if self.endpoint:
            return self.endpoint
        if self.kind is EngineKind.PODMAN:
            return None
        result = self._run(["context", "inspect", "--format", "{{json .Endpoints}}"])
        if not result.succeeded:
            return None
        try:
            endpoints = json.loads(result.stdout)
        except ValueError:
            return None
        host = endpoints.get("docker", {}).get("Host") if isinstance(endpoints, dict) else None
        return host if isinstance(host, str) and host else None

    def container_ids(self, *, labels: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
        """``(id, name)`` of every container, running or not; all ``labels`` must match."""
        args = ["ps", "--all", "--no-trunc", "--format", "{{.ID}}\t{{.Names}}"]
        for key, value in (labels or {}).items():
            args += ["--filter", f"label={key}={value}"]
        result = self._run(args)
        if not result.succeeded:
            raise self._unavailable(f"{self.kind.value} ps", result)
        found: list[tuple[str, str]] = []
        for line in result.stdout.splitlines():
            if not line.strip():
                continue
            ident, _, names = line.strip().partition("\t")
            found.append((ident, names.split(",")[0].strip().lstrip("/")))
        return found

    def inspect_containers(self, ids: Sequence[str]) -> list[Mapping[str, Any]]:
        """``container inspect`` of ``ids`` as a list of JSON objects."""
        if not ids:
            return []
        data = self._json(["container", "inspect", *ids], f"{self.kind.value} container inspect")
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise EvidenceUnavailable(f"{self.target_id}: `container inspect` gave no JSON list")
        return data


def _identify(host: HostConnection, path: str, timeout: float | None) -> EngineKind:
    result = host.run([path, "--version"], timeout=timeout)
    words = result.stdout.strip().lower().split()
    if result.succeeded and words:
        for kind in EngineKind:
            if words[0] == kind.value:
                return kind
    reason = _first_lines(result.stderr) or _first_lines(result.stdout) or "no output"
    raise EvidenceUnavailable(
        f"{host.target_id}: {path} is neither a docker nor a podman CLI (`--version`: {reason})"
    )


def detect_engine(
    host: HostConnection, engine: EngineSection, *, timeout: float | None = None
) -> EngineClient | None:
    """The engine CLI on ``host``, or ``None`` when the host has none.

    The policy's ``engine.cli`` names the CLI; without it docker is looked up, then podman.
    A CLI the policy names but the host lacks raises ``EvidenceUnavailable``: the policy says
    an engine is there, so its absence must not read as "not applicable".
    """
    names = [engine.cli] if engine.cli else list(_CANDIDATES)
    for name in names:
        path = host.which(name)
        if path is None:
            continue
        endpoint = normalize_endpoint(engine.socket) if engine.socket else None
        kind = _identify(host, path, timeout)
        return EngineClient(host=host, kind=kind, cli=path, endpoint=endpoint, timeout=timeout)
    if engine.cli:
        raise EvidenceUnavailable(
            f"{host.target_id}: the engine CLI {engine.cli!r} named by the policy (engine.cli) "
            "is not on the host"
        )
    return None
