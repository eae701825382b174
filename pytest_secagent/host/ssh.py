"""A host over OpenSSH (``ssh://[USER@]HOST[:PORT]``), with verified host keys.

One master connection per host is opened at start and every command goes through it
(ControlMaster, in a private temporary folder that :meth:`SshConnection.close` removes).
The user's ssh configuration applies (keys, proxies, known hosts), except for the options
this module enforces: host keys are checked strictly, nothing prompts, nothing is forwarded.
"""

from __future__ import annotations

import contextlib
import os
import re
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

__all__ = ["ENFORCED_OPTIONS", "HostKeyNotVerified", "SshConnection"]

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


class HostKeyNotVerified(EvidenceUnavailable):
    """The host's key is unknown or differs from known_hosts: we refuse to talk to it."""


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

    def _options(self) -> list[str]:
        options: list[str] = []
        if self.ssh_config is not None:
            options += ["-F", self.ssh_config]
        for option in ENFORCED_OPTIONS:
            options += ["-o", option]
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
        deadline = time.monotonic() + self.connect_timeout + KILL_GRACE_SECONDS
        while not Path(self.control_path).exists():
            if self._master.poll() is not None:
                raise self._connect_error(log_path.read_text(errors="replace"))
            if time.monotonic() > deadline:
                raise EvidenceUnavailable(
                    f"{self.target_id}: no ssh connection to {self.target.host} within "
                    f"{self.connect_timeout:g} s"
                )
            time.sleep(_POLL_SECONDS)
        probe = self._ssh(["sh", "-c", TIMEOUT_PROBE], timeout=self.timeout, shown=["sh"])
        self._bound = parse_timeout_probe(probe.stdout.decode(errors="replace"))

    def _connect_error(self, log: str) -> EvidenceUnavailable:
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
            f"{self.target_id}: ssh could not connect to {self.target.host}: {detail or 'no reason given'}"
        )

    def _ssh(self, argv: Sequence[str], *, timeout: float, shown: Sequence[str]) -> Finished:
        command = [
            self.ssh_binary,
            *self._options(),
            "-o",
            "ControlMaster=no",
            self.target.host,
            shlex.join(argv),
        ]
        try:
            finished = run_bounded(command, timeout=timeout + KILL_GRACE_SECONDS * 2)
        except CommandTimedOut:
            raise timed_out(self.target_id, shown, timeout) from None
        if finished.exit_status == _SSH_ERROR:
            # ssh's own failures exit 255; a remote command that does is indistinguishable,
            # so it is treated as a failure too (fail closed).
            text = finished.stderr.decode(errors="replace").strip()[-500:]
            raise EvidenceUnavailable(
                f"{self.target_id}: ssh failed running `{describe(shown)}`: {text or 'exit status 255'}"
            )
        return finished

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> CommandResult:
        """Run ``argv`` on the host; a command killed at its deadline raises ``EvidenceUnavailable``."""
        if self._master is None:
            raise EvidenceUnavailable(f"{self.target_id}: the ssh connection is not open")
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
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
