"""Small helpers of the check tests: real views over YAML written to a temporary folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.manifests import ManifestView
from pytest_secagent.policy import Policy
from pytest_secagent.policy.model import AgentSection

NAMESPACE = "atlan-agent"
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def manifest_view(folder: Path, *objects: dict[str, Any]) -> ManifestView:
    """Write ``objects`` as one multi-document file in ``folder`` and open a view on it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "manifests.yaml"
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
    return ManifestView(str(folder), default_namespace=NAMESPACE, target_id=f"manifests:{folder}")


def container(name: str = "app", **fields: Any) -> dict[str, Any]:
    """A hardened container, with ``fields`` replacing or adding keys."""
    base: dict[str, Any] = {
        "name": name,
        "image": "public.ecr.aws/atlanhq/app@sha256:" + "a" * 64,
        "securityContext": dict(CONTAINER_SECURITY),
        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
    }
    base.update(fields)
    return base


def deployment(name: str = "agent", *, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """A Deployment whose pod spec is hardened unless ``spec`` says otherwise."""
    pod_spec: dict[str, Any] = {
        "serviceAccountName": "agent",
        "automountServiceAccountToken": False,
        "securityContext": dict(POD_SECURITY),
        "containers": [container()],
    }
    pod_spec.update(spec)
    pod_labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "selector": {"matchLabels": pod_labels},
            "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
        },
    }


def policy(**agent: Any) -> Policy:
    """The default policy with agent settings replaced."""
    return dataclasses.replace(Policy(), agent=dataclasses.replace(AgentSection(), **agent))


def failures(evidence: Evidence) -> list[str]:
    """The names and observed values of every failed expectation."""
    return [f"{o.name}: {o.actual}" for o in evidence.failures]


def warnings(evidence: Evidence) -> list[str]:
    """The names and observed values of every warning."""
    return [f"{o.name}: {o.actual}" for o in evidence.warnings]


SKIPPED = pytest.skip.Exception
