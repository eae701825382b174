"""Load Compose files the way ``docker compose`` does, following the Compose Specification.

Files are read in override order (the first is the base), each interpolated with the
variables of the ``.env`` file beside the first file and of the environment (the
environment wins), ``include`` and ``extends`` resolved, then merged by the specification's
rules (:mod:`pytest_secagent.compose.merge`). Every error is a :class:`ComposeError` naming
the file, the line and the key, and never a value: values may be credentials.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_secagent.compose.interpolation import InterpolationError, Interpolator, read_env_file
from pytest_secagent.compose.merge import as_mapping, merge_service, strip_tags
from pytest_secagent.compose.yamlfile import LineMap, Override, YamlFileError, load_yaml_file

__all__ = [
    "COMPOSE_FILE_NAMES",
    "SERVICE_KEYS",
    "TOP_LEVEL_KEYS",
    "ComposeError",
    "ComposeProject",
    "ComposeService",
    "compose_files",
    "load_project",
]

#: The file names a project folder is searched for, in Compose's order.
COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
TOP_LEVEL_KEYS = frozenset({
    "version", "name", "include", "services", "networks", "volumes", "secrets", "configs", "models",
})
#: Every service attribute of the Compose Specification.
SERVICE_KEYS = frozenset({
    "annotations", "attach", "blkio_config", "build", "cap_add", "cap_drop", "cgroup", "cgroup_parent",
    "command", "configs", "container_name", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota",
    "cpu_rt_period", "cpu_rt_runtime", "cpu_shares", "cpus", "cpuset", "credential_spec", "depends_on",
    "deploy", "develop", "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname",
    "driver_opts", "entrypoint", "env_file", "environment", "expose", "extends", "external_links",
    "extra_hosts", "gpus", "group_add", "healthcheck", "hostname", "image", "init", "ipc", "isolation",
    "label_file", "labels", "links", "logging", "mac_address", "mem_limit", "mem_reservation",
    "mem_swappiness", "memswap_limit", "models", "network_mode", "networks", "oom_kill_disable",
    "oom_score_adj", "pid", "pids_limit", "platform", "ports", "post_start", "pre_stop", "privileged",
    "profiles", "provider", "pull_policy", "read_only", "restart", "runtime", "scale", "secrets",
    "security_opt", "shm_size", "stdin_open", "stop_grace_period", "stop_signal", "storage_opt",
    "sysctls", "tmpfs", "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts", "volumes",
    "volumes_from", "working_dir",
})
#: The most values one project may hold once anchors are expanded.
MAX_VALUES = 200_000
_PROJECT_NAME = re.compile(r"[^a-z0-9_-]")


class ComposeError(ValueError):
    """Files that are not valid Compose; the message names the file, line and key."""


@dataclass(frozen=True)
class ComposeService:
    """One service after loading: its merged definition and where each key was written."""

    name: str
    config: Mapping[str, Any]
    project_dir: Path
    origins: Mapping[str, str]
    environment: Mapping[str, str | None]

    def where(self, key: str) -> str:
        """``FILE:LINE`` of ``key`` in the file that last set it (else of the service)."""
        return self.origins.get(key) or self.origins.get("", "")


@dataclass(frozen=True)
class ComposeProject:
    """The services the files declare, in their final form."""

    name: str
    files: tuple[Path, ...]
    project_dir: Path
    services: Mapping[str, ComposeService]
    inactive: tuple[str, ...] = ()
    unset_variables: tuple[str, ...] = ()
    env_files: tuple[Path, ...] = field(default_factory=tuple)


def compose_files(spec: str, base: Path) -> list[Path]:
    """The files a ``compose://`` path names, in override order.

    A comma list names files; a folder means its ``compose.yaml`` (or ``compose.yml``,
    ``docker-compose.yaml``, ``docker-compose.yml``) and the matching ``*.override.yaml``.
    """
    paths = [Path(p) if Path(p).is_absolute() else base / p for p in spec.split(",") if p.strip()]
    if not paths:
        raise ComposeError("no compose file named")
    if len(paths) == 1 and paths[0].is_dir():
        folder = paths[0]
        for name in COMPOSE_FILE_NAMES:
            main = folder / name
            if main.is_file():
                found = [main]
                stem = name.rsplit(".", 1)[0]
                for suffix in (".yaml", ".yml"):
                    override = folder / f"{stem}.override{suffix}"
                    if override.is_file():
                        found.append(override)
                        break
                return found
        raise ComposeError(f"{folder}: no {', '.join(COMPOSE_FILE_NAMES)} in this folder")
    for path in paths:
        if not path.is_file():
            raise ComposeError(f"{path}: no such compose file")
    return paths


class _Budget:
    def __init__(self) -> None:
        self.left = MAX_VALUES

    def spend(self, where: str) -> None:
        self.left -= 1
        if self.left < 0:
            raise ComposeError(f"{where}: more than {MAX_VALUES} values once anchors are expanded")


def _interpolate(
    value: Any, interpolator: Interpolator, *, file: Path, path: str, line: int, budget: _Budget
) -> Any:
    budget.spend(f"{file}:{line}")
    if isinstance(value, str):
        try:
            return interpolator.interpolate(value)
        except InterpolationError as exc:
            raise ComposeError(f"{file}:{line}: {path}: {exc}") from None
    if isinstance(value, Mapping):
        result = LineMap()
        result.line = value.line if isinstance(value, LineMap) else line
        for key, item in value.items():
            key_line = value.line_of(key) if isinstance(value, LineMap) else line
            result[key] = _interpolate(
                item, interpolator, file=file, path=f"{path}.{key}" if path else key, line=key_line,
                budget=budget,
            )
            result.lines[key] = key_line
        return result
    if isinstance(value, list):
        return [
            _interpolate(item, interpolator, file=file, path=f"{path}[{i}]", line=line, budget=budget)
            for i, item in enumerate(value)
        ]
    if isinstance(value, Override):
        inner = _interpolate(value.value, interpolator, file=file, path=path, line=line, budget=budget)
        return Override(inner)
    return value


@dataclass
class _Context:
    variables: Mapping[str, str]
    interpolator: Interpolator
    budget: _Budget = field(default_factory=_Budget)
    loaded: dict[Path, LineMap] = field(default_factory=dict)
    include_chain: tuple[Path, ...] = ()


def _read(path: Path, context: _Context) -> LineMap:
    """One file, parsed, checked at the top level and interpolated (cached per file)."""
    path = path.resolve()
    if path in context.loaded:
        return context.loaded[path]
    try:
        document = load_yaml_file(path)
    except YamlFileError as exc:
        raise ComposeError(str(exc)) from None
    if document is None:
        document = LineMap()
    if not isinstance(document, LineMap):
        raise ComposeError(f"{path}:1: a compose file is a mapping (services:, volumes:...)")
    for key in document:
        if key not in TOP_LEVEL_KEYS and not key.startswith("x-"):
            raise ComposeError(
                f"{path}:{document.line_of(key)}: {key}: not a top-level Compose key; valid keys: "
                f"{', '.join(sorted(TOP_LEVEL_KEYS))} and x-* extensions"
            )
    interpolated: LineMap = _interpolate(
        document, context.interpolator, file=path, path="", line=1, budget=context.budget
    )
    services = interpolated.get("services")
    if services is None:
        interpolated["services"] = LineMap()
    elif not isinstance(services, LineMap):
        raise ComposeError(f"{path}:{interpolated.line_of('services')}: services: must be a mapping")
    for name, service in interpolated["services"].items():
        where = f"{path}:{interpolated['services'].line_of(name)}"
        if service is None:
            interpolated["services"][name] = service = LineMap()
            service.line = interpolated["services"].line_of(name)
        if not isinstance(service, LineMap):
            raise ComposeError(f"{where}: services.{name}: a service is a mapping")
        for key in service:
            if key not in SERVICE_KEYS and not key.startswith("x-"):
                raise ComposeError(
                    f"{path}:{service.line_of(key)}: services.{name}.{key}: not a Compose service "
                    "attribute (see the Compose Specification's services reference)"
                )
    context.loaded[path] = interpolated
    return interpolated


@dataclass
class _Defined:
    """A service definition with the file and line of each key."""

    config: LineMap
    file: Path
    origins: dict[str, str]


def _defined(config: LineMap, file: Path) -> _Defined:
    origins = {key: f"{file}:{config.line_of(key)}" for key in config}
    origins[""] = f"{file}:{config.line}"
    return _Defined(config, file, origins)


def _extends_target(
    name: str, defined: _Defined, services: Mapping[str, LineMap], context: _Context
) -> tuple[str, Path, Mapping[str, LineMap]]:
    spec = defined.config["extends"]
    where = defined.origins["extends"]
    if isinstance(spec, str):
        return spec, defined.file, services
    if not isinstance(spec, Mapping) or not isinstance(spec.get("service"), str):
        raise ComposeError(f"{where}: services.{name}.extends: needs service: NAME (and optionally file:)")
    other = spec.get("file")
    if other is None:
        return spec["service"], defined.file, services
    file = (defined.file.parent / str(other)).resolve()
    if not file.is_file():
        raise ComposeError(f"{where}: services.{name}.extends.file: {file} does not exist")
    return spec["service"], file, _read(file, context)["services"]


def _resolve_extends(
    name: str,
    file: Path,
    services: Mapping[str, LineMap],
    context: _Context,
    chain: tuple[tuple[Path, str], ...] = (),
) -> _Defined:
    if (file, name) in chain:
        cycle = " -> ".join(f"{n} ({f.name})" for f, n in (*chain, (file, name)))
        origins = _defined(services[name], file).origins
        raise ComposeError(f"{origins.get('extends', origins[''])}: services.{name}.extends: cycle: {cycle}")
    defined = _defined(services[name], file)
    if "extends" not in defined.config:
        return defined
    target, target_file, target_services = _extends_target(name, defined, services, context)
    if target not in target_services:
        raise ComposeError(
            f"{defined.origins['extends']}: services.{name}.extends: no service {target!r} in {target_file}"
        )
    base = _resolve_extends(target, target_file, target_services, context, (*chain, (file, name)))
    own = LineMap({k: v for k, v in defined.config.items() if k != "extends"})
    own.line, own.lines = defined.config.line, dict(defined.config.lines)
    merged = merge_service(base.config, own)
    origins = dict(base.origins)
    origins.update({k: v for k, v in defined.origins.items() if k != "extends"})
    return _Defined(merged, file, origins)


def _include_paths(entry: object, where: str) -> list[str]:
    if isinstance(entry, str):
        return [entry]
    if isinstance(entry, Mapping):
        paths = entry.get("path")
        if isinstance(paths, str):
            return [paths]
        if isinstance(paths, list) and all(isinstance(p, str) for p in paths):
            return list(paths)
    raise ComposeError(f"{where}: include: each entry is a path or path: [FILES]")


def _file_services(file: Path, context: _Context) -> dict[str, _Defined]:
    """A file's own services (extends resolved) and those of the files it includes."""
    document = _read(file, context)
    result: dict[str, _Defined] = {}
    include = document.get("include") or []
    if not isinstance(include, list):
        raise ComposeError(f"{file}:{document.line_of('include')}: include: must be a list")
    for entry in include:
        where = f"{file}:{document.line_of('include')}"
        paths = [(file.parent / p).resolve() for p in _include_paths(entry, where)]
        for included in paths:
            if included in context.include_chain:
                raise ComposeError(f"{where}: include: {included} includes itself")
            if not included.is_file():
                raise ComposeError(f"{where}: include: {included} does not exist")
        nested = _Context(context.variables, context.interpolator, context.budget, context.loaded,
                          (*context.include_chain, file.resolve()))
        for name, defined in _merge_files(paths, nested).items():
            if name in result:
                raise ComposeError(f"{where}: include: service {name!r} is defined twice")
            result[name] = defined
    for name in document["services"]:
        if name in result:
            raise ComposeError(
                f"{file}:{document['services'].line_of(name)}: services.{name}: also defined by an "
                "included file"
            )
        result[name] = _resolve_extends(name, file.resolve(), document["services"], context)
    return result


