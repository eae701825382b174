"""The same controls against a real rootful Podman, kept in its own storage and configuration.

Podman containers cannot start on this machine (runc may not set their rlimits), so every
container here is only created; ``inspect`` describes it fully.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_secagent.host.engine.client import EngineKind
from pytest_secagent.host.engine.snapshot import EngineSnapshot
from pytest_secagent.host.local import LocalConnection
from pytest_secagent.policy import Policy
from pytest_secagent.policy.model import AgentSection, EngineSection
from tests.host.engine.dockerd import build_rootfs_tar, worker_tag
from tests.host.engine.test_container_controls import DROP, options
from tests.host.engine.test_engine_controls import lsm_findings
from tests.host.engine.verdicts import ALL_CONTROLS, run_control, snapshot
from tests.support import require_root, require_tool

IMAGE = "docker.io/atlanhq/saeng-agent"
MISCONFIGURED: dict[str, tuple[str, dict[str, object], tuple[str, ...]]] = {
    "root-user": ("SA-RUNTIME-006", {"--user": "0"}, ()),
    "privileged": ("SA-RUNTIME-007", {}, ("--privileged",)),
    "cap-sys-admin": ("SA-RUNTIME-007", {}, ("--cap-add", "SYS_ADMIN")),
    "writable-root": ("SA-RUNTIME-008", {"--read-only": DROP}, ()),
    "host-network": ("SA-RUNTIME-009", {"--network": "host"}, ()),
    "no-memory-limit": ("SA-RUNTIME-010", {"--memory": DROP}, ()),
    "published-everywhere": ("SA-NET-002", {"--network": DROP}, ("--publish", "8080:80")),
}
PODMAN_ONLY: dict[str, object] = {"--tmpfs": DROP, "--health-interval": DROP}
CONTAINER_MATRIX = [c for c in ALL_CONTROLS if c not in ("SA-RUNTIME-002", "SA-RUNTIME-003", "SA-LOG-005")]
_SYSTEM_STATE = (Path("/run/libpod"), Path("/var/lib/containers"))
_STATE_LOCK = "/tmp/saeng-podman-state.lock"
_LOCK_WAIT_SECONDS = 120.0


@dataclass(frozen=True)
class PodmanHost:
    """This machine seen through a connection whose podman uses the test's own storage."""

    root: Path
    connection: LocalConnection
    digest: str

    def podman(self, *args: str) -> str:
        result = self.connection.run(["podman", *args], timeout=120)
        assert result.succeeded, result.stderr
        return result.stdout.strip()

    def connection_with(self, conf: str) -> LocalConnection:
        """A connection whose podman reads ``conf`` (a file in the test's folder)."""
        return podman_connection(self.root, conf)


