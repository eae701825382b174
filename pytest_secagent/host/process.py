"""Bounded commands: the pieces every host connection shares.

A command always runs with a deadline. Locally the whole process group is killed when the
deadline passes; on a remote host or in a container the command is also wrapped in the
target's own ``timeout``, so nothing keeps running there after we gave up on it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_secagent.host.base import CommandResult
from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = [
    "FIND_EXECUTABLE",
    "KILL_GRACE_SECONDS",
    "SBIN_DIRS",
    "TIMEOUT_PROBE",
    "CommandTimedOut",
    "Finished",
    "TargetTimeout",
    "describe",
    "local_environment",
    "parse_timeout_probe",
    "remote_script",
    "result_or_timeout",
    "run_bounded",
    "timed_out",
]

SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
"""Searched after ``PATH``: a non-root login shell often lacks them, the tools we read do not."""

KILL_GRACE_SECONDS = 2.0
"""How long a command may take to die after it was asked to stop."""

_TIMEOUT_STATUSES = (124, 137, 143)  # coreutils 124; busybox 143 (TERM); 137 KILL after the grace


class CommandTimedOut(Exception):
    """A local process did not finish in time and was killed."""


@dataclass(frozen=True)
class Finished:
    """The raw outcome of a local process."""

    exit_status: int
    stdout: bytes
    stderr: bytes
    elapsed: float


@dataclass(frozen=True)
class TargetTimeout:
    """How a target bounds the commands it runs: its ``timeout`` command, if it has one."""

    command: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        """Whether the target can bound its own commands."""
        return bool(self.command)


FIND_EXECUTABLE = (
    'find_exe() { p=$(command -v -- "$1" 2>/dev/null); case "$p" in /*) echo "$p"; return 0;; esac; '
    'IFS=:; for d in $PATH; do if [ -f "$d/$1" ] && [ -x "$d/$1" ]; then echo "$d/$1"; return 0; fi; '
    "done; return 1; }"
)
"""Shell function ``find_exe NAME`` printing an absolute path (busybox's ``command -v`` may not)."""

TIMEOUT_PROBE = (
    FIND_EXECUTABLE + '; find_exe timeout || { b=$(find_exe busybox) && echo "$b timeout"; } || true'
)
"""Shell text printing the target's ``timeout`` command: coreutils, or busybox's applet."""


def parse_timeout_probe(output: str) -> TargetTimeout:
    """Turn the output of :data:`TIMEOUT_PROBE` into a :class:`TargetTimeout`."""
    words = output.strip().split()
    return TargetTimeout(tuple(words) if words and words[0].startswith("/") else ())


def describe(argv: Sequence[str]) -> str:
    """Render ``argv`` as a shell-quoted command line for messages."""
    text = shlex.join(argv)
    return text if len(text) <= 200 else text[:200] + "..."


def run_bounded(argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None) -> Finished:
    """Run ``argv`` locally, without a shell, killing its process group after ``timeout``.

    A missing executable is reported like a shell would: exit status 127.
    """
    started = time.monotonic()
    try:
        process = subprocess.Popen(  # noqa: S603 - argv is a list, never a shell string
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=dict(env) if env is not None else None,
        )
    except FileNotFoundError:
        return Finished(127, b"", f"{argv[0]}: not found\n".encode(), 0.0)
    except PermissionError:
        return Finished(126, b"", f"{argv[0]}: permission denied\n".encode(), 0.0)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        # Reap it, but do not wait for its pipes: a process outside the group may hold them
        # (an ssh master holds the output pipes of the client it runs a session for).
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=KILL_GRACE_SECONDS)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        raise CommandTimedOut(describe(argv)) from None
    return Finished(process.returncode, stdout, stderr, time.monotonic() - started)


def remote_script(argv: Sequence[str], *, timeout: float, bound: TargetTimeout) -> list[str]:
    """Wrap ``argv`` for a target that runs it through its own ``sh``.

    The wrapper appends the sbin folders to ``PATH``, fixes the locale to ``C`` (so output
    parses the same everywhere) and, when the target has ``timeout``, bounds the command
    there too.
    """
    extra = ":".join(SBIN_DIRS)
    script = f'PATH="$PATH:{extra}"; LC_ALL=C; LANG=C; export PATH LC_ALL LANG; exec "$@"'
    wrapped = ["sh", "-c", script, "sh", *argv]
    if not bound.available:
        return wrapped
    seconds = f"{max(timeout, 0.1):g}"
    return [*bound.command, "-k", f"{KILL_GRACE_SECONDS:g}", seconds, *wrapped]


def result_or_timeout(
    target_id: str,
    argv: Sequence[str],
    finished: Finished,
    *,
    timeout: float,
    bound: TargetTimeout,
) -> CommandResult:
    """Turn a finished process into a :class:`CommandResult`, or raise on a target timeout."""
    if bound.available and finished.exit_status in _TIMEOUT_STATUSES and finished.elapsed >= timeout * 0.9:
        raise timed_out(target_id, argv, timeout)
    return CommandResult(
        argv=tuple(argv),
        exit_status=finished.exit_status,
        stdout=finished.stdout.decode("utf-8", errors="replace"),
        stderr=finished.stderr.decode("utf-8", errors="replace"),
    )


def timed_out(target_id: str, argv: Sequence[str], timeout: float) -> EvidenceUnavailable:
    """The error of a command that was killed at its deadline."""
    return EvidenceUnavailable(
        f"{target_id}: command `{describe(argv)}` did not finish within {timeout:g} s and was killed "
        "(command limit)"
    )


def local_environment() -> dict[str, str]:
    """This process's environment with the C locale and the sbin folders on ``PATH``."""
    env = dict(os.environ)
    path = [p for p in env.get("PATH", "/usr/bin:/bin").split(":") if p]
    env["PATH"] = ":".join([*path, *(d for d in SBIN_DIRS if d not in path)])
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env
