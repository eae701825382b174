"""The container-engine suite run by pytest itself against ``local://``, as a user runs it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.host.engine.dockerd import DOCKER, TestDaemon
from tests.host.engine.test_engine_controls import kernel_lsm

SUITE = Path(__file__).resolve().parents[3] / "suites" / "test_container_engine.py"
CONTROLS = 11


def run(pytester: pytest.Pytester, policy: dict[str, object]) -> pytest.RunResult:
    shutil.copy(SUITE, pytester.path / "test_container_engine.py")
    pytester.makefile(".yaml", policy=yaml.safe_dump(policy))
    return pytester.runpytest(
        "--secagent-no-suites",
        "--secagent-policy=policy.yaml",
        "--secagent-target=local://",
        "--secagent-timeout=20",
        "-p", "no:cacheprovider",
        "-rA",
    )  # fmt: skip


def test_hardened_engine_and_agent_pass_through_the_plugin(
    pytester: pytest.Pytester, hardened_daemon: TestDaemon
) -> None:
    policy = {
        "engine": {"cli": DOCKER, "socket": hardened_daemon.endpoint},
        "agent": {"containers": ["agent"]},
    }

    result = run(pytester, policy)

    if kernel_lsm():
        result.assert_outcomes(passed=CONTROLS)
    else:
        result.assert_outcomes(passed=CONTROLS - 1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*AppArmor or SELinux: expected enabled; observed neither*",
                "FAILED *test_engine_security_features_enabled?SA-RUNTIME-003:local?*",
            ]
        )
    result.stdout.fnmatch_lines(["PASSED *test_agent_containers_run_as_non_root?SA-RUNTIME-006:local?*"])


def test_engine_that_does_not_answer_errors_every_control(
    pytester: pytest.Pytester, docker_tools: None, tmp_path: Path
) -> None:
    policy = {
        "engine": {"cli": DOCKER, "socket": f"unix://{tmp_path}/absent.sock"},
        "agent": {"containers": ["agent"]},
    }

    result = run(pytester, policy)

    result.assert_outcomes(errors=CONTROLS)
    result.stdout.fnmatch_lines(["*the docker engine did not answer `docker version`: Cannot connect*"])


def test_host_without_engine_is_not_applicable_through_the_plugin(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("sh", "cat", "ps", "stat"):
        found = shutil.which(tool)
        assert found is not None
        (bare / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(bare))

    result = run(pytester, {"agent": {"containers": ["agent"]}})

    result.assert_outcomes(skipped=CONTROLS)
    result.stdout.fnmatch_lines(["*not applicable: no container engine (docker or podman) on local*"])
