"""Control metadata and evidence reach JUnit, HTML and the terminal, also under xdist."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

CONTROLS = """
import pytest

@pytest.mark.secagent_control("SA-NET-007")
def test_tls(secagent_target, secagent_evidence):
    secagent_evidence.expect("tls.minimum_version", expected=">= TLSv1.2", actual="TLSv1.0", ok=False)
    secagent_evidence.observe("banner", "<script>alert(1)</script>")
    secagent_evidence.conclude()

@pytest.mark.secagent_control("SA-OPS-003")
def test_ir(secagent_target, secagent_evidence):
    secagent_evidence.expect("runbook", expected="present", actual="https://wiki/runbook", ok=True)
    secagent_evidence.conclude()

@pytest.mark.secagent_control("SA-RUNTIME-005")
def test_psa(secagent_target, secagent_evidence):
    secagent_evidence.conclude()
"""
RUN = ("--secagent-no-suites", "--secagent-target", "tls://127.0.0.1:9", "-p", "no:randomly")


def _properties(junit: Path) -> dict[str, dict[str, str]]:
    cases: dict[str, dict[str, str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        cases[case.get("name", "")] = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
    return cases


def test_junit_has_control_properties(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_controls=CONTROLS)
    pytester.runpytest(*RUN, "--junitxml=j.xml")
    cases = _properties(pytester.path / "j.xml")
    assert set(cases) == {
        "test_tls[SA-NET-007:tls:127.0.0.1:9]",
        "test_ir[SA-OPS-003:policy]",
        "test_psa[SA-RUNTIME-005:not-applicable]",
    }
    tls = cases["test_tls[SA-NET-007:tls:127.0.0.1:9]"]
    assert tls["control_id"] == "SA-NET-007"
    assert tls["severity"] == "high"
    assert tls["section"] == "Network security controls"
    assert tls["baseline"] == "TLS 1.2 minimum"
    assert tls["target"] == "tls:127.0.0.1:9"
    assert tls["outcome"] == "failed"
    assert tls["evidence"] == (
        "[fail] tls.minimum_version: expected >= TLSv1.2; observed TLSv1.0\n"
        "[info] banner: <script>alert(1)</script>"
    )
    assert tls["remediation"].startswith("Remove TLS-downgrading middleboxes")
    assert cases["test_ir[SA-OPS-003:policy]"]["outcome"] == "passed"
    na = cases["test_psa[SA-RUNTIME-005:not-applicable]"]
    assert na["outcome"] == "not applicable"
    assert na["outcome_detail"] == "not applicable: no k8s or manifests target"


def test_junit_properties_are_the_same_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_controls=CONTROLS)
    pytester.runpytest(*RUN, "--junitxml=serial.xml")
    # xdist starts its own worker processes; the controller runs in a subprocess too.
    pytester.runpytest_subprocess(*RUN, "-n", "2", "--junitxml=parallel.xml")
    assert _properties(pytester.path / "parallel.xml") == _properties(pytester.path / "serial.xml")


def test_terminal_summary_table(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_controls=CONTROLS)
    result = pytester.runpytest(*RUN)
    result.stdout.fnmatch_lines(
        [
            "*= secagent compliance summary =*",
            "section                        score  passed  partial  failed  waived  errors  n/a  not observable  skipped",
            "Infrastructure security            -       0        0       0       0       0    1               0        0",
            "Network security controls         0%       0        0       1       0       0    0               0        0",
            "Ongoing security requirements   100%       1        0       0       0       0    0               0        0",
            "total                            50%       1        0       1       0       0    1               0        0",
            "FAILED SA-NET-007 [[]high[]] on tls:127.0.0.1:9: TLS*",
        ]
    )


def test_terminal_summary_is_printed_once_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_controls=CONTROLS)
    result = pytester.runpytest_subprocess(*RUN, "-n", "2")
    assert result.stdout.str().count("secagent compliance summary") == 1
    result.stdout.fnmatch_lines(["total                            50%       1        0       1       0       0    1 *"])


def test_html_report_has_control_columns_and_escapes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_controls=CONTROLS)
    pytester.runpytest(*RUN, "--html=r.html", "--self-contained-html")
    html = (pytester.path / "r.html").read_text()
    assert "Control</th>" in html
    assert "Severity</th>" in html
    assert "Target</th>" in html
    assert "SA-NET-007" in html
    assert "SA-OPS-003" in html
    assert "<script>alert(1)</script>" not in html
    assert "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;" in html or "&lt;script&gt;" in html
