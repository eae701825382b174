"""The mutation matrix: every field the workload controls read, mutated one at a time.

Start from the hardened scenario's pod template (``scenarios/hardened/deployment.yaml``)
and, for each field a workload control reads, write it absent, null, ``""``, ``[]``,
``{}``, in other letter case or a legacy spelling, set on the pod and overridden on the
container (and the reverse). Each mutation is placed in every workload kind and read in
both views: rendered manifests and a live cluster (the test API server, with its
controllers, defaults and admission). Then:

* the hardened baseline passes every control;
* a weakening mutation fails exactly the control that owns the field, and nothing else
  changes, except the controls listed with it (they read the same field);
* a meaning-preserving mutation keeps every verdict;
* a value of a type the API would refuse is an error (a pod template of an unknown
  shape), never a pass.

Each (kind, view) pair is one test over every mutation: one manifest view or one API
server holds all mutations at once, one namespace each, and the checks are called
directly. ``test_matrix_size`` prints the number of cases per control (run with ``-rA``).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import health, identity, images, workload
from pytest_secagent.kubernetes.live import LiveClusterView
from pytest_secagent.kubernetes.manifests import ManifestView
from pytest_secagent.kubernetes.resources import (
    CRON_JOBS,
    DAEMON_SETS,
    DEPLOYMENTS,
    JOBS,
    LIMIT_RANGES,
    PODS,
    REPLICA_SETS,
    REPLICATION_CONTROLLERS,
    SECRETS,
    SERVICE_ACCOUNTS,
    STATEFUL_SETS,
)
from pytest_secagent.kubernetes.view import KubernetesView
from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.policy import Policy
from pytest_secagent.policy.loader import load_policy
from tests.kubernetes.apiserver import start_apiserver
from tests.kubernetes.scenario_files import HARDENED, POLICY

KubeObject = dict[str, Any]
Spec = dict[str, Any]
Check = Callable[..., None]

CONTROLS: dict[str, Check] = {
    "SA-RUNTIME-004": workload.check_socket_mounts,
    "SA-RUNTIME-006": workload.check_non_root,
    "SA-RUNTIME-007": workload.check_privileges,
    "SA-RUNTIME-008": workload.check_read_only_root,
    "SA-RUNTIME-009": workload.check_host_isolation,
    "SA-RUNTIME-010": workload.check_resource_limits,
    "SA-RUNTIME-011": images.check_image_sources,
    "SA-RUNTIME-013": identity.check_service_accounts,
    "SA-LOG-005": health.check_probes,
}
"""Every control that reads the agent's pod templates, and its check."""

PASS, FAIL, ERROR = "pass", "fail", "error"
DIGEST = "sha256:" + "0123456789abcdef" * 4
LEGACY_SECCOMP = "seccomp.security.alpha.kubernetes.io/pod"
_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class Raw:
    """A scalar written into the YAML text as it is (``True``, ``FALSE``, ``off``...)."""

    text: str


@dataclass(frozen=True)
class Mutation:
    """One change to the hardened pod spec, and the verdicts it must produce.

    ``control`` owns the field; ``changes`` maps every control whose verdict changes to
    its verdict (empty: meaning-preserving). ``ERROR`` for every control means the spec
    is of a shape the API would refuse.
    """

    id: str
    control: str
    apply: Callable[[Spec], None]
    changes: dict[str, str] = field(default_factory=dict)

    def expected(self) -> dict[str, str]:
        """The verdict of every control."""
        return {control: self.changes.get(control, PASS) for control in CONTROLS}


def _invalid() -> dict[str, str]:
    return dict.fromkeys(CONTROLS, ERROR)


# -- where the fields are ----------------------------------------------------------------------


def _app(spec: Spec) -> KubeObject:
    return next(c for c in spec["containers"] if c["name"] == "app")


