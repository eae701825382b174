"""Container hardening checks (SA-RUNTIME-004, -006 to -011, -013, SA-LOG-005) on rendered manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.checks import health, identity, images, workload
from pytest_secagent.outcomes import EvidenceUnavailable
from tests.kubernetes.checkviews import (
    NAMESPACE,
    container,
    deployment,
    failures,
    manifest_view,
    policy,
    warnings,
)


@pytest.mark.parametrize(
    ("path", "exposes"),
    [
        ("/var/run/docker.sock", True),
        ("/run/containerd/containerd.sock", True),
        ("/run/podman/podman.sock", True),
        ("/var/run/crio/crio.sock", True),
        ("/var/run/", True),
        ("/run/containerd", True),
        ("/var/lib/docker", True),
        ("/etc/ssl/certs", False),
        ("/", True),
        ("/var", True),
        ("/var/", True),
        ("/var/lib", True),
        ("", False),
    ],
)
def test_engine_socket_paths(path: str, exposes: bool) -> None:
    assert workload.mounts_engine_socket(path) is exposes


def test_socket_mount_fails_004_and_is_only_noted_by_009(tmp_path: Path) -> None:
    volumes: list[dict[str, Any]] = [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}]
    view = manifest_view(tmp_path, deployment(volumes=volumes))
    evidence = Evidence()
    workload.check_socket_mounts(view, policy(), evidence)
    assert failures(evidence) == [
        "Deployment/agent in namespace atlan-agent: container-engine socket mounts: "
        "volume sock hostPath /var/run/docker.sock"
    ]
    evidence = Evidence()
    workload.check_host_isolation(view, policy(), evidence)
    assert failures(evidence) == []
    assert any("SA-RUNTIME-004" in o.actual for o in evidence.observations)


def test_host_root_mount_exposes_the_socket_and_fails_both_controls(tmp_path: Path) -> None:
    """``hostPath: /`` carries ``/run/docker.sock``: SA-RUNTIME-004 and -009 both fail."""
    volumes: list[dict[str, Any]] = [{"name": "host", "hostPath": {"path": "/"}}]
    view = manifest_view(tmp_path, deployment(volumes=volumes))
    evidence = Evidence()
    workload.check_socket_mounts(view, policy(), evidence)
    assert failures(evidence) == [
        "Deployment/agent in namespace atlan-agent: container-engine socket mounts: volume host hostPath /"
    ]
    evidence = Evidence()
    workload.check_host_isolation(view, policy(), evidence)
    assert failures(evidence) == ["Deployment/agent in namespace atlan-agent: host access: volume host hostPath /"]


def test_no_agent_pods_is_an_error_not_a_pass(tmp_path: Path) -> None:
    view = manifest_view(tmp_path, deployment(labels={"app": "other"}))
    with pytest.raises(
        EvidenceUnavailable, match=r"no agent pods found \(namespace atlan-agent, selector app=agent\)"
    ):
        workload.check_non_root(view, policy(selector={"app": "agent"}), Evidence())


def test_non_root_is_inherited_and_overridden_per_container(tmp_path: Path) -> None:
    spec: dict[str, Any] = {
        "securityContext": {"runAsNonRoot": True},
        "initContainers": [container("init", securityContext={"runAsUser": 0})],
        "containers": [container("app")],
        "ephemeralContainers": [
            {"name": "debug", "image": "busybox", "securityContext": {"runAsNonRoot": False}}
        ],
    }
    evidence = Evidence()
    workload.check_non_root(manifest_view(tmp_path, deployment(**spec)), policy(), evidence)
    failed = failures(evidence)
    assert len(failed) == 2
    assert "initContainer init" in failed[0]
    assert "runAsUser=0" in failed[0]
    assert "ephemeralContainer debug" in failed[1]
    assert "runAsNonRoot=false" in failed[1]


def test_run_as_group_zero_fails(tmp_path: Path) -> None:
    spec: dict[str, Any] = {"securityContext": {"runAsNonRoot": True, "runAsGroup": 0}}
    evidence = Evidence()
    workload.check_non_root(manifest_view(tmp_path, deployment(**spec)), policy(), evidence)
    assert "runAsGroup=0" in failures(evidence)[0]


def test_privileges_each_problem_named(tmp_path: Path) -> None:
    risky = container(
        "app",
        securityContext={"privileged": True, "capabilities": {"add": ["CAP_SYS_ADMIN"], "drop": ["NET_RAW"]}},
    )
    evidence = Evidence()
    workload.check_privileges(
        manifest_view(tmp_path, deployment(securityContext={"runAsNonRoot": True}, containers=[risky])),
        policy(),
        evidence,
    )
    container_failure = next(f for f in failures(evidence) if ": privileges:" in f)
    for text in (
        "privileged=true",
        "allowPrivilegeEscalation=unset",
        "capabilities.drop=['NET_RAW']",
        "capabilities.add=['SYS_ADMIN']",
        "seccompProfile.type=unset",
    ):
        assert text in container_failure


def test_net_bind_service_may_be_added(tmp_path: Path) -> None:
    app = container(
        securityContext={
            **container()["securityContext"],
            "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
        }
    )
    evidence = Evidence()
    workload.check_privileges(manifest_view(tmp_path, deployment(containers=[app])), policy(), evidence)
    assert failures(evidence) == []


def test_pss_listing_fails_own_rules_and_warns_with_the_owning_control(tmp_path: Path) -> None:
    spec: dict[str, Any] = {
        "securityContext": {
            "seccompProfile": {"type": "RuntimeDefault"}
        },  # runAsNonRoot missing: SA-RUNTIME-006
        "hostIPC": True,  # SA-RUNTIME-009
        "containers": [
            container(securityContext={**container()["securityContext"], "procMount": "Unmasked"})
        ],
    }
    evidence = Evidence()
    workload.check_privileges(manifest_view(tmp_path, deployment(**spec)), policy(), evidence)
    assert [f for f in failures(evidence) if "Pod Security Standards" in f] == [
        "Deployment/agent in namespace atlan-agent: Pod Security Standards restricted: procMount_restricted "
        '(restricted): container "app" must not set securityContext.procMount other than "Default"'
    ]
    warned = warnings(evidence)
    assert any("runAsNonRoot" in w for w in warned)
    assert any("hostNamespaces" in w for w in warned)
    assert {o.expected for o in evidence.warnings} == {
        "no violation (fails SA-RUNTIME-006)",
        "no violation (fails SA-RUNTIME-009)",
    }


def test_read_only_root_every_container(tmp_path: Path) -> None:
    spec: dict[str, Any] = {
        "initContainers": [container("init", securityContext={"readOnlyRootFilesystem": False})]
    }
    evidence = Evidence()
    workload.check_read_only_root(manifest_view(tmp_path, deployment(**spec)), policy(), evidence)
    assert failures(evidence) == ["Deployment/agent initContainer init: readOnlyRootFilesystem: false"]


def test_host_isolation_lists_every_host_access(tmp_path: Path) -> None:
    spec: dict[str, Any] = {
        "hostPID": True,
        "volumes": [
            {"name": "nfs", "nfs": {"server": "x", "path": "/"}},
            {"name": "etc", "hostPath": {"path": "/etc"}},
        ],
        "containers": [
            container(
                ports=[{"containerPort": 80, "hostPort": 8080}],
                livenessProbe={"tcpSocket": {"host": "10.0.0.1", "port": 80}},
            )
        ],
    }
    evidence = Evidence()
    workload.check_host_isolation(manifest_view(tmp_path, deployment(**spec)), policy(), evidence)
    [failure] = failures(evidence)
    for text in (
        "hostPID=true",
        "volume nfs of type nfs",
        "volume etc hostPath /etc",
        "hostPort 8080",
        "10.0.0.1",
    ):
        assert text in failure


def test_limits_from_pod_level_or_limit_range(tmp_path: Path) -> None:
    bare = container(resources={})
    view = manifest_view(
        tmp_path / "pod", deployment(containers=[bare], resources={"limits": {"cpu": "1", "memory": "1Gi"}})
    )
    evidence = Evidence()
    workload.check_resource_limits(view, policy(), evidence)
    assert failures(evidence) == []
    limit_range = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": "defaults", "namespace": NAMESPACE},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "512Mi"}}]},
    }
    evidence = Evidence()
    workload.check_resource_limits(
        manifest_view(tmp_path / "lr", deployment(containers=[bare]), limit_range), policy(), evidence
    )
    assert failures(evidence) == []
    assert "LimitRange defaults" in evidence.observations[0].actual
    evidence = Evidence()
    workload.check_resource_limits(
        manifest_view(tmp_path / "none", deployment(containers=[bare])), policy(), evidence
    )
    assert failures(evidence) == ["Deployment/agent container app: limits: none"]


def test_ephemeral_container_without_pod_limits_is_a_warning(tmp_path: Path) -> None:
    spec: dict[str, Any] = {"ephemeralContainers": [{"name": "debug", "image": "busybox"}]}
    evidence = Evidence()
    workload.check_resource_limits(manifest_view(tmp_path, deployment(**spec)), policy(), evidence)
    assert failures(evidence) == []
    assert warnings(evidence) == ["Deployment/agent ephemeralContainer debug: limits: none"]


@pytest.mark.parametrize(
    ("reference", "registry", "repository", "tag", "digest"),
    [
        ("agent", "docker.io", "library/agent", None, None),
        ("atlanhq/agent:2.0", "docker.io", "atlanhq/agent", "2.0", None),
        ("registry-1.docker.io/atlanhq/agent@sha256:ab", "docker.io", "atlanhq/agent", None, "sha256:ab"),
        ("localhost:5000/a/b:1@sha256:cd", "localhost:5000", "a/b", "1", "sha256:cd"),
        ("public.ecr.aws/atlanhq/redshift-app:2.0", "public.ecr.aws", "atlanhq/redshift-app", "2.0", None),
    ],
)
def test_parse_image(
    reference: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    assert images.parse_image(reference) == images.ImageRef(registry, repository, tag, digest)


def test_registry_prefix_must_end_at_a_path_boundary() -> None:
    allowed = ["docker.io/atlanhq", "public.ecr.aws/atlanhq"]
    assert images.registry_allowed(images.parse_image("atlanhq/agent"), allowed)
    assert images.registry_allowed(images.parse_image("index.docker.io/atlanhq/agent"), allowed)
    assert not images.registry_allowed(images.parse_image("docker.io/atlanhq-evil/agent"), allowed)
    assert not images.registry_allowed(images.parse_image("quay.io/atlanhq/agent"), allowed)


def test_image_problems(tmp_path: Path) -> None:
    spec: dict[str, Any] = {
        "initContainers": [container("init", image="public.ecr.aws/atlanhq/init")],
        "containers": [container("app", image="ghcr.io/someone/app:latest")],
    }
    evidence = Evidence()
    images.check_image_sources(manifest_view(tmp_path, deployment(**spec)), policy(), evidence)
    init, app = failures(evidence)
    assert "not pinned by @sha256 digest; uses the latest tag" in init
    assert "registry ghcr.io/someone/app not in the allow-list" in app


def test_service_account_token_and_default_account(tmp_path: Path) -> None:
    accounts: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "agent"},
            "automountServiceAccountToken": True,
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "old-token", "annotations": {"kubernetes.io/service-account.name": "agent"}},
        },
    ]
    view = manifest_view(tmp_path, deployment(automountServiceAccountToken=None), *accounts)
    evidence = Evidence()
    identity.check_service_accounts(view, policy(), evidence)
    assert failures(evidence) == [
        "Deployment/agent in namespace atlan-agent: service-account token automount: "
        "true (from ServiceAccount agent)",
        "ServiceAccount default in atlan-agent: token automount: unset (true)",
        "legacy service-account token Secrets in atlan-agent: old-token",
    ]
    evidence = Evidence()
    identity.check_service_accounts(view, policy(api_access=["agent"]), evidence)
    assert not any(f.startswith("Deployment/agent") for f in failures(evidence))


def test_probes_needed_for_services_not_for_jobs(tmp_path: Path) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {
            "template": {"metadata": {"labels": {"app": "once"}}, "spec": {"containers": [container("run")]}}
        },
    }
    probed = container(livenessProbe={"httpGet": {"port": 8000}}, readinessProbe={"httpGet": {"port": 8000}})
    view = manifest_view(tmp_path, deployment(containers=[probed, container("sidecar")]), job)
    evidence = Evidence()
    health.check_probes(view, policy(), evidence)
    assert failures(evidence) == [
        "Deployment/agent container sidecar: probes: missing livenessProbe, readinessProbe"
    ]
