"""A read-only :class:`KubernetesView` of a live cluster.

The official ``kubernetes`` client supplies the configuration (kubeconfig or in-cluster
service account): the server address, credentials and TLS settings. The requests
themselves go through this module's own small HTTP transport, because every operation
has one **total deadline**: the client's timeout bounds each socket read, so a server
that drips one byte a second could hold it for ever. This module sends exactly these
requests and no other:

* ``GET`` lists of a resource type, paginated with ``limit``/``continue``, each
  (resource, namespace) once per run and cached, failures included;
* the same lists in the metadata-only form (``PartialObjectMetadataList``) for Secrets,
  so no secret value is ever fetched;
* ``GET /version``;
* ``POST`` of ``SubjectAccessReview`` (an access review writes nothing).

Limits: one list (every page of it), one ``/version`` and one access review each finish
within the view's ``timeout`` (``--secagent-timeout``), name resolution, connection, TLS
handshake, headers and body included; a list has at most :data:`MAX_LIST_PAGES` pages and
:data:`MAX_LIST_BYTES` bytes, any other answer :data:`MAX_ANSWER_BYTES`. Past a limit the
operation is an error that names the request and the limit. Redirects are never followed.

Every answer is checked against what was asked: a list must be the ``<Kind>List`` of the
resource (``PartialObjectMetadataList`` when metadata was asked for) whose ``items`` is a
list of objects with a ``metadata`` mapping and a string ``name``. Anything else (``{}``, a
``Status``, ``items: null``, a ``Table``...) is an error naming the request, never an
empty list. Objects come back as the API's JSON dictionaries (camelCase keys), with
``apiVersion`` and ``kind`` on every list item as ``kubectl get -o json`` shows them.
"""

from __future__ import annotations

import http.client
import importlib
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from pytest_secagent.kubernetes.manifests import metadata_only
from pytest_secagent.kubernetes.resources import SECRETS, kind_of
from pytest_secagent.kubernetes.shapes import object_problems
from pytest_secagent.kubernetes.view import Resource, ResourceNotServed
from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_ANSWER_BYTES",
    "MAX_LIST_BYTES",
    "MAX_LIST_PAGES",
    "METADATA_LIST_ACCEPT",
    "LiveClusterView",
]

KubeObject = dict[str, Any]
KubeObjects = list[KubeObject]
Problems = list[str]  # an alias: inside the class the name ``list`` is its method

DEFAULT_PAGE_SIZE = 500
"""Objects per list request (``limit``); the rest follow with ``continue``."""

MAX_LIST_PAGES = 1_000
"""The most pages one list may take (``continue`` tokens followed): 500,000 objects at 500 a page."""

MAX_LIST_BYTES = 512 * 1024 * 1024
"""The most bytes one list may take, every page together (512 MiB)."""

MAX_ANSWER_BYTES = 4 * 1024 * 1024
"""The most bytes of an answer that is not a list (``/version``, an access review): 4 MiB."""

METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
"""The ``Accept`` header that asks the API server for metadata only."""

_JSON = "application/json"
_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
_CHUNK = 64 * 1024


def _kubernetes(module: str) -> Any:
    """Import a module of the official client, late and untyped.

    Late: the client is only needed once a live target is used. Untyped: its
    configuration object is read by attribute, the same way across its generations.
    """
    return importlib.import_module(f"kubernetes.{module}")


class _Unreachable(Exception):
    """The request got no (complete) HTTP answer: refused, TLS failure, reset, timeout."""


class _LimitReached(Exception):
    """The operation went past one of its limits (deadline, pages, bytes)."""


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def message(self) -> str:
        """The ``message`` of a ``Status`` body, or the start of any other body."""
        try:
            document = self.json()
        except ValueError:
            return self.body[:200].decode("utf-8", "replace").strip()
        if isinstance(document, dict) and document.get("message"):
            return str(document["message"])[:500]
        return ""


def _resource_name(resource: Resource) -> str:
    """``pods`` or ``deployments.apps``: how kubectl and RBAC errors name a resource."""
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural


def _scope(namespace: str | None) -> str:
    return f"in namespace {namespace!r}" if namespace else "in all namespaces (cluster-wide)"


