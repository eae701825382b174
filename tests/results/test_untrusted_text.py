"""What a target sends cannot act on the terminal, break a report, or blow up its size.

A matrix of hostile values (terminal escapes, NUL, bidirectional overrides, a lone surrogate,
a 1 MB name) enters a control through every channel a check has (evidence names and values,
the reason of an error or a skip, an assertion message, an internal error's message), and
every report is checked: the terminal shows no raw control character, JUnit parses, JSON
validates against the schema, the HTML is written, and each stays bounded.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from lxml import etree

from pytest_secagent import results
from pytest_secagent.evidence import MAX_OBSERVATIONS, Evidence, Verdict
from pytest_secagent.json_report import schema
from pytest_secagent.safetext import printable
from tests.results.helpers import BASE_ARGS, make_run

HOSTILE = {
    "clear screen": "pod-\x1b[2J\x1b[H",
    "window title": "pod-\x1b]0;owned\x07",
    "NUL": "pod-\x00-x",
    "right-to-left override": "pod-\u202egnp.exe",
    "lone surrogate": "pod-\udc80-x",
    "C1 CSI": "pod-\x9b31m",
}
RAW = ("\x1b", "\x00", "\u202e", "\x07", "\x9b")

CHANNELS = {
    "evidence name": (
        "secagent_evidence.expect(NAME, expected='none', actual='x', ok=False)\n"
        "    secagent_evidence.conclude()"
    ),
    "evidence value": (
        "secagent_evidence.expect('pods', expected='none', actual=NAME, ok=False)\n"
        "    secagent_evidence.conclude()"
    ),
    "error reason": "raise EvidenceUnavailable('cannot list ' + NAME)",
    "skip reason": "from pytest_secagent.outcomes import not_applicable; not_applicable('no ' + NAME)",
    "assertion message": (
        "secagent_evidence.observe('pod', 'seen')\n"
        "    assert False, 'bad ' + NAME"
    ),
    "internal error": "raise KeyError(NAME)",
}

BODY = """
NAME = {name!r}

@pytest.mark.secagent_control("SA-ASSESS-001")
def test_hostile(secagent_target, secagent_evidence):
    {channel}
"""


def _reports(pytester: pytest.Pytester) -> tuple[str, str, str]:
    return (
        (pytester.path / "r.json").read_text(encoding="utf-8"),
        (pytester.path / "r.xml").read_text(encoding="utf-8"),
        (pytester.path / "r.html").read_text(encoding="utf-8"),
    )


@pytest.mark.parametrize("channel", sorted(CHANNELS))
@pytest.mark.parametrize("value", sorted(HOSTILE))
def test_hostile_text_is_escaped_in_every_report(pytester: pytest.Pytester, channel: str, value: str) -> None:
    make_run(pytester, BODY.format(name=HOSTILE[value], channel=CHANNELS[channel]))
    result = pytester.runpytest(
        *BASE_ARGS, "-rA", "-v", "--junitxml", "r.xml", "--secagent-json", "r.json", "--html", "r.html"
    )
    terminal = result.stdout.str() + result.stderr.str()
    # pytest's own colour codes are off in pytester runs: any ESC would come from the target.
    assert not [c for c in RAW if c in terminal], terminal[-2000:]
    document, junit, html = _reports(pytester)
    loaded = json.loads(document)
    jsonschema.validate(loaded, schema())
    etree.fromstring(junit.encode("utf-8"))
    assert "SA-ASSESS-001" in html
    for text in (document, junit):
        assert not [c for c in ("\x1b", "\x00", "\u202e") if c in text]
    record = loaded["results"][0]
    assert record["outcome"] in ("failed", "error", "not applicable")


def test_a_huge_name_is_cut_with_its_length_and_the_reports_stay_small(pytester: pytest.Pytester) -> None:
    huge = "n" * 1_000_000
    body = BODY.format(name=huge, channel=CHANNELS["evidence name"]) + BODY.format(
        name=huge, channel=CHANNELS["evidence value"]
    ).replace("test_hostile", "test_hostile_value")
    make_run(pytester, body)
    result = pytester.runpytest(*BASE_ARGS, "--junitxml", "r.xml", "--secagent-json", "r.json", "--html", "r.html")
    result.assert_outcomes(failed=2)
    document, junit, html = _reports(pytester)
    for text in (document, junit, html, result.stdout.str()):
        assert len(text) < 200_000, len(text)
    assert "(cut: 1000000 characters in all, 998000 not shown)" in document
    assert "(cut: 1000000 characters in all, 999500 not shown)" in document


def test_evidence_keeps_a_bounded_number_of_observations_and_still_fails() -> None:
    evidence = Evidence()
    for index in range(MAX_OBSERVATIONS):
        evidence.expect(f"pod {index}", expected="ok", actual="ok", ok=True)
    evidence.expect("pod late", expected="non-root", actual="root", ok=False)
    evidence.observe("note", "x")
    assert len(evidence.observations) == MAX_OBSERVATIONS
    assert evidence.dropped == {Verdict.FAIL: 1, Verdict.INFO: 1}
    assert evidence.failed_count == 1
    with pytest.raises(AssertionError, match=r"1 expectation\(s\) not met:\n\n  - \.\.\. and 1 more not shown"):
        evidence.conclude()
    assert evidence.summary().splitlines()[-1].startswith("[info] 2 more observation(s) not kept (1 fail, 1 info)")


def test_a_control_that_fails_past_the_bound_is_failed(pytester: pytest.Pytester) -> None:
    body = f"""