def _merge_files(files: Sequence[Path], context: _Context) -> dict[str, _Defined]:
    merged: dict[str, _Defined] = {}
    for file in files:
        for name, defined in _file_services(file, context).items():
            if name not in merged:
                merged[name] = _Defined(strip_tags(defined.config), defined.file, defined.origins)
                continue
            base = merged[name]
            origins = dict(base.origins)
            origins.update({k: v for k, v in defined.origins.items() if k})
            merged[name] = _Defined(merge_service(base.config, defined.config), base.file, origins)
    return merged


def _project_name(documents: Sequence[LineMap], variables: Mapping[str, str], folder: Path) -> str:
    name = ""
    for document in documents:
        if isinstance(document.get("name"), str) and document["name"]:
            name = document["name"]
    name = variables.get("COMPOSE_PROJECT_NAME") or name or folder.name
    return _PROJECT_NAME.sub("", name.lower())


def _service_environment(
    name: str, defined: _Defined, project_dir: Path, variables: Mapping[str, str]
) -> tuple[dict[str, str | None], list[Path]]:
    """``env_file`` then ``environment``: what the container's environment will hold."""
    config = defined.config
    environment: dict[str, str | None] = {}
    files: list[Path] = []
    entries = config.get("env_file")
    if isinstance(entries, (str, Mapping)):
        entries = [entries]
    if entries is not None and not isinstance(entries, list):
        raise ComposeError(f"{defined.origins.get('env_file')}: services.{name}.env_file: a path or a list")
    for entry in entries or []:
        required = True
        if isinstance(entry, Mapping):
            required = entry.get("required", True) is not False
            entry = entry.get("path")
        if not isinstance(entry, str):
            raise ComposeError(f"{defined.origins.get('env_file')}: services.{name}.env_file: a path")
        path = (project_dir / entry).resolve()
        if not path.is_file():
            if required:
                raise ComposeError(
                    f"{defined.origins.get('env_file')}: services.{name}.env_file: {path} does not exist"
                )
            continue
        try:
            environment.update(read_env_file(path, variables))
        except InterpolationError as exc:
            raise ComposeError(f"services.{name}.env_file: {exc}") from None
        files.append(path)
    declared = config.get("environment")
    if declared is not None and not isinstance(declared, (list, Mapping)):
        raise ComposeError(
            f"{defined.origins.get('environment')}: services.{name}.environment: a list or a mapping"
        )
    for key, value in as_mapping(declared or {}).items():
        if value is None:
            # KEY alone takes its value from the environment Compose runs in (unset stays unset).
            environment[key] = variables.get(key)
        else:
            environment[key] = value if isinstance(value, str) else _scalar_text(value)
    return environment, files


