"""The Kubernetes suites, run for real on the scenarios: live (test API servers) and rendered.

Each run is an inner pytest session with the plugin and the three Kubernetes suites. Live
targets are ``k8s://<scenario>/atlan-agent`` contexts of one kubeconfig, one test API
server per scenario; rendered targets are ``manifests://<scenario folder>``. All scenarios
of a kind run in one session (one target each), which keeps the whole module fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_secagent.model import Outcome
from pytest_secagent.summary import ControlResult
from tests.kubernetes.apiauth import Rule
from tests.kubernetes.apiserver import FakeApiServer
from tests.kubernetes.scenario_files import (
    DEFAULT_HELM,
    HARDENED,
    MISCONFIGURED,
    POLICY,
    materialize,
    overlays,
)

SUITES = Path(__file__).resolve().parents[2] / "suites"
SUITE_FILES = [str(SUITES / f"test_kubernetes_{name}.py") for name in ("workloads", "network", "cluster")]
NAMESPACE = "atlan-agent"

LIVE_ONLY = frozenset(
    {
        "SA-RUNTIME-001",
        "SA-SECRET-003",
        "SA-SECRET-005",
        "SA-LOG-001",
        "SA-LOG-002",
        "SA-EDR-001",
        "SA-VULN-001",
        "SA-VULN-002",
    }
)
BOTH_VIEWS = frozenset(
    {
        "SA-RUNTIME-004",
        "SA-RUNTIME-005",
        "SA-RUNTIME-006",
        "SA-RUNTIME-007",
        "SA-RUNTIME-008",
        "SA-RUNTIME-009",
        "SA-RUNTIME-010",
        "SA-RUNTIME-011",
        "SA-RUNTIME-013",
        "SA-LOG-005",
        "SA-SEG-001",
        "SA-SEG-002",
        "SA-SEG-003",
        "SA-NET-001",
        "SA-NET-009",
        "SA-IAM-001",
        "SA-IAM-005",
        "SA-SECRET-001",
        "SA-SECRET-002",
    }
)
ALL_CONTROLS = LIVE_ONLY | BOTH_VIEWS
RENDERED_PARTIAL = frozenset({"SA-SEG-001", "SA-SEG-002", "SA-SEG-003"})
"""Passed on rendered files only in part: the CNI and the rest of the namespace are live-only."""

DEFAULT_HELM_FAILS = frozenset(
    {
        "SA-RUNTIME-005",
        "SA-RUNTIME-006",
        "SA-RUNTIME-007",
        "SA-RUNTIME-008",
        "SA-RUNTIME-010",
        "SA-RUNTIME-011",
        "SA-RUNTIME-013",
        "SA-LOG-005",
        "SA-SEG-002",
        "SA-SEG-003",
        "SA-SECRET-001",
        "SA-SECRET-002",
        "SA-LOG-002",
        "SA-EDR-001",
    }
)
"""What a default Helm install fails (see scenarios/README.md)."""
DEFAULT_HELM_UNDECIDED = {
    "SA-SECRET-005": Outcome.NOT_OBSERVABLE,
    "SA-LOG-001": Outcome.NOT_OBSERVABLE,
    "SA-VULN-001": Outcome.NOT_APPLICABLE,
    "SA-VULN-002": Outcome.NOT_APPLICABLE,
}
"""Live: no API-server pod is visible and no scanner operator is installed."""

ApiServerFactory = Callable[..., FakeApiServer]


@dataclass(frozen=True)
class Verdict:
    """One control's outcome on one target, with the failure or error text."""

    outcome: Outcome
    detail: str

    def __str__(self) -> str:
        return f"{self.outcome.value}: {self.detail[:400]}"


Verdicts = dict[str, Verdict]


class _Collector:
    """Receives the control results of an inner run."""

    def __init__(self) -> None:
        self.results: list[ControlResult] = []

    def pytest_secagent_results(self, config: pytest.Config, results: list[ControlResult]) -> None:
        self.results.extend(results)


