"""The resource types the checks read, and the kind -> resource table of the built-in kinds.

Both views use the same :class:`Resource` values, so a check names what it reads once,
for example ``view.list(PODS, namespace)``.
"""

from __future__ import annotations

from pytest_secagent.kubernetes.view import Resource

__all__ = [
    "ARGO_CLUSTER_WORKFLOW_TEMPLATES",
    "ARGO_CRON_WORKFLOWS",
    "ARGO_WORKFLOWS",
    "ARGO_WORKFLOW_TEMPLATES",
    "BUILTIN_KINDS",
    "CLUSTER_ROLES",
    "CLUSTER_ROLE_BINDINGS",
    "CONFIG_AUDIT_REPORTS",
    "CONFIG_MAPS",
    "CRON_JOBS",
    "DAEMON_SETS",
    "DAPR_COMPONENTS",
    "DEPLOYMENTS",
    "GATEWAYS",
    "GRPC_ROUTES",
    "HTTP_ROUTES",
    "INGRESSES",
    "JOBS",
    "LEGACY_GROUPS",
    "LIMIT_RANGES",
    "NAMESPACES",
    "NETWORK_POLICIES",
    "NODES",
    "PODS",
    "POD_TEMPLATES",
    "REPLICATION_CONTROLLERS",
    "REPLICA_SETS",
    "RESOURCE_QUOTAS",
    "ROLES",
    "ROLE_BINDINGS",
    "SECRETS",
    "SERVICES",
    "SERVICE_ACCOUNTS",
    "STATEFUL_SETS",
    "TCP_ROUTES",
    "TLS_ROUTES",
    "UDP_ROUTES",
    "VULNERABILITY_REPORTS",
    "WORKLOAD_KINDS",
    "current_group",
    "kind_of",
    "resource_for_kind",
]

PODS = Resource("", "v1", "pods")
SERVICES = Resource("", "v1", "services")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts")
CONFIG_MAPS = Resource("", "v1", "configmaps")
SECRETS = Resource("", "v1", "secrets")
NAMESPACES = Resource("", "v1", "namespaces", namespaced=False)
NODES = Resource("", "v1", "nodes", namespaced=False)
LIMIT_RANGES = Resource("", "v1", "limitranges")
RESOURCE_QUOTAS = Resource("", "v1", "resourcequotas")
POD_TEMPLATES = Resource("", "v1", "podtemplates")
REPLICATION_CONTROLLERS = Resource("", "v1", "replicationcontrollers")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
STATEFUL_SETS = Resource("apps", "v1", "statefulsets")
DAEMON_SETS = Resource("apps", "v1", "daemonsets")
REPLICA_SETS = Resource("apps", "v1", "replicasets")
JOBS = Resource("batch", "v1", "jobs")
CRON_JOBS = Resource("batch", "v1", "cronjobs")
INGRESSES = Resource("networking.k8s.io", "v1", "ingresses")
ARGO_WORKFLOWS = Resource("argoproj.io", "v1alpha1", "workflows")
ARGO_WORKFLOW_TEMPLATES = Resource("argoproj.io", "v1alpha1", "workflowtemplates")
ARGO_CLUSTER_WORKFLOW_TEMPLATES = Resource(
    "argoproj.io", "v1alpha1", "clusterworkflowtemplates", namespaced=False
)
ARGO_CRON_WORKFLOWS = Resource("argoproj.io", "v1alpha1", "cronworkflows")
NETWORK_POLICIES = Resource("networking.k8s.io", "v1", "networkpolicies")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")
CLUSTER_ROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False)
CLUSTER_ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False)
GATEWAYS = Resource("gateway.networking.k8s.io", "v1", "gateways")
HTTP_ROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes")
GRPC_ROUTES = Resource("gateway.networking.k8s.io", "v1", "grpcroutes")
TLS_ROUTES = Resource("gateway.networking.k8s.io", "v1alpha2", "tlsroutes")
TCP_ROUTES = Resource("gateway.networking.k8s.io", "v1alpha2", "tcproutes")
UDP_ROUTES = Resource("gateway.networking.k8s.io", "v1alpha2", "udproutes")
DAPR_COMPONENTS = Resource("dapr.io", "v1alpha1", "components")
VULNERABILITY_REPORTS = Resource("aquasecurity.github.io", "v1alpha1", "vulnerabilityreports")
CONFIG_AUDIT_REPORTS = Resource("aquasecurity.github.io", "v1alpha1", "configauditreports")

