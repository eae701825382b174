"""The HTML report as a reader sees it: rendered by a real headless Chromium."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from lxml import html as lxml_html

from tests.reporting.helpers import RUN_ARGS, TLS_A, TLS_B, make_mixed_run
from tests.support import require_tool

pytestmark = pytest.mark.needs("chromium")


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    executable = require_tool("chromium", "chromium")
    return subprocess.run(
        [executable, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, check=True, timeout=120,
    )


@pytest.fixture
def report(pytester: pytest.Pytester) -> Path:
    make_mixed_run(pytester)
    pytester.runpytest(
        *RUN_ARGS, f"--secagent-target={TLS_A}", f"--secagent-target={TLS_B}", "--secagent-html=report.html"
    )
    return pytester.path / "report.html"


def test_a_reader_sees_header_chart_and_the_most_severe_failure_open(report: Path, tmp_path: Path) -> None:
    dom = lxml_html.fromstring(_chromium("--dump-dom", report.as_uri(), profile=tmp_path / "profile").stdout)
    assert str(dom.findtext(".//title")).startswith("pytest-secagent compliance report: tls:127.0.0.1:9, tls:127.0.0.1:10")
    assert dom.findtext(".//h1") == "Security baseline compliance report"
    verdict = dom.get_element_by_id("verdict").text_content()
    assert verdict.startswith("non-compliant (fail on high and above): 1 control failure(s) at or above high")
    header = dom.get_element_by_id("run-header").text_content()
    assert "tls://127.0.0.1:9" in header
    assert "policy.yaml" in header
    assert "sha256" in header
    assert "Duration" in header
    assert "Started" in header

    chart = dom.get_element_by_id("chart")
    bars = chart.xpath(".//*[local-name()='rect'][contains(@class, 'bar-score')]")
    assert {b.get("data-section") for b in bars} >= {"Network security controls", "Security assessment"}
    network = next(b for b in bars if b.get("data-section") == "Network security controls")
    assert float(network.get("width")) > 0
    failed_bars = chart.xpath(".//*[local-name()='rect'][contains(@class, 'bar-failed')][@data-severity='high']")
    assert float(failed_bars[0].get("width")) > 0

    rows = dom.xpath("//details[contains(@class, 'result')]")
    first = rows[0]
    assert (first.get("data-severity"), first.get("data-outcome")) == ("high", "failed")
    assert first.get("data-target") == "tls:127.0.0.1:9"
    assert first.get("open") is not None
    assert [r for r in rows if r.get("open") is not None] == [first]
    evidence = first.xpath(".//table[@class='evidence']//tr[@class='v-fail']/td")
    assert [td.text_content() for td in evidence] == [
        "fail", "TLS 1.0 refused", "handshake refused", "accepted", "deploy/agent.yaml:12"
    ]
    assert "Remediation:" in first.text_content()
    assert first.xpath(".//ul[@class='references']/li/a/@href")[0].startswith("https://")
    assert [r.get("data-outcome") for r in rows] == [
        "failed", "error", "partial", "waived", "passed", "passed", "passed", "failed", "error",
    ]
    not_applicable = dom.xpath("//details[@class='not-applicable']/summary")
    assert [s.text_content() for s in not_applicable] == [
        "no target of their kind in this run: 1 result(s) not applicable (SA-RUNTIME-002)"
    ]
    assert {s.get("data-filter") for s in dom.xpath("//select")} == {"section", "severity", "target", "outcome"}
    assert not dom.xpath("//script[@src] | //link[@href] | //img[@src]"), "the page loads nothing"


def test_a_url_fragment_opens_its_row(report: Path, tmp_path: Path) -> None:
    url = report.as_uri() + "#SA-NET-004--tls_127.0.0.1_9"
    dom = lxml_html.fromstring(_chromium("--dump-dom", url, profile=tmp_path / "profile").stdout)
    row = dom.get_element_by_id("SA-NET-004--tls_127.0.0.1_9")
    assert row.get("open") is not None
    assert "could not verify SA-NET-004 on tls:127.0.0.1:9: the inbound probe timed out after 3s" in row.text_content()


def test_the_report_renders_to_a_picture(report: Path, tmp_path: Path) -> None:
    picture = tmp_path / "report.png"
    _chromium(f"--screenshot={picture}", "--window-size=1200,1600", report.as_uri(), profile=tmp_path / "profile")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 20_000
