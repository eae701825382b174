"""Collection settings of the pytest-secagent checkout."""

from __future__ import annotations

# Benchmarks run on their own (see bench/README.md); build and tool output is never test code.
collect_ignore = ["bench", "build", "dist", ".tox", ".venv"]
