"""Real components the host tests run against: sshd on loopback, network namespaces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.host.netns import Netns, netns
from tests.host.sshd import Sshd, running_sshd
from tests.support import require_root, require_tool


@pytest.fixture
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """An OpenSSH server on 127.0.0.1 (ephemeral port, key-only, generated host key)."""
    binary = require_tool("sshd", "openssh-server")
    require_tool("ssh", "openssh-client")
    require_tool("ssh-keygen", "openssh-client")
    with running_sshd(tmp_path_factory.mktemp("sshd"), binary) as server:
        yield server


@pytest.fixture
def namespace() -> Iterator[Netns]:
    """A fresh network namespace with loopback up and a veth pair to this machine."""
    require_root()
    require_tool("ip", "iproute2")
    with netns() as created:
        yield created
