"""Kinds of false pass found by review, as mutation matrices over the hardened scenario.

Each case changes the hardened scenario in one way and runs one control on the live view
(the test API server holding the objects) and on the rendered manifests of the same
objects. A case that hides a credential, a TLS-verification bypass, an escalation path, an
exposure or DNS to anywhere must fail its control; the matching harmless variant keeps the
baseline verdict; a control that examined nothing is an error.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import exposure, network_policy, rbac, secrets, tls_bypass
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy import Policy, load_policy
from tests.kubernetes.scenario_files import POLICY
from tests.kubernetes.test_netpol_semantics_matrix import (
    VIEWS,
    KubeObject,
    Mutation,
    add,
    both,
    edit,
    hardened_objects,
    judge,
    open_view,
)

__all__ = ["open_view"]  # the fixture, re-exported for this module's tests

Check = Callable[[KubernetesView, Policy, Evidence], None]
NS = "atlan-agent"
DEPLOYMENT = ("Deployment", "atlan-agent")
CONFIG_MAP = ("ConfigMap", "atlan-agent-config")
STORE = ("Component", "atlan-secretstore")
EGRESS = ("NetworkPolicy", "agent-egress")
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJyZXZpZXctb25seSJ9.cmV2aWV3LW9ubHktc2lnbmF0dXJl"
PASSWORD = "Tr0ub4dor-horse-77"  # noqa: S105 - a made-up test value
CHECKS: dict[str, Check] = {
    "SA-SECRET-002": secrets.check_no_plaintext_secrets,
    "SA-NET-009": tls_bypass.check_no_tls_bypass,
    "SA-NET-001": exposure.check_no_inbound_exposure,
    "SA-IAM-001": rbac.check_rbac,
    "SA-SEG-003": network_policy.check_egress_restricted,
}
BASELINE = {"SA-SEG-003": {"manifests": "partial", "live": "pass"}}
"""Baseline verdicts other than a pass: SA-SEG-003 cannot see the CNI in rendered manifests."""


@dataclass(frozen=True)
class Case:
    """One change to the hardened scenario, and the verdict one control must give on each view."""

    control: str
    name: str
    mutate: Mutation
    expected: str
    views: tuple[str, ...] = VIEWS

    def wanted(self, view: str) -> str:
        """The verdict on ``view`` (``keep``: the baseline's)."""
        if self.expected == "keep":
            return BASELINE.get(self.control, {}).get(view, "pass")
        return self.expected


def _container(*path: str | int, value: Any) -> Mutation:
    return edit(*DEPLOYMENT, "spec", "template", "spec", "containers", 0, *path, value=value)


def _annotate(value: str, key: str = "atlan.com/api-token", *, template: bool = True) -> Mutation:
    def mutate(objects: list[KubeObject]) -> None:
        [deployment] = [o for o in objects if o.get("kind") == "Deployment"]
        owner = deployment["spec"]["template"] if template else deployment
        owner["metadata"].setdefault("annotations", {})[key] = value

    return mutate


def _config(key: str, value: str, field: str = "data") -> Mutation:
    def mutate(objects: list[KubeObject]) -> None:
        [config_map] = [o for o in objects if o.get("kind") == "ConfigMap"]
        config_map.setdefault(field, {})[key] = value

    return mutate


def _store_metadata(*entries: dict[str, Any]) -> Mutation:
    def mutate(objects: list[KubeObject]) -> None:
        [store] = [o for o in objects if o.get("kind") == "Component"]
        store["spec"]["metadata"].extend(entries)

    return mutate


def _env(name: str, value: str) -> Mutation:
    def mutate(objects: list[KubeObject]) -> None:
        [deployment] = [o for o in objects if o.get("kind") == "Deployment"]
        deployment["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": name, "value": value})

    return mutate


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _probe(header: str) -> Mutation:
    return _container(
        "startupProbe",
        value={
            "httpGet": {
                "path": "/health",
                "port": "http",
                "httpHeaders": [{"name": "Authorization", "value": header}],
            }
        },
    )


def _hook(command: str) -> Mutation:
    return _container("lifecycle", value={"preStop": {"exec": {"command": ["sh", "-c", command]}}})


def _command(command: str) -> Mutation:
    return _container("command", value=["sh", "-c", command])


