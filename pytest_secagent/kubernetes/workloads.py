"""Pod specs and containers, the same way on a live cluster and on rendered manifests.

Both views judge what the controllers will run: the pod templates of Deployments,
StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs (in any
API version, legacy groups included), of any other object that carries a pod template in
``spec.template`` or a job template in ``spec.jobTemplate``, bare Pods, and the pods Argo
Workflows, WorkflowTemplates, ClusterWorkflowTemplates and CronWorkflows run (one pod spec
per template that runs a container, built as the workflow controller builds it).

A field written as ``null`` is absent, as the API reads it: a container's
``runAsGroup: null`` leaves the pod's value in force.

A live cluster also shows what runs now. A Pod is folded into the template of the
controller at the top of its owner chain (a CronJob, not ``Job/agent-sync-28619760``) when
its spec is the template's spec plus what the platform adds to every pod (defaults, the
service-account token volume, the node it runs on); a Pod that differs (edited, or
changed by a mutating admission webhook) is judged on its own, named after that
controller. A check iterates :func:`pod_templates` and :func:`containers` and never cares
which view it has.

A pod template of a shape the API would not accept (``containers`` that is not a list,
a boolean field holding a string...) is an error naming the object, never a skip.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import yaml

from pytest_secagent.detection import credential_kinds
from pytest_secagent.kubernetes.resources import (
    ARGO_CLUSTER_WORKFLOW_TEMPLATES,
    ARGO_CRON_WORKFLOWS,
    ARGO_WORKFLOW_TEMPLATES,
    ARGO_WORKFLOWS,
    BUILTIN_KINDS,
    CRON_JOBS,
    DAEMON_SETS,
    DEPLOYMENTS,
    JOBS,
    PODS,
    REPLICA_SETS,
    REPLICATION_CONTROLLERS,
    STATEFUL_SETS,
    current_group,
)
from pytest_secagent.kubernetes.shapes import describe_value
from pytest_secagent.kubernetes.view import KubernetesView, Resource, ResourceNotServed
from pytest_secagent.outcomes import EvidenceUnavailable

if TYPE_CHECKING:
    from pytest_secagent.policy.model import Policy

__all__ = [
    "ContainerKind",
    "Owner",
    "PodTemplate",
    "WorkloadShapeError",
    "agent_pod_templates",
    "containers",
    "describe_object",
    "label_selector_matches",
    "labels_match",
    "out_of_scope",
    "pod_spec_problems",
    "pod_specs_of",
    "pod_template_of",
    "pod_templates",
    "unread_workloads",
]

KubeObject = dict[str, Any]
ContainerKind = Literal["initContainer", "container", "ephemeralContainer"]

_CONTAINER_FIELDS: tuple[tuple[str, ContainerKind], ...] = (
    ("initContainers", "initContainer"),
    ("containers", "container"),
    ("ephemeralContainers", "ephemeralContainer"),
)

_TEMPLATE = ("spec", "template")
_JOB_TEMPLATE = ("spec", "jobTemplate", "spec", "template")

# Where each built-in workload kind keeps its pod template: (current API group, kind).
# Legacy groups (extensions, apps/v1beta1, apps/v1beta2, batch/v1beta1) map to these.
_TEMPLATE_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "Deployment"): _TEMPLATE,
    ("apps", "StatefulSet"): _TEMPLATE,
    ("apps", "DaemonSet"): _TEMPLATE,
    ("apps", "ReplicaSet"): _TEMPLATE,
    ("", "ReplicationController"): _TEMPLATE,
    ("batch", "Job"): _TEMPLATE,
    ("batch", "CronJob"): _JOB_TEMPLATE,
}
_KIND_ORDER = (
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
)

# What a live cluster is asked for: one paginated list per kind and namespace.
_LIVE_CONTROLLERS: tuple[tuple[Resource, str], ...] = (
    (DEPLOYMENTS, "Deployment"),
    (STATEFUL_SETS, "StatefulSet"),
    (DAEMON_SETS, "DaemonSet"),
    (REPLICA_SETS, "ReplicaSet"),
    (REPLICATION_CONTROLLERS, "ReplicationController"),
    (JOBS, "Job"),
    (CRON_JOBS, "CronJob"),
)

# Fields the scheduler and kubelet fill in per pod; replicas differ only in these.
_PER_POD_SPEC_FIELDS = frozenset({"nodeName", "hostname", "subdomain", "serviceAccount"})

# Values the API server defaults on every pod (and admission on every Pod): a pod that
# differs from its template only by these runs what the template says.
_POD_DEFAULTS: Mapping[str, Any] = {
    "restartPolicy": "Always",
    "dnsPolicy": "ClusterFirst",
    "schedulerName": "default-scheduler",
    "terminationGracePeriodSeconds": 30,
    "enableServiceLinks": True,
    "priority": 0,
    "preemptionPolicy": "PreemptLowerPriority",
    "serviceAccountName": "default",
}
_CONTAINER_DEFAULTS: Mapping[str, Any] = {
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
}
_DEFAULT_TOLERATIONS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})
_TOKEN_VOLUME_PREFIX = "kube-api-access-"  # noqa: S105 - a volume name, not a secret
_TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"  # noqa: S105 - a path, not a secret


class WorkloadShapeError(EvidenceUnavailable):
    """An object's pod template is not of a shape the API accepts, so it cannot be judged."""


