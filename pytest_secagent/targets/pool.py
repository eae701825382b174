"""One connection per target for the whole run, failures remembered."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from pytest_secagent.outcomes import EvidenceUnavailable
from pytest_secagent.targets import Target

__all__ = ["Closeable", "ConnectionPool"]


class Closeable(Protocol):
    """A connection the pool can close at the end of the run."""

    def close(self) -> None:
        """Release the connection."""


ConnectionT = TypeVar("ConnectionT", bound=Closeable)


class ConnectionPool:
    """Opens each target's connection once and hands the same one to every check.

    A connection that failed to open is remembered: every later check of that target
    errors at once with the first reason instead of waiting for another timeout.
    """

    def __init__(self) -> None:
        self._open: dict[tuple[str, str], Closeable] = {}
        self._failed: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def get(self, target: Target, factory: Callable[[Target], ConnectionT]) -> ConnectionT:
        """Return the open connection for ``target``, opening it with ``factory`` once.

        ``factory`` raises :class:`EvidenceUnavailable` (or any exception) when the target
        cannot be reached; the reason is kept and re-raised for every later request.
        """
        key = (target.uri, getattr(factory, "__qualname__", repr(factory)))
        with self._lock:
            if key in self._failed:
                raise EvidenceUnavailable(f"{target.id}: {self._failed[key]} (first attempt)")
            if key in self._open:
                connection: Any = self._open[key]
                return connection  # type: ignore[no-any-return]
            try:
                opened = factory(target)
            except Exception as exc:
                reason = str(exc) or type(exc).__name__
                self._failed[key] = reason
                raise EvidenceUnavailable(f"{target.id}: {reason}") from exc
            self._open[key] = opened
            return opened

    def close_all(self) -> None:
        """Close every connection that was opened; errors while closing are ignored."""
        with self._lock:
            for connection in self._open.values():
                with contextlib.suppress(Exception):
                    connection.close()
            self._open.clear()
