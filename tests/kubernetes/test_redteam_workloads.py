"""Workload findings judged as Kubernetes applies the objects, in both views.

Each fault kind is a matrix: YAML read as Kubernetes reads it (merge keys in document
order, YAML 1.1 booleans, UTF-16/UTF-32 files, duplicate objects), ``null`` fields that
are absent, Argo workflow kinds that run pods, kinds that hold containers the plugin does
not read, limits of zero, service-account tokens mounted by hand and container-engine
socket folders spelled in other ways.
"""

from __future__ import annotations

import codecs
import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import identity, workload
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.manifests import ManifestView
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.kubernetes.workloads import WorkloadShapeError
from tests.kubernetes.checkviews import (
    CONTAINER_SECURITY,
    NAMESPACE,
    POD_SECURITY,
    container,
    deployment,
    failures,
    manifest_view,
    policy,
    warnings,
)
from tests.kubernetes.conftest import ApiServerFactory

KubeObject = dict[str, Any]
Check = Callable[[KubernetesView, Any, Evidence], None]
VIEWS = pytest.mark.parametrize("live", [False, True], ids=["manifests", "live"])
PRIVILEGED = {"privileged": True, "allowPrivilegeEscalation": True, "capabilities": {"drop": ["ALL"]}}


@pytest.fixture
def served(k8s_apiserver_factory: ApiServerFactory) -> Iterator[Callable[..., LiveClusterView]]:
    """Serve objects from a test API server and open a live view on it."""
    views: list[LiveClusterView] = []

    def opener(*objects: KubeObject) -> LiveClusterView:
        server = k8s_apiserver_factory(objects=objects, default_namespace=NAMESPACE)
        view = LiveClusterView.from_kubeconfig(str(server.kubeconfig_for("auditor")), timeout=5)
        views.append(view)
        return view

    yield opener
    for view in views:
        view.close()


def open_view(
    tmp_path: Path, served: Callable[..., LiveClusterView], live: bool, *objects: KubeObject
) -> Any:
    return served(*objects) if live else manifest_view(tmp_path, *objects)


def run(check: Check, view: KubernetesView, **agent: Any) -> Evidence:
    evidence = Evidence()
    check(view, policy(**agent), evidence)
    return evidence


def write(tmp_path: Path, text: str, *, encoding: str = "utf-8", mark: bytes = b"") -> ManifestView:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "manifests.yaml").write_bytes(mark + text.encode(encoding))
    return ManifestView(str(tmp_path), default_namespace=NAMESPACE, target_id=f"manifests:{tmp_path}")


def deployment_text(**placeholders: str) -> str:
    """A hardened Deployment as YAML, with ``'@KEY@'`` values replaced by raw YAML text."""
    obj = deployment()
    pod = obj["spec"]["template"]["spec"]
    if "SC" in placeholders:
        pod["containers"][0]["securityContext"] = "@SC@"
    if "HN" in placeholders:
        pod["hostNetwork"] = "@HN@"
    text = yaml.safe_dump(obj, sort_keys=False)
    for key, raw in placeholders.items():
        text = text.replace(f"'@{key}@'", raw)
    return text


# -- kind 1: YAML read as Kubernetes reads it -------------------------------------------------------

HARDENED_FLOW = "allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}"
MERGES = [
    pytest.param(f"{{privileged: false, <<: {{privileged: true}}, {HARDENED_FLOW}}}", True, id="merge-after"),
    pytest.param(
        f"{{<<: {{privileged: true}}, privileged: false, {HARDENED_FLOW}}}", False, id="merge-before"
    ),
    pytest.param(
        f"{{privileged: false, <<: [{{privileged: true}}, {{privileged: false}}], {HARDENED_FLOW}}}",
        True,
        id="merge-list-first-wins",
    ),
    pytest.param(
        f"{{privileged: false, <<: [{{privileged: false}}, {{privileged: true}}], {HARDENED_FLOW}}}",
        False,
        id="merge-list-later-loses",
    ),
    pytest.param(
        f"{{<<: {{allowPrivilegeEscalation: true}}, {HARDENED_FLOW}}}", False, id="explicit-after-merge"
    ),
    pytest.param(
        f"{{{HARDENED_FLOW}, <<: {{allowPrivilegeEscalation: true}}}}", True, id="escalation-merged-last"
    ),
]


