"""The Evidence API and the fail-closed rules applied to every control test."""

from __future__ import annotations

import pytest

from pytest_secagent.evidence import ControlFailed, Evidence, Verdict
from pytest_secagent.redaction import Redactor

TARGET = ("--secagent-no-suites", "--secagent-target", "tls://127.0.0.1:9")


def test_expect_and_conclude() -> None:
    evidence = Evidence()
    assert evidence.expect("tls.version", expected=">= TLSv1.2", actual="TLSv1.3", ok=True)
    evidence.observe("cipher", "TLS_AES_256_GCM_SHA384")
    evidence.warn("expiry", expected=">= 30 days", actual="20 days")
    evidence.conclude()
    assert [o.verdict for o in evidence.observations] == [Verdict.OK, Verdict.INFO, Verdict.WARN]
    assert evidence.summary().splitlines() == [
        "[ok] tls.version: expected >= TLSv1.2; observed TLSv1.3",
        "[info] cipher: TLS_AES_256_GCM_SHA384",
        "[warn] expiry: expected >= 30 days; observed 20 days",
    ]


def test_conclude_lists_every_failure() -> None:
    evidence = Evidence()
    evidence.expect("a", expected=1, actual=2, ok=False)
    evidence.expect("b", expected="x", actual="x", ok=True)
    evidence.expect("c", expected=[1], actual=[], ok=False)
    with pytest.raises(ControlFailed) as excinfo:
        evidence.conclude()
    assert str(excinfo.value) == (
        "2 expectation(s) not met:\n  - a: expected 1; observed 2\n  - c: expected [1]; observed []"
    )


def test_conclude_without_evidence_fails() -> None:
    with pytest.raises(ControlFailed, match="no evidence was recorded"):
        Evidence().conclude()


def test_values_are_redacted_and_bounded() -> None:
    evidence = Evidence(redact=Redactor([r"corp-[0-9]+"]))
    evidence.observe("env", "AWS_ACCESS_KEY_ID=AKIAABCDEFGHIJKLMNOP password: hunter2 id corp-42")
    evidence.observe("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl")
    evidence.observe("big", "x" * 5000)
    env, jwt, big = evidence.observations
    assert env.actual == "AWS_ACCESS_KEY_ID=*** password: *** id ***"
    assert jwt.actual == "***"
    assert big.actual.endswith("... (cut: 5000 characters in all, 3000 not shown)")


def _run(pytester: pytest.Pytester, body: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_controls=body)
    return pytester.runpytest(*TARGET, *args)


def test_pass_without_evidence_fails(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
        import pytest
        @pytest.mark.secagent_control("SA-NET-007")
        def test_tls(secagent_target):
            pass
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "SA-NET-007 on tls:127.0.0.1:9 passed without recording any evidence; a control test records "
            "what it observed with the secagent_evidence fixture"
        ]
    )


def test_unmet_expectation_without_conclude_fails(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
        import pytest
        @pytest.mark.secagent_control("SA-NET-007")
        def test_tls(secagent_target, secagent_evidence):
            secagent_evidence.expect("version", expected="TLSv1.2", actual="TLSv1.0", ok=False)
        """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "SA-NET-007 on tls:127.0.0.1:9 recorded 1 unmet expectation(s) but did not fail; call "
            "secagent_evidence.conclude() at the end of the check",
            "[[]fail[]] version: expected TLSv1.2; observed TLSv1.0",
        ]
    )


def test_unavailable_evidence_is_an_error_with_its_reason(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
        import pytest
        from pytest_secagent.outcomes import EvidenceUnavailable

        @pytest.fixture
        def cluster(secagent_target):
            raise EvidenceUnavailable("list pods in atlan: 403 Forbidden")

        @pytest.mark.secagent_control("SA-NET-007")
        def test_in_call(secagent_target, secagent_evidence):
            raise EvidenceUnavailable("handshake timed out after 2s")

        @pytest.mark.secagent_control("SA-NET-005")
        def test_in_fixture(cluster, secagent_evidence):
            secagent_evidence.expect("x", expected=1, actual=1, ok=True)
        """,
        "-rE",
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "could not verify SA-NET-007 on tls:127.0.0.1:9: handshake timed out after 2s",
            "could not verify SA-NET-005 on tls:127.0.0.1:9: list pods in atlan: 403 Forbidden",
            "ERROR SA-NET-007 [[]high[]] on tls:127.0.0.1:9: *",
            "ERROR SA-NET-005 [[]high[]] on tls:127.0.0.1:9: *",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_not_applicable_and_not_observable_are_skips_not_passes(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
        import pytest
        from pytest_secagent.outcomes import not_applicable, not_observable

        @pytest.mark.secagent_control("SA-NET-007")
        def test_na(secagent_target):
            not_applicable("no Atlan endpoint declared")

        @pytest.mark.secagent_control("SA-NET-005")
        def test_hidden(secagent_target):
            not_observable("the managed control plane hides it")
        """,
        "-rs",
    )
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["Network security controls      -       0        0       0       0       0    1               1        0"])


def test_secrets_do_not_reach_the_report(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
        import pytest
        @pytest.mark.secagent_control("SA-NET-007")
        def test_tls(secagent_target, secagent_evidence):
            token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJl"
            secagent_evidence.expect("env", expected="no token", actual=f"TOKEN={token}", ok=False)
            assert token == "", f"client_secret={token}"
        """,
        "--junitxml=j.xml",
    )
    result.assert_outcomes(failed=1)
    assert "c2lnbmF0dXJl" not in result.stdout.str()
    assert "c2lnbmF0dXJl" not in (pytester.path / "j.xml").read_text()
