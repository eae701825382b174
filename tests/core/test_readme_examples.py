"""Every Python example in the README runs, and says what the README says it says.

The marker example runs against a real TCP server on loopback, the testinfra example against
this machine, and the library example on a rendered default Helm install (the scenario files
of the Kubernetes tests), with its printed lines compared to the README's. The two set-up
commands are what ``tox`` (the ``pkg`` environment runs the main job from an installed wheel)
and ``.ci/run`` execute; the ``secagent`` command examples are run by tests/reporting.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT_HELM = Path(__file__).resolve().parents[1] / "kubernetes" / "scenarios" / "default-helm" / "agent.yaml"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(encoding="utf-8"), re.DOTALL | re.MULTILINE)


def _block_after(code: str) -> str:
    text = README.read_text(encoding="utf-8")
    rest = text[text.index(code) + len(code):]
    rest = rest[rest.index("```") + 3:]  # past the example's own closing fence
    match = re.search(r"^```\n(.*?)^```", rest, re.DOTALL | re.MULTILINE)
    assert match is not None
    return match.group(1)


@contextlib.contextmanager
def _banner_server(banner: bytes) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.sendall(banner)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_the_readme_has_the_examples_this_module_runs() -> None:
    assert len(_blocks("python")) == 3


@pytest.mark.parametrize(("banner", "outcome"), [(b"SSH-2.0-OpenSSH_9.2\r\n", "passed"), (b"debug console\n", "failed")])
def test_marker_example(pytester: pytest.Pytester, banner: bytes, outcome: str) -> None:
    marker_example = _blocks("python")[0]
    pytester.makepyfile(test_acme=marker_example)
    with _banner_server(banner) as port:
        result = pytester.runpytest("--secagent-no-suites", "--secagent-target", f"tls://127.0.0.1:{port}", "test_acme.py")
    result.assert_outcomes(**{outcome: 1})


def test_marker_example_errors_without_a_server(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_acme=_blocks("python")[0])
    with _banner_server(b"") as port:
        pass  # the port is closed again: nothing listens there now
    result = pytester.runpytest("--secagent-no-suites", "--secagent-target", f"tls://127.0.0.1:{port}", "test_acme.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*could not verify ACME-001 on tls:127.0.0.1:{port}: no banner from 127.0.0.1:{port}*"])


def test_testinfra_example(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hosts=_blocks("python")[1])
    result = pytester.runpytest("--secagent-no-suites", "--secagent-target", "local://", "test_hosts.py")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 2, result.stdout.str()
    result.stdout.fnmatch_lines(["*Host checks (testinfra)*"])


def test_library_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = _blocks("python")[2]
    (tmp_path / "rendered").mkdir()
    shutil.copy(DEFAULT_HELM, tmp_path / "rendered" / "agent.yaml")
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own example
    assert printed.getvalue() == _block_after(code)
