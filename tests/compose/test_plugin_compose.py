"""The container-engine suite run by pytest itself on a ``compose://`` target, as a user runs it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.compose.scenarios import service, write_compose

SUITE = Path(__file__).resolve().parents[2] / "suites" / "test_container_engine.py"
FILES = Path(__file__).parent / "files"
CONTAINER_CONTROLS = 9
ENGINE_ONLY = 2  # SA-RUNTIME-002 and -003 read the engine itself
PARTIAL = 3  # SA-RUNTIME-004, -006 and SA-LOG-005 have a part only the running engine shows


def run(pytester: pytest.Pytester, *targets: str) -> pytest.RunResult:
    shutil.copy(SUITE, pytester.path / "test_container_engine.py")
    pytester.makefile(".yaml", policy=yaml.safe_dump({"agent": {"containers": []}}))
    return pytester.runpytest(
        "--secagent-no-suites",
        "--secagent-policy=policy.yaml",
        *[f"--secagent-target={t}" for t in targets],
        "-p", "no:cacheprovider",
        "-rA",
    )  # fmt: skip


def test_hardened_files_pass_through_the_plugin(pytester: pytest.Pytester) -> None:
    write_compose(pytester.path / "deploy", {"agent": service(None, pytester.path, "saeng-agent")})

    result = run(pytester, "compose://deploy")

    result.assert_outcomes(passed=CONTAINER_CONTROLS - PARTIAL, skipped=ENGINE_ONLY)
    for line in (
        "PARTIAL SA-RUNTIME-006 [[]critical] on compose:deploy: * not observed: saeng-agent: process user*",
        "PASSED *test_agent_containers_read_only_root?SA-RUNTIME-008:compose:deploy?*",
        "SKIPPED *not applicable: no host target*",
    ):
        result.stdout.fnmatch_lines([line])


def test_bad_files_error_only_their_target(pytester: pytest.Pytester) -> None:
    shutil.copytree(FILES / "bad-key", pytester.path / "bad")
    write_compose(pytester.path / "good", {"agent": service(None, pytester.path, "saeng-agent")})

    result = run(pytester, "compose://bad", "compose://good")

    result.assert_outcomes(
        passed=CONTAINER_CONTROLS - PARTIAL, errors=CONTAINER_CONTROLS, skipped=ENGINE_ONLY
    )
    result.stdout.fnmatch_lines(["*bad/compose.yaml:4: services.agent.priviledged: not a Compose service*"])


def test_missing_compose_path_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, "compose://nowhere")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*nowhere does not exist; give the compose file or the folder holding it*"])