def _nested_config(text: str) -> Mutation:
    return _config("extra.yaml", text)


SECRET = "SA-SECRET-002"  # noqa: S105 - a control ID
SECRET_CASES = [
    Case(SECRET, "probe-header-bearer", _probe(f"Bearer {JWT}"), "fail"),
    Case(SECRET, "probe-header-basic", _probe("Basic " + _b64("admin:" + PASSWORD)), "fail"),
    Case(SECRET, "probe-header-harmless", _probe("application/json"), "keep"),
    Case(
        SECRET,
        "poststart-curl-user",
        _container(
            "lifecycle",
            value={
                "postStart": {
                    "exec": {"command": ["sh", "-c", f"curl -u admin:{PASSWORD} https://db.internal/warm"]}
                }
            },
        ),
        "fail",
    ),
    Case(SECRET, "prestop-env-password", _hook(f"PGPASSWORD={PASSWORD} psql -h db"), "fail"),
    Case(
        SECRET,
        "prestop-curl-user-reference",
        _hook("curl -u admin:$DB_PASSWORD https://db.internal/warm"),
        "keep",
    ),
    Case(
        SECRET,
        "liveness-exec-token",
        _container("livenessProbe", value={"exec": {"command": ["check", f"--token={JWT}"]}}),
        "fail",
    ),
    Case(SECRET, "pod-template-annotation-jwt", _annotate(JWT), "fail"),
    Case(SECRET, "workload-annotation-jwt", _annotate(JWT, template=False), "fail"),
    Case(SECRET, "annotation-secret-named-literal", _annotate(PASSWORD, "atlan.com/db-password"), "fail"),
    Case(
        SECRET,
        "annotation-checksum-of-a-secret",
        _annotate("a" * 8 + "0123456789abcdef" * 3 + "b" * 8, "checksum/secret"),
        "keep",
    ),
    Case(
        SECRET,
        "binary-data-env-file",
        _config("creds.env", _b64(f"DB_PASSWORD={PASSWORD}\n"), "binaryData"),
        "fail",
    ),
    Case(
        SECRET,
        "binary-data-yaml",
        _config("creds.yaml", _b64(f"db:\n  password: {PASSWORD}\n"), "binaryData"),
        "fail",
    ),
    Case(
        SECRET,
        "binary-data-in-binary-file",
        _config(
            "store.bin",
            base64.b64encode(b"\x00\x01\xff" + f"password={PASSWORD}".encode() + b"\x00\xfe").decode(),
            "binaryData",
        ),
        "fail",
    ),
    Case(
        SECRET,
        "binary-data-harmless",
        _config("logo.png", base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00").decode(), "binaryData"),
        "keep",
    ),
    Case(
        SECRET,
        "config-json-nested",
        _config("extra.json", json.dumps({"db": {"auth": {"password": PASSWORD}}})),
        "fail",
    ),
    Case(
        SECRET,
        "config-yaml-nested",
        _nested_config(f"db:\n  auth:\n    password:\n      {PASSWORD}\n"),
        "fail",
    ),
    Case(
        SECRET,
        "config-yaml-reference",
        _nested_config("db:\n  auth:\n    password: ${DB_PASSWORD}\n"),
        "keep",
    ),
    Case(
        SECRET,
        "dapr-value-beside-secretKeyRef",
        _store_metadata({"name": "password", "value": PASSWORD, "secretKeyRef": {"name": "d", "key": "d"}}),
        "fail",
    ),
    Case(
        SECRET,
        "dapr-secretKeyRef-only",
        _store_metadata({"name": "password", "secretKeyRef": {"name": "d", "key": "d"}}),
        "keep",
    ),
    Case(
        SECRET,
        "dapr-json-value",
        _store_metadata({"name": "auth", "value": json.dumps({"clientSecret": PASSWORD})}),
        "fail",
    ),
    Case(
        SECRET,
        "env-value-from-secret",
        _container("envFrom", value=[{"secretRef": {"name": "atlan-agent-registry"}}]),
        "keep",
    ),
]

TLS = "SA-NET-009"
TLS_CASES = [
    Case(TLS, "dapr-skipVerify", _store_metadata({"name": "skipVerify", "value": "true"}), "fail"),
    Case(TLS, "dapr-tlsSkipVerify", _store_metadata({"name": "tlsSkipVerify", "value": "True"}), "fail"),
    Case(TLS, "dapr-skipVerify-false", _store_metadata({"name": "skipVerify", "value": "false"}), "keep"),
    Case(TLS, "env-VAULT_SKIP_VERIFY", _env("VAULT_SKIP_VERIFY", "true"), "fail"),
    Case(TLS, "env-NODE_TLS_REJECT_UNAUTHORIZED", _env("NODE_TLS_REJECT_UNAUTHORIZED", "0"), "fail"),
    Case(TLS, "env-PYTHONHTTPSVERIFY", _env("PYTHONHTTPSVERIFY", "0"), "fail"),
    Case(TLS, "env-CURL_CA_BUNDLE-empty", _env("CURL_CA_BUNDLE", ""), "fail"),
    Case(TLS, "env-REQUESTS_CA_BUNDLE-empty", _env("REQUESTS_CA_BUNDLE", ""), "fail"),
    Case(TLS, "env-REQUESTS_CA_BUNDLE-set", _env("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca.pem"), "keep"),
    Case(TLS, "env-NODE_TLS_REJECT_UNAUTHORIZED-1", _env("NODE_TLS_REJECT_UNAUTHORIZED", "1"), "keep"),
    Case(TLS, "aws-no-verify-ssl", _command("aws s3 cp --no-verify-ssl s3://acme/x /tmp/x"), "fail"),
    Case(TLS, "curl-k", _command("curl -k https://acme.atlan.com/api"), "fail"),
    Case(TLS, "curl-sSk", _command("curl -sSk https://acme.atlan.com/api"), "fail"),
    Case(TLS, "curl-insecure", _command("curl --insecure https://acme.atlan.com/api"), "fail"),
    Case(
        TLS,
        "wget-no-check-certificate",
        _hook("wget --no-check-certificate https://acme.atlan.com/x"),
        "fail",
    ),
    Case(
        TLS, "curl-verified", _command("curl -sS --cacert /etc/ssl/ca.pem https://acme.atlan.com/api"), "keep"
    ),
    Case(
        TLS,
        "json-escaped-skip-verify",
        _config("config.json", '{"vault": {"insecure\\u0053kipVerify": true}}'),
        "fail",
    ),
    Case(
        TLS,
        "json-escaped-http-url",
        _config("config.json", '{"atlan": {"domain": "http:\\/\\/acme.atlan.com"}}'),
        "fail",
    ),
    Case(
        TLS, "yaml-value-on-next-line", _nested_config("registry:\n  insecureSkipVerify:\n    true\n"), "fail"
    ),
    Case(TLS, "yaml-tls-verify-false", _nested_config("objectStore:\n  tls:\n    verify: false\n"), "fail"),
    Case(
        TLS, "yaml-flow-tls-verify-false", _nested_config("objectStore: {tls: {verify: no}}\nx: 1\n"), "fail"
    ),
    Case(
        TLS, "yaml-rejectUnauthorized-false", _nested_config("http:\n  rejectUnauthorized: false\n"), "fail"
    ),
    Case(TLS, "yaml-tls-verify-true", _nested_config("objectStore:\n  tls:\n    verify: true\n"), "keep"),
    Case(TLS, "yaml-verify-false-outside-tls", _nested_config("schema:\n  verify: false\n"), "keep"),
    Case(
        TLS,
        "binary-data-skip-verify",
        _config("tls.yaml", _b64("insecureSkipVerify: true\n"), "binaryData"),
        "fail",
    ),
]

EXPOSURE = "SA-NET-001"
ISTIO_SERVICE = {
    "apiVersion": "networking.istio.io/v1beta1",
    "kind": "VirtualService",
    "metadata": {"name": "agent-ui", "namespace": NS},
    "spec": {
        "hosts": ["agent.example.com"],
        "gateways": ["istio-system/public"],
        "http": [{"route": [{"destination": {"host": "atlan-agent-metrics", "port": {"number": 8000}}}]}],
    },
}
ISTIO_GATEWAY = {
    "apiVersion": "networking.istio.io/v1beta1",
    "kind": "Gateway",
    "metadata": {"name": "public", "namespace": NS},
    "spec": {"selector": {"istio": "ingressgateway"}, "servers": [{"port": {"number": 80}, "hosts": ["*"]}]},
}


def _istio(**changes: Any) -> KubeObject:
    obj: KubeObject = json.loads(json.dumps(ISTIO_SERVICE))
    obj["metadata"].update(changes.pop("metadata", {}))
    obj["spec"].update(changes)
    return obj


def _only_namespace_objects(objects: list[KubeObject]) -> None:
    """Drop every workload: the agent's pods are gone, other objects stay."""
    objects[:] = [
        o for o in objects if o.get("kind") not in ("Deployment", "DaemonSet", "StatefulSet", "Pod")
    ]


def _nothing(objects: list[KubeObject]) -> None:
    objects.clear()


EXPOSURE_CASES = [
    Case(EXPOSURE, "no-objects-at-all", _nothing, "error"),
    Case(EXPOSURE, "no-agent-pods", _only_namespace_objects, "error"),
    Case(
        EXPOSURE,
        "no-agent-pods-but-a-load-balancer",
        both(
            _only_namespace_objects,
            edit("Service", "atlan-agent-metrics", "spec", "type", value="LoadBalancer"),
        ),
        "fail",
    ),
    Case(EXPOSURE, "istio-virtual-service-on-a-gateway", add(ISTIO_SERVICE), "fail", ("manifests",)),
    Case(
        EXPOSURE,
        "istio-virtual-service-elsewhere-routing-in",
        add(
            _istio(
                metadata={"namespace": "istio-system"},
                http=[{"route": [{"destination": {"host": f"atlan-agent-metrics.{NS}.svc.cluster.local"}}]}],
            )
        ),
        "fail",
        ("manifests",),
    ),
    Case(EXPOSURE, "istio-gateway-in-the-namespace", add(ISTIO_GATEWAY), "fail", ("manifests",)),
    Case(EXPOSURE, "istio-virtual-service-mesh-only", add(_istio(gateways=["mesh"])), "keep", ("manifests",)),
    Case(
        EXPOSURE, "istio-virtual-service-without-gateways", add(_istio(gateways=None)), "keep", ("manifests",)
    ),
    Case(
        EXPOSURE,
        "istio-virtual-service-elsewhere-routing-out",
        add(
            _istio(
                metadata={"namespace": "shop"},
                http=[{"route": [{"destination": {"host": "cart.shop.svc.cluster.local"}}]}],
            )
        ),
        "keep",
        ("manifests",),
    ),
]

IAM = "SA-IAM-001"
SA = {"kind": "ServiceAccount", "name": "atlan-agent", "namespace": NS}


def _cluster_grant(*rules: dict[str, Any]) -> Mutation:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "extra"},
        "rules": list(rules),
    }
    return both(add(role), _cluster_binding("extra"))


