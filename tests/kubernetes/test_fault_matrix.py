"""The fault matrix: every Kubernetes control against every fault, on each list it needs.

One test API server serves the hardened scenario (where every control passes) to many
callers, one per cell; a cell is a fault kind applied to every request for one resource
path of one caller (see :mod:`tests.kubernetes.faults`). First, each control runs alone on a
clean view to learn which lists it needs. Then, per fault kind, every cell runs every
control that needs the faulted list, through the suites' own test functions, and:

* no control passes (nor passes in part) while a list it needs was faulted;
* a fault is an error naming the request (never a crash, never a failure made up from a
  malformed answer);
* each control finishes within the deadline per list it needs, plus a margin.

Cells run in threads (they mostly wait on deadlines). ``test_fault_matrix_size`` prints the
size of the matrix (shown with ``-rA``).
"""

from __future__ import annotations

import concurrent.futures
import importlib
import inspect
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_secagent.evidence import ControlFailed, Evidence
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.resources import PODS
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy import Policy
from pytest_secagent.policy.loader import load_policy
from pytest_secagent.targets import Target, parse_target
from tests.kubernetes.apiauth import READ_EVERYTHING, User
from tests.kubernetes.apiserver import FakeApiServer, start_apiserver
from tests.kubernetes.faults import FAULTS, LIST_ONLY_FAULTS, TIMED_FAULTS, FaultRule
from tests.kubernetes.scenario_files import HARDENED, POLICY, materialize

SUITES = ("suites.test_kubernetes_workloads", "suites.test_kubernetes_network", "suites.test_kubernetes_cluster")
TIMEOUT = 2.0
"""The views' deadline per operation (``--secagent-timeout``)."""
MARGIN = 3.0
PAGE_CAP = 20
"""Pages per list in the matrix views, so an endless list meets its cap before its deadline."""
CELLS_PER_KIND = 64
TARGET = "k8s://fault-matrix/atlan-agent"
REVIEWS = "/subjectaccessreviews"

Suite = Callable[..., None]


@dataclass(frozen=True)
class Control:
    """One control of the suites: its ID and its test function."""

    id: str
    test: Suite


def suite_controls() -> list[Control]:
    """Every Kubernetes control the suites define, live ones included."""
    found = []
    for name in SUITES:
        module = importlib.import_module(name)
        for attribute, function in sorted(vars(module).items()):
            if not attribute.startswith("test_") or not callable(function):
                continue
            marks = [m for m in getattr(function, "pytestmark", []) if m.name == "secagent_control"]
            if marks:
                found.append(Control(str(marks[0].args[0]), function))
    return found


CONTROLS = suite_controls()


@dataclass(frozen=True)
class Run:
    """How one control ended on one view, and how long it took."""

    outcome: str
    detail: str
    seconds: float


def run_control(control: Control, view: LiveClusterView, policy: Policy, target: Target) -> Run:
    """Call the control's suite function the way pytest would, and map what it raised to an outcome."""
    evidence = Evidence()
    offered: dict[str, Any] = {
        "secagent_target": target,
        "secagent_k8s": view,
        "secagent_policy": policy,
        "secagent_evidence": evidence,
    }
    arguments = {k: v for k, v in offered.items() if k in inspect.signature(control.test).parameters}
    started = time.monotonic()
    try:
        control.test(**arguments)
    except EvidenceUnavailable as exc:
        outcome, detail = "error", str(exc)
    except pytest.skip.Exception as exc:
        outcome, detail = "skipped", str(exc)
    except ControlFailed as exc:
        outcome, detail = "failed", str(exc)
    except Exception as exc:  # a crash is a bug the matrix reports
        outcome, detail = "crash", f"{type(exc).__name__}: {exc}"
    else:
        outcome = "partial" if evidence.unobserved_parts else "passed"
        detail = evidence.summary()
    return Run(outcome, detail, time.monotonic() - started)


@dataclass
class Matrix:
    """The shared server, the policy, and what each control needs."""

    server: FakeApiServer
    policy: Policy
    needs: dict[str, set[str]]
    cells: Iterator[int]

    def view(self, user: str, *, timeout: float = TIMEOUT) -> LiveClusterView:
        """A view of the server as ``user``, opened as ``open_view`` does (``/version`` first).

        ``/version`` is never faulted in a cell: a view that cannot open is this loaded test
        machine, not the fault, so opening is tried again (three times at most).
        """
        for attempt in range(3):
            view = LiveClusterView.from_kubeconfig(
                str(self.server.kubeconfig_for(user)),
                timeout=timeout,
                target_id=f"k8s:{user}",
                max_list_pages=PAGE_CAP,
            )
            try:
                view.server_version()
            except EvidenceUnavailable:
                view.close()
                if attempt == 2:
                    raise
                time.sleep(0.5)
                continue
            return view
        raise AssertionError("unreachable")

    @property
    def paths(self) -> list[str]:
        """Every path some control requests."""
        return sorted(set().union(*self.needs.values()))

    def paths_for(self, kind: str) -> list[str]:
        """The paths a fault kind applies to: list faults only to lists (not to access reviews)."""
        if kind in LIST_ONLY_FAULTS:
            return [path for path in self.paths if not path.endswith(REVIEWS)]
        return self.paths


