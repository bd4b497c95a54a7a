"""Retrying transient failures of a workflow's body, with tenacity."""

from __future__ import annotations

import builtins
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainSerializer

from ._declaration import Declaration, PositiveDuration, import_object, import_path_of

__all__ = ["RetryPolicy"]


def _exception_type(value: Any) -> Any:
    if isinstance(value, str):
        # Built-in exceptions may be named bare: TimeoutError, ConnectionError.
        value = (
            getattr(builtins, value)
            if ":" not in value and hasattr(builtins, value)
            else (import_object(value))
        )
    if not (isinstance(value, type) and issubclass(value, Exception)):
        raise ValueError(f"{value!r} is not an exception class")
    return value


def _exception_name(value: type[BaseException]) -> str:
    if value.__module__ == "builtins":
        return value.__qualname__
    return import_path_of(value)


ExceptionType = Annotated[
    type[Exception],
    BeforeValidator(_exception_type),
    PlainSerializer(_exception_name, return_type=str, when_used="json"),
]


class RetryPolicy(Declaration):
    """Which failures of the body are transient, and how they are retried.

    Only the declared exception types are retried (a provider's rate-limit error, a
    timeout); anything else goes down the exception path at once. Waits grow
    exponentially from ``initial_wait`` to ``max_wait``, with random jitter, and stop at
    ``attempts`` or at the ``deadline``, whichever comes first. Every attempt is
    recorded. A retry never runs the body again once it has done something that cannot
    be undone twice (an executed action): that failure is final.

    Attributes:
        on: The transient exception types; import paths in files (bare names for
            built-ins, such as ``TimeoutError``).
        attempts: How many times the body may run in all.
        initial_wait: The first wait.
        max_wait: The longest wait.
        jitter: Whether to add random jitter (up to ``initial_wait``) to each wait.
        deadline: The longest time from the first attempt to the last; none if unset.
    """

    on: tuple[ExceptionType, ...] = Field(min_length=1)
    attempts: int = Field(default=3, ge=1, le=50)
    initial_wait: PositiveDuration = timedelta(milliseconds=500)
    max_wait: PositiveDuration = timedelta(seconds=30)
    jitter: bool = True
    deadline: PositiveDuration | None = None
