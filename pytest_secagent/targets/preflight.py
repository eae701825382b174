"""Tell at start-up whether a target can be used at all, so that a mistake is one clear error.

A target that cannot work whatever the network does (no kubeconfig, a context that is not
in it, a manifests path with no YAML, in-cluster credentials outside a pod) would otherwise
make every one of its controls error with the same reason. :func:`target_problem` names the
problem and the fix instead; the plugin turns it into one usage error (exit status 4). Whether
a valid target can be *reached* is only known at run time: such failures still error each
control that needed it (fail closed).

Nothing here opens a connection: only local files and the environment are read.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import yaml

from pytest_secagent.compose.loader import COMPOSE_FILE_NAMES
from pytest_secagent.targets import ComposeTarget, InClusterTarget, K8sTarget, ManifestsTarget, Target

__all__ = ["IN_CLUSTER_TOKEN", "MANIFEST_SUFFIXES", "kubeconfig_paths", "target_problem"]

#: Where Kubernetes mounts a pod's service-account token.
IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
#: The files a manifests target reads.
MANIFEST_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
_GLOB_CHARACTERS = frozenset("*?[")


def kubeconfig_paths(environ: dict[str, str] | None = None) -> list[Path]:
    """The kubeconfig files kubectl would read: ``$KUBECONFIG`` (a ``:`` list), else ``~/.kube/config``."""
    env = os.environ if environ is None else environ
    listed = [Path(p).expanduser() for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    return listed or [Path("~/.kube/config").expanduser()]


def _contexts(paths: list[Path]) -> tuple[list[str], str | None, str | None]:
    """Context names and the current context over ``paths``, or a problem naming a file."""
    names: list[str] = []
    current: str | None = None
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return [], None, f"kubeconfig {path} cannot be read: {reason}"
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            return [], None, f"kubeconfig {path} is not valid YAML: {getattr(exc, 'problem', None) or exc}"
        if document is None:
            continue
        if not isinstance(document, dict):
            return [], None, f"kubeconfig {path} is not a kubeconfig (expected a mapping)"
        for entry in document.get("contexts") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                names.append(entry["name"])
        if current is None and isinstance(document.get("current-context"), str):
            current = document["current-context"] or None
    return names, current, None


def _k8s_problem(target: K8sTarget, environ: dict[str, str] | None) -> str | None:
    paths = kubeconfig_paths(environ)
    existing = [p for p in paths if p.exists()]
    if not existing:
        where = " and ".join(str(p) for p in paths)
        return (
            f"no kubeconfig: {where} does not exist; set KUBECONFIG to your cluster's kubeconfig, or run "
            "inside the cluster with --secagent-target k8s-incluster://"
        )
    names, current, problem = _contexts(existing)
    if problem is not None:
        return problem
    files = ", ".join(str(p) for p in existing)
    wanted = target.context or current
    if wanted is None:
        return (
            f"{files} sets no current-context; name one in the target (k8s://CONTEXT/NAMESPACE); "
            f"contexts: {', '.join(names) or 'none'}"
        )
    if wanted not in names:
        return (
            f"context {wanted!r} is not in {files}; contexts: {', '.join(names) or 'none'} "
            "(kubectl config get-contexts lists them)"
        )
    return None


def _manifests_problem(target: ManifestsTarget, base: Path) -> str | None:
    spec = target.path
    if _GLOB_CHARACTERS & set(spec):
        pattern = spec if Path(spec).is_absolute() else str(base / spec)
        paths = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
        if not paths:
            return f"no file matches {spec!r}; check the pattern (relative to {base})"
    else:
        path = Path(spec) if Path(spec).is_absolute() else base / spec
        if not path.exists():
            return f"{path} does not exist; give a rendered manifest file or folder (helm template > FILE)"
        paths = [path]
    for path in paths:
        if path.is_file():
            return None
        if path.is_dir() and any(
            child.is_file() and child.suffix.lower() in MANIFEST_SUFFIXES for child in path.rglob("*")
        ):
            return None
    return f"no manifest file (*.yaml, *.yml, *.json) in {spec!r}; render the chart first (helm template)"


def _in_cluster_problem(environ: dict[str, str] | None) -> str | None:
    env = os.environ if environ is None else environ
    if env.get("KUBERNETES_SERVICE_HOST") and IN_CLUSTER_TOKEN.exists():
        return None
    return (
        "not running inside a Kubernetes pod (no KUBERNETES_SERVICE_HOST or service-account token at "
        f"{IN_CLUSTER_TOKEN}); from outside the cluster use --secagent-target k8s://CONTEXT/NAMESPACE"
    )


def _compose_problem(target: ComposeTarget, base: Path) -> str | None:
    """Whether the files exist; what they say is judged per control (an error there is theirs)."""
    for part in target.files:
        path = Path(part) if Path(part).is_absolute() else base / part
        if path.is_dir():
            if len(target.files) > 1:
                return f"{path} is a folder; list compose files, or give the folder alone"
            if not any((path / name).is_file() for name in COMPOSE_FILE_NAMES):
                names = ", ".join(COMPOSE_FILE_NAMES)
                return f"no {names} in {path}; give the folder the agent is installed from"
        elif not path.is_file():
            return f"{path} does not exist; give the compose file or the folder holding it"
    return None


def target_problem(target: Target, *, base: Path, environ: dict[str, str] | None = None) -> str | None:
    """Why ``target`` cannot be used at all, with the fix, or ``None`` when it may be tried.

    ``base`` is the folder relative paths are read from (the invocation directory).
    """
    if isinstance(target, K8sTarget):
        return _k8s_problem(target, environ)
    if isinstance(target, InClusterTarget):
        return _in_cluster_problem(environ)
    if isinstance(target, ManifestsTarget):
        return _manifests_problem(target, base)
    if isinstance(target, ComposeTarget):
        return _compose_problem(target, base)
    return None
