"""A :class:`KubernetesView` over rendered manifests: YAML or JSON files, folders and globs.

Give it ``helm template`` output (or any ``kubectl apply -f`` input): multi-document
files, ``List`` kinds and empty documents are handled; a document that is not valid YAML
or not a Kubernetes object makes the whole view unavailable, naming the file and line.
"""

from __future__ import annotations

import copy
import glob
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml's parser when PyYAML has it: many times faster on large renders
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

from pytest_secagent.kubernetes.resources import current_group, resource_for_kind
from pytest_secagent.kubernetes.shapes import object_problems
from pytest_secagent.kubernetes.view import Resource
from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = [
    "MANIFEST_SUFFIXES", "ManifestError", "ManifestView", "SourcedObject", "location_of", "metadata_only"
]

KubeObject = dict[str, Any]
KubeObjects = list[KubeObject]
Names = list[str]  # an alias: inside the class the name ``list`` is its method

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
"""File name endings read from a folder (and from a glob that matches folders)."""

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MANAGED_FIELDS_KEPT = ("manager", "operation", "time")
"""What metadata-only objects keep of each ``managedFields`` entry (when, and by whom)."""
_GLOB_CHARACTERS = frozenset("*?[")


class ManifestError(EvidenceUnavailable):
    """A manifest path that cannot be read or parsed; the message names the file and line."""


def _write_history(entries: object) -> list[KubeObject]:
    """Keep who wrote an object and when from ``managedFields``: never the field sets."""
    if not isinstance(entries, list):
        return []
    kept = []
    for entry in entries:
        if isinstance(entry, Mapping):
            history = {key: entry[key] for key in MANAGED_FIELDS_KEPT if key in entry}
            if history:
                kept.append(copy.deepcopy(history))
    return kept


def metadata_only(obj: KubeObject) -> KubeObject:
    """Return the object reduced to its metadata, as a ``PartialObjectMetadata`` item.

    The ``last-applied-configuration`` annotation is dropped (for a Secret applied with
    ``kubectl apply`` it holds the secret's values), and each ``managedFields`` entry is cut
    down to its ``manager``, ``operation`` and ``time``: ``fieldsV1`` names the data keys.
    """
    source = obj.get("metadata")
    if not isinstance(source, Mapping):
        source = {}
    metadata = copy.deepcopy({key: value for key, value in source.items() if key != "managedFields"})
    history = _write_history(source.get("managedFields"))
    if history:
        metadata["managedFields"] = history
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            del metadata["annotations"]
    return {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": metadata}


def _files(spec: str) -> list[Path]:
    if _GLOB_CHARACTERS & set(spec):
        matches = sorted(glob.glob(spec, recursive=True))
        if not matches:
            raise ManifestError(f"no manifest file matches {spec!r}")
        paths = [Path(match) for match in matches]
    else:
        path = Path(spec)
        if not path.exists():
            raise ManifestError(f"manifest path {spec!r} does not exist")
        paths = [path]
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                sorted(
                    child
                    for child in path.rglob("*")
                    if child.is_file() and child.suffix.lower() in MANIFEST_SUFFIXES
                )
            )
        elif path.is_file():
            files.append(path)
    if not files:
        raise ManifestError(f"no manifest file (*.yaml, *.yml, *.json) under {spec!r}")
    return files


