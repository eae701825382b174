"""What counts as a workload, and where it runs: judged as the platform applies it, in both views.

Each fault kind is a matrix: every spelling of the namespace kubectl treats as absent,
every kind and API version that carries a pod template, every shape the API would refuse,
what controllers will run on a live cluster (not only the pods that exist now), and what
an image digest must look like to pin anything.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.host.engine.checks.supply import check_image_provenance
from pytest_secagent.host.engine.containers import parse_container
from pytest_secagent.host.engine.snapshot import AgentContainers
from pytest_secagent.kubernetes.checks import health, images, workload
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.kubernetes.workloads import WorkloadShapeError, pod_templates
from pytest_secagent.oci_reference import digest_problem, is_sha256_digest
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy.model import RegistriesSection
from tests.kubernetes.checkviews import (
    NAMESPACE,
    container,
    deployment,
    failures,
    manifest_view,
    policy,
)
from tests.kubernetes.conftest import ApiServerFactory

KubeObject = dict[str, Any]
Check = Callable[[KubernetesView, Any, Evidence], None]
PRIVILEGED = {"privileged": True, "allowPrivilegeEscalation": True, "capabilities": {"drop": ["ALL"]}}
DIGEST = "sha256:" + "a" * 64


@pytest.fixture
def served(k8s_apiserver_factory: ApiServerFactory) -> Iterator[Callable[..., LiveClusterView]]:
    """Serve objects from a test API server (as kubectl would apply them) and open a live view."""
    views: list[LiveClusterView] = []

    def opener(*objects: KubeObject) -> LiveClusterView:
        server = k8s_apiserver_factory(objects=objects, default_namespace=NAMESPACE)
        view = LiveClusterView.from_kubeconfig(str(server.kubeconfig_for("auditor")), timeout=5)
        views.append(view)
        return view

    yield opener
    for view in views:
        view.close()


def run(check: Check, view: KubernetesView) -> Evidence:
    evidence = Evidence()
    check(view, policy(), evidence)
    return evidence


def privileged_pod_spec(**extra: Any) -> KubeObject:
    """A pod spec with the host's network and a privileged container."""
    spec: KubeObject = deployment()["spec"]["template"]["spec"]
    spec["containers"] = [container(securityContext=dict(PRIVILEGED))]
    spec.update(hostNetwork=True, **extra)
    return spec


def workload_of(api_version: str, kind: str, name: str, pod_spec: KubeObject, **meta: Any) -> KubeObject:
    """An object of ``kind`` whose pod template (or job template) is ``pod_spec``."""
    labels = {"app": name}
    template = {"metadata": {"labels": labels}, "spec": copy.deepcopy(pod_spec)}
    if kind == "Pod":
        return {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": name, "labels": labels, **meta},
            "spec": copy.deepcopy(pod_spec),
        }
    spec: KubeObject = {"selector": {"matchLabels": labels}, "template": template}
    if kind in ("CronJob", "ScheduledRun"):
        spec = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}
    elif kind == "Job":
        template["spec"]["restartPolicy"] = "Never"
        spec = {"template": template}
    if kind == "ReplicationController":
        spec["selector"] = labels
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, **meta}, "spec": spec}


# -- kind 1: a namespace of null or "" is the install namespace ------------------------------------

NAMESPACE_SPELLINGS = [
    pytest.param({}, id="absent"),
    pytest.param({"namespace": None}, id="null"),
    pytest.param({"namespace": ""}, id="empty"),
]


@pytest.mark.parametrize("namespace", NAMESPACE_SPELLINGS)
@pytest.mark.parametrize("live", [False, True], ids=["manifests", "live"])
def test_a_null_or_empty_namespace_is_the_install_namespace(
    tmp_path: Path, served: Callable[..., LiveClusterView], namespace: dict[str, Any], live: bool
) -> None:
    risky = workload_of("apps/v1", "Deployment", "risky", privileged_pod_spec(), **namespace)
    hardened = deployment("agent")
    view = served(hardened, risky) if live else manifest_view(tmp_path, hardened, risky)
    failed = failures(run(workload.check_privileges, view))
    assert any(f.startswith("Deployment/risky container app: privileges") for f in failed)
    assert any("hostNetwork=true" in f for f in failures(run(workload.check_host_isolation, view)))


