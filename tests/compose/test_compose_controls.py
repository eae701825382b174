"""The container controls on Compose files: the hardened agent passes, each variant fails its control."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_secagent.compose import ComposeView
from pytest_secagent.policy import Policy
from pytest_secagent.policy.model import AgentSection, EngineSection
from tests.compose.scenarios import HARDENED, VARIANT_NAMES, service, variants, write_compose
from tests.compose.verdicts import CONTROLS, run_controls

SOCKET = "/run/docker.sock"
PARTIAL = {"SA-RUNTIME-004", "SA-RUNTIME-006", "SA-LOG-005"}
"""Controls with a part only the live engine shows (socket permissions, process user, health)."""


def view(folder: Path, environ: dict[str, str] | None = None) -> ComposeView:
    return ComposeView(f"compose:{folder}", str(folder), base=Path("/"), environ=environ or {})


def test_hardened_agent_passes_every_container_control(tmp_path: Path) -> None:
    write_compose(tmp_path, {"agent": service(None, tmp_path, "saeng-agent")})

    outcomes = run_controls(view(tmp_path), Policy())

    for control, outcome in outcomes.items():
        assert outcome.result == ("partial" if control in PARTIAL else "passed"), outcome
    assert "agent containers: every service of compose.yaml: saeng-agent (declared)" in (
        outcomes["SA-RUNTIME-006"].evidence.summary()
    )
    assert "[unobserved] saeng-agent: process user" in outcomes["SA-RUNTIME-006"].evidence.summary()


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_variant_fails_exactly_its_control(name: str, tmp_path: Path) -> None:
    variant = {v.name: v for v in variants(SOCKET)}[name]
    write_compose(tmp_path, {"agent": service(variant.edit, tmp_path, name)})

    outcomes = run_controls(view(tmp_path), Policy())

    failed = {c for c, o in outcomes.items() if o.verdict != "passed"}
    assert failed == {variant.control}, "\n".join(str(outcomes[c]) for c in failed)
    assert outcomes[variant.control].result == "failed"
    assert all(f.startswith(f"{name}: ") for f in outcomes[variant.control].failed_names)


def test_every_container_control_has_a_failing_variant() -> None:
    assert {v.control for v in variants(SOCKET)} == set(CONTROLS)


def test_policy_names_and_labels_choose_the_agent_services(tmp_path: Path) -> None:
    weak = service(lambda s, _f: s.update(privileged=True, labels={}), tmp_path, "sidecar")
    write_compose(tmp_path, {"agent": service(None, tmp_path, "saeng-agent"), "sidecar": weak})
    source = view(tmp_path)

    every = run_controls(source, Policy(), ["SA-RUNTIME-007"])["SA-RUNTIME-007"]
    by_name = run_controls(source, Policy(agent=AgentSection(containers=["agent"])), ["SA-RUNTIME-007"])
    by_label = run_controls(
        source, Policy(agent=AgentSection(container_labels={"com.example.saeng.role": "agent"})),
        ["SA-RUNTIME-007"],
    )
    missing = run_controls(source, Policy(agent=AgentSection(containers=["ghost"])), ["SA-RUNTIME-007"])

    assert every.result == "failed"
    assert every.failed_names == {"sidecar: privileged"}
    assert by_name["SA-RUNTIME-007"].result == "passed", by_name
    assert by_label["SA-RUNTIME-007"].result == "passed", by_label
    assert missing["SA-RUNTIME-007"].failed_names == {"ghost: present"}


def test_declared_socket_mount_exception_only_warns(tmp_path: Path) -> None:
    mounted = service(lambda s, _f: s.update(volumes=["/var/run/docker.sock:/var/run/docker.sock"]),
                      tmp_path, "orchestrator")
    write_compose(tmp_path, {"orchestrator": mounted})
    policy = Policy(engine=EngineSection(socket_mount_exceptions=["orchestrator"]))

    outcome = run_controls(view(tmp_path), policy, ["SA-RUNTIME-004"])["SA-RUNTIME-004"]

    assert outcome.result == "partial", outcome
    assert "[warn] orchestrator: socket mounts" in outcome.evidence.summary()


@pytest.mark.parametrize(
    ("key", "value", "control"),
    [
        ("use_api_socket", True, "SA-RUNTIME-004,SA-RUNTIME-008"),
        ("volumes", ["/run:/host-run:ro"], "SA-RUNTIME-004"),
        ("deploy", {"resources": {"limits": {"memory": "64m", "cpus": "0.5"}}}, None),
        ("ports", ["[::1]:8085:80", {"target": 80, "host_ip": "127.0.0.1", "published": 8086}], None),
        ("ports", [{"target": 80, "host_ip": "::", "published": "8087"}], "SA-NET-002"),
        ("volumes", [{"type": "bind", "source": "/srv", "target": "/srv", "read_only": True}], None),
        ("userns_mode", "host", "SA-RUNTIME-009"),
        ("uts", "host", "SA-RUNTIME-009"),
        ("cpu_quota", 50000, None),
    ],
)
def test_compose_syntax_reaches_the_controls(
    tmp_path: Path, key: str, value: object, control: str | None
) -> None:
    def edit(definition: dict[str, object], _folder: Path) -> None:
        if key == "deploy":
            definition.pop("mem_limit")
            definition.pop("cpus")
        if key == "cpu_quota":
            definition.pop("cpus")
        definition[key] = value

    write_compose(tmp_path, {"agent": service(edit, tmp_path, "agent")})

    outcomes = run_controls(view(tmp_path), Policy())

    failed = {c for c, o in outcomes.items() if o.verdict != "passed"}
    expected = set(control.split(",")) if control else set()
    assert failed == expected, "\n".join(str(outcomes[c]) for c in failed)


def test_hardened_definition_is_what_the_scenarios_use() -> None:
    assert HARDENED["cap_drop"] == ["ALL"]
    assert HARDENED["security_opt"] == ["no-new-privileges:true"]
