"""The object store of the test API server, seeded from a scenario folder.

Seeding does what a real cluster would have done by the time anyone lists it: objects
get uid, resourceVersion, creationTimestamp and the defaults the API server applies;
every namespace used exists (with its ``kubernetes.io/metadata.name`` label, a
``default`` service account and the ``kube-root-ca.crt`` ConfigMap); and the controllers
have run (see :mod:`tests.kubernetes.controllers`).

A scenario folder holds YAML/JSON manifests (multi-document, ``List`` kinds) and may hold
an ``apiserver.cfg`` file (not a manifest, so the manifest view ignores it)::

    [apiserver]
    version = v1.29.4-eks-036c24b   # what /version says (default v1.30.4)
    unserved = networking.k8s.io/networkpolicies, dapr.io/components
    pods = true                    # false: no controller creates pods
"""

from __future__ import annotations

import configparser
import copy
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.kubernetes.apitypes import BUILTIN_TYPES, KNOWN_CUSTOM_TYPES, ApiType, guess_plural

KubeObject = dict[str, Any]

DEFAULT_VERSION = "v1.30.4"
SEED_TIME = "2024-06-01T12:00:00Z"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
CONFIG_FILE = "apiserver.cfg"
_UID_NAMESPACE = uuid.UUID("6f1c8f5e-2d0a-4c55-9d8e-4b7e2c1a9f00")
LEGACY_VERSIONS = {
    ("extensions/v1beta1", "Deployment"): "apps/v1",
    ("extensions/v1beta1", "DaemonSet"): "apps/v1",
    ("extensions/v1beta1", "ReplicaSet"): "apps/v1",
    ("extensions/v1beta1", "NetworkPolicy"): "networking.k8s.io/v1",
    ("extensions/v1beta1", "Ingress"): "networking.k8s.io/v1",
    ("apps/v1beta1", "Deployment"): "apps/v1",
    ("apps/v1beta1", "StatefulSet"): "apps/v1",
    ("apps/v1beta2", "Deployment"): "apps/v1",
    ("apps/v1beta2", "StatefulSet"): "apps/v1",
    ("apps/v1beta2", "DaemonSet"): "apps/v1",
    ("apps/v1beta2", "ReplicaSet"): "apps/v1",
    ("batch/v1beta1", "CronJob"): "batch/v1",
}
"""Objects written in an old API version, and the version the cluster serves them as.

A cluster that accepted them stores one object and serves it in every version of the
resource; lists of today's version show them.
"""


@dataclass
class ScenarioConfig:
    """Settings of a scenario that are not objects."""

    version: str = DEFAULT_VERSION
    unserved: set[tuple[str, str]] = field(default_factory=set)
    pods: bool = True

    @classmethod
    def read(cls, folder: Path) -> ScenarioConfig:
        """Read ``apiserver.cfg`` of ``folder`` (defaults when there is none)."""
        config = cls()
        path = folder / CONFIG_FILE
        if not path.is_file():
            return config
        parser = configparser.ConfigParser(inline_comment_prefixes=("#",))
        parser.read(path, encoding="utf-8")
        section = parser["apiserver"] if parser.has_section("apiserver") else {}
        config.version = section.get("version", DEFAULT_VERSION)
        for entry in section.get("unserved", "").split(","):
            if entry.strip():
                group, _, plural = entry.strip().rpartition("/")
                config.unserved.add((group, plural))
        config.pods = section.get("pods", "true").strip().lower() not in ("false", "no", "0")
        return config


def version_info(git_version: str) -> KubeObject:
    """The ``/version`` document of a server reporting ``git_version``."""
    match = re.match(r"v(\d+)\.(\d+)", git_version)
    major, minor = (match.group(1), match.group(2)) if match else ("1", "30")
    if "-eks-" in git_version or "-gke." in git_version:
        minor += "+"
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-05-14T10:42:02Z",
        "goVersion": "go1.22.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def read_manifests(folder: Path) -> Iterator[KubeObject]:
    """Every object in the YAML/JSON files under ``folder`` (``List`` kinds expanded)."""
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in (".yaml", ".yml", ".json"):
            continue
        text = path.read_text(encoding="utf-8")
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        documents = [json.loads(text)] if path.suffix == ".json" else yaml.load_all(text, Loader=loader)
        for document in documents:
            yield from _expand(document)