# kind -> (plural, namespaced), per API group; versions do not change either.
_KINDS: dict[str, dict[str, tuple[str, bool]]] = {
    "": {
        "Pod": ("pods", True),
        "Service": ("services", True),
        "ServiceAccount": ("serviceaccounts", True),
        "ConfigMap": ("configmaps", True),
        "Secret": ("secrets", True),
        "Namespace": ("namespaces", False),
        "Node": ("nodes", False),
        "LimitRange": ("limitranges", True),
        "ResourceQuota": ("resourcequotas", True),
        "PodTemplate": ("podtemplates", True),
        "Endpoints": ("endpoints", True),
        "Event": ("events", True),
        "PersistentVolumeClaim": ("persistentvolumeclaims", True),
        "PersistentVolume": ("persistentvolumes", False),
        "ReplicationController": ("replicationcontrollers", True),
    },
    "apps": {
        "Deployment": ("deployments", True),
        "StatefulSet": ("statefulsets", True),
        "DaemonSet": ("daemonsets", True),
        "ReplicaSet": ("replicasets", True),
        "ControllerRevision": ("controllerrevisions", True),
    },
    "batch": {"Job": ("jobs", True), "CronJob": ("cronjobs", True)},
    "networking.k8s.io": {
        "Ingress": ("ingresses", True),
        "IngressClass": ("ingressclasses", False),
        "NetworkPolicy": ("networkpolicies", True),
    },
    "extensions": {
        "Ingress": ("ingresses", True),
        "NetworkPolicy": ("networkpolicies", True),
        "Deployment": ("deployments", True),
        "DaemonSet": ("daemonsets", True),
        "ReplicaSet": ("replicasets", True),
    },
    "policy": {
        "PodDisruptionBudget": ("poddisruptionbudgets", True),
        "PodSecurityPolicy": ("podsecuritypolicies", False),
    },
    "rbac.authorization.k8s.io": {
        "Role": ("roles", True),
        "RoleBinding": ("rolebindings", True),
        "ClusterRole": ("clusterroles", False),
        "ClusterRoleBinding": ("clusterrolebindings", False),
    },
    "autoscaling": {"HorizontalPodAutoscaler": ("horizontalpodautoscalers", True)},
    "storage.k8s.io": {"StorageClass": ("storageclasses", False)},
    "scheduling.k8s.io": {"PriorityClass": ("priorityclasses", False)},
    "apiextensions.k8s.io": {"CustomResourceDefinition": ("customresourcedefinitions", False)},
    "admissionregistration.k8s.io": {
        "ValidatingWebhookConfiguration": ("validatingwebhookconfigurations", False),
        "MutatingWebhookConfiguration": ("mutatingwebhookconfigurations", False),
        "ValidatingAdmissionPolicy": ("validatingadmissionpolicies", False),
        "ValidatingAdmissionPolicyBinding": ("validatingadmissionpolicybindings", False),
    },
    "networking.istio.io": {
        "VirtualService": ("virtualservices", True),
        "Gateway": ("gateways", True),
    },
    "gateway.networking.k8s.io": {
        "GatewayClass": ("gatewayclasses", False),
        "Gateway": ("gateways", True),
        "HTTPRoute": ("httproutes", True),
        "GRPCRoute": ("grpcroutes", True),
        "TLSRoute": ("tlsroutes", True),
        "TCPRoute": ("tcproutes", True),
        "UDPRoute": ("udproutes", True),
        "ReferenceGrant": ("referencegrants", True),
    },
    "dapr.io": {
        "Component": ("components", True),
        "Configuration": ("configurations", True),
        "Resiliency": ("resiliencies", True),
        "Subscription": ("subscriptions", True),
    },
    "aquasecurity.github.io": {
        "VulnerabilityReport": ("vulnerabilityreports", True),
        "ConfigAuditReport": ("configauditreports", True),
        "ExposedSecretReport": ("exposedsecretreports", True),
        "ClusterVulnerabilityReport": ("clustervulnerabilityreports", False),
    },
    "external-secrets.io": {
        "ExternalSecret": ("externalsecrets", True),
        "SecretStore": ("secretstores", True),
        "ClusterSecretStore": ("clustersecretstores", False),
        "ClusterExternalSecret": ("clusterexternalsecrets", False),
    },
    "secrets-store.csi.x-k8s.io": {"SecretProviderClass": ("secretproviderclasses", True)},
    "argoproj.io": {
        "Workflow": ("workflows", True),
        "WorkflowTemplate": ("workflowtemplates", True),
        "ClusterWorkflowTemplate": ("clusterworkflowtemplates", False),
        "CronWorkflow": ("cronworkflows", True),
    },
}

