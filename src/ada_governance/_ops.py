"""The vocabulary the engine's steps speak: the requests they yield, and small helpers
every step module shares."""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .outputs import OutputIssue

__all__ = ["RetryOutput", "Steps"]

T = TypeVar("T")

_STORE = 0
_CALL = 1
_CALL_IN_RUN = 2
Op = tuple[int, Any, tuple[Any, ...], Mapping[str, Any]]
Steps = Generator[Op, Any, T]
_NO_KWARGS: Mapping[str, Any] = {}


_MESSAGE_LIMIT = 500


class RetryOutput(Exception):
    """Raised inside an attempt whose output failed a standard that says ``retry``."""

    def __init__(self, issues: list[OutputIssue]) -> None:
        super().__init__("; ".join(map(str, issues)))
        self.issues = issues


def _new_id() -> str:
    # Time-ordered: 14 hex digits of microseconds since the epoch, then 72 random bits.
    # Ids sort by creation time, which keeps database indexes appending at one end.
    return f"{time.time_ns() // 1000:014x}{os.urandom(9).hex()}"


def _text(error: BaseException) -> str:
    """The error's message, never raising: an error that cannot print is still recorded."""
    try:
        return str(error)[:_MESSAGE_LIMIT]
    except Exception:
        return f"<{type(error).__name__} whose message could not be rendered>"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {_text(error)}"[:_MESSAGE_LIMIT]
