"""Fixtures of the kubernetes checks."""

from __future__ import annotations

__all__: list[str] = []