def _collection_path(resource: Resource, namespace: str | None) -> str:
    base = f"/apis/{resource.group}/{resource.version}" if resource.group else "/api/v1"
    if resource.group == "" and resource.version != "v1":
        base = f"/api/{resource.version}"
    if namespace and resource.namespaced:
        return f"{base}/namespaces/{quote(namespace, safe='')}/{resource.plural}"
    return f"{base}/{resource.plural}"


# -- one operation's limits ------------------------------------------------------------------


class _Budget:
    """The limits of one operation: a monotonic deadline, and a byte allowance."""

    def __init__(self, seconds: float, max_bytes: int) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.bytes_left = max_bytes
        self.max_bytes = max_bytes

    def remaining(self, step: str) -> float:
        """Seconds left; past the deadline raises :class:`_LimitReached` naming ``step``."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _LimitReached(f"the deadline of {self.seconds:g}s passed during {step}")
        return left

    def spend(self, count: int) -> None:
        """Count ``count`` bytes received; past the allowance raises :class:`_LimitReached`."""
        self.bytes_left -= count
        if self.bytes_left < 0:
            raise _LimitReached(f"the answer exceeded the limit of {self.max_bytes} bytes")


def _resolve(host: str, port: int, budget: _Budget) -> list[tuple[Any, ...]]:
    """``getaddrinfo`` within the deadline (it cannot be interrupted, so it runs in a thread)."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    answer: list[Any] = []

    def lookup() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            answer.append(exc)

    worker = threading.Thread(target=lookup, name=f"secagent-resolve-{host}", daemon=True)
    worker.start()
    worker.join(budget.remaining(f"name resolution of {host}"))
    if not answer:
        raise _LimitReached(
            f"the deadline of {budget.seconds:g}s passed during name resolution of {host}"
        )
    if isinstance(answer[0], OSError):
        raise _Unreachable(f"cannot resolve {host}: {answer[0]}")
    found: list[tuple[Any, ...]] = answer[0]
    return found


