"""This machine as a host target (``local://``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_secagent.host.base import CommandResult
from pytest_secagent.host.process import (
    CommandTimedOut,
    local_environment,
    run_bounded,
    timed_out,
)
from pytest_secagent.host.shell import ShellHost

__all__ = ["LocalConnection"]


class LocalConnection(ShellHost):
    """Runs commands on this machine, each without a shell and killed at its deadline.

    ``prefix`` is put before every command: ``("ip", "netns", "exec", "ns1")`` makes the
    connection see a network namespace, ``("nsenter", "-t", "PID", "-n")`` another process's
    network. Commands run with the C locale and the sbin folders on ``PATH``.
    """

    def __init__(
        self, target_id: str = "local", *, timeout: float = 10.0, prefix: Sequence[str] = ()
    ) -> None:
        super().__init__(target_id, timeout=timeout)
        self.prefix = tuple(prefix)
        self._env = local_environment()

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> CommandResult:
        """Run ``argv`` here; a command killed at its deadline raises ``EvidenceUnavailable``."""
        limit = self.timeout if timeout is None else timeout
        try:
            finished = run_bounded([*self.prefix, *argv], timeout=limit, env=self._env)
        except CommandTimedOut:
            raise timed_out(self.target_id, argv, limit) from None
        return CommandResult(
            argv=tuple(argv),
            exit_status=finished.exit_status,
            stdout=finished.stdout.decode("utf-8", errors="replace"),
            stderr=finished.stderr.decode("utf-8", errors="replace"),
        )

    def testinfra_host(self) -> Any:
        """The same machine as a ``testinfra.host.Host``, for testinfra's modules.

        Its calls are not bounded by a timeout; the built-in checks do not use it.
        """
        if self.prefix:
            raise ValueError("a prefixed local connection has no testinfra equivalent")
        import testinfra  # testinfra loads its own plugin machinery: import on use

        return testinfra.get_host("local://")

    def close(self) -> None:
        """Nothing to release for this machine."""