def _documents(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, document)`` for each document of a file (line is 1-based)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            yield 1, json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
        return
    loader = _SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield node.start_mark.line + 1, loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ManifestError(f"{path}{line}: invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()


class SourcedObject(dict[str, Any]):
    """A manifest object that knows where it is written: ``location`` is ``FILE:LINE``.

    It is a plain mapping for every check; the location survives copies, so evidence about
    the object can point at its lines (SARIF shows findings there).
    """

    location: str = ""


def location_of(obj: object) -> str | None:
    """``FILE:LINE`` of a manifest object (the line its document starts on), else ``None``."""
    location = getattr(obj, "location", "")
    return location if isinstance(location, str) and location else None


def _shown_path(path: Path) -> str:
    """The path relative to the current folder when it lies below it (as SARIF wants it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _objects(path: Path) -> Iterator[tuple[int, KubeObject]]:
    for line, document in _documents(path):
        if document is None:
            continue
        for obj in _expand(path, line, document):
            yield line, obj


def _expand(path: Path, line: int, document: Any) -> Iterable[KubeObject]:
    if not isinstance(document, dict) or not document.get("kind") or not document.get("apiVersion"):
        raise ManifestError(
            f"{path}:{line}: not a Kubernetes object (no apiVersion and kind); "
            "point the target at rendered manifests (helm template ...), not at a chart"
        )
    kind = str(document["kind"])
    if kind.endswith("List") and isinstance(document.get("items"), list):
        for item in document["items"]:
            yield from _expand(path, line, item)
        return
    yield document


class ManifestView:
    """Rendered manifests read once, indexed by resource type and namespace.

    Objects of a namespaced kind without a namespace are placed in ``default_namespace``
    (the agent's namespace, as ``helm template`` leaves it out); ``namespace: null`` and
    ``namespace: ""`` are placed there too, as ``kubectl apply`` and Helm do. Namespace
    objects get the ``kubernetes.io/metadata.name`` label the API server would add.
    Objects of a legacy API group (``extensions/v1beta1`` Deployments, NetworkPolicies...)
    are listed with the group that serves them today. Secrets are only ever returned as
    metadata.
    """

    def __init__(self, path: str, *, default_namespace: str = "default", target_id: str = "") -> None:
        self._path = path
        self._target_id = target_id or f"manifests:{path}"
        self._index: dict[tuple[str, str], list[KubeObject]] = {}
        self._by_namespace: dict[tuple[str, str], dict[str | None, list[KubeObject]]] = {}
        self._objects: list[KubeObject] = []
        self._objects_by_namespace: dict[str | None, list[KubeObject]] = {}
        for file in _files(path):
            for line, obj in _objects(file):
                obj = SourcedObject(obj)
                obj.location = f"{_shown_path(file)}:{line}"
                self._add(obj, default_namespace)

    def _add(self, obj: KubeObject, default_namespace: str) -> None:
        resource = resource_for_kind(str(obj["apiVersion"]), str(obj["kind"]))
        obj = copy.deepcopy(obj)  # a SourcedObject stays one, with its location
        metadata = obj.get("metadata")
        if metadata is None:
            metadata = obj["metadata"] = {}
        if not isinstance(metadata, dict):
            raise ManifestError(f"{obj['kind']} in {self._path} has metadata that is not a mapping")
        namespace = metadata.get("namespace")
        if namespace is not None and not isinstance(namespace, str):
            raise ManifestError(
                f"{obj['kind']}/{metadata.get('name')} in {self._path}: metadata.namespace is "
                f"{namespace!r}, not a string"
            )
        if resource.namespaced:
            if not namespace:
                # kubectl and Helm place null and "" where they place an absent namespace.
                metadata["namespace"] = default_namespace
        else:
            metadata.pop("namespace", None)
        if obj["kind"] == "Namespace" and resource.group == "" and metadata.get("name"):
            labels = metadata.get("labels") or {}
            metadata["labels"] = {**labels, "kubernetes.io/metadata.name": metadata["name"]}
        if obj["kind"] == "Secret" and resource.group == "":
            obj = metadata_only(obj)
        key = (current_group(resource.group, str(obj["kind"])), resource.plural)
        self._index.setdefault(key, []).append(obj)
        where = obj["metadata"].get("namespace")
        self._by_namespace.setdefault(key, {}).setdefault(where, []).append(obj)
        self._objects.append(obj)
        self._objects_by_namespace.setdefault(where, []).append(obj)

    @property
    def target_id(self) -> str:
        """The ID of the target this view belongs to."""
        return self._target_id

    @property
    def live(self) -> bool:
        """Always False: these are rendered manifests."""
        return False

    def list(self, resource: Resource, namespace: str | None = None) -> KubeObjects:
        """Every object of ``resource`` in the files (in ``namespace`` when given).

        Any version of the resource's group matches. Secrets come back metadata-only. An
        object with a field the checks read that is not of its API type (a ConfigMap whose
        ``data`` is a string...) raises :class:`ManifestError` naming it and the field.
        """
        key = (resource.group, resource.plural)
        if namespace is not None and resource.namespaced:
            found = self._by_namespace.get(key, {}).get(namespace, [])
        else:
            found = self._index.get(key, [])
        problems = [problem for obj in found for problem in object_problems(str(obj["kind"]), obj)]
        if problems:
            more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
            raise ManifestError(
                f"{self._target_id}: objects the API would not accept, so they cannot be judged: "
                f"{'; '.join(problems[:5])}{more}"
            )
        return copy.deepcopy(found)

    def objects(self, namespace: str | None = None) -> KubeObjects:
        """Every object in the files, whatever its kind, in file order.

        With ``namespace``, only the objects placed in it (cluster-scoped ones have none).
        Secrets come back metadata-only.
        """
        if namespace is None:
            return copy.deepcopy(self._objects)
        return copy.deepcopy(self._objects_by_namespace.get(namespace, []))

    def namespaces(self) -> Names:
        """The namespaces the files place objects in, sorted."""
        return sorted(ns for ns in self._objects_by_namespace if ns is not None)

    def list_metadata(self, resource: Resource, namespace: str | None = None) -> KubeObjects:
        """Like :meth:`list` but each object reduced to ``PartialObjectMetadata``."""
        return [metadata_only(obj) for obj in self.list(resource, namespace)]

    def server_version(self) -> KubeObject | None:
        """Manifests have no server: always ``None``."""
        return None

    def can_i(
        self, user: str, groups: Sequence[str], verb: str, resource: str, namespace: str | None
    ) -> bool | None:
        """Manifests cannot answer access reviews: always ``None``."""
        return None

    def close(self) -> None:
        """Nothing to release."""
