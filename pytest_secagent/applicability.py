"""Which targets a control test runs against: one test item per matching target."""

from __future__ import annotations

import pytest

from pytest_secagent.catalog import load_catalog
from pytest_secagent.markers import MARKER_NAME, ControlBinding, ControlMarkerError, resolve_marker
from pytest_secagent.options import SETTINGS_KEY
from pytest_secagent.targets import TargetKind

__all__ = ["binding_for", "parametrize_targets"]

TARGET_FIXTURE = "secagent_target"
NOT_APPLICABLE_ID = "not-applicable"


def binding_for(node: pytest.Item | pytest.Function, name: str) -> ControlBinding | None:
    """The validated control binding of a marked test, or ``None`` when it is unmarked."""
    mark = node.get_closest_marker(MARKER_NAME)
    if mark is None:
        return None
    try:
        return resolve_marker(mark, load_catalog())
    except ControlMarkerError as exc:
        raise ControlMarkerError(f"{name}: {exc}") from None


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
        binding = binding_for(metafunc.definition, metafunc.definition.nodeid)
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
    targets = [t for t in settings.all_targets if t.kind in binding.applies_to]
    if targets:
        # Stable test IDs: control plus target, never anything observed.
        ids = [f"{binding.control.id}:{t.id}" for t in targets]
        metafunc.parametrize(TARGET_FIXTURE, targets, ids=ids, indirect=True)
        return
    reason = f"not applicable: no {_kinds_text(binding.applies_to)} target"
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
