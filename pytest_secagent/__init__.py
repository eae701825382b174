"""pytest-secagent: security baselines as pytest tests."""

from pytest_secagent._version import __version__

__all__ = ["__version__"]