class _Watchdog:
    """Cuts the connection of an operation at its deadline, whatever it is blocked in.

    It holds a duplicate of each socket the operation opens, and at the deadline shuts the
    socket down: a read blocked on a server that drips or stalls returns at once.
    """

    def __init__(self, budget: _Budget) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._done = False
        self.fired = False
        self._timer = threading.Timer(max(0.0, budget.deadline - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket) -> None:
        """Cut ``sock`` too at the deadline (a duplicate descriptor: TLS sockets cannot ``dup``)."""
        with self._lock:
            if self._done:
                return
            self._sockets.append(socket.fromfd(sock.fileno(), sock.family, sock.type))
            if self.fired:
                self._cut()

    def _cut(self) -> None:
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            self._cut()

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._done = True
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


class _Connection(http.client.HTTPConnection):
    """An HTTP(S) connection whose address resolution and connect obey the operation's budget."""

    def __init__(self, host: str, port: int, *, tls: ssl.SSLContext | None, server_name: str) -> None:
        super().__init__(host, port)
        self._budget = _Budget(0, 0)
        self._watchdog: _Watchdog | None = None
        self._tls = tls
        self._server_name = server_name
        self._create_connection = self._open

    def bind(self, budget: _Budget, watchdog: _Watchdog) -> None:
        """Serve the operation with this budget; an open (kept-alive) socket obeys it from now."""
        self._budget = budget
        self._watchdog = watchdog
        if self.sock is not None:
            watchdog.watch(self.sock)
            self.sock.settimeout(budget.remaining("the request"))

    def _open(self, address: tuple[str, int], *_: Any) -> socket.socket:
        host, port = address
        failures = []
        for family, kind, protocol, _name, where in _resolve(host, port, self._budget):
            sock = socket.socket(family, kind, protocol)
            try:
                sock.settimeout(self._budget.remaining(f"the connection to {host}:{port}"))
                if self._watchdog is not None:
                    self._watchdog.watch(sock)
                sock.connect(where)
            except OSError as exc:
                sock.close()
                failures.append(f"{where[0]}: {exc}")
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        raise _Unreachable(f"cannot connect to {host}:{port}: {'; '.join(failures) or 'no address'}")

    def connect(self) -> None:
        super().connect()
        if self._tls is not None:
            self.sock.settimeout(self._budget.remaining("the TLS handshake"))
            self.sock = self._tls.wrap_socket(self.sock, server_hostname=self._server_name)


def _no_proxy_for(host: str, no_proxy: str) -> bool:
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*" or (entry and (host == entry.lstrip(".") or host.endswith("." + entry.lstrip(".")))):
            return True
    return False


class _Transport:
    """Sends requests to the API server named by the client's configuration, within budgets.

    TLS (CA, client certificate, SNI name, verification switch), bearer credentials
    (refreshed by the configuration's hook, as for exec plugins) and an HTTP proxy
    (``CONNECT``) come from the configuration. A connection serves one operation at a time
    (a list's pages share it) and is kept for the next one when its answers were read in
    full. No retries (but for a kept connection the server had closed), no redirects.
    """

    def __init__(self, configuration: Any) -> None:
        self._configuration = configuration
        split = urlsplit(str(configuration.host))
        if split.scheme not in ("http", "https") or not split.hostname:
            raise EvidenceUnavailable(f"the API server address {configuration.host!r} is not an http(s) URL")
        self._https = split.scheme == "https"
        self._host = split.hostname
        self._port = split.port or (443 if self._https else 80)
        self._base = split.path.rstrip("/")
        self._server_name = str(getattr(configuration, "tls_server_name", None) or self._host)
        try:
            self._tls = self._tls_context(configuration) if self._https else None
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise EvidenceUnavailable(f"cannot use the kubeconfig's TLS settings: {exc}") from exc
        self._proxy = self._proxy_of(configuration)
        self._idle: list[_Connection] = []
        self._idle_lock = threading.Lock()

    @staticmethod
    def _tls_context(configuration: Any) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif getattr(configuration, "assert_hostname", None) is False:
            context.check_hostname = False
        return context

    def _proxy_of(self, configuration: Any) -> tuple[str, int, dict[str, str]] | None:
        proxy = getattr(configuration, "proxy", None)
        if not proxy or _no_proxy_for(self._host.lower(), str(getattr(configuration, "no_proxy", "") or "")):
            return None
        split = urlsplit(str(proxy))
        if not split.hostname:
            raise EvidenceUnavailable(f"the proxy address {proxy!r} has no host")
        headers = dict(getattr(configuration, "proxy_headers", None) or {})
        return split.hostname, split.port or 80, {str(k): str(v) for k, v in headers.items()}

    def _auth_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for setting in self._configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[str(setting["key"])] = str(setting["value"])
        return headers

    def _new_connection(self) -> _Connection:
        if self._proxy is None:
            return _Connection(self._host, self._port, tls=self._tls, server_name=self._server_name)
        proxy_host, proxy_port, proxy_headers = self._proxy
        connection = _Connection(proxy_host, proxy_port, tls=self._tls, server_name=self._server_name)
        connection.set_tunnel(self._host, self._port, headers=proxy_headers)
        return connection

    def open(self, budget: _Budget) -> _Session:
        """Start one operation: a kept connection or a new one (opened on first use), and its watchdog."""
        with self._idle_lock:
            connection = self._idle.pop() if self._idle else None
        watchdog = _Watchdog(budget)
        if connection is None:
            connection = self._new_connection()
        connection.bind(budget, watchdog)
        return _Session(self, connection, watchdog, budget)

    def keep(self, connection: _Connection) -> None:
        """Keep a connection whose answers were read in full, for the next operation."""
        with self._idle_lock:
            self._idle.append(connection)

    def close(self) -> None:
        """Close the kept connections."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class _Session:
    """One operation's connection: sends its requests, reads each answer within the budget."""

    def __init__(self, transport: _Transport, connection: _Connection, watchdog: _Watchdog, budget: _Budget):
        self._transport = transport
        self._connection = connection
        self._watchdog = watchdog
        self.budget = budget
        self._reusable = False

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        accept: str = _JSON,
        body: KubeObject | None = None,
    ) -> _Reply:
        """Send one request and read its whole answer (status and body)."""
        target = self._transport._base + path + (f"?{urlencode(list(query))}" if query else "")
        headers = {"Accept": accept, "User-Agent": "pytest-secagent", **self._transport._auth_headers()}
        payload = json.dumps(body).encode() if body is not None else None
        if payload is not None:
            headers["Content-Type"] = _JSON
        self._reusable = False
        try:
            self.budget.remaining("the request")
            kept = self._connection.sock is not None
            try:
                self._connection.request(method, target, body=payload, headers=headers)
                response = self._connection.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not kept or self._watchdog.fired:
                    raise
                # The server closed the kept connection while it was idle: once more, on a new one.
                self._connection.close()
                self._connection.request(method, target, body=payload, headers=headers)
                response = self._connection.getresponse()
            data = self._read(response)
        except (_LimitReached, _Unreachable):
            self._connection.close()
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self._connection.close()
            if self._watchdog.fired or time.monotonic() >= self.budget.deadline:
                raise _LimitReached(
                    f"the deadline of {self.budget.seconds:g}s passed before the answer was complete"
                ) from exc
            raise _Unreachable(f"{type(exc).__name__}: {exc}".replace("\n", ": ")) from exc
        response.close()
        if response.will_close:
            self._connection.close()
        else:
            self._reusable = True
        return _Reply(int(response.status), data)

    def _read(self, response: http.client.HTTPResponse) -> bytes:
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.budget.bytes_left:
            # Refuse an announced excess before reading any of it.
            raise _LimitReached(f"the answer exceeded the limit of {self.budget.max_bytes} bytes")
        parts = []
        while True:
            self.budget.remaining("the answer's body")
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            self.budget.spend(len(chunk))
            parts.append(chunk)
        if self._watchdog.fired:
            raise _LimitReached(f"the deadline of {self.budget.seconds:g}s passed during the answer's body")
        self.budget.remaining("the answer's body")
        if response.length:
            raise _Unreachable(f"the connection closed {response.length} bytes before the end of the answer")
        return b"".join(parts)

    def close(self) -> None:
        """Stop the watchdog; keep the connection if its last answer was read in full, else close it."""
        self._watchdog.close()
        if self._reusable and not self._watchdog.fired and self._connection.sock is not None:
            self._transport.keep(self._connection)
        else:
            self._connection.close()


