"""The live view's limits and answer checks, one instance each, against the faulting test API server.

Each operation (a list with every page, ``/version``, an access review) has one deadline,
the view's timeout, whatever the server does: drip its headers or body, stall, or keep
sending ``continue`` tokens; name resolution counts too. Lists have a page and a byte
cap. A malformed answer is an error naming the request, never an empty list; objects
with fields of the wrong type are refused by both views, without showing their values.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import exposure, secrets
from pytest_secagent.kubernetes.checks.scope import ContainerRef
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.manifests import ManifestView
from pytest_secagent.kubernetes.resources import CONFIG_MAPS, PODS, SERVICES
from pytest_secagent.kubernetes.workloads import Owner, PodTemplate, pod_template_of
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy import Policy
from pytest_secagent.policy.loader import load_policy
from tests.kubernetes.apiserver import FakeApiServer
from tests.kubernetes.conftest import ApiServerFactory
from tests.kubernetes.faults import CANARY_ITEM, FaultRule
from tests.kubernetes.kubeconfig import write_kubeconfig
from tests.kubernetes.scenario_files import HARDENED, POLICY, materialize

NAMESPACE = "atlan-agent"
JWT = CANARY_ITEM


@pytest.fixture
def server(k8s_apiserver_factory: ApiServerFactory, tmp_path: Path) -> FakeApiServer:
    """The hardened scenario, served."""
    return k8s_apiserver_factory(materialize(tmp_path / "hardened", HARDENED))


@pytest.fixture
def views() -> Iterator[Callable[..., LiveClusterView]]:
    """Open views of a server as the auditor; all are closed after the test."""
    opened: list[LiveClusterView] = []

    def opener(server: FakeApiServer, **options: Any) -> LiveClusterView:
        options.setdefault("timeout", 1.0)
        view = LiveClusterView.from_kubeconfig(str(server.kubeconfig_for("auditor")), target_id="k8s:t", **options)
        opened.append(view)
        return view

    yield opener
    for view in opened:
        view.close()


@pytest.fixture
def policy() -> Policy:
    """The scenario policy."""
    return load_policy(POLICY).policy


# -- total deadlines ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["drip-headers", "drip-body", "stall"])
def test_a_dripping_or_stalled_list_ends_at_the_deadline(
    server: FakeApiServer, views: Callable[..., LiveClusterView], kind: str
) -> None:
    server.faults.add(FaultRule(kind, path=r"/pods$"))
    view = views(server, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(EvidenceUnavailable, match=r"list pods .*limit reached: .*within 1s, the deadline"):
        view.list(PODS, NAMESPACE)
    assert time.monotonic() - started < 2.5
    started = time.monotonic()
    with pytest.raises(EvidenceUnavailable, match="limit reached"):
        view.list(PODS, NAMESPACE)  # kept: not asked again
    assert time.monotonic() - started < 0.1
    assert len([r for r in server.request_log if r.path.endswith("/pods")]) == 1


def test_one_deadline_covers_every_page(server: FakeApiServer, views: Callable[..., LiveClusterView]) -> None:
    """Each page drips under the deadline, but together they pass it: the list ends at the deadline."""
    server.faults.add(FaultRule("drip-body", path=r"/configmaps$", nth=2))
    view = views(server, timeout=1.5, page_size=1)
    started = time.monotonic()
    with pytest.raises(EvidenceUnavailable, match=r"list configmaps .*limit reached"):
        view.list(CONFIG_MAPS, NAMESPACE)
    assert time.monotonic() - started < 3


def test_an_endless_list_stops_at_the_page_cap(
    server: FakeApiServer, views: Callable[..., LiveClusterView]
) -> None:
    server.faults.add(FaultRule("endless-continue", path=r"/services$"))
    view = views(server, timeout=30, max_list_pages=7)
    with pytest.raises(EvidenceUnavailable, match=r"limit reached: more than 7 pages \(MAX_LIST_PAGES\)"):
        view.list(SERVICES, NAMESPACE)
    assert len([r for r in server.request_log if r.path.endswith("/services")]) == 7


def test_a_list_over_the_byte_cap_is_refused(server: FakeApiServer, views: Callable[..., LiveClusterView]) -> None:
    view = views(server, max_list_bytes=200)
    with pytest.raises(EvidenceUnavailable, match=r"limit reached: .*exceeded the limit of 200 bytes"):
        view.list(CONFIG_MAPS, NAMESPACE)


def test_name_resolution_is_inside_the_deadline(
    server: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resolver that never answers for the API server's name: the list ends at the deadline."""
    real = socket.getaddrinfo
    silent = threading.Event()

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "stalled-resolver.test":
            silent.wait(30)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    port = server.url.rsplit(":", 1)[1]
    kubeconfig = write_kubeconfig(
        tmp_path / "slow-dns.yaml",
        server=f"https://stalled-resolver.test:{port}",
        ca_pem=server.ca_pem,
        token=server.user("auditor").token,
        user="auditor",
    )
    view = LiveClusterView.from_kubeconfig(str(kubeconfig), timeout=1.0, target_id="k8s:t")
    started = time.monotonic()
    try:
        with pytest.raises(EvidenceUnavailable, match=r"limit reached: .*during name resolution of stalled"):
            view.server_version()
    finally:
        silent.set()
        view.close()
    assert time.monotonic() - started < 2.5


