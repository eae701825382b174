from __future__ import annotations

import pytest

from pytest_secagent.targets import (
    TARGET_FORMS,
    ContainerTarget,
    EndpointTarget,
    InClusterTarget,
    K8sTarget,
    LocalTarget,
    ManifestsTarget,
    SshTarget,
    Target,
    TargetError,
    TargetKind,
    parse_target,
)


@pytest.mark.parametrize(
    ("spec", "expected", "test_id"),
    [
        ("local://", LocalTarget(uri="local://"), "local"),
        ("ssh://agent-vm", SshTarget(uri="ssh://agent-vm", host="agent-vm"), "ssh:agent-vm"),
        (
            "ssh://ops@agent-vm:2222",
            SshTarget(uri="ssh://ops@agent-vm:2222", host="agent-vm", user="ops", port=2222),
            "ssh:ops@agent-vm:2222",
        ),
        ("ssh://[::1]:22", SshTarget(uri="ssh://[::1]:22", host="::1", port=22), "ssh:[::1]:22"),
        (
            "docker://atlan-agent",
            ContainerTarget(uri="docker://atlan-agent", container="atlan-agent"),
            "docker:atlan-agent",
        ),
        ("k8s://", K8sTarget(uri="k8s://"), "k8s:current"),
        ("k8s://prod", K8sTarget(uri="k8s://prod", context="prod"), "k8s:prod"),
        (
            "k8s://prod/atlan-agent",
            K8sTarget(uri="k8s://prod/atlan-agent", context="prod", namespace="atlan-agent"),
            "k8s:prod/atlan-agent",
        ),
        (
            "k8s:///atlan-agent",
            K8sTarget(uri="k8s:///atlan-agent", namespace="atlan-agent"),
            "k8s:current/atlan-agent",
        ),
        ("k8s-incluster://", InClusterTarget(uri="k8s-incluster://"), "k8s-incluster"),
        (
            "k8s-incluster://atlan",
            InClusterTarget(uri="k8s-incluster://atlan", namespace="atlan"),
            "k8s-incluster/atlan",
        ),
        (
            "manifests://rendered/",
            ManifestsTarget(uri="manifests://rendered/", path="rendered/"),
            "manifests:rendered/",
        ),
        (
            "manifests:///abs/*.yaml",
            ManifestsTarget(uri="manifests:///abs/*.yaml", path="/abs/*.yaml"),
            "manifests:/abs/*.yaml",
        ),
        (
            "tls://acme-temporal.atlan.com:443",
            EndpointTarget(
                uri="tls://acme-temporal.atlan.com:443",
                scheme="tls",
                host="acme-temporal.atlan.com",
                port=443,
            ),
            "tls:acme-temporal.atlan.com:443",
        ),
        (
            "https://acme.atlan.com",
            EndpointTarget(uri="https://acme.atlan.com", scheme="https", host="acme.atlan.com", port=443),
            "https:acme.atlan.com:443",
        ),
        (
            "https://127.0.0.1:8443/",
            EndpointTarget(uri="https://127.0.0.1:8443/", scheme="https", host="127.0.0.1", port=8443),
            "https:127.0.0.1:8443",
        ),
    ],
)
def test_parse_target(spec: str, expected: Target, test_id: str) -> None:
    target = parse_target(spec)
    assert target == expected
    assert target.id == test_id


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("local://", TargetKind.HOST),
        ("ssh://h", TargetKind.HOST),
        ("docker://c", TargetKind.HOST),
        ("k8s://", TargetKind.K8S),
        ("k8s-incluster://", TargetKind.K8S),
        ("manifests://x", TargetKind.MANIFESTS),
        ("tls://h:1", TargetKind.ENDPOINT),
        ("https://h", TargetKind.ENDPOINT),
    ],
)
def test_target_kind(spec: str, kind: TargetKind) -> None:
    assert parse_target(spec).kind is kind


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("bogus://x", "unknown scheme 'bogus'"),
        ("agent-vm", "a target is a URI with a scheme"),
        ("local://elsewhere", "the local target takes no host or path"),
        ("ssh://ops:hunter2@vm", "passwords never go in a target URI"),
        ("ssh://", "the host is missing"),
        ("ssh://vm:0", "port '0' is not a number from 1 to 65535"),
        ("ssh://vm:ssh", "port 'ssh' is not a number from 1 to 65535"),
        ("ssh://vm/path", "an ssh target has no path"),
        ("ssh://bad host", "is not a valid host name"),
        ("docker://", "docker:// needs a container name"),
        ("k8s://ctx/Not_A_Namespace", "is not a valid namespace name"),
        ("k8s://ctx/ns/extra", "a k8s target is k8s://[CONTEXT][/NAMESPACE]"),
        ("k8s://user:token@ctx", "credentials do not belong in a target URI"),
        ("manifests://", "manifests:// needs a file, folder or glob"),
        ("tls://host", "a tls target needs a port"),
        ("https://user:pw@host", "credentials do not belong in a target URI"),
        ("https://host/path", "a https target names a host and port, not a path"),
        ("https://host?x=1", "query strings and fragments"),
    ],
)
def test_parse_target_rejects(spec: str, reason: str) -> None:
    with pytest.raises(TargetError) as excinfo:
        parse_target(spec)
    message = str(excinfo.value)
    assert reason in message
    assert message.endswith(TARGET_FORMS)


def test_password_is_not_echoed_in_the_error() -> None:
    with pytest.raises(TargetError) as excinfo:
        parse_target("ssh://ops:hunter2@vm")
    message = str(excinfo.value)
    assert "hunter2" not in message
    assert "invalid target 'ssh://ops:***@vm'" in message
