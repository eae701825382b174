"""A :class:`KubernetesView` over rendered manifests: YAML or JSON files, folders and globs.

Give it ``helm template`` output (or any ``kubectl apply -f`` input): multi-document
files, ``List`` kinds and empty documents are handled; a document that is not valid YAML
or not a Kubernetes object makes the whole view unavailable, naming the file and line.

The files are read as Kubernetes reads them (its YAML parser follows YAML 1.1 as go-yaml
v2 implements it), not as a YAML 1.2 reader would: ``y``/``n`` (and ``yes``, ``on``...) are
booleans, a merge key ``<<`` is applied where it is written (one written after a key
overrides it), timestamps and ``1:20`` stay strings, non-string keys become their JSON
text, and UTF-16 and UTF-32 files with a byte-order mark are read like UTF-8 ones. When
two objects share group, kind, namespace and name, the last one is the one judged, as
``kubectl apply`` and Argo CD leave the last one in place; :meth:`ManifestView.duplicates`
names them.
"""

from __future__ import annotations

import copy
import glob
import json
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:  # libyaml's parser when PyYAML has it: many times faster on large renders
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

from pytest_secagent.kubernetes.resources import current_group, resource_for_kind
from pytest_secagent.kubernetes.shapes import object_problems
from pytest_secagent.kubernetes.view import Resource
from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = [
    "MANIFEST_SUFFIXES",
    "ManifestError",
    "ManifestView",
    "SourcedObject",
    "location_of",
    "metadata_only",
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


_MERGE_TAG = "tag:yaml.org,2002:merge"
_ONE_LETTER_BOOLEANS = {"y": True, "n": False}


class _KubernetesLoader(_SafeLoader):
    """A YAML loader that reads documents as Kubernetes (go-yaml v2, YAML 1.1) reads them."""

    bool_values: ClassVar[dict[str, bool]] = {**_SafeLoader.bool_values, **_ONE_LETTER_BOOLEANS}

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        """Build a mapping with each merge key applied at its place: later entries win."""
        mapping: dict[Hashable, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for merged in self._merged(node, value_node):
                    mapping.update(merged)
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found unhashable key",
                    key_node.start_mark,
                )
            mapping[_json_key(key)] = self.construct_object(value_node, deep=deep)
        return mapping

    def _merged(self, node: Node, value: Node) -> list[dict[Hashable, Any]]:
        """The mappings a merge key brings, the one that wins last (the first of a list wins)."""
        if isinstance(value, MappingNode):
            return [self.construct_mapping(value, deep=True)]
        if isinstance(value, SequenceNode) and all(isinstance(item, MappingNode) for item in value.value):
            return [self.construct_mapping(item, deep=True) for item in reversed(value.value)]
        raise yaml.constructor.ConstructorError(
            "while constructing a mapping",
            node.start_mark,
            "a merge key needs a mapping or a list of mappings",
            value.start_mark,
        )


def _integer(loader: _KubernetesLoader, node: ScalarNode) -> Any:
    """An integer, except ``1:20`` (go-yaml has no base-60 numbers: it is a string)."""
    text = loader.construct_scalar(node)
    return text if ":" in str(text) else SafeConstructor.construct_yaml_int(loader, node)


def _float(loader: _KubernetesLoader, node: ScalarNode) -> Any:
    """A float, except ``1:20.5`` (a string for go-yaml)."""
    text = loader.construct_scalar(node)
    return text if ":" in str(text) else SafeConstructor.construct_yaml_float(loader, node)


def _string(loader: _KubernetesLoader, node: ScalarNode) -> Any:
    """The scalar as written: go-yaml hands timestamps (and ``=``) to an untyped field as strings."""
    return loader.construct_scalar(node)


_KubernetesLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))
_KubernetesLoader.add_constructor("tag:yaml.org,2002:int", _integer)
_KubernetesLoader.add_constructor("tag:yaml.org,2002:float", _float)
_KubernetesLoader.add_constructor("tag:yaml.org,2002:timestamp", _string)
_KubernetesLoader.add_constructor("tag:yaml.org,2002:value", _string)


def _json_key(key: object) -> object:
    """A mapping key as it reads once the document is JSON (``true``, ``1``, ``null``)."""
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, (int, float)):
        return str(key)
    return key


_BYTE_ORDER_MARKS = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xef\xbb\xbf", "utf-8"),
)


def _text(path: Path) -> str:
    """The file's text: UTF-8, or UTF-16/UTF-32 when a byte-order mark says so (as kubectl reads it)."""
    try:
        data = path.read_bytes()
        for mark, encoding in _BYTE_ORDER_MARKS:
            if data.startswith(mark):
                return data[len(mark) :].decode(encoding)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {path}: {exc}") from exc


def _documents(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, document)`` for each document of a file (line is 1-based)."""
    text = _text(path)
    if path.suffix.lower() == ".json":
        try:
            yield 1, json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
        return
    loader = _KubernetesLoader(text)
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


_Identity = tuple[str, str, "str | None", str]


def _identity(resource: Resource, kind: str, obj: KubeObject) -> _Identity | None:
    """(group, kind, namespace, name) of a placed object; ``None`` when it has no name."""
    name = obj["metadata"].get("name")
    if not isinstance(name, str) or not name:
        return None
    return current_group(resource.group, kind), kind, obj["metadata"].get("namespace"), name


def _describe(key: _Identity) -> str:
    group, kind, namespace, name = key
    where = f" in namespace {namespace}" if namespace else ""
    return f"{kind}/{name}{where}" + (f" ({group})" if group else "")


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
        self._duplicates: list[str] = []
        latest: dict[_Identity, KubeObject] = {}
        placed: list[tuple[KubeObject, Resource, _Identity | None]] = []
        for file in _files(path):
            for line, obj in _objects(file):
                obj = SourcedObject(obj)
                obj.location = f"{_shown_path(file)}:{line}"
                kind = str(obj["kind"])  # as written: a Secret is reduced to its metadata below
                resource = resource_for_kind(str(obj["apiVersion"]), kind)
                obj = self._placed(obj, default_namespace)
                placed.append((obj, resource, _identity(resource, kind, obj)))
        for obj, _, key in placed:
            if key is None:
                continue
            earlier = latest.get(key)
            if earlier is not None:
                self._duplicates.append(
                    f"{_describe(key)}: {location_of(earlier) or 'an earlier object'} is replaced by "
                    f"{location_of(obj) or 'a later one'} (kubectl apply leaves the last one in place)"
                )
            latest[key] = obj
        kept = {id(obj) for obj in latest.values()}
        for obj, resource, key in placed:
            if key is None or id(obj) in kept:
                self._add(obj, resource, kind_written=str(obj["kind"]) if key is None else key[1])

    def duplicates(self) -> Names:
        """One line per object that a later one of the same group, kind, namespace and name replaces."""
        return list(self._duplicates)

    def _placed(self, obj: KubeObject, default_namespace: str) -> KubeObject:
        """The object with its namespace placed as kubectl places it, and Secrets metadata-only."""
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
            location = location_of(obj)
            obj = SourcedObject(metadata_only(obj))
            obj.location = location or ""
        return obj

    def _add(self, obj: KubeObject, resource: Resource, kind_written: str) -> None:
        key = (current_group(resource.group, kind_written), resource.plural)
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
