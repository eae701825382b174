"""Where configuration text lives in the agent's objects, and what checks look for in it.

The scanners yield locations and the *kind* of finding only: a matched value never leaves
this module, so no credential reaches a report. Credentials are found by
:mod:`pytest_secagent.detection`; TLS-verification bypasses by the patterns below.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from pytest_secagent.detection import credential_kinds, literal_credential, secret_named
from pytest_secagent.kubernetes.checks.scope import ContainerRef
from pytest_secagent.kubernetes.workloads import PodTemplate

__all__ = [
    "MAX_DECODED_BYTES",
    "MAX_STRING_CHARS",
    "MAX_VALUES",
    "TLS_BYPASS_PATTERNS",
    "ScanBudget",
    "TextItem",
    "component_items",
    "config_map_items",
    "container_items",
    "literal_secret",
    "pod_items",
    "secret_value_kinds",
    "tls_bypass_kinds",
]

MAX_VALUES = 20_000
"""At most this many values are read from one object; the rest is reported as not scanned."""
MAX_STRING_CHARS = 256 * 1024
"""A longer string is scanned up to this length only, and reported as cut."""
MAX_DECODED_BYTES = 1024 * 1024
"""A ``binaryData`` entry decoded to more than this is scanned up to this size only."""
MAX_DEPTH = 64
REFERENCE_KEYS = frozenset(
    {
        "valueFrom",
        "secretKeyRef",
        "configMapKeyRef",
        "fieldRef",
        "resourceFieldRef",
        "secretRef",
        "configMapRef",
    }
)
"""Keys whose value points to a credential (a Secret, a ConfigMap key, a field), never holds one."""
SKIPPED_METADATA = frozenset(
    {"managedFields", "uid", "resourceVersion", "generation", "creationTimestamp", "ownerReferences"}
)
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e\t]{6,}")


@dataclass
class ScanBudget:
    """Bounds of one scan, and what was left out because of them.

    ``values`` counts down the values still to read; ``cut`` names what was not scanned
    in full, so a check reports it as not observed instead of passing on it.
    """

    values: int = MAX_VALUES
    cut: list[str] = field(default_factory=list)

    def take(self, where: str) -> bool:
        """Count one value; return False (and note it once) when the budget is spent."""
        if self.values <= 0:
            if not self.cut or not self.cut[-1].startswith("more than"):
                self.cut.append(f"more than {MAX_VALUES} values (first left out: {where})")
            return False
        self.values -= 1
        return True

    def clip(self, text: str, where: str) -> str:
        """Return ``text`` cut to :data:`MAX_STRING_CHARS`, noting the cut."""
        if len(text) <= MAX_STRING_CHARS:
            return text
        self.cut.append(f"{where} (scanned its first {MAX_STRING_CHARS} of {len(text)} characters)")
        return text[:MAX_STRING_CHARS]


@dataclass(frozen=True)
class TextItem:
    """A piece of configuration: where it is, its key (if any), its text, and if it is literal.

    ``literal`` is False when the value comes from a reference (``valueFrom``,
    ``secretKeyRef``), so only the reference's name is known.
    """

    where: str
    key: str
    text: str
    literal: bool = True
    path: str = ""
    structured: bool = False
    """True for one value read from parsed data (its ``key`` and ``path`` name it exactly)."""


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


def walk_values(
    value: object, where: str, path: str, key: str, budget: ScanBudget, depth: int = 0
) -> Iterator[TextItem]:
    """Yield every scalar of a parsed tree as a :class:`TextItem`, bounded by ``budget``.

    ``where`` prefixes the location of each item; ``path`` is the dotted path inside it.
    A ``{name, value}`` entry (an env variable, an HTTP header, a Dapr metadata item) is
    one setting named by ``name``: its ``value`` is literal even beside a reference, since
    the literal is stored either way. Lists of scalars (``command``, ``args``) are one
    text, joined by spaces. References (``valueFrom``, ``secretKeyRef``...) are yielded
    as non-literal items naming the setting only.
    """
    if depth > MAX_DEPTH:
        budget.cut.append(f"{where} {path} (nested deeper than {MAX_DEPTH})")
        return
    if isinstance(value, Mapping):
        entries = dict(value)
        if "name" in entries and ("value" in entries or REFERENCE_KEYS & set(entries)):
            name = _scalar(entries.get("name"))
            label = f"{where} {path} {name}".replace("  ", " ").strip()
            if "value" in entries and budget.take(label):
                text = budget.clip(_scalar(entries["value"]), label)
                yield TextItem(label, name, text, True, _join(path, name), True)
            elif REFERENCE_KEYS & set(entries):
                yield TextItem(label, name, "", False, _join(path, name), True)
            entries = {k: v for k, v in entries.items() if k not in ("name", "value")}
        for child_key, child in entries.items():
            child_key = str(child_key)
            if child_key in REFERENCE_KEYS:
                continue
            yield from walk_values(child, where, _join(path, child_key), child_key, budget, depth + 1)
        return
    if isinstance(value, list):
        if value and all(not isinstance(v, (Mapping, list)) for v in value):
            label = f"{where} {path}".strip()
            if budget.take(label):
                text = budget.clip(" ".join(_scalar(v) for v in value), label)
                yield TextItem(label, key, text, True, path, False)
            return
        for index, child in enumerate(value):
            # A list of named settings (env, headers, Dapr metadata) is named by each setting.
            named = isinstance(child, Mapping) and "name" in child
            yield from walk_values(
                child, where, path if named else f"{path}[{index}]", key, budget, depth + 1
            )
        return
    label = f"{where} {path}".strip()
    if budget.take(label):
        yield TextItem(label, key, budget.clip(_scalar(value), label), True, path, True)


def _parsed(text: str) -> object | None:
    """Parse a value that holds JSON or YAML data (a mapping or a list); ``None`` otherwise."""
    stripped = text.strip()
    if not stripped or ("\n" not in stripped and stripped[0] not in "{["):
        return None
    try:
        data: object = json.loads(stripped)
    except ValueError:
        try:
            data = yaml.load(stripped, Loader=_LOADER)  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            return None
    return data if isinstance(data, (Mapping, list)) else None


def _text_items(where: str, key: str, text: str, budget: ScanBudget) -> Iterator[TextItem]:
    """A configuration text as a whole, and each value of the data it holds when it parses."""
    if not budget.take(where):
        return
    text = budget.clip(text, where)
    yield TextItem(where, key, text)
    data = _parsed(text)
    if data is not None:
        yield from walk_values(data, f"{where}:", "", key, budget)


def _decoded(encoded: str, where: str, budget: ScanBudget) -> str | None:
    """Decode a ``binaryData`` value: its text, or the printable runs of binary content."""
    limit = (MAX_DECODED_BYTES * 4) // 3 + 4
    if len(encoded) > limit:
        budget.cut.append(f"{where} (scanned its first {MAX_DECODED_BYTES} decoded bytes)")
        encoded = encoded[: limit - limit % 4]
    try:
        raw = base64.b64decode(encoded.strip(), validate=False)
    except (binascii.Error, ValueError):
        budget.cut.append(f"{where} (not valid base64, not scanned)")
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "\n".join(run.decode("ascii") for run in _PRINTABLE_RUN.findall(raw))


def _metadata_items(obj: Mapping[str, Any], where: str, budget: ScanBudget) -> Iterator[TextItem]:
    annotations = _map(_map(obj.get("metadata")).get("annotations"))
    for key, value in annotations.items():
        yield from _text_items(f"{where} annotation {key}", str(key), _scalar(value), budget)


def container_items(ref: ContainerRef, budget: ScanBudget | None = None) -> Iterator[TextItem]:
    """Yield every value of a container: env, command, args, probes, lifecycle hooks, ..."""
    budget = budget if budget is not None else ScanBudget()
    fields = {k: v for k, v in ref.container.items() if k not in ("name", "image")}
    yield from walk_values(fields, ref.label, "", "", budget)


def pod_items(template: PodTemplate, budget: ScanBudget | None = None) -> Iterator[TextItem]:
    """Yield every value of a pod spec outside its containers, and the pod's and owner's annotations.

    Containers are read by :func:`container_items`. Volumes that only name a Secret or a
    ConfigMap hold no value.
    """
    budget = budget if budget is not None else ScanBudget()
    owner = template.owner
    note = f" ({owner.note})" if owner.note else ""
    label = f"{owner.kind}/{owner.name}{note}"
    spec = {
        k: v
        for k, v in template.spec.items()
        if k not in ("containers", "initContainers", "ephemeralContainers")
    }
    yield from walk_values(spec, f"{label} pod spec", "", "", budget)
    yield from _metadata_items({"metadata": template.metadata}, f"{label} pod template", budget)
    if template.source is not template.metadata:
        yield from _metadata_items(template.source, label, budget)


def config_map_items(config_map: Mapping[str, Any], budget: ScanBudget | None = None) -> Iterator[TextItem]:
    """Yield every entry of a ConfigMap (``data``, decoded ``binaryData``) and its annotations.

    An entry holding JSON or YAML is also read value by value, so nested settings, JSON
    escapes and values on the next line are seen as the program reading them sees them.
    """
    budget = budget if budget is not None else ScanBudget()
    name = str(_map(config_map.get("metadata")).get("name", ""))
    for key, value in _map(config_map.get("data")).items():
        yield from _text_items(f"ConfigMap/{name} key {key}", str(key), _scalar(value), budget)
    for key, value in _map(config_map.get("binaryData")).items():
        where = f"ConfigMap/{name} binaryData key {key}"
        text = _decoded(_scalar(value), where, budget)
        if text is not None:
            yield from _text_items(where, str(key), text, budget)
    yield from _metadata_items(config_map, f"ConfigMap/{name}", budget)


def component_items(component: Mapping[str, Any], budget: ScanBudget | None = None) -> Iterator[TextItem]:
    """Yield every value of a Dapr Component's spec (metadata entries first) and its annotations.

    A metadata entry with both a literal ``value`` and a ``secretKeyRef`` still stores the
    literal, so the literal is judged. A value holding JSON or YAML is also read value by value.
    """
    budget = budget if budget is not None else ScanBudget()
    name = str(_map(component.get("metadata")).get("name", ""))
    spec = _map(component.get("spec"))
    for item in walk_values(spec, f"Dapr Component/{name}", "", "", budget):
        yield item
        data = _parsed(item.text) if item.literal and item.structured else None
        if data is not None:
            yield from walk_values(data, f"{item.where}:", "", item.key, budget)
    yield from _metadata_items(component, f"Dapr Component/{name}", budget)


# --- TLS-verification bypass -------------------------------------------------------------

_TRUE = r"""["']?(?:true|1|yes|on)\b"""
_FALSE = r"""["']?(?:false|0|no|off)\b"""
TLS_BYPASS_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("insecureSkipVerify", re.compile(r"insecure[-_]?skip[-_]?(?:tls[-_]?)?verify\W{0,3}" + _TRUE, re.I)),
    ("skipTLSVerify", re.compile(r"skip[-_]?(?:tls|ssl)[-_]?verif(?:y|ication)\W{0,3}" + _TRUE, re.I)),
    ("insecure: true", re.compile(r"(?<![-\w])insecure\W{0,3}" + _TRUE, re.I)),
    (
        "TLS verification off",
        re.compile(
            r"(?<!skip-)(?<!skip_)(?<!skip)(?:ssl|tls)[-_]?verify(?:[-_]?peer)?\W{0,3}" + _FALSE, re.I
        ),
    ),
    ("verify_ssl off", re.compile(r"verify[-_]?(?:ssl|tls|certs?)\W{0,3}" + _FALSE, re.I)),
    ("sslmode=disable", re.compile(r"sslmode\W{0,3}disable", re.I)),
    (
        "insecure command-line flag",
        re.compile(
            r"--(?:insecure-skip-tls-verify|insecure-registry|allow-insecure-registry|"
            r"kubelet-insecure-tls|insecure|skip-tls-verify|tls-skip-verify|no-check-certificates?|"
            r"no-verify-ssl|no-verify|disable-ssl-verification|ssl-no-verify|skip-ssl-validation)"
            r"(?:[= ]" + _TRUE + r"|(?=[\s'\"]|$))",
            re.I,
        ),
    ),
    ("insecure command-line flag", re.compile(r"--(?:tls-verify|ssl-verify|verify-ssl)[= ]" + _FALSE, re.I)),
    ("curl -k", re.compile(r"\bcurl\b[^\n;&|]*?(?<!\S)-[A-Za-z]*k[A-Za-z]*(?=[\s'\"]|$)")),
    (
        "plain http:// to a service that needs TLS",
        re.compile(
            r"http://[^\s\"']*(?:atlan\.com|amazonaws\.com|blob\.core\.windows\.net|"
            r"dfs\.core\.windows\.net|storage\.googleapis\.com|vault|secretsmanager)",
            re.I,
        ),
    ),
)
ENV_BYPASS: Mapping[str, re.Pattern[str]] = {
    "NODE_TLS_REJECT_UNAUTHORIZED": re.compile(r"^0$"),
    "PYTHONHTTPSVERIFY": re.compile(r"^0$"),
    "REQUESTS_CA_BUNDLE": re.compile(r"^$"),
    "CURL_CA_BUNDLE": re.compile(r"^$"),
    "GIT_SSL_NO_VERIFY": re.compile(r"^(?:1|true|yes)$", re.I),
    "GODEBUG": re.compile(r"x509ignorecn", re.I),
}