def _every_container(spec: Spec) -> list[KubeObject]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def _set(path: str, value: Any) -> Callable[[Spec], None]:
    """Set (or, with ``...``, delete) a field: ``pod.x.y`` or ``app.x.y`` (the app container)."""
    where, *keys = path.split(".")

    def apply(spec: Spec) -> None:
        target: KubeObject = spec if where == "pod" else _app(spec)
        for key in keys[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        if value is ...:
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = copy.deepcopy(value)

    return apply


def _all(*steps: Callable[[Spec], None]) -> Callable[[Spec], None]:
    def apply(spec: Spec) -> None:
        for step in steps:
            step(spec)

    return apply


def _each_container(key: str, value: Any) -> Callable[[Spec], None]:
    def apply(spec: Spec) -> None:
        for container in _every_container(spec):
            context = container.setdefault("securityContext", {})
            context[key] = copy.deepcopy(value)

    return apply


def _drop_container_resources(spec: Spec) -> None:
    for container in _every_container(spec):
        container.pop("resources", None)


def _add_volume(volume: KubeObject) -> Callable[[Spec], None]:
    def apply(spec: Spec) -> None:
        spec.setdefault("volumes", []).append(copy.deepcopy(volume))

    return apply


def _annotate(key: str, value: str) -> Callable[[Spec], None]:
    def apply(spec: Spec) -> None:
        spec["__annotations__"] = {key: value}

    return apply


def _variants(
    control: str,
    path: str,
    cases: list[tuple[str, Any, str | dict[str, str]]],
) -> list[Mutation]:
    """Mutations of one field: (id, value, verdict of ``control`` or an explicit change map)."""
    found = []
    for case_id, value, verdict in cases:
        changes = verdict if isinstance(verdict, dict) else ({} if verdict == PASS else {control: verdict})
        found.append(Mutation(f"{path}={case_id}", control, _set(path, value), changes))
    return found


WRONG_TYPES: list[tuple[str, Any, str | dict[str, str]]] = [
    ('""', "", _invalid()),
    ("[]", [], _invalid()),
    ("{}", {}, _invalid()),
]
"""Values of a type no securityContext field of a scalar type accepts."""


def mutations() -> list[Mutation]:
    """Every mutation of the matrix."""
    r6, r7, r8, r9, r4 = (
        "SA-RUNTIME-006",
        "SA-RUNTIME-007",
        "SA-RUNTIME-008",
        "SA-RUNTIME-009",
        "SA-RUNTIME-004",
    )
    r10, r11, r13 = "SA-RUNTIME-010", "SA-RUNTIME-011", "SA-RUNTIME-013"
    found: list[Mutation] = []
    # SA-RUNTIME-007: privileged, allowPrivilegeEscalation, capabilities, seccomp.
    found += _variants(
        r7,
        "app.securityContext.privileged",
        [
            ("null", None, PASS),
            ("false", False, PASS),
            ("true", True, FAIL),
            ('"false"', "false", _invalid()),
            *WRONG_TYPES,
            ("yaml-False", Raw("False"), PASS),
            ("yaml-FALSE", Raw("FALSE"), PASS),
            ("yaml-off", Raw("off"), PASS),
            ("yaml-True", Raw("True"), FAIL),
            ("yaml-TRUE", Raw("TRUE"), FAIL),
        ],
    )
    found += _variants(
        r7,
        "app.securityContext.allowPrivilegeEscalation",
        [
            ("absent", ..., FAIL),
            ("null", None, FAIL),
            ("true", True, FAIL),
            ('"false"', "false", _invalid()),
            *WRONG_TYPES,
            ("yaml-False", Raw("False"), PASS),
            ("yaml-FALSE", Raw("FALSE"), PASS),
            ("yaml-off", Raw("off"), PASS),
            ("yaml-True", Raw("True"), FAIL),
        ],
    )
    found += _variants(
        r7,
        "app.securityContext.capabilities",
        [
            ("absent", ..., FAIL),
            ("null", None, FAIL),
            ("{}", {}, FAIL),
            ('""', "", _invalid()),
            ("[]", [], _invalid()),
        ],
    )
    found += _variants(
        r7,
        "app.securityContext.capabilities.drop",
        [
            ("absent", ..., FAIL),
            ("null", None, FAIL),
            ("[]", [], FAIL),
            ("{}", {}, _invalid()),
            ('""', "", _invalid()),
            ('"ALL"', "ALL", _invalid()),
            # The runtime reads "all" as ALL, but the restricted Pod Security Standard (and so
            # its admission) accepts only "ALL": the control follows the standard.
            ("[all]", ["all"], FAIL),
            ("[ALL,NET_RAW]", ["ALL", "NET_RAW"], PASS),
        ],
    )
    found += _variants(
        r7,
        "app.securityContext.capabilities.add",
        [
            ("null", None, PASS),
            ("[]", [], PASS),
            ("[NET_BIND_SERVICE]", ["NET_BIND_SERVICE"], PASS),
            ("[SYS_ADMIN]", ["SYS_ADMIN"], FAIL),
            ("[sys_admin]", ["sys_admin"], FAIL),
            ("[CAP_SYS_ADMIN]", ["CAP_SYS_ADMIN"], FAIL),
            ("[net_bind_service]", ["net_bind_service"], FAIL),
            ("{}", {}, _invalid()),
        ],
    )
    found.append(
        Mutation(
            "capabilities-on-the-pod-only",  # a PodSecurityContext has no capabilities
            r7,
            _all(
                _set("app.securityContext.capabilities", ...),
                _set("pod.securityContext.capabilities", {"drop": ["ALL"]}),
            ),
            {r7: FAIL},
        )
    )
    found += _variants(
        r7,
        "pod.securityContext.seccompProfile",
        [
            ("absent", ..., FAIL),
            ("null", None, FAIL),
            ("{}", {}, FAIL),
            ("type-null", {"type": None}, FAIL),
            ('type-""', {"type": ""}, FAIL),
            ("type-Unconfined", {"type": "Unconfined"}, FAIL),
            ("type-runtimedefault", {"type": "runtimedefault"}, FAIL),
            ("type-Localhost", {"type": "Localhost", "localhostProfile": "agent.json"}, PASS),
            ('""', "", _invalid()),
            ("[]", [], _invalid()),
            ('"RuntimeDefault"', "RuntimeDefault", _invalid()),
        ],
    )
    found += [
        Mutation(
            "seccomp-on-every-container-not-the-pod",
            r7,
            _all(
                _set("pod.securityContext.seccompProfile", ...),
                _each_container("seccompProfile", {"type": "RuntimeDefault"}),
            ),
        ),
        Mutation(
            "seccomp-pod-RuntimeDefault-container-Unconfined",
            r7,
            _set("app.securityContext.seccompProfile", {"type": "Unconfined"}),
            {r7: FAIL},
        ),
        Mutation(
            # Every container overrides it, yet the restricted standard forbids Unconfined on the pod.
            "seccomp-pod-Unconfined-every-container-RuntimeDefault",
            r7,
            _all(
                _set("pod.securityContext.seccompProfile", {"type": "Unconfined"}),
                _each_container("seccompProfile", {"type": "RuntimeDefault"}),
            ),
            {r7: FAIL},
        ),
        Mutation(
            # The annotation is ignored since Kubernetes 1.27: without the field, no seccomp.
            "seccomp-legacy-annotation-only",
            r7,
            _all(
                _set("pod.securityContext.seccompProfile", ...), _annotate(LEGACY_SECCOMP, "runtime/default")
            ),
            {r7: FAIL},
        ),
        Mutation(
            "seccomp-legacy-annotation-and-field",
            r7,
            _annotate(LEGACY_SECCOMP, "runtime/default"),
        ),
    ]
    # SA-RUNTIME-006: runAsNonRoot, runAsUser, runAsGroup.
    found += _variants(
        r6,
        "pod.securityContext.runAsNonRoot",
        [
            ("absent", ..., FAIL),
            ("null", None, FAIL),
            ("false", False, FAIL),
            ('"true"', "true", _invalid()),
            *WRONG_TYPES,
            ("yaml-True", Raw("True"), PASS),
            ("yaml-TRUE", Raw("TRUE"), PASS),
        ],
    )
    found += [
        Mutation(
            "runAsNonRoot-on-every-container-not-the-pod",
            r6,
            _all(_set("pod.securityContext.runAsNonRoot", ...), _each_container("runAsNonRoot", True)),
        ),
        Mutation(
            "runAsNonRoot-pod-true-container-false",
            r6,
            _set("app.securityContext.runAsNonRoot", False),
            {r6: FAIL},
        ),
        Mutation(
            "runAsNonRoot-pod-false-every-container-true",
            r6,
            _all(_set("pod.securityContext.runAsNonRoot", False), _each_container("runAsNonRoot", True)),
        ),
    ]
    found += _variants(
        r6,
        "pod.securityContext.runAsUser",
        [
            ("absent", ..., PASS),
            ("null", None, PASS),
            ("0", 0, FAIL),
            ('"0"', "0", _invalid()),
            ('"1000"', "1000", _invalid()),
            *WRONG_TYPES,
        ],
    )
    found += [
        Mutation("runAsUser-pod-1000-container-0", r6, _set("app.securityContext.runAsUser", 0), {r6: FAIL}),
        Mutation(
            "runAsUser-pod-0-every-container-1000",
            r6,
            _all(_set("pod.securityContext.runAsUser", 0), _each_container("runAsUser", 1000)),
        ),
        Mutation("runAsGroup-pod-0", r6, _set("pod.securityContext.runAsGroup", 0), {r6: FAIL}),
        Mutation("runAsGroup-container-0", r6, _set("app.securityContext.runAsGroup", 0), {r6: FAIL}),
    ]
    # SA-RUNTIME-008: readOnlyRootFilesystem.
    found += _variants(
        r8,
        "app.securityContext.readOnlyRootFilesystem",
        [
            ("absent", ..., FAIL),
            ("null", None, FAIL),
            ("false", False, FAIL),
            ('"true"', "true", _invalid()),
            *WRONG_TYPES,
            ("yaml-True", Raw("True"), PASS),
            ("yaml-TRUE", Raw("TRUE"), PASS),
            ("yaml-yes", Raw("yes"), PASS),
        ],
    )
    found.append(
        Mutation(
            "readOnlyRootFilesystem-on-the-pod-only",  # a PodSecurityContext has no such field
            r8,
            _all(
                _set("app.securityContext.readOnlyRootFilesystem", ...),
                _set("pod.securityContext.readOnlyRootFilesystem", True),
            ),
            {r8: FAIL},
        )
    )
    # SA-RUNTIME-009: host namespaces and host paths; SA-RUNTIME-004: engine sockets.
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        found += _variants(
            r9,
            f"pod.{key}",
            [
                ("true", True, FAIL),
                ("yaml-True", Raw("True"), FAIL),
                ("yaml-yes", Raw("yes"), FAIL),
                ("false", False, PASS),
                ("null", None, PASS),
                ('"true"', "true", _invalid()),
                *WRONG_TYPES,
            ],
        )
    found += [
        Mutation(
            "hostPath-/etc", r9, _add_volume({"name": "host", "hostPath": {"path": "/etc"}}), {r9: FAIL}
        ),
        Mutation(
            "hostPath-/ETC", r9, _add_volume({"name": "host", "hostPath": {"path": "/ETC"}}), {r9: FAIL}
        ),
        Mutation(
            "hostPath-docker.sock",  # SA-RUNTIME-004's finding; SA-RUNTIME-009 notes it only
            r4,
            _add_volume({"name": "sock", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}}),
            {r4: FAIL},
        ),
        Mutation(
            "hostPath-/VAR/RUN/DOCKER.SOCK",  # another path on a case-sensitive filesystem
            r9,
            _add_volume({"name": "sock", "hostPath": {"path": "/VAR/RUN/DOCKER.SOCK"}}),
            {r9: FAIL},
        ),
        Mutation(
            "hostPath-/",  # the host's root holds the engine socket too: both controls
            r4,
            _add_volume({"name": "root", "hostPath": {"path": "/"}}),
            {r4: FAIL, r9: FAIL},
        ),
        Mutation("hostPath-null", r9, _add_volume({"name": "scratch", "hostPath": None})),
        Mutation("hostPath-{}", r9, _add_volume({"name": "host", "hostPath": {}}), {r9: FAIL}),
        Mutation("hostPath-string", r9, _add_volume({"name": "host", "hostPath": "/etc"}), _invalid()),
        Mutation(
            "volume-gitRepo-legacy",
            r9,
            _add_volume({"name": "repo", "gitRepo": {"repository": "https://example.invalid/a.git"}}),
            {r9: FAIL},
        ),
        Mutation("volumes-{}", r9, _set("pod.volumes", {}), _invalid()),
    ]
    # SA-RUNTIME-011: the image reference.
    repository = "public.ecr.aws/atlanhq/redshift-app"
    found += _variants(
        r11,
        "app.image",
        [
            ("tag-only", f"{repository}:1.2.3", FAIL),
            ("short-digest", f"{repository}@sha256:abc", FAIL),
            ("upper-case-digest", f"{repository}@{DIGEST.upper()}", FAIL),
            ("latest-and-digest", f"{repository}:latest@{DIGEST}", FAIL),
            ("other-registry", f"ghcr.io/atlanhq/redshift-app@{DIGEST}", FAIL),
            ("registry-upper-case", f"PUBLIC.ECR.AWS/atlanhq/redshift-app@{DIGEST}", PASS),
            ("docker.io", f"docker.io/atlanhq/redshift-app@{DIGEST}", PASS),
            ("index.docker.io-legacy", f"index.docker.io/atlanhq/redshift-app@{DIGEST}", PASS),
            ("docker-hub-implicit", f"atlanhq/redshift-app@{DIGEST}", PASS),
            ("absent", ..., FAIL),
            ("null", None, FAIL),
            ('""', "", FAIL),
            ("[]", [], _invalid()),
            ("{}", {}, _invalid()),
        ],
    )
    # SA-RUNTIME-010: limits.
    found += _variants(
        r10,
        "app.resources",
        [
            ("absent", ..., FAIL),
            ("null", None, FAIL),
            ("{}", {}, FAIL),
            ("limits-null", {"limits": None}, FAIL),
            ("limits-{}", {"limits": {}}, FAIL),
            ("limits-cpu-only", {"limits": {"cpu": "2"}}, FAIL),
            ('limits-memory-""', {"limits": {"cpu": "2", "memory": ""}}, FAIL),
            ("limits-upper-case", {"limits": {"CPU": "2", "MEMORY": "2Gi"}}, FAIL),
            ('""', "", _invalid()),
            ("limits-[]", {"limits": []}, _invalid()),
        ],
    )
    found.append(
        Mutation(
            "limits-on-the-pod-not-the-containers",
            r10,
            _all(_drop_container_resources, _set("pod.resources", {"limits": {"cpu": "3", "memory": "3Gi"}})),
        )
    )
    # SA-RUNTIME-013: the service account and its token.
    found += _variants(
        r13,
        "pod.automountServiceAccountToken",
        [("true", True, FAIL), ("null", None, PASS), ('""', "", _invalid())],
    )
    found += [
        Mutation(
            "serviceAccount-legacy-field",
            r13,
            _all(_set("pod.serviceAccountName", ...), _set("pod.serviceAccount", "atlan-agent")),
        ),
        Mutation("serviceAccountName-absent", r13, _set("pod.serviceAccountName", ...), {r13: FAIL}),
    ]
    ids = [m.id for m in found]
    assert len(ids) == len(set(ids)), "mutation IDs must be unique"
    return found


