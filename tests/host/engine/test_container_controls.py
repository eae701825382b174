"""The agent-container controls against real containers on real dockerd daemons.

Misconfigured containers are only *created*: ``inspect`` describes them fully, and some
(``--privileged``) cannot start on this machine anyway.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

from pytest_secagent.host.engine.snapshot import EngineSnapshot
from pytest_secagent.policy import Policy
from pytest_secagent.policy.model import AgentSection, EngineSection
from tests.host.engine.dockerd import DOCKER, TestDaemon
from tests.host.engine.test_engine_controls import LSM_FINDING, kernel_lsm
from tests.host.engine.verdicts import ALL_CONTROLS, CONTAINER_CONTROLS, run_control, run_controls, snapshot

# (option, value or None) pairs, so a misconfiguration can replace or drop one of them.
HARDENED: dict[str, str | None] = {
    "--user": "1000:1000",
    "--read-only": None,
    "--cap-drop": "ALL",
    "--security-opt": "no-new-privileges",
    "--memory": "64m",
    "--cpus": "0.5",
    "--network": "none",
    "--tmpfs": "/tmp",
    "--health-cmd": "/bin/true",
    "--health-interval": "1s",
}
DROP = object()


@dataclass(frozen=True)
class Misconfiguration:
    """One way to get an agent container wrong, and the one control it must flip."""

    name: str
    control: str
    changes: dict[str, object]
    extra: tuple[str, ...] = ()
    image: str | None = None


def options(changes: dict[str, object], extra: Sequence[str] = ()) -> list[str]:
    merged: dict[str, object] = {**HARDENED, **changes}
    argv: list[str] = []
    for option, value in merged.items():
        if value is DROP:
            continue
        argv.append(option)
        if value is not None:
            argv.append(str(value))
    return [*argv, *extra]


def misconfigurations(socket: str, scratch: str) -> list[Misconfiguration]:
    return [
        Misconfiguration("root-user", "SA-RUNTIME-006", {"--user": "0"}),
        Misconfiguration("image-default-user", "SA-RUNTIME-006", {"--user": DROP}),
        Misconfiguration("privileged", "SA-RUNTIME-007", {}, ("--privileged",)),
        Misconfiguration("cap-sys-admin", "SA-RUNTIME-007", {}, ("--cap-add", "SYS_ADMIN")),
        Misconfiguration("caps-kept", "SA-RUNTIME-007", {"--cap-drop": DROP}),
        Misconfiguration("escalation-allowed", "SA-RUNTIME-007", {"--security-opt": DROP}),
        Misconfiguration(
            "seccomp-unconfined", "SA-RUNTIME-007", {}, ("--security-opt", "seccomp=unconfined")
        ),
        Misconfiguration("writable-root", "SA-RUNTIME-008", {"--read-only": DROP}),
        Misconfiguration("writable-bind", "SA-RUNTIME-008", {}, ("--volume", f"{scratch}:/data")),
        Misconfiguration("host-network", "SA-RUNTIME-009", {"--network": "host"}),
        Misconfiguration("host-pid", "SA-RUNTIME-009", {}, ("--pid", "host")),
        Misconfiguration("host-ipc", "SA-RUNTIME-009", {}, ("--ipc", "host")),
        Misconfiguration("etc-mounted", "SA-RUNTIME-009", {}, ("--volume", "/etc:/host-etc:ro")),
        Misconfiguration("no-memory-limit", "SA-RUNTIME-010", {"--memory": DROP}),
        Misconfiguration("no-cpu-limit", "SA-RUNTIME-010", {"--cpus": DROP}),
        Misconfiguration("tag-not-digest", "SA-RUNTIME-011", {}, image="tagged"),
        Misconfiguration("latest", "SA-RUNTIME-011", {}, image="docker.io/atlanhq/saeng-agent:latest"),
        Misconfiguration(
            "foreign-registry", "SA-RUNTIME-011", {}, image="registry.saeng.test/other/agent:1.0"
        ),
        Misconfiguration(
            "socket-mounted", "SA-RUNTIME-004", {}, ("--volume", f"{socket}:/var/run/docker.sock:ro")
        ),
        Misconfiguration("published-everywhere", "SA-NET-002", {}, ("--publish", "8080:80")),
        Misconfiguration("published-on-all-v4", "SA-NET-002", {}, ("--publish", "0.0.0.0:8081:80")),
        Misconfiguration("publish-all", "SA-NET-002", {}, ("--expose", "80", "--publish-all")),
    ]


MATRIX_NAMES = [m.name for m in misconfigurations("/s", "/d")]
MATRIX_CONTROLS = [c for c in ALL_CONTROLS if c not in ("SA-RUNTIME-002", "SA-RUNTIME-003", "SA-LOG-005")]
"""Everything a container decides; LOG-005 is left out since these containers never run."""


def policy_for(
    daemon: TestDaemon, containers: Sequence[str] = (), labels: dict[str, str] | None = None
) -> Policy:
    return Policy(
        engine=EngineSection(cli=DOCKER, socket=daemon.endpoint),
        agent=AgentSection(containers=list(containers), container_labels=dict(labels or {})),
    )


@pytest.fixture(scope="module")
def matrix(
    default_daemon: TestDaemon, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Misconfiguration]]:
    """A hardened baseline container and one created container per misconfiguration."""
    scratch = tmp_path_factory.mktemp("saeng-scratch")
    for alias in ("registry.saeng.test/other/agent:1.0", "docker.io/atlanhq/saeng-agent:latest"):
        default_daemon.docker("tag", default_daemon.tagged_image, alias)
    created = {m.name: m for m in misconfigurations(str(default_daemon.socket), str(scratch))}
    names = ["baseline", "loopback-only", *created]
    try:
        default_daemon.create("baseline", *options({}))
        default_daemon.create("loopback-only", *options({}, ("--publish", "127.0.0.1:8082:80")))
        for item in created.values():
            image = default_daemon.tagged_image if item.image == "tagged" else item.image
            default_daemon.create(item.name, *options(item.changes, item.extra), image=image)
        yield created
    finally:
        default_daemon.docker("rm", "--force", *names, check=False)


@pytest.fixture(scope="module")
def default_engine(default_daemon: TestDaemon) -> EngineSnapshot:
    """One snapshot of the default daemon shared by the matrix (facts are read once)."""
    return snapshot(policy_for(default_daemon))


def test_hardened_agent_on_hardened_daemon_passes_every_control(hardened_daemon: TestDaemon) -> None:
    outcomes = run_controls(policy_for(hardened_daemon, ["agent"]), ALL_CONTROLS)

    for control, outcome in outcomes.items():
        if control == "SA-RUNTIME-003" and not kernel_lsm():
            assert outcome.failed_names == {LSM_FINDING}, outcome  # see test_engine_controls
            continue
        assert outcome.result == "passed", outcome
    user = outcomes["SA-RUNTIME-006"].evidence.summary()
    assert (
        "[ok] agent: process user: expected uid != 0 inside the container; observed uid 1000, host uid"
        in user
    )


def test_labels_select_the_agent(hardened_daemon: TestDaemon) -> None:
    policy = policy_for(hardened_daemon, labels={"com.example.saeng.role": "agent"})

    outcomes = run_controls(policy, CONTAINER_CONTROLS)

    for outcome in outcomes.values():
        assert outcome.result == "passed", outcome
        assert "agent containers: labels com.example.saeng.role=agent: agent (" in outcome.evidence.summary()


def test_hardened_baseline_passes_the_container_controls(
    matrix: object, default_engine: EngineSnapshot, default_daemon: TestDaemon
) -> None:
    for name in ("baseline", "loopback-only"):
        policy = policy_for(default_daemon, [name])
        for control in MATRIX_CONTROLS:
            outcome = run_control(control, default_engine, policy)
            assert outcome.result == "passed", outcome


@pytest.mark.parametrize("name", MATRIX_NAMES)
def test_misconfiguration_flips_exactly_its_control(
    name: str, matrix: dict[str, Misconfiguration], default_engine: EngineSnapshot, default_daemon: TestDaemon
) -> None:
    item = matrix[name]
    policy = policy_for(default_daemon, [name])

    outcomes = {c: run_control(c, default_engine, policy) for c in MATRIX_CONTROLS}

    failed = {c for c, o in outcomes.items() if o.result != "passed"}
    assert failed == {item.control}, "\n".join(str(outcomes[c]) for c in failed)
    assert outcomes[item.control].result == "failed"
    assert all(f.startswith(f"{name}: ") for f in outcomes[item.control].failed_names)


@pytest.fixture(scope="module")
def running(default_daemon: TestDaemon) -> Iterator[None]:
    """Running containers for the health control: healthy, unhealthy, without a check; one stopped."""
    names = ["healthy", "unhealthy", "unchecked", "stopped"]
    try:
        default_daemon.create("healthy", *options({}), start=True)
        default_daemon.create(
            "unhealthy", *options({"--health-cmd": "/bin/false"}), "--health-retries", "1", start=True
        )
        default_daemon.create(
            "unchecked", *options({"--health-cmd": DROP, "--health-interval": DROP}), start=True
        )
        default_daemon.create("stopped", *options({}))
        default_daemon.wait_health("healthy", "healthy")
        default_daemon.wait_health("unhealthy", "unhealthy")
        yield
    finally:
        default_daemon.docker("rm", "--force", *names, check=False)


@pytest.mark.parametrize(
    ("name", "failure"),
    [
        ("healthy", None),
        ("unhealthy", "[fail] unhealthy: health: expected healthy; observed unhealthy"),
        ("unchecked", "[fail] unchecked: health check: expected defined; observed none"),
        ("stopped", "[fail] stopped: health: expected healthy; observed not running (created)"),
    ],
)
def test_health_control(
    running: None, default_daemon: TestDaemon, default_engine: EngineSnapshot, name: str, failure: str | None
) -> None:
    outcome = run_control("SA-LOG-005", default_engine, policy_for(default_daemon, [name]))

    if failure is None:
        assert outcome.result == "passed", outcome
    else:
        assert outcome.result == "failed"
        assert failure in outcome.evidence.summary()


def test_running_container_user_is_cross_checked_in_proc(
    running: None, default_daemon: TestDaemon, default_engine: EngineSnapshot
) -> None:
    outcome = run_control("SA-RUNTIME-006", default_engine, policy_for(default_daemon, ["healthy"]))

    assert outcome.result == "passed", outcome
    assert "[ok] healthy: process user: expected uid != 0 inside the container; observed uid 1000 (pid " in (
        outcome.evidence.summary()
    )


def test_no_agent_containers_declared_is_not_applicable(
    default_daemon: TestDaemon, default_engine: EngineSnapshot
) -> None:
    policy = policy_for(default_daemon)

    for control in CONTAINER_CONTROLS:
        outcome = run_control(control, default_engine, policy)
        assert outcome.result == "skipped", outcome
        assert outcome.message == (
            "not applicable: the policy declares no agent containers "
            "(agent.containers, agent.container_labels)"
        )
    socket = run_control("SA-RUNTIME-004", default_engine, policy)
    assert socket.result == "passed", socket
    assert "socket mounts: not checked: the policy declares no agent containers" in socket.evidence.summary()


def test_labels_matching_nothing_are_not_applicable(
    default_daemon: TestDaemon, default_engine: EngineSnapshot
) -> None:
    policy = policy_for(default_daemon, labels={"com.example.saeng.role": "nobody-has-this"})

    outcome = run_control("SA-RUNTIME-006", default_engine, policy)

    assert outcome.result == "skipped"
    assert outcome.message == (
        "not applicable: no container on local matches labels com.example.saeng.role=nobody-has-this"
    )


def test_declared_container_missing_fails_every_container_control(
    default_daemon: TestDaemon, default_engine: EngineSnapshot
) -> None:
    policy = policy_for(default_daemon, ["saeng-ghost"])

    for control in [*CONTAINER_CONTROLS, "SA-RUNTIME-004"]:
        outcome = run_control(control, default_engine, policy)
        assert outcome.result == "failed", outcome
        assert outcome.failed_names == {"saeng-ghost: present"}


def test_declared_socket_mount_exception_only_warns(
    matrix: object, default_daemon: TestDaemon, default_engine: EngineSnapshot
) -> None:
    base = policy_for(default_daemon, ["socket-mounted"])
    policy = Policy(
        engine=EngineSection(
            cli=DOCKER, socket=default_daemon.endpoint, socket_mount_exceptions=["socket-mounted"]
        ),
        agent=base.agent,
    )

    outcome = run_control("SA-RUNTIME-004", default_engine, policy)

    assert outcome.result == "passed", outcome
    assert outcome.warned_names == {"socket-mounted: socket mounts"}