def podman_connection(root: Path, conf: str) -> LocalConnection:
    """This machine, with podman pointed at the test's storage and configuration."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONTAINERS_STORAGE_CONF", str(root / "storage.conf"))
        patch.setenv("CONTAINERS_CONF", str(root / conf))
        return LocalConnection("local", timeout=60.0)


def _write_confs(root: Path) -> None:
    (root / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root}/graph"\nrunroot = "{root}/run"\n'
    )
    engine = (
        f'[network]\nnetwork_config_dir = "{root}/net"\n'
        f'[engine]\ntmp_dir = "{root}/tmp"\nimage_copy_tmp_dir = "{root}/tmp"\n'
        'events_logger = "none"\ncgroup_manager = "cgroupfs"\n'
    )
    (root / "plain.conf").write_text(engine)
    (root / "nnp.conf").write_text("[containers]\nno_new_privileges = true\n" + engine)
    (root / "hardened.conf").write_text('[containers]\nno_new_privileges = true\nuserns = "auto"\n' + engine)


@contextlib.contextmanager
def _system_state_lock() -> Iterator[None]:
    """Hold (waiting a bounded time) the machine-wide lock of podman's system folders.

    Even with its own storage, rootful podman writes its blob-info cache under
    /var/lib/containers; while one fixture holds the lock no other of this suite (another
    xdist worker, another run) uses those folders, so removing them afterwards is safe.
    """
    with open(_STATE_LOCK, "a") as handle:
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{_STATE_LOCK} stayed locked for {_LOCK_WAIT_SECONDS:g} s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def podman_host() -> Iterator[PodmanHost]:
    """Podman with storage, state and configuration in a temporary folder, removed afterwards."""
    require_root()
    require_tool("podman", "podman")
    require_tool("busybox", "busybox-static")
    with _system_state_lock():
        yield from _podman_host()


def _podman_host() -> Iterator[PodmanHost]:
    existed = {p: p.exists() for p in _SYSTEM_STATE}
    root = Path(tempfile.mkdtemp(prefix=f"saeng-podman-{worker_tag()}-", dir="/tmp"))
    host: PodmanHost | None = None
    try:
        _write_confs(root)
        (root / "tmp").mkdir()
        connection = podman_connection(root, "nnp.conf")
        tar = build_rootfs_tar(root)
        host = PodmanHost(root, connection, "")
        host.podman("import", str(tar), f"{IMAGE}:1.0")
        digest = host.podman("images", "--digests", "--format", "{{.Digest}}", f"{IMAGE}:1.0")
        host = PodmanHost(root, connection, digest)
        image = f"{IMAGE}@{digest}"
        host.podman(
            "create", "--pull=never", "--name", "agent", *options(PODMAN_ONLY), image, "/bin/sleep", "1"
        )
        for name, (_control, changes, extra) in MISCONFIGURED.items():
            argv = options({**PODMAN_ONLY, **changes}, extra)
            host.podman("create", "--pull=never", "--name", name, *argv, image, "/bin/sleep", "1")
        yield host
    finally:
        if host is not None:
            with contextlib.suppress(AssertionError, subprocess.SubprocessError):
                host.podman("rm", "--all", "--force")
                host.podman("rmi", "--all", "--force")
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4]
            if point.startswith(f"{root}/"):
                subprocess.run(["umount", "-l", point], check=False, timeout=30)
        shutil.rmtree(root, ignore_errors=True)
        for path, was_there in existed.items():
            if not was_there:
                shutil.rmtree(path, ignore_errors=True)


def _policy(*containers: str) -> Policy:
    return Policy(engine=EngineSection(cli="podman"), agent=AgentSection(containers=list(containers)))


@pytest.fixture(scope="module")
def podman_engine(podman_host: PodmanHost) -> EngineSnapshot:
    engine = snapshot(_policy(), podman_host.connection)
    assert engine.kind is EngineKind.PODMAN
    return engine


def test_podman_version_passes_with_an_end_of_life_warning(podman_engine: EngineSnapshot) -> None:
    outcome = run_control("SA-RUNTIME-002", podman_engine, _policy())

    assert outcome.result == "passed", outcome
    assert outcome.warned_names == {"upstream support"}


@pytest.mark.parametrize(
    ("conf", "findings"),
    [
        ("plain.conf", {"rootless or userns-remap", "no-new-privileges"}),
        ("nnp.conf", {"rootless or userns-remap"}),
        ("hardened.conf", set()),
    ],
)
def test_podman_security_features_follow_containers_conf(
    podman_host: PodmanHost, conf: str, findings: set[str]
) -> None:
    engine = snapshot(_policy(), podman_host.connection_with(conf))

    outcome = run_control("SA-RUNTIME-003", engine, _policy())

    assert outcome.failed_names == findings | lsm_findings(), outcome
    assert outcome.result == ("passed" if not (findings | lsm_findings()) else "failed")
    assert f"configuration read: {podman_host.root / conf}" in outcome.evidence.summary()


def test_podman_without_api_socket_passes_the_socket_control(podman_engine: EngineSnapshot) -> None:
    outcome = run_control("SA-RUNTIME-004", podman_engine, _policy("agent"))

    assert outcome.result == "passed", outcome


def test_hardened_podman_container_passes_the_container_controls(podman_engine: EngineSnapshot) -> None:
    for control in CONTAINER_MATRIX:
        outcome = run_control(control, podman_engine, _policy("agent"))
        assert outcome.result == "passed", outcome
    health = run_control("SA-LOG-005", podman_engine, _policy("agent"))
    assert (
        "[ok] agent: health check: expected defined; observed CMD-SHELL /bin/true"
        in health.evidence.summary()
    )
    assert health.failed_names == {"agent: health"}  # created, never started


@pytest.mark.parametrize("name", list(MISCONFIGURED))
def test_podman_misconfiguration_flips_exactly_its_control(podman_engine: EngineSnapshot, name: str) -> None:
    control = MISCONFIGURED[name][0]

    outcomes = {c: run_control(c, podman_engine, _policy(name)) for c in CONTAINER_MATRIX}

    failed = {c for c, o in outcomes.items() if o.result != "passed"}
    assert failed == {control}, "\n".join(str(outcomes[c]) for c in failed)
