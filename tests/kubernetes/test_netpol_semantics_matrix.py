"""Mutation matrix of the NetworkPolicy fields SA-SEG-002 and SA-SEG-003 read, in both views.

Each case changes one field of the hardened scenario's NetworkPolicies (absent, null,
``""``, ``[]``, ``{}``, another letter case, a legacy spelling, a weaker value) and runs
the three checks that read NetworkPolicies or RBAC directly on the live view (test API
server) and on the rendered view. The hardened baseline passes (SA-SEG-002 on manifests
is partial: the CNI cannot be seen there); a meaning-preserving mutation keeps every
verdict; a weakening one fails its control and only it; a mutation the API server would
reject is an error naming the object, never a pass.

The runner here is shared with :mod:`tests.kubernetes.test_rbac_semantics_matrix`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import network_policy, rbac
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.manifests import ManifestView
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy import Policy, load_policy
from tests.kubernetes.conftest import ApiServerFactory
from tests.kubernetes.scenario_files import HARDENED, POLICY

NAMESPACE = "atlan-agent"
KubeObject = dict[str, Any]
Mutation = Callable[[list[KubeObject]], None]
Check = Callable[[KubernetesView, Policy, Evidence], None]

CHECKS: dict[str, Check] = {
    "SA-SEG-002": network_policy.check_default_deny_ingress,
    "SA-SEG-003": network_policy.check_egress_restricted,
    "SA-IAM-001": rbac.check_rbac,
}
BASELINE = {
    ("SA-SEG-002", "manifests"): "partial",
    ("SA-SEG-002", "live"): "pass",
    ("SA-SEG-003", "manifests"): "partial",
    ("SA-SEG-003", "live"): "pass",
    ("SA-IAM-001", "manifests"): "pass",
    ("SA-IAM-001", "live"): "pass",
}
"""The hardened scenario's verdicts: SA-SEG-002 cannot see the CNI in rendered manifests."""
VIEWS = ("manifests", "live")
KEEP = "keep"
"""The expected verdict of a meaning-preserving mutation: the baseline's."""


@dataclass(frozen=True)
class Case:
    """One mutation, the control it concerns, and the verdict it must get in each view."""

    control: str
    name: str
    mutate: Mutation
    expected: str
    per_view: dict[str, str] = field(default_factory=dict)

    def wanted(self, control: str, view: str) -> str:
        """The verdict ``control`` must get on ``view`` after this mutation."""
        if control != self.control:
            return BASELINE[(control, view)]
        verdict = self.per_view.get(view, self.expected)
        return BASELINE[(control, view)] if verdict == KEEP else verdict


def hardened_objects() -> list[KubeObject]:
    """Every object of the hardened scenario, in file order."""
    found: list[KubeObject] = []
    for path in sorted(HARDENED.glob("*.yaml")):
        found += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return found


def find(objects: list[KubeObject], kind: str, name: str) -> KubeObject:
    """The object of ``kind`` named ``name``."""
    [found] = [o for o in objects if o.get("kind") == kind and o["metadata"].get("name") == name]
    return found


def edit(kind: str, name: str, *path: str | int, value: Any = None, delete: bool = False) -> Mutation:
    """A mutation that sets (or deletes) the field at ``path`` of one object."""

    def mutate(objects: list[KubeObject]) -> None:
        node: Any = find(objects, kind, name)
        for key in path[:-1]:
            node = node[key]
        if delete:
            del node[path[-1]]
        else:
            node[path[-1]] = copy.deepcopy(value)

    return mutate


def remove(kind: str, name: str) -> Mutation:
    """A mutation that deletes one object."""

    def mutate(objects: list[KubeObject]) -> None:
        objects.remove(find(objects, kind, name))

    return mutate


def add(*new: KubeObject) -> Mutation:
    """A mutation that adds objects."""

    def mutate(objects: list[KubeObject]) -> None:
        objects.extend(copy.deepcopy(list(new)))

    return mutate


def both(*mutations: Mutation) -> Mutation:
    """Apply several mutations in order (one change of meaning, spread over fields)."""

    def mutate(objects: list[KubeObject]) -> None:
        for mutation in mutations:
            mutation(objects)

    return mutate


