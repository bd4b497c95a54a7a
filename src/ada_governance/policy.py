"""Pure decisions: given a declaration, the stored state and an event, say what happens.

No I/O and no clock reads here; the runtime passes the time in. This is where the rules
live, and where most tests of them go.
"""

from __future__ import annotations

from dataclasses import dataclass

from .exceptions import (
    RunRefused,
    TriggerRefused,
    WorkflowNotRunnable,
    WorkflowPaused,
    WorkflowRetired,
)
from .records import WorkflowState
from .workflow import Stage, Workflow

__all__ = ["Refusal", "admit", "check_trigger", "default_trigger_type", "effective_stage"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A decision not to start a run.

    Attributes:
        error: The error class the caller receives.
        message: What happened and what to do about it.
    """

    error: type[RunRefused]
    message: str

    @property
    def reason(self) -> str:
        """The stable reason code, from the error class."""
        return self.error.reason


def effective_stage(workflow: Workflow, state: WorkflowState | None) -> Stage:
    """Return the stage that governs a run: the stored one if any, else the declared one."""
    return state.stage if state is not None else workflow.stage


def admit(workflow: Workflow, state: WorkflowState | None, *, development: bool) -> Refusal | None:
    """Decide whether a run of ``workflow`` may start in its current stage.

    Args:
        workflow: The declaration.
        state: The stored state, or ``None`` if none was ever stored.
        development: Whether governance is configured for development, where drafts run.

    Returns:
        ``None`` to admit the run, or the refusal.
    """
    stage = effective_stage(workflow, state)
    if stage is Stage.PAUSED:
        who = f" by {state.actor}" if state is not None else ""
        why = f": {state.reason}" if state is not None and state.reason else ""
        return Refusal(
            WorkflowPaused,
            f"workflow {workflow.name!r} is paused{who}{why}; "
            "resume it with `ada-governance resume` once the cause is dealt with",
        )
    if stage is Stage.RETIRED:
        return Refusal(
            WorkflowRetired,
            f"workflow {workflow.name!r} is retired and refuses every call; "
            "declare and promote a new workflow instead",
        )
    if stage is Stage.DRAFT and not development:
        return Refusal(
            WorkflowNotRunnable,
            f"workflow {workflow.name!r} is a draft; drafts run only where governance is "
            "configured for development (Governance(development=True)), or promote it "
            "to pilot",
        )
    return None


def default_trigger_type(workflow: Workflow) -> str | None:
    """The event type for a trigger made at call time, or ``None`` if it is ambiguous.

    A workflow with one declared event type gets that type; one with no trigger declared
    (a draft) gets ``"call"``; one with several needs the caller to say which.
    """
    if workflow.trigger is None:
        return "call"
    if len(workflow.trigger.events) == 1:
        return workflow.trigger.events[0]
    return None


def check_trigger(workflow: Workflow, event_type: str | None) -> Refusal | None:
    """Decide whether a trigger event of ``event_type`` may start ``workflow``.

    Args:
        workflow: The declaration.
        event_type: The event's type, or ``None`` when the caller gave none and the
            workflow declares several.

    Returns:
        ``None`` to accept it, or the refusal.
    """
    declared = workflow.trigger.events if workflow.trigger is not None else None
    if event_type is None:
        return Refusal(
            TriggerRefused,
            f"workflow {workflow.name!r} starts on {' or '.join(declared or ())}; pass a "
            "TriggerEvent saying which event started this call",
        )
    if declared is not None and event_type not in declared:
        return Refusal(
            TriggerRefused,
            f"workflow {workflow.name!r} starts on {' or '.join(declared)}, not on {event_type!r}",
        )
    return None
