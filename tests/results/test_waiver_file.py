"""The waiver file: its format, matching, expiry, and every error message, pinned."""

from __future__ import annotations

import datetime as dt

import pytest

from pytest_secagent.waivers import Waiver, WaiverError, WaiverSet, WaiverStatus, parse_waivers, waiver_states
from tests.results.helpers import BASE_ARGS, MEDIUM_FAIL, days, make_run, write_waivers

TODAY = dt.date(2025, 6, 1)
USAGE_ERROR = pytest.ExitCode.USAGE_ERROR


def parse(text: str, max_days: int = 365) -> tuple[Waiver, ...]:
    return parse_waivers(text, "w.yaml", max_days=max_days, on=TODAY)


def parse_error(text: str, max_days: int = 365) -> str:
    with pytest.raises(WaiverError) as info:
        parse(text, max_days)
    return str(info.value)


ENTRY = "  - control: SA-NET-007\n    reason: vendor fix due\n    owner: sec@example.com\n"


def test_a_complete_entry() -> None:
    (waiver,) = parse(
        "version: 1\nwaivers:\n  - control: SA-NET-007\n    target: 'tls:*.example.com:443'\n"
        "    reason: vendor fix due\n    owner: sec@example.com\n    expires: 2025-09-30\n"
    )
    assert waiver == Waiver(
        control="SA-NET-007",
        reason="vendor fix due",
        owner="sec@example.com",
        expires=dt.date(2025, 9, 30),
        target="tls:*.example.com:443",
        index=0,
        line=3,
    )


def test_target_defaults_to_every_target_and_empty_files_hold_no_waivers() -> None:
    (waiver,) = parse("waivers:\n" + ENTRY + "    expires: 2025-07-01\n")
    assert waiver.target == "*"
    assert parse("") == ()
    assert parse("waivers:\n") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("waivers: [", "w.yaml:1: not valid YAML: expected the node content, but found '<stream end>'"),
        ("- a\n", "w.yaml:1: expected a mapping with a 'waivers' list, got a list"),
        ("waiver: []\n", "w.yaml:1: unknown key 'waiver'; valid keys: version, waivers"),
        ("version: 2\nwaivers: []\n", "w.yaml:1: version: expected 1, got '2'"),
        ("waivers: SA-NET-007\n", "w.yaml:1: waivers: expected a list, got 'SA-NET-007'"),
        (
            "waivers:\n  - SA-NET-007\n",
            "w.yaml:2: waivers[0]: expected a mapping with the fields control, reason, owner and expires",
        ),
        (
            "waivers:\n" + ENTRY,
            "w.yaml:2: waivers[0]: field 'expires' is missing; every waiver names control, reason, "
            "owner and expires",
        ),
        (
            "waivers:\n  - control: SA-NET-007\n    reason: r\n    expires: 2025-07-01\n",
            "w.yaml:2: waivers[0]: field 'owner' is missing; every waiver names control, reason, "
            "owner and expires",
        ),
        (
            "waivers:\n" + ENTRY + "    expiry: 2025-07-01\n",
            "w.yaml:5: waivers[0]: field 'expiry': unknown field; valid fields: control, target, "
            "reason, owner, expires",
        ),
        (
            "waivers:\n" + ENTRY + "    expires: 2025-07-01\n    owner: again\n",
            "w.yaml:6: key 'waivers[0].owner': appears twice (first on line 4); keep one",
        ),
        (
            "waivers:\n  - control: SA-NET-007\n    reason: ''\n    owner: o\n    expires: 2025-07-01\n",
            "w.yaml:3: waivers[0]: field 'reason': must not be empty",
        ),
        (
            "waivers:\n  - control: SA-NET-007\n    reason: r\n    owner:\n    expires: 2025-07-01\n",
            "w.yaml:4: waivers[0]: field 'owner': expected text, got nothing (null)",
        ),
        (
            "waivers:\n" + ENTRY + "    expires: 30/06/2025\n",
            "w.yaml:5: waivers[0]: field 'expires': expected a date (YYYY-MM-DD), got '30/06/2025'",
        ),
        (
            "waivers:\n" + ENTRY + "    expires: 2026-06-02\n",
            "w.yaml:5: waivers[0]: field 'expires': 2026-06-02 is 366 days ahead; a waiver may run at "
            "most 365 days (policy key waivers.max_days); choose an earlier date",
        ),
        (
            "waivers:\n  - control: SA-NET-07\n    reason: r\n    owner: o\n    expires: 2025-07-01\n",
            "w.yaml:2: waivers[0]: field 'control': unknown control ID 'SA-NET-07'; did you mean SA-NET-007?",
        ),
        (
            "waivers:\n" + ENTRY + "    expires: 2025-07-01\n" + ENTRY + "    expires: 2025-08-01\n",
            "w.yaml:6: waivers[1]: repeats waivers[0] (line 2): same control and target; keep one entry",
        ),
    ],
)
def test_every_mistake_names_file_line_entry_and_field(text: str, message: str) -> None:
    assert parse_error(text) == message


def test_the_policy_sets_how_far_ahead_a_waiver_may_run() -> None:
    text = "waivers:\n" + ENTRY + "    expires: 2025-07-02\n"
    assert parse(text, max_days=31)
    assert parse_error(text, max_days=30).endswith(
        "2025-07-02 is 31 days ahead; a waiver may run at most 30 days (policy key waivers.max_days); "
        "choose an earlier date"
    )


def test_custom_controls_outside_the_catalog_can_be_waived() -> None:
    (waiver,) = parse(
        "waivers:\n  - control: ACME-001\n    reason: r\n    owner: o\n    expires: 2025-07-01\n"
    )
    assert waiver.control == "ACME-001"


