"""The plugin's public fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.keys import BINDING_KEY, EVIDENCE_KEY
from pytest_secagent.markers import ControlBinding
from pytest_secagent.model import Control
from pytest_secagent.options import SETTINGS_KEY, Settings
from pytest_secagent.policy import Policy
from pytest_secagent.targets import Target
from pytest_secagent.targets.pool import ConnectionPool

__all__ = [
    "secagent_connections",
    "secagent_control",
    "secagent_evidence",
    "secagent_policy",
    "secagent_settings",
    "secagent_target",
]


@pytest.fixture(scope="session")
def secagent_settings(pytestconfig: pytest.Config) -> Settings:
    """The run's resolved settings: targets, policy, timeout, selection, active probes.

    Precedence: command line > ini > policy file ``run:`` section > defaults.
    """
    return pytestconfig.stash[SETTINGS_KEY]


@pytest.fixture(scope="session")
def secagent_policy(secagent_settings: Settings) -> Policy:
    """The effective policy (the policy file over the built-in defaults), typed and frozen.

    Override it in a ``conftest.py`` to check against another policy object.
    """
    return secagent_settings.policy.policy


@pytest.fixture(scope="session")
def secagent_connections() -> Iterator[ConnectionPool]:
    """One connection per target for the whole run; all are closed at the end.

    A target that could not be reached is remembered, so its other checks error at once.
    """
    pool = ConnectionPool()
    try:
        yield pool
    finally:
        pool.close_all()


@pytest.fixture
def secagent_target(request: pytest.FixtureRequest) -> Target:
    """The target this control test runs against (one test item per matching target).

    Only tests marked ``secagent_control`` get one; the plugin parametrizes them.
    """
    target: Target | None = getattr(request, "param", None)
    if target is None:
        pytest.fail(
            "secagent_target is only given to tests marked @pytest.mark.secagent_control(...)",
            pytrace=False,
        )
    return target


@pytest.fixture
def secagent_evidence(request: pytest.FixtureRequest, secagent_settings: Settings) -> Evidence:
    """The evidence record of this test: ``expect``, ``observe``, ``warn``, then ``conclude``.

    Everything recorded goes into the terminal, JUnit and HTML reports, redacted.
    """
    evidence = Evidence(redact=secagent_settings.redactor)
    request.node.stash[EVIDENCE_KEY] = evidence
    return evidence


@pytest.fixture
def secagent_control(request: pytest.FixtureRequest) -> Control:
    """The control this test proves, with its catalog metadata."""
    binding: ControlBinding | None = request.node.stash.get(BINDING_KEY, None)
    if binding is None:
        pytest.fail("secagent_control is only given to tests marked secagent_control", pytrace=False)
    return binding.control
