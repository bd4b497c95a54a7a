"""Module-level checks and errors that test declarations name by import path.

pytest puts ``tests/`` on ``sys.path``, so YAML declarations name these as
``"_checks_support:consent_given"``. `CALLS` records which checks ran, in order; the tests
that read it clear it first.
"""

from __future__ import annotations

from typing import Any

CALLS: list[str] = []
"""The names of the recording checks below, in the order they were called."""


class Transient(Exception):
    """A transient failure named by import path in a retry policy."""


def consent_given(lead: dict[str, Any]) -> str | None:
    """Pass when the lead has consented to contact; else give the reason."""
    return None if lead.get("consent") else "the lead has not consented to contact"


def first_passes(*args: Any, **kwargs: Any) -> None:
    """Record the call and pass."""
    CALLS.append("first")


def second_refuses(*args: Any, **kwargs: Any) -> str:
    """Record the call and refuse."""
    CALLS.append("second")
    return "second says no"


def second_passes(*args: Any, **kwargs: Any) -> bool:
    """Record the call and pass by returning True."""
    CALLS.append("second")
    return True


def third_passes(*args: Any, **kwargs: Any) -> None:
    """Record the call and pass."""
    CALLS.append("third")
