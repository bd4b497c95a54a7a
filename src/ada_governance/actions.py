"""Actions and their risk boundary: what AI may do, what a person must approve."""

from __future__ import annotations

from enum import Enum

from ._declaration import Declaration, ImportedModel, Name
from .checks import Check

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
        input_schema: A pydantic model the action's payload must validate against, when
            it is requested and when a reviewer edits it; an import path in files.
        idempotent: Whether running the action twice does no harm. Only an idempotent
            action is run again after a worker died holding it; any other is left for a
            person to resolve.
        checks: Pre-checks run with the payload before the action is done or queued for
            review; a failing one refuses the action with `CheckFailed`.
    """

    name: Name
    risk: RiskBoundary
    description: str = ""
    input_schema: ImportedModel | None = None
    idempotent: bool = False
    checks: tuple[Check, ...] = ()