def _shape(value: object) -> str:
    """What a value is, without showing it (an answer's text could hold a credential)."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an empty object" if not value else "an object"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return f"a {type(value).__name__}"


#: Optional extensions whose kinds are listed only after discovery says they are served.
DISCOVERED_GROUPS = frozenset({"argoproj.io", "networking.istio.io"})

class LiveClusterView:
    """A live cluster, read with get/list only, every list once per run.

    Build it with :meth:`from_kubeconfig` or :meth:`in_cluster`. ``timeout`` is the total
    deadline of each operation in seconds (a list with all its pages, ``/version``, an
    access review); ``page_size`` is the ``limit`` of each list request; ``max_list_pages``
    and ``max_list_bytes`` cap one list (defaults :data:`MAX_LIST_PAGES`,
    :data:`MAX_LIST_BYTES`).
    """

    def __init__(
        self,
        configuration: Any,
        *,
        timeout: float,
        target_id: str,
        page_size: int = DEFAULT_PAGE_SIZE,
        max_list_pages: int = MAX_LIST_PAGES,
        max_list_bytes: int = MAX_LIST_BYTES,
    ) -> None:
        self._transport = _Transport(configuration)
        self._timeout = timeout
        self._target_id = target_id
        self._page_size = page_size
        self._max_list_pages = max_list_pages
        self._max_list_bytes = max_list_bytes
        self._lists: dict[tuple[Resource, str | None, bool], KubeObjects | EvidenceUnavailable] = {}
        # Cluster-wide lists split by namespace, so a namespace is served without a scan.
        self._split: dict[tuple[Resource, bool], dict[str | None, KubeObjects]] = {}
        self._version: KubeObject | EvidenceUnavailable | None = None
        self._discovery: dict[str, KubeObject | EvidenceUnavailable] = {}
        self._reviews: dict[tuple[str, tuple[str, ...], str, str, str | None], bool] = {}
        # The first access review the API server could not answer at all (its reason stands for all).
        self._reviews_down: EvidenceUnavailable | None = None
        self._lock = threading.RLock()

    @classmethod
    def from_kubeconfig(
        cls,
        config_file: str | None = None,
        context: str | None = None,
        *,
        timeout: float,
        target_id: str = "",
        page_size: int = DEFAULT_PAGE_SIZE,
        max_list_pages: int = MAX_LIST_PAGES,
        max_list_bytes: int = MAX_LIST_BYTES,
    ) -> LiveClusterView:
        """Open a view from a kubeconfig file (default: ``$KUBECONFIG``, else ``~/.kube/config``).

        ``context`` selects a context (default: the file's current context). A kubeconfig
        that cannot be read or has no such context raises :class:`EvidenceUnavailable`.
        """
        client, config = _kubernetes("client"), _kubernetes("config")
        path = config_file or os.environ.get("KUBECONFIG") or "~/.kube/config"
        configuration = client.Configuration()
        try:
            config.load_kube_config(
                config_file=path,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (config.ConfigException, OSError, ValueError, TypeError) as exc:
            which = f"context {context!r} of " if context else ""
            raise EvidenceUnavailable(f"cannot load {which}kubeconfig {path}: {exc}") from exc
        target = target_id or f"k8s:{context or 'current'}"
        return cls(
            configuration,
            timeout=timeout,
            target_id=target,
            page_size=page_size,
            max_list_pages=max_list_pages,
            max_list_bytes=max_list_bytes,
        )

    @classmethod
    def in_cluster(
        cls,
        *,
        timeout: float,
        target_id: str = "k8s-incluster",
        service_account_dir: str = _SERVICE_ACCOUNT_DIR,
        environ: Mapping[str, str] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> LiveClusterView:
        """Open a view with the pod's service account (token and CA under ``service_account_dir``).

        The API server address comes from ``KUBERNETES_SERVICE_HOST``/``_PORT``.
        """
        client, config = _kubernetes("client"), _kubernetes("config")
        loader = _kubernetes("config.incluster_config").InClusterConfigLoader
        configuration = client.Configuration()
        try:
            loader(
                token_filename=os.path.join(service_account_dir, "token"),
                cert_filename=os.path.join(service_account_dir, "ca.crt"),
                environ=os.environ if environ is None else environ,
            ).load_and_set(configuration)
        except (config.ConfigException, OSError) as exc:
            raise EvidenceUnavailable(f"cannot load the in-cluster service account: {exc}") from exc
        return cls(configuration, timeout=timeout, target_id=target_id, page_size=page_size)

    @property
    def target_id(self) -> str:
        """The ID of the target this view belongs to."""
        return self._target_id

    @property
    def live(self) -> bool:
        """Always True: this is a live cluster."""
        return True

    def list(self, resource: Resource, namespace: str | None = None) -> KubeObjects:
        """Every object of ``resource`` in ``namespace`` (everywhere when ``None``).

        Secrets are listed metadata-only: no secret value is ever requested.
        """
        if resource.group == SECRETS.group and resource.plural == SECRETS.plural:
            return self.list_metadata(resource, namespace)
        return self._cached(resource, namespace, metadata=False)

    def list_metadata(self, resource: Resource, namespace: str | None = None) -> KubeObjects:
        """Every object of ``resource`` as ``PartialObjectMetadata`` (metadata only)."""
        return self._cached(resource, namespace, metadata=True)

    def _require_served(self, resource: Resource) -> None:
        """Ask discovery whether an optional extension's resource is served, once per group version.

        Discovery is readable by every authenticated identity, so a cluster without the
        extension (Argo) needs no grant on its kinds: the list is never sent.
        Raises :class:`ResourceNotServed` when the resource is not served.
        """
        key = f"{resource.group}/{resource.version}"
        with self._lock:
            found = self._discovery.get(key)
            if found is None:
                try:
                    reply = self._operation(f"{self._target_id}: get /apis/{key}", "GET", f"/apis/{key}")
                    found = self._checked_discovery(key, self._decode(reply, "get", resource, None))
                except EvidenceUnavailable as exc:
                    found = exc
                self._discovery[key] = found
        if isinstance(found, EvidenceUnavailable):
            raise found
        served = {r.get("name") for r in found.get("resources") or [] if isinstance(r, dict)}
        if resource.plural not in served:
            raise ResourceNotServed(
                f"{self._target_id}: the cluster does not serve {_resource_name(resource)} "
                f"({resource.api_version})"
            )

    def _checked_discovery(self, key: str, document: KubeObject) -> KubeObject:
        """A discovery answer must be the ``APIResourceList`` of ``key``; any other shape is an error."""
        resources = document.get("resources")
        problems = []
        if document.get("kind") != "APIResourceList":
            problems.append(f"kind is {_shape(document.get('kind'))}, not APIResourceList")
        if document.get("groupVersion") != key:
            problems.append(f"groupVersion is {_shape(document.get('groupVersion'))}, not {key}")
        if not isinstance(resources, list) or not all(
            isinstance(r, dict) and isinstance(r.get("name"), str) for r in resources
        ):
            problems.append(f"resources is {_shape(resources)}, not a list of named resources")
        if problems:
            raise EvidenceUnavailable(
                f"{self._target_id}: get /apis/{key}: not a discovery document: {'; '.join(problems)}"
            )
        return document

    def _cached(self, resource: Resource, namespace: str | None, *, metadata: bool) -> KubeObjects:
        if resource.group in DISCOVERED_GROUPS:
            self._require_served(resource)
        if not resource.namespaced:
            namespace = None
        with self._lock:
            everywhere = self._lists.get((resource, None, metadata))
            if namespace is not None and isinstance(everywhere, list):
                split = self._split.get((resource, metadata))
                if split is None:
                    split = self._split[(resource, metadata)] = {}
                    for obj in everywhere:
                        split.setdefault(obj["metadata"].get("namespace"), []).append(obj)
                return [dict(obj) for obj in split.get(namespace, [])]
            key = (resource, namespace, metadata)
            if key not in self._lists:
                try:
                    self._lists[key] = self._list_all(resource, namespace, metadata=metadata)
                except EvidenceUnavailable as exc:
                    self._lists[key] = exc
            result = self._lists[key]
        if isinstance(result, EvidenceUnavailable):
            raise result
        return [dict(obj) for obj in result]

    def _list_all(self, resource: Resource, namespace: str | None, *, metadata: bool) -> KubeObjects:
        path = _collection_path(resource, namespace)
        accept = METADATA_LIST_ACCEPT if metadata else _JSON
        what = f"{self._target_id}: list {_resource_name(resource)} {_scope(namespace)}"
        items: KubeObjects = []
        token = ""
        seen: set[str] = set()
        session = self._transport.open(_Budget(self._timeout, self._max_list_bytes))
        try:
            for _ in range(self._max_list_pages):
                query = [("limit", str(self._page_size))]
                if token:
                    query.append(("continue", token))
                reply = self._send(session, what, "GET", path, query=query, accept=accept)
                document = self._decode(reply, "list", resource, namespace)
                page, token = self._page(document, resource, namespace, metadata=metadata, what=what)
                items.extend(page)
                if not token:
                    return items
                if token in seen:
                    raise EvidenceUnavailable(f"{what}: the API server repeated a continue token")
                seen.add(token)
        finally:
            session.close()
        raise EvidenceUnavailable(
            f"{what}: limit reached: more than {self._max_list_pages} pages (MAX_LIST_PAGES); "
            "the API server kept answering with a new continue token"
        )

    def _page(
        self,
        document: KubeObject,
        resource: Resource,
        namespace: str | None,
        *,
        metadata: bool,
        what: str,
    ) -> tuple[KubeObjects, str]:
        """The items and ``continue`` token of one list page, checked against what was asked."""
        kind = document.get("kind")
        known = kind_of(resource)
        wanted = "PartialObjectMetadataList" if metadata else f"{known}List" if known else "a <Kind>List"
        if kind == "Status":
            raise EvidenceUnavailable(
                f"{what}: the API server answered with a Status, not {wanted} "
                f"({str(document.get('message') or document.get('reason') or '')[:300]})"
            )
        if metadata and kind != "PartialObjectMetadataList":
            # Never keep full objects when metadata was asked for (they may be Secrets).
            raise EvidenceUnavailable(
                f"{what}: the API server answered a metadata-only request with "
                f"{kind if isinstance(kind, str) and kind else 'something else'}; "
                "refusing to read full objects"
            )
        if not isinstance(kind, str) or not (kind == wanted if known or metadata else kind.endswith("List")):
            shown = repr(kind[:100]) if isinstance(kind, str) else _shape(kind)
            raise EvidenceUnavailable(f"{what}: the answer is of kind {shown}, not {wanted}")
        items = document.get("items")
        if not isinstance(items, list):
            raise EvidenceUnavailable(
                f"{what}: the {kind} has no items list (items is {_shape(items)}), so the objects are unknown"
            )
        list_meta = document.get("metadata")
        if list_meta is not None and not isinstance(list_meta, Mapping):
            raise EvidenceUnavailable(f"{what}: the list's metadata is {_shape(list_meta)}, not an object")
        token = (list_meta or {}).get("continue")
        if token is not None and not isinstance(token, str):
            raise EvidenceUnavailable(f"{what}: the continue token is {_shape(token)}, not a string")
        item_kind = kind[: -len("List")]
        api_version = str(document.get("apiVersion") or resource.api_version)
        page: KubeObjects = []
        problems: list[str] = []
        for index, item in enumerate(items):
            found = self._item_problems(item, index, resource, namespace)
            if not found:
                found = object_problems("PartialObjectMetadata" if metadata else item_kind, item)
            if found:
                problems += found
                continue
            if metadata:
                page.append(metadata_only(item))
            else:
                page.append({"apiVersion": api_version, "kind": item_kind, **item})
        if problems:
            more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
            raise EvidenceUnavailable(
                f"{what}: the answer holds objects the API would not serve, so the list cannot be "
                f"judged: {'; '.join(problems[:5])}{more}"
            )
        return page, token or ""

    @staticmethod
    def _item_problems(item: object, index: int, resource: Resource, namespace: str | None) -> Problems:
        if not isinstance(item, Mapping):
            return [f"items[{index}] is {_shape(item)}, not an object"]
        meta = item.get("metadata")
        if not isinstance(meta, Mapping):
            return [f"items[{index}].metadata is {_shape(meta)}, not an object"]
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            return [f"items[{index}].metadata.name is {_shape(name)}, not a name"]
        where = meta.get("namespace")
        if resource.namespaced and (not isinstance(where, str) or not where):
            return [f"items[{index}] ({name}) has no namespace, though {resource.plural} are namespaced"]
        if resource.namespaced and namespace and where != namespace:
            return [f"items[{index}] ({name}) is in another namespace than the one asked for"]
        return []

    def _send(
        self,
        session: _Session,
        what: str,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        accept: str = _JSON,
        body: KubeObject | None = None,
    ) -> _Reply:
        where = f"{path}?{urlencode(list(query))}" if query else path
        try:
            return session.send(method, path, query=query, accept=accept, body=body)
        except _LimitReached as exc:
            raise EvidenceUnavailable(
                f"{what}: limit reached: no complete answer from the API server within {self._timeout:g}s, "
                f"the deadline of one operation (--secagent-timeout): {exc} ({method} {where})"
            ) from exc
        except _Unreachable as exc:
            raise EvidenceUnavailable(
                f"{what}: no answer from the API server within {self._timeout:g}s ({method} {where}): {exc}"
            ) from exc

    def _operation(
        self, what: str, method: str, path: str, body: KubeObject | None = None
    ) -> _Reply:
        """One request that is not a list, under its own deadline and :data:`MAX_ANSWER_BYTES`."""
        session = self._transport.open(_Budget(self._timeout, MAX_ANSWER_BYTES))
        try:
            return self._send(session, what, method, path, body=body)
        finally:
            session.close()

    def _decode(
        self, reply: _Reply, verb: str, resource: Resource | None, namespace: str | None
    ) -> KubeObject:
        name = _resource_name(resource) if resource else "/version"
        what = f"{verb} {name} {_scope(namespace)}" if resource else f"{verb} {name}"
        if reply.status == 401:
            raise EvidenceUnavailable(
                f"{self._target_id}: {what}: the API server rejected the credentials "
                "(401 Unauthorized); renew the kubeconfig token or certificate"
            )
        if reply.status == 403:
            where = f"in namespace {namespace!r}" if namespace else "cluster-wide (ClusterRole)"
            raise EvidenceUnavailable(
                f"{self._target_id}: {what}: forbidden (403): {reply.message()}; "
                f"grant {verb!r} on {name!r} {where} to the identity running the checks"
            )
        if reply.status == 404 and resource is not None:
            raise ResourceNotServed(
                f"{self._target_id}: the cluster does not serve {name} "
                f"({resource.api_version}): 404 on {verb}"
            )
        if 300 <= reply.status <= 399:
            raise EvidenceUnavailable(
                f"{self._target_id}: {what}: the API server redirected the request (HTTP {reply.status}); "
                "redirects are not followed"
            )
        if not 200 <= reply.status <= 299:
            raise EvidenceUnavailable(f"{self._target_id}: {what}: HTTP {reply.status}: {reply.message()}")
        try:
            document = reply.json()
        except ValueError as exc:
            raise EvidenceUnavailable(f"{self._target_id}: {what}: the answer is not JSON") from exc
        if not isinstance(document, dict):
            raise EvidenceUnavailable(
                f"{self._target_id}: {what}: the answer is {_shape(document)}, not a JSON object"
            )
        return document

    def server_version(self) -> KubeObject:
        """The API server's ``/version`` document (``gitVersion``, ``major``, ``minor``...)."""
        with self._lock:
            if self._version is None:
                try:
                    reply = self._operation(f"{self._target_id}: get /version", "GET", "/version")
                    self._version = self._checked_version(self._decode(reply, "get", None, None))
                except EvidenceUnavailable as exc:
                    self._version = exc
            version = self._version
        if isinstance(version, EvidenceUnavailable):
            raise version
        return dict(version)

    def _checked_version(self, document: KubeObject) -> KubeObject:
        """A ``/version`` answer must carry a string ``gitVersion`` (``major``/``minor`` strings if set)."""
        problems = []
        if not isinstance(document.get("gitVersion"), str) or not document["gitVersion"]:
            problems.append(f"gitVersion is {_shape(document.get('gitVersion'))}, not a version string")
        for key in ("major", "minor"):
            if document.get(key) is not None and not isinstance(document[key], str):
                problems.append(f"{key} is {_shape(document[key])}, not a string")
        if problems:
            raise EvidenceUnavailable(
                f"{self._target_id}: get /version: not a version document: {'; '.join(problems)}"
            )
        return document

    def can_i(
        self,
        user: str,
        groups: Sequence[str],
        verb: str,
        resource: str,
        namespace: str | None,
    ) -> bool:
        """Ask the API server with a ``SubjectAccessReview`` whether ``user`` may do it.

        ``resource`` is named as kubectl does: ``secrets``, ``deployments.apps``, with an
        optional subresource (``pods/exec``); ``*`` asks about every resource. Answers are
        cached; once a review gets no answer (or an error, or not a review), every later one
        raises the same :class:`EvidenceUnavailable` at once.
        """
        key = (user, tuple(groups), verb, resource, namespace)
        with self._lock:
            if key in self._reviews:
                return self._reviews[key]
            if self._reviews_down is not None:
                raise self._reviews_down
        name, _, subresource = resource.partition("/")
        plural, _, group = name.partition(".")
        attributes: dict[str, str] = {"verb": verb, "resource": plural, "group": group}
        if subresource:
            attributes["subresource"] = subresource
        if namespace:
            attributes["namespace"] = namespace
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": list(groups), "resourceAttributes": attributes},
        }
        reviews = Resource("authorization.k8s.io", "v1", "subjectaccessreviews", namespaced=False)
        what = f"{self._target_id}: create {_resource_name(reviews)}"
        try:
            reply = self._operation(what, "POST", _collection_path(reviews, None), body=review)
            answer = self._decode(reply, "create", reviews, None)
        except EvidenceUnavailable as exc:
            # No answer, or not one of an access review: every later review is refused at once
            # with the same reason, instead of waiting out a deadline each.
            with self._lock:
                self._reviews_down = exc
            raise
        allowed = self._review_answer(answer, f"{verb} {resource} {_scope(namespace)} for {user}")
        with self._lock:
            self._reviews[key] = allowed
        return allowed

    def _review_answer(self, answer: KubeObject, question: str) -> bool:
        """The decision of an access review; an undecided one raises ``EvidenceUnavailable``.

        The answer must be a ``SubjectAccessReview``. A denial that carries an
        ``evaluationError`` is not evidence of a denial: the authorizer could not evaluate
        everything (a webhook failed, a role is missing).
        """
        if answer.get("kind") != "SubjectAccessReview":
            raise EvidenceUnavailable(
                f"{self._target_id}: access review ({question}): the answer is not a SubjectAccessReview"
            )
        status = answer.get("status")
        allowed = status.get("allowed") if isinstance(status, dict) else None
        if not isinstance(allowed, bool):
            raise EvidenceUnavailable(
                f"{self._target_id}: access review ({question}): the answer has no "
                "status.allowed decision"
            )
        error = status.get("evaluationError") if isinstance(status, dict) else None
        if not allowed and error:
            raise EvidenceUnavailable(
                f"{self._target_id}: access review ({question}) was denied with an evaluation "
                f"error, so the denial proves nothing: {error}"
            )
        return allowed

    def close(self) -> None:
        """Release the transport (nothing is kept open between operations)."""
        self._transport.close()
