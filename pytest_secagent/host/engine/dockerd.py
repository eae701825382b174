"""The dockerd processes on a host: their exact command lines and the defaults they run with.

Command lines are read from ``/proc/PID/cmdline`` (NUL-separated, never cut to a terminal's
width, spaces kept), not from ``ps -o args``, whose output ``COLUMNS`` truncates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_secagent.host.base import HostConnection
from pytest_secagent.outcomes import EvidenceUnavailable

__all__ = [
    "DEFAULT_DAEMON_JSON",
    "DEFAULT_DATA_ROOT",
    "DEFAULT_DOCKER_HOST",
    "DockerdProcess",
    "as_bool",
    "list_dockerd",
    "parse_dockerd_argv",
]

DEFAULT_DAEMON_JSON = "/etc/docker/daemon.json"
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_DATA_ROOT = "/var/lib/docker"

# dockerd flag -> daemon.json key, where they differ.
_FLAG_KEYS = {
    "H": "hosts",
    "host": "hosts",
    "insecure-registry": "insecure-registries",
    "registry-mirror": "registry-mirrors",
    "G": "group",
    "b": "bridge",
    "D": "debug",
    "g": "data-root",
    "graph": "data-root",
    "p": "pidfile",
    "l": "log-level",
    "label": "labels",
}
_LIST_KEYS = frozenset({"hosts", "insecure-registries", "registry-mirrors", "labels"})
# Boolean flags never take the next argument as their value (``--icc=false`` sets false).
_BOOL_FLAGS = frozenset({
    "icc", "no-new-privileges", "live-restore", "userland-proxy", "tls", "tlsverify",
    "selinux-enabled", "iptables", "ip6tables", "ip-forward", "ip-masq", "ipv6", "experimental",
    "debug", "D", "rootless", "init", "raw-logs", "validate", "help", "version", "v",
})
_TRUE = frozenset({"1", "t", "true"})
_FALSE = frozenset({"0", "f", "false"})


def as_bool(value: object, default: bool) -> bool:
    """A daemon option's boolean value (``true``/``1``/``t`` and their opposites), else ``default``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
    return default


def parse_dockerd_argv(argv: Sequence[str]) -> dict[str, Any]:
    """Dockerd's options from its command line, keyed like daemon.json.

    dockerd takes no positional arguments, so a word after an option that is not itself an
    option is that option's value; boolean options only take a value with ``=``.
    """
    options: dict[str, Any] = {}
    words = list(argv[1:])
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not word.startswith("-") or word in ("-", "--"):
            continue
        name, has_value, value = word.lstrip("-").partition("=")
        if not has_value:
            if name in _BOOL_FLAGS:
                value = "true"
            elif index < len(words) and not words[index].startswith("-"):
                value = words[index]
                index += 1
            else:
                value = "true"
        key = _FLAG_KEYS.get(name, name)
        if key in _LIST_KEYS:
            options.setdefault(key, []).append(value)
        else:
            options[key] = value
    return options


@dataclass(frozen=True)
class DockerdProcess:
    """One dockerd process on the host: its command line, its user and (rootless) environment.

    A rootless dockerd (run by a user other than root, or with ``--rootless``) takes its
    default socket, data root and daemon.json from ``XDG_*``/``HOME`` in its environment;
    ``environment`` is ``None`` when that could not be read, and those defaults are then
    unknown (``None``) rather than guessed.
    """

    pid: int
    argv: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)
    uid: int = 0
    environment: Mapping[str, str] | None = None

    @property
    def rootless(self) -> bool:
        """Whether this dockerd runs in rootless mode."""
        if "rootless" in self.options:
            return as_bool(self.options["rootless"], False)
        if self.uid != 0:
            return True
        return bool((self.environment or {}).get("ROOTLESSKIT_STATE_DIR"))

    def _user_dir(self, variable: str, under_home: str) -> str | None:
        env = self.environment or {}
        if env.get(variable, "").startswith("/"):
            return env[variable].rstrip("/")
        home = env.get("HOME", "")
        return f"{home.rstrip('/')}/{under_home}" if home.startswith("/") else None

    @property
    def config_file(self) -> str | None:
        """The daemon.json this dockerd reads (``None``: a rootless default that is unknown)."""
        value = self.options.get("config-file")
        if isinstance(value, str):
            return value
        if not self.rootless:
            return DEFAULT_DAEMON_JSON
        base = self._user_dir("XDG_CONFIG_HOME", ".config")
        return f"{base}/docker/daemon.json" if base else None

    @property
    def default_host(self) -> str | None:
        """The socket dockerd listens on when neither ``-H`` nor daemon.json names one."""
        if not self.rootless:
            return DEFAULT_DOCKER_HOST
        runtime = (self.environment or {}).get("XDG_RUNTIME_DIR", "")
        return f"unix://{runtime.rstrip('/')}/docker.sock" if runtime.startswith("/") else None

    @property
    def default_data_root(self) -> str | None:
        """The data root dockerd uses when neither ``--data-root`` nor daemon.json names one."""
        if not self.rootless:
            return DEFAULT_DATA_ROOT
        base = self._user_dir("XDG_DATA_HOME", ".local/share")
        return f"{base}/docker" if base else None


def _nul_fields(text: str) -> list[str]:
    fields = text.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def _environment(host: HostConnection, pid: int) -> dict[str, str] | None:
    try:
        text = host.read_text(f"/proc/{pid}/environ")
    except EvidenceUnavailable:
        return None  # another user's process: its rootless defaults stay unknown
    if text is None:
        return None
    pairs = (entry.partition("=") for entry in _nul_fields(text))
    return {name: value for name, sep, value in pairs if sep}


def list_dockerd(host: HostConnection, timeout: float | None) -> list[DockerdProcess]:
    """Every dockerd process on the host, with its exact command line.

    ``ps -o pid=,uid= -C dockerd`` lists them; each command line is read from
    ``/proc/PID/cmdline``. A process that ended in between is left out; one whose command
    line cannot be read raises ``EvidenceUnavailable``, since it could be the engine.
    """
    result = host.run(["ps", "-o", "pid=,uid=", "-C", "dockerd"], timeout=timeout)
    if not result.succeeded and (result.stdout.strip() or result.stderr.strip()):
        # procps exits 1 with no output when nothing matches; anything else is a failure.
        reason = result.stderr.strip() or f"exit status {result.exit_status}"
        raise EvidenceUnavailable(f"{host.target_id}: cannot list dockerd processes: {reason}")
    found: list[DockerdProcess] = []
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) != 2 or not all(w.isdigit() for w in words):
            continue
        pid, uid = int(words[0]), int(words[1])
        try:
            cmdline = host.read_text(f"/proc/{pid}/cmdline")
        except EvidenceUnavailable as exc:
            raise EvidenceUnavailable(
                f"{host.target_id}: cannot read the command line of dockerd (pid {pid}): {exc}"
            ) from None
        argv = tuple(_nul_fields(cmdline or ""))
        if not argv:  # exited, or a zombie
            continue
        options = parse_dockerd_argv(argv)
        process = DockerdProcess(pid, argv, options, uid)
        if process.rootless:
            process = DockerdProcess(pid, argv, options, uid, _environment(host, pid))
        found.append(process)
    return found
