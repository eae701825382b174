"""Where configuration text lives in the agent's objects, and what checks look for in it.

The scanners yield locations and the *kind* of finding only: a matched value never leaves
this module, so no credential reaches a report. Credentials are found by
:mod:`pytest_secagent.detection`; TLS-verification bypasses by the patterns below.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_secagent.detection import credential_kinds, literal_credential, secret_named
from pytest_secagent.kubernetes.checks.scope import ContainerRef

__all__ = [
    "TLS_BYPASS_PATTERNS",
    "TextItem",
    "component_items",
    "config_map_items",
    "container_items",
    "literal_secret",
    "secret_value_kinds",
    "tls_bypass_kinds",
]


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


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def container_items(ref: ContainerRef) -> Iterator[TextItem]:
    """Yield the env variables, command and args of a container."""
    for variable in ref.container.get("env") or []:
        entry = _map(variable)
        name = str(entry.get("name", ""))
        if "value" in entry:
            yield TextItem(f"{ref.label} env {name}", name, str(entry.get("value") or ""))
        else:
            yield TextItem(f"{ref.label} env {name}", name, "", literal=False)
    for field in ("command", "args"):
        words = [str(w) for w in ref.container.get(field) or []]
        if words:
            yield TextItem(f"{ref.label} {field}", "", " ".join(words))


def config_map_items(config_map: Mapping[str, Any]) -> Iterator[TextItem]:
    """Yield every data entry of a ConfigMap."""
    name = str(_map(config_map.get("metadata")).get("name", ""))
    for key, value in _map(config_map.get("data")).items():
        yield TextItem(f"ConfigMap/{name} key {key}", str(key), str(value or ""))


def component_items(component: Mapping[str, Any]) -> Iterator[TextItem]:
    """Yield every metadata entry of a Dapr Component."""
    name = str(_map(component.get("metadata")).get("name", ""))
    for item in _map(component.get("spec")).get("metadata") or []:
        entry = _map(item)
        key = str(entry.get("name", ""))
        literal = "value" in entry and "secretKeyRef" not in entry
        yield TextItem(f"Dapr Component/{name} metadata {key}", key, str(entry.get("value") or ""), literal)


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
            r"kubelet-insecure-tls|insecure|skip-tls-verify|tls-skip-verify|no-check-certificate)"
            r"(?:[= ]" + _TRUE + r"|(?=\s|$))",
            re.I,
        ),
    ),
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


def tls_bypass_kinds(item: TextItem) -> list[str]:
    """Return the kinds of TLS-verification bypass an item shows (empty: none)."""
    if not item.literal:
        return []
    found = []
    env = ENV_BYPASS.get(item.key.upper())
    if env is not None and env.search(item.text):
        found.append(f"{item.key.upper()}={item.text!r}")
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