BUILTIN_KINDS: dict[tuple[str, str], tuple[str, bool]] = {
    (group, kind): value for group, kinds in _KINDS.items() for kind, value in kinds.items()
}
"""(API group, kind) -> (plural, namespaced) for the kinds this package knows by name."""

WORKLOAD_KINDS = (
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
    "Pod",
)
"""The built-in kinds whose objects carry a pod spec (directly or in a template)."""

LEGACY_GROUPS: dict[tuple[str, str], str] = {
    ("extensions", "Deployment"): "apps",
    ("extensions", "DaemonSet"): "apps",
    ("extensions", "ReplicaSet"): "apps",
    ("extensions", "NetworkPolicy"): "networking.k8s.io",
    ("extensions", "Ingress"): "networking.k8s.io",
}
"""(old group, kind) -> the group that serves the same objects today.

A cluster that accepted ``extensions/v1beta1`` Deployments serves them as ``apps/v1``
Deployments too (one storage, several versions), so they are read as the same resource.
"""


def current_group(group: str, kind: str) -> str:
    """Return the API group that serves objects of ``kind`` written in ``group`` today."""
    return LEGACY_GROUPS.get((group, kind), group)


def _plural_of(kind: str) -> str:
    # The API machinery's guess for a kind it has no discovery data for.
    lower = kind.lower()
    if lower.endswith("s"):
        return lower + "es"
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + "s"


def resource_for_kind(api_version: str, kind: str) -> Resource:
    """Return the resource type of objects with this ``apiVersion`` and ``kind``.

    Known kinds get their real plural and scope; an unknown kind (a custom resource)
    is taken as namespaced, with the plural the API machinery would guess (lowercase
    plus ``s``; ``es`` after an ``s``, ``ies`` for a final ``y``).
    """
    group, _, version = api_version.rpartition("/")
    known = BUILTIN_KINDS.get((group, kind))
    if known is None:
        return Resource(group, version, _plural_of(kind))
    plural, namespaced = known
    return Resource(group, version, plural, namespaced)


_KIND_OF: dict[tuple[str, str], str] = {
    (group, plural): kind for group, kinds in _KINDS.items() for kind, (plural, _) in kinds.items()
}


def kind_of(resource: Resource) -> str | None:
    """Return the kind of ``resource``'s objects (``pods`` -> ``Pod``), or ``None`` when not known.

    A list of them is a ``<Kind>List``; for resources of groups the plugin does not know
    (OpenShift routes...) only the ``List`` suffix can be checked.
    """
    return _KIND_OF.get((resource.group, resource.plural))
