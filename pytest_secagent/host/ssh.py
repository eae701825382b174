"""A host over OpenSSH (``ssh://[USER@]HOST[:PORT]``), with verified host keys.

One master connection per host is opened at start and every command goes through it
(ControlMaster, in a private temporary folder that :meth:`SshConnection.close` removes).
The user's ssh configuration applies (keys, proxies, known hosts), except for the options
this module enforces: host keys are checked strictly, nothing prompts, nothing is forwarded.

Deadlines: the connection must be up within ``connect_timeout`` (ssh's ``ConnectTimeout``
covers the TCP connect and the banner; the wait for the master covers the rest). Its first
command prints a nonce made of two random halves, on a pseudo-terminal: when the host
answers anything else it runs a forced command (sshd ``ForceCommand``, or ``command=`` in
``authorized_keys``) instead of ours, so the connection is closed and nothing else is sent;
the pseudo-terminal makes sshd hang up whatever the forced command started when the
session closes, so nothing keeps running on the host. Every later command runs under the
host's own ``timeout`` (TERM at the command limit, KILL :data:`KILL_GRACE_SECONDS` later)
and the local client is killed :data:`REPLY_GRACE_SECONDS` after the limit: a command
without an answer by then means the connection stalls (or drips), so it is closed and
every later command fails at once, naming the limit.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_secagent.host.base import CommandResult
from pytest_secagent.host.process import (
    KILL_GRACE_SECONDS,
    TIMEOUT_PROBE,
    CommandTimedOut,
    Finished,
    TargetTimeout,
    describe,
    parse_timeout_probe,
    remote_script,
    result_or_timeout,
    run_bounded,
    timed_out,
)
from pytest_secagent.host.shell import ShellHost
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.targets import SshTarget

__all__ = [
    "ENFORCED_OPTIONS",
    "FORCED_COMMAND",
    "REPLY_GRACE_SECONDS",
    "ConnectionLost",
    "ForcedCommand",
    "HostKeyNotVerified",
    "SshConnection",
]

ENFORCED_OPTIONS = (
    "BatchMode=yes",
    "StrictHostKeyChecking=yes",
    "UpdateHostKeys=no",
    "ForwardAgent=no",
    "ForwardX11=no",
    "ClearAllForwardings=yes",
    "PermitLocalCommand=no",
    "RequestTTY=no",
)
"""Options given on the command line, so they win over any ssh configuration."""

_HOST_KEY_FAILURE = re.compile(
    r"Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED"
    r"|host key is known for .* strict checking|Host key for .* has changed"
)
_SSH_ERROR = 255
_POLL_SECONDS = 0.05
_SHOWN_LOG = 300

REPLY_GRACE_SECONDS = 2 * KILL_GRACE_SECONDS
"""How long after a command's limit the local client waits for the host's answer."""

FORCED_COMMAND = (
    "the host runs a forced command instead of the checks' commands; its answers are not evidence"
)
"""The reason every check of a host with a forced command errors with."""

_NONCE_SCRIPT = 'printf "%s%s\\n" "$1" "$2"; '


class HostKeyNotVerified(EvidenceUnavailable):
    """The host's key is unknown or differs from known_hosts: we refuse to talk to it."""


class ForcedCommand(EvidenceUnavailable):
    """The host answered the first command with something else: it runs a forced command."""


class ConnectionLost(EvidenceUnavailable):
    """The connection stalled, dripped or was reset; nothing more is sent over it."""