MUTATIONS = mutations()
BASELINE = Mutation("hardened", "", lambda spec: None)

# -- the workload kinds ------------------------------------------------------------------------------

KINDS: dict[str, tuple[str, str]] = {
    "Deployment": ("apps/v1", "Deployment"),
    "StatefulSet": ("apps/v1", "StatefulSet"),
    "DaemonSet": ("apps/v1", "DaemonSet"),
    "ReplicaSet": ("apps/v1", "ReplicaSet"),
    "ReplicationController": ("v1", "ReplicationController"),
    "Job": ("batch/v1", "Job"),
    "CronJob": ("batch/v1", "CronJob"),
    "Pod": ("v1", "Pod"),
    "Deployment-extensions-v1beta1": ("extensions/v1beta1", "Deployment"),
}


def _hardened_template() -> KubeObject:
    (deployment,) = yaml.safe_load_all((HARDENED / "deployment.yaml").read_text(encoding="utf-8"))
    template: KubeObject = deployment["spec"]["template"]
    return template


def _support_objects() -> list[KubeObject]:
    """The hardened scenario's nodes (for the scheduler); nothing else is shared."""
    return [d for d in yaml.safe_load_all((HARDENED / "cluster-nodes.yaml").read_text(encoding="utf-8")) if d]


def agent_object(kind_id: str, namespace: str, template: KubeObject) -> KubeObject:
    """The hardened agent as a ``kind_id`` object in ``namespace`` with ``template``."""
    api_version, kind = KINDS[kind_id]
    metadata = {"name": "atlan-agent", "namespace": namespace}
    labels = template["metadata"]["labels"]
    if kind == "Pod":
        return {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {**metadata, **template["metadata"]},
            "spec": template["spec"],
        }
    if kind in ("Job", "CronJob"):
        template["spec"]["restartPolicy"] = "Never"
        spec: KubeObject = {"template": template}
        if kind == "CronJob":
            spec = {"schedule": "*/10 * * * *", "jobTemplate": {"spec": spec}}
    elif kind == "ReplicationController":
        spec = {"replicas": 2, "selector": dict(labels), "template": template}
    else:
        spec = {"selector": {"matchLabels": dict(labels)}, "template": template}
        if kind != "DaemonSet":
            spec["replicas"] = 2
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}


