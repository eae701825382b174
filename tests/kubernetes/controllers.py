"""What the controller manager, scheduler, kubelet and admission would have done by now.

So that a scenario written as workloads (Deployments, DaemonSets...) lists like a real
cluster: Pods exist, owned through the real chain (Deployment -> ReplicaSet -> Pod,
CronJob -> Job -> Pod), with the real naming and labels, scheduled on nodes, running and
ready, carrying the defaults and the service-account token volume the API server adds.

A workload gets no pods when the scenario already holds pods it owns, when its
``spec.replicas`` is 0, when it is a suspended CronJob or Job (``spec.suspend: true``: a
CronJob between runs), or when ``apiserver.cfg`` says ``pods = false``. A DaemonSet whose
``status.numberReady`` is set has only that many ready pods. ReplicationControllers
create their pods directly, as the replication manager does.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from typing import Any

from tests.kubernetes.cluster import FakeCluster

KubeObject = dict[str, Any]

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"  # noqa: S105 - a path, not a secret
DEFAULT_RUNTIME = "containerd://1.7.20"


def _hash(text: str, length: int) -> str:
    digest = int(hashlib.sha256(text.encode()).hexdigest(), 16)
    chars = []
    for _ in range(length):
        digest, index = divmod(digest, len(_SAFE_ALPHABET))
        chars.append(_SAFE_ALPHABET[index])
    return "".join(chars)


def _owner_reference(api_version: str, obj: KubeObject) -> KubeObject:
    return {
        "apiVersion": api_version,
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def default_pod_spec(spec: KubeObject) -> KubeObject:
    """A pod spec with the fields the API server defaults (a spec of another shape is kept as it is)."""
    if not isinstance(spec, dict):
        return copy.deepcopy(spec)
    spec = copy.deepcopy(spec)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    for key in ("initContainers", "containers"):
        items = spec.get(key)
        for container in items if isinstance(items, list) else []:
            if not isinstance(container, dict):
                continue
            image = str(container.get("image", ""))
            tag = image.rsplit("/", 1)[-1]
            untagged_or_latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
            container.setdefault("imagePullPolicy", "Always" if untagged_or_latest else "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
    return spec


def _admit_pod(cluster: FakeCluster, pod: KubeObject) -> None:
    """Service-account admission: default account and its projected token volume."""
    spec = pod["spec"]
    if not isinstance(spec, dict) or not isinstance(spec.get("volumes") or [], list):
        return
    namespace = pod["metadata"]["namespace"]
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = spec["serviceAccount"] = account
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        service_account = cluster.get("", "serviceaccounts", namespace, account) or {}
        automount = service_account.get("automountServiceAccountToken", True)
    if not automount:
        return
    volume_name = f"kube-api-access-{_hash(pod['metadata']['name'], 5)}"
    if spec.get("volumes") is None:
        spec["volumes"] = []
    spec["volumes"].append(
        {
            "name": volume_name,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {
                                        "apiVersion": "v1",
                                        "fieldPath": "metadata.namespace",
                                    },
                                }
                            ]
                        }
                    },
                ],
            },
        }
    )
    for key in ("initContainers", "containers"):
        items = spec.get(key)
        for container in items if isinstance(items, list) else []:
            if not isinstance(container, dict) or not isinstance(container.get("volumeMounts", []), list):
                continue
            mounts = container.setdefault("volumeMounts", [])
            if not any(mount.get("mountPath") == TOKEN_MOUNT for mount in mounts):
                mounts.append({"name": volume_name, "mountPath": TOKEN_MOUNT, "readOnly": True})


def _pod_status(pod: KubeObject, node: KubeObject | None, ready: bool, index: int) -> KubeObject:
    spec = pod["spec"]
    host_ip = ""
    if node is not None:
        addresses = (node.get("status") or {}).get("addresses") or []
        host_ip = next((a["address"] for a in addresses if a.get("type") == "InternalIP"), "")
    if node is None:  # no node fits: the scheduler leaves the pod pending
        return {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
            "qosClass": "BestEffort",
        }
    state = {"running": {"startedAt": pod["metadata"]["creationTimestamp"]}}
    flag = "True" if ready else "False"
    return {
        "phase": "Running",
        "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": flag},
            {"type": "ContainersReady", "status": flag},
            {"type": "PodScheduled", "status": "True"},
        ],
        "hostIP": host_ip,
        "podIP": f"10.244.{index // 250}.{index % 250 + 2}",
        "startTime": pod["metadata"]["creationTimestamp"],
        "qosClass": "BestEffort",
        "containerStatuses": [
            {
                "name": container.get("name", ""),
                "image": str(container.get("image") or ""),
                "imageID": f"{container.get('image') or ''}@sha256:{_hash(str(container.get('image') or ''), 20)}",
                "ready": ready,
                "started": ready,
                "restartCount": 0,
                "state": state,
            }
            for container in spec.get("containers") or []
        ],
    }


class _Scheduler:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.nodes = cluster.objects("", "nodes")
        self.next = 0
        self.pod_index = 0

    def eligible(self, spec: KubeObject) -> list[KubeObject]:
        selector = spec.get("nodeSelector") or {}
        return [
            node
            for node in self.nodes
            if all((node["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
        ]

    def pick(self, spec: KubeObject) -> KubeObject | None:
        nodes = self.eligible(spec)
        if not nodes:
            return None
        node = nodes[self.next % len(nodes)]
        self.next += 1
        return node

    def create_pod(
        self,
        name: str,
        namespace: str,
        template: KubeObject,
        owner: KubeObject,
        owner_api_version: str,
        extra_labels: dict[str, str],
        *,
        node: KubeObject | None = None,
        ready: bool = True,
    ) -> None:
        if not isinstance(template, dict) or not isinstance(template.get("spec") or {}, dict):
            return  # the API server would have refused the workload: it runs nothing
        metadata = copy.deepcopy(template.get("metadata") or {})
        labels = {**(metadata.get("labels") or {}), **extra_labels}
        spec = default_pod_spec(template.get("spec") or {})
        if node is None:
            node = self.pick(spec)
        if node is not None:
            spec["nodeName"] = node["metadata"]["name"]
        pod: KubeObject = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                **metadata,
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": [_owner_reference(owner_api_version, owner)],
                "creationTimestamp": owner["metadata"]["creationTimestamp"],
            },
            "spec": spec,
        }
        _admit_pod(self.cluster, pod)
        pod["status"] = _pod_status(pod, node, ready, self.pod_index)
        self.pod_index += 1
        self.cluster.add(pod)


def _ensure_nodes(cluster: FakeCluster) -> None:
    if cluster.objects("", "nodes"):
        for node in cluster.objects("", "nodes"):
            _complete_node(cluster, node)
        return
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "node-1",
            "labels": {
                "kubernetes.io/hostname": "node-1",
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
    }
    _complete_node(cluster, cluster.add(node))


def _complete_node(cluster: FakeCluster, node: KubeObject) -> None:
    status = node.setdefault("status", {})
    info = status.setdefault("nodeInfo", {})
    info.setdefault("kubeletVersion", cluster.config.version)
    info.setdefault("kubeProxyVersion", cluster.config.version)
    info.setdefault("containerRuntimeVersion", DEFAULT_RUNTIME)
    info.setdefault("operatingSystem", "linux")
    info.setdefault("architecture", "amd64")
    info.setdefault("osImage", "Debian GNU/Linux 12 (bookworm)")
    info.setdefault("kernelVersion", "6.1.0-21-amd64")
    name = str(node["metadata"]["name"])
    info.setdefault("machineID", _hash(f"machine-{name}", 32))
    info.setdefault("systemUUID", str(uuid.uuid5(uuid.NAMESPACE_DNS, f"system.{name}")))
    info.setdefault("bootID", str(uuid.uuid5(uuid.NAMESPACE_DNS, f"boot.{name}")))
    status.setdefault("conditions", [{"type": "Ready", "status": "True", "reason": "KubeletReady"}])
    index = cluster.objects("", "nodes").index(node) if node in cluster.objects("", "nodes") else 0
    status.setdefault("addresses", [{"type": "InternalIP", "address": f"192.168.0.{index + 10}"}])


def _owned_names(cluster: FakeCluster) -> set[tuple[str, str, str]]:
    """(namespace, owner kind, owner name) of every pod and ReplicaSet/Job the scenario has."""
    owned = set()
    for group, plural in (("", "pods"), ("apps", "replicasets"), ("batch", "jobs")):
        for obj in cluster.objects(group, plural):
            for reference in obj["metadata"].get("ownerReferences") or []:
                owned.add((obj["metadata"]["namespace"], reference.get("kind"), reference.get("name")))
    return owned


def _replicas(obj: KubeObject) -> int:
    value = (obj.get("spec") or {}).get("replicas", 1)
    return int(value) if value is not None else 1


def _template_hash(template: KubeObject) -> str:
    import json

    return _hash(json.dumps(template, sort_keys=True), 10)


def run_controllers(cluster: FakeCluster) -> None:
    """Create the pods (and ReplicaSets, Jobs) the workloads of the scenario would have."""
    _ensure_nodes(cluster)
    scheduler = _Scheduler(cluster)
    owned = _owned_names(cluster)
    for workload in cluster.objects("apps", "deployments"):
        _deployment(cluster, scheduler, workload, owned)
    for workload in cluster.objects("apps", "statefulsets"):
        _statefulset(cluster, scheduler, workload, owned)
    for workload in cluster.objects("apps", "daemonsets"):
        _daemonset(cluster, scheduler, workload, owned)
    for workload in cluster.objects("batch", "cronjobs"):
        _cronjob(cluster, workload, owned)
    for workload in cluster.objects("apps", "replicasets"):
        _replicaset(cluster, scheduler, workload, owned)
    for workload in cluster.objects("", "replicationcontrollers"):
        _replication_controller(cluster, scheduler, workload, owned)
    for workload in cluster.objects("batch", "jobs"):
        _job(cluster, scheduler, workload, owned)
    for pod in cluster.objects("", "pods"):
        if "status" not in pod:
            _bare_pod(cluster, scheduler, pod)


def _spawns(cluster: FakeCluster, workload: KubeObject, owned: set[tuple[str, str, str]]) -> bool:
    metadata = workload["metadata"]
    return cluster.config.pods and (metadata["namespace"], workload["kind"], metadata["name"]) not in owned


def _deployment(
    cluster: FakeCluster, scheduler: _Scheduler, deployment: KubeObject, owned: set[tuple[str, str, str]]
) -> None:
    spec = deployment.setdefault("spec", {})
    template = spec.get("template") or {}
    spec["template"] = {**template, "spec": default_pod_spec(template.get("spec") or {})}
    replicas = _replicas(deployment)
    deployment.setdefault(
        "status",
        {
            "observedGeneration": 1,
            "replicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "updatedReplicas": replicas,
        },
    )
    if not _spawns(cluster, deployment, owned):
        return
    pod_hash = _template_hash(template)
    namespace = deployment["metadata"]["namespace"]
    labels = {**((template.get("metadata") or {}).get("labels") or {}), "pod-template-hash": pod_hash}
    replica_set = cluster.add(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{deployment['metadata']['name']}-{pod_hash}",
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": [_owner_reference("apps/v1", deployment)],
                "creationTimestamp": deployment["metadata"]["creationTimestamp"],
            },
            "spec": {
                "replicas": replicas,
                "selector": {
                    "matchLabels": {
                        **((spec.get("selector") or {}).get("matchLabels") or {}),
                        "pod-template-hash": pod_hash,
                    }
                },
                "template": {
                    "metadata": {**(template.get("metadata") or {}), "labels": labels},
                    "spec": spec["template"]["spec"],
                },
            },
            "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas},
        }
    )
    owned.add((namespace, "ReplicaSet", replica_set["metadata"]["name"]))
    for index in range(replicas):
        name = f"{replica_set['metadata']['name']}-{_hash(replica_set['metadata']['name'] + str(index), 5)}"
        scheduler.create_pod(
            name, namespace, template, replica_set, "apps/v1", {"pod-template-hash": pod_hash}
        )


def _replicaset(
    cluster: FakeCluster, scheduler: _Scheduler, replica_set: KubeObject, owned: set[tuple[str, str, str]]
) -> None:
    if not _spawns(cluster, replica_set, owned):
        return
    template = (replica_set.get("spec") or {}).get("template") or {}
    for index in range(_replicas(replica_set)):
        name = f"{replica_set['metadata']['name']}-{_hash(replica_set['metadata']['name'] + str(index), 5)}"
        scheduler.create_pod(name, replica_set["metadata"]["namespace"], template, replica_set, "apps/v1", {})


def _replication_controller(
    cluster: FakeCluster, scheduler: _Scheduler, controller: KubeObject, owned: set[tuple[str, str, str]]
) -> None:
    replicas = _replicas(controller)
    controller.setdefault("status", {"replicas": replicas, "readyReplicas": replicas})
    if not _spawns(cluster, controller, owned):
        return
    template = (controller.get("spec") or {}).get("template") or {}
    name = controller["metadata"]["name"]
    for index in range(replicas):
        scheduler.create_pod(
            f"{name}-{_hash(name + str(index), 5)}",
            controller["metadata"]["namespace"],
            template,
            controller,
            "v1",
            {},
        )


def _statefulset(
    cluster: FakeCluster, scheduler: _Scheduler, statefulset: KubeObject, owned: set[tuple[str, str, str]]
) -> None:
    spec = statefulset.setdefault("spec", {})
    template = spec.get("template") or {}
    replicas = _replicas(statefulset)
    statefulset.setdefault(
        "status",
        {
            "observedGeneration": 1,
            "replicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        },
    )
    if not _spawns(cluster, statefulset, owned):
        return
    name = statefulset["metadata"]["name"]
    revision = f"{name}-{_template_hash(template)}"
    for index in range(replicas):
        scheduler.create_pod(
            f"{name}-{index}",
            statefulset["metadata"]["namespace"],
            template,
            statefulset,
            "apps/v1",
            {
                "controller-revision-hash": revision,
                "statefulset.kubernetes.io/pod-name": f"{name}-{index}",
                "apps.kubernetes.io/pod-index": str(index),
            },
        )


def _daemonset(
    cluster: FakeCluster, scheduler: _Scheduler, daemonset: KubeObject, owned: set[tuple[str, str, str]]
) -> None:
    spec = daemonset.setdefault("spec", {})
    template = spec.get("template") or {}
    nodes = scheduler.eligible(template.get("spec") or {})
    given = daemonset.get("status") or {}
    ready_count = int(given.get("numberReady", len(nodes)))
    status = {
        "desiredNumberScheduled": len(nodes),
        "currentNumberScheduled": len(nodes),
        "numberMisscheduled": 0,
        "numberReady": ready_count,
        "numberAvailable": ready_count,
        "updatedNumberScheduled": len(nodes),
        "observedGeneration": 1,
    }
    daemonset["status"] = {**status, **given}
    if not _spawns(cluster, daemonset, owned):
        return
    name = daemonset["metadata"]["name"]
    revision = _template_hash(template)
    for index, node in enumerate(nodes):
        scheduler.create_pod(
            f"{name}-{_hash(name + node['metadata']['name'], 5)}",
            daemonset["metadata"]["namespace"],
            template,
            daemonset,
            "apps/v1",
            {"controller-revision-hash": revision, "pod-template-generation": "1"},
            node=node,
            ready=index < ready_count,
        )


def _cronjob(cluster: FakeCluster, cronjob: KubeObject, owned: set[tuple[str, str, str]]) -> None:
    if not _spawns(cluster, cronjob, owned) or (cronjob.get("spec") or {}).get("suspend") is True:
        return
    job_template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    namespace = cronjob["metadata"]["namespace"]
    job = cluster.add(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                **copy.deepcopy(job_template.get("metadata") or {}),
                "name": f"{cronjob['metadata']['name']}-28619760",
                "namespace": namespace,
                "ownerReferences": [_owner_reference("batch/v1", cronjob)],
                "creationTimestamp": cronjob["metadata"]["creationTimestamp"],
            },
            "spec": copy.deepcopy(job_template.get("spec") or {}),
        }
    )
    del job  # the Job loop below creates its pod


def _job(
    cluster: FakeCluster, scheduler: _Scheduler, job: KubeObject, owned: set[tuple[str, str, str]]
) -> None:
    spec = job.setdefault("spec", {})
    template = spec.get("template") or {}
    if spec.get("suspend") is True:
        job.setdefault("status", {})
        return
    job.setdefault("status", {"active": 1, "startTime": job["metadata"]["creationTimestamp"]})
    if not _spawns(cluster, job, owned):
        return
    name = job["metadata"]["name"]
    uid = job["metadata"]["uid"]
    scheduler.create_pod(
        f"{name}-{_hash(name, 5)}",
        job["metadata"]["namespace"],
        template,
        job,
        "batch/v1",
        {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        },
    )


def _bare_pod(cluster: FakeCluster, scheduler: _Scheduler, pod: KubeObject) -> None:
    pod["spec"] = default_pod_spec(pod.get("spec") or {})
    if not isinstance(pod["spec"], dict):
        return
    node = None
    if pod["spec"].get("nodeName"):
        node = cluster.get("", "nodes", "", pod["spec"]["nodeName"])
    else:
        node = scheduler.pick(pod["spec"])
        if node is not None:
            pod["spec"]["nodeName"] = node["metadata"]["name"]
    _admit_pod(cluster, pod)
    pod["status"] = _pod_status(pod, node, True, scheduler.pod_index)
    scheduler.pod_index += 1
