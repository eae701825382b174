"""A faithful, read-only Kubernetes API server for the tests, over HTTPS on loopback.

It speaks the parts of the API the plugin may use, the way a real kube-apiserver does:
bearer-token authentication (401 ``Status``), per-user authorization (403 ``Status`` with
the apiserver's wording), discovery, ``/version``, lists with ``limit``/``continue``,
label and field selectors, metadata-only lists (``PartialObjectMetadataList``), gets, and
SubjectAccessReview / SelfSubjectAccessReview. Every other write is refused with 405.
Every request is recorded in :attr:`FakeApiServer.request_log`. :attr:`FakeApiServer.faults`
makes it answer chosen requests with a fault instead (see :mod:`tests.kubernetes.faults`).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import socket
import ssl
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.kubernetes.apiauth import (
    CLUSTER_ADMIN,
    READ_EVERYTHING,
    Rule,
    User,
    make_users,
    rbac_review,
)
from tests.kubernetes.apitypes import ApiType
from tests.kubernetes.certs import make_server_certificate
from tests.kubernetes.cluster import FakeCluster, seed_cluster
from tests.kubernetes.faults import FaultPlan, deliver
from tests.kubernetes.kubeconfig import write_kubeconfig
from tests.kubernetes.selectors import SelectorError, field_selector, label_selector

KubeObject = dict[str, Any]

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REVIEW_TYPES = frozenset({"subjectaccessreviews", "selfsubjectaccessreviews"})


@dataclass(frozen=True)
class LoggedRequest:
    """One request the server received, and what it answered."""

    method: str
    path: str
    query: dict[str, str]
    user: str | None
    status: int
    verb: str = ""
    accept: str = ""
    returned_secret_data: bool = False
    fault: str = ""

    @property
    def metadata_only(self) -> bool:
        """Whether the client asked for a metadata-only answer."""
        return "as=PartialObjectMetadata" in self.accept


def status_body(code: int, reason: str, message: str, details: KubeObject | None = None) -> KubeObject:
    """A ``Status`` failure body, as the API server sends with every error."""
    body: KubeObject = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


class _Answer(Exception):
    """Ends request handling with this status and body."""

    def __init__(self, status: int, body: KubeObject) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _not_found() -> _Answer:
    return _Answer(
        404,
        status_body(404, "NotFound", "the server could not find the requested resource", {}),
    )


@dataclass(frozen=True)
class _Target:
    api_type: ApiType
    namespace: str | None
    name: str | None
    subresource: str | None


def _media_ranges(accept: str) -> Iterator[tuple[str, dict[str, str]]]:
    for entry in accept.split(","):
        parts = [part.strip() for part in entry.split(";")]
        params = {}
        for part in parts[1:]:
            key, _, value = part.partition("=")
            params[key.strip()] = value.strip()
        yield parts[0].lower(), params


def _has_secret_data(obj: Any) -> bool:
    """Whether an answer carries Secret values (a Secret or SecretList with data)."""
    if not isinstance(obj, dict):
        return False
    if obj.get("kind") == "Secret":
        return "data" in obj or "stringData" in obj
    if obj.get("kind") == "SecretList":
        return any("data" in item or "stringData" in item for item in obj.get("items") or [])
    return False


class FakeApiServer:
    """The server: start it, hand out kubeconfigs, read its request log, stop it."""

    def __init__(self, cluster: FakeCluster, users: dict[str, User], workdir: Path) -> None:
        self.cluster = cluster
        self.users = users
        self.workdir = workdir
        self._log: list[LoggedRequest] = []
        self._log_lock = threading.Lock()
        self._certificate = make_server_certificate(workdir)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.faults = FaultPlan()

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> FakeApiServer:
        """Listen on an ephemeral loopback port and serve in a background thread."""
        handler = type("Handler", (_Handler,), {"server_state": self})
        httpd = _QuietServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._certificate.cert_file, self._certificate.key_file)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (faults that hold a connection end too)."""
        self.faults.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    # -- what tests use --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``."""
        assert self._httpd is not None, "the server is not started"
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def ca_pem(self) -> bytes:
        """The PEM certificate of the CA that signed the server certificate."""
        return self._certificate.ca_pem

    def user(self, name: str) -> User:
        """The user called ``name``."""
        for user in self.users.values():
            if user.name == name:
                return user
        raise KeyError(f"no user {name!r}; known: {sorted(u.name for u in self.users.values())}")

    def kubeconfig_for(
        self, user: str, *, context: str = "secagent-test", namespace: str | None = None
    ) -> Path:
        """Write a kubeconfig that logs in as ``user`` (server URL, CA data, token, context)."""
        path = self.workdir / f"kubeconfig-{user}-{context}.yaml"
        return write_kubeconfig(
            path,
            server=self.url,
            ca_pem=self.ca_pem,
            token=self.user(user).token,
            user=user,
            context=context,
            namespace=namespace,
        )

    @property
    def request_log(self) -> list[LoggedRequest]:
        """Every request so far, oldest first (a copy)."""
        with self._log_lock:
            return list(self._log)

    def clear_log(self) -> None:
        """Forget the requests so far."""
        with self._log_lock:
            self._log.clear()

    def record(self, entry: LoggedRequest) -> None:
        """Append to the request log."""
        with self._log_lock:
            self._log.append(entry)