def _cluster_binding(role: str) -> Mutation:
    return add(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "extra"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [SA],
        }
    )


def _rule(group: str, resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def _role_binding_to(role: str) -> Mutation:
    return edit(
        "RoleBinding",
        "atlan-agent",
        "roleRef",
        value={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
    )


RBAC_GROUP = "rbac.authorization.k8s.io"
ADMISSION = "admissionregistration.k8s.io"
CERTIFICATES = "certificates.k8s.io"
IAM_CASES = [
    Case(
        IAM,
        "create-clusterrolebindings",
        _cluster_grant(_rule(RBAC_GROUP, ["clusterrolebindings"], ["create"])),
        "fail",
    ),
    Case(
        IAM,
        "create-rolebindings-cluster-wide",
        _cluster_grant(_rule(RBAC_GROUP, ["rolebindings"], ["create"])),
        "fail",
    ),
    Case(
        IAM,
        "patch-clusterrolebindings",
        _cluster_grant(_rule(RBAC_GROUP, ["clusterrolebindings"], ["patch"])),
        "fail",
    ),
    Case(IAM, "patch-pods-cluster-wide", _cluster_grant(_rule("", ["pods"], ["patch"])), "fail"),
    Case(
        IAM,
        "update-deployments-cluster-wide",
        _cluster_grant(_rule("apps", ["deployments"], ["update"])),
        "fail",
    ),
    Case(
        IAM, "patch-daemonsets-cluster-wide", _cluster_grant(_rule("apps", ["daemonsets"], ["patch"])), "fail"
    ),
    Case(IAM, "patch-cronjobs-cluster-wide", _cluster_grant(_rule("batch", ["cronjobs"], ["patch"])), "fail"),
    Case(
        IAM,
        "patch-ephemeralcontainers",
        _cluster_grant(_rule("", ["pods/ephemeralcontainers"], ["patch"])),
        "fail",
    ),
    Case(
        IAM,
        "update-ephemeralcontainers",
        _cluster_grant(_rule("", ["pods/ephemeralcontainers"], ["update"])),
        "fail",
    ),
    Case(
        IAM,
        "create-mutating-webhooks",
        _cluster_grant(_rule(ADMISSION, ["mutatingwebhookconfigurations"], ["create"])),
        "fail",
    ),
    Case(
        IAM,
        "patch-validating-webhooks",
        _cluster_grant(_rule(ADMISSION, ["validatingwebhookconfigurations"], ["patch"])),
        "fail",
    ),
    Case(
        IAM,
        "update-mutating-webhooks",
        _cluster_grant(_rule(ADMISSION, ["mutatingwebhookconfigurations"], ["update"])),
        "fail",
    ),
    Case(
        IAM,
        "create-serviceaccount-tokens",
        _cluster_grant(_rule("", ["serviceaccounts/token"], ["create"])),
        "fail",
    ),
    Case(
        IAM,
        "approve-csr",
        _cluster_grant(_rule(CERTIFICATES, ["certificatesigningrequests/approval"], ["update"])),
        "fail",
    ),
    Case(IAM, "approve-signers", _cluster_grant(_rule(CERTIFICATES, ["signers"], ["approve"])), "fail"),
    Case(IAM, "patch-nodes", _cluster_grant(_rule("", ["nodes"], ["patch"])), "fail"),
    Case(IAM, "proxy-nodes", _cluster_grant(_rule("", ["nodes"], ["proxy"])), "fail"),
    Case(
        IAM,
        "read-only-cluster-wide",
        _cluster_grant(
            _rule("", ["pods", "nodes"], ["get", "list"]),
            _rule(ADMISSION, ["mutatingwebhookconfigurations"], ["get"]),
        ),
        "keep",
    ),
    Case(
        IAM,
        "read-csrs",
        _cluster_grant(_rule(CERTIFICATES, ["certificatesigningrequests"], ["get", "list"])),
        "keep",
    ),
    Case(
        IAM, "builtin-aggregate-to-edit", _role_binding_to("system:aggregate-to-edit"), "fail", ("manifests",)
    ),
    Case(
        IAM,
        "builtin-aggregate-to-admin-cluster-wide",
        _cluster_binding("system:aggregate-to-admin"),
        "fail",
        ("manifests",),
    ),
    Case(IAM, "builtin-edit", _cluster_binding("edit"), "fail", ("manifests",)),
    Case(IAM, "builtin-cluster-admin", _cluster_binding("cluster-admin"), "fail", ("manifests",)),
    Case(
        IAM,
        "builtin-aggregate-to-view-in-namespace",
        _role_binding_to("system:aggregate-to-view"),
        "keep",
        ("manifests",),
    ),
]

SEG = "SA-SEG-003"
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def _dns_to(*peers: dict[str, Any]) -> Mutation:
    rule: dict[str, Any] = {"ports": DNS_PORTS}
    if peers:
        rule["to"] = list(peers)
    return edit(*EGRESS, "spec", "egress", 0, value=rule)


KUBE_SYSTEM = {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}
KUBE_DNS = {"matchLabels": {"k8s-app": "kube-dns"}}
SEG_CASES = [
    Case(SEG, "dns-without-to", _dns_to(), "fail"),
    Case(SEG, "dns-to-anywhere", _dns_to({"ipBlock": {"cidr": "0.0.0.0/0"}}), "fail"),
    Case(SEG, "dns-to-a-public-resolver", _dns_to({"ipBlock": {"cidr": "8.8.8.8/32"}}), "fail"),
    Case(SEG, "dns-to-every-namespace", _dns_to({"namespaceSelector": {}}), "fail"),
    Case(
        SEG,
        "dns-to-another-namespace",
        _dns_to({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "tunnel"}}}),
        "fail",
    ),
    Case(
        SEG,
        "dns-to-kube-dns-by-expression",
        _dns_to(
            {
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["kube-system"]}
                    ]
                },
                "podSelector": {
                    "matchExpressions": [{"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]
                },
            }
        ),
        "keep",
    ),
    Case(
        SEG,
        "dns-to-coredns",
        _dns_to({"namespaceSelector": KUBE_SYSTEM, "podSelector": {"matchLabels": {"k8s-app": "coredns"}}}),
        "keep",
    ),
    Case(
        SEG,
        "dns-to-kube-dns-pods-anywhere",
        _dns_to({"namespaceSelector": {}, "podSelector": KUBE_DNS}),
        "keep",
    ),
]

