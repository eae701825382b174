"""The suites under faults, end to end: reports stay valid, and no canary credential is ever printed.

Inner pytest runs of the three Kubernetes suites against the test API server: one target
per fault kind (every list and access review of its caller faulted), and a cluster seeded
with canary credentials in env values, ConfigMap data, annotations and Secret data. The
JSON, JUnit and HTML reports must parse, no control may pass on a faulted target, and no
canary may appear in the terminal output (at every ``-v`` level) or in any report.
"""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kubernetes.apiauth import READ_EVERYTHING
from tests.kubernetes.apiserver import FakeApiServer
from tests.kubernetes.conftest import ApiServerFactory
from tests.kubernetes.faults import CANARY_ITEM, FaultRule
from tests.kubernetes.scenario_files import HARDENED, POLICY, materialize

SUITES = Path(__file__).resolve().parents[2] / "suites"
SUITE_FILES = [str(SUITES / f"test_kubernetes_{name}.py") for name in ("workloads", "network", "cluster")]
NAMESPACE = "atlan-agent"
REPORT_FAULTS = ("items-null", "string-item", "garbage", "truncated", "http-503", "redirect")
"""Faults that end at once (the deadlines have their own matrix)."""

CANARIES = {
    "env": "AKIAQ3EGRCANARYENV7X",
    "env-jwt": CANARY_ITEM,
    "configmap": "canary-cm-password-5c1f0a9e77d2",
    "annotation": "canary-annotation-secret-91be3f",
    "secret-data": "canary-secret-data-0d4c8a2e6b",
}


def _canary_objects() -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/part-of": "atlan-agent", "app.kubernetes.io/name": "canary"}
    secret_value = base64.b64encode(CANARIES["secret-data"].encode()).decode()
    annotations = {"secagent.test/note": f"password={CANARIES['annotation']}"}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "canary", "namespace": NAMESPACE, "labels": labels, "annotations": annotations},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels, "annotations": annotations},
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "public.ecr.aws/atlanhq/canary:1",
                                "env": [
                                    {"name": "AWS_ACCESS_KEY_ID", "value": CANARIES["env"]},
                                    {"name": "API_TOKEN", "value": CANARIES["env-jwt"]},
                                ],
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "canary", "namespace": NAMESPACE, "annotations": annotations},
            "data": {"db_password": CANARIES["configmap"]},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "canary", "namespace": NAMESPACE, "annotations": annotations},
            "data": {"password": secret_value},
        },
    ]


def _kubeconfig(server: FakeApiServer, users: list[str], path: Path) -> Path:
    """One kubeconfig, one context per caller (the context is named after the caller)."""
    config: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}
    for user in users:
        single = yaml.safe_load(server.kubeconfig_for(user, context=user).read_text(encoding="utf-8"))
        for key in ("clusters", "users", "contexts"):
            config[key].extend(single[key])
        config["current-context"] = user
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def _run(pytester: pytest.Pytester, users: list[str], *options: str) -> tuple[pytest.RunResult, dict[str, str]]:
    reports = {kind: pytester.path / f"report.{kind}" for kind in ("json", "xml", "html")}
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--assert=plain",
        "--secagent-policy",
        str(POLICY),
        *[arg for user in users for arg in ("--secagent-target", f"k8s://{user}/{NAMESPACE}")],
        "--secagent-timeout",
        "5",
        "--secagent-json",
        str(reports["json"]),
        "--secagent-junit",
        str(reports["xml"]),
        "--secagent-html",
        str(reports["html"]),
        *options,
        *SUITE_FILES,
    )
    texts = {kind: path.read_text(encoding="utf-8") for kind, path in reports.items()}
    texts["terminal"] = "\n".join(result.outlines + result.errlines)
    return result, texts


def test_faulted_targets_keep_the_reports_valid_and_pass_nothing(
    pytester: pytest.Pytester, k8s_apiserver_factory: ApiServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = {f"faulted-{kind}": READ_EVERYTHING for kind in REPORT_FAULTS}
    server = k8s_apiserver_factory(materialize(tmp_path / "hardened", HARDENED), users)
    for kind in REPORT_FAULTS:
        server.faults.add(FaultRule(kind, path=r"^/apis?/", user=f"faulted-{kind}"))
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(server, list(users), tmp_path / "kubeconfig.yaml")))
    _, texts = _run(pytester, list(users))
    document = json.loads(texts["json"])
    ET.fromstring(texts["xml"])
    assert texts["html"].lstrip().lower().startswith("<!doctype html")
    results = [r for r in document["results"] if r.get("target")]
    assert {r["target"] for r in results} == {f"k8s:{user}/{NAMESPACE}" for user in users}
    passed = [f"{r['target']} {r['control_id']}: {r['outcome']}" for r in results if r["outcome"] in ("passed", "partial")]
    assert passed == []
    errors = [r for r in results if r["outcome"] == "error"]
    assert len(errors) >= 27 * len(REPORT_FAULTS) - 8 * len(REPORT_FAULTS)  # live-only N/A aside
    for text in texts.values():
        assert CANARY_ITEM not in text


@pytest.mark.parametrize("verbosity", ["-q", "-v", "-vv", "-vvv"])
def test_canary_credentials_in_cluster_objects_are_never_printed(
    pytester: pytest.Pytester,
    k8s_apiserver_factory: ApiServerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    verbosity: str,
) -> None:
    server = k8s_apiserver_factory(materialize(tmp_path / "hardened", HARDENED), objects=_canary_objects())
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(server, ["auditor"], tmp_path / "kubeconfig.yaml")))
    result, texts = _run(pytester, ["auditor"], verbosity, "-rA", "--tb=long")
    document = json.loads(texts["json"])
    outcomes = {r["control_id"]: r["outcome"] for r in document["results"] if r.get("target")}
    assert outcomes["SA-SECRET-002"] == "failed", "the canaries are found"
    assert outcomes["SA-IAM-005"] == "failed", "the canary key is found"
    leaks = {
        f"{canary} in {where}"
        for where, text in texts.items()
        for canary, value in CANARIES.items()
        if value in text or base64.b64encode(value.encode()).decode() in text
    }
    assert leaks == set()
    assert re.search(r"SA-SECRET-002", texts["terminal"]) or verbosity == "-q"
    assert result.ret != 0