@pytest.mark.parametrize(("context", "fails"), MERGES)
def test_a_merge_key_applies_where_it_is_written(tmp_path: Path, context: str, fails: bool) -> None:
    view = write(tmp_path, deployment_text(SC=context))
    failed = [f for f in failures(run(workload.check_privileges, view)) if ": privileges" in f]
    assert bool(failed) is fails, failed


def test_a_merge_of_something_that_is_not_a_mapping_is_an_error_naming_the_line(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"manifests.yaml:\d+: invalid YAML: a merge key needs a mapping"):
        write(tmp_path, deployment_text(SC="{<<: [1, 2], privileged: false}"))


TRUE_WORDS = ["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"]
FALSE_WORDS = ["n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"]


@pytest.mark.parametrize(
    ("word", "shares"), [(w, True) for w in TRUE_WORDS] + [(w, False) for w in FALSE_WORDS]
)
def test_yaml_1_1_booleans_are_booleans(tmp_path: Path, word: str, shares: bool) -> None:
    view = write(tmp_path, deployment_text(HN=word))
    failed = failures(run(workload.check_host_isolation, view))
    assert any("hostNetwork=true" in f for f in failed) is shares, failed


@pytest.mark.parametrize(
    ("encoding", "mark"),
    [
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-32-le", codecs.BOM_UTF32_LE),
        ("utf-32-be", codecs.BOM_UTF32_BE),
    ],
)
def test_files_with_a_byte_order_mark_are_read(tmp_path: Path, encoding: str, mark: bytes) -> None:
    risky = deployment()
    risky["spec"]["template"]["spec"]["containers"] = [container(securityContext=dict(PRIVILEGED))]
    view = write(tmp_path, "---\n" + yaml.safe_dump(risky), encoding=encoding, mark=mark)
    assert any("privileged=true" in f for f in failures(run(workload.check_privileges, view)))


def privileged_deployment(name: str = "agent", api_version: str = "apps/v1") -> KubeObject:
    obj = deployment(name)
    obj["apiVersion"] = api_version
    obj["spec"]["template"]["spec"]["containers"] = [container(securityContext=dict(PRIVILEGED))]
    return obj


DUPLICATES = [
    pytest.param([deployment(), privileged_deployment()], True, True, id="last-privileged"),
    pytest.param([privileged_deployment(), deployment()], False, True, id="last-hardened"),
    pytest.param(
        [deployment(), privileged_deployment(api_version="extensions/v1beta1")], True, True, id="legacy-group"
    ),
    pytest.param(
        [deployment(), {**privileged_deployment(), "metadata": {"name": "agent"}}],
        True,
        True,
        id="namespace-defaulted",
    ),
    pytest.param([deployment(), privileged_deployment("other")], True, False, id="other-name"),
]


@pytest.mark.parametrize(("objects", "fails", "duplicate"), DUPLICATES)
def test_the_last_of_two_objects_of_one_name_is_judged(
    tmp_path: Path, objects: list[KubeObject], fails: bool, duplicate: bool
) -> None:
    view = manifest_view(tmp_path, *copy.deepcopy(objects))
    evidence = run(workload.check_privileges, view)
    assert any("privileged=true" in f for f in failures(evidence)) is fails
    noted = [w for w in warnings(evidence) if w.startswith("duplicate objects")]
    assert bool(noted) is duplicate, noted
    if duplicate:
        assert "Deployment/agent in namespace atlan-agent" in noted[0]
        assert "manifests.yaml:1 is replaced by" in noted[0]


# -- kind 2: a null field is absent --------------------------------------------------------------


def with_security(pod: KubeObject, own: KubeObject) -> KubeObject:
    obj = deployment()
    spec = obj["spec"]["template"]["spec"]
    spec["securityContext"] = pod
    spec["containers"] = [container(securityContext={**CONTAINER_SECURITY, **own})]
    spec["initContainers"] = [container("init", securityContext={**CONTAINER_SECURITY, **own})]
    return obj