_TRUE_VALUES = frozenset({"true", "1", "yes", "on", "y"})
_FALSE_VALUES = frozenset({"false", "0", "no", "off", "n"})
_TLS_CONTEXT = re.compile(r"tls|ssl|https|cert|x509|peer|host", re.I)


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _setting_bypass(item: TextItem) -> str | None:
    """Judge one setting by its name and value: a switch that turns TLS verification off.

    ``skipVerify``/``insecureSkipVerify``/``VAULT_SKIP_VERIFY``/``insecure`` set true, and
    ``verify``/``sslVerify``/``rejectUnauthorized``/``PYTHONHTTPSVERIFY`` set false (a bare
    ``verify`` counts inside a TLS/SSL setting only: ``tls: {verify: false}``).
    """
    if not item.key or "\n" in item.text:
        return None
    key, value = _normal(item.key), item.text.strip().strip("\"'").strip().lower()
    if ("skip" in key and "verif" in key) or "insecure" in key:
        if value in _TRUE_VALUES:
            return f"{item.key} set to {value}"
    if ("verif" in key or "rejectunauthorized" in key or "checkcert" in key) and "skip" not in key:
        context = _TLS_CONTEXT.search(key) or _TLS_CONTEXT.search(item.path)
        if value in _FALSE_VALUES and (context or "rejectunauthorized" in key):
            return f"{item.path or item.key} set to {value}"
    if key == "sslmode" and value == "disable":
        return f"{item.key} set to disable"
    return None