class _QuietServer(ThreadingHTTPServer):
    """Reports errors in handling a request, but not a connection the client or a fault cut."""

    # A real API server accepts bursts of connections; the standard library's backlog of 5
    # resets them on a loaded test machine.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: FakeApiServer

    def setup(self) -> None:
        super().setup()
        # As Go servers do: no Nagle delay between the headers and the body.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet; the request log has everything."""

    def finish(self) -> None:
        """Flush and close; a connection a fault reset or the client cut is already gone."""
        try:
            super().finish()
        except OSError:
            pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        accept = self.headers.get("Accept") or ""
        user: User | None = None
        verb = ""
        try:
            user = self._authenticate()
            status, answer, verb = _Router(self.server_state, user, method, path, query, accept, body).route()
        except _Answer as stop:
            status, answer = stop.status, stop.body
        except Exception as exc:  # a bug in the test server must show, not hang the client
            status, answer = 500, status_body(500, "InternalError", f"test server error: {exc!r}")
        rule = self.server_state.faults.pick(method, path, user.name if user else None) if user else None
        self.server_state.record(
            LoggedRequest(
                method=method,
                path=path,
                query=query,
                user=user.name if user else None,
                status=status,
                verb=verb,
                accept=accept,
                returned_secret_data=_has_secret_data(answer),
                fault=rule.kind if rule else "",
            )
        )
        if rule is not None:
            deliver(rule.kind, self, answer, self.server_state.faults)
            return
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Audit-Id", f"{id(answer):x}")
        self.end_headers()
        self.wfile.write(payload)

    def _authenticate(self) -> User:
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        user = self.server_state.users.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise _Answer(401, status_body(401, "Unauthorized", "Unauthorized"))
        return user