def run_suites(pytester: pytest.Pytester, targets: dict[str, str]) -> dict[str, Verdicts]:
    """Run the Kubernetes suites on ``targets`` (scenario name -> URI) in one session."""
    collector = _Collector()
    arguments = ["-p", "no:cacheprovider", "--assert=plain", "--secagent-policy", str(POLICY)]
    for uri in targets.values():
        arguments += ["--secagent-target", uri]
    pytester.runpytest(*arguments, "--secagent-timeout", "10", *SUITE_FILES, plugins=[collector])
    by_target = {
        uri.removeprefix("k8s://").replace("manifests://", "manifests:"): name
        for name, uri in targets.items()
    }
    verdicts: dict[str, Verdicts] = {name: {} for name in targets}
    for result in collector.results:
        verdict = Verdict(result.outcome, str(result.record.get("detail", "")))
        if not result.target:
            # A control none of the targets is of a kind for: one "not applicable" item.
            assert result.outcome is Outcome.NOT_APPLICABLE, verdict
            for found in verdicts.values():
                found[result.control_id] = verdict
            continue
        name = by_target[result.target.removeprefix("k8s:")]
        assert result.control_id not in verdicts[name], f"{result.control_id} ran twice on {name}"
        verdicts[name][result.control_id] = verdict
    return verdicts


def _context(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", name.lower())


def live_runs(
    pytester: pytest.Pytester,
    factory: ApiServerFactory,
    scenarios: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    *,
    user: str = "auditor",
    users: dict[str, Any] | None = None,
) -> tuple[dict[str, Verdicts], dict[str, FakeApiServer]]:
    """Serve each scenario from its own test API server; run the suites on all of them at once."""
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "users": [],
        "contexts": [],
    }
    servers = {}
    targets = {}
    for name, folder in scenarios.items():
        server = factory(folder, users)
        context = _context(name)
        single = yaml.safe_load(server.kubeconfig_for(user, context=context).read_text(encoding="utf-8"))
        for key in ("clusters", "contexts"):
            config[key].extend(single[key])
        config["users"].extend({**u, "name": f"{context}-{u['name']}"} for u in single["users"])
        config["contexts"][-1]["context"]["user"] = f"{context}-{single['users'][0]['name']}"
        config["current-context"] = context
        servers[name] = server
        targets[name] = f"k8s://{context}/{NAMESPACE}"
    kubeconfig = pytester.path / "kubeconfig.yaml"
    kubeconfig.write_text(yaml.safe_dump(config), encoding="utf-8")
    kubeconfig.chmod(0o600)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    return run_suites(pytester, targets), servers


def rendered_runs(pytester: pytest.Pytester, scenarios: dict[str, Path]) -> dict[str, Verdicts]:
    """Run the suites on each scenario folder as rendered manifests, all at once."""
    return run_suites(pytester, {name: f"manifests://{folder}" for name, folder in scenarios.items()})


def _show(verdicts: Verdicts) -> str:
    return "\n".join(f"  {cid}: {verdict}" for cid, verdict in sorted(verdicts.items()))


def _not_passed(verdicts: Verdicts) -> set[str]:
    return {cid for cid, v in verdicts.items() if v.outcome is not Outcome.PASSED}


def scenarios(tmp_path: Path) -> dict[str, Path]:
    """Every scenario, materialized: hardened, default-helm and one per misconfiguration."""
    found = {
        "hardened": materialize(tmp_path / "hardened", HARDENED),
        "default-helm": materialize(tmp_path / "default-helm", DEFAULT_HELM),
    }
    for cid in overlays():
        found[cid] = materialize(tmp_path / cid, HARDENED, MISCONFIGURED / cid)
    return found


_RUNS: dict[str, dict[str, Verdicts]] = {}
"""Verdicts of every scenario per view, computed once by the first test that needs them."""


@pytest.fixture
def live(
    pytester: pytest.Pytester,
    k8s_apiserver_factory: ApiServerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Verdicts]:
    """The verdicts of every scenario served live (one session, one API server each)."""
    if "live" not in _RUNS:
        _RUNS["live"], _ = live_runs(pytester, k8s_apiserver_factory, scenarios(tmp_path), monkeypatch)
    return _RUNS["live"]


