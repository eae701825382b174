"""Targets addressed by URI: parsed once, by a pure function, into typed objects."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import ClassVar, Literal

__all__ = [
    "TARGET_FORMS",
    "ComposeTarget",
    "ContainerTarget",
    "EndpointTarget",
    "InClusterTarget",
    "K8sTarget",
    "LocalTarget",
    "ManifestsTarget",
    "PolicyTarget",
    "SshTarget",
    "Target",
    "TargetError",
    "TargetKind",
    "parse_target",
]


class TargetKind(enum.Enum):
    """The kinds of thing a control can be checked against."""

    HOST = "host"
    K8S = "k8s"
    MANIFESTS = "manifests"
    ENDPOINT = "endpoint"
    POLICY = "policy"
    COMPOSE = "compose"


TARGET_FORMS = """\
valid target forms:
  local://                          this machine
  ssh://[USER@]HOST[:PORT]          a host over OpenSSH (keys and options from ~/.ssh/config)
  docker://CONTAINER                a host inside a running container
  k8s://[CONTEXT][/NAMESPACE]       a Kubernetes cluster from kubeconfig (current context if empty)
  k8s-incluster://[NAMESPACE]       the cluster this pod runs in, by its service account
  manifests://PATH                  Kubernetes YAML: a file, a folder or a glob
  compose://PATH[,PATH...]          Docker Compose files: a file, a folder, or files in override order
  tls://HOST:PORT                   a TLS endpoint
  https://HOST[:PORT]               an HTTPS endpoint (port 443 by default)
credentials never go in a target URI: use ssh config, kubeconfig or the environment"""


class TargetError(ValueError):
    """A target URI that cannot be parsed; the message says why and lists the valid forms."""


@dataclass(frozen=True)
class LocalTarget:
    """This machine."""

    uri: str = "local://"
    kind: ClassVar[TargetKind] = TargetKind.HOST

    @property
    def id(self) -> str:
        """The test-ID fragment naming this target."""
        return "local"


@dataclass(frozen=True)
class SshTarget:
    """A host reached over OpenSSH."""

    uri: str
    host: str
    user: str | None = None
    port: int | None = None
    kind: ClassVar[TargetKind] = TargetKind.HOST

    @property
    def id(self) -> str:
        """The test-ID fragment naming this target."""
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port else ""
        return f"ssh:{user}{host}{port}"


@dataclass(frozen=True)
class ContainerTarget:
    """A host inside a running container, reached through the local engine."""

    uri: str
    container: str
    kind: ClassVar[TargetKind] = TargetKind.HOST

    @property
    def id(self) -> str:
        """The test-ID fragment naming this target."""
        return f"docker:{self.container}"


@dataclass(frozen=True)
class K8sTarget:
    """A live Kubernetes cluster reached through kubeconfig."""

    uri: str
    context: str | None = None
    namespace: str | None = None
    kind: ClassVar[TargetKind] = TargetKind.K8S

    @property
    def id(self) -> str:
        """The test-ID fragment naming this target."""
        context = self.context or "current"
        return f"k8s:{context}/{self.namespace}" if self.namespace else f"k8s:{context}"


@dataclass(frozen=True)
class InClusterTarget:
    """The Kubernetes cluster this process runs in, reached by its service account."""

    uri: str
    namespace: str | None = None
    kind: ClassVar[TargetKind] = TargetKind.K8S

    @property
    def context(self) -> None:
        """In-cluster targets have no kubeconfig context."""
        return None

    @property
    def id(self) -> str:
        """The test-ID fragment naming this target."""
        return f"k8s-incluster/{self.namespace}" if self.namespace else "k8s-incluster"


@dataclass(frozen=True)
class ManifestsTarget:
    """Rendered Kubernetes manifests: a file, a folder or a glob."""

    uri: str
    path: str
    kind: ClassVar[TargetKind] = TargetKind.MANIFESTS

    @property
    def id(self) -> str:
        """The test-ID fragment naming this target."""
        return f"manifests:{self.path}"


@dataclass(frozen=True)
class ComposeTarget:
    """Docker Compose files: one file, a project folder, or several files in override order."""

    uri: str
    path: str
    kind: ClassVar[TargetKind] = TargetKind.COMPOSE

    @property
    def files(self) -> tuple[str, ...]:
        """The comma-separated parts of the path, in override order."""
        return tuple(p for p in self.path.split(",") if p)

    @property
    def id(self) -> str:
        """The test-ID fragment naming this target."""
        return f"compose:{self.path}"


@dataclass(frozen=True)
class EndpointTarget:
    """A network endpoint spoken to over TLS."""

    uri: str
    scheme: Literal["tls", "https"]
    host: str
    port: int
    kind: ClassVar[TargetKind] = TargetKind.ENDPOINT

    @property
    def id(self) -> str:
        """The test-ID fragment naming this target."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}:{host}:{self.port}"


@dataclass(frozen=True)
class PolicyTarget:
    """The declared policy file, which evidences the procedural baselines."""

    source: str
    uri: str = "policy://"
    kind: ClassVar[TargetKind] = TargetKind.POLICY

    @property
    def id(self) -> str:
        """The test-ID fragment naming this target."""
        return "policy"


Target = (
    LocalTarget
    | SshTarget
    | ContainerTarget
    | K8sTarget
    | InClusterTarget
    | ManifestsTarget
    | ComposeTarget
    | EndpointTarget
    | PolicyTarget
)

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")
_CONTAINER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _masked(spec: str) -> str:
    """The spec with any password in its user part replaced, so errors never echo it."""
    return re.sub(r"(://[^/@]*?:)[^/@]*@", r"\1***@", spec)


