"""Every evidence reader fed an unknown, partial or disabled state: nothing may pass.

Where the state is a real one (a dormant table behind iptables-save, apt without lists,
an ``ss`` answer cut short), it is made with the real component. Where it can only be an
answer of another shape, the real tool's own output is captured live and then cut or
replaced, and a stand-in prints it in the tool's place; the check itself always runs whole.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_secagent.evidence import ControlFailed, Evidence, Verdict
from pytest_secagent.host.checks.audit import check_audit_and_time
from pytest_secagent.host.checks.firewall import check_inbound_default_deny
from pytest_secagent.host.checks.listeners import check_listeners
from pytest_secagent.host.checks.patching import check_patch_currency
from pytest_secagent.host.local import LocalConnection
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import Policy
from tests.host.hosts import Check, minimal_bin
from tests.host.netns import Netns
from tests.support import require_tool

pytestmark = pytest.mark.needs("netns")

CLEAN_BUT_OPEN = """
table inet filter {
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iif lo accept
    jump services
  }
  chain services {
    tcp dport 8000 accept
  }
}
"""


def outcome(check: Check, host: LocalConnection) -> str:
    """``"error"``, ``"failed"``, ``"partial"`` or ``"passed"``: how the control would end."""
    evidence = Evidence()
    try:
        check(host, Policy(), evidence)
    except EvidenceUnavailable as exc:
        if "clock is synchronised" not in str(exc) or not evidence.observations:
            print(f"error: {exc}")  # shown with -rA: the reason is part of what is tested
            return "error"
    try:
        evidence.conclude()
    except ControlFailed as exc:
        print(f"failed: {exc}")
        return "failed"
    except BaseException:  # not observable: a reasoned skip
        return "error"
    if evidence.unobserved_parts:
        return "partial"
    return "passed" if any(o.verdict is Verdict.OK for o in evidence.observations) else "error"


def stand_in(folder: Path, name: str, answers: dict[str, tuple[str, int]]) -> None:
    """An executable ``name`` that prints a fixed answer for each argument string."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for index, (args, (text, status)) in enumerate(answers.items()):
        (folder / f".{name}.{index}").write_text(text)
        cases.append(f'  "{args}") cat "{folder}/.{name}.{index}"; exit {status};;')
    script = "#!/bin/sh\ncase \"$*\" in\n" + "\n".join(cases) + '\n  *) echo "unexpected: $*" >&2; exit 2;;\nesac\n'
    (folder / name).write_text(script)
    (folder / name).chmod(0o755)


def tools(folder: Path, *real: str) -> Path:
    """A PATH folder with core utilities, the real tools named and room for stand-ins."""
    minimal_bin(folder)
    for tool in real:
        found = shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
        assert found is not None, tool
        (folder / tool).symlink_to(found)
    return folder


def in_ns(ns: Netns, folder: Path) -> LocalConnection:
    return LocalConnection("ns", timeout=20, prefix=("ip", "netns", "exec", ns.name, "env", f"PATH={folder}"))


def captured(ns: Netns, *argv: str) -> str:
    return ns.exec(*argv).stdout


# -- nft and iptables ------------------------------------------------------------------------


def _nft_answers(ns: Netns) -> tuple[str, str]:
    ns.exec("nft", "-f", "-", input_text=CLEAN_BUT_OPEN)
    answers = captured(ns, "nft", "-j", "list", "ruleset"), captured(ns, "nft", "list", "ruleset")
    ns.exec("nft", "flush", "ruleset")
    return answers


def _without_rules_of(chain: str) -> Callable[[str, str], tuple[str, str]]:
    def cut(document: str, listing: str) -> tuple[str, str]:
        items = json.loads(document)["nftables"]
        kept = [i for i in items if not ("rule" in i and i["rule"]["chain"] == chain)]
        return json.dumps({"nftables": kept}), listing
    return cut