ALL_CASES = SECRET_CASES + TLS_CASES + EXPOSURE_CASES + IAM_CASES + SEG_CASES
RUNS = [(case, view) for case in ALL_CASES for view in case.views]


def _policy() -> Policy:
    return load_policy(POLICY).policy


@pytest.mark.parametrize(("case", "view_kind"), RUNS, ids=[f"{c.control}-{c.name}-{v}" for c, v in RUNS])
def test_redteam_case(case: Case, view_kind: str, open_view: Callable[..., KubernetesView]) -> None:
    objects = hardened_objects()
    case.mutate(objects)
    got, detail = judge(CHECKS[case.control], open_view(view_kind, objects), _policy())
    assert (got, case.control) == (case.wanted(view_kind), case.control), detail


@pytest.mark.parametrize("control", sorted(CHECKS))
@pytest.mark.parametrize("view_kind", VIEWS)
def test_the_hardened_scenario_keeps_its_verdicts(
    control: str, view_kind: str, open_view: Callable[..., KubernetesView]
) -> None:
    got, detail = judge(CHECKS[control], open_view(view_kind, hardened_objects()), _policy())
    assert got == BASELINE.get(control, {}).get(view_kind, "pass"), detail


@pytest.mark.parametrize(
    "text",
    ["# nothing rendered\n---\n...\n", "", "---\n---\n", "# only a comment\n"],
    ids=["comment-and-markers", "empty-file", "only-separators", "only-comment"],
)
@pytest.mark.parametrize("control", sorted(CHECKS))
def test_a_manifest_set_without_objects_is_never_a_pass(text: str, control: str, tmp_path: Any) -> None:
    from pytest_secagent.kubernetes.manifests import ManifestView

    (tmp_path / "a.yaml").write_text(text, encoding="utf-8")
    view = ManifestView(str(tmp_path), default_namespace=NS, target_id="manifests:empty")
    evidence = Evidence()
    with pytest.raises(EvidenceUnavailable):
        CHECKS[control](view, _policy(), evidence)


