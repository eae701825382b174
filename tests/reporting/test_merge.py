"""``secagent report``: the merged reports of two runs equal those of one run over both targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_secagent.cli import main
from tests.reporting.helpers import (
    RUN_ARGS,
    TLS_A,
    TLS_B,
    load,
    make_mixed_run,
    sarif_errors,
    without_timings_html,
    without_timings_json,
    without_timings_junit,
    without_timings_sarif,
)
from tests.results.helpers import junit_schema_errors

ALL = ("--secagent-json={d}/r.json", "--secagent-sarif={d}/r.sarif", "--secagent-junit={d}/r.xml",
       "--secagent-html={d}/r.html")


def _run(pytester: pytest.Pytester, folder: str, *targets: str) -> Path:
    result = pytester.runpytest(
        *RUN_ARGS, *(f"--secagent-target={t}" for t in targets), *(a.format(d=folder) for a in ALL)
    )
    # One run has a failure at the gate's severity (1), the other only errors above it (6).
    assert result.ret in (1, 6), result.stdout.str()
    return pytester.path / folder


@pytest.fixture
def runs(pytester: pytest.Pytester) -> tuple[Path, Path, Path]:
    """The reports of a run over both targets, and of one run over each."""
    make_mixed_run(pytester)
    return _run(pytester, "single", TLS_A, TLS_B), _run(pytester, "a", TLS_A), _run(pytester, "b", TLS_B)


def test_merging_two_runs_equals_one_run_over_both_targets(
    runs: tuple[Path, Path, Path], pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    single, a, b = runs
    merged = pytester.path / "merged"
    status = main([
        "report", str(a / "r.json"), str(b / "r.json"), "--srcroot", str(pytester.path),
        "--json", f"{merged}/r.json", "--junit", f"{merged}/r.xml", "--html", f"{merged}/r.html",
        "--sarif", f"{merged}/r.sarif",
    ])
    assert status == 0, capsys.readouterr().err
    assert capsys.readouterr().out.splitlines() == [
        f"secagent: wrote JSON results to {merged}/r.json",
        f"secagent: wrote SARIF findings to {merged}/r.sarif",
        f"secagent: wrote JUnit XML to {merged}/r.xml",
        f"secagent: wrote HTML report to {merged}/r.html",
    ]
    one, two = load(single / "r.json"), load(merged / "r.json")
    assert without_timings_json(two) == without_timings_json(one)
    assert two["run"]["started_at"] == min(load(a / "r.json")["run"]["started_at"], load(b / "r.json")["run"]["started_at"])
    assert two["run"]["finished_at"] == max(load(a / "r.json")["run"]["finished_at"], load(b / "r.json")["run"]["finished_at"])
    assert without_timings_sarif(load(merged / "r.sarif")) == without_timings_sarif(load(single / "r.sarif"))
    assert sarif_errors(load(merged / "r.sarif")) == []
    assert without_timings_junit(merged / "r.xml") == without_timings_junit(single / "r.xml")
    assert junit_schema_errors(merged / "r.xml") == []
    html_one = without_timings_html((single / "r.html").read_text(encoding="utf-8"))
    html_two = without_timings_html((merged / "r.html").read_text(encoding="utf-8"))
    assert html_two == html_one


def test_the_same_control_and_target_with_different_results_is_an_error_naming_both_files(
    runs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, a, _ = runs
    other = load(a / "r.json")
    for record in other["results"]:
        if record["control_id"] == "SA-NET-007":
            record["outcome"] = "passed"
    changed = tmp_path / "other.json"
    changed.write_text(json.dumps(other), encoding="utf-8")
    status = main(["report", str(a / "r.json"), str(changed), "--json", str(tmp_path / "m.json")])
    assert status == 2
    assert capsys.readouterr().err == (
        f"secagent: error: report: SA-NET-007 on tls:127.0.0.1:9 is in both {a / 'r.json'} and {changed} "
        "with different results; merge runs over distinct targets, or leave one of the two files out\n"
    )
    assert not (tmp_path / "m.json").exists()


def test_runs_of_different_policies_do_not_merge(
    runs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, a, b = runs
    other = load(b / "r.json")
    other["run"]["policy"]["sha256"] = "0" * 64
    changed = tmp_path / "b.json"
    changed.write_text(json.dumps(other), encoding="utf-8")
    assert main(["report", str(a / "r.json"), str(changed), "--html", str(tmp_path / "m.html")]) == 2
    assert capsys.readouterr().err == (
        f"secagent: error: {a / 'r.json'} and {changed} were run with different policies; "
        "merge only runs of the same policy file\n".replace("error: ", "error: report: ", 1)
    )


def test_one_input_re_renders_the_run(runs: tuple[Path, Path, Path], pytester: pytest.Pytester) -> None:
    single, _, _ = runs
    again = pytester.path / "again"
    assert main(["report", str(single / "r.json"), "--srcroot", str(pytester.path),
                 "--json", f"{again}/r.json", "--sarif", f"{again}/r.sarif", "--junit", f"{again}/r.xml"]) == 0
    assert load(again / "r.json") == load(single / "r.json")
    assert load(again / "r.sarif") == load(single / "r.sarif")
    assert (again / "r.xml").read_text(encoding="utf-8") == (single / "r.xml").read_text(encoding="utf-8")