@pytest.fixture
def rendered(pytester: pytest.Pytester, tmp_path: Path) -> dict[str, Verdicts]:
    """The verdicts of every scenario read as rendered manifests (one session)."""
    if "rendered" not in _RUNS:
        _RUNS["rendered"] = rendered_runs(pytester, scenarios(tmp_path))
    return _RUNS["rendered"]


def _passing(cid: str, rendered: bool) -> Outcome:
    """What a control that holds ends in: partial where rendered files cannot show all of it."""
    return Outcome.PARTIAL if rendered and cid in RENDERED_PARTIAL else Outcome.PASSED


def _flip_problems(
    name: str, verdicts: Verdicts, expected_ran: frozenset[str], *, rendered: bool = False
) -> list[str]:
    """Return what is wrong with an overlay's run: its control must fail, every other pass."""
    problems = []
    ran = {cid for cid, v in verdicts.items() if v.outcome is not Outcome.NOT_APPLICABLE}
    if ran != expected_ran:
        problems.append(f"{name}: ran {sorted(ran)}")
    for cid in sorted(ran):
        outcome = verdicts[cid].outcome
        wanted = Outcome.FAILED if cid == name else _passing(cid, rendered)
        if outcome is not wanted:
            problems.append(f"{name}: {cid} should be {wanted.value}, is {verdicts[cid]}")
    return problems


# -- the hardened scenario ------------------------------------------------------------------


@pytest.fixture
def hardened(tmp_path: Path) -> Path:
    """The hardened scenario, ready to serve or read."""
    return materialize(tmp_path / "hardened", HARDENED)


def test_overlays_cover_every_kubernetes_control() -> None:
    assert set(overlays()) == ALL_CONTROLS


def test_hardened_passes_every_control_live(live: dict[str, Verdicts]) -> None:
    assert set(live["hardened"]) == ALL_CONTROLS
    assert _not_passed(live["hardened"]) == set(), _show(live["hardened"])


def test_hardened_passes_every_control_rendered(rendered: dict[str, Verdicts]) -> None:
    verdicts = rendered["hardened"]
    assert {cid for cid, v in verdicts.items() if v.outcome is Outcome.NOT_APPLICABLE} == LIVE_ONLY
    wrong = {cid for cid in BOTH_VIEWS if verdicts[cid].outcome is not _passing(cid, rendered=True)}
    assert wrong == set(), _show(verdicts)


# -- a default Helm install -------------------------------------------------------------------


def test_default_helm_install_fails_the_known_controls_live(live: dict[str, Verdicts]) -> None:
    verdicts = live["default-helm"]
    failed = {cid for cid, v in verdicts.items() if v.outcome is Outcome.FAILED}
    assert failed == DEFAULT_HELM_FAILS, _show(verdicts)
    undecided = {cid: v.outcome for cid, v in verdicts.items() if cid in DEFAULT_HELM_UNDECIDED}
    assert undecided == DEFAULT_HELM_UNDECIDED, _show(verdicts)
    assert verdicts["SA-SECRET-003"].outcome is Outcome.NOT_APPLICABLE  # only Helm's release record


def test_default_helm_install_fails_the_known_controls_rendered(rendered: dict[str, Verdicts]) -> None:
    verdicts = rendered["default-helm"]
    failed = {cid for cid, v in verdicts.items() if v.outcome is Outcome.FAILED}
    assert failed == DEFAULT_HELM_FAILS & BOTH_VIEWS, _show(verdicts)


# -- one misconfiguration at a time ------------------------------------------------------------


def test_each_misconfiguration_fails_its_own_control_only_live(live: dict[str, Verdicts]) -> None:
    problems = [p for cid in overlays() for p in _flip_problems(cid, live[cid], ALL_CONTROLS)]
    assert problems == [], "\n".join(problems)