def test_findings_never_show_the_value(open_view: Callable[..., KubernetesView]) -> None:
    objects = hardened_objects()
    for case in SECRET_CASES:
        if case.expected == "fail":
            case.mutate(objects)
    evidence = Evidence()
    secrets.check_no_plaintext_secrets(open_view("manifests", objects), _policy(), evidence)
    summary = evidence.summary()
    assert evidence.failures
    for value in (PASSWORD, JWT, JWT[:40]):
        assert value not in summary


def test_scan_bounds_are_reported_not_passed(open_view: Callable[..., KubernetesView]) -> None:
    """More values than the scan reads: the control is partial, never a plain pass."""
    objects = hardened_objects()
    _config("huge.yaml", yaml.safe_dump({f"k{i}": i for i in range(25_000)}))(objects)
    for control in ("SA-SECRET-002", "SA-NET-009"):
        got, detail = judge(CHECKS[control], open_view("manifests", objects), _policy())
        assert got == "partial", detail
        assert "scan bounds" in detail


def test_matrix_size(record_property: Callable[[str, object], None]) -> None:
    """Every kind has harmless and harmful variants; the size is reported."""
    counts = {c: sum(1 for case, _ in RUNS if case.control == c) for c in CHECKS}
    record_property("runs per control", counts)
    for cases in (SECRET_CASES, TLS_CASES, EXPOSURE_CASES, IAM_CASES, SEG_CASES):
        verdicts = {c.expected for c in cases}
        assert "keep" in verdicts
        assert verdicts & {"fail", "error"}
