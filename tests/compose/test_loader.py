"""Loading Compose files as Compose does: interpolation, merge rules, extends, include, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_secagent.compose import ComposeView, compose_files, load_project, service_facts
from pytest_secagent.compose.interpolation import InterpolationError, Interpolator
from pytest_secagent.host.engine.containers import Mount, PortBinding
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy import Policy
from pytest_secagent.targets import ComposeTarget, TargetError, TargetKind, parse_target
from pytest_secagent.targets.preflight import target_problem
from tests.compose.verdicts import run_controls

FILES = Path(__file__).parent / "files"
SECRET = "hunter2-not-for-errors"  # noqa: S105 - a test value that errors must not show


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("$A/b", {"A": "x"}, "x/b"),
        ("${A}", {}, ""),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A-d}", {}, "d"),
        ("${A:-${B:-nested}}", {}, "nested"),
        ("${A:+yes}", {"A": "1"}, "yes"),
        ("${A:+yes}", {"A": ""}, ""),
        ("${A+yes}", {"A": ""}, "yes"),
        ("$$A and $${B}", {"A": "x"}, "$A and ${B}"),
        ("${A?msg}", {"A": ""}, ""),
        ("no variables", {}, "no variables"),
    ],
)
def test_interpolation(text: str, variables: dict[str, str], expected: str) -> None:
    assert Interpolator(variables).interpolate(text) == expected


@pytest.mark.parametrize(
    ("text", "variables", "message"),
    [
        ("${A?must be set}", {}, "required variable A is unset: must be set"),
        ("${A:?must be set}", {"A": ""}, "required variable A is unset or empty: must be set"),
        ("${A", {}, "invalid interpolation format for variable 'A'"),
        ("${A:-x", {}, "'${' without its closing '}'"),
        ("${A!x}", {}, "invalid interpolation format for variable 'A'"),
        ("cost $ 5", {}, "a lone '$' is not valid; write '$$' for a literal dollar sign"),
        ("${}", {}, "'${' must be followed by a variable name"),
    ],
)
def test_interpolation_errors(text: str, variables: dict[str, str], message: str) -> None:
    with pytest.raises(InterpolationError) as raised:
        Interpolator(variables).interpolate(text)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ("compose://deploy/", "deploy/"),
        ("compose:///srv/agent/compose.yaml", "/srv/agent/compose.yaml"),
        ("compose://base.yaml,prod.yaml", "base.yaml,prod.yaml"),
    ],
)
def test_parse_compose_target(spec: str, path: str) -> None:
    target = parse_target(spec)
    assert target == ComposeTarget(uri=spec, path=path)
    assert target.kind is TargetKind.COMPOSE
    assert target.id == f"compose:{path}"


@pytest.mark.parametrize("spec", ["compose://", "compose://a.yaml,,b.yaml", "compose://a.yaml?x=1"])
def test_invalid_compose_target(spec: str) -> None:
    with pytest.raises(TargetError, match="compose://"):
        parse_target(spec)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("extends", None),
        ("extends/compose.yaml,override-weakens/compose.override.yaml", None),
        ("nowhere", "does not exist; give the compose file or the folder holding it"),
        ("include/sidecar/..", None),
        (".", "no compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml in"),
        ("extends,extends/compose.yaml", "is a folder; list compose files, or give the folder alone"),
    ],
)
def test_preflight(path: str, problem: str | None) -> None:
    found = target_problem(ComposeTarget(uri=f"compose://{path}", path=path), base=FILES)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_folder_takes_its_override_file() -> None:
    files = compose_files("override-weakens", FILES)
    assert [f.name for f in files] == ["compose.yaml", "compose.override.yaml"]


def test_override_file_weakens_the_base() -> None:
    outcomes = run_controls(ComposeView("c", "override-weakens", base=FILES, environ={}), Policy())

    failed = {c: o.failed_names for c, o in outcomes.items() if o.verdict != "passed"}
    assert failed == {
        "SA-RUNTIME-007": {"agent: capabilities added"},
        "SA-NET-002": {"agent: ports published beyond loopback"},
    }
    summary = outcomes["SA-NET-002"].evidence.summary()
    assert "observed 0.0.0.0:8080 -> 80/tcp; :::8080 -> 80/tcp" in summary
    assert "loopback publications: 127.0.0.1:8082 -> 80/tcp" in summary


def test_override_file_hardens_the_base() -> None:
    base = run_controls(
        ComposeView("c", "override-hardens/compose.yaml", base=FILES, environ={}), Policy()
    )
    both = run_controls(ComposeView("c", "override-hardens", base=FILES, environ={}), Policy())

    assert {c for c, o in base.items() if o.verdict != "passed"} == {"SA-RUNTIME-008", "SA-RUNTIME-010"}
    assert {c for c, o in both.items() if o.verdict != "passed"} == set()


def test_env_file_weakens_and_environment_wins() -> None:
    from_dotenv = run_controls(ComposeView("c", "env-weakens", base=FILES, environ={}), Policy())
    from_shell = run_controls(
        ComposeView("c", "env-weakens", base=FILES, environ={"AGENT_UID": "1000", "AGENT_BIND": "0.0.0.0"}),  # noqa: S104 - text
        Policy(),
    )

    assert {c for c, o in from_dotenv.items() if o.verdict != "passed"} == {"SA-RUNTIME-006"}
    assert "observed 0:0" in from_dotenv["SA-RUNTIME-006"].evidence.summary()
    assert {c for c, o in from_shell.items() if o.verdict != "passed"} == {"SA-NET-002"}


def test_env_values_reach_the_service_environment() -> None:
    project = load_project(compose_files("env-weakens", FILES), {})
    agent = project.services["agent"]

    assert agent.environment == {"AGENT_PASSWORD": SECRET, "PRICE": "$5"}
    assert service_facts(project, agent).image.endswith("@sha256:" + "ab" * 32)


def test_extends_across_files_and_services() -> None:
    project = load_project(compose_files("extends", FILES), {})
    outcomes = run_controls(ComposeView("c", "extends", base=FILES, environ={}), Policy())

    assert set(project.services) == {"agent", "worker"}
    assert project.services["worker"].config["read_only"] is True
    assert outcomes["SA-RUNTIME-007"].failed_names == {"worker: privileged"}
    assert project.services["agent"].where("read_only").endswith("extends/common.yaml:4")


def test_include_and_profiles() -> None:
    every = load_project(compose_files("include", FILES), {})
    chosen = load_project(compose_files("include", FILES), {"COMPOSE_PROFILES": "prod"})

    assert set(every.services) == {"agent", "sidecar"}
    assert set(chosen.services) == {"agent"}
    assert chosen.inactive == ("sidecar",)


@pytest.mark.parametrize(
    ("folder", "message"),
    [
        ("bad-yaml", "bad-yaml/compose.yaml:5:1: not valid YAML: expected ',' or ']', but got '<stream end>'"),
        ("bad-key", "bad-key/compose.yaml:4: services.agent.priviledged: not a Compose service attribute"),
        ("bad-required", "bad-required/compose.yaml:5: services.agent.environment.TOKEN: required variable "
                         "AGENT_TOKEN is unset or empty: the agent token is required"),
        ("bad-cycle", "bad-cycle/compose.yaml:3: services.a.extends: cycle: a (compose.yaml) -> b (compose.yaml)"
                      " -> a (compose.yaml)"),
        ("bad-env-file", "bad-env-file/compose.yaml:4: services.agent.env_file: "),
        ("bad-include", "bad-include/compose.yaml:1: include: "),
    ],
)
def test_bad_input_is_an_error_naming_file_line_and_key(folder: str, message: str) -> None:
    source = ComposeView(f"compose:{folder}", folder, base=FILES, environ={})

    outcomes = run_controls(source, Policy())

    for outcome in outcomes.values():
        assert outcome.result == "error", outcome
        assert message in outcome.message
    with pytest.raises(EvidenceUnavailable, match=r"^compose:"):
        source.agent_containers(Policy().agent)


def test_a_bad_target_leaves_the_others_alone() -> None:
    bad = ComposeView("compose:bad-key", "bad-key", base=FILES, environ={})
    good = ComposeView("compose:extends", "extends", base=FILES, environ={})

    assert all(o.result == "error" for o in run_controls(bad, Policy()).values())
    assert run_controls(good, Policy())["SA-RUNTIME-006"].verdict == "passed"


def test_errors_never_show_interpolated_values(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"PASSWORD={SECRET}\n")
    (tmp_path / "compose.yaml").write_text(
        "services:\n  agent:\n    image: x\n    mem_limit: ${PASSWORD}\n    environment:\n      - A=${PASSWORD}\n"
    )
    source = ComposeView("c", str(tmp_path), base=tmp_path, environ={})

    outcome = run_controls(source, Policy(), ["SA-RUNTIME-010"])["SA-RUNTIME-010"]

    assert outcome.result == "error"
    assert "compose.yaml:4: services.agent.mem_limit: a memory limit is a number" in outcome.message
    assert SECRET not in outcome.message


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        (["80"], [PortBinding("80/tcp", "0.0.0.0", ""), PortBinding("80/tcp", "::", "")]),  # noqa: S104
        (["127.0.0.1:8080:80/udp"], [PortBinding("80/udp", "127.0.0.1", "8080")]),
        (["[::1]:8080:80"], [PortBinding("80/tcp", "::1", "8080")]),
        (["127.0.0.1::80"], [PortBinding("80/tcp", "127.0.0.1", "")]),
        (["127.0.0.1:8000-8001:80-81"], [PortBinding("80/tcp", "127.0.0.1", "8000"),
                                         PortBinding("81/tcp", "127.0.0.1", "8001")]),
        ([{"target": 80, "published": "8080", "host_ip": "127.0.0.1", "protocol": "udp"}],
         [PortBinding("80/udp", "127.0.0.1", "8080")]),
    ],
)
def test_ports(tmp_path: Path, ports: list[object], expected: list[PortBinding]) -> None:
    import yaml

    (tmp_path / "compose.yaml").write_text(yaml.safe_dump({"services": {"a": {"image": "x", "ports": ports}}}))
    project = load_project([tmp_path / "compose.yaml"], {})

    assert list(service_facts(project, project.services["a"]).ports) == expected


def test_volumes(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  a:\n    image: x\n    volumes:\n"
        "      - ./data:/data:ro\n      - cache:/cache\n      - /anon\n"
        "      - {type: bind, source: /srv, target: /srv}\n      - {type: tmpfs, target: /run}\n"
    )
    project = load_project([tmp_path / "compose.yaml"], {})

    assert service_facts(project, project.services["a"]).mounts == (
        Mount("bind", str(tmp_path / "data"), "/data", False),
        Mount("volume", "cache", "/cache", True),
        Mount("volume", "", "/anon", True),
        Mount("bind", "/srv", "/srv", True),
        Mount("tmpfs", "", "/run", True),
    )


def test_merge_rules(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "services:\n  s:\n    image: x\n    command: [a, b]\n    cap_add: [CHOWN]\n"
        "    environment: [A=1, B=2]\n    volumes: [./one:/data, ./logs:/logs]\n    read_only: true\n"
        "    labels: {keep: 'yes'}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "services:\n  s:\n    command: [c]\n    cap_add: [NET_ADMIN, CHOWN]\n    environment: {B: '3'}\n"
        "    volumes: [./two:/data]\n    read_only: !reset null\n    labels: !override {new: 'yes'}\n"
    )
    project = load_project([tmp_path / "a.yaml", tmp_path / "b.yaml"], {})
    config = project.services["s"].config

    assert config["command"] == ["c"]
    assert config["cap_add"] == ["CHOWN", "NET_ADMIN"]
    assert project.services["s"].environment == {"A": "1", "B": "3"}
    assert config["volumes"] == ["./two:/data", "./logs:/logs"]
    assert "read_only" not in config
    assert config["labels"] == {"new": "yes"}
    assert project.services["s"].where("cap_add") == f"{tmp_path / 'b.yaml'}:4"


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"ports": "8080:80"}, "services.a.ports: must be a list"),
        ({"ports": ["a:b"]}, "services.a.ports: a port is a number or a range"),
        ({"ports": ["[::1:80"]}, "services.a.ports: an IPv6 host address is written"),
        ({"ports": [{"published": 1}]}, "services.a.ports: a long-syntax port needs target:"),
        ({"volumes": [1]}, "services.a.volumes: each entry is SOURCE:TARGET[:MODE] or a mapping"),
        ({"volumes": [{"type": "weird", "target": "/x"}]}, "services.a.volumes: unknown volume type 'weird'"),
        ({"healthcheck": "x"}, "services.a.healthcheck: must be a mapping"),
        ({"deploy": "x"}, "services.a.deploy: deploy must be a mapping"),
        ({"deploy": {"resources": {"limits": 1}}}, "services.a.deploy: deploy.resources.limits must be"),
        ({"labels": "x"}, "services.a.labels: a list of KEY=VALUE or a mapping"),
        ({"cap_add": "ALL"}, "services.a.cap_add: must be a list"),
        ({"user": [0]}, "services.a.user: must be a string"),
        ({"privileged": "maybe"}, "services.a.privileged: must be true or false"),
        ({"cpus": "lots"}, "services.a.cpus: a CPU limit is a number"),
        ({"cpu_quota": "x"}, "services.a.cpu_quota: a CFS quota is a whole number"),
        ({"mem_limit": "64m", "deploy": {"resources": {"limits": {"memory": "1g"}}}},
         "services.a.mem_limit: differs from deploy.resources.limits.memory"),
        ({"env_file": 3}, "services.a.env_file: a path or a list"),
        ({"extends": "nope"}, "services.a.extends: no service 'nope' in"),
    ],
)
def test_values_of_the_wrong_shape_are_errors(
    tmp_path: Path, attributes: dict[str, object], message: str
) -> None:
    import yaml

    (tmp_path / "compose.yaml").write_text(yaml.safe_dump({"services": {"a": {"image": "x", **attributes}}}))
    source = ComposeView("c", str(tmp_path), base=tmp_path, environ={})

    with pytest.raises(EvidenceUnavailable) as raised:
        source.agent_containers(Policy().agent)
    assert f"{tmp_path / 'compose.yaml'}:" in str(raised.value)
    assert message in str(raised.value)