def _fail(spec: str, why: str) -> TargetError:
    return TargetError(f"invalid target {_masked(spec)!r}: {why}\n{TARGET_FORMS}")


def _split(spec: str) -> tuple[str, str]:
    if "://" not in spec:
        raise _fail(spec, "a target is a URI with a scheme, such as local:// or ssh://host")
    scheme, rest = spec.split("://", 1)
    return scheme.lower(), rest


def _check_host(spec: str, host: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not re.fullmatch(r"[0-9A-Fa-f:.]+", host):
            raise _fail(spec, f"{host!r} is not an IPv6 address")
        return host
    if not _HOSTNAME.match(host):
        raise _fail(spec, f"{host!r} is not a valid host name")
    return host


def _port(spec: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise _fail(spec, f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def _host_port(spec: str, netloc: str) -> tuple[str, int | None]:
    match = re.fullmatch(r"(\[[^\]]*\]|[^:]*)(?::(.*))?", netloc)
    if match is None or not match.group(1):
        raise _fail(spec, "the host is missing")
    host = _check_host(spec, match.group(1))
    port = _port(spec, match.group(2)) if match.group(2) is not None else None
    return host, port


def _no_extras(spec: str, rest: str) -> None:
    if "?" in rest or "#" in rest:
        raise _fail(spec, "query strings and fragments are not part of any target form")


def _no_credentials(spec: str, netloc: str) -> None:
    if "@" in netloc:
        raise _fail(spec, "credentials do not belong in a target URI")


def _parse_ssh(spec: str, rest: str) -> SshTarget:
    _no_extras(spec, rest)
    netloc = rest.rstrip("/")
    if "/" in netloc:
        raise _fail(spec, "an ssh target has no path")
    user: str | None = None
    if "@" in netloc:
        user, netloc = netloc.rsplit("@", 1)
        if ":" in user:
            raise _fail(spec, "passwords never go in a target URI; use ssh keys or ssh config")
        if not _USER.match(user):
            raise _fail(spec, f"{user!r} is not a valid user name")
    host, port = _host_port(spec, netloc)
    return SshTarget(uri=spec, host=host, user=user, port=port)


def _parse_k8s(spec: str, rest: str) -> K8sTarget:
    _no_extras(spec, rest)
    _no_credentials(spec, rest)
    context, _, namespace = rest.partition("/")
    if namespace.endswith("/"):
        namespace = namespace[:-1]
    if "/" in namespace:
        raise _fail(spec, "a k8s target is k8s://[CONTEXT][/NAMESPACE]")
    if namespace and not _DNS_LABEL.match(namespace):
        raise _fail(spec, f"{namespace!r} is not a valid namespace name")
    if context and not re.fullmatch(r"[^\s/]+", context):
        raise _fail(spec, f"{context!r} is not a valid kubeconfig context name")
    return K8sTarget(uri=spec, context=context or None, namespace=namespace or None)


def _parse_incluster(spec: str, rest: str) -> InClusterTarget:
    _no_extras(spec, rest)
    namespace = rest.strip("/")
    if namespace and not _DNS_LABEL.match(namespace):
        raise _fail(spec, f"{namespace!r} is not a valid namespace name")
    return InClusterTarget(uri=spec, namespace=namespace or None)


def _parse_endpoint(spec: str, scheme: Literal["tls", "https"], rest: str) -> EndpointTarget:
    _no_extras(spec, rest)
    netloc, _, path = rest.partition("/")
    _no_credentials(spec, netloc)
    if path:
        raise _fail(spec, f"a {scheme} target names a host and port, not a path")
    host, port = _host_port(spec, netloc)
    if port is None:
        if scheme == "tls":
            raise _fail(spec, "a tls target needs a port: tls://HOST:PORT")
        port = 443
    return EndpointTarget(uri=spec, scheme=scheme, host=host, port=port)


def parse_target(spec: str) -> Target:
    """Parse a target URI into its typed target object.

    Raises :class:`TargetError` naming the problem and listing the valid forms.
    """
    spec = spec.strip()
    scheme, rest = _split(spec)
    if scheme == "local":
        if rest.strip("/") not in ("", "localhost"):
            raise _fail(spec, "the local target takes no host or path: use local://")
        return LocalTarget(uri=spec)
    if scheme == "ssh":
        return _parse_ssh(spec, rest)
    if scheme == "docker":
        _no_extras(spec, rest)
        name = rest.strip("/")
        if not _CONTAINER.match(name):
            raise _fail(spec, "docker:// needs a container name or ID, such as docker://agent")
        return ContainerTarget(uri=spec, container=name)
    if scheme == "k8s":
        return _parse_k8s(spec, rest)
    if scheme == "k8s-incluster":
        return _parse_incluster(spec, rest)
    if scheme == "manifests":
        _no_extras(spec, rest)
        if not rest:
            raise _fail(spec, "manifests:// needs a file, folder or glob, such as manifests://rendered/")
        return ManifestsTarget(uri=spec, path=rest)
    if scheme == "compose":
        _no_extras(spec, rest)
        if not rest or any(not part.strip() for part in rest.split(",")):
            raise _fail(spec, "compose:// needs a compose file or folder, such as compose://deploy/ or "
                        "compose://docker-compose.yaml,prod.yaml")
        return ComposeTarget(uri=spec, path=rest)
    if scheme in ("tls", "https"):
        return _parse_endpoint(spec, "tls" if scheme == "tls" else "https", rest)
    raise _fail(spec, f"unknown scheme {scheme!r}")

