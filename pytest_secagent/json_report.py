"""The JSON results file: an import path kept for callers; see :mod:`pytest_secagent.reporting.document`."""

from __future__ import annotations

from pytest_secagent.reporting.document import (
    SCHEMA_RESOURCE,
    SCHEMA_VERSION,
    build_document,
    schema,
    write_json,
)

__all__ = ["SCHEMA_RESOURCE", "SCHEMA_VERSION", "build_document", "schema", "write_json"]
