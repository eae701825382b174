"""SA-RUNTIME-002/003/004 against real dockerd daemons, one per configuration."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from pytest_secagent.host.local import LocalConnection
from pytest_secagent.policy import Policy
from pytest_secagent.policy.model import AgentSection, EngineSection
from tests.host.engine.conftest import HARDENED_CONFIG
from tests.host.engine.dockerd import DOCKER, TestDaemon, running_dockerd
from tests.host.engine.verdicts import ENGINE_CONTROLS, run_controls
from tests.support import require_tool

LSM_FINDING = "AppArmor or SELinux"


def kernel_lsm() -> str | None:
    """The container LSM this kernel offers (what dockerd would report), or ``None``."""
    apparmor = Path("/sys/module/apparmor/parameters/enabled")
    if apparmor.exists() and apparmor.read_text().startswith("Y"):
        return "apparmor"
    if Path("/sys/fs/selinux/enforce").exists():
        return "selinux"
    return None


def lsm_findings() -> set[str]:
    """The SA-RUNTIME-003 finding this kernel forces on any daemon: none when it has an LSM."""
    return set() if kernel_lsm() else {LSM_FINDING}


def policy_for(endpoint: str, containers: Sequence[str] = ()) -> Policy:
    return Policy(
        engine=EngineSection(cli=DOCKER, socket=endpoint),
        agent=AgentSection(containers=list(containers)),
    )


def test_hardened_daemon_passes_every_engine_control(hardened_daemon: TestDaemon) -> None:
    outcomes = run_controls(policy_for(hardened_daemon.endpoint, ["agent"]), ENGINE_CONTROLS)

    assert outcomes["SA-RUNTIME-002"].result == "passed", outcomes["SA-RUNTIME-002"]
    # Debian's 20.10 meets the floor but the line is out of upstream support: a warning only.
    assert outcomes["SA-RUNTIME-002"].warned_names == {"upstream support"}
    assert outcomes["SA-RUNTIME-004"].result == "passed", outcomes["SA-RUNTIME-004"]
    security = outcomes["SA-RUNTIME-003"]
    assert security.warned_names == set(), security
    if kernel_lsm():
        assert security.result == "passed", security
    else:
        # This kernel has neither AppArmor nor SELinux, so no daemon can satisfy that line;
        # everything the daemon's configuration decides holds.
        assert security.result == "failed"
        assert security.failed_names == {LSM_FINDING}, security


def test_default_daemon_fails_exactly_its_missing_hardening(default_daemon: TestDaemon) -> None:
    outcomes = run_controls(policy_for(default_daemon.endpoint), ENGINE_CONTROLS)

    assert outcomes["SA-RUNTIME-002"].result == "passed", outcomes["SA-RUNTIME-002"]
    assert outcomes["SA-RUNTIME-004"].result == "passed", outcomes["SA-RUNTIME-004"]
    security = outcomes["SA-RUNTIME-003"]
    assert security.result == "failed"
    assert security.failed_names == {"rootless or userns-remap", "no-new-privileges", "icc"} | lsm_findings()
    assert security.warned_names == {"live-restore", "userland-proxy"}
    assert "seccomp" not in security.failed_names  # default profile: on


@pytest.fixture(scope="module")
def exposed_daemon(rootfs_tar: Path, remap_user_name: str) -> Iterator[TestDaemon]:
    """The hardened configuration plus an unencrypted TCP socket and an insecure registry."""
    config = {
        **HARDENED_CONFIG,
        "userns-remap": remap_user_name,
        "insecure-registries": ["registry.saeng.test:5000"],
    }
    # Its own netns: port 2375 on its own loopback, reachable by nothing else.
    with running_dockerd(
        "exposed", config, netns=True, extra_args=("--host", "tcp://127.0.0.1:2375")
    ) as daemon:
        yield daemon


def test_tcp_without_tls_and_insecure_registry_flip_only_their_lines(exposed_daemon: TestDaemon) -> None:
    outcomes = run_controls(policy_for(exposed_daemon.endpoint), ENGINE_CONTROLS)

    assert outcomes["SA-RUNTIME-002"].result == "passed"
    assert outcomes["SA-RUNTIME-004"].result == "passed", outcomes["SA-RUNTIME-004"]
    security = outcomes["SA-RUNTIME-003"]
    assert security.result == "failed"
    assert security.failed_names == {"TLS on tcp://127.0.0.1:2375", "insecure registries"} | lsm_findings()
    assert "registry.saeng.test:5000" in security.message


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        (lambda sock: os.chmod(sock, 0o666), "mode"),  # noqa: S103 - the misconfiguration under test
        (lambda sock: shutil.chown(sock, group="nogroup"), "group"),
        (lambda sock: shutil.chown(sock, user="nobody"), "owner"),
    ],
    ids=["world-writable", "foreign-group", "foreign-owner"],
)
def test_socket_permissions_flip_only_the_socket_control(
    default_daemon: TestDaemon, change: object, finding: str
) -> None:
    socket = default_daemon.socket
    before = socket.stat()
    try:
        assert callable(change)
        change(socket)
        outcomes = run_controls(policy_for(default_daemon.endpoint), ENGINE_CONTROLS)
    finally:
        os.chown(socket, before.st_uid, before.st_gid)
        os.chmod(socket, before.st_mode & 0o7777)

    assert outcomes["SA-RUNTIME-004"].result == "failed"
    assert outcomes["SA-RUNTIME-004"].failed_names == {f"{socket} {finding}"}
    assert outcomes["SA-RUNTIME-002"].result == "passed"
    baseline = {"rootless or userns-remap", "no-new-privileges", "icc"} | lsm_findings()
    assert outcomes["SA-RUNTIME-003"].failed_names == baseline


def test_engine_that_does_not_answer_is_an_error(docker_tools: None, tmp_path: Path) -> None:
    outcomes = run_controls(policy_for(f"unix://{tmp_path}/absent.sock"), ENGINE_CONTROLS)

    for outcome in outcomes.values():
        assert outcome.result == "error", outcome
        assert "did not answer `docker version`" in outcome.message
        assert "Cannot connect to the Docker daemon" in outcome.message


def test_engine_refusing_the_user_is_an_error(default_daemon: TestDaemon) -> None:
    setpriv = require_tool("setpriv", "util-linux")
    as_nobody = LocalConnection(
        "local", timeout=20.0, prefix=(setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups")
    )
    outcomes = run_controls(policy_for(default_daemon.endpoint), ENGINE_CONTROLS, host=as_nobody)

    for outcome in outcomes.values():
        assert outcome.result == "error", outcome
        assert "permission denied" in outcome.message


def test_host_without_engine_is_not_applicable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("sh", "cat", "ps", "stat"):
        found = shutil.which(tool)
        assert found is not None
        (bare / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bare))
    no_engine = LocalConnection("bare-host", timeout=10.0)

    outcomes = run_controls(Policy(), ENGINE_CONTROLS, host=no_engine)

    for outcome in outcomes.values():
        assert outcome.result == "skipped", outcome
        assert outcome.message == "not applicable: no container engine (docker or podman) on bare-host"


def test_engine_named_by_the_policy_but_missing_is_an_error() -> None:
    policy = Policy(engine=EngineSection(cli="/nonexistent/docker"))

    outcomes = run_controls(policy, ENGINE_CONTROLS)

    for outcome in outcomes.values():
        assert outcome.result == "error", outcome
        assert "'/nonexistent/docker' named by the policy (engine.cli) is not on the host" in outcome.message
