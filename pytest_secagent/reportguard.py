"""Write the reports of one run together: no interrupt lands between them, and an interrupted run says so.

Every report (pytest's JUnit, pytest-html, the JSON results) is written in
``pytest_sessionfinish``. :class:`ReportGuard` wraps that whole hook: SIGINT and SIGTERM are
held back while the reports are written, so a second Ctrl-C cannot leave a new JUnit beside an
old JSON. A signal that arrives meanwhile is taken once the reports are complete and said on
the terminal; the reports stand, since they describe what ran.

The first SIGINT (or SIGTERM, which a CI runner sends on its time-out) interrupts the run as
Ctrl-C does; from then on both are held back until the reports are written and only noted
after that, until the process exits: a second Ctrl-C while pytest handles the first, writes
the reports or cleans up can no longer escape with the run recorded as finished (SIGKILL
still ends it).

A run that did not finish (pytest's status 2, interrupted) is marked as such in every report:
the JSON's ``run.interrupted``, a JUnit ``<property name="secagent_interrupted">`` on each test
suite, and a line at the top of the HTML summary.
"""

from __future__ import annotations

import atexit
import os
import signal
import tempfile
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Generator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

__all__ = ["GUARDED_SIGNALS", "ReportGuard", "mark_junit_interrupted"]

#: The signals held back while the reports are written.
GUARDED_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})

JUNIT_PROPERTY = "secagent_interrupted"


def mark_junit_interrupted(path: Path) -> None:
    """Add ``secagent_interrupted=true`` to every test suite of the JUnit file, atomically.

    Raises ``OSError`` when the file cannot be read or replaced, and ``ElementTree.ParseError``
    when it is not XML.
    """
    tree = ElementTree.parse(path)  # noqa: S314 - the file pytest's own JUnit writer just wrote
    root = tree.getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    for suite in suites:
        properties = suite.find("properties")
        if properties is None:
            properties = ElementTree.Element("properties")
            suite.insert(0, properties)
        marker = ElementTree.SubElement(properties, "property")
        marker.set("name", JUNIT_PROPERTY)
        marker.set("value", "true")
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            tree.write(handle, encoding="utf-8", xml_declaration=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _hold_at_exit() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, GUARDED_SIGNALS)


class ReportGuard:
    """Holds back interrupts while every plugin writes its report; marks interrupted runs."""

    def __init__(self) -> None:
        self.interrupted = False
        self.late_signals: list[str] = []
        self._previous: dict[int, Any] = {}

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        # Hold further signals back first, then interrupt the run as Ctrl-C does.
        signal.pthread_sigmask(signal.SIG_BLOCK, GUARDED_SIGNALS)
        self.interrupted = True
        raise KeyboardInterrupt

    def install(self) -> None:
        """Take over SIGINT and SIGTERM where they still do what Python does by default."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in GUARDED_SIGNALS:
            current = signal.getsignal(signum)
            if current in (signal.default_int_handler, signal.SIG_DFL):
                self._previous[signum] = current
                signal.signal(signum, self._interrupt)

    def _late(self, signum: int, frame: FrameType | None) -> None:
        self.late_signals.append(signal.Signals(signum).name)

    def uninstall(self) -> None:
        """Give the signals back their earlier handlers, unless the run was interrupted.

        After an interrupt the noting handler stays until the process exits (see
        :meth:`pytest_sessionfinish`).
        """
        if not self.interrupted:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
        self._previous.clear()

    def pytest_sessionstart(self) -> None:
        """Take over the interrupt signals for this run."""
        self.install()

    def pytest_keyboard_interrupt(self) -> None:
        """Note that the run was interrupted before it finished."""
        self.interrupted = True

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
        """Run every plugin's session finish (the report writers) with interrupts held back."""
        if int(exitstatus) == int(pytest.ExitCode.INTERRUPTED):
            self.interrupted = True
        elif self.interrupted:
            # A second interrupt cut pytest's own handling short before it set the status.
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, GUARDED_SIGNALS)
        try:
            result = yield
            if self.interrupted:
                self._mark_junit(session.config)
        finally:
            pending = signal.sigpending() & GUARDED_SIGNALS
            for signum in sorted(pending):
                # Take the held signal now, so that unblocking does not raise mid-exit.
                signal.sigwait({signum})
                self.late_signals.append(signal.Signals(signum).name)
            if self.interrupted:
                # From now until the process exits a signal is only noted: pytest's own clean-up
                # after the reports must not be cut short into a traceback and a signal exit.
                # A Python handler (unlike a blocked or ignored signal) is not inherited by
                # the processes started later.
                for signum in self._previous:
                    signal.signal(signum, self._late)
                if self._previous:
                    # The interpreter drops Python handlers while it shuts down: hold the
                    # signals from then on. (At exit only, so an in-process run leaves the
                    # process it runs in as it was.)
                    atexit.register(_hold_at_exit)
            restored = previous - GUARDED_SIGNALS if self.interrupted else previous
            signal.pthread_sigmask(signal.SIG_SETMASK, restored)
            self._say_late_signals(session.config)
        return result

    def _say_late_signals(self, config: pytest.Config) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if self.late_signals and reporter is not None:
            reporter.write_line(
                f"secagent: {', '.join(self.late_signals)} came while the reports were written; they "
                "were completed first",
                yellow=True,
            )

    def _mark_junit(self, config: pytest.Config) -> None:
        xmlpath = config.getoption("xmlpath", None)
        if not xmlpath:
            return
        path = Path(str(xmlpath)).expanduser()
        path = path if path.is_absolute() else Path(config.invocation_params.dir) / path
        if path.is_file():
            mark_junit_interrupted(path)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Say that the run was interrupted."""
        if self.interrupted:
            terminalreporter.write_line(
                "secagent: the run was interrupted; every report marks its results as incomplete",
                red=True, bold=True,
            )
