"""Which targets a control test runs against: one test item per matching target."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import pytest

from pytest_secagent.catalog import load_catalog
from pytest_secagent.markers import MARKER_NAME, ControlBinding, ControlMarkerError, resolve_marker
from pytest_secagent.model import Control, Severity
from pytest_secagent.options import SETTINGS_KEY
from pytest_secagent.targets import TargetKind

__all__ = ["TESTINFRA_MODE", "TESTINFRA_SECTION", "binding_for", "parametrize_targets"]

TARGET_FIXTURE = "secagent_target"
NOT_APPLICABLE_ID = "not-applicable"
#: testinfra's fixture: an unmarked test that uses it is a host check of its own.
TESTINFRA_FIXTURE = "host"
#: The report section of such checks.
TESTINFRA_SECTION = "Host checks (testinfra)"
#: The control mode that marks them: their assertions are their evidence.
TESTINFRA_MODE = "testinfra"
#: A host control that reads the agent's containers through this fixture judges Compose files
#: too: each service stands for the container ``docker compose up`` creates from it.
CONTAINERS_FIXTURE = "secagent_containers"


def _testinfra_binding(node: pytest.Item | pytest.Function) -> ControlBinding:
    """An unmarked testinfra test as a custom host check, named after its function."""
    name = str(getattr(node, "originalname", node.name))
    doc = inspect.getdoc(getattr(node, "function", None)) or ""
    title = doc.strip().splitlines()[0] if doc.strip() else name.removeprefix("test_").replace("_", " ")
    control = Control(
        id=f"testinfra:{name}",
        title=title,
        section=TESTINFRA_SECTION,
        severity=Severity.MEDIUM,
        mode=TESTINFRA_MODE,
    )
    return ControlBinding(control, (TargetKind.HOST,))


def binding_for(
    node: pytest.Item | pytest.Function, name: str, fixturenames: Sequence[str] = ()
) -> ControlBinding | None:
    """The validated control binding of a marked test, or ``None`` when it is unmarked.

    An unmarked test that uses testinfra's ``host`` fixture in a run with targets is a host
    check of its own (section :data:`TESTINFRA_SECTION`, severity medium), run once per host
    target like a control.
    """
    mark = node.get_closest_marker(MARKER_NAME)
    if mark is None:
        settings = node.config.stash.get(SETTINGS_KEY, None)
        if TESTINFRA_FIXTURE in fixturenames and settings is not None and settings.active:
            return _testinfra_binding(node)
        return None
    try:
        return resolve_marker(mark, load_catalog())
    except ControlMarkerError as exc:
        raise ControlMarkerError(f"{name}: {exc}") from None


def _kinds(binding: ControlBinding, fixturenames: Sequence[str]) -> tuple[TargetKind, ...]:
    """The target kinds a control test runs on: its binding's, plus compose for container checks."""
    kinds = binding.applies_to
    if TargetKind.HOST in kinds and CONTAINERS_FIXTURE in fixturenames and TargetKind.COMPOSE not in kinds:
        kinds = (*kinds, TargetKind.COMPOSE)
    return kinds


def _kinds_text(kinds: tuple[TargetKind, ...]) -> str:
    names = [k.value for k in kinds]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def parametrize_targets(metafunc: pytest.Metafunc) -> None:
    """Parametrize a control test over the configured targets its control applies to.

    Each item's ID is ``CONTROL:TARGET`` (``test_tls[SA-NET-007:tls:acme.atlan.com:443]``), so
    JUnit testcase names stay the same from run to run and ``-k`` selects by control or target.
    No matching target gives one skipped item reading ``not applicable: no <kind> target``.
    """
    __tracebackhide__ = True
    problem = ""
    try:
        binding = binding_for(metafunc.definition, metafunc.definition.nodeid, metafunc.fixturenames)
    except ControlMarkerError as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        # A clear collection error naming the test, without a traceback through pytest.
        pytest.fail(problem, pytrace=False)
    if binding is None:
        return
    if TARGET_FIXTURE not in metafunc.fixturenames:
        pytest.fail(
            f"ControlMarkerError: {metafunc.definition.nodeid}: a {MARKER_NAME} test receives its "
            f"target through the {TARGET_FIXTURE} fixture; add {TARGET_FIXTURE} (or a fixture that "
            "uses it) to the test's arguments",
            pytrace=False,
        )
    settings = metafunc.config.stash[SETTINGS_KEY]
    kinds = _kinds(binding, metafunc.fixturenames)
    targets = [t for t in settings.all_targets if t.kind in kinds]
    if targets:
        # Stable test IDs: control plus target, never anything observed.
        ids = [f"{binding.control.id}:{t.id}" for t in targets]
        metafunc.parametrize(TARGET_FIXTURE, targets, ids=ids, indirect=True)
        return
    reason = f"not applicable: no {_kinds_text(kinds)} target"
    metafunc.parametrize(
        TARGET_FIXTURE,
        [
            pytest.param(
                None,
                marks=pytest.mark.skip(reason=reason),
                id=f"{binding.control.id}:{NOT_APPLICABLE_ID}",
            )
        ],
        indirect=True,
    )