NFT_STATES: dict[str, Callable[[str, str], tuple[str, str]]] = {
    "text-where-json-is-expected": lambda document, listing: (listing, listing),
    "json-cut-in-the-middle": lambda document, listing: (document[: len(document) // 2], listing),
    "json-cut-at-an-item-boundary": _without_rules_of("services"),
    "json-of-another-shape": lambda document, listing: ('{"nftables": {}}', listing),
    "json-without-metainfo": lambda document, listing: (
        json.dumps({"nftables": [i for i in json.loads(document)["nftables"] if "metainfo" not in i]}), listing
    ),
    "table-missing-from-the-text-listing": lambda document, listing: (document, ""),
    "unknown-table-flag": lambda document, listing: (
        document, listing.replace("table inet filter {\n", "table inet filter {\n\tflags hibernate\n", 1)
    ),
}


@pytest.mark.parametrize("make", NFT_STATES.values(), ids=NFT_STATES)
def test_nft_reader(namespace: Netns, tmp_path: Path, make: Callable[[str, str], tuple[str, str]]) -> None:
    require_tool("nft", "nftables")
    document, listing = make(*_nft_answers(namespace))
    folder = tools(tmp_path / "bin")
    stand_in(folder, "nft", {"-j list ruleset": (document, 0), "list ruleset": (listing, 0)})
    assert outcome(check_inbound_default_deny, in_ns(namespace, folder)) in ("error", "failed")


def _iptables_answer(ns: Netns) -> str:
    ns.exec("iptables", "-P", "INPUT", "DROP")
    ns.exec("iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8000", "-j", "ACCEPT")
    text = captured(ns, "iptables-save")
    ns.exec("iptables", "-F")
    ns.exec("iptables", "-P", "INPUT", "ACCEPT")
    return text


IPTABLES_STATES: dict[str, Callable[[str], str]] = {
    "cut-before-the-rules": lambda text: text[: text.index("-A INPUT")],
    "cut-before-commit": lambda text: text[: text.index("COMMIT")],
    "listing-instead-of-save-format": lambda text: (
        "Chain INPUT (policy DROP)\ntarget     prot opt source               destination\n"
    ),
    "table-it-cannot-show": lambda text: text.replace(
        "*filter", "# Table `filter' is incompatible, use 'nft' tool.\n*filter", 1
    ),
    "rule-of-an-undeclared-chain": lambda text: text.replace("-A INPUT", "-A SERVICES", 1),
}


@pytest.mark.parametrize("make", IPTABLES_STATES.values(), ids=IPTABLES_STATES)
def test_iptables_reader(namespace: Netns, tmp_path: Path, make: Callable[[str], str]) -> None:
    require_tool("iptables", "iptables")
    text = make(_iptables_answer(namespace))
    folder = tools(tmp_path / "bin")
    stand_in(folder, "iptables-save", {"": (text, 0)})
    assert outcome(check_inbound_default_deny, in_ns(namespace, folder)) in ("error", "failed")


def test_iptables_view_of_a_dormant_table_without_nft_is_partial(namespace: Netns, tmp_path: Path) -> None:
    """Real iptables-nft and a table made dormant: iptables-save still shows ``:INPUT DROP``."""
    require_tool("iptables", "iptables")
    require_tool("nft", "nftables")
    namespace.exec("iptables", "-P", "INPUT", "DROP")
    namespace.exec("ip6tables", "-P", "INPUT", "DROP")
    namespace.exec("nft", "add", "table", "ip", "filter", "{ flags dormant; }")
    folder = tools(tmp_path / "bin", "iptables-save", "ip6tables-save")
    assert outcome(check_inbound_default_deny, in_ns(namespace, folder)) == "partial"
    with_nft = tools(tmp_path / "nft-bin", "iptables-save", "ip6tables-save", "nft")
    assert outcome(check_inbound_default_deny, in_ns(namespace, with_nft)) == "failed"


def test_native_rule_iptables_cannot_express_is_judged_by_nft(namespace: Netns) -> None:
    """iptables-save shows ``tcp dport { 80, 8000 }`` as ``-p tcp``: nft's own reading decides."""
    require_tool("iptables", "iptables")
    require_tool("nft", "nftables")
    namespace.exec("iptables", "-P", "INPUT", "DROP")
    namespace.exec("nft", "add", "rule", "ip", "filter", "INPUT", "tcp", "dport", "{ 80, 8000 }", "accept")
    evidence = Evidence()
    check_inbound_default_deny(namespace.connection(), Policy(), evidence)
    text = next(o.as_line() for o in evidence.observations if o.name == "IPv4 inbound default-deny")
    assert "tcp dport == {80, 8000} accept" in text
    with pytest.raises(ControlFailed):
        evidence.conclude()


# -- ss ----------------------------------------------------------------------------------------

SERVER = """
import socket, time
s = socket.socket()
s.bind(("0.0.0.0", 8000))
s.listen()
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def listening(namespace: Netns) -> Iterator[Netns]:
    """A TCP listener on 0.0.0.0:8000 in the namespace."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", namespace.name, sys.executable, "-c", SERVER],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"ready"
        yield namespace
    finally:
        process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


LOOPBACK_ONLY = "tcp   LISTEN 0      4096       127.0.0.1:9000      0.0.0.0:*\n"
SS_STATES = {
    "empty-answer": "",
    "answer-cut-to-a-loopback-listener": LOOPBACK_ONLY,
    "answer-with-a-header": "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n",
    "error-text-on-stdout": "Cannot open netlink socket: Protocol not supported\n",
}


@pytest.mark.parametrize("answer", SS_STATES.values(), ids=SS_STATES)
def test_ss_reader(listening: Netns, tmp_path: Path, answer: str) -> None:
    assert "0.0.0.0:8000" in captured(listening, "ss", "-H", "-tln")
    folder = tools(tmp_path / "bin")
    stand_in(folder, "ss", {"-H -tulnp": (answer, 0)})
    assert outcome(check_listeners, in_ns(listening, folder)) in ("error", "failed")


# -- apt ---------------------------------------------------------------------------------------

APT_STATES = {
    "empty-answer": ("", 0),
    "error-text-with-status-zero": ("E: Could not open lock file /var/lib/dpkg/lock-frontend\n", 0),
    "answer-without-the-listing-line": ("libssl3/bookworm-security 3.0.17 amd64 [upgradable from: 3.0.11]\n", 0),
    "unknown-line-after-the-listing": ("Listing...\nlibssl3 3.0.17 (security)\n", 0),
}


@pytest.mark.parametrize(("answer", "status"), APT_STATES.values(), ids=APT_STATES)
def test_apt_reader(tmp_path: Path, answer: str, status: int) -> None:
    folder = tools(tmp_path / "bin")
    stand_in(folder, "apt", {"list --upgradable": (answer, status)})
    host = LocalConnection("apt", timeout=20, prefix=("env", f"PATH={folder}"))
    assert outcome(check_patch_currency, host) in ("error", "failed")


def test_apt_without_lists(tmp_path: Path) -> None:
    """Real apt whose lists folder holds nothing: it lists no upgrade, which proves nothing."""
    require_tool("apt", "apt")
    lists, cache = tmp_path / "lists", tmp_path / "cache"
    (lists / "partial").mkdir(parents=True)
    cache.mkdir()
    config = tmp_path / "apt.conf"
    config.write_text(f'Dir::State::lists "{lists}";\nDir::Cache "{cache}";\n')
    host = LocalConnection("apt", timeout=60, prefix=("env", f"APT_CONFIG={config}"))
    assert outcome(check_patch_currency, host) == "error"


# -- auditctl ----------------------------------------------------------------------------------

STATUS = (
    "enabled {enabled}\nfailure 1\npid {pid}\nrate_limit 0\nbacklog_limit 8192\nlost 0\nbacklog 0\n"
    "backlog_wait_time 60000\nbacklog_wait_time_actual 0\nloginuid_immutable 0 unlocked\n"
)
WATCHED = "-w /usr/bin/dockerd -p rwxa -k docker\n"
AUDIT_STATES = {
    "kernel-auditing-disabled": (STATUS.format(enabled=0, pid=4242), WATCHED),
    "no-daemon-registered": (STATUS.format(enabled=1, pid=0), WATCHED),
    "status-of-another-shape": ("AUDIT_STATUS: enabled=1 flag=1 pid=4242\n", WATCHED),
    "status-empty": ("", WATCHED),
    "rules-of-another-shape": (STATUS.format(enabled=1, pid=4242), "LIST_RULES: exit,always watch=/usr/bin/dockerd\n"),
    "no-rules": (STATUS.format(enabled=1, pid=4242), "No rules\n"),
}


@pytest.fixture
def fake_auditd(tmp_path: Path) -> Iterator[Path]:
    """A process named ``auditd`` (a copy of sleep), so the check finds the daemon running."""
    binary = tmp_path / "daemon" / "auditd"
    binary.parent.mkdir()
    sleep = shutil.which("sleep")
    assert sleep is not None
    shutil.copy(sleep, binary)
    process = subprocess.Popen([str(binary), "120"])
    try:
        yield binary
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.mark.parametrize(("status", "rules"), AUDIT_STATES.values(), ids=AUDIT_STATES)
def test_auditctl_reader(fake_auditd: Path, tmp_path: Path, status: str, rules: str) -> None:
    folder = tools(tmp_path / "bin")
    stand_in(folder, "auditctl", {"-s": (status, 0), "-l": (rules, 0)})
    stand_in(folder, "dockerd", {"": ("", 0)})
    host = LocalConnection("audit", timeout=20, prefix=("env", f"PATH={folder}"))
    assert outcome(check_audit_and_time, host) in ("error", "failed")