def test_a_namespace_that_is_not_a_string_is_refused(tmp_path: Path) -> None:
    risky = workload_of("apps/v1", "Deployment", "risky", privileged_pod_spec(), namespace=7)
    with pytest.raises(
        EvidenceUnavailable, match=r"Deployment/risky .*metadata.namespace is 7, not a string"
    ):
        manifest_view(tmp_path, deployment("agent"), risky)


def test_workloads_left_out_are_named_with_the_reason(tmp_path: Path) -> None:
    elsewhere = workload_of("apps/v1", "Deployment", "elsewhere", privileged_pod_spec(), namespace="other")
    stranger = workload_of("batch/v1", "CronJob", "stranger", privileged_pod_spec())
    view = manifest_view(tmp_path, deployment("agent", labels={"app": "agent"}), elsewhere, stranger)
    evidence = Evidence()
    workload.check_privileges(view, policy(selector={"app": "agent"}), evidence)
    notes = [o.actual for o in evidence.observations if o.name == "workloads not judged"]
    assert notes == [
        "in other namespaces, not the agent's: Deployment/elsewhere in other",
        "pod labels not matched by the agent selector: CronJob/stranger in namespace atlan-agent",
    ]
    assert failures(evidence) == []


# -- kind 2: every kind with a pod template is a workload ---------------------------------------

