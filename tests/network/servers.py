"""TLS servers on 127.0.0.1 for the probe tests: Python ``ssl`` in threads and ``openssl s_server``."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.network.certs import Issued

_HANDSHAKE_TIMEOUT = 5.0
_START_TIMEOUT = 10.0
_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def server_context(
    issued: Issued,
    *,
    versions: tuple[str, str] = ("TLSv1.2", "TLSv1.3"),
    ciphers: str | None = None,
    alpn: Sequence[str] = ("http/1.1",),
) -> ssl.SSLContext:
    """A server context for ``issued`` accepting the versions from ``versions[0]`` to ``[1]``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = _VERSIONS[versions[0]]
        context.maximum_version = _VERSIONS[versions[1]]
        if ciphers:
            context.set_ciphers(ciphers)
    context.load_cert_chain(issued.cert, issued.key)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


class ThreadedTlsServer:
    """A TLS server on 127.0.0.1 (ephemeral port) handling each connection in a thread."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"tls-{self.port}", daemon=True)

    def __enter__(self) -> ThreadedTlsServer:  # noqa: PYI034 - the class is final in practice
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(_HANDSHAKE_TIMEOUT)
        try:
            with self._context.wrap_socket(conn, server_side=True) as tls:
                with contextlib.suppress(OSError):
                    tls.settimeout(1.0)
                    tls.recv(1024)
        except Exception:  # noqa: S110 - a client that aborts is what the probes do
            pass
        finally:
            conn.close()


@contextlib.contextmanager
def openssl_server(
    issued: Issued,
    workdir: Path,
    *options: str,
    address: str = "127.0.0.1",
    port: int = 0,
    prefix: Sequence[str] = (),
) -> Iterator[int]:
    """Run ``openssl s_server`` on ``address:port`` with ``options``; yield its port, stop it after.

    ``prefix`` runs it elsewhere, e.g. ``("ip", "netns", "exec", NAME)`` (which execs, so the
    process stopped is s_server itself).
    """
    log = workdir / f"s_server-{time.monotonic_ns()}.log"
    argv = [
        *prefix, "openssl", "s_server", "-accept", f"{address}:{port}", "-cert", str(issued.cert),
        "-key", str(issued.key), "-www", *options,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        bound = None
        while bound is None:
            # s_server names the address only when it chose the port itself.
            match = re.search(r"^ACCEPT(?: \S+:(\d+))?\s*$", log.read_text(errors="replace"), re.MULTILINE)
            if match and (match.group(1) or port):
                bound = int(match.group(1) or port)
            elif process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"openssl s_server did not start: {log.read_text(errors='replace')}")
            else:
                time.sleep(0.05)
        yield bound
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A port that completes TCP handshakes (the kernel's backlog) and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
