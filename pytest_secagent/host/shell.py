"""What every host connection does the same way once it can run a command."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from pytest_secagent.host.base import CommandResult
from pytest_secagent.host.process import FIND_EXECUTABLE
from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = ["ShellHost", "says_missing"]

_MISSING = ("No such file or directory", "Not a directory")


def says_missing(stderr: str, path: str) -> bool:
    """Whether a tool's error output says that ``path`` itself does not exist.

    The message must name the path: ``env: 'cat': No such file or directory`` says the
    *tool* is missing, which proves nothing about the file.
    """
    return any(
        path in line and any(marker in line for marker in _MISSING) for line in stderr.splitlines()
    )


class ShellHost(abc.ABC):
    """A host reached by running commands; files are read with ``cat``, never copied.

    Subclasses implement :meth:`run`; reading files and finding executables are built on
    it, so every connection reads the host the same way and writes nothing to it.
    """

    def __init__(self, target_id: str, *, timeout: float) -> None:
        self._target_id = target_id
        self.timeout = timeout

    @property
    def target_id(self) -> str:
        """The ID of the target this connection belongs to."""
        return self._target_id

    @abc.abstractmethod
    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> CommandResult:
        """Run ``argv`` on the host and return its result (non-zero exits are returned)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def read_text(self, path: str) -> str | None:
        """Return the file's text, or ``None`` when it does not exist.

        Raises ``EvidenceUnavailable`` when the file exists but cannot be read.
        """
        result = self.run(["cat", "--", path])
        if result.succeeded:
            return result.stdout
        if says_missing(result.stderr, path):
            return None
        reason = result.stderr.strip() or f"cat exited with status {result.exit_status}"
        raise EvidenceUnavailable(f"{self.target_id}: cannot read {path}: {reason}")

    def which(self, executable: str) -> str | None:
        """Return the absolute path of ``executable`` on the host (sbin included), or ``None``.

        ``None`` means the search ran and found nothing; a search that could not run (no
        ``sh``, an odd answer) raises ``EvidenceUnavailable`` rather than pass for "absent".
        """
        result = self.run(["sh", "-c", FIND_EXECUTABLE + '; find_exe "$1"', "sh", executable])
        found = result.stdout.strip().splitlines()
        if result.succeeded and found and found[0].startswith("/"):
            return found[0]
        if result.exit_status == 1 and not found:
            return None
        reason = result.stderr.strip() or result.stdout.strip() or f"exit status {result.exit_status}"
        raise EvidenceUnavailable(f"{self.target_id}: cannot look for {executable!r} on the host: {reason}")