BUILTIN_WORKLOADS = [
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"),
    ("v1", "ReplicationController"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("v1", "Pod"),
    ("extensions/v1beta1", "Deployment"),
    ("extensions/v1beta1", "DaemonSet"),
    ("extensions/v1beta1", "ReplicaSet"),
    ("apps/v1beta1", "Deployment"),
    ("apps/v1beta1", "StatefulSet"),
    ("apps/v1beta2", "Deployment"),
    ("apps/v1beta2", "StatefulSet"),
    ("apps/v1beta2", "DaemonSet"),
    ("apps/v1beta2", "ReplicaSet"),
    ("batch/v1beta1", "CronJob"),
]
UNKNOWN_WORKLOADS = [("argoproj.io/v1alpha1", "Rollout"), ("example.com/v1", "ScheduledRun")]


@pytest.mark.parametrize(
    ("api_version", "kind", "live"),
    [(v, k, False) for v, k in BUILTIN_WORKLOADS + UNKNOWN_WORKLOADS]
    + [(v, k, True) for v, k in BUILTIN_WORKLOADS],
    ids=lambda value: (
        str(value).replace("/", "-") if not isinstance(value, bool) else ("live" if value else "files")
    ),
)
def test_every_kind_with_a_pod_template_is_judged(
    tmp_path: Path, served: Callable[..., LiveClusterView], api_version: str, kind: str, live: bool
) -> None:
    risky = workload_of(api_version, kind, "risky", privileged_pod_spec())
    clean = deployment("agent")
    view = served(clean, risky) if live else manifest_view(tmp_path, clean, risky)
    owner = kind
    privileges = failures(run(workload.check_privileges, view))
    host = failures(run(workload.check_host_isolation, view))
    assert any(f.startswith(f"{owner}/risky container app: privileges") for f in privileges)
    assert [f for f in host if "hostNetwork=true" in f] == [
        f"{owner}/risky in namespace atlan-agent: host access: hostNetwork=true"
    ]
    assert not any("agent" in f.split(" ")[0] for f in privileges + host), "the clean Deployment passes"


UNKNOWN_SHAPES = [
    pytest.param(
        {"kind": "Widget", "spec": {"template": "agent"}},
        r"spec.template is 'agent', not a pod template",
        id="template-text",
    ),
    pytest.param(
        {"kind": "Widget", "spec": {"template": {"spec": {"containers": "app"}}}},
        r"containers is 'app', not a non-empty list",
        id="containers-text",
    ),
    pytest.param(
        {"kind": "Widget", "spec": {"template": {"data": {"a": "b"}}}},
        r"the pod spec is None, not a mapping",
        id="template-without-pod",
    ),
    pytest.param(
        {"kind": "Widget", "spec": {"template": {"spec": {"containers": ["app"]}}}},
        r"containers\[0\] is 'app', not a mapping",
        id="container-text",
    ),
    pytest.param(
        {"kind": "Widget", "spec": {"jobTemplate": {"spec": {"template": []}}}},
        r"spec.jobTemplate.spec.template is \[\], not a pod template",
        id="job-template-list",
    ),
    pytest.param(
        {"kind": "Deployment", "apiVersion": "apps/v1", "spec": {}},
        r"spec.template is None",
        id="deployment-without-template",
    ),
    pytest.param(
        {"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"template": {"spec": {"containers": {}}}}},
        r"containers is \{\}",
        id="containers-mapping",
    ),
    pytest.param(
        {"kind": "Pod", "apiVersion": "v1", "spec": {"containers": []}},
        r"containers is \[\], not a non-empty list",
        id="pod-without-containers",
    ),
    pytest.param(
        {"kind": "Pod", "apiVersion": "v1", "spec": {"hostNetwork": "true", "containers": [{"name": "app"}]}},
        r"hostNetwork is 'true', not a boolean",
        id="boolean-as-text",
    ),
    pytest.param(
        {
            "kind": "Pod",
            "apiVersion": "v1",
            "spec": {"containers": [{"name": "app", "securityContext": {"privileged": "yes please"}}]},
        },
        r"container app.securityContext.privileged is 'yes please', not a boolean",
        id="privileged-as-text",
    ),
    pytest.param(
        {
            "kind": "Pod",
            "apiVersion": "v1",
            "spec": {"containers": [{"name": "app", "securityContext": {"capabilities": {"drop": "ALL"}}}]},
        },
        r"capabilities.drop is 'ALL', not a list of names",
        id="drop-as-text",
    ),
    pytest.param(
        {
            "kind": "Pod",
            "apiVersion": "v1",
            "spec": {"volumes": [{"name": "h", "hostPath": "/"}], "containers": [{"name": "app"}]},
        },
        r"volumes\[0\].hostPath is '/', not a mapping",
        id="host-path-as-text",
    ),
]


@pytest.mark.parametrize(("shape", "message"), UNKNOWN_SHAPES)
def test_an_unknown_shape_is_an_error_naming_the_object(
    tmp_path: Path, shape: KubeObject, message: str
) -> None:
    odd = {"apiVersion": "example.com/v1", "metadata": {"name": "odd"}, **shape}
    view = manifest_view(tmp_path, deployment("agent"), odd)
    for check in (workload.check_privileges, workload.check_non_root, images.check_image_sources):
        with pytest.raises(
            WorkloadShapeError, match=rf"{shape['kind']}/odd in namespace atlan-agent .*{message}"
        ):
            run(check, view)


def test_kinds_the_plugin_knows_that_run_nothing_are_not_workloads(tmp_path: Path) -> None:
    pod_template = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "t"},
        "template": {"spec": privileged_pod_spec()},
    }
    secret_template = {
        "apiVersion": "external-secrets.io/v1beta1",
        "kind": "ExternalSecret",
        "metadata": {"name": "s"},
        "spec": {"target": {"template": {"data": {}}}},
    }
    view = manifest_view(tmp_path, deployment("agent"), pod_template, secret_template)
    assert [str(t.owner) for t in pod_templates(view)] == ["Deployment/agent in namespace atlan-agent"]


# -- kind 3: a live cluster is judged by what its controllers will run ----------------------------


