"""The hardened agent as a Compose service, and one variant per way of getting it wrong.

Each variant changes exactly one thing in the hardened service and must flip exactly one
control; the same files are brought up on a real dockerd to compare verdicts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PINNED_DEFAULT = "docker.io/atlanhq/saeng-agent@sha256:" + "ab" * 32
"""The image when ``AGENT_IMAGE`` is unset (the agreement tests set the test daemon's digest)."""
TAGGED = "docker.io/atlanhq/saeng-agent:1.0"

HARDENED: dict[str, Any] = {
    "image": f"${{AGENT_IMAGE:-{PINNED_DEFAULT}}}",
    "user": "1000:1000",
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "mem_limit": "64m",
    "cpus": 0.5,
    "network_mode": "none",
    "tmpfs": ["/tmp"],
    "ports": ["127.0.0.1:8082:80"],
    "command": ["/bin/sleep", "3600"],
    "labels": {"com.example.saeng.role": "agent"},
    "healthcheck": {"test": ["CMD", "/bin/true"], "interval": "1s"},
}
"""The hardened agent: non-root, read-only, no capabilities, no escalation, limits, loopback only."""

Edit = Callable[[dict[str, Any], Path], None]


def _set(key: str, value: object) -> Edit:
    def edit(service: dict[str, Any], _folder: Path) -> None:
        service[key] = value
    return edit


def _drop(key: str) -> Edit:
    def edit(service: dict[str, Any], _folder: Path) -> None:
        service.pop(key)
    return edit


def _append(key: str, value: object) -> Edit:
    def edit(service: dict[str, Any], _folder: Path) -> None:
        service[key] = [*service.get(key, []), value]
    return edit


def _host_network(service: dict[str, Any], _folder: Path) -> None:
    service["network_mode"] = "host"
    service.pop("ports")  # the engine refuses published ports on the host network


def _writable_bind(service: dict[str, Any], folder: Path) -> None:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    service["volumes"] = ["./data:/data"]


@dataclass(frozen=True)
class Variant:
    """One weakening of the hardened service and the one control it must fail."""

    name: str
    control: str
    edit: Edit
    live: bool = True  # also brought up on the real engine


def variants(socket: str) -> list[Variant]:
    """Every variant; ``socket`` is the engine socket a socket-mount variant mounts."""
    return [
        Variant("root-user", "SA-RUNTIME-006", _set("user", "0")),
        Variant("image-default-user", "SA-RUNTIME-006", _drop("user")),
        Variant("privileged", "SA-RUNTIME-007", _set("privileged", True)),
        Variant("cap-sys-admin", "SA-RUNTIME-007", _set("cap_add", ["SYS_ADMIN"])),
        Variant("caps-kept", "SA-RUNTIME-007", _drop("cap_drop")),
        Variant("escalation-allowed", "SA-RUNTIME-007", _drop("security_opt")),
        Variant("seccomp-unconfined", "SA-RUNTIME-007", _append("security_opt", "seccomp:unconfined")),
        Variant("writable-root", "SA-RUNTIME-008", _drop("read_only")),
        Variant("writable-bind", "SA-RUNTIME-008", _writable_bind),
        Variant("writable-bind-long", "SA-RUNTIME-008", _set("volumes", [
            {"type": "bind", "source": "/var/tmp", "target": "/data"}
        ])),
        Variant("host-network", "SA-RUNTIME-009", _host_network),
        Variant("host-pid", "SA-RUNTIME-009", _set("pid", "host")),
        Variant("host-ipc", "SA-RUNTIME-009", _set("ipc", "host")),
        Variant("etc-mounted", "SA-RUNTIME-009", _set("volumes", ["/etc:/host-etc:ro"])),
        Variant("no-memory-limit", "SA-RUNTIME-010", _drop("mem_limit")),
        Variant("no-cpu-limit", "SA-RUNTIME-010", _drop("cpus")),
        Variant("tag-not-digest", "SA-RUNTIME-011", _set("image", TAGGED)),
        Variant("latest", "SA-RUNTIME-011", _set("image", "docker.io/atlanhq/saeng-agent:latest")),
        Variant("foreign-registry", "SA-RUNTIME-011", _set("image", "registry.saeng.test/other/agent:1.0")),
        Variant("socket-mounted", "SA-RUNTIME-004", _set("volumes", [f"{socket}:/var/run/docker.sock:ro"])),
        Variant("published-everywhere", "SA-NET-002", _append("ports", "8080:80")),
        Variant("published-on-all-v4", "SA-NET-002", _append("ports", "0.0.0.0:8081:80")),
        Variant("published-long-syntax", "SA-NET-002", _append("ports", {"target": 80, "published": "8083"})),
        Variant("no-healthcheck", "SA-LOG-005", _drop("healthcheck"), live=False),
        Variant("healthcheck-disabled", "SA-LOG-005", _set("healthcheck", {"disable": True}), live=False),
    ]


VARIANT_NAMES = [v.name for v in variants("/run/docker.sock")]


def service(edit: Edit | None, folder: Path, container_name: str) -> dict[str, Any]:
    """The hardened service, changed by ``edit``, with its container name."""
    definition = copy.deepcopy(HARDENED)
    if edit is not None:
        edit(definition, folder)
    return {"container_name": container_name, **definition}


def write_compose(folder: Path, services: dict[str, dict[str, Any]]) -> Path:
    """Write ``folder/compose.yaml`` holding ``services``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "compose.yaml"
    path.write_text(yaml.safe_dump({"services": services}, sort_keys=False))
    return path
