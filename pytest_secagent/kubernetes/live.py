"""A read-only :class:`KubernetesView` of a live cluster, over the official ``kubernetes`` client.

The client supplies configuration (kubeconfig or in-cluster service account), credentials,
TLS and connection pooling; this module sends exactly these requests and no other:

* ``GET`` lists of a resource type, paginated with ``limit``/``continue``, each
  (resource, namespace) once per run and cached, failures included;
* the same lists in the metadata-only form (``PartialObjectMetadataList``) for Secrets,
  so no secret value is ever fetched;
* ``GET /version``;
* ``POST`` of ``SubjectAccessReview`` (an access review writes nothing).

Every request carries the run's timeout. Objects come back as the API's JSON
dictionaries (camelCase keys), with ``apiVersion`` and ``kind`` on every list item as
``kubectl get -o json`` shows them.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from pytest_secagent.kubernetes.manifests import metadata_only
from pytest_secagent.kubernetes.resources import SECRETS
from pytest_secagent.kubernetes.view import Resource, ResourceNotServed
from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = ["DEFAULT_PAGE_SIZE", "METADATA_LIST_ACCEPT", "LiveClusterView"]

KubeObject = dict[str, Any]
KubeObjects = list[KubeObject]

DEFAULT_PAGE_SIZE = 500
"""Objects per list request (``limit``); the rest follow with ``continue``."""

METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
"""The ``Accept`` header that asks the API server for metadata only."""

_JSON = "application/json"
_MAX_PAGES = 10_000
_SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def _kubernetes(module: str) -> Any:
    """Import a module of the official client, late and untyped.

    Late: the client is only needed once a live target is used. Untyped: its two
    generations type the same calls differently, and this module drives both.
    """
    return importlib.import_module(f"kubernetes.{module}")


class _Unreachable(Exception):
    """The request got no HTTP answer (connection refused, TLS failure, timeout)."""


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
            return str(document["message"])
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


class _Transport:
    """Sends one request through the official client's configured ``ApiClient``.

    Two generations of the client exist (the ``param_serialize``/``call_api`` pair of
    37+, and the older one-call ``call_api``); both are driven here the same way, with
    the bearer-token auth setting and no automatic retries.
    """

    def __init__(self, configuration: Any) -> None:
        client = _kubernetes("client")
        # Retries would multiply the timeout; a failure is reported, not hidden.
        configuration.retries = False
        if hasattr(configuration, "client_go_retries"):
            configuration.client_go_retries = False
        self._exception = client.exceptions.ApiException
        self.api_client: Any = client.ApiClient(configuration)

    def send(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        accept: str = _JSON,
        body: KubeObject | None = None,
        timeout: float,
    ) -> _Reply:
        import urllib3

        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = _JSON
        try:
            if hasattr(self.api_client, "param_serialize"):
                return self._send_generated(method, path, query, headers, body, timeout)
            return self._send_legacy(method, path, query, headers, body, timeout)
        except self._exception as exc:
            if not exc.status:
                raise _Unreachable(str(exc.reason or exc).replace("\n", ": ")) from exc
            raw = exc.body or b""
            return _Reply(int(exc.status), raw if isinstance(raw, bytes) else str(raw).encode())
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Unreachable(f"{type(exc).__name__}: {exc}") from exc

    def _send_generated(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        headers: dict[str, str],
        body: KubeObject | None,
        timeout: float,
    ) -> _Reply:
        request = self.api_client.param_serialize(
            method,
            path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(*request, _request_timeout=timeout)
        data = response.read()
        return _Reply(int(response.status), bytes(data or b""))

    def _send_legacy(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        headers: dict[str, str],
        body: KubeObject | None,
        timeout: float,
    ) -> _Reply:
        try:
            result = self.api_client.call_api(
                path,
                method,
                query_params=list(query),
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=timeout,
            )
        except AttributeError as exc:
            # Those releases fail to decode the empty body of their own TLS-error exception.
            failure = exc.__context__
            if isinstance(failure, self._exception) and not failure.status:
                raise _Unreachable(str(failure.reason).replace("\n", ": ")) from failure
            raise
        # The raw urllib3 response (some releases wrap it in a (data, status, headers) tuple).
        response = result[0] if isinstance(result, tuple) else result
        return _Reply(int(response.status), bytes(response.data or b""))

    def close(self) -> None:
        self.api_client.close()
        # Older clients leave the connection pool to the garbage collector.
        pool = getattr(getattr(self.api_client, "rest_client", None), "pool_manager", None)
        if pool is not None:
            pool.clear()


class LiveClusterView:
    """A live cluster, read with get/list only, every list once per run.

    Build it with :meth:`from_kubeconfig` or :meth:`in_cluster`. ``timeout`` bounds each
    request (seconds); ``page_size`` is the ``limit`` of each list request.
    """

    def __init__(
        self,
        configuration: Any,
        *,
        timeout: float,
        target_id: str,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self._transport = _Transport(configuration)
        self._timeout = timeout
        self._target_id = target_id
        self._page_size = page_size
        self._lists: dict[tuple[Resource, str | None, bool], KubeObjects | EvidenceUnavailable] = {}
        # Cluster-wide lists split by namespace, so a namespace is served without a scan.
        self._split: dict[tuple[Resource, bool], dict[str | None, KubeObjects]] = {}
        self._version: KubeObject | EvidenceUnavailable | None = None
        self._reviews: dict[tuple[str, tuple[str, ...], str, str, str | None], bool] = {}
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
        return cls(configuration, timeout=timeout, target_id=target, page_size=page_size)

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

    def _cached(self, resource: Resource, namespace: str | None, *, metadata: bool) -> KubeObjects:
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
        items: KubeObjects = []
        token = ""
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            query = [("limit", str(self._page_size))]
            if token:
                query.append(("continue", token))
            reply = self._request("GET", path, "list", resource, namespace, query=query, accept=accept)
            document = self._decode(reply, "list", resource, namespace)
            items.extend(self._items(document, resource, metadata=metadata))
            token = str((document.get("metadata") or {}).get("continue") or "")
            if not token:
                return items
            if token in seen:
                raise EvidenceUnavailable(
                    f"list {_resource_name(resource)} {_scope(namespace)}: "
                    "the API server repeated a continue token"
                )
            seen.add(token)
        raise EvidenceUnavailable(f"list {_resource_name(resource)}: more than {_MAX_PAGES} pages")

    def _items(self, document: KubeObject, resource: Resource, *, metadata: bool) -> KubeObjects:
        kind = str(document.get("kind", ""))
        if metadata:
            if kind != "PartialObjectMetadataList":
                # Never keep full objects when metadata was asked for (they may be Secrets).
                raise EvidenceUnavailable(
                    f"list {_resource_name(resource)}: the API server answered a metadata-only "
                    f"request with {kind or 'something else'}; refusing to read full objects"
                )
            return [metadata_only(item) for item in document.get("items") or []]
        item_kind = kind[: -len("List")] if kind.endswith("List") else kind
        api_version = str(document.get("apiVersion") or resource.api_version)
        items: KubeObjects = []
        for item in document.get("items") or []:
            items.append({"apiVersion": api_version, "kind": item_kind, **item})
        return items

    def _request(
        self,
        method: str,
        path: str,
        verb: str,
        resource: Resource | None,
        namespace: str | None,
        *,
        query: Sequence[tuple[str, str]] = (),
        accept: str = _JSON,
        body: KubeObject | None = None,
    ) -> _Reply:
        what = f"{verb} {_resource_name(resource)} {_scope(namespace)}" if resource else verb
        try:
            return self._transport.send(
                method, path, query=query, accept=accept, body=body, timeout=self._timeout
            )
        except _Unreachable as exc:
            where = f"{path}?{urlencode(query)}" if query else path
            raise EvidenceUnavailable(
                f"{self._target_id}: {what}: no answer from the API server within "
                f"{self._timeout:g}s ({method} {where}): {exc}"
            ) from exc

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
        if not 200 <= reply.status <= 299:
            raise EvidenceUnavailable(f"{self._target_id}: {what}: HTTP {reply.status}: {reply.message()}")
        try:
            document = reply.json()
        except ValueError as exc:
            raise EvidenceUnavailable(f"{self._target_id}: {what}: the answer is not JSON") from exc
        if not isinstance(document, dict):
            raise EvidenceUnavailable(f"{self._target_id}: {what}: the answer is not an object")
        return document

    def server_version(self) -> KubeObject:
        """The API server's ``/version`` document (``gitVersion``, ``major``, ``minor``...)."""
        with self._lock:
            if self._version is None:
                try:
                    reply = self._request("GET", "/version", "get /version", None, None)
                    self._version = self._decode(reply, "get", None, None)
                except EvidenceUnavailable as exc:
                    self._version = exc
            version = self._version
        if isinstance(version, EvidenceUnavailable):
            raise version
        return dict(version)

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
        optional subresource (``pods/exec``); ``*`` asks about every resource.
        """
        key = (user, tuple(groups), verb, resource, namespace)
        with self._lock:
            if key in self._reviews:
                return self._reviews[key]
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
        reply = self._request("POST", _collection_path(reviews, None), "create", reviews, None, body=review)
        answer = self._decode(reply, "create", reviews, None)
        allowed = self._review_answer(answer, f"{verb} {resource} {_scope(namespace)} for {user}")
        with self._lock:
            self._reviews[key] = allowed
        return allowed

    def _review_answer(self, answer: KubeObject, question: str) -> bool:
        """The decision of an access review; an undecided one raises ``EvidenceUnavailable``.

        A denial that carries an ``evaluationError`` is not evidence of a denial: the
        authorizer could not evaluate everything (a webhook failed, a role is missing).
        """
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
        """Release the client's connections."""
        self._transport.close()