def _expand(document: Any) -> Iterator[KubeObject]:
    if not isinstance(document, dict):
        return
    if str(document.get("kind", "")).endswith("List") and isinstance(document.get("items"), list):
        for item in document["items"]:
            yield from _expand(item)
    elif document.get("kind") and document.get("apiVersion"):
        yield document


class FakeCluster:
    """Objects by type and (namespace, name), with the served types and the version."""

    def __init__(self, config: ScenarioConfig | None = None, default_namespace: str = "default"):
        self.config = config or ScenarioConfig()
        self.default_namespace = default_namespace
        self._resource_version = 1000
        self._services = 0
        self._types: dict[tuple[str, str], ApiType] = {
            (t.group, t.plural): t for t in BUILTIN_TYPES if (t.group, t.plural) not in self.config.unserved
        }
        self._known_custom = {(t.group, t.kind): t for t in KNOWN_CUSTOM_TYPES}
        self._store: dict[tuple[str, str], dict[tuple[str, str], KubeObject]] = {}

    # -- types ---------------------------------------------------------------------------

    def served_types(self) -> list[ApiType]:
        """Every served type, built-in and installed custom ones."""
        return list(self._types.values())

    def find_type(self, group: str, version: str, plural: str) -> ApiType | None:
        """The served type at ``/apis/<group>/<version>/<plural>``, or None (404)."""
        found = self._types.get((group, plural))
        if found is None or found.version != version:
            return None
        return found

    def type_of(self, api_version: str, kind: str) -> ApiType:
        """The type of objects with this apiVersion and kind, installing custom ones."""
        group, _, version = api_version.rpartition("/")
        for api_type in self._types.values():
            if api_type.group == group and api_type.kind == kind:
                return api_type
        known = self._known_custom.get((group, kind))
        if known is not None:
            installed = ApiType(group, version, known.plural, kind, known.namespaced, builtin=False)
        else:
            installed = ApiType(group, version, guess_plural(kind), kind, True, builtin=False)
        if (group, installed.plural) not in self.config.unserved:
            self._types[(group, installed.plural)] = installed
        return installed

    def _install_crd(self, crd: KubeObject) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        versions = [v.get("name") for v in spec.get("versions") or [] if v.get("served", True)]
        if not (spec.get("group") and names.get("plural") and names.get("kind") and versions):
            return
        key = (str(spec["group"]), str(names["plural"]))
        if key not in self.config.unserved:
            self._types[key] = ApiType(
                key[0],
                str(versions[0]),
                key[1],
                str(names["kind"]),
                spec.get("scope", "Namespaced") == "Namespaced",
                builtin=False,
            )

    # -- objects -------------------------------------------------------------------------

    def next_resource_version(self) -> str:
        """A new, larger resourceVersion."""
        self._resource_version += 1
        return str(self._resource_version)

    @property
    def resource_version(self) -> str:
        """The latest resourceVersion (a list's ``metadata.resourceVersion``)."""
        return str(self._resource_version)

    def add(self, obj: KubeObject) -> KubeObject:
        """Store one object, completing its metadata; returns the stored copy."""
        obj = copy.deepcopy(obj)
        obj["apiVersion"] = LEGACY_VERSIONS.get((str(obj["apiVersion"]), str(obj["kind"])), obj["apiVersion"])
        api_type = self.type_of(str(obj["apiVersion"]), str(obj["kind"]))
        if api_type.kind == "CustomResourceDefinition":
            self._install_crd(obj)
        if obj.get("metadata") is None:
            obj["metadata"] = {}
        metadata = obj["metadata"]
        if api_type.namespaced:
            if not metadata.get("namespace"):
                # kubectl and Helm send null and "" as the namespace of the context.
                metadata["namespace"] = self.default_namespace
        else:
            metadata.pop("namespace", None)
        namespace = metadata.get("namespace", "")
        name = str(metadata.get("name", ""))
        if not name and metadata.get("generateName"):
            name = f"{metadata['generateName']}{uuid.uuid5(_UID_NAMESPACE, str(id(obj))).hex[:5]}"
            metadata["name"] = name
        metadata.setdefault("uid", str(uuid.uuid5(_UID_NAMESPACE, f"{api_type.name}/{namespace}/{name}")))
        metadata["resourceVersion"] = self.next_resource_version()
        metadata.setdefault("creationTimestamp", SEED_TIME)
        if api_type.group in ("apps", "batch"):
            metadata.setdefault("generation", 1)
        self._store.setdefault((api_type.group, api_type.plural), {})[(namespace, name)] = obj
        return obj

    def objects(self, group: str, plural: str, namespace: str | None = None) -> list[KubeObject]:
        """Objects of a type, in the API server's order (namespace, then name)."""
        stored = self._store.get((group, plural), {})
        return [stored[key] for key in sorted(stored) if namespace is None or key[0] == namespace]

    def get(self, group: str, plural: str, namespace: str, name: str) -> KubeObject | None:
        """One object, or None."""
        return self._store.get((group, plural), {}).get((namespace, name))

    def all_objects(self) -> Iterable[tuple[ApiType, KubeObject]]:
        """Every stored object with its type."""
        for (group, plural), objects in self._store.items():
            api_type = self._types.get((group, plural))
            if api_type is not None:
                for obj in objects.values():
                    yield api_type, obj

    def version(self) -> KubeObject:
        """The ``/version`` document."""
        return version_info(self.config.version)

    # -- seeding -------------------------------------------------------------------------

    def ensure_namespaces(self) -> None:
        """Create every namespace in use, plus the system ones, with what the server adds."""
        used = set(SYSTEM_NAMESPACES)
        for api_type, obj in list(self.all_objects()):
            if api_type.namespaced:
                used.add(str(obj["metadata"]["namespace"]))
        for name in sorted(used):
            if self.get("", "namespaces", "", name) is None:
                self.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        for namespace in self.objects("", "namespaces"):
            metadata = namespace["metadata"]
            labels = metadata.get("labels") or {}
            metadata["labels"] = {**labels, "kubernetes.io/metadata.name": metadata["name"]}
            namespace.setdefault("spec", {"finalizers": ["kubernetes"]})
            namespace.setdefault("status", {"phase": "Active"})
            name = metadata["name"]
            if self.get("", "serviceaccounts", name, "default") is None:
                self.add(
                    {
                        "apiVersion": "v1",
                        "kind": "ServiceAccount",
                        "metadata": {"name": "default", "namespace": name},
                    }
                )
            if self.get("", "configmaps", name, "kube-root-ca.crt") is None:
                self.add(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "kube-root-ca.crt", "namespace": name},
                        "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
                    }
                )

    def apply_defaults(self) -> None:
        """Fill the fields the API server defaults on creation."""
        for api_type, obj in self.all_objects():
            if api_type.group == "" and api_type.kind == "Secret":
                obj.setdefault("type", "Opaque")
            elif api_type.group == "" and api_type.kind == "Service":
                spec = obj.setdefault("spec", {})
                spec.setdefault("type", "ClusterIP")
                spec.setdefault("sessionAffinity", "None")
                if spec.get("clusterIP") != "None":
                    self._services += 1
                    spec.setdefault("clusterIP", f"10.96.{self._services // 250}.{self._services % 250 + 1}")


def seed_cluster(
    folder: Path | None,
    *,
    version: str | None = None,
    default_namespace: str = "default",
    extra_objects: Iterable[KubeObject] = (),
) -> FakeCluster:
    """Build a cluster from a scenario folder (and/or objects), as a real one would look."""
    from tests.kubernetes.controllers import run_controllers

    config = ScenarioConfig.read(folder) if folder is not None else ScenarioConfig()
    if version is not None:
        config.version = version
    cluster = FakeCluster(config, default_namespace)
    objects = list(read_manifests(folder)) if folder is not None else []
    objects.extend(extra_objects)
    for obj in sorted(objects, key=lambda o: o.get("kind") != "CustomResourceDefinition"):
        cluster.add(obj)
    cluster.ensure_namespaces()
    cluster.apply_defaults()
    run_controllers(cluster)
    return cluster


def now_rfc3339() -> str:
    """The current time in the API's timestamp format."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
