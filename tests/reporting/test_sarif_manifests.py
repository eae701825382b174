"""SARIF of a ``manifests://`` run: valid SARIF 2.1.0, and the finding on its file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.reporting.helpers import load, sarif_errors

PRIVILEGED = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: agent
  namespace: atlan-agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
        - name: agent
          image: docker.io/atlanhq/agent@sha256:0123456789012345678901234567890123456789012345678901234567890123
          securityContext:
            privileged: true
"""


@pytest.fixture
def privileged_run(pytester: pytest.Pytester) -> dict[str, Any]:
    deploy = pytester.mkdir("deploy")
    (deploy / "agent.yaml").write_text(PRIVILEGED, encoding="utf-8")
    result = pytester.runpytest(
        "--secagent-target", "manifests://deploy/", "--secagent-controls", "SA-RUNTIME-007",
        "--secagent-sarif", "out.sarif", "-p", "no:cacheprovider",
    )
    assert result.ret == 1, result.stdout.str()
    return load(Path(pytester.path) / "out.sarif")


def _privileged_result(log: dict[str, Any]) -> dict[str, Any]:
    results: list[dict[str, Any]] = [r for r in log["runs"][0]["results"] if r["ruleId"] == "SA-RUNTIME-007"]
    assert len(results) == 1, results
    return results[0]


def test_a_manifests_run_validates_against_the_sarif_schema(privileged_run: dict[str, Any]) -> None:
    assert sarif_errors(privileged_run) == []
    result = _privileged_result(privileged_run)
    assert (result["kind"], result["level"]) == ("fail", "error")
    assert result["message"]["text"].startswith("SA-RUNTIME-007 [critical] on manifests:deploy/: ")
    rule = privileged_run["runs"][0]["tool"]["driver"]["rules"][result["ruleIndex"]]
    assert rule["id"] == "SA-RUNTIME-007"
    assert rule["properties"]["security-severity"] == "9.5"


def test_the_privileged_container_is_located_on_its_file_and_line(privileged_run: dict[str, Any]) -> None:
    location = _privileged_result(privileged_run)["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "deploy/agent.yaml", "uriBaseId": "SRCROOT"}
    # The Deployment, its container, its securityContext or the privileged field itself.
    assert location["region"]["startLine"] in (1, 14, 16, 17)