# -- answers checked against what was asked ---------------------------------------------------

MALFORMED_LISTS = {
    "empty-object": r"the answer is of kind null, not ServiceList",
    "status-200": r"answered with a Status, not ServiceList",
    "items-null": r"has no items list \(items is null\)",
    "items-missing": r"has no items list",
    "wrong-kind": r"of kind 'EventList', not ServiceList",
    "table": r"of kind 'Table', not ServiceList",
    "null-item": r"items\[\d+\] is null, not an object",
    "string-item": r"items\[\d+\] is a str, not an object",
    "nameless-item": r"items\[\d+\]\.metadata\.name is null, not a name",
    "garbage": r"the answer is not JSON",
    "truncated": r"closed \d+ bytes before the end of the answer",
    "reset": r"no answer from the API server",
    "http-429": r"HTTP 429",
    "http-503": r"HTTP 503",
    "redirect": r"redirected the request \(HTTP 302\); redirects are not followed",
}


@pytest.mark.parametrize("kind", sorted(MALFORMED_LISTS))
def test_a_malformed_list_is_an_error_naming_the_request(
    server: FakeApiServer, views: Callable[..., LiveClusterView], policy: Policy, kind: str
) -> None:
    """SA-NET-001 would pass an empty Services list: a malformed one is an error instead, once."""
    server.faults.add(FaultRule(kind, path=r"/services$"))
    view = views(server)
    evidence = Evidence()
    with pytest.raises(EvidenceUnavailable, match=r"list services in namespace 'atlan-agent'") as caught:
        exposure.check_no_inbound_exposure(view, policy, evidence)
    assert caught.match(MALFORMED_LISTS[kind])
    assert JWT not in str(caught.value)
    with pytest.raises(EvidenceUnavailable, match=MALFORMED_LISTS[kind]):
        view.list(SERVICES, NAMESPACE)
    assert len([r for r in server.request_log if r.path.endswith("/services")]) == 1


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ("empty-object", r"not a version document: gitVersion is null"),
        ("status-200", r"not a version document"),
        ("garbage", r"not JSON"),
        ("http-500", r"HTTP 500"),
    ],
)
def test_a_malformed_version_is_an_error(
    server: FakeApiServer, views: Callable[..., LiveClusterView], answer: str, message: str
) -> None:
    server.faults.add(FaultRule(answer, path=r"^/version$"))
    with pytest.raises(EvidenceUnavailable, match=message):
        views(server).server_version()


def test_a_faulted_access_review_refuses_the_later_ones_at_once(
    server: FakeApiServer, views: Callable[..., LiveClusterView]
) -> None:
    server.faults.add(FaultRule("stall", path=r"subjectaccessreviews$"))
    view = views(server, timeout=0.5)
    with pytest.raises(EvidenceUnavailable, match="limit reached"):
        view.can_i("u", [], "get", "secrets", None)
    started = time.monotonic()
    with pytest.raises(EvidenceUnavailable, match="limit reached"):
        view.can_i("u", [], "list", "pods", None)
    assert time.monotonic() - started < 0.1


# -- fields of the wrong type ------------------------------------------------------------------

WRONG_TYPES = [
    pytest.param(
        {"kind": "Service", "metadata": {"name": "s"}}, r"Service/s: spec is null", id="service-no-spec"
    ),
    pytest.param(
        {"kind": "Service", "metadata": {"name": "s"}, "spec": {"type": ["LoadBalancer"]}},
        r"spec.type is a list of 1 items, not a string",
        id="service-type-list",
    ),
    pytest.param(
        {"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [], "externalIPs": {"a": "1.2.3.4"}}},
        r"spec.externalIPs is a mapping of 1 keys, not a list of strings",
        id="external-ips-mapping",
    ),
    pytest.param(
        {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": f"password={JWT}"},
        r"ConfigMap/c: data is a string of \d+ characters, not a mapping of strings",
        id="configmap-data-text",
    ),
    pytest.param(
        {"kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": 1}}},
        r"metadata.labels is a mapping of 1 keys, not a mapping of strings to strings",
        id="labels-number",
    ),
]


