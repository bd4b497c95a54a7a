"""Helpers for testing code that uses ada_governance: a clock you set, a governance in
memory, and a way to reset the process-wide default."""

from __future__ import annotations

import datetime as dt
import threading

from .governance import Governance, _reset_default, configure
from .storage.memory import MemoryStore

__all__ = ["ManualClock", "memory_governance", "reset_governance"]


class ManualClock:
    """A clock that stands still until told to move. Thread-safe.

    Args:
        start: The time it starts at (timezone-aware); 2026-01-01 UTC by default.
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        start = start or dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        """Return the clock's time."""
        with self._lock:
            return self._now

    def advance(self, delta: dt.timedelta | float) -> dt.datetime:
        """Move the clock forward by a timedelta or a number of seconds; return the time."""
        step = delta if isinstance(delta, dt.timedelta) else dt.timedelta(seconds=delta)
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: dt.datetime) -> None:
        """Set the clock to ``when`` (timezone-aware)."""
        if when.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware time")
        with self._lock:
            self._now = when


def memory_governance(
    *, development: bool = True, clock: ManualClock | None = None, default: bool = False
) -> Governance:
    """Return a governance on a fresh in-memory store, for tests and notebooks.

    Args:
        development: Whether draft workflows may run (``True`` here, unlike production).
        clock: The clock; the system clock if not given.
        default: Also make it the process-wide default, as `configure` does.
    """
    if default:
        return configure(MemoryStore(), clock=clock, development=development)
    return Governance(MemoryStore(), clock=clock, development=development)


def reset_governance() -> None:
    """Forget the process-wide governance, closing its store (for test teardown)."""
    _reset_default()
