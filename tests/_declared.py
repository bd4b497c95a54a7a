"""Module-level objects that test declarations name by import path, e.g. ``"_declared:FollowUp"``.

pytest puts ``tests/`` on ``sys.path`` (the default ``prepend`` import mode), so this module
imports as ``_declared`` both from the tests and through :func:`importlib.import_module`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class FollowUp(BaseModel):
    """The output of a lead follow-up: an email to send."""

    subject: str
    body: str
    amount: float = 0.0


class Escalation(BaseModel):
    """The output of a triage step: who takes the case."""

    team: str
    reason: str = ""


def has_subject(output: Any) -> list[str]:
    """Return an issue when the output has no subject."""
    return [] if getattr(output, "subject", "") else ["missing_subject"]


def within_budget(output: Any) -> list[str]:
    """Return an issue when the output commits to more than 500."""
    return [] if getattr(output, "amount", 0) <= 500 else ["over_budget"]


def needs_review(output: Any) -> bool:
    """Return whether an output goes to a person."""
    return bool(getattr(output, "amount", 0) > 100)


def route_exception(record: Any) -> None:
    """Take an exception record; the tests only need something importable."""


class Checks:
    """Validators grouped on a class, named ``"_declared:Checks.no_placeholders"``."""

    @staticmethod
    def no_placeholders(output: Any) -> list[str]:
        """Return an issue when the body still holds a template placeholder."""
        return ["placeholder"] if "{{" in getattr(output, "body", "") else []


NOT_CALLABLE = 42
"""Importable, but neither a callable nor a model class."""


def renamed(output: Any) -> list[str]:
    """A function whose qualified name no longer imports back to it."""
    return []


renamed.__qualname__ = "no_longer_here"
