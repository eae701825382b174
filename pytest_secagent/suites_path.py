"""Where the built-in suites live: inside the installed package, or beside it in a checkout."""

from __future__ import annotations

from pathlib import Path

__all__ = ["suites_dir"]


def suites_dir() -> Path:
    """The folder of the built-in suite modules."""
    package = Path(__file__).resolve().parent
    installed = package / "suites"
    return installed if installed.is_dir() else package.parent / "suites"