def _set(*waivers: Waiver) -> WaiverSet:
    return WaiverSet(source="w.yaml", sha256="0" * 64, waivers=waivers)


def test_matching_by_control_and_target_pattern_on_id_or_uri() -> None:
    waiver = Waiver("SA-NET-007", "r", "o", dt.date(2025, 7, 1), target="tls:*.example.com:443")
    waivers = _set(waiver)
    assert waivers.match("SA-NET-007", "tls:api.example.com:443", "tls://api.example.com:443", TODAY)
    assert waivers.match("SA-NET-007", "tls:api.other.org:443", "tls://api.other.org:443", TODAY) is None
    assert waivers.match("SA-NET-008", "tls:api.example.com:443", "", TODAY) is None
    by_uri = _set(Waiver("SA-NET-007", "r", "o", dt.date(2025, 7, 1), target="tls://db.*"))
    assert by_uri.match("SA-NET-007", "tls:db.internal:5432", "tls://db.internal:5432", TODAY)


def test_a_waiver_holds_through_its_expiry_day_and_not_after() -> None:
    waiver = Waiver("SA-NET-007", "r", "o", dt.date(2025, 7, 1))
    waivers = _set(waiver)
    on_the_day = waivers.match("SA-NET-007", "x", "", dt.date(2025, 7, 1))
    after = waivers.match("SA-NET-007", "x", "", dt.date(2025, 7, 2))
    assert on_the_day is not None
    assert on_the_day.applied
    assert after is not None
    assert not after.applied
    assert after.waiver == waiver


def test_a_current_waiver_wins_over_an_expired_one() -> None:
    old = Waiver("SA-NET-007", "old", "o", dt.date(2025, 5, 1), target="tls:*", index=0)
    new = Waiver("SA-NET-007", "new", "o", dt.date(2025, 7, 1), index=1)
    match = _set(old, new).match("SA-NET-007", "tls:a:443", "", TODAY)
    assert match is not None
    assert match.applied
    assert match.waiver is new


def test_states_after_a_run() -> None:
    applied = Waiver("SA-NET-007", "r", "o", dt.date(2025, 7, 1), index=0)
    expired = Waiver("SA-NET-008", "r", "o", dt.date(2025, 5, 1), index=1)
    unused = Waiver("SA-NET-009", "r", "o", dt.date(2025, 7, 1), index=2)
    not_run = Waiver("SA-EDR-001", "r", "o", dt.date(2025, 7, 1), index=3)
    states = waiver_states(
        _set(applied, expired, unused, not_run), [0, 0], {"SA-NET-007", "SA-NET-008", "SA-NET-009"}, TODAY
    )
    assert [(s.status, s.uses, s.problem) for s in states] == [
        (WaiverStatus.APPLIED, 2, False),
        (WaiverStatus.EXPIRED, 0, True),
        (WaiverStatus.UNUSED, 0, True),
        (WaiverStatus.NOT_RUN, 0, False),
    ]


# --- the options ----------------------------------------------------------------------------


def _stderr(result: pytest.RunResult) -> str:
    return "\n".join(result.errlines).strip()


def test_missing_waiver_file(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL)
    result = pytester.runpytest(*BASE_ARGS, "--secagent-waivers", "nope.yaml")
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        f"ERROR: --secagent-waivers: waiver file {pytester.path / 'nope.yaml'} does not exist; give the "
        "path of a YAML waiver file (the format is in the README, section 'Waivers')"
    )


def test_missing_waiver_file_from_ini(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL)
    pytester.makeini("[pytest]\nsecagent_waivers = risk/waivers.yaml\n")
    result = pytester.runpytest(*BASE_ARGS)
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        f"ERROR: secagent_waivers (ini): waiver file {pytester.path / 'risk/waivers.yaml'} does not exist; "
        "give the path of a YAML waiver file (the format is in the README, section 'Waivers')"
    )


def test_bad_entry_is_a_usage_error_naming_file_line_entry_and_field(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL)
    path = write_waivers(pytester, f"  - control: SA-ASSESS-001\n    reason: r\n    expires: {days(5)}\n")
    result = pytester.runpytest(*BASE_ARGS, "--secagent-waivers", str(path))
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        f"ERROR: secagent waivers {path}:2: waivers[0]: field 'owner' is missing; every waiver names "
        "control, reason, owner and expires\n"
        "fix the waiver file (the format is in the README, section 'Waivers')"
    )


def test_expiry_beyond_the_policy_maximum(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL, policy="waivers:\n  max_days: 30\n")
    path = write_waivers(
        pytester, "  - control: SA-ASSESS-001\n    reason: r\n    owner: o\n    expires: " + days(31) + "\n"
    )
    result = pytester.runpytest(*BASE_ARGS, "--secagent-waivers", str(path))
    assert result.ret == USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: secagent waivers {path}:5: waivers[0]: field 'expires': {days(31)} is 31 days ahead; "
            "a waiver may run at most 30 days (policy key waivers.max_days); choose an earlier date"
        ]
    )


def test_policy_maximum_must_be_positive(pytester: pytest.Pytester) -> None:
    make_run(pytester, MEDIUM_FAIL, policy="waivers:\n  max_days: 0\n")
    path = write_waivers(pytester, "")
    result = pytester.runpytest(*BASE_ARGS, "--secagent-waivers", str(path))
    assert result.ret == USAGE_ERROR
    assert _stderr(result) == (
        f"ERROR: {pytester.path / 'policy.yaml'}: key 'waivers.max_days': expected a positive number of "
        "days, got 0"
    )