NULLS = [
    pytest.param(
        workload.check_non_root, {**POD_SECURITY, "runAsGroup": 0}, "runAsGroup", False, id="group-0"
    ),
    pytest.param(workload.check_non_root, {**POD_SECURITY, "runAsUser": 0}, "runAsUser", False, id="user-0"),
    pytest.param(
        workload.check_non_root,
        {**POD_SECURITY, "runAsNonRoot": False},
        "runAsNonRoot",
        False,
        id="nonroot-off",
    ),
    pytest.param(workload.check_non_root, POD_SECURITY, "runAsNonRoot", True, id="nonroot-on"),
    pytest.param(workload.check_non_root, POD_SECURITY, "runAsUser", True, id="user-1000"),
    pytest.param(workload.check_privileges, POD_SECURITY, "seccompProfile", True, id="seccomp-runtime"),
    pytest.param(
        workload.check_privileges,
        {**POD_SECURITY, "seccompProfile": {"type": "Unconfined"}},
        "seccompProfile",
        False,
        id="seccomp-unconfined",
    ),
    pytest.param(workload.check_privileges, POD_SECURITY, "appArmorProfile", True, id="apparmor"),
    pytest.param(workload.check_privileges, POD_SECURITY, "seLinuxOptions", True, id="selinux"),
    pytest.param(
        workload.check_privileges,
        {**POD_SECURITY, "appArmorProfile": None, "seLinuxOptions": None},
        "privileged",
        True,
        id="pod-level-nulls",
    ),
]


@VIEWS
@pytest.mark.parametrize(("check", "pod", "field", "passes"), NULLS)
def test_a_null_field_leaves_the_pod_value_in_force(
    tmp_path: Path,
    served: Callable[..., LiveClusterView],
    live: bool,
    check: Check,
    pod: KubeObject,
    field: str,
    passes: bool,
) -> None:
    view = open_view(tmp_path, served, live, with_security(dict(pod), {field: None}))
    failed = failures(run(check, view))
    assert (not failed) is passes, failed


# -- kind 3: Argo workflow kinds run pods ---------------------------------------------------------

ARGO_KINDS = ["Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"]
ARGO_PLACES = ["container", "script", "containerSet", "initContainers", "sidecars"]


def argo(kind: str, template: KubeObject, **workflow: Any) -> KubeObject:
    """An Argo object of ``kind`` with one template (plus a steps template that runs nothing)."""
    spec = {
        "entrypoint": "main",
        "templates": [{"name": "entry", "steps": [[{"name": "run", "template": "main"}]]}, template],
        **workflow,
    }
    metadata: KubeObject = {"name": "extract"}
    if kind != "ClusterWorkflowTemplate":
        metadata["namespace"] = NAMESPACE
    body = {"schedule": "0 * * * *", "workflowSpec": spec} if kind == "CronWorkflow" else spec
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": body}


def argo_template(place: str, security: KubeObject) -> KubeObject:
    hardened = {k: v for k, v in container("main").items() if k != "name"}
    risky = {**hardened, "securityContext": security}
    template: KubeObject = {"name": "main", "container": hardened}
    if place == "container":
        template["container"] = risky
    elif place == "script":
        del template["container"]
        template["script"] = {**risky, "source": "print(1)"}
    elif place == "containerSet":
        del template["container"]
        template["containerSet"] = {"containers": [{**hardened, "name": "a"}, {**risky, "name": "b"}]}
    else:
        template[place] = [{**risky, "name": "extra"}]
    return template


@VIEWS
@pytest.mark.parametrize("place", ARGO_PLACES)
@pytest.mark.parametrize("kind", ARGO_KINDS)
def test_argo_templates_are_judged_as_pods(
    tmp_path: Path, served: Callable[..., LiveClusterView], live: bool, kind: str, place: str
) -> None:
    risky = argo(kind, argo_template(place, dict(PRIVILEGED)), securityContext=dict(POD_SECURITY))
    view = open_view(tmp_path, served, live, deployment(), risky)
    failed = failures(run(workload.check_privileges, view))
    assert any(f.startswith(f"{kind}/extract (template main) ") and "privileged=true" in f for f in failed), (
        failed
    )
    hardened = argo(kind, argo_template(place, dict(CONTAINER_SECURITY)), securityContext=dict(POD_SECURITY))
    clean = open_view(tmp_path / "clean", served, live, deployment(), hardened)
    assert failures(run(workload.check_privileges, clean)) == []