def tls_bypass_kinds(item: TextItem) -> list[str]:
    """Return the kinds of TLS-verification bypass an item shows (empty: none).

    A setting is judged by its name and value (:func:`_setting_bypass`), then its text by
    the patterns of :data:`TLS_BYPASS_PATTERNS` (command lines, URLs, unparsed files).
    """
    if not item.literal:
        return []
    found = []
    env = ENV_BYPASS.get(item.key.upper())
    if env is not None and env.search(item.text):
        found.append(f"{item.key.upper()}={item.text!r}")
    setting = _setting_bypass(item)
    if setting is not None and not found:
        found.append(setting)
    combined = f"{item.key}: {item.text}" if item.key else item.text
    found.extend(kind for kind, pattern in TLS_BYPASS_PATTERNS if pattern.search(combined))
    return found


# --- plaintext secrets -------------------------------------------------------------------


def literal_secret(item: TextItem) -> bool:
    """Tell whether a secret-named key holds a literal value (however short) that is no reference."""
    return item.literal and secret_named(item.key) and literal_credential(item.text)


def secret_value_kinds(item: TextItem) -> list[str]:
    """Return the kinds of plaintext credential an item shows (empty: none).

    The same engine masks credentials in reports (:mod:`pytest_secagent.detection`).
    """
    if not item.literal:
        return []
    return credential_kinds(item.key, item.text)