def _users(count: int) -> list[User]:
    return [User("auditor", READ_EVERYTHING)] + [User(f"cell-{i}", READ_EVERYTHING) for i in range(count)]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    """The hardened scenario on one server, and the lists each control needs (learnt on clean views)."""
    folder = materialize(tmp_path_factory.mktemp("faults") / "hardened", HARDENED)
    cells = len(FAULTS) * CELLS_PER_KIND
    server = start_apiserver(tmp_path_factory.mktemp("fault-apiserver"), folder, _users(cells))
    policy = load_policy(POLICY).policy
    target = parse_target(TARGET)
    needs: dict[str, set[str]] = {}
    try:
        for control in CONTROLS:
            view = LiveClusterView.from_kubeconfig(str(server.kubeconfig_for("auditor")), timeout=30)
            view.server_version()
            server.clear_log()
            run = run_control(control, view, policy, target)
            view.close()
            assert run.outcome == "passed", f"{control.id} does not pass the hardened scenario: {run.detail}"
            needs[control.id] = {r.path for r in server.request_log}
        yield Matrix(server, policy, needs, iter(range(cells)))
    finally:
        server.stop()


@dataclass(frozen=True)
class Cell:
    """One fault kind on one path, for one caller."""

    kind: str
    path: str
    user: str


def run_cell(matrix: Matrix, cell: Cell) -> list[str]:
    """Run every control that needs the cell's path on the cell's view; return what is wrong."""
    wrong = []
    target = parse_target(TARGET)
    try:
        view = matrix.view(cell.user)
    except EvidenceUnavailable as exc:
        return [f"{cell.kind} on {cell.path}: the view did not open: {exc}"]
    try:
        for control in CONTROLS:
            needed = matrix.needs[control.id]
            if cell.path not in needed:
                continue
            run = run_control(control, view, matrix.policy, target)
            where = f"{control.id} with {cell.kind} on {cell.path}"
            if run.outcome in ("passed", "partial", "crash"):
                wrong.append(f"{where}: {run.outcome}: {run.detail[:600]}")
            if run.outcome == "error" and cell.kind in TIMED_FAULTS and "limit reached" not in run.detail:
                wrong.append(f"{where}: the error does not name the limit: {run.detail[:400]}")
            budget = TIMEOUT * len(needed) + MARGIN
            if run.seconds > budget:
                wrong.append(f"{where}: took {run.seconds:.1f}s, more than {budget:.1f}s")
    finally:
        view.close()
    return wrong


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_no_control_passes_on_a_faulted_list(matrix: Matrix, kind: str) -> None:
    """One fault kind on every path some control needs, one caller per path."""
    cells = []
    for path in matrix.paths_for(kind):
        user = f"cell-{next(matrix.cells)}"
        matrix.server.faults.add(FaultRule(kind, path=f"^{re.escape(path)}$", user=user))
        cells.append(Cell(kind, path, user))
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(cells)) as pool:
        wrong = [problem for problems in pool.map(lambda c: run_cell(matrix, c), cells) for problem in problems]
    faulted = [r for r in matrix.server.request_log if r.fault == kind]
    assert faulted, f"no request was faulted with {kind}"
    assert wrong == [], f"{len(wrong)} wrong verdicts:\n" + "\n".join(wrong)


def test_fault_matrix_size(matrix: Matrix) -> None:
    """Report the matrix's size (shown with ``-rA``): kinds x paths, and verdicts per control."""
    paths = matrix.paths
    cells = sum(len(matrix.paths_for(kind)) for kind in FAULTS)
    verdicts = {
        c.id: sum(len(matrix.needs[c.id] & set(matrix.paths_for(kind))) for kind in FAULTS) for c in CONTROLS
    }
    print(
        f"fault matrix: {len(FAULTS)} fault kinds x {len(paths)} request paths = "
        f"{cells} cells, {sum(verdicts.values())} control verdicts"
    )
    for control, count in sorted(verdicts.items()):
        print(f"  {control}: {count} verdicts ({len(matrix.needs[control])} lists)")
    assert len(CONTROLS) == 27
    assert all(matrix.needs.values()), "every control reads something"
    assert len(paths) <= CELLS_PER_KIND


def test_every_suite_control_is_in_the_matrix() -> None:
    """The suites' Kubernetes controls, all of them, by ID."""
    assert len({c.id for c in CONTROLS}) == len(CONTROLS) == 27


def test_a_fault_on_the_nth_request_only(matrix: Matrix) -> None:
    """A rule can pick the n-th matching request: the first list of pods answers ``{}``, once."""
    user = f"cell-{next(matrix.cells)}"
    matrix.server.faults.add(FaultRule("empty-object", path=r"/pods$", user=user, nth=1))
    first = matrix.view(user)
    second = matrix.view(user)
    try:
        with pytest.raises(EvidenceUnavailable, match=r"list pods .*not PodList"):
            first.list(PODS, "atlan-agent")
        with pytest.raises(EvidenceUnavailable, match=r"not PodList"):
            first.list(PODS, "atlan-agent")  # the failure is kept: not asked again
        assert second.list(PODS, "atlan-agent")
    finally:
        first.close()
        second.close()
    pods = [r for r in matrix.server.request_log if r.user == user and r.path.endswith("/pods")]
    assert [r.fault for r in pods] == ["empty-object", ""]