@pytest.mark.secagent_control("SA-ASSESS-001")
def test_many(secagent_target, secagent_evidence):
    for index in range({MAX_OBSERVATIONS}):
        secagent_evidence.expect(f"pod {{index}}", expected="ok", actual="ok", ok=True)
    secagent_evidence.expect("pod late", expected="non-root", actual="root", ok=False)
    secagent_evidence.conclude()
"""
    make_run(pytester, body)
    result = pytester.runpytest(*BASE_ARGS, "--secagent-json", "r.json")
    result.assert_outcomes(failed=1)
    loaded: dict[str, Any] = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    assert loaded["results"][0]["outcome"] == "failed"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("a\x00b", "a\\x00b"),
        ("a\u202eb", "a\\u202eb"),
        ("a\udc80b", "a\\udc80b"),
        ("line\nnext", "line\\x0anext"),
        ("tab\there", "tab\\x09here"),
        ("plain ünïcode ✓", "plain ünïcode ✓"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown
    printable(text).encode("utf-8")


def test_printable_keeps_lines_in_blocks() -> None:
    assert printable("a\nb\tc\x1b", lines=True) == "a\nb\tc\\x1b"


def test_a_target_string_with_terminal_escapes_is_shown_safely(pytester: pytest.Pytester) -> None:
    """The target itself (a path from an inventory, say) may hold escapes: every report stays valid."""
    folder = pytester.path / "rendered\x1b[31m\u202e\x9b2J"
    folder.mkdir()
    (folder / "x.yaml").write_text("{}\n", encoding="utf-8")
    make_run(pytester, """
@pytest.mark.secagent_control("SA-RUNTIME-008", applies_to=["manifests"])
def test_any(secagent_target, secagent_evidence):
    secagent_evidence.expect("x", expected="y", actual="z", ok=False)
    secagent_evidence.conclude()
""")
    result = pytester.runpytest(
        *BASE_ARGS, f"--secagent-target=manifests://{folder.name}", "-rA", "-v", "--junitxml", "p.xml",
        "--secagent-junit", "r.xml", "--secagent-json", "r.json", "--secagent-html", "r.html",
        "--secagent-sarif", "r.sarif",
    )
    result.assert_outcomes(failed=1)
    terminal = result.stdout.str() + result.stderr.str()
    assert not [c for c in RAW if c in terminal], terminal[-3000:]
    for name in ("p.xml", "r.xml"):
        etree.fromstring((pytester.path / name).read_bytes())
    for name in ("r.json", "r.html", "r.sarif", "r.xml"):
        text = (pytester.path / name).read_text(encoding="utf-8")
        assert not [c for c in ("\x1b", "\u202e", "\x9b") if c in text], name
    jsonschema.validate(json.loads((pytester.path / "r.json").read_text(encoding="utf-8")), schema())


def test_the_run_keeps_a_bounded_total_of_evidence(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the run's budget, controls keep only what did not hold, and say so."""
    monkeypatch.setattr(results, "MAX_RUN_EVIDENCE_CHARACTERS", 3000)
    make_run(pytester, """
@pytest.mark.parametrize("n", range(5))
@pytest.mark.secagent_control("SA-ASSESS-001")
def test_many(secagent_target, secagent_evidence, n):
    secagent_evidence.expect("big", expected="x", actual="y" * 1500, ok=True)
    secagent_evidence.expect("bad", expected="x", actual="z", ok=n != 4)
    secagent_evidence.conclude()
""")
    result = pytester.runpytest(*BASE_ARGS, "--secagent-json", "r.json")
    result.assert_outcomes(passed=4, failed=1)
    records = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))["results"]
    kept = [[e["name"] for e in r["evidence"]] for r in records]
    assert kept[0] == ["big", "bad"]
    assert kept[-1] == ["bad", "evidence not kept"]
    assert records[-1]["outcome"] == "failed"
