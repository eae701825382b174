"""The secagent_control marker: validation errors name the test, resolution follows the catalog."""

from __future__ import annotations

import pytest

POLICY_ONLY = ("--secagent-no-suites", "--secagent-target", "tls://127.0.0.1:9")


def _collect_error(pytester: pytest.Pytester, body: str) -> pytest.RunResult:
    pytester.makepyfile(test_controls=body)
    result = pytester.runpytest(*POLICY_ONLY)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*pluggy/_hooks.py*")
    return result


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.secagent_control(control_id, *, applies_to=None, *"])


def test_unknown_control_id(pytester: pytest.Pytester) -> None:
    result = _collect_error(
        pytester,
        """
        import pytest
        @pytest.mark.secagent_control("SA-NET-070")
        def test_tls(secagent_target, secagent_evidence):
            pass
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "ControlMarkerError: test_controls.py::test_tls: unknown control ID 'SA-NET-070': the SA- "
            "prefix is reserved for catalog controls; did you mean SA-NET-007?"
        ]
    )


def test_typo_in_marker_argument(pytester: pytest.Pytester) -> None:
    result = _collect_error(
        pytester,
        """
        import pytest
        @pytest.mark.secagent_control("SA-NET-007", aplies_to=["endpoint"])
        def test_tls(secagent_target):
            pass
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "ControlMarkerError: test_controls.py::test_tls: secagent_control() got an unexpected "
            "keyword argument 'aplies_to'"
        ]
    )


def test_missing_control_id(pytester: pytest.Pytester) -> None:
    result = _collect_error(
        pytester,
        """
        import pytest
        @pytest.mark.secagent_control
        def test_tls(secagent_target):
            pass
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "ControlMarkerError: test_controls.py::test_tls: secagent_control() missing 1 required "
            "positional argument: 'control_id'"
        ]
    )


def test_inline_metadata_contradicting_the_catalog(pytester: pytest.Pytester) -> None:
    result = _collect_error(
        pytester,
        """
        import pytest
        @pytest.mark.secagent_control("SA-NET-007", severity="low")
        def test_tls(secagent_target):
            pass
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "ControlMarkerError: test_controls.py::test_tls: severity='low' contradicts the catalog, "
            "which says 'high' for SA-NET-007; drop severity= from the marker"
        ]
    )


def test_bad_severity(pytester: pytest.Pytester) -> None:
    result = _collect_error(
        pytester,
        """
        import pytest
        @pytest.mark.secagent_control("ACME-001", title="t", severity="urgent", section="Acme",
                                      applies_to=["endpoint"])
        def test_acme(secagent_target):
            pass
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "ControlMarkerError: test_controls.py::test_acme: severity=: unknown severity 'urgent'; "
            "valid severities: low, medium, high, critical"
        ]
    )


def test_applies_to_outside_the_catalog(pytester: pytest.Pytester) -> None:
    result = _collect_error(
        pytester,
        """
        import pytest
        @pytest.mark.secagent_control("SA-NET-007", applies_to=["host"])
        def test_tls(secagent_target):
            pass
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "ControlMarkerError: test_controls.py::test_tls: applies_to=['host']: the catalog does "
            "not evidence SA-NET-007 on host targets (it can run on: endpoint)"
        ]
    )


def test_unknown_target_kind(pytester: pytest.Pytester) -> None:
    result = _collect_error(
        pytester,
        """
        import pytest
        @pytest.mark.secagent_control("ACME-001", title="t", severity="low", section="Acme",
                                      applies_to="vm")
        def test_acme(secagent_target):
            pass
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "ControlMarkerError: test_controls.py::test_acme: applies_to='vm' is not a target kind; "
            "valid kinds: host, k8s, manifests, endpoint, policy, compose"
        ]
    )


def test_custom_control_needs_its_metadata(pytester: pytest.Pytester) -> None:
    result = _collect_error(
        pytester,
        """
        import pytest
        @pytest.mark.secagent_control("ACME-001", title="Acme thing")
        def test_acme(secagent_target):
            pass
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "ControlMarkerError: test_controls.py::test_acme: control 'ACME-001' is not in the catalog, "
            "so the marker must declare severity=, section=, applies_to="
        ]
    )


def test_control_test_must_take_a_target(pytester: pytest.Pytester) -> None:
    result = _collect_error(
        pytester,
        """
        import pytest
        @pytest.mark.secagent_control("SA-OPS-003")
        def test_ir(secagent_evidence):
            pass
        """,
    )
    result.stdout.fnmatch_lines(
        [
            "ControlMarkerError: test_controls.py::test_ir: a secagent_control test receives its "
            "target through the secagent_target fixture; add secagent_target (or a fixture that uses it) "
            "to the test's arguments"
        ]
    )


def test_custom_control_runs_with_its_inline_metadata(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_controls="""
        import pytest
        @pytest.mark.secagent_control("ACME-001", title="Acme banner", severity="low",
                                      section="Acme hardening", applies_to=["endpoint"],
                                      remediation="Remove the banner.")
        def test_acme(secagent_target, secagent_control, secagent_evidence):
            assert secagent_control.severity.value == "low"
            secagent_evidence.expect("banner", expected="none", actual="none", ok=True)
            secagent_evidence.conclude()
        """
    )
    result = pytester.runpytest(*POLICY_ONLY, "-v", "--junitxml=j.xml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_acme?ACME-001:tls:127.0.0.1:9? PASSED*", "Acme hardening * 1 * 0 *"])
    junit = (pytester.path / "j.xml").read_text()
    assert '<property name="control_id" value="ACME-001" />' in junit
    assert '<property name="section" value="Acme hardening" />' in junit
