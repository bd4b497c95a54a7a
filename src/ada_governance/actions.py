"""Actions and their risk boundary: what AI may do, what a person must approve."""

from __future__ import annotations

from enum import Enum

from ._declaration import Declaration, Name

__all__ = ["Action", "RiskBoundary"]


class RiskBoundary(str, Enum):
    """Who may cause an action to happen."""

    AUTONOMOUS = "autonomous"
    """The workflow runs it by itself; it is recorded."""
    REQUIRES_APPROVAL = "requires_approval"
    """It does nothing until a person with authority approves it."""
    MANUAL_ONLY = "manual_only"
    """The workflow may never run it; a person does it outside the workflow."""


class Action(Declaration):
    """Something a workflow does in the world, with its risk boundary.

    Attributes:
        name: The action's name, unique within the workflow (``"send_email"``).
        risk: Who may cause it: the workflow alone, a person's approval, or nobody but a
            person acting by hand.
        description: What the action does.
    """

    name: Name
    risk: RiskBoundary
    description: str = ""