SERVED_AS_IS = {"service-no-spec": False}
"""Shapes the test API server would repair as a real one does (it defaults a Service's spec)."""


@pytest.mark.parametrize(
    ("obj", "message", "which"),
    [
        pytest.param(*case.values, which, id=f"{which}-{case.id}")
        for case in WRONG_TYPES
        for which in ("manifests", "live")
        if which == "manifests" or SERVED_AS_IS.get(str(case.id), True)
    ],
)
def test_a_field_of_the_wrong_type_is_refused_by_both_views(
    k8s_apiserver_factory: ApiServerFactory,
    views: Callable[..., LiveClusterView],
    tmp_path: Path,
    obj: dict[str, Any],
    message: str,
    which: str,
) -> None:
    full = {"apiVersion": "v1", **obj, "metadata": {**obj["metadata"], "namespace": NAMESPACE}}
    resource = SERVICES if obj["kind"] == "Service" else CONFIG_MAPS
    view: ManifestView | LiveClusterView
    if which == "manifests":
        (tmp_path / "m.json").write_text(json.dumps(full), encoding="utf-8")
        view = ManifestView(str(tmp_path / "m.json"), default_namespace=NAMESPACE)
    else:
        view = views(k8s_apiserver_factory(None, objects=[full]))
    with pytest.raises(EvidenceUnavailable, match=message) as caught:
        view.list(resource, NAMESPACE)
    assert JWT not in str(caught.value)


# -- no vacuous pass over containers -----------------------------------------------------------

ENV_SHAPES = [
    pytest.param({"env": f"TOKEN={JWT}"}, r"env is a string of \d+ characters, not a list", id="env-text"),
    pytest.param({"env": [f"TOKEN={JWT}"]}, r"env\[0\] is a string of \d+ characters, not a mapping", id="env-item-text"),
    pytest.param({"env": [{"name": "T", "value": 7}]}, r"env\[0\]\.value is 7, not a string", id="env-value-number"),
    pytest.param({"envFrom": "agent-config"}, r"envFrom is .*not a list", id="env-from-text"),
    pytest.param({"envFrom": [{"secretRef": {"name": ["x"]}}]}, r"secretRef\.name is .*not a string", id="ref-name-list"),
    pytest.param({"args": ["--token", 12345]}, r"args holds something that is not a string", id="args-number"),
]


@pytest.mark.parametrize(("fields", "message"), ENV_SHAPES)
def test_container_settings_of_the_wrong_type_are_an_error_without_the_value(
    fields: dict[str, Any], message: str
) -> None:
    """``env`` written as one string was read character by character, so a JWT in it passed."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "app", **fields}]}}
    with pytest.raises(EvidenceUnavailable, match=message) as caught:
        pod_template_of(pod)
    assert JWT not in str(caught.value)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(None, id="no-spec"),
        pytest.param({}, id="no-containers"),
        pytest.param({"containers": []}, id="empty-containers"),
        pytest.param({"initContainers": [{"name": "init", "image": "x"}]}, id="only-init-containers"),
    ],
)
def test_a_pod_with_nothing_to_examine_is_an_error(spec: Any) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec}
    with pytest.raises(EvidenceUnavailable, match=r"Pod/p.*cannot be judged"):
        pod_template_of(pod)


def test_a_container_line_names_the_owner_note() -> None:
    """A running pod that differs from its template is told from the template in every container line."""
    template = PodTemplate(
        Owner("Deployment", "agent", NAMESPACE, "running pods differ from its template"),
        {},
        {"containers": [{"name": "app"}]},
        {},
    )
    ref = ContainerRef(template, "container", {"name": "app"})
    assert ref.label == "Deployment/agent (running pods differ from its template) container app"


def test_a_credential_in_a_configmap_of_the_wrong_shape_is_never_a_pass(
    server: FakeApiServer, views: Callable[..., LiveClusterView], policy: Policy
) -> None:
    """A ConfigMap list answered ``{}`` with pods present: SA-SECRET-002 is an error, not a pass."""
    server.faults.add(FaultRule("empty-object", path=r"/configmaps$"))
    evidence = Evidence()
    with pytest.raises(EvidenceUnavailable, match=r"list configmaps .*not ConfigMapList"):
        secrets.check_no_plaintext_secrets(views(server), policy, evidence)