def accounts(namespace: str) -> list[KubeObject]:
    """The agent's account and the namespace's default one, neither mounting a token."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
            "automountServiceAccountToken": False,
        }
        for name in ("atlan-agent", "default")
    ]


def _raw_values(value: Any, found: dict[str, str], counter: Iterator[int]) -> Any:
    if isinstance(value, Raw):
        token = f"raw-scalar-{next(counter)}-end"
        found[token] = value.text
        return token
    if isinstance(value, dict):
        return {k: _raw_values(v, found, counter) for k, v in value.items()}
    if isinstance(value, list):
        return [_raw_values(v, found, counter) for v in value]
    return value


def _yaml(objects: list[KubeObject]) -> str:
    raws: dict[str, str] = {}
    plain = _raw_values(objects, raws, itertools.count())
    text = yaml.dump_all(plain, Dumper=_DUMPER, sort_keys=False)
    for token, raw in raws.items():
        text = text.replace(token, raw)
    return text


def namespace_of(index: int) -> str:
    """The namespace that holds the ``index``-th case (0 is the hardened baseline)."""
    return f"case-{index:03d}"


CASES = [BASELINE, *MUTATIONS]


def write_cases(folder: Path, kind_id: str) -> Path:
    """Write every case of ``kind_id`` as manifests (one file per namespace) under ``folder``."""
    folder.mkdir(parents=True)
    base = _hardened_template()
    (folder / "nodes.yaml").write_text(yaml.safe_dump_all(_support_objects()), encoding="utf-8")
    for index, case in enumerate(CASES):
        namespace = namespace_of(index)
        template = copy.deepcopy(base)
        case.apply(template["spec"])
        annotations = template["spec"].pop("__annotations__", None)
        if annotations:
            template["metadata"]["annotations"] = {
                **template["metadata"].get("annotations", {}),
                **annotations,
            }
        objects = [*accounts(namespace), agent_object(kind_id, namespace, template)]
        (folder / f"{namespace}.yaml").write_text(_yaml(objects), encoding="utf-8")
    return folder


# -- running the checks ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenario_policy() -> Policy:
    """The scenario tests' policy (agent selector, allowed registries)."""
    return load_policy(POLICY).policy