def test_a_privileged_cronjob_between_runs_fails_live_as_in_the_files(
    tmp_path: Path, served: Callable[..., LiveClusterView]
) -> None:
    cronjob = workload_of("batch/v1", "CronJob", "agent-sync", privileged_pod_spec())
    cronjob["spec"]["suspend"] = True  # no Job and no pod exist
    for view in (served(deployment("agent"), cronjob), manifest_view(tmp_path, deployment("agent"), cronjob)):
        failed = failures(run(workload.check_privileges, view))
        assert any(f.startswith("CronJob/agent-sync container app") for f in failed), view


def test_a_running_cronjob_is_named_not_its_job(served: Callable[..., LiveClusterView]) -> None:
    view = served(
        deployment("agent"), workload_of("batch/v1", "CronJob", "agent-sync", privileged_pod_spec())
    )
    failed = failures(run(workload.check_host_isolation, view))
    assert failed == ["CronJob/agent-sync in namespace atlan-agent: host access: hostNetwork=true"]
    (cron,) = [t for t in pod_templates(view, NAMESPACE) if t.owner.kind == "CronJob"]
    assert [p.rsplit("-", 1)[0] for p in cron.pods] == ["agent-sync-28619760"]


@pytest.mark.parametrize("replicas", [0, 2])
def test_a_workload_without_running_pods_is_judged_live(
    served: Callable[..., LiveClusterView], replicas: int
) -> None:
    risky = workload_of("apps/v1", "StatefulSet", "risky", privileged_pod_spec())
    risky["spec"]["replicas"] = replicas
    view = served(deployment("agent"), risky)
    assert any(
        f.startswith("StatefulSet/risky in namespace atlan-agent")
        for f in failures(run(workload.check_privileges, view))
    )


def _owned_pod(name: str, owner: KubeObject, spec: KubeObject, labels: dict[str, str]) -> KubeObject:
    reference = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": f"uid-{owner['metadata']['name']}",
        "controller": True,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "ownerReferences": [reference]},
        "spec": copy.deepcopy(spec),
    }


@pytest.mark.parametrize(
    "mutation",
    [
        pytest.param(
            {"containers": [container(securityContext=dict(PRIVILEGED))]}, id="privileged-container"
        ),
        pytest.param(
            {"initContainers": [container("istio-init", securityContext=dict(PRIVILEGED))]},
            id="injected-init",
        ),
    ],
)
def test_a_pod_that_differs_from_its_template_is_judged_too(
    served: Callable[..., LiveClusterView], mutation: KubeObject
) -> None:
    agent = deployment("agent")
    template_spec = agent["spec"]["template"]["spec"]
    labels = agent["spec"]["template"]["metadata"]["labels"]
    replica_set = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "agent-5d8f7",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "agent",
                    "uid": "u",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": copy.deepcopy(agent["spec"]["template"]),
        },
    }
    same = _owned_pod("agent-5d8f7-aaaaa", replica_set, template_spec, labels)
    mutated = _owned_pod("agent-5d8f7-bbbbb", replica_set, {**template_spec, **mutation}, labels)
    view = served(agent, replica_set, same, mutated)
    by_owner = {str(t.owner): t.pods for t in pod_templates(view, NAMESPACE)}
    assert by_owner == {
        "Deployment/agent in namespace atlan-agent": ("agent-5d8f7-aaaaa",),
        "Deployment/agent in namespace atlan-agent (running pods differ from its template)": (
            "agent-5d8f7-bbbbb",
        ),
    }
    failed = failures(run(workload.check_privileges, view))
    assert failed
    assert all("Deployment/agent" in f for f in failed)


def test_the_limit_range_fills_the_limits_of_templates_live(served: Callable[..., LiveClusterView]) -> None:
    unlimited = deployment("agent", containers=[container(resources={})])
    limit_range = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "defaults"},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "1", "memory": "1Gi"}}]},
    }
    assert failures(run(workload.check_resource_limits, served(unlimited))) != []
    assert failures(run(workload.check_resource_limits, served(unlimited, limit_range))) == []


