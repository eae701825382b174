"""Fixtures of the network checks."""

from __future__ import annotations

__all__: list[str] = []
