"""The resource types the test API server serves, kept apart from the package's own table.

Built-in types are always served, as on a real cluster. Well-known custom resources
(Gateway API, Dapr, Trivy operator...) are served only when the scenario installs them:
a CustomResourceDefinition for them, or any object of their kind. Anything else is 404.
"""

from __future__ import annotations

from dataclasses import dataclass

READ_VERBS = ("get", "list", "watch")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


@dataclass(frozen=True)
class ApiType:
    """One served resource type."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...] = READ_VERBS + WRITE_VERBS
    builtin: bool = True

    @property
    def group_version(self) -> str:
        """``v1`` or ``apps/v1``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def name(self) -> str:
        """``pods`` or ``deployments.apps``, as API errors name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self) -> dict[str, object]:
        """The ``APIResourceList`` entry of this type."""
        return {
            "name": self.plural,
            "singularName": self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }


def _types(group: str, version: str, *entries: tuple[str, str, bool]) -> list[ApiType]:
    return [ApiType(group, version, plural, kind, namespaced) for plural, kind, namespaced in entries]


BUILTIN_TYPES: tuple[ApiType, ...] = (
    *_types(
        "",
        "v1",
        ("pods", "Pod", True),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("namespaces", "Namespace", False),
        ("nodes", "Node", False),
        ("limitranges", "LimitRange", True),
        ("resourcequotas", "ResourceQuota", True),
        ("podtemplates", "PodTemplate", True),
        ("endpoints", "Endpoints", True),
        ("events", "Event", True),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True),
        ("persistentvolumes", "PersistentVolume", False),
        ("replicationcontrollers", "ReplicationController", True),
    ),
    *_types(
        "apps",
        "v1",
        ("deployments", "Deployment", True),
        ("statefulsets", "StatefulSet", True),
        ("daemonsets", "DaemonSet", True),
        ("replicasets", "ReplicaSet", True),
        ("controllerrevisions", "ControllerRevision", True),
    ),
    *_types("batch", "v1", ("jobs", "Job", True), ("cronjobs", "CronJob", True)),
    *_types(
        "networking.k8s.io",
        "v1",
        ("ingresses", "Ingress", True),
        ("ingressclasses", "IngressClass", False),
        ("networkpolicies", "NetworkPolicy", True),
    ),
    *_types("policy", "v1", ("poddisruptionbudgets", "PodDisruptionBudget", True)),
    *_types(
        "rbac.authorization.k8s.io",
        "v1",
        ("roles", "Role", True),
        ("rolebindings", "RoleBinding", True),
        ("clusterroles", "ClusterRole", False),
        ("clusterrolebindings", "ClusterRoleBinding", False),
    ),
    *_types("autoscaling", "v2", ("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)),
    *_types("storage.k8s.io", "v1", ("storageclasses", "StorageClass", False)),
    *_types("scheduling.k8s.io", "v1", ("priorityclasses", "PriorityClass", False)),
    *_types("coordination.k8s.io", "v1", ("leases", "Lease", True)),
    *_types(
        "apiextensions.k8s.io",
        "v1",
        ("customresourcedefinitions", "CustomResourceDefinition", False),
    ),
    *_types(
        "admissionregistration.k8s.io",
        "v1",
        ("validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False),
        ("mutatingwebhookconfigurations", "MutatingWebhookConfiguration", False),
    ),
    ApiType("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False, ("create",)),
    ApiType(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        ("create",),
    ),
)

KNOWN_CUSTOM_TYPES: tuple[ApiType, ...] = tuple(
    ApiType(t.group, t.version, t.plural, t.kind, t.namespaced, builtin=False)
    for t in (
        *_types(
            "gateway.networking.k8s.io",
            "v1",
            ("gatewayclasses", "GatewayClass", False),
            ("gateways", "Gateway", True),
            ("httproutes", "HTTPRoute", True),
            ("grpcroutes", "GRPCRoute", True),
            ("referencegrants", "ReferenceGrant", True),
        ),
        *_types(
            "gateway.networking.k8s.io",
            "v1alpha2",
            ("tlsroutes", "TLSRoute", True),
            ("tcproutes", "TCPRoute", True),
            ("udproutes", "UDPRoute", True),
        ),
        *_types(
            "dapr.io",
            "v1alpha1",
            ("components", "Component", True),
            ("configurations", "Configuration", True),
            ("resiliencies", "Resiliency", True),
            ("subscriptions", "Subscription", True),
        ),
        *_types(
            "aquasecurity.github.io",
            "v1alpha1",
            ("vulnerabilityreports", "VulnerabilityReport", True),
            ("configauditreports", "ConfigAuditReport", True),
            ("exposedsecretreports", "ExposedSecretReport", True),
            ("clustervulnerabilityreports", "ClusterVulnerabilityReport", False),
        ),
        *_types(
            "external-secrets.io",
            "v1beta1",
            ("externalsecrets", "ExternalSecret", True),
            ("secretstores", "SecretStore", True),
            ("clustersecretstores", "ClusterSecretStore", False),
        ),
        *_types(
            "secrets-store.csi.x-k8s.io",
            "v1",
            ("secretproviderclasses", "SecretProviderClass", True),
        ),
        *_types(
            "argoproj.io",
            "v1alpha1",
            ("workflows", "Workflow", True),
            ("workflowtemplates", "WorkflowTemplate", True),
            ("clusterworkflowtemplates", "ClusterWorkflowTemplate", False),
            ("cronworkflows", "CronWorkflow", True),
        ),
    )
)


def guess_plural(kind: str) -> str:
    """The plural the API machinery guesses for a kind without discovery data."""
    lower = kind.lower()
    if lower.endswith("s"):
        return lower + "es"
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + "s"