@dataclass(frozen=True)
class Owner:
    """The workload a pod spec belongs to: its kind, name and namespace.

    ``note`` says when the spec is not the workload's template itself (a running pod that
    differs from it, or a child controller with another template).
    """

    kind: str
    name: str
    namespace: str | None
    note: str = ""

    def __str__(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        note = f" ({self.note})" if self.note else ""
        return f"{self.kind}/{self.name}{where}{note}"


@dataclass(frozen=True)
class PodTemplate:
    """One pod spec with its owner.

    ``metadata`` is the pod's (or template's) metadata: labels and annotations.
    ``source`` is the object it was read from (the workload, or the first live Pod of a
    spec that differs from its template). On a live cluster ``pods`` and ``nodes`` name
    every pod running this spec and the nodes they run on, and ``running`` holds those
    Pod objects (their status); for manifests all three are empty.
    """

    owner: Owner
    metadata: KubeObject
    spec: KubeObject
    source: KubeObject
    pods: tuple[str, ...] = field(default=())
    nodes: tuple[str, ...] = field(default=())
    running: tuple[KubeObject, ...] = field(default=())

    @property
    def namespace(self) -> str | None:
        """The namespace the pods run (or would run) in."""
        return self.owner.namespace

    @property
    def labels(self) -> dict[str, str]:
        """The pod labels."""
        labels: dict[str, str] = self.metadata.get("labels") or {}
        return labels

    @property
    def service_account(self) -> str:
        """The pod's service account name (``default`` when the spec names none)."""
        name = self.spec.get("serviceAccountName") or self.spec.get("serviceAccount")
        return str(name) if name else "default"


def labels_match(labels: Mapping[str, str] | None, selector: Mapping[str, str] | None) -> bool:
    """Tell whether ``labels`` carry every ``key: value`` of an equality ``selector``.

    An empty or missing selector matches everything.
    """
    if not selector:
        return True
    have = labels or {}
    return all(have.get(key) == value for key, value in selector.items())


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Tell whether a ``LabelSelector`` (matchLabels, matchExpressions) selects ``labels``.

    As in the API, an empty selector ``{}`` selects everything; ``None`` selects nothing
    (a field that is absent selects no objects).
    """
    if selector is None:
        return False
    have = labels or {}
    if not labels_match(have, selector.get("matchLabels") or {}):
        return False
    for expression in selector.get("matchExpressions") or []:
        key = expression.get("key", "")
        operator = expression.get("operator", "")
        values = expression.get("values") or []
        if operator == "In" and have.get(key) not in values:
            return False
        if operator == "NotIn" and key in have and have[key] in values:
            return False
        if operator == "Exists" and key not in have:
            return False
        if operator == "DoesNotExist" and key in have:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def containers(pod_spec: Mapping[str, Any]) -> Iterator[tuple[ContainerKind, KubeObject]]:
    """Yield every container of a pod spec, init and ephemeral containers included.

    Yields ``(kind, container)`` with kind ``initContainer``, ``container`` or
    ``ephemeralContainer``, init containers first.
    """
    for key, kind in _CONTAINER_FIELDS:
        for container in pod_spec.get(key) or []:
            yield kind, container


# -- the shape of a pod spec ---------------------------------------------------------------

_BOOLEAN = "a boolean"
_INTEGER = "an integer"
_STRING = "a string"
_MAPPING = "a mapping"
_LIST = "a list"

_POD_FIELDS: Mapping[str, str] = {
    "hostNetwork": _BOOLEAN,
    "hostPID": _BOOLEAN,
    "hostIPC": _BOOLEAN,
    "hostUsers": _BOOLEAN,
    "automountServiceAccountToken": _BOOLEAN,
    "serviceAccountName": _STRING,
    "serviceAccount": _STRING,
    "securityContext": _MAPPING,
    "resources": _MAPPING,
    "volumes": _LIST,
    "initContainers": _LIST,
    "ephemeralContainers": _LIST,
    "os": _MAPPING,
}
_SECURITY_FIELDS: Mapping[str, str] = {
    "privileged": _BOOLEAN,
    "allowPrivilegeEscalation": _BOOLEAN,
    "readOnlyRootFilesystem": _BOOLEAN,
    "runAsNonRoot": _BOOLEAN,
    "runAsUser": _INTEGER,
    "runAsGroup": _INTEGER,
    "capabilities": _MAPPING,
    "seccompProfile": _MAPPING,
    "seLinuxOptions": _MAPPING,
    "appArmorProfile": _MAPPING,
    "windowsOptions": _MAPPING,
    "procMount": _STRING,
    "sysctls": _LIST,
}
_CONTAINER_FIELDS_TYPES: Mapping[str, str] = {
    "name": _STRING,
    "image": _STRING,
    "securityContext": _MAPPING,
    "resources": _MAPPING,
    "ports": _LIST,
    "env": _LIST,
    "envFrom": _LIST,
    "volumeMounts": _LIST,
    "args": _LIST,
    "command": _LIST,
    "livenessProbe": _MAPPING,
    "readinessProbe": _MAPPING,
    "startupProbe": _MAPPING,
    "lifecycle": _MAPPING,
}

_ENV_FIELDS: Mapping[str, str] = {"name": _STRING, "value": _STRING, "valueFrom": _MAPPING}
_ENV_FROM_FIELDS: Mapping[str, str] = {"prefix": _STRING, "configMapRef": _MAPPING, "secretRef": _MAPPING}
_REFERENCE_FIELDS: Mapping[str, str] = {
    "name": _STRING,
    "optional": _BOOLEAN,
    "secretKeyRef": _MAPPING,
    "configMapKeyRef": _MAPPING,
}


def _is(value: object, expected: str) -> bool:
    if expected == _BOOLEAN:
        return isinstance(value, bool)
    if expected == _INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == _STRING:
        return isinstance(value, str)
    if expected == _MAPPING:
        return isinstance(value, Mapping)
    return isinstance(value, list)


_SHOWN_TEXT = 24


def _shown(value: object) -> str:
    """A value for a message: short plain words as written, anything longer only described.

    Target text may hold a credential (``env`` written as one string), so only short
    strings that the credential detector does not flag are shown.
    """
    if isinstance(value, str):
        if len(value) <= _SHOWN_TEXT and value.isprintable() and not credential_kinds("", value):
            return repr(value)
        return describe_value(value)
    if value is None or isinstance(value, (bool, int, float)) or value in ([], {}):
        return repr(value)
    return describe_value(value)


def _typed(obj: Mapping[str, Any], fields: Mapping[str, str], where: str) -> list[str]:
    """Name each field of ``obj`` whose value is neither null nor of its API type."""
    return [
        f"{where}{key} is {_shown(obj[key])}, not {expected}"
        for key, expected in fields.items()
        if obj.get(key) is not None and not _is(obj[key], expected)
    ]


def _entries(container: Mapping[str, Any], key: str, fields: Mapping[str, str], where: str) -> list[str]:
    """Check each entry of a container's list field: a mapping whose fields have their types."""
    problems = []
    items = container.get(key)
    for index, entry in enumerate(items if isinstance(items, list) else []):
        label = f"{where}.{key}[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{label} is {_shown(entry)}, not a mapping")
            continue
        problems += _typed(entry, fields, f"{label}.")
        for reference in ("configMapRef", "secretRef", "valueFrom"):
            value = entry.get(reference)
            if isinstance(value, Mapping):
                problems += _typed(value, _REFERENCE_FIELDS, f"{label}.{reference}.")
    return problems