def test_a_controller_that_asks_for_pods_and_runs_none_is_not_healthy(
    served: Callable[..., LiveClusterView],
) -> None:
    probed = container(livenessProbe={"httpGet": {"port": 8000}}, readinessProbe={"httpGet": {"port": 8000}})
    agent = deployment("agent", containers=[probed])
    stuck = {  # the rollout's ReplicaSet was scaled to zero: nothing runs
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "agent-5d8f7",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "agent",
                    "uid": "u",
                    "controller": True,
                }
            ],
        },
        "spec": {"replicas": 0, "template": copy.deepcopy(agent["spec"]["template"])},
    }
    assert failures(run(health.check_probes, served(agent, stuck))) == [
        "Deployment/agent in namespace atlan-agent: running pods: none running"
    ]
    unschedulable = copy.deepcopy(agent)
    unschedulable["spec"]["template"]["spec"]["nodeSelector"] = {"pool": "nowhere"}
    failed = failures(run(health.check_probes, served(unschedulable)))
    assert failed
    assert all(f.endswith("health: not Ready, 0 recent restarts") for f in failed), failed


def test_a_null_host_path_is_an_empty_dir(tmp_path: Path) -> None:
    view = manifest_view(tmp_path, deployment("agent", volumes=[{"name": "scratch", "hostPath": None}]))
    assert failures(run(workload.check_host_isolation, view)) == []
    assert failures(run(workload.check_privileges, view)) == []
    assert failures(run(workload.check_socket_mounts, view)) == []


# -- kind 4: a digest pins only when it is sha256 and 64 lower-case hex digits -------------------

DIGESTS = [
    pytest.param(DIGEST, True, id="complete"),
    pytest.param("sha256:abc", False, id="short"),
    pytest.param("sha256:" + "a" * 63, False, id="63-digits"),
    pytest.param("sha256:" + "a" * 65, False, id="65-digits"),
    pytest.param("sha256:" + "A" * 64, False, id="upper-case"),
    pytest.param("sha256:" + "g" * 64, False, id="not-hex"),
    pytest.param("SHA256:" + "a" * 64, False, id="upper-case-algorithm"),
    pytest.param("sha512:" + "a" * 128, False, id="sha512"),
    pytest.param("sha256:", False, id="empty"),
    pytest.param(" sha256:" + "a" * 64, False, id="leading-space"),
]


@pytest.mark.parametrize(("digest", "pins"), DIGESTS)
def test_digest_parser(digest: str, pins: bool) -> None:
    assert is_sha256_digest(digest) is pins
    assert (digest_problem(digest) is None) is pins


@pytest.mark.parametrize(("digest", "pins"), DIGESTS)
def test_only_a_complete_digest_pins_a_kubernetes_image(tmp_path: Path, digest: str, pins: bool) -> None:
    image = f"public.ecr.aws/atlanhq/app@{digest}"
    view = manifest_view(tmp_path, deployment("agent", containers=[container(image=image)]))
    failed = failures(run(images.check_image_sources, view))
    assert (failed == []) is pins, failed
    if not pins:
        assert "not pinned by @sha256 digest" in failed[0]


@pytest.mark.parametrize(("digest", "pins"), DIGESTS)
def test_only_a_complete_digest_pins_an_engine_image(digest: str, pins: bool) -> None:
    facts = parse_container(
        {"Id": "c1", "Name": "/agent", "Config": {"Image": f"docker.io/atlanhq/agent@{digest}"}}
    )
    agents = AgentContainers(selector="name=agent", declared=True, found=(facts,), missing=())
    evidence = Evidence()
    check_image_provenance(
        agents, RegistriesSection(allowed=["docker.io/atlanhq"], require_digest=True), evidence
    )
    assert (not evidence.failures) is pins, evidence.summary()


def test_a_registry_host_in_other_letter_case_is_the_same_registry(tmp_path: Path) -> None:
    image = f"PUBLIC.ECR.AWS/atlanhq/app@{DIGEST}"
    view = manifest_view(tmp_path, deployment("agent", containers=[container(image=image)]))
    assert failures(run(images.check_image_sources, view)) == []
