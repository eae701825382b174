"""The small interface every host target speaks, whatever carries the commands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["CommandResult", "HostConnection"]


@dataclass(frozen=True)
class CommandResult:
    """What a command did on a host."""

    argv: tuple[str, ...]
    exit_status: int
    stdout: str
    stderr: str

    @property
    def succeeded(self) -> bool:
        """Whether the command exited with status 0."""
        return self.exit_status == 0


class HostConnection(Protocol):
    """A read-only view of one host: run commands, read files.

    Implementations quote every argument, bound every call with a timeout, and raise
    :class:`pytest_secagent.outcomes.EvidenceUnavailable` when the host cannot be
    reached or a call times out. A non-zero exit status is not an error: it is returned.
    """

    @property
    def target_id(self) -> str:
        """The ID of the target this connection belongs to."""

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> CommandResult:
        """Run ``argv`` (each element quoted) and return its result."""

    def read_text(self, path: str) -> str | None:
        """Return the file's text, or ``None`` when it does not exist.

        Raises ``EvidenceUnavailable`` when the file exists but cannot be read.
        """

    def which(self, executable: str) -> str | None:
        """Return the path of ``executable`` on the host, or ``None``."""

    def testinfra_host(self) -> Any:
        """The same host as a ``testinfra.host.Host`` sharing this connection (unbounded calls)."""

    def close(self) -> None:
        """Release the connection."""
