"""The manifest view: files, folders and globs of rendered YAML, and agreement with a live view."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_secagent.kubernetes.connect import open_view
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.manifests import ManifestError, ManifestView
from pytest_secagent.kubernetes.resources import (
    CLUSTER_ROLES,
    CONFIG_MAPS,
    DAPR_COMPONENTS,
    DEPLOYMENTS,
    HTTP_ROUTES,
    NAMESPACES,
    NETWORK_POLICIES,
    PODS,
    ROLE_BINDINGS,
    ROLES,
    SECRETS,
    SERVICE_ACCOUNTS,
    SERVICES,
    resource_for_kind,
)
from pytest_secagent.kubernetes.view import KubernetesView, Resource
from pytest_secagent.kubernetes.workloads import (
    PodTemplate,
    containers,
    label_selector_matches,
    pod_templates,
)
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.targets import parse_target
from tests.kubernetes.conftest import SCENARIOS, ApiServerFactory
from tests.kubernetes.controllers import TOKEN_MOUNT

VIEWTEST = SCENARIOS / "_viewtest"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
        - name: main
          image: docker.io/atlanhq/{name}:1.0.0
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_folder_of_multi_document_files_lists_and_json(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "---\n" + DEPLOYMENT.format(name="one") + "---\n---\n# only a comment\n")
    write(
        tmp_path / "nested" / "b.yml",
        "apiVersion: v1\nkind: List\nitems:\n"
        "  - {apiVersion: v1, kind: Service, metadata: {name: svc}, spec: {ports: [{port: 80}]}}\n"
        "  - apiVersion: v1\n    kind: ConfigMapList\n    items:\n"
        "      - {apiVersion: v1, kind: ConfigMap, metadata: {name: cm, namespace: other}}\n",
    )
    write(
        tmp_path / "c.json",
        json.dumps(
            {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"}}
        ),
    )
    write(tmp_path / "README.md", "not a manifest")
    view = ManifestView(str(tmp_path), default_namespace="atlan-agent")
    assert not view.live
    assert view.server_version() is None
    assert view.can_i("u", [], "get", "pods", None) is None
    assert [d["metadata"]["name"] for d in view.list(DEPLOYMENTS)] == ["one"]
    assert view.list(SERVICES)[0]["metadata"]["namespace"] == "atlan-agent"
    assert view.list(CONFIG_MAPS, "other")[0]["metadata"]["name"] == "cm"
    assert view.list(CONFIG_MAPS, "atlan-agent") == []
    assert view.list(NETWORK_POLICIES, "atlan-agent")[0]["metadata"]["name"] == "np"


def test_a_single_file_and_a_glob(tmp_path: Path) -> None:
    one = write(tmp_path / "one.yaml", DEPLOYMENT.format(name="one"))
    write(tmp_path / "two.yaml", DEPLOYMENT.format(name="two"))
    write(tmp_path / "deep" / "three.yaml", DEPLOYMENT.format(name="three"))
    assert [d["metadata"]["name"] for d in ManifestView(str(one)).list(DEPLOYMENTS)] == ["one"]
    shallow = ManifestView(str(tmp_path / "t*.yaml")).list(DEPLOYMENTS)
    assert [d["metadata"]["name"] for d in shallow] == ["two"]
    deep = ManifestView(str(tmp_path / "**" / "*.yaml")).list(DEPLOYMENTS)
    assert sorted(d["metadata"]["name"] for d in deep) == ["one", "three", "two"]


def test_unparseable_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    broken = write(
        tmp_path / "broken.yaml",
        DEPLOYMENT.format(name="ok") + "---\napiVersion: v1\nkind: ConfigMap\ndata:\n  key: [unclosed\n",
    )
    with pytest.raises(ManifestError, match=rf"{broken}:1[0-9]: invalid YAML") as caught:
        ManifestView(str(tmp_path))
    assert isinstance(caught.value, EvidenceUnavailable)


def test_a_chart_instead_of_rendered_manifests(tmp_path: Path) -> None:
    write(tmp_path / "Chart.yaml", "apiVersion: v2\nname: agent\nversion: 1.0.0\n")
    with pytest.raises(ManifestError, match=r"Chart.yaml:1: not a Kubernetes object.*helm template"):
        ManifestView(str(tmp_path))
    write(tmp_path / "Chart.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Values.name }}\n")
    with pytest.raises(ManifestError, match=r"Chart.yaml:4: invalid YAML"):
        ManifestView(str(tmp_path))


@pytest.mark.parametrize("spec", ["missing-dir", "missing-*.yaml"])
def test_a_missing_path_is_named(tmp_path: Path, spec: str) -> None:
    path = str(tmp_path / spec)
    with pytest.raises(ManifestError, match=path.replace("*", r"\*")):
        ManifestView(path)


def test_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no manifest file"):
        ManifestView(str(tmp_path))


def test_namespaces_scopes_and_labels(tmp_path: Path) -> None:
    write(
        tmp_path / "objects.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: atlan-agent, labels: {team: data}}\n---\n"
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
        "metadata: {name: reader, namespace: ignored}\n---\n"
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: agent}\n",
    )
    view = ManifestView(str(tmp_path), default_namespace="atlan-agent")
    (namespace,) = view.list(NAMESPACES, "anything")
    assert namespace["metadata"]["labels"] == {"team": "data", "kubernetes.io/metadata.name": "atlan-agent"}
    assert "namespace" not in view.list(CLUSTER_ROLES)[0]["metadata"]
    assert view.list(SERVICE_ACCOUNTS, "atlan-agent")[0]["metadata"]["name"] == "agent"


def test_secret_values_never_leave_the_view() -> None:
    view = ManifestView(str(VIEWTEST), default_namespace="atlan-agent")
    for listing in (view.list(SECRETS), view.list_metadata(SECRETS, "atlan-agent")):
        (secret,) = listing
        assert set(secret) == {"apiVersion", "kind", "metadata"}
        assert "annotations" not in secret["metadata"], "last-applied-configuration holds the value"
    assert view.list_metadata(CONFIG_MAPS, "atlan-agent")[0] == {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": {"name": "agent-config", "namespace": "atlan-agent"},
    }


@pytest.mark.parametrize(
    ("api_version", "kind", "expected"),
    [
        ("v1", "Pod", Resource("", "v1", "pods")),
        ("networking.k8s.io/v1", "Ingress", Resource("networking.k8s.io", "v1", "ingresses")),
        ("v1", "Namespace", Resource("", "v1", "namespaces", namespaced=False)),
        ("gateway.networking.k8s.io/v1", "HTTPRoute", HTTP_ROUTES),
        ("dapr.io/v1alpha1", "Component", DAPR_COMPONENTS),
        ("example.com/v1", "Widget", Resource("example.com", "v1", "widgets")),
        ("example.com/v1", "Policy", Resource("example.com", "v1", "policies")),
        ("example.com/v1", "Ingress", Resource("example.com", "v1", "ingresses")),
    ],
)
def test_kinds_map_to_resources(api_version: str, kind: str, expected: Resource) -> None:
    assert resource_for_kind(api_version, kind) == expected


def test_templates_of_every_workload_kind() -> None:
    view = ManifestView(str(VIEWTEST), default_namespace="atlan-agent")
    owners = [str(t.owner) for t in pod_templates(view)]
    assert owners == [
        "Deployment/agent in namespace atlan-agent",
        "StatefulSet/cache in namespace atlan-agent",
        "DaemonSet/log-collector in namespace logging",
        "CronJob/rotate in namespace atlan-agent",
        "Pod/debug in namespace atlan-agent",
    ]
    (agent,) = pod_templates(view, "atlan-agent", {"app.kubernetes.io/name": "agent"})
    assert [(kind, c["name"]) for kind, c in containers(agent.spec)] == [
        ("initContainer", "wait"),
        ("container", "agent"),
    ]
    assert agent.service_account == "agent"
    assert agent.pods == ()


def test_open_view_for_a_manifest_target() -> None:
    view = open_view(parse_target(f"manifests://{VIEWTEST}"), timeout=1, agent_namespace="atlan-agent")
    assert view.target_id == f"manifests:{VIEWTEST}"
    assert view.list(PODS, "atlan-agent")[0]["metadata"]["name"] == "debug"


# -- both views agree on the same scenario ------------------------------------------------


def _normal_owner(template: PodTemplate) -> str:
    owner = template.owner
    if owner.kind == "Job" and owner.name.rsplit("-", 1)[-1].isdigit():
        return f"CronJob/{owner.name.rsplit('-', 1)[0]}"  # a CronJob's Job in a live cluster
    return f"{owner.kind}/{owner.name}"


def _security_shape(template: PodTemplate) -> dict[str, Any]:
    """What the checks judge of a pod spec, without what the cluster adds (defaults, token)."""
    spec = template.spec
    shape: dict[str, Any] = {
        key: spec.get(key)
        for key in ("hostNetwork", "hostPID", "hostIPC", "securityContext", "automountServiceAccountToken")
    }
    shape["securityContext"] = spec.get("securityContext") or {}
    shape["serviceAccount"] = template.service_account
    shape["volumes"] = [v for v in spec.get("volumes") or [] if not v["name"].startswith("kube-api-access-")]
    shape["containers"] = [
        {
            "kind": kind,
            "name": c.get("name"),
            "image": c.get("image"),
            "securityContext": c.get("securityContext"),
            "resources": c.get("resources") or {},
            "env": c.get("env"),
            "ports": c.get("ports"),
            "volumeMounts": [m for m in c.get("volumeMounts") or [] if m.get("mountPath") != TOKEN_MOUNT],
        }
        for kind, c in containers(spec)
    ]
    shape["labels"] = {
        k: v
        for k, v in template.labels.items()
        if k not in ("pod-template-hash", "controller-revision-hash", "pod-template-generation")
        and not k.startswith(("statefulset.kubernetes.io/", "apps.kubernetes.io/", "batch.kubernetes.io/"))
        and k not in ("controller-uid", "job-name")
    }
    return shape


def _names(view: KubernetesView, resource: Resource, namespace: str) -> set[str]:
    return {o["metadata"]["name"] for o in view.list(resource, namespace)}


def assert_views_agree(live: KubernetesView, manifests: KubernetesView) -> None:
    namespaces = {n["metadata"]["name"] for n in manifests.list(NAMESPACES)}
    for resource in (DEPLOYMENTS, PODS, CONFIG_MAPS, SECRETS, SERVICE_ACCOUNTS):
        namespaces |= {o["metadata"]["namespace"] for o in manifests.list(resource)}
    for namespace in sorted(namespaces):
        rendered = {_normal_owner(t): _security_shape(t) for t in pod_templates(manifests, namespace)}
        running = {_normal_owner(t): _security_shape(t) for t in pod_templates(live, namespace)}
        assert running == rendered, f"pod specs differ in namespace {namespace}"
        for resource in (SERVICES, NETWORK_POLICIES, ROLES, ROLE_BINDINGS):
            assert _names(live, resource, namespace) == _names(manifests, resource, namespace)
        for resource in (CONFIG_MAPS, SECRETS, SERVICE_ACCOUNTS):
            # The cluster adds kube-root-ca.crt and the default service account.
            assert _names(manifests, resource, namespace) <= _names(live, resource, namespace)
    for namespace in manifests.list(NAMESPACES):
        (same,) = [n for n in live.list(NAMESPACES) if n["metadata"]["name"] == namespace["metadata"]["name"]]
        assert same["metadata"]["labels"] == namespace["metadata"]["labels"]


@pytest.fixture
def live_view(k8s_apiserver_factory: ApiServerFactory) -> Iterator[Callable[[Path], LiveClusterView]]:
    """Serve a scenario and open a live view of it (closed after the test)."""
    views: list[LiveClusterView] = []

    def opener(scenario: Path) -> LiveClusterView:
        server = k8s_apiserver_factory(scenario, default_namespace="atlan-agent")
        views.append(LiveClusterView.from_kubeconfig(str(server.kubeconfig_for("auditor")), timeout=5))
        return views[-1]

    yield opener
    for view in views:
        view.close()


def test_both_views_agree_on_the_view_test_scenario(live_view: Callable[[Path], LiveClusterView]) -> None:
    live = live_view(VIEWTEST)
    manifests = ManifestView(str(VIEWTEST), default_namespace="atlan-agent")
    assert_views_agree(live, manifests)
    assert live.list(DAPR_COMPONENTS, "atlan-agent")[0]["spec"] == manifests.list(DAPR_COMPONENTS)[0]["spec"]


def _has_manifests(folder: Path) -> bool:
    return any(p.is_file() and p.suffix in (".yaml", ".yml", ".json") for p in folder.iterdir())


def _shared_scenarios() -> list[tuple[str, tuple[Path, ...]]]:
    """Every runnable scenario of the checks: a folder of manifests, or a base plus an overlay.

    An overlay folder (``misconfigured/<control>``) holds files that replace the files of the
    same name in ``hardened`` (a file with no document deletes it).
    """
    scenarios: list[tuple[str, tuple[Path, ...]]] = []
    for folder in sorted(p for p in SCENARIOS.iterdir() if p.is_dir() and not p.name.startswith("_")):
        if _has_manifests(folder):
            scenarios.append((folder.name, (folder,)))
        elif (SCENARIOS / "hardened").is_dir():
            for overlay in sorted(p for p in folder.iterdir() if p.is_dir()):
                scenarios.append((f"{folder.name}/{overlay.name}", (SCENARIOS / "hardened", overlay)))
    return scenarios


def _layered(layers: tuple[Path, ...], dest: Path) -> Path:
    dest.mkdir()
    for layer in layers:
        for source in sorted(p for p in layer.iterdir() if p.is_file()):
            target = dest / source.name
            text = source.read_text(encoding="utf-8")
            if source.suffix in (".yaml", ".yml") and not [
                d for d in yaml.safe_load_all(text) if d is not None
            ]:
                target.unlink(missing_ok=True)
            else:
                target.write_text(text, encoding="utf-8")
    return dest


SHARED_SCENARIOS = _shared_scenarios()


@pytest.mark.parametrize("layers", [s[1] for s in SHARED_SCENARIOS], ids=[s[0] for s in SHARED_SCENARIOS])
def test_both_views_agree_on_every_scenario(
    live_view: Callable[[Path], LiveClusterView], layers: tuple[Path, ...], tmp_path: Path
) -> None:
    """The scenarios of the checks load into the server as they are, and read the same both ways."""
    scenario = layers[0] if len(layers) == 1 else _layered(layers, tmp_path / "scenario")
    live = live_view(scenario)
    manifests = ManifestView(str(scenario), default_namespace="atlan-agent")
    assert_views_agree(live, manifests)


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({}, {"a": "1"}, True),
        (None, {"a": "1"}, False),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "3"]}]}, {"a": "3"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {"a": "1"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
        ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, {"a": "1"}, False),
    ],
)
def test_label_selectors_of_network_policies_and_services(
    selector: dict[str, Any] | None, labels: dict[str, str], selected: bool
) -> None:
    assert label_selector_matches(selector, labels) is selected
