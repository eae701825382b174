"""Keys the host tests make up."""

from __future__ import annotations

from pathlib import Path

from tests.host.sshd import keygen


def impostor_key(folder: Path) -> str:
    """A fresh ed25519 public key that belongs to no server."""
    return keygen(folder / "impostor", "sa-host-impostor")
