"""Helpers shared by the plugin's own tests."""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    """Whether the tests run in CI, where every system component must be present."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(component: str, available: bool, how_to_get_it: str) -> None:
    """Skip the test when ``component`` is missing, or fail when running in CI.

    CI installs every component the tests need, so a missing one there is a broken
    set-up, never a reason to skip.
    """
    __tracebackhide__ = True
    if available:
        return
    message = f"{component} is not available here; {how_to_get_it}"
    if in_ci():
        pytest.fail(f"CI must provide {message}", pytrace=False)
    pytest.skip(message)


def require_tool(executable: str, package: str) -> str:
    """Return the path of ``executable``, skipping (or failing in CI) when it is missing."""
    __tracebackhide__ = True
    path = shutil.which(executable) or shutil.which(executable, path="/usr/sbin:/sbin")
    require(executable, path is not None, f"install the Debian package {package}")
    return path or ""


def require_root() -> None:
    """Skip (or fail in CI) unless the tests run as root."""
    __tracebackhide__ = True
    require("root privileges", os.geteuid() == 0, "run the tests as root")
