"""testinfra's ``host`` fixture, bound to each host target of the run.

Teams already write host checks with pytest-testinfra (``def test_x(host): assert
host.file("/etc/passwd").mode == 0o644``). In a run with ``--secagent-target``, such a test
runs once per host target (``local://``, ``ssh://``, ``docker://``) through the plugin's own
connection: for ``ssh://`` the strictly verified master connection, so no second login and no
unverified host key. Each one is reported like a control (section "Host checks (testinfra)",
severity medium), in every report; its assertions are its evidence.

The plugin registers :class:`TestinfraHosts` only in runs with targets, after testinfra's own
plugin, so its ``host`` replaces testinfra's ``--hosts`` handling there and nowhere else.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_secagent.host.base import HostConnection

__all__ = ["TestinfraHosts"]


class TestinfraHosts:
    """Plugin object holding the ``host`` fixture of runs with targets."""

    __test__ = False  # a plugin, not a test class

    @pytest.fixture
    def host(self, secagent_host: HostConnection) -> Any:
        """Testinfra's ``Host`` for this test's host target (one test item per host target).

        Its modules (``host.file``, ``host.package``, ``host.service``, ``host.run``...) run
        their commands over the plugin's connection to the target. They are testinfra's own
        calls: read-only only as far as the test is, and not bounded by ``--secagent-timeout``.
        Raises ``EvidenceUnavailable`` (the test errors) when the target cannot be reached.
        """
        return secagent_host.testinfra_host()