def _security_problems(context: Mapping[str, Any], where: str) -> list[str]:
    problems = _typed(context, _SECURITY_FIELDS, where)
    capabilities = context.get("capabilities")
    if isinstance(capabilities, Mapping):
        for key in ("add", "drop"):
            value = capabilities.get(key)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                problems.append(f"{where}capabilities.{key} is {_shown(value)}, not a list of names")
    seccomp = context.get("seccompProfile")
    if isinstance(seccomp, Mapping):
        problems += _typed(seccomp, {"type": _STRING, "localhostProfile": _STRING}, f"{where}seccompProfile.")
    return problems


def _container_problems(container: object, where: str) -> list[str]:
    if not isinstance(container, Mapping):
        return [f"{where} is {_shown(container)}, not a mapping"]
    problems = _typed(container, _CONTAINER_FIELDS_TYPES, f"{where}.")
    context = container.get("securityContext")
    if isinstance(context, Mapping):
        problems += _security_problems(context, f"{where}.securityContext.")
    resources = container.get("resources")
    if isinstance(resources, Mapping):
        problems += _typed(resources, {"limits": _MAPPING, "requests": _MAPPING}, f"{where}.resources.")
    problems += _entries(container, "env", _ENV_FIELDS, where)
    problems += _entries(container, "envFrom", _ENV_FROM_FIELDS, where)
    for key in ("command", "args"):
        words = container.get(key)
        if isinstance(words, list) and not all(isinstance(word, str) for word in words):
            problems.append(f"{where}.{key} holds something that is not a string")
    ports = container.get("ports")
    for index, port in enumerate(ports if isinstance(ports, list) else []):
        if not isinstance(port, Mapping):
            problems.append(f"{where}.ports[{index}] is {_shown(port)}, not a mapping")
        else:
            problems += _typed(port, {"hostPort": _INTEGER}, f"{where}.ports[{index}].")
    return problems


def _volume_problems(volume: object, where: str) -> list[str]:
    if not isinstance(volume, Mapping):
        return [f"{where} is {_shown(volume)}, not a mapping"]
    problems = []
    for key, value in volume.items():
        if key != "name" and value is not None and not isinstance(value, Mapping):
            problems.append(f"{where}.{key} is {_shown(value)}, not a mapping")
    host_path = volume.get("hostPath")
    if isinstance(host_path, Mapping):
        problems += _typed(host_path, {"path": _STRING}, f"{where}.hostPath.")
    return problems


def pod_spec_problems(spec: object) -> list[str]:
    """Name every field the checks read whose value the API would reject (wrong type).

    ``containers`` must be a non-empty list of mappings; a null field counts as absent.
    """
    if not isinstance(spec, Mapping):
        return [f"the pod spec is {_shown(spec)}, not a mapping"]
    problems = _typed(spec, _POD_FIELDS, "")
    if not isinstance(spec.get("containers"), list) or not spec["containers"]:
        problems.append(f"containers is {_shown(spec.get('containers'))}, not a non-empty list")
    context = spec.get("securityContext")
    if isinstance(context, Mapping):
        problems += _security_problems(context, "securityContext.")
    for key, kind in _CONTAINER_FIELDS:
        items = spec.get(key)
        if isinstance(items, list):
            for index, container in enumerate(items):
                name = container.get("name") if isinstance(container, Mapping) else None
                label = f"{kind} {name}" if isinstance(name, str) else f"{key}[{index}]"
                problems += _container_problems(container, label)
    volumes = spec.get("volumes")
    if isinstance(volumes, list):
        for index, volume in enumerate(volumes):
            problems += _volume_problems(volume, f"volumes[{index}]")
    return problems