def _scalar_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _active(config: Mapping[str, Any], profiles: Sequence[str] | None) -> bool:
    declared = config.get("profiles") or []
    if profiles is None or not declared:
        return True
    return "*" in profiles or any(p in profiles for p in declared)


def load_project(
    files: Sequence[Path],
    environ: Mapping[str, str] | None = None,
    *,
    profiles: Sequence[str] | None = None,
) -> ComposeProject:
    """The project the files declare, as ``docker compose config`` would show it.

    ``environ`` defaults to the process environment; the ``.env`` file beside the first
    file adds to it (the environment wins). ``profiles`` picks the services whose
    ``profiles`` name one of them (and those without profiles); by default, and unless
    ``COMPOSE_PROFILES`` says otherwise, every service counts.
    """
    if not files:
        raise ComposeError("no compose file named")
    env = dict(os.environ if environ is None else environ)
    project_dir = files[0].resolve().parent
    dotenv = project_dir / ".env"
    variables: dict[str, str] = {}
    env_files: list[Path] = []
    if dotenv.is_file():
        try:
            variables.update(read_env_file(dotenv, env))
        except InterpolationError as exc:
            raise ComposeError(str(exc)) from None
        env_files.append(dotenv)
    variables.update(env)
    if profiles is None and variables.get("COMPOSE_PROFILES"):
        profiles = [p.strip() for p in variables["COMPOSE_PROFILES"].split(",") if p.strip()]
    interpolator = Interpolator(variables)
    context = _Context(variables, interpolator)
    merged = _merge_files([f.resolve() for f in files], context)
    documents = [context.loaded[f.resolve()] for f in files]
    services: dict[str, ComposeService] = {}
    inactive: list[str] = []
    for name, defined in merged.items():
        if not _active(defined.config, profiles):
            inactive.append(name)
            continue
        environment, used = _service_environment(name, defined, project_dir, variables)
        env_files.extend(used)
        services[name] = ComposeService(name, defined.config, project_dir, defined.origins, environment)
    return ComposeProject(
        name=_project_name(documents, variables, project_dir),
        files=tuple(f.resolve() for f in files),
        project_dir=project_dir,
        services=services,
        inactive=tuple(inactive),
        unset_variables=tuple(sorted(interpolator.unset)),
        env_files=tuple(dict.fromkeys(env_files)),
    )
