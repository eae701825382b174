"""The pytest-html report: the compliance summary on top, and every target string escaped."""

from __future__ import annotations

import pytest

from tests.results.helpers import (
    BASE_ARGS,
    HIGH_OK,
    UNVERIFIABLE,
    XSS_FAIL,
    XSS_POD,
    days,
    html_summary,
    html_tests,
    make_run,
    write_waivers,
)

ESCAPED_POD = "&lt;script&gt;alert(1)&lt;/script&gt;"

# A control on a manifests target whose path, and so the test ID, carries markup too.
XSS_TARGET = """
@pytest.mark.secagent_control("SA-RUNTIME-006", applies_to=("manifests",))
def test_non_root(secagent_target, secagent_evidence):
    secagent_evidence.expect(
        "pod <script>alert(1)</script>", expected="runAsNonRoot", actual="runAsNonRoot", ok=True
    )
    secagent_evidence.conclude()
"""
NOT_APPLICABLE = """
@pytest.mark.secagent_control("SA-NET-007")
def test_tls(secagent_target, secagent_evidence):
    secagent_evidence.observe("tls", "never runs: no endpoint target")
    secagent_evidence.conclude()
"""


def test_a_pod_named_like_a_script_appears_escaped(pytester: pytest.Pytester) -> None:
    make_run(pytester, XSS_FAIL, XSS_TARGET)
    # A manifests target must exist at start: a file whose path reads like markup.
    rendered = pytester.path / XSS_POD
    rendered.parent.mkdir(parents=True)
    rendered.write_text("{}\n", encoding="utf-8")
    result = pytester.runpytest(*BASE_ARGS, f"--secagent-target=manifests://{XSS_POD}", "--html=report.html")
    result.assert_outcomes(passed=1, failed=1)
    report = pytester.path / "report.html"

    # The markup never appears as such in the page, nor in any row once the data is decoded.
    assert XSS_POD not in report.read_text(encoding="utf-8")
    rows = html_tests(report)
    assert len(rows) == 2
    for row in rows:
        rendered = "".join(row["resultsTableRow"]) + row["log"] + row.get("testId", "")
        assert XSS_POD not in rendered
        assert ESCAPED_POD in rendered
    (failed,) = [r for r in rows if "test_pod_named_like_markup" in r["testId"]]
    assert f"<td>pod {ESCAPED_POD} runs as non-root</td>" in failed["log"]
    assert f"<td>pod {ESCAPED_POD}: runAsUser 0</td>" in failed["log"]
    (by_target,) = [r for r in rows if "test_non_root" in r["testId"]]
    assert f'<td class="col-target">manifests:{ESCAPED_POD}</td>' in by_target["resultsTableRow"]
    test_id = f"test_controls.py::test_non_root[SA-RUNTIME-006:manifests:{ESCAPED_POD}]"
    assert f'<td class="col-testId">{test_id}</td>' in by_target["resultsTableRow"]


def test_summary_block_on_top(pytester: pytest.Pytester) -> None:
    make_run(pytester, XSS_FAIL, HIGH_OK, UNVERIFIABLE, NOT_APPLICABLE)
    waivers = write_waivers(
        pytester,
        f"  - control: SA-ASSESS-002\n    reason: <b>bold</b> reason\n    owner: o\n    expires: {days(9)}\n",
    )
    result = pytester.runpytest(
        *BASE_ARGS, "--html=report.html", "--secagent-waivers", str(waivers), "--secagent-fail-on", "high"
    )
    assert result.ret == 6
    report = pytester.path / "report.html"
    text = report.read_text(encoding="utf-8")
    # Above pytest-html's own counts and the results table.
    assert text.index('<div class="secagent-summary">') < text.index('class="run-count"')
    assert text.index('<div class="secagent-summary">') < text.index('id="results-table"')
    summary = html_summary(report)
    assert "Score: <strong>33%</strong> (1 passed of 3 scored" in summary
    assert "Waived: 1; not applicable: 1; errors (could not verify): 1." in summary
    assert "Gate: unverified: 1 control(s) could not be verified: exit status 6" in summary
    # Score per baseline section, outcome columns.
    assert (
        "<tr><th>section</th><th>score</th><th>passed</th><th>partial</th><th>failed</th><th>waived</th><th>errors</th>"
        "<th>not applicable</th><th>not observable</th><th>skipped</th></tr>"
    ) in summary
    assert "<tr><td>Security assessment</td><td>0%</td><td>0</td><td>0</td><td>0</td><td>1</td><td>0</td>" in summary
    assert (
        "<tr><td>Identity and access management</td><td>100%</td><td>1</td><td>0</td><td>0</td><td>0</td><td>0</td>"
    ) in summary
    # Counts by severity.
    assert "<tr><td>high</td><td>1</td><td>0</td><td>0</td><td>0</td><td>0</td><td>1</td>" in summary
    assert "<tr><td>medium</td><td>0</td><td>0</td><td>0</td><td>1</td><td>1</td><td>0</td>" in summary
    # The waiver, escaped like everything else.
    assert "&lt;b&gt;bold&lt;/b&gt; reason" in summary
    assert "<b>bold</b>" not in text
