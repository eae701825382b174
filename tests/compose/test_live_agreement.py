"""Compose verdicts equal live-engine verdicts: each scenario brought up with Debian's docker-compose.

The files go to a real dockerd (``bridge: none``, the agent image from ``docker import``,
never pulled) with ``docker-compose up --no-start``: ``inspect`` describes a created
container fully, and some (privileged) cannot start on this machine. The same controls then
judge the compose target and the live containers, control by control. Health is left out:
created containers never run, so only the compose side can judge their health check.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_secagent.compose import ComposeView
from pytest_secagent.policy import Policy
from pytest_secagent.policy.model import AgentSection, EngineSection
from tests.compose.scenarios import VARIANT_NAMES, service, variants, write_compose
from tests.compose.verdicts import CONTROLS, run_controls
from tests.host.engine.dockerd import DOCKER, TestDaemon
from tests.host.engine.verdicts import snapshot
from tests.support import require_tool

pytestmark = pytest.mark.needs("dockerd")

LIVE_CONTROLS = [c for c in CONTROLS if c != "SA-LOG-005"]
COMPOSE_TIMEOUT = 120.0
SCENARIOS = ["hardened", *[n for n in VARIANT_NAMES if {v.name: v for v in variants("/s")}[n].live]]


def compose(daemon: TestDaemon, folder: Path, project: str, *args: str) -> None:
    """Run Debian's docker-compose against the test daemon."""
    binary = require_tool("docker-compose", "docker-compose")
    env = {**os.environ, "DOCKER_HOST": daemon.endpoint, "AGENT_IMAGE": daemon.pinned_image}
    result = subprocess.run(
        [binary, "--project-name", project, "--project-directory", str(folder),
         "--file", str(folder / "compose.yaml"), *args],
        capture_output=True, text=True, timeout=COMPOSE_TIMEOUT, env=env, check=False,
    )
    assert result.returncode == 0, f"docker-compose {' '.join(args)}: {result.stderr[-2000:]}"


@pytest.fixture(scope="module")
def brought_up(
    default_daemon: TestDaemon, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Path]]:
    """Every scenario's files, each created on the daemon as its own project."""
    for alias in ("registry.saeng.test/other/agent:1.0", "docker.io/atlanhq/saeng-agent:latest"):
        default_daemon.docker("tag", default_daemon.tagged_image, alias)
    by_name = {v.name: v for v in variants(str(default_daemon.socket))}
    folders: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("saeng-compose")
    try:
        for name in SCENARIOS:
            folder = root / name
            edit = by_name[name].edit if name in by_name else None
            write_compose(folder, {"agent": service(edit, folder, f"compose-{name}")})
            compose(default_daemon, folder, f"saeng{name.replace('-', '')}", "up", "--no-start")
            folders[name] = folder
        yield folders
    finally:
        for name, folder in folders.items():
            compose(default_daemon, folder, f"saeng{name.replace('-', '')}", "down", "--volumes")


@pytest.mark.parametrize("name", SCENARIOS)
def test_compose_verdicts_equal_live_verdicts(
    name: str, brought_up: dict[str, Path], default_daemon: TestDaemon
) -> None:
    folder = brought_up[name]
    policy = Policy(
        engine=EngineSection(cli=DOCKER, socket=default_daemon.endpoint),
        agent=AgentSection(containers=[f"compose-{name}"]),
    )
    environ = {"AGENT_IMAGE": default_daemon.pinned_image}
    declared = ComposeView(f"compose:{name}", str(folder), base=folder, environ=environ)

    from_files = run_controls(declared, policy, LIVE_CONTROLS)
    live = run_controls(snapshot(policy), policy, LIVE_CONTROLS)

    for control in LIVE_CONTROLS:
        assert (from_files[control].verdict, from_files[control].failed_names) == (
            live[control].verdict, live[control].failed_names
        ), f"compose:\n{from_files[control]}\nlive:\n{live[control]}"
    assert {c for c, o in live.items() if o.verdict != "passed"} == (
        set() if name == "hardened" else {v.control for v in variants("/s") if v.name == name}
    )