class SshConnection(ShellHost):
    """Runs commands on a host over one multiplexed OpenSSH connection.

    Use :meth:`connect` to open it; each command is quoted with :func:`shlex.join`, bounded
    by the host's ``timeout`` and by killing the local client, and a connection failure
    raises :class:`EvidenceUnavailable` (a host-key failure :class:`HostKeyNotVerified`).
    """

    def __init__(
        self,
        target: SshTarget,
        *,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        ssh_config: str | os.PathLike[str] | None = None,
        ssh_binary: str = "ssh",
    ) -> None:
        super().__init__(target.id, timeout=timeout)
        self.target = target
        self.connect_timeout = connect_timeout if connect_timeout is not None else timeout
        self.ssh_config = os.fspath(ssh_config) if ssh_config is not None else None
        self.ssh_binary = ssh_binary
        self._folder: str | None = None
        self._master: subprocess.Popen[bytes] | None = None
        self._bound = TargetTimeout()
        self._lost: str | None = None
        self._log_mark = 0

    @classmethod
    def connect(
        cls,
        target: SshTarget,
        *,
        timeout: float = 10.0,
        connect_timeout: float | None = None,
        ssh_config: str | os.PathLike[str] | None = None,
        ssh_binary: str = "ssh",
    ) -> SshConnection:
        """Open the master connection to ``target`` and return the ready connection."""
        connection = cls(
            target,
            timeout=timeout,
            connect_timeout=connect_timeout,
            ssh_config=ssh_config,
            ssh_binary=ssh_binary,
        )
        try:
            connection.open()
        except BaseException:
            connection.close()
            raise
        return connection

    @property
    def control_path(self) -> str:
        """The master's control socket (inside the private folder)."""
        if self._folder is None:
            raise RuntimeError("the connection is not open")
        return str(Path(self._folder) / "master")

    def _options(self, *, tty: bool = False) -> list[str]:
        options: list[str] = []
        if self.ssh_config is not None:
            options += ["-F", self.ssh_config]
        for option in ENFORCED_OPTIONS:
            tty_option = tty and option.startswith("RequestTTY=")
            options += ["-o", "RequestTTY=force" if tty_option else option]
        options += ["-o", f"ConnectTimeout={max(1, round(self.connect_timeout))}"]
        options += ["-o", f"ControlPath={self.control_path}"]
        if self.target.user:
            options += ["-l", self.target.user]
        if self.target.port:
            options += ["-p", str(self.target.port)]
        return options

    def open(self) -> None:
        """Start the master connection; raise ``EvidenceUnavailable`` when it fails."""
        if self._master is not None:
            return
        self._folder = tempfile.mkdtemp(prefix="secagent-ssh-")
        log_path = Path(self._folder) / "master.log"
        with log_path.open("wb") as log:
            self._master = subprocess.Popen(  # noqa: S603 - fixed argv, host validated by the parser
                [
                    self.ssh_binary,
                    *self._options(),
                    "-o",
                    "ControlMaster=yes",
                    "-o",
                    "ControlPersist=no",
                    "-N",
                    self.target.host,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        started = time.monotonic()
        deadline = started + self.connect_timeout + KILL_GRACE_SECONDS
        while not Path(self.control_path).exists():
            if self._master.poll() is not None:
                raise self._connect_error(log_path.read_text(errors="replace"), time.monotonic() - started)
            if time.monotonic() > deadline:
                raise EvidenceUnavailable(
                    f"{self.target_id}: no ssh connection to {self.target.host} within "
                    f"{self.connect_timeout:g} s (connect limit hit after {time.monotonic() - started:.1f} s)"
                )
            time.sleep(_POLL_SECONDS)
        self._bound = self._first_command()
        self._log_mark = log_path.stat().st_size

    def _first_command(self) -> TargetTimeout:
        """Check that the host runs what it is sent, and find its ``timeout`` command.

        The nonce is sent in two halves, so an answer that merely repeats the command line
        does not pass for it. The session has a pseudo-terminal: when it is closed (the
        answer came, or the local client was killed at the limit), sshd hangs up whatever
        ran in it, so a forced command that does not return does not outlive the check.
        """
        halves = (secrets.token_hex(8), secrets.token_hex(8))
        argv = ["sh", "-c", _NONCE_SCRIPT + TIMEOUT_PROBE, "sh", *halves]
        shown = ["printf", "%s%s\\n", "NONCE", "NONCE"]
        command = [self.ssh_binary, *self._options(tty=True), "-o", "ControlMaster=no", self.target.host]
        started = time.monotonic()
        try:
            finished = run_bounded([*command, shlex.join(argv)], timeout=self.timeout)
        except CommandTimedOut:
            raise EvidenceUnavailable(
                f"{self.target_id}: the first command (print a nonce) got no answer within "
                f"{self.timeout:g} s (command limit hit after {time.monotonic() - started:.1f} s): the host "
                "may run a forced command instead of the checks' commands, or the connection stalls; "
                "nothing else is sent to it"
            ) from None
        if finished.exit_status == _SSH_ERROR and not finished.stdout:
            raise self._failure(shown, finished)
        lines = [line.strip("\r") for line in finished.stdout.decode(errors="replace").split("\n")]
        if finished.exit_status != 0 or lines[0] != "".join(halves):
            raise ForcedCommand(
                f"{self.target_id}: {FORCED_COMMAND} (asked to print a nonce, it answered "
                f"{len(finished.stdout)} bytes with exit status {finished.exit_status}); nothing else "
                "is sent to it"
            )
        return parse_timeout_probe("\n".join(lines[1:]))

    def _connect_error(self, log: str, elapsed: float) -> EvidenceUnavailable:
        lines = [line.strip() for line in log.splitlines() if line.strip().strip("@")]
        detail = " ".join(lines)[-500:]
        if _HOST_KEY_FAILURE.search(log):
            said = [line for line in lines if re.search(r"(?i)host key|fingerprint", line)]
            return HostKeyNotVerified(
                f"{self.target_id}: the host key of {self.target.host} did not verify against "
                f"known_hosts (unknown or changed key); nothing was sent to the host and no "
                f"check runs against it. ssh said: {' '.join(said)[-600:]}"
            )
        return EvidenceUnavailable(
            f"{self.target_id}: ssh could not connect to {self.target.host} (after {elapsed:.1f} s, "
            f"connect limit {self.connect_timeout:g} s): {detail or 'no reason given'}"
        )

    def _master_log(self) -> str:
        """What the master connection logged since it was opened, for messages."""
        if self._folder is None:
            return ""
        with contextlib.suppress(OSError):
            with (Path(self._folder) / "master.log").open("rb") as log:
                log.seek(self._log_mark)
                text = log.read().decode(errors="replace")
            return " ".join(line.strip() for line in text.splitlines() if line.strip())[-_SHOWN_LOG:]
        return ""

    def _failure(self, shown: Sequence[str], finished: Finished) -> EvidenceUnavailable:
        """The error of an ssh client that exited 255: the connection is gone, or ssh failed."""
        text = finished.stderr.decode(errors="replace").strip()[-500:]
        if self._master is not None and self._master.poll() is not None:
            return self._lose(
                f"{self.target_id}: the ssh connection to {self.target.host} was lost while running "
                f"`{describe(shown)}`: {self._master_log() or text or 'the master connection ended'}; "
                "nothing more is sent to this host"
            )
        # ssh's own failures exit 255; a remote command that does is indistinguishable,
        # so it is treated as a failure too (fail closed).
        return EvidenceUnavailable(
            f"{self.target_id}: ssh failed running `{describe(shown)}`: {text or 'exit status 255'}"
        )

    def _lose(self, reason: str) -> ConnectionLost:
        """Close the connection for good: every later command fails at once with ``reason``."""
        self._lost = reason
        self._stop_master()
        return ConnectionLost(reason)

    def _ssh(self, argv: Sequence[str], *, timeout: float, shown: Sequence[str]) -> Finished:
        command = [
            self.ssh_binary,
            *self._options(),
            "-o",
            "ControlMaster=no",
            self.target.host,
            shlex.join(argv),
        ]
        started = time.monotonic()
        try:
            finished = run_bounded(command, timeout=timeout + REPLY_GRACE_SECONDS)
        except CommandTimedOut:
            if not self._bound.available:
                raise timed_out(self.target_id, shown, timeout) from None
            raise self._lose(
                f"{self.target_id}: `{describe(shown)}` got no answer over ssh within "
                f"{timeout + REPLY_GRACE_SECONDS:g} s (the command limit of {timeout:g} s plus "
                f"{REPLY_GRACE_SECONDS:g} s for the host's own timeout to answer; hit after "
                f"{time.monotonic() - started:.1f} s): the connection stalls or drips; nothing more is "
                "sent to this host"
            ) from None
        if finished.exit_status == _SSH_ERROR:
            raise self._failure(shown, finished)
        return finished

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> CommandResult:
        """Run ``argv`` on the host; a command killed at its deadline raises ``EvidenceUnavailable``."""
        if self._lost is not None:
            raise ConnectionLost(self._lost)
        if self._master is None:
            raise EvidenceUnavailable(f"{self.target_id}: the ssh connection is not open")
        if self._master.poll() is not None:
            raise self._lose(
                f"{self.target_id}: the ssh connection to {self.target.host} was lost: "
                f"{self._master_log() or 'the master connection ended'}; nothing more is sent to this host"
            )
        limit = self.timeout if timeout is None else timeout
        wrapped = remote_script(argv, timeout=limit, bound=self._bound)
        finished = self._ssh(wrapped, timeout=limit, shown=argv)
        return result_or_timeout(self.target_id, argv, finished, timeout=limit, bound=self._bound)

    def testinfra_host(self) -> Any:
        """This host as a ``testinfra.host.Host`` sharing the verified master connection.

        Its calls are not bounded by a timeout; the built-in checks do not use it.
        """
        import testinfra  # testinfra loads its own plugin machinery: import on use

        user = f"{self.target.user}@" if self.target.user else ""
        host = f"[{self.target.host}]" if ":" in self.target.host else self.target.host
        port = f":{self.target.port}" if self.target.port else ""
        extra = " ".join(f"-o {option}" for option in (*ENFORCED_OPTIONS, "ControlMaster=no"))
        return testinfra.get_host(
            f"ssh://{user}{host}{port}",
            ssh_config=self.ssh_config,
            ssh_extra_args=extra,
            controlpath=self.control_path,
            timeout=max(1, round(self.connect_timeout)),
        )

    def close(self) -> None:
        """Stop the master connection and remove its private folder."""
        self._stop_master()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _stop_master(self) -> None:
        """Stop the master connection (sessions still open on the host are closed with it)."""
        master, self._master = self._master, None
        if master is not None:
            if master.poll() is None and self._folder is not None:
                with contextlib.suppress(CommandTimedOut):
                    run_bounded(
                        [self.ssh_binary, *self._options(), "-O", "exit", self.target.host],
                        timeout=KILL_GRACE_SECONDS,
                    )
            with contextlib.suppress(ProcessLookupError):
                master.terminate()
            try:
                master.wait(timeout=KILL_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait(timeout=KILL_GRACE_SECONDS)
