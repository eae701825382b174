"""SA-SEG-004 (host addresses against production networks) in a real network namespace."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_secagent.evidence import ControlFailed, Evidence
from pytest_secagent.host.checks.isolation import (
    HostAddress,
    check_not_in_production,
    parse_ip_json,
    parse_ip_oneline,
)
from pytest_secagent.host.local import LocalConnection
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import NetworkSection, Policy
from tests.host.hosts import line, minimal_bin, run_check
from tests.host.netns import Netns, ip
from tests.support import require_root, require_tool

pytestmark = pytest.mark.needs("netns")

INSIDE = "host addresses inside production networks"


@pytest.fixture
def isolated() -> Iterator[Netns]:
    """``sa-iso-XXXX``: loopback up, a veth pair held inside with 10.77.x.5/24 and fd00:77:x::5/64."""
    require_root()
    require_tool("ip", "iproute2")
    suffix = secrets.token_hex(3)
    name = f"sa-iso-{suffix}"
    octet = int(suffix[:2], 16)
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "add", "saiso0", "type", "veth", "peer", "name", "saiso1")
        ip("-n", name, "addr", "add", f"10.77.{octet}.5/24", "dev", "saiso0")
        ip("-n", name, "addr", "add", f"fd00:77:{octet:x}::5/64", "dev", "saiso0", "nodad")
        yield Netns(name, f"10.77.{octet}.5")
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            ip("netns", "del", name)


def production(*cidrs: str) -> Policy:
    return dataclasses.replace(Policy(), network=NetworkSection(production_cidrs=list(cidrs)))


def inside_line(evidence: Evidence) -> str:
    return next(o.as_line() for o in evidence.observations if o.name.startswith(INSIDE))


def test_address_inside_production_fails(isolated: Netns) -> None:
    evidence = run_check(check_not_in_production, isolated.connection(), production("10.77.0.0/16"))
    with pytest.raises(ControlFailed):
        evidence.conclude()
    assert f"{isolated.inner_address}/24 on saiso0 in 10.77.0.0/16" in inside_line(evidence)
    assert "127.0.0.1/8 on lo" in line(evidence, "host addresses")


def test_ipv6_address_inside_production_fails(isolated: Netns) -> None:
    octet = int(isolated.inner_address.split(".")[2])
    evidence = run_check(check_not_in_production, isolated.connection(), production("fd00:77::/32"))
    assert [o.name for o in evidence.failures] == [f"{INSIDE} (fd00:77::/32)"]
    assert f"fd00:77:{octet:x}::5/64 on saiso0 in fd00:77::/32" in inside_line(evidence)


def test_addresses_outside_production_pass(isolated: Netns) -> None:
    policy = production("10.78.0.0/16", "192.0.2.0/24", "2001:db8::/32", "127.0.0.0/8")
    evidence = run_check(check_not_in_production, isolated.connection(), policy)
    evidence.conclude()
    assert "none of 2 non-loopback addresses" in inside_line(evidence), "loopback is never judged"


def test_no_production_networks_is_not_applicable(isolated: Netns) -> None:
    with pytest.raises(
        pytest.skip.Exception, match=r"no production networks declared \(network.production_cidrs\)"
    ):
        run_check(check_not_in_production, isolated.connection(), Policy())


def test_ip_without_json_falls_back_to_one_line_output(isolated: Netns, tmp_path: Path) -> None:
    """An iproute2 that rejects ``-j`` (as old releases do) is read through ``ip -o``."""
    real_ip = LocalConnection().which("ip")
    assert real_ip is not None
    tools = minimal_bin(tmp_path / "bin")
    stand_in = tools / "ip"
    stand_in.write_text(
        f'#!/bin/sh\nif [ "$1" = "-j" ]; then echo \'Option "-j" is unknown, try "ip -help".\' >&2; exit 255; fi\n'
        f'exec {real_ip} "$@"\n',
        encoding="utf-8",
    )
    stand_in.chmod(0o755)
    host = LocalConnection(
        "old-iproute", timeout=10, prefix=("ip", "netns", "exec", isolated.name, "env", f"PATH={tools}")
    )
    evidence = run_check(check_not_in_production, host, production("10.77.0.0/16"))
    assert f"{isolated.inner_address}/24 on saiso0 in 10.77.0.0/16" in inside_line(evidence)


def test_host_without_ip_is_an_error(isolated: Netns, tmp_path: Path) -> None:
    tools = minimal_bin(tmp_path / "bin")
    host = LocalConnection(
        "bare", timeout=10, prefix=("ip", "netns", "exec", isolated.name, "env", f"PATH={tools}")
    )
    with pytest.raises(EvidenceUnavailable, match=r"the ip command \(iproute2\) is not installed"):
        run_check(check_not_in_production, host, production("10.0.0.0/8"))


def test_bad_production_cidr_is_an_error(isolated: Netns) -> None:
    with pytest.raises(EvidenceUnavailable, match=r"'10\.0\.0\.300/8' is not a CIDR"):
        run_check(check_not_in_production, isolated.connection(), production("10.0.0.300/8"))


def test_both_output_forms_agree(isolated: Netns) -> None:
    json_form = parse_ip_json(isolated.exec("ip", "-j", "addr", "show").stdout)
    one_line = parse_ip_oneline(isolated.exec("ip", "-o", "addr", "show").stdout)
    assert sorted(map(str, json_form)) == sorted(map(str, one_line))
    assert HostAddress("saiso0", ipaddress.ip_interface(f"{isolated.inner_address}/24")) in json_form