def verdict(check: Check, view: KubernetesView, policy: Policy, namespace: str) -> str:
    """``pass``, ``fail`` or ``error`` of one control on one namespace."""
    evidence = Evidence()
    try:
        check(view, policy, evidence, namespace)
    except EvidenceUnavailable:
        return ERROR
    return FAIL if evidence.failures else PASS


def _prime(view: LiveClusterView) -> None:
    """List each kind cluster-wide once; every namespace is then served from those lists."""
    for resource in (
        DEPLOYMENTS,
        STATEFUL_SETS,
        DAEMON_SETS,
        REPLICA_SETS,
        REPLICATION_CONTROLLERS,
        JOBS,
        CRON_JOBS,
        PODS,
        SERVICE_ACCOUNTS,
        LIMIT_RANGES,
    ):
        view.list(resource)
    view.list_metadata(SECRETS)


@pytest.fixture
def open_view(tmp_path: Path) -> Iterator[Callable[[str, str], KubernetesView]]:
    """Open the view of one kind's cases: ``manifests`` or ``live`` (a test API server)."""
    closers: list[Callable[[], None]] = []

    def opener(kind_id: str, which: str) -> KubernetesView:
        folder = write_cases(tmp_path / "cases", kind_id)
        if which == "manifests":
            return ManifestView(str(folder), default_namespace="atlan-agent")
        server = start_apiserver(tmp_path / "apiserver", folder)
        closers.append(server.stop)
        view = LiveClusterView.from_kubeconfig(str(server.kubeconfig_for("auditor")), timeout=30)
        closers.append(view.close)
        _prime(view)
        return view

    yield opener
    for close in reversed(closers):
        close()


