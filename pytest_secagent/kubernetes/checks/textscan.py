"""Where configuration text lives in the agent's objects, and the patterns checks look for.

The scanners yield locations and the *kind* of finding only: a matched value never leaves
this module, so no credential reaches a report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_secagent.kubernetes.checks.scope import ContainerRef

__all__ = [
    "SECRET_VALUE_PATTERNS",
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

SECRET_VALUE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("JWT", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{5,}")),
    ("AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("PEM private key", re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")),
    ("credentials in a URL", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:[^/\s@\"'$]+@", re.I)),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}")),
    ("Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    (
        "secret-named setting with a literal value",
        re.compile(
            r"""(?i)(?<![\w.-])(?:password|passwd|client[_-]?secret|api[_-]?key|secret[_-]?key|"""
            r"""access[_-]?token|auth[_-]?token|token|secret)["']?\s*[=:]\s*["']?(?![$<{%/.])[^\s"',;]{6,}"""
        ),
    ),
)
SECRET_NAME = re.compile(
    r"(?i)(?:password|passwd|pwd|secret|token|api_?key|access_?key|private_?key|credential)"
)
NOT_A_SECRET_NAME = re.compile(
    r"(?i)(?:file|path|dir|url|uri|endpoint|name|ref|enabled|ttl|seconds|id|store|provider|type|mode|"
    r"backend|version|arn|region|length|expiry|expires)$"
)
_SAFE_VALUE = re.compile(
    r"^(?:|true|false|yes|no|on|off|\d+|[./~].*|\$\(.*\)|\$\{.*\}|https?://[^@]*)$", re.I
)


def literal_secret(item: TextItem) -> bool:
    """Tell whether a secret-named key holds a literal value that looks like a credential."""
    if not item.literal or not item.key or not SECRET_NAME.search(item.key):
        return False
    if NOT_A_SECRET_NAME.search(item.key):
        return False
    return len(item.text) >= 6 and not _SAFE_VALUE.match(item.text.strip())


def secret_value_kinds(item: TextItem) -> list[str]:
    """Return the kinds of plaintext credential an item shows (empty: none)."""
    if not item.literal:
        return []
    found = [kind for kind, pattern in SECRET_VALUE_PATTERNS if pattern.search(item.text)]
    if literal_secret(item) and not found:
        found.append(f"literal value of secret-named {item.key}")
    return found
