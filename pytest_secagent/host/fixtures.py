"""Fixtures of the host checks."""

from __future__ import annotations

__all__: list[str] = []