def judge(check: Check, view: KubernetesView, policy: Policy) -> tuple[str, str]:
    """Run one check and return its verdict (pass/partial/fail/error) and the evidence."""
    evidence = Evidence()
    try:
        check(view, policy, evidence)
    except EvidenceUnavailable as exc:
        return "error", str(exc)
    if evidence.failures:
        return "fail", evidence.summary()
    if evidence.unobserved_parts:
        return "partial", evidence.summary()
    return "pass", evidence.summary()


def _as_served(objects: list[KubeObject]) -> list[KubeObject]:
    """What the API server stores: a null or empty namespace becomes the request's."""
    served = copy.deepcopy(objects)
    for obj in served:
        metadata = obj.setdefault("metadata", {})
        if "namespace" in metadata and not metadata["namespace"]:
            del metadata["namespace"]
    return served


@pytest.fixture
def open_view(k8s_apiserver_factory: ApiServerFactory, tmp_path: Path) -> Iterator[Callable[..., KubernetesView]]:
    """Open a live or rendered view over a list of objects; views are closed afterwards."""
    opened: list[KubernetesView] = []

    def opener(kind: str, objects: list[KubeObject]) -> KubernetesView:
        view: KubernetesView
        if kind == "manifests":
            folder = tmp_path / f"manifests-{len(opened)}"
            folder.mkdir()
            (folder / "all.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
            view = ManifestView(str(folder), default_namespace=NAMESPACE, target_id=f"manifests:{folder}")
        else:
            server = k8s_apiserver_factory(None, objects=_as_served(objects), default_namespace=NAMESPACE)
            view = LiveClusterView.from_kubeconfig(
                str(server.kubeconfig_for("auditor")), timeout=5, target_id="k8s:t"
            )
        opened.append(view)
        return view

    yield opener
    for view in opened:
        view.close()


def verdict_problems(case: Case, view_kind: str, view: KubernetesView) -> list[str]:
    """Every control whose verdict differs from what ``case`` wants on this view."""
    policy = load_policy(POLICY).policy
    problems = []
    for control, check in CHECKS.items():
        got, detail = judge(check, view, policy)
        wanted = case.wanted(control, view_kind)
        if got != wanted:
            problems.append(f"{control} on {view_kind}: {got}, wanted {wanted}\n{detail}")
    return problems


def run_case(case: Case, view_kind: str, opener: Callable[..., KubernetesView]) -> None:
    """Mutate the hardened objects, open the view and assert every control's verdict."""
    objects = hardened_objects()
    case.mutate(objects)
    problems = verdict_problems(case, view_kind, opener(view_kind, objects))
    assert problems == [], "\n".join(problems)


def case_counts(cases: list[Case]) -> dict[str, int]:
    """How many (case, view) runs the matrix has per control."""
    counts: dict[str, int] = {}
    for case in cases:
        counts[case.control] = counts.get(case.control, 0) + len(VIEWS)
    return counts


# -- the NetworkPolicy cases ------------------------------------------------------------------

DENY = ("NetworkPolicy", "default-deny-ingress")
EGRESS = ("NetworkPolicy", "agent-egress")
SEG2 = "SA-SEG-002"
SEG3 = "SA-SEG-003"
OTHER_PODS = {"matchLabels": {"app": "something-else"}}
PART_OF = "app.kubernetes.io/part-of"


def _deny(*path: str | int, value: Any = None, delete: bool = False) -> Mutation:
    return edit(*DENY, *path, value=value, delete=delete)


def _egress(*path: str | int, value: Any = None, delete: bool = False) -> Mutation:
    return edit(*EGRESS, *path, value=value, delete=delete)


NETPOL_CASES = [
    # default-deny ingress: meaning-preserving
    Case(SEG2, "policyTypes-absent", _deny("spec", "policyTypes", delete=True), KEEP),
    Case(SEG2, "policyTypes-null", _deny("spec", "policyTypes", value=None), KEEP),
    Case(SEG2, "policyTypes-empty-list", _deny("spec", "policyTypes", value=[]), KEEP),
    Case(SEG2, "policyTypes-repeated", _deny("spec", "policyTypes", value=["Ingress", "Ingress"]), KEEP),
    Case(SEG2, "podSelector-absent", _deny("spec", "podSelector", delete=True), KEEP),
    Case(SEG2, "podSelector-null", _deny("spec", "podSelector", value=None), KEEP),
    Case(SEG2, "podSelector-empty-matchLabels", _deny("spec", "podSelector", value={"matchLabels": {}}), KEEP),
    Case(SEG2, "podSelector-null-expressions", _deny("spec", "podSelector", value={"matchExpressions": None}), KEEP),
    Case(SEG2, "ingress-empty-list", _deny("spec", "ingress", value=[]), KEEP),
    Case(SEG2, "ingress-null", _deny("spec", "ingress", value=None), KEEP),
    Case(SEG2, "egress-empty-list-beside-ingress-type", _deny("spec", "egress", value=[]), KEEP),
    Case(SEG2, "spec-empty", _deny("spec", value={}), KEEP),
    Case(SEG2, "namespace-absent", _deny("metadata", "namespace", delete=True), KEEP),
    Case(SEG2, "namespace-null", _deny("metadata", "namespace", value=None), KEEP),
    Case(SEG2, "namespace-empty", _deny("metadata", "namespace", value=""), KEEP),
    # default-deny ingress: weakening
    Case(SEG2, "deleted", remove(*DENY), "fail"),
    Case(SEG2, "ingress-allow-all-rule", _deny("spec", "ingress", value=[{}]), "fail"),
    Case(SEG2, "ingress-null-rule", _deny("spec", "ingress", value=[None]), "fail"),
    Case(SEG2, "ingress-from-other-namespaces", _deny("spec", "ingress", value=[{"from": [{"namespaceSelector": {}}]}]), "fail"),
    Case(SEG2, "ingress-from-ipblock", _deny("spec", "ingress", value=[{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]), "fail"),
    Case(SEG2, "podSelector-other-pods", _deny("spec", "podSelector", value=OTHER_PODS), "fail"),
    Case(SEG2, "policyTypes-egress-only", _deny("spec", "policyTypes", value=["Egress"]), "fail"),
    Case(SEG2, "other-namespace", _deny("metadata", "namespace", value="default"), "fail"),
    # The test API server serves the legacy group as old clusters did; no supported release does.
    Case(SEG2, "legacy-apiVersion-extensions", _deny("apiVersion", value="extensions/v1beta1"), "fail", {"live": KEEP}),
    # default-deny ingress: rejected by the API server
    Case(SEG2, "policyTypes-lower-case", _deny("spec", "policyTypes", value=["ingress"]), "error"),
    Case(SEG2, "policyTypes-upper-case", _deny("spec", "policyTypes", value=["INGRESS"]), "error"),
    Case(SEG2, "policyTypes-string", _deny("spec", "policyTypes", value="Ingress"), "error"),
    Case(SEG2, "policyTypes-empty-string", _deny("spec", "policyTypes", value=[""]), "error"),
    Case(SEG2, "policyTypes-key-case", both(_deny("spec", "policyTypes", delete=True), _deny("spec", "PolicyTypes", value=["Ingress"])), "error"),
    Case(SEG2, "podSelector-string", _deny("spec", "podSelector", value="all"), "error"),
    Case(SEG2, "podSelector-key-case", _deny("spec", "podSelector", value={"matchlabels": {}}), "error"),
    Case(SEG2, "podSelector-operator-case", _deny("spec", "podSelector", value={"matchExpressions": [{"key": "a", "operator": "exists"}]}), "error"),
    Case(SEG2, "ingress-mapping", _deny("spec", "ingress", value={}), "error"),
    # egress: meaning-preserving
    Case(SEG3, "policyTypes-absent", _egress("spec", "policyTypes", delete=True), KEEP),
    Case(SEG3, "policyTypes-null", _egress("spec", "policyTypes", value=None), KEEP),
    Case(SEG3, "policyTypes-empty-list", _egress("spec", "policyTypes", value=[]), KEEP),
    Case(SEG3, "policyTypes-both", _egress("spec", "policyTypes", value=["Ingress", "Egress"]), KEEP),
    Case(SEG3, "ingress-null", _egress("spec", "ingress", value=None), KEEP),
    Case(SEG3, "podSelector-expression", _egress("spec", "podSelector", value={"matchExpressions": [{"key": PART_OF, "operator": "In", "values": ["atlan-agent"]}]}), KEEP),
    Case(SEG3, "port-protocol-absent", _egress("spec", "egress", 1, "ports", 0, "protocol", delete=True), KEEP),
    Case(SEG3, "namespace-absent", _egress("metadata", "namespace", delete=True), KEEP),
    Case(SEG3, "namespace-null", _egress("metadata", "namespace", value=None), KEEP),
    Case(SEG3, "namespace-empty", _egress("metadata", "namespace", value=""), KEEP),
    # egress: weakening
    Case(SEG3, "deleted", remove(*EGRESS), "fail"),
    Case(SEG3, "egress-empty-list-without-policyTypes", both(_egress("spec", "policyTypes", delete=True), _egress("spec", "egress", value=[])), "fail"),
    Case(SEG3, "egress-null-without-policyTypes", both(_egress("spec", "policyTypes", delete=True), _egress("spec", "egress", value=None)), "fail"),
    Case(SEG3, "egress-empty-list-policyTypes-empty", both(_egress("spec", "policyTypes", value=[]), _egress("spec", "egress", value=[])), "fail"),
    Case(SEG3, "egress-allow-all-rule", _egress("spec", "egress", value=[{}]), "fail"),
    Case(SEG3, "egress-null-rule", _egress("spec", "egress", 1, value=None), "fail"),
    Case(SEG3, "policyTypes-ingress-only", _egress("spec", "policyTypes", value=["Ingress"]), "fail"),
    Case(SEG3, "podSelector-other-pods", _egress("spec", "podSelector", value=OTHER_PODS), "fail"),
    Case(SEG3, "ports-absent", _egress("spec", "egress", 1, "ports", delete=True), "fail"),
    Case(SEG3, "ports-empty-list", _egress("spec", "egress", 1, "ports", value=[]), "fail"),
    # Anywhere on 443 is a warning when host names are allowed on 443 (see the spec).
    Case(SEG3, "to-empty-list-on-443", _egress("spec", "egress", 1, "to", value=[]), KEEP),
    Case(SEG3, "to-empty-list-on-22", both(_egress("spec", "egress", 1, "to", value=[]), _egress("spec", "egress", 1, "ports", 0, "port", value=22)), "fail"),
    Case(SEG3, "cidr-anywhere-port-22", _egress("spec", "egress", 1, value={"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 22}]}), "fail"),
    Case(SEG3, "other-namespace", _egress("metadata", "namespace", value="default"), "fail"),
    Case(SEG3, "legacy-apiVersion-extensions", _egress("apiVersion", value="extensions/v1beta1"), "fail", {"live": KEEP}),
    # egress: rejected by the API server
    Case(SEG3, "policyTypes-lower-case", _egress("spec", "policyTypes", value=["egress"]), "error"),
    Case(SEG3, "policyTypes-unknown", _egress("spec", "policyTypes", value=["Egress", "Sideways"]), "error"),
    Case(SEG3, "egress-mapping", _egress("spec", "egress", value={}), "error"),
    Case(SEG3, "egress-key-case", both(_egress("spec", "Egress", value=[]), _egress("spec", "egress", delete=True)), "error"),
    Case(SEG3, "podSelector-labels-string", _egress("spec", "podSelector", value={"matchLabels": PART_OF}), "error"),
    Case(SEG3, "podSelector-label-value-number", _egress("spec", "podSelector", value={"matchLabels": {"tier": 1}}), "error"),
    Case(SEG3, "port-protocol-lower-case", _egress("spec", "egress", 1, "ports", 0, "protocol", value="tcp"), "error"),
]


def test_the_hardened_scenario_gets_the_baseline_verdicts(open_view: Callable[..., KubernetesView]) -> None:
    baseline = Case("SA-SEG-002", "none", lambda objects: None, KEEP)
    for view_kind in VIEWS:
        run_case(baseline, view_kind, open_view)


@pytest.mark.parametrize("view_kind", VIEWS)
@pytest.mark.parametrize("case", NETPOL_CASES, ids=[f"{c.control}-{c.name}" for c in NETPOL_CASES])
def test_netpol_mutation(case: Case, view_kind: str, open_view: Callable[..., KubernetesView]) -> None:
    run_case(case, view_kind, open_view)


def test_netpol_matrix_size(record_property: Callable[[str, object], None]) -> None:
    """The matrix covers both controls in every family of variants; its size is reported."""
    counts = case_counts(NETPOL_CASES)
    record_property("cases per control", counts)
    assert counts == {"SA-SEG-002": 66, "SA-SEG-003": 64}
