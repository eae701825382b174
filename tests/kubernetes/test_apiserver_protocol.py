"""The test API server answers the official client as a kube-apiserver would.

Everything here goes through a kubeconfig and the official ``kubernetes`` client, so the
server is proven against the same client the plugin uses.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.kubernetes.apiauth import READ_EVERYTHING, Rule
from tests.kubernetes.apiserver import FakeApiServer
from tests.kubernetes.conftest import SCENARIOS, ApiServerFactory

VIEWTEST = SCENARIOS / "_viewtest"

# Untyped on purpose: the tests hold for every generation of the client.
client: Any = importlib.import_module("kubernetes.client")
config: Any = importlib.import_module("kubernetes.config")


@pytest.fixture
def server(k8s_apiserver_factory: ApiServerFactory) -> FakeApiServer:
    return k8s_apiserver_factory(
        VIEWTEST,
        {
            "auditor": READ_EVERYTHING,
            "pods-only": (Rule(("list",), ("pods",), ("atlan-agent",)),),
        },
    )


def api_client(server: FakeApiServer, user: str = "auditor") -> Any:
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(server.kubeconfig_for(user)),
        client_configuration=configuration,
        persist_config=False,
    )
    return client.ApiClient(configuration)


@pytest.fixture
def core(server: FakeApiServer) -> Iterator[Any]:
    api = api_client(server)
    try:
        yield client.CoreV1Api(api)
    finally:
        api.close()


def raw(response: Any) -> Any:
    return json.loads(response.data)


def test_lists_are_complete_api_documents(core: Any, server: FakeApiServer) -> None:
    document = raw(core.list_namespaced_pod("atlan-agent", _preload_content=False))
    assert document["kind"] == "PodList"
    assert document["apiVersion"] == "v1"
    assert document["metadata"]["resourceVersion"].isdigit()
    assert document["items"], "the scenario's workloads have pods"
    for pod in document["items"]:
        metadata = pod["metadata"]
        assert metadata["uid"]
        assert metadata["resourceVersion"]
        assert metadata["creationTimestamp"]
        assert "kind" not in pod, "items of a typed list carry no kind, as on a real server"
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["nodeName"] in ("worker-a", "worker-b")


def test_the_typed_client_reads_the_objects(core: Any) -> None:
    pods = core.list_namespaced_pod("atlan-agent").items
    agent = [p for p in pods if p.metadata.name.startswith("agent-")]
    assert len(agent) == 3
    owner = agent[0].metadata.owner_references[0]
    assert owner.kind == "ReplicaSet"
    assert owner.name.startswith("agent-")
    assert agent[0].spec.containers[0].security_context.read_only_root_filesystem is True


def test_version_and_discovery(server: FakeApiServer) -> None:
    api = api_client(server)
    try:
        assert client.VersionApi(api).get_code().git_version == "v1.29.4"
        assert client.CoreApi(api).get_api_versions().versions == ["v1"]
        groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
        assert {"apps", "batch", "networking.k8s.io", "rbac.authorization.k8s.io"} <= groups
        assert "dapr.io" in groups, "a custom kind of the scenario is served"
        assert "gateway.networking.k8s.io" not in groups, "absent CRDs are not served"
        resources = client.AppsV1Api(api).get_api_resources().resources
        assert {r.name for r in resources} >= {"deployments", "daemonsets", "statefulsets"}
    finally:
        api.close()


def test_paging_with_limit_and_continue(core: Any, server: FakeApiServer) -> None:
    first = raw(core.list_namespaced_pod("atlan-agent", limit=3, _preload_content=False))
    assert len(first["items"]) == 3
    assert first["metadata"]["remainingItemCount"] == 4
    second = raw(
        core.list_namespaced_pod(
            "atlan-agent", limit=3, _continue=first["metadata"]["continue"], _preload_content=False
        )
    )
    names = [p["metadata"]["name"] for p in first["items"] + second["items"]]
    assert len(set(names)) == 6
    bad = client.exceptions.ApiException
    with pytest.raises(bad) as caught:
        core.list_namespaced_pod("atlan-agent", limit=3, _continue="not-a-token")
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app.kubernetes.io/name=agent", 3),
        ("app.kubernetes.io/name==cache", 2),
        ("app.kubernetes.io/name!=agent", 4),
        ("app.kubernetes.io/name in (cache, debug)", 3),
        ("app.kubernetes.io/name notin (cache,debug),statefulset.kubernetes.io/pod-name", 0),
        ("statefulset.kubernetes.io/pod-name", 2),
        ("!statefulset.kubernetes.io/pod-name", 5),
    ],
)
def test_label_selectors(core: Any, selector: str, expected: int) -> None:
    assert len(core.list_namespaced_pod("atlan-agent", label_selector=selector).items) == expected


def test_field_selectors(core: Any) -> None:
    named = core.list_pod_for_all_namespaces(field_selector="metadata.name=debug").items
    assert [p.metadata.name for p in named] == ["debug"]
    in_logging = core.list_pod_for_all_namespaces(field_selector="metadata.namespace=logging").items
    assert len(in_logging) == 2, "the DaemonSet runs on both nodes"
    with pytest.raises(client.exceptions.ApiException) as caught:
        core.list_namespaced_pod("atlan-agent", field_selector="spec.unknown=x")
    assert caught.value.status == 400
    assert "field label not supported" in json.loads(caught.value.body)["message"]


def test_metadata_only_list(core: Any, server: FakeApiServer) -> None:
    accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    path = "/api/v1/namespaces/atlan-agent/secrets"
    api = core.api_client
    if hasattr(api, "param_serialize"):  # the client's 37+ generation
        request = api.param_serialize(
            "GET", path, header_params={"Accept": accept}, auth_settings=["BearerToken"]
        )
        response = api.call_api(*request)
        response.read()
    else:
        response = api.call_api(
            path,
            "GET",
            header_params={"Accept": accept},
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
    document = json.loads(response.data)
    assert document["kind"] == "PartialObjectMetadataList"
    assert document["apiVersion"] == "meta.k8s.io/v1"
    assert document["items"][0]["kind"] == "PartialObjectMetadata"
    assert set(document["items"][0]) == {"kind", "apiVersion", "metadata"}
    assert server.request_log[-1].metadata_only
    assert not server.request_log[-1].returned_secret_data


def test_full_secret_reads_are_flagged_in_the_log(core: Any, server: FakeApiServer) -> None:
    core.list_namespaced_secret("atlan-agent")
    assert server.request_log[-1].returned_secret_data


def test_get_one_object_and_not_found(core: Any) -> None:
    config_map = core.read_namespaced_config_map("agent-config", "atlan-agent")
    assert config_map.data == {"LOG_LEVEL": "info"}
    with pytest.raises(client.exceptions.ApiException) as caught:
        core.read_namespaced_config_map("missing", "atlan-agent")
    body = json.loads(caught.value.body)
    assert caught.value.status == 404
    assert body["kind"] == "Status"
    assert body["reason"] == "NotFound"
    assert body["message"] == 'configmaps "missing" not found'


def test_unknown_resource_is_not_found(server: FakeApiServer) -> None:
    api = api_client(server)
    try:
        custom = client.CustomObjectsApi(api)
        with pytest.raises(client.exceptions.ApiException) as caught:
            custom.list_cluster_custom_object("aquasecurity.github.io", "v1alpha1", "vulnerabilityreports")
        assert caught.value.status == 404
        assert json.loads(caught.value.body)["reason"] == "NotFound"
        components = custom.list_namespaced_custom_object("dapr.io", "v1alpha1", "atlan-agent", "components")
        assert components["items"][0]["kind"] == "Component", "custom resource items keep their kind"
    finally:
        api.close()


def test_bad_token_is_401(server: FakeApiServer, tmp_path: Path) -> None:
    kubeconfig = server.kubeconfig_for("auditor")
    text = kubeconfig.read_text().replace(server.user("auditor").token, "secagent-test-wrong")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(text)
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(wrong), client_configuration=configuration, persist_config=False)
    with client.ApiClient(configuration) as api, pytest.raises(client.exceptions.ApiException) as caught:
        client.CoreV1Api(api).list_namespaced_pod("atlan-agent")
    body = json.loads(caught.value.body)
    assert caught.value.status == 401
    assert (body["kind"], body["reason"], body["message"]) == ("Status", "Unauthorized", "Unauthorized")
    assert server.request_log[-1].user is None


def test_forbidden_is_403_in_the_apiservers_words(server: FakeApiServer) -> None:
    api = api_client(server, "pods-only")
    try:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        assert core.list_namespaced_pod("atlan-agent").items
        cases: list[tuple[Callable[[], Any], str]] = [
            (
                lambda: core.list_namespaced_secret("atlan-agent"),
                'secrets is forbidden: User "pods-only" cannot list resource "secrets" '
                'in API group "" in the namespace "atlan-agent"',
            ),
            (
                lambda: core.list_pod_for_all_namespaces(),
                'pods is forbidden: User "pods-only" cannot list resource "pods" '
                'in API group "" at the cluster scope',
            ),
            (
                lambda: apps.list_namespaced_deployment("atlan-agent"),
                'deployments.apps is forbidden: User "pods-only" cannot list resource '
                '"deployments" in API group "apps" in the namespace "atlan-agent"',
            ),
            (
                lambda: core.read_namespaced_pod("debug", "atlan-agent"),
                'pods "debug" is forbidden: User "pods-only" cannot get resource "pods" '
                'in API group "" in the namespace "atlan-agent"',
            ),
        ]
        for call, message in cases:
            with pytest.raises(client.exceptions.ApiException) as caught:
                call()
            body = json.loads(caught.value.body)
            assert caught.value.status == 403
            assert (body["kind"], body["status"], body["reason"], body["code"]) == (
                "Status",
                "Failure",
                "Forbidden",
                403,
            )
            assert body["message"] == message
    finally:
        api.close()


def test_every_write_is_refused_with_405_and_logged(core: Any, server: FakeApiServer) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    writes: list[Callable[[], Any]] = [
        lambda: core.create_namespaced_config_map("atlan-agent", body),
        lambda: core.replace_namespaced_config_map("agent-config", "atlan-agent", body),
        lambda: core.patch_namespaced_config_map("agent-config", "atlan-agent", {"data": {"a": "b"}}),
        lambda: core.delete_namespaced_config_map("agent-config", "atlan-agent"),
    ]
    for write in writes:
        with pytest.raises(client.exceptions.ApiException) as caught:
            write()
        assert caught.value.status == 405
        assert json.loads(caught.value.body)["reason"] == "MethodNotAllowed"
    logged = [(r.method, r.status) for r in server.request_log]
    assert logged == [("POST", 405), ("PUT", 405), ("PATCH", 405), ("DELETE", 405)]
    assert core.read_namespaced_config_map("agent-config", "atlan-agent").data == {"LOG_LEVEL": "info"}


def test_access_reviews(server: FakeApiServer) -> None:
    api = api_client(server)
    try:
        authorization = client.AuthorizationV1Api(api)

        def review(user: str, verb: str, resource: str, namespace: str | None = None) -> bool:
            attributes = client.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace)
            spec = client.V1SubjectAccessReviewSpec(user=user, resource_attributes=attributes)
            body = client.V1SubjectAccessReview(spec=spec)
            return bool(authorization.create_subject_access_review(body).status.allowed)

        service_account = "system:serviceaccount:atlan-agent:agent"
        assert review(service_account, "list", "configmaps", "atlan-agent"), "from the scenario's RoleBinding"
        assert not review(service_account, "list", "secrets", "atlan-agent")
        assert not review(service_account, "list", "configmaps", "default")
        assert review("pods-only", "list", "pods", "atlan-agent"), "a user of the server: its rules"
        assert not review("pods-only", "list", "pods", "default")

        self_review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(verb="delete", resource="pods")
            )
        )
        assert not authorization.create_self_subject_access_review(self_review).status.allowed
    finally:
        api.close()
    assert {r.status for r in server.request_log} == {201}


def test_subject_access_review_needs_permission(server: FakeApiServer) -> None:
    api = api_client(server, "pods-only")
    try:
        attributes = client.V1ResourceAttributes(verb="list", resource="pods")
        body = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(user="someone", resource_attributes=attributes)
        )
        with pytest.raises(client.exceptions.ApiException) as caught:
            client.AuthorizationV1Api(api).create_subject_access_review(body)
        assert caught.value.status == 403
    finally:
        api.close()


def test_controllers_made_the_pods_a_cluster_would_have(core: Any) -> None:
    pods = {p.metadata.name: p for p in core.list_pod_for_all_namespaces().items}
    cache = pods["cache-0"]
    assert cache.metadata.owner_references[0].kind == "StatefulSet"
    rotate = next(p for n, p in pods.items() if n.startswith("rotate-"))
    assert rotate.metadata.owner_references[0].kind == "Job"
    assert rotate.metadata.labels["batch.kubernetes.io/job-name"].startswith("rotate-")
    # Service-account admission: a token volume unless the pod or its account opts out.
    agent = next(p for n, p in pods.items() if n.startswith("agent-"))
    assert not any(v.name.startswith("kube-api-access-") for v in agent.spec.volumes or [])
    assert cache.spec.service_account_name == "agent"
    assert not cache.spec.volumes, "the agent service account does not automount"
    debug = pods["debug"]
    assert debug.spec.service_account_name == "default"
    assert any(v.name.startswith("kube-api-access-") for v in debug.spec.volumes)
    mounts = {m.mount_path for m in debug.spec.containers[0].volume_mounts}
    assert "/var/run/secrets/kubernetes.io/serviceaccount" in mounts
    namespaces = {n.metadata.name: n for n in core.list_namespace().items}
    assert {"atlan-agent", "logging", "default", "kube-system"} <= set(namespaces)
    assert namespaces["atlan-agent"].metadata.labels == {
        "pod-security.kubernetes.io/enforce": "restricted",
        "kubernetes.io/metadata.name": "atlan-agent",
    }
    nodes = core.list_node().items
    assert {n.status.node_info.kubelet_version for n in nodes} == {"v1.29.4"}
