"""A host inside a running container (``docker://CONTAINER``), through the local engine.

Commands go through ``docker exec`` (or ``podman exec``) of the engine this machine's CLI
talks to (``DOCKER_HOST`` and the CLI context apply). Each is run by the container's ``sh``
and bounded by its ``timeout`` when it has one, because killing the local client alone
would leave the command running inside the container.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from typing import Any

from pytest_secagent.host.base import CommandResult
from pytest_secagent.host.process import (
    KILL_GRACE_SECONDS,
    TIMEOUT_PROBE,
    CommandTimedOut,
    Finished,
    TargetTimeout,
    describe,
    local_environment,
    parse_timeout_probe,
    remote_script,
    result_or_timeout,
    run_bounded,
    timed_out,
)
from pytest_secagent.host.shell import ShellHost
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.targets import ContainerTarget

__all__ = ["ContainerConnection"]

_ENGINE_ERROR = re.compile(
    r"^(Error response from daemon|Cannot connect to the Docker daemon|error during connect"
    r"|Error: (no container|can only exec into running containers|.*container .* is not running))",
    re.IGNORECASE,
)
_NO_SHELL = re.compile(r"executable file not found|no such file or directory", re.IGNORECASE)


class ContainerConnection(ShellHost):
    """Runs commands inside a running container with the engine's ``exec``.

    Open it with :meth:`connect`, which checks that the container runs and has a shell;
    a container without one (distroless) cannot be audited as a host and errors with the
    reason.
    """

    def __init__(
        self, target: ContainerTarget, *, timeout: float = 10.0, engine_cli: str = "docker"
    ) -> None:
        super().__init__(target.id, timeout=timeout)
        self.target = target
        self.engine_cli = engine_cli
        self._env = local_environment()
        self._bound = TargetTimeout()
        self._open = False

    @classmethod
    def connect(
        cls, target: ContainerTarget, *, timeout: float = 10.0, engine_cli: str = "docker"
    ) -> ContainerConnection:
        """Check that the container runs and has a shell, and return the connection."""
        connection = cls(target, timeout=timeout, engine_cli=engine_cli)
        connection.open()
        return connection

    def open(self) -> None:
        """Probe the container: running, with ``sh``; find its ``timeout``."""
        if shutil.which(self.engine_cli, path=self._env["PATH"]) is None:
            raise EvidenceUnavailable(
                f"{self.target_id}: the container engine CLI {self.engine_cli!r} is not installed here"
            )
        finished = self._exec(["sh", "-c", TIMEOUT_PROBE], timeout=self.timeout, shown=["sh"])
        if finished.exit_status != 0:
            text = finished.stderr.decode(errors="replace").strip()
            if _NO_SHELL.search(text) and not _ENGINE_ERROR.search(text):
                raise EvidenceUnavailable(
                    f"{self.target_id}: the container has no sh, so it cannot be read as a host "
                    f"(a distroless container is checked through its engine instead): {text[-300:]}"
                )
            raise EvidenceUnavailable(
                f"{self.target_id}: cannot run commands in the container: "
                f"{text[-500:] or f'exit status {finished.exit_status}'}"
            )
        self._bound = parse_timeout_probe(finished.stdout.decode(errors="replace"))
        self._open = True

    def _exec(self, argv: Sequence[str], *, timeout: float, shown: Sequence[str]) -> Finished:
        command = [self.engine_cli, "exec", "-i=false", self.target.container, *argv]
        try:
            finished = run_bounded(command, timeout=timeout + KILL_GRACE_SECONDS * 2, env=self._env)
        except CommandTimedOut:
            raise timed_out(self.target_id, shown, timeout) from None
        return finished

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> CommandResult:
        """Run ``argv`` in the container; engine errors and timeouts raise ``EvidenceUnavailable``."""
        if not self._open:
            raise EvidenceUnavailable(f"{self.target_id}: the container connection is not open")
        limit = self.timeout if timeout is None else timeout
        wrapped = remote_script(argv, timeout=limit, bound=self._bound)
        finished = self._exec(wrapped, timeout=limit, shown=argv)
        if finished.exit_status != 0 and _ENGINE_ERROR.search(
            finished.stderr.decode(errors="replace").lstrip()
        ):
            raise EvidenceUnavailable(
                f"{self.target_id}: the engine could not run `{describe(argv)}`: "
                f"{finished.stderr.decode(errors='replace').strip()[-500:]}"
            )
        return result_or_timeout(self.target_id, argv, finished, timeout=limit, bound=self._bound)

    def testinfra_host(self) -> Any:
        """This container as a ``testinfra.host.Host`` (its ``docker`` backend).

        Its calls are not bounded by a timeout; the built-in checks do not use it.
        """
        import testinfra  # testinfra loads its own plugin machinery: import on use

        return testinfra.get_host(f"docker://{self.target.container}")

    def close(self) -> None:
        """Nothing stays open between commands."""
        self._open = False
