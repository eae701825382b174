"""Speed and memory benchmarks of the plugin's hot paths, with the goals they are held to.

Run ``python bench/run.py`` from the checkout. Each benchmark prints its best time over a few
rounds and its peak traced memory, and whether it meets its goal; the exit status is 1 when a
goal is missed. Goals are sized for the 2-core CI machine.
"""

from __future__ import annotations

import copy
import gc
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pytest_secagent.evidence import Evidence
from pytest_secagent.kubernetes.manifests import ManifestView
from pytest_secagent.kubernetes.pss import evaluate
from pytest_secagent.policy import parse_policy

FULL_POLICY = """
run: {timeout_seconds: 5}
agent: {namespace: atlan-agent, selector: {app.kubernetes.io/part-of: atlan-agent}}
tls: {min_version: TLSv1.2, cert_min_days_left: 14, cert_warn_days_left: 30}
firewall_rules:
  outbound_allowed:
    - {destination: "*.atlan.com", port: 443, protocol: HTTPS}
    - {destination: "*.atlan.com", port: 443, protocol: gRPC/TLS}
  inbound_blocked:
    - all_traffic: DENY
network: {atlan_endpoints: [acme.atlan.com:443, acme-temporal.atlan.com:443]}
assessment:
  network_review: {date: 2026-06-01, reviewer: Jane, artifact_url: https://wiki/x}
  credential_review:
    date: 2026-06-01
    secret_store: aws-secrets-manager
    rotation_max_days: 90
    owners: [sec@example.com]
    credentials: [{name: Atlan OAuth client, owner: data@example.com}]
incident_response:
  runbook_url: https://wiki/ir
  internal_contact: soc@example.com
  atlan_contact: security@atlan.com
  last_exercise_date: 2026-09-01
  log_preservation: s3://siem
"""

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "agent", "namespace": "atlan-agent", "labels": {"app": "agent"}},
    "spec": {
        "selector": {"matchLabels": {"app": "agent"}},
        "template": {
            "metadata": {"labels": {"app": "agent"}},
            "spec": {
                "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [
                    {
                        "name": "app",
                        "image": "docker.io/atlanhq/app@sha256:" + "a" * 64,
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                    }
                ],
            },
        },
    },
}


@dataclass(frozen=True)
class Goal:
    """What a benchmark must stay under."""

    seconds: float
    megabytes: float


def measure(run: Callable[[], object], rounds: int = 3) -> tuple[float, float]:
    """Best wall time over ``rounds`` and the peak traced memory of one round, in MB."""
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    gc.collect()
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return best, peak / 1e6


def bench_policy() -> None:
    """Validate a complete policy file 100 times."""
    for _ in range(100):
        parse_policy(FULL_POLICY, "bench.yaml")


def bench_evidence() -> None:
    """Record and redact 10,000 observations."""
    evidence = Evidence()
    for i in range(10_000):
        evidence.expect(f"item{i}", expected="x", actual=f"value {i} token=abc{i}", ok=True)


def bench_pss() -> None:
    """Evaluate the Pod Security Standards on 5,000 pod templates."""
    for _ in range(5_000):
        evaluate(DEPLOYMENT)


def make_manifests(folder: Path, count: int) -> None:
    """Write ``count`` rendered Deployments as multi-document YAML files of 500 each."""
    docs: list[dict[str, Any]] = []
    for i in range(count):
        doc = copy.deepcopy(DEPLOYMENT)
        doc["metadata"]["name"] = f"agent-{i}"
        docs.append(doc)
    for start in range(0, count, 500):
        (folder / f"rendered-{start}.yaml").write_text(yaml.safe_dump_all(docs[start : start + 500]))


def bench_collection(folder: Path) -> Callable[[], object]:
    """Collect the built-in suites for 20 endpoint targets, in a fresh pytest process."""
    targets = [arg for i in range(20) for arg in ("--secagent-target", f"tls://127.0.0.{i + 1}:443")]

    def run() -> object:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *targets],
            cwd=folder,
            check=True,
            capture_output=True,
        )

    return run


def main() -> int:
    """Run every benchmark and report against its goal."""
    results: list[tuple[str, float, float, Goal]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_manifests(folder, 5_000)
        empty = folder / "empty"
        empty.mkdir()
        cases: list[tuple[str, Callable[[], object], Goal, int]] = [
            ("policy: validate a full policy file x100", bench_policy, Goal(0.5, 5), 3),
            ("evidence: 10,000 redacted observations", bench_evidence, Goal(1.0, 20), 3),
            ("pss: evaluate 5,000 pod templates", bench_pss, Goal(2.0, 10), 3),
            (
                "manifests: load 5,000 rendered Deployments",
                lambda: ManifestView(str(folder)),
                Goal(10.0, 300),
                1,
            ),
            (
                "collection: suites x 20 endpoint targets (process)",
                bench_collection(empty),
                Goal(15.0, 1000),
                1,
            ),
        ]
        for name, run, goal, rounds in cases:
            seconds, megabytes = measure(run, rounds)
            results.append((name, seconds, megabytes, goal))
    failed = 0
    for name, seconds, megabytes, goal in results:
        ok = seconds <= goal.seconds and megabytes <= goal.megabytes
        failed += not ok
        print(
            f"{'ok  ' if ok else 'MISS'} {name:<52} {seconds:7.3f} s (goal {goal.seconds:g}) "
            f"{megabytes:7.1f} MB peak (goal {goal.megabytes:g})"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