ARGO_POD_FIELDS = [
    pytest.param(
        workload.check_non_root, {"securityContext": {"runAsUser": 0}}, "runAsUser=0", id="pod-user-0"
    ),
    pytest.param(workload.check_host_isolation, {"hostNetwork": True}, "hostNetwork=true", id="host-network"),
    pytest.param(
        workload.check_host_isolation, {"podSpecPatch": '{"hostPID": true}'}, "hostPID=true", id="patch-json"
    ),
    pytest.param(
        workload.check_privileges,
        {"podSpecPatch": "containers:\n- name: main\n  securityContext: {privileged: true}\n"},
        "privileged=true",
        id="patch-yaml-container",
    ),
    pytest.param(
        workload.check_privileges,
        {"templateDefaults": {"container": {"securityContext": {"privileged": True}}}},
        "privileged=true",
        id="template-defaults",
    ),
    pytest.param(
        workload.check_host_isolation,
        {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
        "hostPath /",
        id="workflow-volume",
    ),
]


@VIEWS
@pytest.mark.parametrize(("check", "fields", "finding"), ARGO_POD_FIELDS)
def test_argo_workflow_level_pod_fields_apply_to_every_template(
    tmp_path: Path,
    served: Callable[..., LiveClusterView],
    live: bool,
    check: Check,
    fields: KubeObject,
    finding: str,
) -> None:
    main: KubeObject = {k: v for k, v in container().items() if k != "name"}
    if "templateDefaults" in fields:
        del main["securityContext"]  # the defaults give the template its securityContext
    template = {"name": "main", "container": main}
    view = open_view(tmp_path, served, live, deployment(), argo("WorkflowTemplate", template, **fields))
    failed = failures(run(check, view))
    assert any(f.startswith("WorkflowTemplate/extract") and finding in f for f in failed), failed


def test_an_argo_pod_spec_patch_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    template = {"name": "main", "container": {"image": "public.ecr.aws/atlanhq/app@sha256:" + "a" * 64}}
    risky = argo("WorkflowTemplate", template, podSpecPatch='{"hostPID": {{inputs.parameters.x}}}')
    view = manifest_view(tmp_path, deployment(), risky)
    with pytest.raises(WorkloadShapeError, match=r"podSpecPatch .*not a readable pod spec patch"):
        run(workload.check_privileges, view)


# -- kind 4: kinds that hold containers the plugin does not read ------------------------------------

UNREAD = [
    pytest.param({"steps": [{"image": "busybox", "command": ["sh"]}]}, "spec.steps", id="steps"),
    pytest.param(
        {"runner": {"containers": [{"name": "x", "image": "busybox"}]}}, "spec.runner.containers", id="nested"
    ),
    pytest.param({"stages": [{"jobs": [{"image": "busybox"}]}]}, "spec.stages[0].jobs", id="in-list"),
]


@pytest.mark.parametrize(("spec", "where"), UNREAD)
def test_a_kind_holding_containers_that_is_not_read_is_never_a_plain_pass(
    tmp_path: Path, spec: KubeObject, where: str
) -> None:
    odd = {"apiVersion": "example.com/v1", "kind": "Runner", "metadata": {"name": "odd"}, "spec": spec}
    view = manifest_view(tmp_path, deployment(), odd)
    evidence = run(workload.check_privileges, view)
    parts = [o.name for o in evidence.unobserved_parts]
    assert parts == [f"workloads not judged: Runner/odd in namespace atlan-agent (example.com/v1) at {where}"]
    assert failures(evidence) == []


def test_a_kind_without_containers_is_not_named(tmp_path: Path) -> None:
    other = {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t"},
        "spec": {"x": [{"a": 1}]},
    }
    evidence = run(workload.check_privileges, manifest_view(tmp_path, deployment(), other))
    assert evidence.unobserved_parts == ()


# -- kind 5: a limit of zero is no limit ------------------------------------------------------------

LIMITS = [
    pytest.param({"cpu": "0", "memory": "0"}, False, id="zero-text"),
    pytest.param({"cpu": 0, "memory": 0}, False, id="zero-number"),
    pytest.param({"cpu": "0m", "memory": "0Gi"}, False, id="zero-suffix"),
    pytest.param({"cpu": "0.0", "memory": "0e3"}, False, id="zero-decimal"),
    pytest.param({"cpu": "1", "memory": "0Mi"}, False, id="memory-zero"),
    pytest.param({"cpu": "-1", "memory": "1Gi"}, False, id="negative"),
    pytest.param({"cpu": "", "memory": "lots"}, False, id="not-quantities"),
    pytest.param({"cpu": "100m", "memory": "128Mi"}, True, id="small"),
    pytest.param({"cpu": 2, "memory": "1e9"}, True, id="number-exponent"),
    pytest.param({"cpu": "0.5", "memory": "1G"}, True, id="decimal"),
]


@VIEWS
@pytest.mark.parametrize(("limits", "passes"), LIMITS)
def test_a_limit_of_zero_limits_nothing(
    tmp_path: Path, served: Callable[..., LiveClusterView], live: bool, limits: KubeObject, passes: bool
) -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = [container(resources={"limits": limits})]
    view = open_view(tmp_path, served, live, obj)
    failed = failures(run(workload.check_resource_limits, view))
    assert (not failed) is passes, failed


def test_a_limit_range_default_does_not_replace_a_zero_limit(tmp_path: Path) -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = [
        container(resources={"limits": {"cpu": "0", "memory": "0"}})
    ]
    limit_range = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "defaults", "namespace": NAMESPACE},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "1", "memory": "1Gi"}}]},
    }
    assert failures(run(workload.check_resource_limits, manifest_view(tmp_path, obj, limit_range)))