class _Router:
    def __init__(
        self,
        state: FakeApiServer,
        user: User,
        method: str,
        path: str,
        query: dict[str, str],
        accept: str,
        body: bytes,
    ) -> None:
        self.state = state
        self.cluster = state.cluster
        self.user = user
        self.method = method
        self.path = path.rstrip("/") or "/"
        self.query = query
        self.accept = accept
        self.body = body

    def route(self) -> tuple[int, KubeObject, str]:
        parts = [part for part in self.path.split("/") if part]
        if self.path == "/version":
            return self._read_only(200, self.cluster.version(), "get")
        if parts[:1] == ["api"] and len(parts) <= 2:
            return self._read_only(200, self._core_discovery(parts), "get")
        if parts[:1] == ["apis"] and len(parts) <= 3:
            return self._read_only(200, self._group_discovery(parts), "get")
        if parts[:1] == ["api"]:
            return self._resource("", parts[1], parts[2:])
        if parts[:1] == ["apis"]:
            return self._resource(parts[1], parts[2], parts[3:])
        raise _not_found()

    def _read_only(self, status: int, body: KubeObject, verb: str) -> tuple[int, KubeObject, str]:
        if self.method != "GET":
            raise self._method_not_allowed()
        return status, body, verb

    @staticmethod
    def _method_not_allowed() -> _Answer:
        return _Answer(
            405,
            status_body(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                {},
            ),
        )

    # -- discovery -------------------------------------------------------------------------

    def _core_discovery(self, parts: list[str]) -> KubeObject:
        if len(parts) == 1:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self.state.url.split("//")[1]}
                ],
            }
        if parts[1] != "v1":
            raise _not_found()
        return self._resource_list("", "v1")

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for api_type in self.cluster.served_types():
            if api_type.group:
                versions = groups.setdefault(api_type.group, [])
                if api_type.version not in versions:
                    versions.append(api_type.version)
        return groups

    def _api_group(self, name: str, versions: list[str]) -> KubeObject:
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": entries, "preferredVersion": entries[0]}

    def _group_discovery(self, parts: list[str]) -> KubeObject:
        groups = self._groups()
        if len(parts) == 1:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._api_group(name, versions) for name, versions in sorted(groups.items())],
            }
        if parts[1] not in groups:
            raise _not_found()
        if len(parts) == 2:
            return {"kind": "APIGroup", "apiVersion": "v1", **self._api_group(parts[1], groups[parts[1]])}
        if parts[2] not in groups[parts[1]]:
            raise _not_found()
        return self._resource_list(parts[1], parts[2])

    def _resource_list(self, group: str, version: str) -> KubeObject:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": [
                t.discovery()
                for t in self.cluster.served_types()
                if t.group == group and t.version == version
            ],
        }

    # -- resources -------------------------------------------------------------------------

    def _parse_target(
        self, group: str, version: str, rest: list[str]
    ) -> tuple[str, str | None, str | None, str | None]:
        """(plural, namespace, name, subresource) of a resource path below the group version."""
        if not rest:
            raise _not_found()
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, plural = rest[1], rest[2]
            name = rest[3] if len(rest) > 3 else None
            sub = "/".join(rest[4:]) or None
            return plural, namespace, name, sub
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = "/".join(rest[2:]) or None
        return plural, None, name, sub

    def _verb(self, name: str | None) -> str:
        if self.method == "GET":
            if name:
                return "get"
            return "watch" if self.query.get("watch") in ("1", "true") else "list"
        if self.method == "POST":
            return "create"
        if self.method == "PUT":
            return "update"
        if self.method == "PATCH":
            return "patch"
        return "delete" if name else "deletecollection"

    def _resource(self, group: str, version: str, rest: list[str]) -> tuple[int, KubeObject, str]:
        plural, namespace, name, sub = self._parse_target(group, version, rest)
        verb = self._verb(name)
        if self.method == "POST" and group == "authorization.k8s.io" and plural in REVIEW_TYPES and not name:
            return self._access_review(version, plural)
        if self.method in MUTATING_METHODS:
            raise self._method_not_allowed()
        self._authorize(verb, group, plural, namespace, name)
        api_type = self.cluster.find_type(group, version, plural)
        if api_type is None or (namespace is not None and not api_type.namespaced) or sub:
            raise _not_found()
        if verb == "watch":
            raise _Answer(
                400, status_body(400, "BadRequest", "watch is not supported by the test API server")
            )
        if name:
            return 200, self._get(api_type, namespace, name), verb
        return 200, self._list(api_type, namespace), verb

    def _authorize(self, verb: str, group: str, plural: str, namespace: str | None, name: str | None) -> None:
        if self.user.allows(verb, group, plural, namespace):
            return
        resource = f"{plural}.{group}" if group else plural
        subject = f'{resource} "{name}"' if name else resource
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        details: KubeObject = {"kind": plural}
        if group:
            details["group"] = group
        if name:
            details["name"] = name
        raise _Answer(
            403,
            status_body(
                403,
                "Forbidden",
                f'{subject} is forbidden: User "{self.user.name}" cannot {verb} resource '
                f'"{plural}" in API group "{group}" {scope}',
                details,
            ),
        )

    def _representation(self, listing: bool) -> str:
        """``full``, ``partial`` (metadata only), or 406 when nothing acceptable is asked."""
        if not self.accept.strip():
            return "full"
        wanted = "PartialObjectMetadataList" if listing else "PartialObjectMetadata"
        for media_type, params in _media_ranges(self.accept):
            if media_type not in ("application/json", "application/*", "*/*"):
                continue
            form = params.get("as")
            if form is None:
                return "full"
            if form == wanted and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1"):
                return "partial"
        raise _Answer(
            406,
            status_body(
                406,
                "NotAcceptable",
                f"only the following media types are accepted: application/json, "
                f"application/json;as={wanted};g=meta.k8s.io;v=v1",
            ),
        )

    def _get(self, api_type: ApiType, namespace: str | None, name: str) -> KubeObject:
        obj = self.cluster.get(api_type.group, api_type.plural, namespace or "", name)
        if obj is None:
            raise _Answer(
                404,
                status_body(
                    404,
                    "NotFound",
                    f'{api_type.name} "{name}" not found',
                    {"name": name, "group": api_type.group, "kind": api_type.plural}
                    if api_type.group
                    else {"name": name, "kind": api_type.plural},
                ),
            )
        if self._representation(listing=False) == "partial":
            return {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": copy.deepcopy(obj["metadata"]),
            }
        return {"apiVersion": api_type.group_version, "kind": api_type.kind, **copy.deepcopy(obj)}

    def _selected(self, api_type: ApiType, namespace: str | None) -> list[KubeObject]:
        objects = self.cluster.objects(api_type.group, api_type.plural, namespace)
        try:
            if self.query.get("labelSelector"):
                matches = label_selector(self.query["labelSelector"])
                objects = [o for o in objects if matches(o["metadata"].get("labels") or {})]
            if self.query.get("fieldSelector"):
                terms = field_selector(self.query["fieldSelector"], api_type.plural)
                objects = [o for o in objects if all(term.matches(o) for term in terms)]
        except SelectorError as exc:
            raise _Answer(400, status_body(400, "BadRequest", str(exc))) from exc
        return objects

    def _page(self, objects: list[KubeObject]) -> tuple[list[KubeObject], KubeObject]:
        metadata: KubeObject = {"resourceVersion": self.cluster.resource_version}
        start = 0
        token = self.query.get("continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                start = int(state["start"])
            except (ValueError, KeyError, TypeError, binascii.Error) as exc:
                raise _Answer(
                    400, status_body(400, "BadRequest", f"continue key is not valid: {exc}")
                ) from exc
        limit_text = self.query.get("limit", "")
        limit = int(limit_text) if limit_text.isdigit() and int(limit_text) > 0 else 0
        end = start + limit if limit else len(objects)
        page = objects[start:end]
        if end < len(objects):
            state = {"v": "meta.k8s.io/v1", "rv": int(self.cluster.resource_version), "start": end}
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
            metadata["remainingItemCount"] = len(objects) - end
        return page, metadata

    def _list(self, api_type: ApiType, namespace: str | None) -> KubeObject:
        representation = self._representation(listing=True)
        page, metadata = self._page(self._selected(api_type, namespace))
        if representation == "partial":
            return {
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "items": [
                    {
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": copy.deepcopy(obj["metadata"]),
                    }
                    for obj in page
                ],
            }
        items = []
        for obj in page:
            item = copy.deepcopy(obj)
            if api_type.builtin:
                # Typed lists carry no apiVersion/kind on their items; custom resources do.
                item.pop("apiVersion", None)
                item.pop("kind", None)
            else:
                item["apiVersion"] = api_type.group_version
            items.append(item)
        return {
            "kind": f"{api_type.kind}List",
            "apiVersion": api_type.group_version,
            "metadata": metadata,
            "items": items,
        }

    # -- access reviews --------------------------------------------------------------------

    def _access_review(self, version: str, plural: str) -> tuple[int, KubeObject, str]:
        if plural == "subjectaccessreviews":
            self._authorize("create", "authorization.k8s.io", plural, None, None)
        try:
            review = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise _Answer(400, status_body(400, "BadRequest", f"invalid JSON body: {exc}")) from exc
        spec = review.get("spec") or {}
        attributes = spec.get("resourceAttributes")
        if attributes is None:
            raise _Answer(
                422,
                status_body(
                    422,
                    "Invalid",
                    "SubjectAccessReview is invalid: spec.resourceAttributes: Required value",
                ),
            )
        errors: list[str] = []
        if plural == "selfsubjectaccessreviews":
            allowed = self._allowed_for(self.user, attributes)
        else:
            subject = str(spec.get("user", ""))
            known = next((u for u in self.state.users.values() if u.name == subject), None)
            if known is not None:
                allowed = self._allowed_for(known, attributes)
            else:
                groups = list(spec.get("groups") or [])
                allowed, errors = rbac_review(self.cluster, subject, groups, attributes)
        kind = "SubjectAccessReview" if plural == "subjectaccessreviews" else "SelfSubjectAccessReview"
        status: KubeObject = {"allowed": True}
        if not allowed:
            status = {"allowed": False, "reason": "no RBAC policy matched"}
            if errors:
                status["evaluationError"] = ", ".join(f"[{error}]" for error in errors)
        answer = {
            "kind": kind,
            "apiVersion": f"authorization.k8s.io/{version}",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }
        return 201, answer, "create"

    @staticmethod
    def _allowed_for(user: User, attributes: KubeObject) -> bool:
        return user.allows(
            str(attributes.get("verb", "")),
            str(attributes.get("group", "")),
            str(attributes.get("resource", "")),
            attributes.get("namespace") or None,
        )


class SilentServer:
    """A TCP listener on loopback that accepts connections and never answers."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        self._socket.settimeout(0.05)
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._connections.append(connection)

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``."""
        return f"https://127.0.0.1:{self._socket.getsockname()[1]}"

    def start(self) -> SilentServer:
        """Start accepting."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every accepted connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for connection in self._connections:
            connection.close()
        self._socket.close()


def start_apiserver(
    workdir: Path,
    scenario: Path | None = None,
    users: dict[str, Sequence[Rule]] | Iterable[User] | None = None,
    *,
    version: str | None = None,
    objects: Iterable[KubeObject] = (),
    default_namespace: str = "default",
) -> FakeApiServer:
    """Seed a cluster from ``scenario`` (and ``objects``) and start a server for it.

    ``users`` maps names to rules (default: ``admin`` with every right and ``auditor``,
    read-only with access reviews).
    """
    cluster = seed_cluster(
        scenario, version=version, default_namespace=default_namespace, extra_objects=objects
    )
    if users is None:
        users = [User("admin", CLUSTER_ADMIN), User("auditor", READ_EVERYTHING)]
    workdir.mkdir(parents=True, exist_ok=True)
    return FakeApiServer(cluster, make_users(users), workdir).start()
