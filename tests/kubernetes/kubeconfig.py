"""Write a kubeconfig file, as a cloud CLI or a cluster admin would hand one out."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_pem: bytes,
    token: str,
    user: str,
    context: str = "secagent-test",
    namespace: str | None = None,
) -> Path:
    """Write a kubeconfig with one cluster, user and context (the current one) to ``path``."""
    context_entry: dict[str, str] = {"cluster": f"{context}-cluster", "user": user}
    if namespace:
        context_entry["namespace"] = namespace
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {
                "name": f"{context}-cluster",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode("ascii"),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": context_entry}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    return path