# -- where objects keep their pod templates --------------------------------------------------


def _dig(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _group(obj: Mapping[str, Any]) -> str:
    return str(obj.get("apiVersion") or "").rpartition("/")[0]


def describe_object(obj: Mapping[str, Any]) -> str:
    """``Kind/name in namespace ns (apiVersion)``, for messages."""
    metadata = _meta(obj)
    namespace = metadata.get("namespace")
    where = f" in namespace {namespace}" if namespace else ""
    return f"{obj.get('kind')}/{metadata.get('name')}{where} ({obj.get('apiVersion')})"


def _template_path(obj: Mapping[str, Any]) -> tuple[str, ...] | None:
    """Where ``obj`` keeps a pod template, or ``None`` when it carries none."""
    kind = str(obj.get("kind") or "")
    group = current_group(_group(obj), kind)
    known = _TEMPLATE_PATHS.get((group, kind))
    if known is not None:
        return known
    if (group, kind) in BUILTIN_KINDS:
        return None  # a kind the plugin knows, and not a workload (a PodTemplate runs nothing)
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return None
    if spec.get("jobTemplate") is not None:
        return _JOB_TEMPLATE
    if spec.get("template") is not None:
        return _TEMPLATE
    return None


def pod_template_of(obj: Mapping[str, Any]) -> tuple[KubeObject, KubeObject] | None:
    """Return ``(pod metadata, pod spec)`` of a Pod or of an object with a pod template.

    Built-in workloads in any API version, and objects of kinds the plugin does not know
    that carry ``spec.template`` or ``spec.jobTemplate``, are read at their template;
    anything else returns ``None``. A template the API would not accept raises
    :class:`WorkloadShapeError` naming the object and the field.
    """
    kind = str(obj.get("kind") or "")
    if kind == "Pod" and _group(obj) == "":
        metadata, spec = obj.get("metadata"), obj.get("spec")
    else:
        path = _template_path(obj)
        if path is None:
            return None
        template = _dig(obj, path)
        where = ".".join(path)
        if not isinstance(template, Mapping):
            raise WorkloadShapeError(
                f"{describe_object(obj)}: {where} is {_shown(template)}, not a pod template; "
                "cannot tell what it would run"
            )
        metadata, spec = template.get("metadata"), template.get("spec")
    problems = pod_spec_problems(spec)
    if metadata is not None and not isinstance(metadata, Mapping):
        problems.insert(0, f"metadata is {_shown(metadata)}, not a mapping")
    if problems:
        raise WorkloadShapeError(
            f"{describe_object(obj)}: a pod spec the API would not accept, so it cannot be judged: "
            + "; ".join(problems)
        )
    assert isinstance(spec, Mapping)  # noqa: S101 - pod_spec_problems proved it
    return dict(metadata or {}), _without_nulls(spec)


def _without_nulls(value: Any) -> Any:
    """The value with every mapping entry that is null left out: the API reads null as absent."""
    if isinstance(value, Mapping):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


# -- Argo Workflows ----------------------------------------------------------------------------

_ARGO_GROUP = "argoproj.io"
_ARGO_SPECS: Mapping[str, tuple[str, ...]] = {
    "Workflow": ("spec",),
    "WorkflowTemplate": ("spec",),
    "ClusterWorkflowTemplate": ("spec",),
    "CronWorkflow": ("spec", "workflowSpec"),
}
# Pod fields a workflow spec sets for all its pods and a template for its own (the template wins).
_ARGO_POD_FIELDS = (
    "securityContext",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "serviceAccountName",
    "automountServiceAccountToken",
    "nodeSelector",
    "tolerations",
    "affinity",
    "priorityClassName",
    "schedulerName",
    "hostAliases",
    "imagePullSecrets",
    "dnsPolicy",
    "dnsConfig",
)
_MERGED_BY_NAME = frozenset({"containers", "initContainers", "ephemeralContainers", "volumes"})
_ARGO_MAIN = "main"  # the workflow controller names a template's container "main"


def _merge_defaults(defaults: Mapping[str, Any], template: Mapping[str, Any]) -> dict[str, Any]:
    """``templateDefaults`` under a template: the template's own values win."""
    merged = dict(defaults)
    for key, value in template.items():
        base = merged.get(key)
        merged[key] = (
            _merge_defaults(base, value)
            if isinstance(base, Mapping) and isinstance(value, Mapping)
            else value
        )
    return merged


def _strategic_merge(base: Any, patch: Any, key: str = "") -> Any:
    """Apply a pod spec patch as a strategic merge: mappings merge, containers and volumes by name."""
    if isinstance(base, Mapping) and isinstance(patch, Mapping):
        merged = dict(base)
        for name, value in patch.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = _strategic_merge(merged.get(name), value, str(name))
        return merged
    if key in _MERGED_BY_NAME and isinstance(base, list) and isinstance(patch, list):
        merged_list = list(base)
        for item in patch:
            name = item.get("name") if isinstance(item, Mapping) else None
            at = next(
                (
                    i
                    for i, old in enumerate(merged_list)
                    if isinstance(old, Mapping) and old.get("name") == name
                ),
                None,
            )
            if name is not None and at is not None:
                merged_list[at] = _strategic_merge(merged_list[at], item)
            else:
                merged_list.append(item)
        return merged_list
    return patch


def _pod_spec_patch(obj: Mapping[str, Any], where: str, text: object) -> Mapping[str, Any]:
    """Read a ``podSpecPatch`` (JSON or YAML text); one that cannot be read cannot be judged."""
    if text is None:
        return {}
    try:
        patch = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError:
        patch = None
    if not isinstance(patch, Mapping):
        raise WorkloadShapeError(
            f"{describe_object(obj)}: {where}.podSpecPatch is {_shown(text)}, not a readable pod spec patch; "
            "cannot tell what its pods would run"
        )
    return patch


def _argo_containers(template: Mapping[str, Any]) -> list[Any] | None:
    """The main containers of an Argo template, or ``None`` for one that runs no container of its own."""
    found: list[Any] = []
    for key in ("container", "script"):
        value = template.get(key)
        if value is not None:
            main = dict(value) if isinstance(value, Mapping) else value
            if isinstance(main, dict):
                main["name"] = _ARGO_MAIN
                main.pop("source", None)
            found.append(main)
    container_set = template.get("containerSet")
    if container_set is not None:
        items = container_set.get("containers") if isinstance(container_set, Mapping) else container_set
        found += items if isinstance(items, list) else [items]
    return found or None


def _labels_of(*sources: object) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for source in sources:
        if not isinstance(source, Mapping):
            continue
        for key in ("labels", "annotations"):
            value = source.get(key)
            if isinstance(value, Mapping):
                metadata[key] = {**metadata.get(key, {}), **value}
    return metadata


def _argo_pod_specs(obj: Mapping[str, Any]) -> list[tuple[str, KubeObject, KubeObject]]:
    """``(template name, pod metadata, pod spec)`` of each Argo template that runs containers."""
    path = _ARGO_SPECS[str(obj.get("kind"))]
    workflow = _dig(obj, path)
    where = ".".join(path)
    if workflow is None:
        return []
    if not isinstance(workflow, Mapping):
        raise WorkloadShapeError(
            f"{describe_object(obj)}: {where} is {_shown(workflow)}, not a workflow spec"
        )
    templates = workflow.get("templates") or []
    defaults = workflow.get("templateDefaults") or {}
    if not isinstance(templates, list) or not isinstance(defaults, Mapping):
        raise WorkloadShapeError(
            f"{describe_object(obj)}: {where}.templates is {_shown(templates)}, not a list of templates"
        )
    found = []
    for index, raw in enumerate(templates):
        if not isinstance(raw, Mapping):
            raise WorkloadShapeError(f"{describe_object(obj)}: {where}.templates[{index}] is not a mapping")
        template = _merge_defaults(defaults, raw)
        name = str(template.get("name") or f"templates[{index}]")
        main = _argo_containers(template)
        if main is None:
            continue  # steps, dag, suspend, resource, http: no container of the user's
        spec: dict[str, Any] = {
            key: workflow[key] for key in _ARGO_POD_FIELDS if workflow.get(key) is not None
        }
        spec.update({key: template[key] for key in _ARGO_POD_FIELDS if template.get(key) is not None})
        sidecars = template.get("sidecars")
        spec["containers"] = main + (
            sidecars if isinstance(sidecars, list) else [] if sidecars is None else [sidecars]
        )
        if template.get("initContainers") is not None:
            spec["initContainers"] = template["initContainers"]
        volumes = [
            volume
            for source in (workflow.get("volumes"), template.get("volumes"))
            for volume in (source if isinstance(source, list) else [] if source is None else [source])
        ]
        if volumes:
            spec["volumes"] = volumes
        for label, text in (
            (where, workflow.get("podSpecPatch")),
            (f"{where}.templates[{index}]", template.get("podSpecPatch")),
        ):
            spec = _strategic_merge(spec, _pod_spec_patch(obj, label, text))
        metadata = _labels_of(workflow.get("podMetadata"), template.get("metadata"))
        problems = pod_spec_problems(spec)
        if problems:
            raise WorkloadShapeError(
                f"{describe_object(obj)}: template {name}: a pod spec the API would not accept, "
                "so it cannot be judged: " + "; ".join(problems)
            )
        found.append((name, metadata, _without_nulls(spec)))
    return found


def _is_argo(obj: Mapping[str, Any]) -> bool:
    return _group(obj) == _ARGO_GROUP and str(obj.get("kind")) in _ARGO_SPECS


def pod_specs_of(obj: Mapping[str, Any]) -> list[tuple[str, KubeObject, KubeObject]]:
    """Return ``(note, pod metadata, pod spec)`` for every pod spec an object carries.

    One entry for a Pod or an object with a pod template (the note is empty); one per
    template that runs containers for Argo workflow kinds (the note names the template).
    A shape the API (or the workflow controller) would not accept raises
    :class:`WorkloadShapeError`.
    """
    if _is_argo(obj):
        return [(f"template {name}", metadata, spec) for name, metadata, spec in _argo_pod_specs(obj)]
    template = pod_template_of(obj)
    return [] if template is None else [("", template[0], template[1])]


def _container_lists(value: Any, path: str) -> Iterator[str]:
    """Where under ``value`` a list of mappings with an ``image`` key sits (container-like)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _container_lists(item, f"{path}.{key}")
    elif isinstance(value, list):
        if any(isinstance(item, Mapping) and "image" in item for item in value):
            yield path
            return
        for index, item in enumerate(value):
            yield from _container_lists(item, f"{path}[{index}]")


def _unread(obj: Mapping[str, Any]) -> str | None:
    """Name an object of an unknown kind that holds containers this module does not read."""
    kind = str(obj.get("kind") or "")
    if (current_group(_group(obj), kind), kind) in BUILTIN_KINDS:
        return None
    if kind == "Pod" and _group(obj) == "":
        return None
    try:
        if pod_specs_of(obj):
            return None
    except WorkloadShapeError:
        return None  # named as a workload of an unknown shape
    where = next(_container_lists(obj.get("spec"), "spec"), None)
    return f"{describe_object(obj)} at {where}" if where else None


def unread_workloads(view: KubernetesView, namespace: str | None) -> list[str]:
    """Objects of kinds the plugin does not know that hold containers it cannot judge.

    Manifests only (a live cluster is asked for the kinds it knows): an object placed in
    ``namespace`` (or cluster-scoped) with a list of container-like mappings (``image``
    keys) under ``spec`` that is no pod template. Such pods exist but are not judged, and
    a check must say so rather than pass on the others alone.
    """
    if view.live:
        return []
    found = []
    for obj in _static_objects(view, None):
        where = _meta(obj).get("namespace")
        if namespace is not None and where not in (None, "", namespace):
            continue
        unread = _unread(obj)
        if unread:
            found.append(unread)
    return found


# -- rendered manifests ----------------------------------------------------------------------


def _rank(obj: Mapping[str, Any]) -> int:
    kind = str(obj.get("kind") or "")
    if kind == "Pod":
        return len(_KIND_ORDER) + 1
    return _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)


def _static_objects(view: KubernetesView, namespace: str | None) -> list[KubeObject]:
    everything = getattr(view, "objects", None)
    if callable(everything):
        found: list[KubeObject] = everything(namespace)
        return found
    objects: list[KubeObject] = []
    for resource, _ in _LIVE_CONTROLLERS:
        objects += view.list(resource, namespace)
    return objects + view.list(PODS, namespace)


def _manifest_templates(
    view: KubernetesView, namespace: str | None, selector: Mapping[str, str] | None
) -> Iterator[PodTemplate]:
    found = []
    objects = _static_objects(view, namespace)
    if namespace is not None:
        # A cluster-wide workflow template runs its pods in the namespace of the workflow using it.
        objects += view.list(ARGO_CLUSTER_WORKFLOW_TEMPLATES)
    for index, obj in enumerate(objects):
        for note, metadata, spec in pod_specs_of(obj):
            if not labels_match(metadata.get("labels"), selector):
                continue
            owner_meta = _meta(obj)
            owner = Owner(
                str(obj.get("kind")),
                str(owner_meta.get("name", "")),
                owner_meta.get("namespace") or namespace,
                note,
            )
            found.append((_rank(obj), index, PodTemplate(owner, metadata, spec, obj)))
    for _, _, judged in sorted(found, key=lambda item: item[:2]):
        yield judged


# -- a live cluster ----------------------------------------------------------------------------


def _controller_of(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    for reference in _meta(obj).get("ownerReferences") or []:
        if isinstance(reference, Mapping) and reference.get("controller"):
            return str(reference.get("kind", "")), str(reference.get("name", ""))
    return None


def _strip_token(spec: dict[str, Any]) -> None:
    """Drop the service-account token volume admission adds, and its mounts."""
    volumes = spec.get("volumes")
    if not isinstance(volumes, list):
        return
    token = {
        str(v.get("name"))
        for v in volumes
        if isinstance(v, Mapping)
        and str(v.get("name", "")).startswith(_TOKEN_VOLUME_PREFIX)
        and "projected" in v
    }
    if not token:
        return
    spec["volumes"] = [v for v in volumes if not (isinstance(v, Mapping) and v.get("name") in token)]
    for key, _ in _CONTAINER_FIELDS:
        for container in spec.get(key) or []:
            mounts = container.get("volumeMounts")
            if isinstance(mounts, list):
                container["volumeMounts"] = [
                    m
                    for m in mounts
                    if not (
                        isinstance(m, Mapping)
                        and m.get("name") in token
                        and m.get("mountPath") == _TOKEN_MOUNT
                    )
                ]


def _pruned(value: Any) -> Any:
    """Drop null, empty and defaulted values, so that two specs that mean the same compare equal."""
    if isinstance(value, Mapping):
        kept = {key: _pruned(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


def _comparable(spec: Mapping[str, Any]) -> str:
    """A pod spec as text, without what the platform adds to every pod it creates."""
    normal: dict[str, Any] = json.loads(json.dumps(spec))
    if not normal.get("serviceAccountName") and normal.get("serviceAccount"):
        normal["serviceAccountName"] = normal["serviceAccount"]  # the API server copies the old field
    for key in _PER_POD_SPEC_FIELDS:
        normal.pop(key, None)
    for key, default in _POD_DEFAULTS.items():
        if normal.get(key) == default:
            del normal[key]
    tolerations = normal.get("tolerations")
    if isinstance(tolerations, list):
        normal["tolerations"] = [
            t
            for t in tolerations
            if not (
                isinstance(t, Mapping)
                and t.get("key") in _DEFAULT_TOLERATIONS
                and t.get("effect") == "NoExecute"
                and t.get("tolerationSeconds") == 300
            )
        ]
    _strip_token(normal)
    for key, _ in _CONTAINER_FIELDS:
        for container in normal.get(key) or []:
            if not isinstance(container, dict):
                continue
            container.pop("imagePullPolicy", None)
            for name, default in _CONTAINER_DEFAULTS.items():
                if container.get(name) == default:
                    del container[name]
    return json.dumps(_pruned(normal), sort_keys=True)


def _finished(kind: str, obj: Mapping[str, Any]) -> bool:
    """Whether a child controller runs nothing any more (an old ReplicaSet, a finished Job)."""
    spec = obj.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    if kind in ("ReplicaSet", "ReplicationController"):
        return spec.get("replicas") == 0
    if kind == "Job":
        status = obj.get("status")
        status = status if isinstance(status, Mapping) else {}
        if status.get("completionTime"):
            return True
        return any(
            isinstance(c, Mapping) and c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
    return False


@dataclass
class _Controller:
    kind: str
    obj: KubeObject
    metadata: KubeObject
    spec: KubeObject
    comparable: str

    @property
    def name(self) -> str:
        return str(_meta(self.obj).get("name", ""))

    @property
    def namespace(self) -> str | None:
        namespace = _meta(self.obj).get("namespace")
        return str(namespace) if namespace else None


@dataclass
class _Group:
    owner: Owner
    metadata: KubeObject
    spec: KubeObject
    source: KubeObject
    running: list[KubeObject] = field(default_factory=list)

    def template(self) -> PodTemplate:
        names = tuple(str(_meta(pod).get("name", "")) for pod in self.running)
        nodes = tuple(
            sorted(
                {
                    str(node)
                    for pod in self.running
                    if isinstance(pod.get("spec"), Mapping) and (node := pod["spec"].get("nodeName"))
                }
            )
        )
        return PodTemplate(
            self.owner, self.metadata, self.spec, self.source, names, nodes, tuple(self.running)
        )


def _live_controllers(
    view: KubernetesView, namespace: str | None
) -> dict[tuple[str, str | None, str], _Controller]:
    controllers: dict[tuple[str, str | None, str], _Controller] = {}
    for resource, kind in _LIVE_CONTROLLERS:
        for obj in view.list(resource, namespace):
            template = pod_template_of({**obj, "kind": kind, "apiVersion": resource.api_version})
            if template is None:  # pragma: no cover - every kind listed here has a template
                continue
            metadata, spec = template
            found = _Controller(kind, obj, metadata, spec, _comparable(spec))
            controllers[(kind, found.namespace, found.name)] = found
    return controllers


def _top(controllers: Mapping[tuple[str, str | None, str], _Controller], start: _Controller) -> _Controller:
    """The controller at the top of ``start``'s owner chain, among the listed ones."""
    current = start
    seen = {id(current)}
    while True:
        parent = _controller_of(current.obj)
        above = controllers.get((parent[0], current.namespace, parent[1])) if parent else None
        if above is None or id(above) in seen:
            return current
        seen.add(id(above))
        current = above


def _live_templates(
    view: KubernetesView, namespace: str | None, selector: Mapping[str, str] | None
) -> Iterator[PodTemplate]:
    controllers = _live_controllers(view, namespace)
    groups: dict[tuple[Owner, str], _Group] = {}
    selected: set[int] = set()
    for controller in controllers.values():
        if _top(controllers, controller) is controller and labels_match(
            controller.metadata.get("labels"), selector
        ):
            owner = Owner(controller.kind, controller.name, controller.namespace)
            groups[(owner, controller.comparable)] = _Group(
                owner, controller.metadata, controller.spec, controller.obj
            )
            selected.add(id(controller))
    for controller in controllers.values():
        top = _top(controllers, controller)
        if top is controller or _finished(controller.kind, controller.obj):
            continue
        if controller.comparable == top.comparable:
            continue
        if id(top) not in selected and not labels_match(controller.metadata.get("labels"), selector):
            continue
        note = f"{controller.kind}/{controller.name} has another template"
        owner = Owner(top.kind, top.name, top.namespace, note)
        groups.setdefault(
            (owner, controller.comparable),
            _Group(owner, controller.metadata, controller.spec, controller.obj),
        )
    for pod in view.list(PODS, namespace):
        pod_meta = _meta(pod)
        where = str(pod_meta["namespace"]) if pod_meta.get("namespace") else None
        template = pod_template_of({**pod, "kind": "Pod", "apiVersion": "v1"})
        assert template is not None  # noqa: S101 - a Pod always has a spec
        metadata, spec = template
        comparable = _comparable(spec)
        reference = _controller_of(pod)
        parent = controllers.get((reference[0], where, reference[1])) if reference else None
        if parent is not None:
            top = _top(controllers, parent)
            if comparable == top.comparable:
                owner = Owner(top.kind, top.name, top.namespace)
            elif comparable == parent.comparable and parent is not top:
                owner = Owner(
                    top.kind, top.name, top.namespace, f"{parent.kind}/{parent.name} has another template"
                )
            else:
                owner = Owner(top.kind, top.name, top.namespace, "running pods differ from its template")
            owned = id(top) in selected
        elif reference is not None:
            owner, owned = Owner(reference[0], reference[1], where), False
        else:
            owner, owned = Owner("Pod", str(pod_meta.get("name", "")), where), False
        group = groups.get((owner, comparable))
        if group is None:
            if not owned and not labels_match(metadata.get("labels"), selector):
                continue
            group = groups[(owner, comparable)] = _Group(owner, metadata, spec, pod)
        group.running.append(pod)
    for group in groups.values():
        yield group.template()
    yield from _live_argo_templates(view, namespace, selector)


_LIVE_ARGO: tuple[tuple[Resource, str], ...] = (
    (ARGO_WORKFLOW_TEMPLATES, "WorkflowTemplate"),
    (ARGO_CRON_WORKFLOWS, "CronWorkflow"),
    (ARGO_WORKFLOWS, "Workflow"),
    (ARGO_CLUSTER_WORKFLOW_TEMPLATES, "ClusterWorkflowTemplate"),
)


def _live_argo_templates(
    view: KubernetesView, namespace: str | None, selector: Mapping[str, str] | None
) -> Iterator[PodTemplate]:
    """The pod specs of the Argo workflow kinds the cluster serves (none when Argo is not installed)."""
    for resource, kind in _LIVE_ARGO:
        try:
            objects = view.list(resource, namespace if resource.namespaced else None)
        except ResourceNotServed:
            continue
        for obj in objects:
            typed = {**obj, "kind": kind, "apiVersion": resource.api_version}
            for note, metadata, spec in pod_specs_of(typed):
                if labels_match(metadata.get("labels"), selector):
                    owner_meta = _meta(obj)
                    where = owner_meta.get("namespace") or namespace
                    owner = Owner(kind, str(owner_meta.get("name", "")), where, note)
                    yield PodTemplate(owner, metadata, spec, obj)


_Found = tuple[PodTemplate, ...] | EvidenceUnavailable
_FOUND: weakref.WeakKeyDictionary[Any, dict[tuple[str | None, str], _Found]] = weakref.WeakKeyDictionary()


def _memo(view: KubernetesView) -> dict[tuple[str | None, str], _Found] | None:
    """The templates already found on ``view``: a view lists each kind once, so they never change."""
    try:
        return _FOUND.setdefault(view, {})
    except TypeError:  # a view that cannot be referenced weakly is simply not cached
        return None


def pod_templates(
    view: KubernetesView,
    namespace: str | None = None,
    selector: Mapping[str, str] | None = None,
) -> Iterator[PodTemplate]:
    """Yield every pod spec in ``namespace`` (all namespaces when ``None``) whose labels match.

    Manifests: the template of every object that carries one, and bare Pods. Live: the
    templates of every controller at the top of its owner chain, the running Pods folded
    into them, and every Pod that differs from its controller's template or has none.
    ``selector`` is an equality selector on the pod labels (empty: every pod). A 401/403
    on a list propagates as ``EvidenceUnavailable``; so does a template of a shape the API
    would not accept (:class:`WorkloadShapeError`). The answer is worked out once per view.
    """
    memo = _memo(view)
    key = (namespace, json.dumps(dict(selector or {}), sort_keys=True))
    found = memo.get(key) if memo is not None else None
    if found is None:
        try:
            if view.live:
                found = tuple(_live_templates(view, namespace, selector))
            else:
                found = tuple(_manifest_templates(view, namespace, selector))
        except EvidenceUnavailable as exc:
            found = exc
        if memo is not None:
            memo[key] = found
    if isinstance(found, EvidenceUnavailable):
        raise found
    yield from found


_OUT_OF_NAMESPACE: weakref.WeakKeyDictionary[Any, dict[str, list[str]]] = weakref.WeakKeyDictionary()


def _workloads_by_namespace(view: KubernetesView) -> dict[str, list[str]]:
    """Every object with a pod spec in the files, by namespace (computed once per view)."""
    cached = _OUT_OF_NAMESPACE.get(view)
    if cached is not None:
        return cached
    found: dict[str, list[str]] = {}
    for obj in _static_objects(view, None):
        try:
            carries = bool(pod_specs_of(obj))
            reason = ""
        except WorkloadShapeError:
            carries, reason = True, " (a pod template of an unknown shape)"
        if carries:
            namespace = str(_meta(obj).get("namespace") or "")
            found.setdefault(namespace, []).append(f"{obj.get('kind')}/{_meta(obj).get('name')}{reason}")
    _OUT_OF_NAMESPACE[view] = found
    return found


def out_of_scope(
    view: KubernetesView, namespace: str, selector: Mapping[str, str] | None, limit: int = 10
) -> list[str]:
    """Say which workloads :func:`pod_templates` leaves out for ``namespace`` and ``selector``, and why.

    Manifests: every object with a pod spec placed in another namespace, and those in
    ``namespace`` whose pod labels the selector does not match. Live: those in the
    namespace the selector does not match (other namespaces are not listed). Each line
    names up to ``limit`` objects and how many there are.
    """
    lines = []
    if not view.live:
        by_namespace = _workloads_by_namespace(view)
        names: list[str] = []
        total = 0
        for other, objects in sorted(by_namespace.items()):
            if other == namespace:
                continue
            total += len(objects)
            names += [f"{name} in {other}" for name in objects[: max(0, limit - len(names))]]
        if total:
            more = f" (+{total - len(names)} more)" if total > len(names) else ""
            lines.append(f"in other namespaces, not the agent's: {', '.join(names)}{more}")
    if selector:
        every = list(pod_templates(view, namespace, None))
        left = [str(t.owner) for t in every if not labels_match(t.labels, selector)]
        if left:
            more = f" (+{len(left) - limit} more)" if len(left) > limit else ""
            lines.append(f"pod labels not matched by the agent selector: {', '.join(left[:limit])}{more}")
    return lines


def agent_pod_templates(view: KubernetesView, policy: Policy) -> Iterator[PodTemplate]:
    """Yield the agent's pod specs: the policy's agent namespace and label selector.

    Manifests without a namespace (or with a null or empty one) are placed in the agent
    namespace by the manifest view, so for ``helm template`` output this is every
    workload in the files.
    """
    yield from pod_templates(view, policy.agent.namespace, policy.agent.selector)