# -- kind 6: a token mounted by hand is a token -----------------------------------------------------

TOKEN_SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "type": "kubernetes.io/service-account-token",
    "metadata": {
        "name": "agent-token",
        "namespace": NAMESPACE,
        "annotations": {"kubernetes.io/service-account.name": "agent"},
    },
}
TOKEN_VOLUMES = [
    pytest.param(
        {"projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}},
        False,
        id="projected-token",
    ),
    pytest.param({"secret": {"secretName": "agent-token"}}, False, id="token-secret"),
    pytest.param(
        {"projected": {"sources": [{"secret": {"name": "agent-token"}}]}}, False, id="projected-secret"
    ),
    pytest.param(
        {"projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}]}}, True, id="ca-only"
    ),
    pytest.param({"secret": {"secretName": "other"}}, True, id="other-secret"),
]


@VIEWS
@pytest.mark.parametrize(("volume", "passes"), TOKEN_VOLUMES)
def test_a_token_volume_mounts_a_token_whatever_automount_says(
    tmp_path: Path, served: Callable[..., LiveClusterView], live: bool, volume: KubeObject, passes: bool
) -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["volumes"] = [{"name": "kube-api", **volume}]
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": NAMESPACE},
        "automountServiceAccountToken": False,
    }
    view = open_view(tmp_path, served, live, obj, account, copy.deepcopy(TOKEN_SECRET))
    failed = [f for f in failures(run(identity.check_service_accounts, view)) if "token automount" in f]
    assert (not failed) is passes, failed
    declared = failures(run(identity.check_service_accounts, view, api_access=["agent"]))
    assert not [f for f in declared if "token automount" in f]


# -- kind 7: engine socket folders however they are spelled -------------------------------------------

SOCKET_PATHS = [
    ("//var/run", True),
    ("///run//containerd/", True),
    ("/run/k3s/containerd", True),
    ("/run/k3s/containerd/containerd.sock", True),
    ("/var/run/k3s/containerd", True),
    ("/run/k3s", True),
    ("/run/rke2", True),
    ("/run/containerd", True),
    ("/var/run/crio", True),
    ("/run/podman", True),
    ("/run/user/1000/podman", True),
    ("/var/lib/docker", True),
    ("/var/lib/containerd", True),
    ("/var/lib/rancher/k3s/agent/containerd", True),
    ("/var/lib/rancher/rke2/agent/containerd", True),
    ("/var/run/cri-dockerd.sock", True),
    ("/var/log", False),
    ("/data/run", False),
    ("/var/lib/agent", False),
]


@VIEWS
@pytest.mark.parametrize(("path", "exposes"), SOCKET_PATHS)
def test_engine_socket_folders_in_every_spelling(
    tmp_path: Path, served: Callable[..., LiveClusterView], live: bool, path: str, exposes: bool
) -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["volumes"] = [{"name": "sock", "hostPath": {"path": path}}]
    view = open_view(tmp_path, served, live, obj)
    failed = failures(run(workload.check_socket_mounts, view))
    assert bool(failed) is exposes, failed
    host = failures(run(workload.check_host_isolation, view))
    assert bool(host) is not exposes, host  # a socket is SA-RUNTIME-004's finding, any other hostPath 009's
