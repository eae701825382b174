"""SA-NET-002 and SA-SEG-001 for hosts against real sockets in a network namespace."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_secagent.evidence import ControlFailed, Verdict
from pytest_secagent.host.checks.listeners import (
    check_listeners,
    listening_sockets,
    parse_proc_net,
    parse_ss,
)
from pytest_secagent.host.checks.segmentation import check_dedicated_host
from pytest_secagent.host.local import LocalConnection
from pytest_secagent.policy.model import AgentSection, NetworkSection, Policy
from tests.host.hosts import line, minimal_bin, run_check, verdicts
from tests.host.netns import Netns

pytestmark = pytest.mark.needs("netns")

SERVER = """
import socket, sys, time
sockets = []
for spec in sys.argv[1:]:
    proto, host, port = spec.split("/")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(family, kind)
    s.bind((host, int(port)))
    if kind == socket.SOCK_STREAM:
        s.listen()
    sockets.append(s)
print("ready", flush=True)
time.sleep(120)
"""

EXPOSED = "listeners outside loopback and the management ports"


@pytest.fixture
def listeners(namespace: Netns) -> Iterator[tuple[Netns, str]]:
    """Tcp 0.0.0.0:8000, udp 0.0.0.0:5353, tcp 127.0.0.1:9000 and tcp :::22 in the namespace."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", namespace.name, sys.executable, "-c", SERVER,
         "tcp/0.0.0.0/8000", "udp/0.0.0.0/5353", "tcp/127.0.0.1/9000", "tcp/::/22"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        comm = Path(f"/proc/{process.pid}/comm").read_text().strip()
        yield namespace, comm
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_external_listeners_fail_and_loopback_passes(listeners: tuple[Netns, str]) -> None:
    namespace, comm = listeners
    evidence = run_check(check_listeners, namespace.connection())
    assert verdicts(evidence)[EXPOSED] is Verdict.FAIL
    text = line(evidence, EXPOSED)
    assert f"tcp 0.0.0.0:8000 ({comm})" in text
    assert "udp 0.0.0.0:5353" in text
    assert "9000" not in text, "loopback listeners are allowed"
    assert ":22" not in text, "22 is a management port by default"


def test_declared_management_ports_pass(listeners: tuple[Netns, str]) -> None:
    namespace, _ = listeners
    policy = dataclasses.replace(Policy(), network=NetworkSection(management_ports=[22, 8000], management_udp_ports=[5353]))
    evidence = run_check(check_listeners, namespace.connection(), policy)
    evidence.conclude()


def test_proc_net_fallback_sees_the_same_listeners(listeners: tuple[Netns, str], tmp_path: Path) -> None:
    namespace, _ = listeners
    full, source = listening_sockets(namespace.connection())
    assert source.startswith("ss")
    bare = LocalConnection(
        "bare",
        prefix=("ip", "netns", "exec", namespace.name, "env", f"PATH={minimal_bin(tmp_path / 'bin')}"),
    )
    fallback, source = listening_sockets(bare)
    assert source.startswith("/proc/net/")
    assert {(x.protocol, x.address, x.port) for x in fallback} == {
        (x.protocol, x.address, x.port) for x in full
    }
    header = "  sl  local_address rem_address   st\n"
    assert parse_proc_net("tcp", header + "   0: 0100007F:0016 00000000:0000 0A\n")[0].address == "127.0.0.1"


def test_empty_namespace_has_no_exposed_listener(namespace: Netns) -> None:
    evidence = run_check(check_listeners, namespace.connection())
    evidence.conclude()
    assert line(evidence, EXPOSED).endswith("observed none")


def test_dedicated_host_flags_foreign_services(listeners: tuple[Netns, str], tmp_path: Path) -> None:
    namespace, comm = listeners
    tools = minimal_bin(tmp_path / "bin")
    for tool in ("ss", "ip"):
        found = shutil.which(tool, path="/usr/bin:/usr/sbin:/bin:/sbin")
        assert found is not None
        (tools / tool).symlink_to(found)
    host = LocalConnection("ns", prefix=("ip", "netns", "exec", namespace.name, "env", f"PATH={tools}"))
    evidence = run_check(check_dedicated_host, host)
    assert "no docker or podman CLI" in line(evidence, "running containers")
    with pytest.raises(ControlFailed, match=rf"tcp 0\.0\.0\.0:8000 \({comm}\)"):
        evidence.conclude()
    agent = dataclasses.replace(
        Policy(), agent=AgentSection(platform_services=[comm])
    )
    run_check(check_dedicated_host, host, agent).conclude()


def test_ss_output_that_is_not_a_socket_list_is_refused() -> None:
    """A header (an ``ss`` without ``-H``) or a truncated line would hide a listener."""
    sample = (
        'tcp   LISTEN 0      4096         0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=501,fd=3))\n'
        "udp   UNCONN 0      0      127.0.0.53%lo:53        0.0.0.0:*\n"
    )
    assert [x.label for x in parse_ss(sample)] == ["tcp 0.0.0.0:22 (sshd)", "udp 127.0.0.53:53"]
    header = "Netid State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n"
    for text in (header + sample, sample + "tcp LISTEN 0\n"):
        with pytest.raises(ValueError, match="not a socket line"):
            parse_ss(text)


def test_a_udp_socket_on_a_management_port_number_is_exposed(namespace: Netns) -> None:
    """Management ports are TCP services: a UDP listener on 22 is not ssh."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", namespace.name, sys.executable, "-c", SERVER, "udp/0.0.0.0/22"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        evidence = run_check(check_listeners, namespace.connection())
        assert verdicts(evidence)[EXPOSED] is Verdict.FAIL
        assert "udp 0.0.0.0:22" in line(evidence, EXPOSED)
        declared = dataclasses.replace(Policy(), network=NetworkSection(management_udp_ports=[22]))
        run_check(check_listeners, namespace.connection(), declared).conclude()
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