@pytest.mark.parametrize("which", ["manifests", "live"])
@pytest.mark.parametrize("kind_id", list(KINDS))
def test_mutation_matrix(
    open_view: Callable[[str, str], KubernetesView], scenario_policy: Policy, kind_id: str, which: str
) -> None:
    """Every mutation of every field, in one kind and one view: exactly the expected verdicts."""
    view = open_view(kind_id, which)
    wrong = []
    for index, case in enumerate(CASES):
        namespace = namespace_of(index)
        got = {
            control: verdict(check, view, scenario_policy, namespace) for control, check in CONTROLS.items()
        }
        expected = case.expected()
        if got != expected:
            diff = {c: f"{expected[c]} -> {got[c]}" for c in CONTROLS if got[c] != expected[c]}
            wrong.append(f"{kind_id} {which} {case.id} ({namespace}): {diff}")
    assert wrong == [], f"{len(wrong)} of {len(CASES)} cases wrong:\n" + "\n".join(wrong)


def matrix_size() -> dict[str, int]:
    """Cases per control: each mutation counts for the control that owns its field, in every kind and view."""
    views = 2
    counts = dict.fromkeys(CONTROLS, len(KINDS) * views)  # the hardened baseline, per control
    for mutation in MUTATIONS:
        counts[mutation.control] += len(KINDS) * views
    return counts


def test_matrix_size() -> None:
    """Report the size of the matrix (shown with ``-rA``); every control has weakening and kept cases."""
    counts = matrix_size()
    print(f"mutation matrix: {len(MUTATIONS)} mutations + the baseline, x {len(KINDS)} kinds x 2 views")
    for control, count in counts.items():
        print(f"  {control}: {count} cases")
    print(
        f"  total: {len(CASES) * len(KINDS) * 2} cases, {len(CASES) * len(KINDS) * 2 * len(CONTROLS)} verdicts"
    )
    owned = {m.control for m in MUTATIONS}
    assert owned == set(CONTROLS) - {"SA-LOG-005"}, "every control that reads a mutated field is covered"
    for control in owned:
        weakening = [m for m in MUTATIONS if m.control == control and m.changes.get(control) == FAIL]
        kept = [m for m in MUTATIONS if m.control == control and not m.changes]
        assert weakening, f"{control} has no weakening mutation"
        assert kept or control == "SA-RUNTIME-004", f"{control} has no meaning-preserving mutation"
