"""TLS servers on 127.0.0.1 for the probe tests: Python ``ssl`` in threads and ``openssl s_server``.

:class:`FaultyServer` stands in front of a real server and breaks the handshake on purpose
at a chosen point (garbage, a reset, a stall, a ServerHello cut in half), so the probe's
reading of partial and unknown states is tested against real bytes.
"""

from __future__ import annotations

import contextlib
import enum
import re
import socket
import ssl
import struct
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
    host = f"[{address}]" if ":" in address else address
    argv = [
        *prefix, "openssl", "s_server", "-accept", f"{host}:{port}", "-cert", str(issued.cert),
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


class Fault(enum.Enum):
    """Where and how :class:`FaultyServer` breaks the handshake."""

    CLOSE_SILENTLY = "closes without a word"
    RESET_SILENTLY = "resets without a word"
    GARBAGE = "sends bytes that are not TLS"
    HTTP = "answers in plain HTTP"
    OTHER_VERSION = "sends a ServerHello for another version"
    HELLO_THEN_CLOSE = "sends the real ServerHello, then closes"
    HELLO_THEN_RESET = "sends the real ServerHello, then resets"
    HELLO_THEN_STALL = "sends the real ServerHello, then stalls"
    CUT_HELLO_CLOSE = "sends half the ServerHello record, then closes"
    CUT_HELLO_STALL = "sends half the ServerHello record, then stalls"
    STALL = "reads the ClientHello, then says nothing"
    DRIP = "sends the real answer one byte a second"


_GARBAGE = bytes(range(0x30, 0x70)) * 4
_DRIP_SECONDS = 1.0
_FLIGHT_IDLE = 0.5
_HTTP = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _read_record(sock: socket.socket) -> bytes:
    """One whole TLS record from ``sock`` (header and body); fewer bytes at EOF."""
    data, wanted = b"", 5
    while len(data) < wanted:
        chunk = sock.recv(wanted - len(data))
        if not chunk:
            break
        data += chunk
        if len(data) == 5:
            wanted += int.from_bytes(data[3:5], "big")
    return data


def _other_version_hello(client_hello: bytes) -> bytes:
    """A ServerHello record choosing a version the ClientHello did not offer."""
    offered = int.from_bytes(client_hello[9:11], "big")  # legacy_version; 0x0303 for TLS 1.2 and 1.3
    chosen = 0x0301 if offered == 0x0303 else 0x0303
    body = chosen.to_bytes(2, "big") + bytes(32) + b"\x00" + b"\x00\x2f" + b"\x00"
    message = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16" + chosen.to_bytes(2, "big") + len(message).to_bytes(2, "big") + message


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class FaultyServer:
    """A server on 127.0.0.1 that reads the ClientHello and then commits ``fault``.

    Faults that involve a real ServerHello relay the ClientHello to ``upstream`` (a real
    TLS server on 127.0.0.1) and forward its first record. When the upstream refuses the
    offer with an alert instead, the alert is forwarded and the connection closed, so the
    server refuses what its upstream refuses.
    """

    def __init__(self, fault: Fault, upstream: int | None = None) -> None:
        self.fault = fault
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"faulty-{self.port}", daemon=True)
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> FaultyServer:  # noqa: PYI034 - the class is final in practice
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for worker in self._workers:
            worker.join(timeout=5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            worker = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._workers.append(worker)
            worker.start()

    def _stall(self, conn: socket.socket) -> None:
        """Hold the connection open, saying nothing, until the client leaves or the server stops."""
        conn.settimeout(0.2)
        while not self._stop.is_set():
            try:
                if not conn.recv(4096):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def _drip(self, conn: socket.socket, hello: bytes) -> None:
        """Relay the ClientHello upstream, then pass its whole answer on, one byte a second."""
        assert self._upstream is not None
        answer = b""
        with socket.create_connection(("127.0.0.1", self._upstream), timeout=_HANDSHAKE_TIMEOUT) as upstream:
            upstream.sendall(hello)
            upstream.settimeout(_FLIGHT_IDLE)
            with contextlib.suppress(TimeoutError):
                while chunk := upstream.recv(65536):
                    answer += chunk
        for offset in range(len(answer)):
            conn.sendall(answer[offset : offset + 1])
            if self._stop.wait(_DRIP_SECONDS):
                return

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(_HANDSHAKE_TIMEOUT)
        try:
            hello = _read_record(conn)
            self._answer(conn, hello)
        except OSError:
            pass
        finally:
            conn.close()

    def _answer(self, conn: socket.socket, hello: bytes) -> None:
        fault = self.fault
        if fault is Fault.CLOSE_SILENTLY:
            return
        if fault is Fault.RESET_SILENTLY:
            _reset(conn)
            return
        if fault is Fault.STALL:
            self._stall(conn)
            return
        if fault is Fault.DRIP and self._upstream is not None:
            self._drip(conn, hello)
            return
        canned = {
            Fault.GARBAGE: _GARBAGE,
            Fault.HTTP: _HTTP,
            Fault.OTHER_VERSION: _other_version_hello(hello),
        }
        if fault in canned:
            conn.sendall(canned[fault])
            return
        if self._upstream is None:
            raise ValueError(f"{fault.value} needs an upstream server")
        with socket.create_connection(("127.0.0.1", self._upstream), timeout=_HANDSHAKE_TIMEOUT) as upstream:
            upstream.sendall(hello)
            first = _read_record(upstream)
        if not first or first[0] != 0x16:  # the upstream refused: pass its answer on
            conn.sendall(first)
            return
        if fault in (Fault.CUT_HELLO_CLOSE, Fault.CUT_HELLO_STALL):
            conn.sendall(first[: len(first) // 2])
        else:
            conn.sendall(first)
        if fault is Fault.HELLO_THEN_RESET:
            _reset(conn)
        elif fault in (Fault.HELLO_THEN_STALL, Fault.CUT_HELLO_STALL):
            self._stall(conn)
