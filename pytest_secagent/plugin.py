"""pytest-secagent hook implementations; the fixtures are imported from their modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_secagent import hooks
from pytest_secagent.applicability import binding_for, parametrize_targets
from pytest_secagent.catalog import load_catalog
from pytest_secagent.fixtures import *  # noqa: F403 - the plugin module exposes the fixtures
from pytest_secagent.host.engine.fixtures import *  # noqa: F403 - ditto
from pytest_secagent.host.fixtures import *  # noqa: F403 - ditto
from pytest_secagent.host.testinfra_host import TestinfraHosts
from pytest_secagent.html import HtmlColumns
from pytest_secagent.keys import BINDING_KEY
from pytest_secagent.kubernetes.fixtures import *  # noqa: F403 - ditto
from pytest_secagent.markers import register_markers
from pytest_secagent.network.fixtures import *  # noqa: F403 - ditto
from pytest_secagent.options import SETTINGS_KEY, Settings, add_options, resolve_settings
from pytest_secagent.reportguard import ReportGuard
from pytest_secagent.results import ResultRecorder
from pytest_secagent.safetext import printable
from pytest_secagent.suites_path import suites_dir
from pytest_secagent.summary import ComplianceResults
from pytest_secagent.targets.shard import ShardDeselection

_RECORDER = "secagent-results"
_SUMMARY = "secagent-summary"
_HTML = "secagent-html"
_GUARD = "secagent-report-guard"
_TESTINFRA = "secagent-testinfra-hosts"
_SHARD = "secagent-shard"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--secagent-*`` options and ini keys."""
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the plugin's hook specifications."""
    pluginmanager.add_hookspecs(hooks)


def _add_suites(config: pytest.Config) -> None:
    suites = suites_dir()
    for arg in config.args:
        path = Path(arg.split("::", 1)[0])
        path = (path if path.is_absolute() else Path(config.invocation_params.dir) / path).resolve()
        if path == suites or suites in path.parents:
            return
    config.args.append(str(suites))


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the settings, register the reporters, and add the built-in suites."""
    register_markers(config)
    if config.option.help or config.option.version:
        return
    settings = resolve_settings(config)
    config.stash[SETTINGS_KEY] = settings
    config.pluginmanager.register(ResultRecorder(settings.redactor), _RECORDER)
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(ReportGuard(), _GUARD)
        config.pluginmanager.register(ComplianceResults(), _SUMMARY)
        if config.pluginmanager.hasplugin("html"):
            config.pluginmanager.register(HtmlColumns(), _HTML)
    if settings.shard is not None:
        # A control another shard has a target for is that shard's, not "not applicable" here.
        kinds = (t.kind for t in (*settings.fleet_targets, settings.policy_target))
        config.pluginmanager.register(ShardDeselection(kinds), _SHARD)
    if settings.active:
        # After testinfra's own plugin, so that this run's ``host`` is bound to its targets.
        config.pluginmanager.register(TestinfraHosts(), _TESTINFRA)
    if settings.active and settings.include_suites:
        _add_suites(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Unregister what :func:`pytest_configure` registered."""
    guard = config.pluginmanager.get_plugin(_GUARD)
    if isinstance(guard, ReportGuard):
        guard.uninstall()
    for name in (_RECORDER, _GUARD, _SUMMARY, _HTML, _TESTINFRA, _SHARD):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin, name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each control test once per configured target of its kinds."""
    parametrize_targets(metafunc)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Remember each control test's control, and apply the control selection options."""
    settings: Settings | None = config.stash.get(SETTINGS_KEY, None)
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        binding = binding_for(item, item.nodeid, getattr(item, "fixturenames", ()))
        if binding is None:
            kept.append(item)
            continue
        item.stash[BINDING_KEY] = binding
        control = binding.control
        if settings is None or settings.selects(control.id, control.section, control.severity):
            kept.append(item)
        else:
            deselected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Print the effective policy, targets and selection."""
    settings: Settings | None = config.stash.get(SETTINGS_KEY, None)
    if settings is None or not settings.active:
        return []
    policy = settings.policy
    digest = f" (sha256 {policy.sha256[:12]})" if policy.sha256 else ""
    lines = [
        f"secagent: policy: {policy.source}{digest} [from {settings.sources.get('policy')}]",
        "secagent: targets: "
        + ", ".join(printable(t.uri) for t in settings.targets)
        + (", " if settings.targets else "")
        + f"policy:// [from {settings.sources.get('targets')}]",
        f"secagent: catalog: {len(load_catalog())} controls; timeout {settings.timeout:g}s; "
        f"active probes {'on' if settings.active_probes else 'off'}",
    ]
    selection = []
    if settings.controls:
        selection.append("controls " + ",".join(settings.controls))
    if settings.sections:
        selection.append("sections " + ",".join(settings.sections))
    if settings.min_severity is not None:
        selection.append(f"severity >= {settings.min_severity.value}")
    if selection:
        lines.append("secagent: selection: " + "; ".join(selection))
    return lines


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Hand every control result to the ``pytest_secagent_results`` hook, once."""
    summary = session.config.pluginmanager.get_plugin(_SUMMARY)
    if isinstance(summary, ComplianceResults):
        session.config.hook.pytest_secagent_results(
            config=session.config, results=list(summary.results.values())
        )
