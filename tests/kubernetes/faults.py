"""Faults the test API server can answer with instead of the right answer.

A :class:`FaultRule` picks requests (by caller, by path pattern, by the n-th matching
request) and a :data:`FAULTS` kind says what the server does to them: a well-formed HTTP
answer of the wrong shape (``{}``, a ``Status``, ``items: null``...), bytes that are no
JSON, an answer cut short, headers or a body that drip one byte at a time, silence, a
connection reset, a list that never ends, an HTTP error or a redirect to another host.
The server consults its rules after it has worked out the right answer, so shape faults
start from the real list.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

KubeObject = dict[str, Any]

DRIP_INTERVAL = 0.2
"""Seconds between two bytes of a dripping answer."""
LONGEST_FAULT = 60.0
"""No fault holds a connection longer than this (the client should have given up long before)."""
CANARY_ITEM = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmYXVsdC1jYW5hcnkifQ.c2VjYWdlbnQtZmF1bHQtY2FuYXJ5"
"""A JWT-shaped string the ``string-item`` fault puts in a list: it must never be printed."""


@dataclass
class FaultRule:
    """Answer matching requests with ``kind``.

    ``user`` (a caller's name), ``path`` (a regular expression searched in the path) and
    ``methods`` narrow the requests; ``nth`` (1-based) faults only the n-th request that
    matches, every one when ``None``.
    """

    kind: str
    path: str | None = None
    user: str | None = None
    nth: int | None = None
    methods: tuple[str, ...] = ("GET", "POST")
    seen: int = field(default=0, compare=False)

    def matches(self, method: str, path: str, user: str | None) -> bool:
        """Count the request if it matches; tell whether it is to be faulted."""
        if method not in self.methods or (self.user is not None and user != self.user):
            return False
        if self.path is not None and not re.search(self.path, path):
            return False
        self.seen += 1
        return self.nth is None or self.seen == self.nth


class FaultPlan:
    """The rules of one server, consulted for every request (thread-safe)."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    def add(self, rule: FaultRule) -> FaultRule:
        """Add a rule; rules added earlier win."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Forget every rule."""
        with self._lock:
            self._rules.clear()

    def pick(self, method: str, path: str, user: str | None) -> FaultRule | None:
        """The rule that faults this request, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path, user):
                    return rule
        return None


# -- delivering a fault ---------------------------------------------------------------------

Deliver = Callable[[BaseHTTPRequestHandler, KubeObject, "FaultPlan"], None]
_TOKENS = itertools.count(1)


def _send(handler: BaseHTTPRequestHandler, status: int, payload: bytes, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    for key, value in headers.items():
        handler.send_header(key.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(payload)


def _json(handler: BaseHTTPRequestHandler, document: object, status: int = 200) -> None:
    _send(handler, status, json.dumps(document).encode())


def _status(code: int, reason: str) -> KubeObject:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"injected fault: {reason}",
        "reason": reason,
        "code": code,
    }


def _reshaped(change: Callable[[KubeObject], object]) -> Deliver:
    def deliver(handler: BaseHTTPRequestHandler, answer: KubeObject, plan: FaultPlan) -> None:
        document = copy.deepcopy(answer)
        result = change(document)
        _json(handler, document if result is None else result)

    return deliver


def _set(key: str, value: object) -> Callable[[KubeObject], None]:
    def change(document: KubeObject) -> None:
        document[key] = value

    return change


def _drop(key: str) -> Callable[[KubeObject], None]:
    def change(document: KubeObject) -> None:
        document.pop(key, None)

    return change


def _add_item(item: object) -> Callable[[KubeObject], None]:
    def change(document: KubeObject) -> None:
        document["items"] = [*(document.get("items") or []), item]

    return change


def _endless(document: KubeObject) -> None:
    # A token the server accepts (it serves the first page again), new every time.
    state = {"v": "meta.k8s.io/v1", "rv": 1, "start": 0, "n": next(_TOKENS)}
    metadata = document.setdefault("metadata", {})
    metadata["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def _table(document: KubeObject) -> KubeObject:
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": document.get("metadata") or {},
        "columnDefinitions": [{"name": "Name", "type": "string"}],
        "rows": [],
    }


def _error(code: int, reason: str) -> Deliver:
    def deliver(handler: BaseHTTPRequestHandler, answer: KubeObject, plan: FaultPlan) -> None:
        payload = json.dumps(_status(code, reason)).encode()
        if code == 429:
            _send(handler, code, payload, Retry_After="1")
        else:
            _send(handler, code, payload)

    return deliver


def _redirect(handler: BaseHTTPRequestHandler, answer: KubeObject, plan: FaultPlan) -> None:
    handler.send_response(302)
    handler.send_header("Location", f"https://secagent-elsewhere.invalid{handler.path}")
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def _garbage(handler: BaseHTTPRequestHandler, answer: KubeObject, plan: FaultPlan) -> None:
    _send(handler, 200, b"\x00\xff\xfe<html>not json\x1b[2J</html>")


def _truncated(handler: BaseHTTPRequestHandler, answer: KubeObject, plan: FaultPlan) -> None:
    payload = json.dumps(answer).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload[: len(payload) // 2])
    handler.wfile.flush()
    handler.close_connection = True


def _client_gone(connection: socket.socket, wait: float) -> bool:
    """Wait up to ``wait`` seconds; tell whether the client closed its side."""
    readable, _, _ = select.select([connection], [], [], wait)
    if not readable:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _drip(handler: BaseHTTPRequestHandler, plan: FaultPlan, data: bytes) -> None:
    started = time.monotonic()
    for byte in data:
        if plan.stopping.is_set() or time.monotonic() - started > LONGEST_FAULT:
            break
        try:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
        except OSError:
            break
        if _client_gone(handler.connection, DRIP_INTERVAL):
            break
    handler.close_connection = True


def _drip_headers(handler: BaseHTTPRequestHandler, answer: KubeObject, plan: FaultPlan) -> None:
    payload = json.dumps(answer).encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"X-Padding: {'x' * 400}\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    _drip(handler, plan, head + payload)


def _drip_body(handler: BaseHTTPRequestHandler, answer: KubeObject, plan: FaultPlan) -> None:
    payload = json.dumps(answer).encode() + b" " * 4096
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.flush()
    _drip(handler, plan, payload)


def _stall(handler: BaseHTTPRequestHandler, answer: KubeObject, plan: FaultPlan) -> None:
    started = time.monotonic()
    while not plan.stopping.is_set() and time.monotonic() - started < LONGEST_FAULT:
        if _client_gone(handler.connection, 0.1):
            break
    handler.close_connection = True


def _reset(handler: BaseHTTPRequestHandler, answer: KubeObject, plan: FaultPlan) -> None:
    connection = handler.connection
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    socket.socket.close(connection)  # the raw descriptor: no TLS close_notify, an RST
    handler.close_connection = True


FAULTS: dict[str, Deliver] = {
    "empty-object": _reshaped(lambda document: {}),
    "status-200": _reshaped(lambda document: {**_status(200, "Success"), "status": "Success"}),
    "items-null": _reshaped(_set("items", None)),
    "items-missing": _reshaped(_drop("items")),
    "wrong-kind": _reshaped(_set("kind", "EventList")),
    "table": _reshaped(_table),
    "null-item": _reshaped(_add_item(None)),
    "string-item": _reshaped(_add_item(CANARY_ITEM)),
    "nameless-item": _reshaped(_add_item({"metadata": {}, "spec": {}})),
    "garbage": _garbage,
    "truncated": _truncated,
    "drip-headers": _drip_headers,
    "drip-body": _drip_body,
    "stall": _stall,
    "reset": _reset,
    "endless-continue": _reshaped(_endless),
    "http-401": _error(401, "Unauthorized"),
    "http-403": _error(403, "Forbidden"),
    "http-429": _error(429, "TooManyRequests"),
    "http-500": _error(500, "InternalError"),
    "http-503": _error(503, "ServiceUnavailable"),
    "redirect": _redirect,
}
"""Every fault kind, by name."""

LIST_ONLY_FAULTS = frozenset(
    {"items-null", "items-missing", "null-item", "string-item", "nameless-item", "endless-continue"}
)
"""Faults that change what only a list has (its items, its continue token)."""

TIMED_FAULTS = frozenset({"drip-headers", "drip-body", "stall"})
"""The faults only a deadline ends (the others end at once, or at the page cap)."""


def deliver(kind: str, handler: BaseHTTPRequestHandler, answer: KubeObject, plan: FaultPlan) -> None:
    """Answer the handler's request with the fault ``kind``; a client that hangs up ends it quietly."""
    try:
        FAULTS[kind](handler, answer, plan)
    except OSError:
        handler.close_connection = True
