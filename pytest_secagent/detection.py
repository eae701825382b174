"""Find credentials in configuration and report text: which kind, and where.

One engine decides both SA-SECRET-002 / SA-IAM-005 findings and what the reports mask, so
what is detected is what is redacted, and nothing else is.

The shapes come from the detect-secrets library, driven in-process on strings:

* its provider detectors (cloud keys, code-host and chat tokens, JWTs, private keys,
  passwords in URLs, ...), every regex-based plugin it ships except public IP addresses;
* its keyword detector's assignment patterns for secret-named settings;
* its entropy detectors (base64 and hex) for random-looking values, with its heuristic
  filters (UUIDs, sequences, templates, ``$`` references, indirect references).

This module adds only what the library has no detector for: settings whose name says
"secret" (including ``token`` and ``credential``) holding any literal value however short,
``Bearer`` and ``Basic`` authorization values, ``user:password`` after a ``-u``/``--user``
command-line flag, PEM blocks the library does not list, and
the references and placeholders that are *not* credentials (``${VAR}``, ``$(VAR)``,
``{{ .Values.x }}``, secret-store and vault references, file paths).

A finding carries the kind and the span of the value, never a copy of it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.filters import heuristic
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.high_entropy_strings import (
    Base64HighEntropyString,
    HexHighEntropyString,
    HighEntropyStringsPlugin,
)
from detect_secrets.plugins.ip_public import IPPublicDetector
from detect_secrets.plugins.keyword import CONFIG_DENYLIST_REGEX_TO_GROUP, DENYLIST

__all__ = [
    "Finding",
    "credential_kinds",
    "find_credentials",
    "is_reference",
    "literal_credential",
    "secret_named",
]

SECRET_SETTING = "secret-named setting with a literal value"  # noqa: S105 - a finding kind
BEARER = "Bearer token"
BASIC = "Basic authorization header"
USER_PASSWORD_FLAG = "user:password on a command line"  # noqa: S105 - a finding kind
PRIVATE_KEY = "Private Key"
JWT = "JSON Web Token"
HIGH_ENTROPY_BASE64 = "Base64 High Entropy String"
HIGH_ENTROPY_HEX = "Hex High Entropy String"


@dataclass(frozen=True, order=True)
class Finding:
    """A credential in a text: the span ``[start, end)`` of its value and its kind."""

    start: int
    end: int
    kind: str


# --- names ------------------------------------------------------------------------------

_SECRET_WORDS = (
    *DENYLIST,
    "token",
    "credentials?",
    "access_?key",
    "secret_?key",
    "signing_?key",
    "encryption_?key",
    "master_?key",
    "storage_?key",
    "batch_?key",
    "sas_?token",
    "connection_?string",
)
_SECRET_NAME = re.compile("|".join(f"(?:{word})" for word in _SECRET_WORDS), re.IGNORECASE)
_NOT_A_SECRET_LAST_WORD = frozenset(
    """file files path paths dir directory url uri endpoint host name names ref refs enabled disabled
    enable ttl seconds minutes hours days timeout interval period count size length max min id ids
    store stores provider type kind mode backend version arn region expiry expires expiration
    rotation policy format header namespace mount volume selector label annotation class scope scopes
    audience issuer algorithm required managed manager source template field env location
    schedule""".split()
)
_NOT_A_SECRET_FIRST_WORD = frozenset(
    "enable disable use skip allow require is has no checksum digest sha hash".split()
)
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_FILE_NAME = re.compile(
    r"\.(?:ya?ml|json|pem|crt|cer|key|txt|conf|cfg|ini|env|toml|properties|py|sh|p12|pfx|jks)$", re.I
)
_CONTROL_ID = re.compile(r"^SA-[A-Z]+-\d+$")


@functools.lru_cache(maxsize=4096)
def secret_named(key: str) -> bool:
    """Tell whether a setting's name says it holds a credential.

    ``DB_PASSWORD``, ``client_secret``, ``ATLAN_API_TOKEN`` and ``AZURE_STORAGE_KEY`` do;
    names of a place, a switch or a kind of thing do not (``secret_store``,
    ``TOKEN_FILE``, ``PASSWORD_TYPE``, ``AWS_REGION``, ``enable_secret_scan``), nor file
    names (``secret_access_key.yaml``) or control IDs (``SA-SECRET-002``).
    """
    name = key.strip().strip("\"'[]-")
    normal = re.sub(r"[-.]", "_", name)
    if not name or not _SECRET_NAME.search(normal) or _CONTROL_ID.match(name) or _FILE_NAME.search(name):
        return False
    words = [word.lower() for word in _WORD.findall(name)]
    return (
        bool(words) and words[-1] not in _NOT_A_SECRET_LAST_WORD and words[0] not in _NOT_A_SECRET_FIRST_WORD
    )


# --- values -----------------------------------------------------------------------------

_REFERENCE = re.compile(
    r"""^(?:
        \$\{[^}]*\}            # ${VAR}, ${VAR:-default}
      | \$\([^)]*\)            # $(VAR) (Kubernetes env expansion)
      | \$[A-Za-z_]\w*         # $VAR
      | \{\{.*\}\}             # {{ .Values.x }} (Helm, Go templates)
      | <[^<>]*>               # <password> placeholder
      | %\([^)]*\)s            # %(name)s
      | \[\[.*\]\]
      | (?:vault|secret|secretref|ref\+\w+|sm|ssm|awssm|azkv|gcpsm|op|env|file|k8s|kubernetes|
           secretsmanager|keyvault):\S*   # secret-store and vault references
      | arn:aws[\w-]*:(?:secretsmanager|ssm|kms):\S*
      | projects/[^/\s]+/secrets/\S*
      | https://[\w.-]+\.vault\.azure\.net/\S*
      | (?:\.{1,2}/|/|~/)\S*    # file paths
      | [A-Za-z]:\\\S*
    )$""",
    re.VERBOSE | re.IGNORECASE,
)
_NOT_A_VALUE = frozenset(
    {
        "",
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "null",
        "nil",
        "none",
        "~",
        "unset",
        "set",
        "not",
        "present",
        "absent",
        "missing",
        "found",
        "required",
        "optional",
        "empty",
        "unknown",
        "n/a",
        "***",
        "redacted",
    }
)
_URL_WITHOUT_USERINFO = re.compile(r"^[a-z][a-z0-9+.-]*://[^@\s]*$", re.IGNORECASE)


def is_reference(value: str) -> bool:
    """Tell whether a value points to a credential instead of being one.

    Placeholders (``${DB_PASSWORD}``, ``$(TOKEN)``, ``{{ .Values.token }}``,
    ``<password>``), secret-store and vault references (``vault:secret/data/db#password``,
    an AWS Secrets Manager ARN, a Key Vault URL) and file paths are references.
    """
    text = value.strip().strip("\"'")
    return bool(_REFERENCE.match(text)) or heuristic.is_templated_secret(text)


def literal_credential(value: str) -> bool:
    """Tell whether a secret-named setting's value is a literal credential.

    Any non-empty value counts, however short, unless it is a reference or placeholder
    (:func:`is_reference`), a switch or an empty marker (``true``, ``no``, ``none``), or a
    URL without a password in it.
    """
    text = value.strip().strip("\"'`").strip()
    if text.lower() in _NOT_A_VALUE or is_reference(text):
        return False
    return not _URL_WITHOUT_USERINFO.match(text)


# --- the detectors ----------------------------------------------------------------------


def _provider_detectors() -> tuple[RegexBasedDetector, ...]:
    classes: Iterable[object] = get_mapping_from_secret_type_to_class().values()
    chosen = [
        cls()
        for cls in classes
        if isinstance(cls, type) and issubclass(cls, RegexBasedDetector) and cls is not IPPublicDetector
    ]
    return tuple(sorted(chosen, key=lambda plugin: str(plugin.secret_type)))


_PROVIDERS = _provider_detectors()
_PROVIDER_PATTERNS = tuple((plugin, tuple(plugin.denylist)) for plugin in _PROVIDERS)
_BASE64 = Base64HighEntropyString(limit=4.5)
_HEX = HexHighEntropyString(limit=3.0)
_KEYWORD_PATTERNS = tuple(CONFIG_DENYLIST_REGEX_TO_GROUP.items())

_PEM = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
# A JWT, also when a message shortened it (``eyJhbGci...c2ln``): everything up to the next
# character that cannot be part of one.
_JWT_FRAGMENT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}[A-Za-z0-9_.-]*")
_BEARER = re.compile(r"\b[Bb]earer[ \t]+([A-Za-z0-9\-._~+/]{8,}=*)")
_BASIC = re.compile(r"\b[Bb]asic[ \t]+([A-Za-z0-9+/]{8,}={0,2})(?![\w+/=])")
# ``key: value``, ``key=value``, ``"key": "value"``. Only the key and the separator are
# consumed, so a setting nested in another's value (``file: a.password=x``) is seen too.
_PAIR = re.compile(
    r"""(?<![\w./:])(?P<key>[A-Za-z_][\w.-]*)["'\]]{0,2}[ \t]*(?::=|=>|[:=])[ \t]*
    (?=(?P<q>["'`])(?P<quoted>[^"'`\n]*)(?P=q)
      |(?P<bare>\{\{.*?\}\}|\$\{[^}\s]*\}|\$\([^)\s]*\)|[^\s"'`,;]+))""",
    re.VERBOSE,
)
# ``curl -u user:password``, ``--user=user:password``, ``-U`` (a proxy's): the password part.
# Short flags count after ``curl`` only (``-u`` means other things to other commands), and
# numeric ``uid:gid`` pairs are no credential.
_USER_FLAG = re.compile(
    r"""(?:(?<!\S)(?:--user|--proxy-user)(?:[ \t]+|=)|\bcurl\b[^\n;&|]*?(?<!\S)-[A-Za-z]*[uU][ \t]*)
    ["']?(?!\d+:\d+(?:\s|$))[^\s:"'@/]+:(?P<value>[^\s"']+)""",
    re.VERBOSE,
)
_FLAG = re.compile(r"(?<!\S)--?(?P<key>[A-Za-z][\w-]*)[ \t]+(?P<value>[^\s-]\S*)")
_KEY_AT_END = re.compile(r"[A-Za-z_][\w.-]*$")
_FIRST_TOKEN = re.compile(r"[^\s,;]+")
_NO_ENTROPY_NAME = re.compile(
    r"(?:sha\d*|digest|hash|checksum|commit|revision|rev|uuid|guid|etag|fingerprint|image|id|ids)$", re.I
)

# Cheap gates: a text none of these match holds nothing the detectors find. Every provider
# shape has a run of 16 letters and digits or one of the markers; every random-looking value
# the entropy detectors judge has 20 base64 characters in a row; every secret name, and every
# keyword of the library's keyword detector, contains one of the roots.
_GATE_PROVIDER = re.compile(
    r"[A-Za-z0-9]{16}|://\S*@|PRIVATE KEY|PuTTY|xox|hooks\.slack|AKC|\bAP[0-9A-F]|eyJ|_authToken|"
    r"[Bb]earer|[Bb]asic|AccountKey|gh[pousr]_|gl[a-z]+-|GR1348941|SG\.|sq0|\d{8,10}:|[MNO][\w-]{23,25}\.|"
    r"pypi-|T3BlbkFJ"
)
_NEVER = re.compile(r"(?!)")
_PREREQUISITES: dict[str, tuple[re.Pattern[str], bool]] = {
    "ArtifactoryDetector": (re.compile(r"AKC|AP[\dA-F]"), False),
    "AWSKeyDetector": (re.compile(r"A3T|ABIA|ACCA|AKIA|ASIA"), True),
    "CloudantDetector": (re.compile(r"cloudant"), True),
    "IbmCloudIamDetector": (_NEVER, True),
    "IbmCosHmacDetector": (_NEVER, True),
    "MailchimpDetector": (re.compile(r"-us\d"), False),
    "SoftlayerDetector": (re.compile(r"softlayer", re.IGNORECASE), True),
}
"""What some of the library's costlier detectors need before their patterns can match: a
marker, or (when the flag is set) a secret-name root, since those detectors pair the value
with ``key``, ``pass``, ``pw``, ``secret`` or ``token``."""
_GATE_KEYED_RUN = re.compile(r"[A-Za-z0-9_+/=-]{40}")
"""Shapes that providers only report next to a keyword (an AWS secret key, an IBM Cloud key)."""
_GATE_LONG_RUN = re.compile(r"[A-Za-z0-9_+/=-]{20}")
_LINE = re.compile(r"[^\n]+")
_CACHED_LENGTH = 4096
_GATE_ROOTS = ("key", "pass", "pw", "secret", "token", "credential", "contras", "connection")
_GATE_ROOT = re.compile("|".join(_GATE_ROOTS))
_QUOTES = frozenset("\"'`")


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Narrow a detector's match to the value: drop delimiters and a ``Name=`` prefix."""
    prefix = re.match(r"[\s\"'=:]*(?:[A-Za-z]+=)?", text[start:end])
    if prefix and prefix.end() < end - start:
        start += prefix.end()
    while end > start and text[end - 1] in " \t\r\n\"'":
        end -= 1
    return start, end


def _spans(plugin: RegexBasedDetector, text: str) -> Iterator[tuple[int, int]]:
    """Spans of what ``plugin`` reports in ``text``: its matches (or their groups) it accepts."""
    accepted = set(plugin.analyze_string(text))
    if not accepted:
        return
    for regex in plugin.denylist:
        for match in regex.finditer(text):
            groups = [i for i in range(1, (match.lastindex or 0) + 1) if match.group(i) in accepted]
            if groups:
                yield match.span(groups[0])
            elif match.group(0) in accepted:
                yield match.span()


def _provider_findings(text: str, *, keyword: bool) -> Iterator[Finding]:
    for plugin, patterns in _PROVIDER_PATTERNS:
        needs = _PREREQUISITES.get(type(plugin).__name__)
        if needs is not None and not ((keyword and needs[1]) or needs[0].search(text)):
            continue
        if not any(pattern.search(text) for pattern in patterns):
            continue
        kind = str(plugin.secret_type)
        for start, end in _spans(plugin, text):
            if kind == PRIVATE_KEY:
                block = _PEM.search(text, max(0, start - 16))
                if block is not None and block.start() <= start:
                    yield Finding(block.start(), block.end(), kind)
                else:
                    yield Finding(start, len(text), kind)
            else:
                yield Finding(*_trim(text, start, end), kind)
    for block in _PEM.finditer(text):
        yield Finding(block.start(), block.end(), PRIVATE_KEY)
    for match in _JWT_FRAGMENT.finditer(text):
        yield Finding(match.start(), match.end(), JWT)


def _authorization_findings(text: str) -> Iterator[Finding]:
    for match in _BEARER.finditer(text):
        token = match.group(1)
        if (
            len(token) >= 16
            or re.search(r"[\d\-._~+/]", token)
            or token.lower() not in (token, token.upper())
        ):
            yield Finding(match.start(1), match.end(1), BEARER)
    for match in _BASIC.finditer(text):
        try:
            decoded = base64.b64decode(match.group(1) + "==", validate=False).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            continue
        if ":" in decoded:
            yield Finding(match.start(1), match.end(1), BASIC)


def _user_flag_findings(text: str) -> Iterator[Finding]:
    for match in _USER_FLAG.finditer(text):
        if literal_credential(match.group("value")):
            yield Finding(*match.span("value"), USER_PASSWORD_FLAG)


def _keyish(key: str) -> bool:
    """Whether a name says its value is key material: hex values count as random there only."""
    upper = key.upper()
    return "KEY" in upper or "SIGNATURE" in upper or "SALT" in upper or "HMAC" in upper


def _entropy_kind(value: str, *, hex_too: bool) -> str | None:
    """Return the entropy finding kind for a whole value, or ``None``."""
    if len(value) < 20 or heuristic.is_sequential_string(value) or heuristic.is_potential_uuid(value):
        return None
    if heuristic.is_not_alphanumeric_string(value) or heuristic.is_prefixed_with_dollar_sign(value):
        return None
    detectors: tuple[tuple[HighEntropyStringsPlugin, str], ...] = ((_BASE64, HIGH_ENTROPY_BASE64),)
    if hex_too:
        detectors = ((_HEX, HIGH_ENTROPY_HEX), *detectors)
    for plugin, kind in detectors:
        if set(value) <= set(plugin.charset):
            if plugin.calculate_shannon_entropy(value) > plugin.entropy_limit:
                return kind
    return None


def _balanced(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop closing brackets at the end of a bare value that it did not open."""
    pairs = {")": "(", "}": "{", "]": "["}
    while (
        end > start
        and text[end - 1] in pairs
        and text.count(pairs[text[end - 1]], start, end) < text.count(text[end - 1], start, end)
    ):
        end -= 1
    return start, end


def _value_span(text: str, start: int, end: int) -> tuple[int, int]:
    token = _FIRST_TOKEN.match(text, start, end)
    return (start, token.end()) if token else (start, end)


def _pair_findings(text: str, *, keyword: bool) -> Iterator[Finding]:
    """Secret-named settings with literal values, and random-looking setting values.

    ``keyword`` says whether the text holds a secret-name root at all; without one only
    random-looking values are looked for.
    """
    inside_reference = 0
    for match in _PAIR.finditer(text):
        if match.start() < inside_reference:
            continue
        key = match.group("key")
        group = "quoted" if match.group("quoted") is not None else "bare"
        start, end = _balanced(text, *match.span(group))
        value = text[start:end]
        reference = is_reference(value) or bool(_URL_WITHOUT_USERINFO.match(value))
        if reference:
            inside_reference = end
        if keyword and secret_named(key):
            if not reference and literal_credential(value):
                yield Finding(start, end, SECRET_SETTING)
            continue
        if reference or len(value) < 20 or _NO_ENTROPY_NAME.search(key):
            continue
        kind = _entropy_kind(value.strip(), hex_too=_keyish(key))
        if kind is not None:
            yield Finding(start, end, kind)
    if not keyword:
        return
    for match in _FLAG.finditer(text):
        if secret_named(match.group("key")) and literal_credential(match.group("value")):
            yield Finding(*match.span("value"), SECRET_SETTING)
    for line_match in _LINE.finditer(text):
        line = line_match.group()
        offset = line_match.start()
        # The library's assignment patterns add to ours only where a quoted value sits next
        # to a keyword (comparisons, ``private_key "..."``); skip lines that cannot hold one.
        if _QUOTES.isdisjoint(line) or heuristic.is_indirect_reference(line):
            continue
        for pattern, group_number in _KEYWORD_PATTERNS:
            for match in pattern.finditer(line):
                before = _KEY_AT_END.search(line, 0, match.start() + len(match.group(1)))
                key_start = before.start() if before else match.start()
                key_end = re.match(r"[\w.-]*", line[key_start:])
                key = line[key_start : key_start + (key_end.end() if key_end else 0)]
                start, end = _value_span(line, *match.span(group_number))
                if secret_named(key) and literal_credential(line[start:end]):
                    yield Finding(offset + start, offset + end, SECRET_SETTING)


def _quoted_entropy_findings(text: str) -> Iterator[Finding]:
    for plugin in (_BASE64, _HEX):
        for match in plugin.regex.finditer(text):
            kind = _entropy_kind(match.group(2), hex_too=plugin is _HEX)
            if kind is not None and not heuristic.is_likely_id_string(match.group(2), text, plugin):
                yield Finding(match.start(2), match.end(2), kind)


def _merge(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Drop findings inside another finding; keep one per span, the most specific kind first."""
    generic = {SECRET_SETTING, HIGH_ENTROPY_BASE64, HIGH_ENTROPY_HEX}
    ordered = sorted(set(findings), key=lambda f: (f.start, -f.end, f.kind in generic, f.kind))
    kept: list[Finding] = []
    for finding in ordered:
        if kept and finding.start >= kept[-1].start and finding.end <= kept[-1].end:
            if finding.kind not in generic and kept[-1].kind in generic and finding.end == kept[-1].end:
                kept[-1] = Finding(kept[-1].start, kept[-1].end, finding.kind)
            continue
        kept.append(finding)
    return tuple(kept)


def find_credentials(text: str) -> tuple[Finding, ...]:
    """Return every credential in ``text``: kind and span of the value, in order.

    Results for texts of up to 4,096 characters are cached, since reports pass the same
    strings through many times.
    """
    return _find_cached(text) if len(text) <= _CACHED_LENGTH else _find(text)


@functools.lru_cache(maxsize=8192)
def _find_cached(text: str) -> tuple[Finding, ...]:
    return _find(text)


def _find(text: str) -> tuple[Finding, ...]:
    if not text:
        return ()
    lower = text.lower()
    long_run = _GATE_LONG_RUN.search(text) is not None
    keyword = _GATE_ROOT.search(lower) is not None
    found: list[Finding] = []
    if _GATE_PROVIDER.search(text) is not None or (keyword and _GATE_KEYED_RUN.search(text) is not None):
        found.extend(_provider_findings(text, keyword=keyword))
        found.extend(_authorization_findings(text))
    if (keyword or long_run) and ("=" in text or ":" in text or "-" in text):
        found.extend(_pair_findings(text, keyword=keyword))
    if long_run:
        found.extend(_quoted_entropy_findings(text))
    if ":" in text and ("curl" in text or "--user" in text or "--proxy-user" in text):
        found.extend(_user_flag_findings(text))
    return _merge(found) if found else ()


def credential_kinds(key: str, value: str) -> list[str]:
    """Return the kinds of credential a setting ``key`` holding ``value`` shows (empty: none).

    The value is searched for every shape :func:`find_credentials` knows; a secret-named
    key holding any literal value (:func:`literal_credential`) is a finding too, and so is
    a random-looking value under a key that is not about digests or IDs.
    """
    kinds = list(dict.fromkeys(f.kind for f in find_credentials(value)))
    if kinds:
        return kinds
    text = value.strip()
    if key and secret_named(key):
        return [f"literal value of secret-named {key}"] if literal_credential(text) else []
    if key and (_NO_ENTROPY_NAME.search(key) or is_reference(text)):
        return []
    if "\n" not in text and " " not in text:
        kind = _entropy_kind(text, hex_too=_keyish(key))
        if kind is not None:
            return [kind]
    return []