def test_each_misconfiguration_fails_its_own_control_only_rendered(rendered: dict[str, Verdicts]) -> None:
    problems = []
    for cid in overlays():
        verdicts = rendered[cid]
        if cid in LIVE_ONLY:
            # Nothing the manifests show changes: every control that runs on them still passes.
            problems += [
                f"{cid}: {c} {v}"
                for c, v in verdicts.items()
                if c in BOTH_VIEWS and v.outcome is not _passing(c, rendered=True)
            ]
        else:
            problems += _flip_problems(cid, verdicts, BOTH_VIEWS, rendered=True)
    assert problems == [], "\n".join(problems)


# -- both views agree ---------------------------------------------------------------------------


def test_live_and_rendered_views_agree_on_every_scenario(
    live: dict[str, Verdicts], rendered: dict[str, Verdicts]
) -> None:
    assert set(live) == set(rendered)
    disagreements = [
        f"{name} {cid}: live {live[name][cid]} / rendered {rendered[name][cid]}"
        for name in sorted(live)
        for cid in sorted(BOTH_VIEWS)
        if live[name][cid].outcome is not rendered[name][cid].outcome
        and not (live[name][cid].outcome is Outcome.PASSED and rendered[name][cid].outcome is Outcome.PARTIAL)
    ]
    assert disagreements == [], "\n".join(disagreements)


# -- a token that may read only some kinds --------------------------------------------------------

NARROW_READER = (
    Rule(
        ("get", "list", "watch"),
        (
            "pods", "serviceaccounts", "networking.k8s.io/networkpolicies", "replicationcontrollers",
            "apps/deployments", "apps/statefulsets", "apps/daemonsets", "apps/replicasets",
            "batch/jobs", "batch/cronjobs",
        ),
        (NAMESPACE,),
    ),
)
"""May read the workloads, service accounts and NetworkPolicies of the agent namespace, nothing else."""
NARROW_PASSES = frozenset(
    {
        "SA-RUNTIME-004",
        "SA-RUNTIME-006",
        "SA-RUNTIME-007",
        "SA-RUNTIME-008",
        "SA-RUNTIME-009",
        "SA-RUNTIME-010",
        "SA-RUNTIME-011",
        "SA-LOG-005",
        "SA-SEG-001",
    }
)
"""The controls that need nothing but what the narrow token may read (SA-SEG-003 also reads the CNI)."""


def test_a_narrow_token_errors_every_control_it_cannot_read_for(
    pytester: pytest.Pytester,
    k8s_apiserver_factory: ApiServerFactory,
    hardened: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs, servers = live_runs(
        pytester,
        k8s_apiserver_factory,
        {"hardened": hardened},
        monkeypatch,
        user="narrow",
        users={"narrow": NARROW_READER},
    )
    verdicts = runs["hardened"]
    assert {cid for cid, v in verdicts.items() if v.outcome is Outcome.PASSED} == NARROW_PASSES, _show(
        verdicts
    )
    errors = {cid: v for cid, v in verdicts.items() if cid not in NARROW_PASSES}
    unnamed = {
        cid: str(v)
        for cid, v in errors.items()
        if v.outcome is not Outcome.ERROR
        or "forbidden (403)" not in v.detail
        or "grant 'list' on '" not in v.detail
    }
    assert unnamed == {}, _show(verdicts)
    denied = [r for r in servers["hardened"].request_log if r.status == 403]
    assert denied, "the narrow token was never refused"


# -- what the suites send -----------------------------------------------------------------------


def test_the_suites_only_read_list_each_kind_once_and_never_read_secret_data(
    pytester: pytest.Pytester,
    k8s_apiserver_factory: ApiServerFactory,
    hardened: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, servers = live_runs(pytester, k8s_apiserver_factory, {"hardened": hardened}, monkeypatch)
    log = servers["hardened"].request_log
    writes = [
        f"{r.method} {r.path}" for r in log if r.method != "GET" and not r.path.endswith("accessreviews")
    ]
    assert writes == []
    assert [r.path for r in log if r.returned_secret_data] == []
    assert all(r.metadata_only for r in log if r.path.endswith("/secrets"))
    lists = [(r.path, r.query.get("continue", "")) for r in log if r.verb == "list"]
    assert len(lists) == len(set(lists)), sorted(lists)
