"""A tool that is missing on the host never reads as "the file or program is absent".

Each host here is this machine with a ``PATH`` that lacks one tool, so the real ``env``
reports it missing (``env: 'cat': No such file or directory``): that message names the
tool, not the path the check asked about, and must not be taken for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_secagent.host.checks.common import find_tools, stat_path, stat_paths
from pytest_secagent.host.local import LocalConnection
from pytest_secagent.outcomes import EvidenceUnavailable
from tests.host.hosts import MINIMAL_TOOLS, minimal_bin

MISSING = "/nonexistent/secagent-missing"


def host_without(tmp_path: Path, *tools: str) -> LocalConnection:
    folder = minimal_bin(tmp_path / "bin")
    for tool in tools:
        assert tool in MINIMAL_TOOLS
        (folder / tool).unlink()
    env = next(p for p in ("/usr/bin/env", "/bin/env") if os.path.exists(p))
    return LocalConnection("bare", timeout=10, prefix=(env, f"PATH={folder}"))


def test_the_minimal_host_reads_what_exists_and_what_does_not(tmp_path: Path) -> None:
    host = host_without(tmp_path)
    assert host.read_text(MISSING) is None
    assert stat_path(host, MISSING) is None
    found = stat_paths(host, ["/etc", MISSING])
    assert found[MISSING] is None
    assert found["/etc"] is not None
    assert host.which("secagent-no-such-tool") is None
    assert find_tools(host, ["sh", "secagent-no-such-tool"]) == {
        "sh": str(tmp_path / "bin" / "sh"),
        "secagent-no-such-tool": None,
    }


def test_without_cat_a_file_is_not_missing(tmp_path: Path) -> None:
    with pytest.raises(EvidenceUnavailable, match=f"cannot read {MISSING}"):
        host_without(tmp_path, "cat").read_text(MISSING)


def test_without_stat_a_path_is_not_missing(tmp_path: Path) -> None:
    host = host_without(tmp_path, "stat")
    with pytest.raises(EvidenceUnavailable, match=f"cannot stat {MISSING}"):
        stat_path(host, MISSING)
    with pytest.raises(EvidenceUnavailable, match="cannot stat"):
        stat_paths(host, ["/etc", MISSING])


def test_without_sh_a_program_is_not_missing(tmp_path: Path) -> None:
    host = host_without(tmp_path, "sh")
    with pytest.raises(EvidenceUnavailable, match="cannot look for 'docker'"):
        host.which("docker")
    with pytest.raises(EvidenceUnavailable, match="cannot look for dockerd, nft"):
        find_tools(host, ["nft", "dockerd"])
