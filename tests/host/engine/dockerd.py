"""Real dockerd instances for the engine tests: own socket, data root and (optionally) netns.

Each daemon lives in its own ``/tmp/saeng-*`` folder (mode 0711, which userns-remap needs),
never touches the machine's default socket or ``/etc/docker``, and is stopped, unmounted and
removed afterwards even when a test fails. Images come from a busybox-static tree through
``docker import``; nothing is ever pulled.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # Debian's client; /usr/local/bin/docker may be another one
BUSYBOX = "/bin/busybox"
START_TIMEOUT = 40.0
STOP_TIMEOUT = 20.0
COMMAND_TIMEOUT = 60.0
LOCK_RETRY_SECONDS = 30.0
AGENT_REPOSITORY = "docker.io/atlanhq/saeng-agent"
_APPLETS = ("sh", "sleep", "true", "false", "id", "cat")


def worker_tag() -> str:
    """This test process's share of machine-wide names: the xdist worker (``gw0``...) or ``main``.

    Names on the machine (folders in /tmp, network namespaces, users) carry it as well as a
    random part, so concurrent workers and concurrent runs never pick the same one.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return worker if worker.isalnum() else "main"


def build_rootfs_tar(folder: Path) -> Path:
    """A tar of a minimal root filesystem: busybox-static and a few applet links."""
    tar_path = folder / "rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:
        for name in ("bin", "tmp", "etc"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in _APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        passwd = b"root:x:0:0:root:/:/bin/sh\nagent:x:1000:1000:agent:/:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        info.mode = 0o644
        tar.addfile(info, fileobj=io.BytesIO(passwd))
    return tar_path


def _run(
    argv: Sequence[str], *, timeout: float = COMMAND_TIMEOUT, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, timeout=timeout, check=False, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result


@dataclass
class TestDaemon:
    """A running dockerd with its own socket, data root, exec root and daemon.json."""

    __test__ = False  # not a test class, despite its name

    name: str
    root: Path
    config: Mapping[str, Any]
    netns: str | None
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    image_id: str = ""
    created: list[str] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        """The daemon's unix socket."""
        return self.root / "docker.sock"

    @property
    def endpoint(self) -> str:
        """``unix://`` URL of the socket."""
        return f"unix://{self.socket}"

    @property
    def pinned_image(self) -> str:
        """The agent image by digest: ``docker.io/atlanhq/saeng-agent@sha256:...``."""
        return f"{AGENT_REPOSITORY}@{self.image_id}"

    @property
    def tagged_image(self) -> str:
        """The agent image by tag."""
        return f"{AGENT_REPOSITORY}:1.0"

    def argv(self) -> list[str]:
        """The dockerd command line."""
        prefix = ["nsenter", f"--net=/run/netns/{self.netns}"] if self.netns else []
        return [
            *prefix, DOCKERD,
            "--host", self.endpoint, *self.extra_args,
            "--data-root", str(self.root / "data"),
            "--exec-root", str(self.root / "exec"),
            "--pidfile", str(self.root / "dockerd.pid"),
            "--config-file", str(self.root / "daemon.json"),
        ]

    def docker(
        self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run Debian's docker CLI against this daemon (test set-up only)."""
        return _run([DOCKER, "--host", self.endpoint, *args], check=check, timeout=timeout)

    def log_tail(self, lines: int = 15) -> str:
        """The end of the daemon's log, for failure messages."""
        log = self.root / "dockerd.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> None:
        """Start dockerd and wait (bounded) until it answers."""
        log = (self.root / "dockerd.log").open("ab")
        try:
            self.process = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd {self.name} exited at start:\n{self.log_tail()}")
            if self.socket.exists() and self.docker("version", check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(
            f"dockerd {self.name} did not answer within {START_TIMEOUT:g} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Stop dockerd (TERM, then KILL after a bounded wait)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)

    def import_agent_image(self, rootfs_tar: Path) -> None:
        """Import the busybox tree as the agent image and give it a digest reference.

        There is no registry to pull from, so the digest reference is added to the daemon's
        own reference store while it is stopped; ``create`` then resolves it locally.
        """
        self.image_id = self.docker("import", str(rootfs_tar), self.tagged_image).stdout.strip()
        self.stop()
        stores = list((self.root / "data").glob("**/image/*/repositories.json"))
        if len(stores) != 1:
            raise RuntimeError(f"expected one reference store under {self.root}, found {stores}")
        store = json.loads(stores[0].read_text())
        familiar = AGENT_REPOSITORY.removeprefix("docker.io/")
        store["Repositories"][familiar][f"{familiar}@{self.image_id}"] = self.image_id
        stores[0].write_text(json.dumps(store))
        self.start()

    def create(self, name: str, *options: str, image: str | None = None,
               command: Sequence[str] = ("/bin/sleep", "3600"), start: bool = False) -> str:
        """Create (and optionally start) a container; never pulls."""
        verb = ("run", "--detach") if start else ("create",)
        ident = self.docker(
            *verb, "--pull=never", "--name", name, *options, image or self.pinned_image, *command
        ).stdout.strip().splitlines()[-1]
        self.created.append(name)
        return ident

    def wait_health(self, name: str, status: str, timeout: float = 30.0) -> None:
        """Wait (bounded) until a container's health status is ``status``."""
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            result = self.docker("inspect", "--format", "{{.State.Health.Status}}", name, check=False)
            seen = result.stdout.strip()
            if seen == status:
                return
            time.sleep(0.3)
        raise RuntimeError(f"{name} health stayed {seen!r}, not {status!r}, for {timeout:g} s")


def _leftover_pids(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
    return found


def _unmount_under(root: Path) -> None:
    prefix = str(root) + "/"
    mounts = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4]
            if point.startswith(prefix):
                mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        _run(["umount", "-l", point], check=False, timeout=30)


def _clean(daemon: TestDaemon) -> None:
    if daemon.process is not None and daemon.process.poll() is None:
        names = daemon.docker("ps", "--all", "--quiet", check=False, timeout=30).stdout.split()
        if names:
            daemon.docker("rm", "--force", "--volumes", *names, check=False, timeout=60)
    daemon.stop()
    # Shims of live-restore containers outlive dockerd: they are ours by their paths.
    for pid in _leftover_pids(str(daemon.root)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _unmount_under(daemon.root)
    shutil.rmtree(daemon.root, ignore_errors=True)


@contextlib.contextmanager
def running_dockerd(
    name: str,
    config: Mapping[str, Any],
    *,
    netns: bool = False,
    extra_args: Sequence[str] = (),
    rootfs_tar: Path | None = None,
) -> Iterator[TestDaemon]:
    """Start a dockerd named ``saeng-<name>`` and remove every trace of it afterwards.

    ``netns`` runs it in a fresh network namespace (needed for ``icc: false``, which wants
    iptables); otherwise the config must keep ``bridge: none`` and ``iptables: false``.
    With ``rootfs_tar`` the agent image is imported and pinned before the daemon is handed out.
    """
    root = Path(tempfile.mkdtemp(prefix=f"saeng-{name}-{worker_tag()}-", dir="/tmp"))
    root.chmod(0o711)
    namespace = f"saeng-{name}-{worker_tag()}-{secrets.token_hex(3)}" if netns else None
    daemon = TestDaemon(name, root, dict(config), namespace, tuple(extra_args))
    try:
        (root / "daemon.json").write_text(json.dumps(config))
        if namespace is not None:
            _run(["ip", "netns", "add", namespace])
            _run(["ip", "-n", namespace, "link", "set", "lo", "up"])
        daemon.start()
        if rootfs_tar is not None:
            daemon.import_agent_image(rootfs_tar)
        yield daemon
    finally:
        try:
            _clean(daemon)
        finally:
            if namespace is not None:
                _run(["ip", "netns", "del", namespace], check=False)


def _run_account_tool(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run useradd/usermod/userdel, retrying (bounded) while another process holds the lock.

    Other workers and other test runs edit /etc/passwd and /etc/subuid at the same time.
    """
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    while True:
        result = _run(argv, check=False)
        if result.returncode == 0 or "lock" not in result.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr.strip()}")
    return result


@contextlib.contextmanager
def remap_user() -> Iterator[str]:
    """A system user ``saeng-WORKER-XXXXXX`` with its own subordinate id range, for ``userns-remap``."""
    name = f"saeng-{worker_tag()}-{secrets.token_hex(3)}"
    # 40,000 possible ranges of 65,536 ids, all below 2**32.
    base = 1_600_000_000 + secrets.randbelow(40_000) * 65536
    _run_account_tool(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
    try:
        span = f"{base}-{base + 65535}"
        _run_account_tool(["usermod", "--add-subuids", span, "--add-subgids", span, name])
        yield name
    finally:
        _run_account_tool(["userdel", name], check=False)
