"""Clocks: where the runtime gets the time, so tests can set it."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Something that tells the time, timezone-aware in UTC."""

    def now(self) -> dt.datetime:
        """Return the current time."""
        ...


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> dt.datetime:
        """Return the current time in UTC."""
        return dt.datetime.now(dt.timezone.utc)
