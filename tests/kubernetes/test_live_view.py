"""The live view, driven through kubeconfigs against the test API server.

The request log is the witness: what the plugin sent, how often, and what came back.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_secagent.kubernetes.connect import open_view
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.resources import (
    CONFIG_MAPS,
    DAEMON_SETS,
    DAPR_COMPONENTS,
    DEPLOYMENTS,
    NAMESPACES,
    NODES,
    PODS,
    SECRETS,
    VULNERABILITY_REPORTS,
)
from pytest_secagent.kubernetes.view import ResourceNotServed
from pytest_secagent.kubernetes.workloads import containers, pod_templates
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.targets import parse_target
from tests.kubernetes.apiauth import READ_EVERYTHING, Rule
from tests.kubernetes.apiserver import FakeApiServer, SilentServer
from tests.kubernetes.conftest import SCENARIOS, ApiServerFactory
from tests.kubernetes.kubeconfig import write_kubeconfig

VIEWTEST = SCENARIOS / "_viewtest"
SECRET_VALUE = "secagent-viewtest-token"  # noqa: S105 - the scenario's made-up secret
WRONG_TOKEN = "secagent-test-wrong"  # noqa: S105 - a token no server knows
SECRET_B64 = base64.b64encode(SECRET_VALUE.encode()).decode()


@pytest.fixture
def open_live() -> Iterator[Callable[..., LiveClusterView]]:
    """Open live views from kubeconfig files; all are closed after the test."""
    views: list[LiveClusterView] = []

    def opener(kubeconfig: Path, *, timeout: float = 5, page_size: int = 500) -> LiveClusterView:
        view = LiveClusterView.from_kubeconfig(
            str(kubeconfig), timeout=timeout, target_id="k8s:test", page_size=page_size
        )
        views.append(view)
        return view

    yield opener
    for view in views:
        view.close()


@pytest.fixture
def view_for(open_live: Callable[..., LiveClusterView]) -> Callable[..., LiveClusterView]:
    """Open a live view of a test server as one of its users."""

    def opener(server: FakeApiServer, user: str = "auditor", *, page_size: int = 500) -> LiveClusterView:
        return open_live(server.kubeconfig_for(user), page_size=page_size)

    return opener


@pytest.fixture
def server(k8s_apiserver_factory: ApiServerFactory) -> FakeApiServer:
    return k8s_apiserver_factory(
        VIEWTEST,
        {
            "auditor": READ_EVERYTHING,
            "pods-only": (Rule(("get", "list"), ("pods",), ("atlan-agent",)),),
        },
    )


def many_pods(count: int) -> list[dict[str, object]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"worker-{i:03d}", "namespace": "bulk", "labels": {"app": "bulk"}},
            "spec": {"containers": [{"name": "main", "image": "docker.io/atlanhq/worker:1.0.0"}]},
        }
        for i in range(count)
    ]


def test_paging_sends_one_request_per_page(
    k8s_apiserver_factory: ApiServerFactory, view_for: Callable[..., LiveClusterView]
) -> None:
    server = k8s_apiserver_factory(objects=many_pods(7))
    view = view_for(server, "auditor", page_size=3)
    pods = view.list(PODS, "bulk")
    assert [p["metadata"]["name"] for p in pods] == [f"worker-{i:03d}" for i in range(7)]
    lists = [r for r in server.request_log if r.path == "/api/v1/namespaces/bulk/pods"]
    assert [r.query.get("limit") for r in lists] == ["3", "3", "3"]
    assert ["continue" in r.query for r in lists] == [False, True, True]
    view.close()


def test_items_carry_kind_and_api_version_and_camel_case(
    server: FakeApiServer, view_for: Callable[..., LiveClusterView]
) -> None:
    view = view_for(server)
    deployment = view.list(DEPLOYMENTS, "atlan-agent")[0]
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "read_only_root_filesystem" not in json.dumps(deployment)
    node = view.list(NODES)[0]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.29.4"
    assert view.server_version()["gitVersion"] == "v1.29.4"


def test_each_kind_is_listed_once_however_many_pods(
    k8s_apiserver_factory: ApiServerFactory, view_for: Callable[..., LiveClusterView]
) -> None:
    server = k8s_apiserver_factory(objects=many_pods(40))
    view = view_for(server, page_size=500)
    for _ in range(5):
        templates = list(pod_templates(view, "bulk"))
        assert len(templates) == 40
        assert all(len(list(containers(t.spec))) == 1 for t in templates)
        view.list(CONFIG_MAPS, "bulk")
        view.list(SECRETS, "bulk")
    lists = [(r.path, r.verb) for r in server.request_log]
    assert lists == [
        # What the controllers will run: one list per controller kind, then what runs now.
        ("/apis/apps/v1/namespaces/bulk/deployments", "list"),
        ("/apis/apps/v1/namespaces/bulk/statefulsets", "list"),
        ("/apis/apps/v1/namespaces/bulk/daemonsets", "list"),
        ("/apis/apps/v1/namespaces/bulk/replicasets", "list"),
        ("/api/v1/namespaces/bulk/replicationcontrollers", "list"),
        ("/apis/batch/v1/namespaces/bulk/jobs", "list"),
        ("/apis/batch/v1/namespaces/bulk/cronjobs", "list"),
        ("/api/v1/namespaces/bulk/pods", "list"),
        # Argo's kinds only after discovery says Argo is served (here it is not).
        ("/apis/argoproj.io/v1alpha1", ""),
        ("/api/v1/namespaces/bulk/configmaps", "list"),
        ("/api/v1/namespaces/bulk/secrets", "list"),
    ]


def test_a_namespace_is_served_from_an_earlier_cluster_wide_list(
    server: FakeApiServer, view_for: Callable[..., LiveClusterView]
) -> None:
    view = view_for(server)
    everywhere = view.list(PODS)
    in_agent = view.list(PODS, "atlan-agent")
    assert 0 < len(in_agent) < len(everywhere)
    assert [r.path for r in server.request_log] == ["/api/v1/pods"]


def test_replicas_fold_into_one_template_per_owner(
    server: FakeApiServer, view_for: Callable[..., LiveClusterView]
) -> None:
    view = view_for(server)
    templates = {str(t.owner): t for t in pod_templates(view, "atlan-agent")}
    assert set(templates) == {
        "Deployment/agent in namespace atlan-agent",
        "StatefulSet/cache in namespace atlan-agent",
        "Pod/debug in namespace atlan-agent",
        # The top of the owner chain, not the Job it created for this run.
        "CronJob/rotate in namespace atlan-agent",
    }
    (job_pod,) = templates["CronJob/rotate in namespace atlan-agent"].pods
    assert job_pod.startswith("rotate-28619760-")
    agent = templates["Deployment/agent in namespace atlan-agent"]
    assert agent.source["kind"] == "Deployment"
    assert len(agent.pods) == 3
    assert [p["metadata"]["name"] for p in agent.running] == list(agent.pods)
    assert agent.nodes == ("worker-a", "worker-b")
    kinds = [kind for kind, _ in containers(agent.spec)]
    assert kinds == ["initContainer", "container"]
    selected = list(pod_templates(view, "atlan-agent", {"app.kubernetes.io/name": "cache"}))
    assert [str(t.owner) for t in selected] == ["StatefulSet/cache in namespace atlan-agent"]


def test_secrets_are_only_ever_listed_as_metadata(
    server: FakeApiServer, view_for: Callable[..., LiveClusterView]
) -> None:
    view = view_for(server)
    for listing in (view.list(SECRETS, "atlan-agent"), view.list_metadata(SECRETS, "atlan-agent")):
        (secret,) = listing
        assert set(secret) == {"apiVersion", "kind", "metadata"}
        assert secret["metadata"]["name"] == "agent-credentials"
        assert secret["metadata"]["creationTimestamp"] == "2024-01-15T08:00:00Z"
        text = json.dumps(listing)
        assert SECRET_B64 not in text, "not even via last-applied-configuration"
        assert SECRET_VALUE not in text
    (request,) = server.request_log
    assert request.metadata_only
    assert not request.returned_secret_data


def test_no_request_writes_or_returns_secret_data(
    server: FakeApiServer, view_for: Callable[..., LiveClusterView]
) -> None:
    view = view_for(server)
    for resource in (PODS, DEPLOYMENTS, DAEMON_SETS, SECRETS, CONFIG_MAPS, NAMESPACES, DAPR_COMPONENTS):
        view.list(resource)
    view.server_version()
    account = "system:serviceaccount:atlan-agent:agent"
    assert view.can_i(account, [], "list", "secrets", "atlan-agent") is False
    view.close()
    log = server.request_log
    assert len(log) == 9
    assert {(r.method, r.verb) for r in log} == {("GET", "list"), ("GET", "get"), ("POST", "create")}
    writes = [r.path for r in log if r.method != "GET"]
    assert writes == ["/apis/authorization.k8s.io/v1/subjectaccessreviews"], "only the access review"
    assert not any(r.returned_secret_data for r in log)
    assert all(r.status in (200, 201) for r in log)


def test_forbidden_names_the_missing_permission_and_is_asked_once(
    server: FakeApiServer, view_for: Callable[..., LiveClusterView]
) -> None:
    view = view_for(server, "pods-only")
    assert view.list(PODS, "atlan-agent")
    for _ in range(2):
        with pytest.raises(EvidenceUnavailable) as caught:
            view.list(DEPLOYMENTS, "atlan-agent")
        message = str(caught.value)
        assert "list deployments.apps in namespace 'atlan-agent'" in message
        assert "forbidden (403)" in message
        assert "grant 'list' on 'deployments.apps' in namespace 'atlan-agent'" in message
    with pytest.raises(EvidenceUnavailable, match=r"grant 'list' on 'pods' cluster-wide"):
        view.list(PODS)
    with pytest.raises(EvidenceUnavailable, match=r"grant 'create' on 'subjectaccessreviews.authorization"):
        view.can_i("someone", [], "get", "pods", None)
    denied = [r for r in server.request_log if r.status == 403]
    assert [r.path for r in denied] == [
        "/apis/apps/v1/namespaces/atlan-agent/deployments",
        "/api/v1/pods",
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
    ]


def test_not_served_resource(server: FakeApiServer, view_for: Callable[..., LiveClusterView]) -> None:
    view = view_for(server)
    with pytest.raises(ResourceNotServed, match=r"vulnerabilityreports\.aquasecurity\.github\.io"):
        view.list(VULNERABILITY_REPORTS)
    assert isinstance(ResourceNotServed("x"), EvidenceUnavailable)


def test_bad_credentials(
    server: FakeApiServer, tmp_path: Path, open_live: Callable[..., LiveClusterView]
) -> None:
    kubeconfig = write_kubeconfig(
        tmp_path / "bad.yaml", server=server.url, ca_pem=server.ca_pem, token=WRONG_TOKEN, user="x"
    )
    view = open_live(kubeconfig, timeout=5)
    with pytest.raises(EvidenceUnavailable, match=r"rejected the credentials \(401 Unauthorized\)"):
        view.list(PODS, "atlan-agent")


def test_untrusted_server_certificate(
    server: FakeApiServer, tmp_path: Path, open_live: Callable[..., LiveClusterView]
) -> None:
    other = FakeApiServer(server.cluster, server.users, tmp_path)  # another CA, never started
    kubeconfig = write_kubeconfig(
        tmp_path / "other-ca.yaml",
        server=server.url,
        ca_pem=other.ca_pem,
        token=server.user("auditor").token,
        user="auditor",
    )
    view = open_live(kubeconfig, timeout=5)
    with pytest.raises(EvidenceUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        view.list(PODS, "atlan-agent")
    assert not server.request_log, "nothing was sent over an unverified connection"


def test_a_server_that_never_answers_times_out(
    k8s_silent_server: SilentServer, tmp_path: Path, open_live: Callable[..., LiveClusterView]
) -> None:
    kubeconfig = write_kubeconfig(
        tmp_path / "silent.yaml", server=k8s_silent_server.url, ca_pem=b"", token=WRONG_TOKEN, user="x"
    )
    view = open_live(kubeconfig, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(EvidenceUnavailable, match=r"limit reached: no complete answer from the API server within 0\.5s"):
        view.list(PODS, "atlan-agent")
    assert time.monotonic() - started < 2.5


def test_connection_refused(tmp_path: Path, open_live: Callable[..., LiveClusterView]) -> None:
    silent = SilentServer()
    url = silent.url
    silent.stop()  # the port is closed now
    kubeconfig = write_kubeconfig(
        tmp_path / "closed.yaml", server=url, ca_pem=b"", token=WRONG_TOKEN, user="x"
    )
    view = open_live(kubeconfig, timeout=2)
    with pytest.raises(EvidenceUnavailable, match="no answer from the API server"):
        view.server_version()


def test_kubeconfig_from_the_environment_and_context(
    server: FakeApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig_for("auditor", context="prod")))
    view = open_view(parse_target("k8s://prod/atlan-agent"), timeout=5)
    try:
        assert view.live
        assert view.target_id == "k8s:prod/atlan-agent"
        assert view.list(CONFIG_MAPS, "atlan-agent")
    finally:
        view.close()
    with pytest.raises(EvidenceUnavailable, match="context 'staging'"):
        open_view(parse_target("k8s://staging"), timeout=5)
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/secagent-kubeconfig")
    with pytest.raises(EvidenceUnavailable, match="/nonexistent/secagent-kubeconfig"):
        open_view(parse_target("k8s://"), timeout=5)


def test_open_view_fails_once_for_an_unreachable_cluster(
    k8s_silent_server: SilentServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = write_kubeconfig(
        tmp_path / "silent.yaml", server=k8s_silent_server.url, ca_pem=b"", token=WRONG_TOKEN, user="x"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    with pytest.raises(EvidenceUnavailable, match="/version"):
        open_view(parse_target("k8s://"), timeout=0.3)


def test_in_cluster_service_account(server: FakeApiServer, tmp_path: Path) -> None:
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(server.user("auditor").token)
    (account / "ca.crt").write_bytes(server.ca_pem)
    port = server.url.rsplit(":", 1)[1]
    view = LiveClusterView.in_cluster(
        timeout=5,
        service_account_dir=str(account),
        environ={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port},
    )
    try:
        assert view.list(NAMESPACES)
    finally:
        view.close()
    assert {r.user for r in server.request_log} == {"auditor"}
    with pytest.raises(EvidenceUnavailable, match="in-cluster"):
        LiveClusterView.in_cluster(timeout=5, service_account_dir=str(tmp_path / "none"), environ={})


def test_access_reviews_are_cached(server: FakeApiServer, view_for: Callable[..., LiveClusterView]) -> None:
    view = view_for(server)
    account = "system:serviceaccount:atlan-agent:agent"
    assert view.can_i(account, [], "list", "configmaps", "atlan-agent") is True
    assert view.can_i(account, [], "list", "configmaps", "atlan-agent") is True
    assert view.can_i(account, ["system:masters"], "delete", "deployments.apps", None) is True
    assert view.can_i(account, [], "get", "pods/exec", "atlan-agent") is False
    assert len(server.request_log) == 3


def test_the_fixture_serves_checks_of_a_live_target(
    pytester: pytest.Pytester, server: FakeApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(server.kubeconfig_for("pods-only", context="audit")))
    pytester.makepyfile(
        test_k8s="""
        import pytest
        from pytest_secagent.kubernetes.resources import DEPLOYMENTS, PODS

        @pytest.mark.secagent_control("SA-RUNTIME-006", applies_to=("k8s", "manifests"))
        def test_pods(secagent_k8s, secagent_evidence):
            pods = secagent_k8s.list(PODS, "atlan-agent")
            secagent_evidence.expect("pods", expected="some", actual=len(pods), ok=bool(pods))
            secagent_evidence.conclude()

        @pytest.mark.secagent_control("SA-RUNTIME-010", applies_to=("k8s", "manifests"))
        def test_deployments(secagent_k8s, secagent_evidence):
            secagent_evidence.observe("deployments", len(secagent_k8s.list(DEPLOYMENTS, "atlan-agent")))
            secagent_evidence.conclude()
        """
    )
    result = pytester.runpytest("--secagent-no-suites", "--secagent-target", "k8s://audit/atlan-agent")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*grant 'list' on 'deployments.apps' in namespace 'atlan-agent'*"])
    assert [r.path for r in server.request_log] == [
        "/version",
        "/api/v1/namespaces/atlan-agent/pods",
        "/apis/apps/v1/namespaces/atlan-agent/deployments",
    ]
