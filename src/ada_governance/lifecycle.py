"""The production lifecycle: which stage changes are allowed, pilot decisions, history.

A workflow moves ``draft`` → ``pilot`` → ``production``; any stage may be ``paused`` or
``retired``. The rules are pure (`allowed_transition`); the functions here read what
they need from a `Governance` store, check the rules, and write the change through
`Governance.set_stage`, which audits it as ``stage_changed`` with who and why. Each has an
async twin, driven from the same steps (``change_stage`` / ``achange_stage``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, get_args

from . import audit
from .exceptions import GovernanceError, UsageError
from .readiness import Verdict, readiness
from .records import AuditEvent, WorkflowState
from .storage import StoreError
from .workflow import Stage, Workflow

if TYPE_CHECKING:
    from .governance import Governance

__all__ = [
    "DecisionKind",
    "PILOT_DECISION",
    "PilotDecision",
    "StageChange",
    "StageChangeRefused",
    "achange_stage",
    "adecisions",
    "ahistory",
    "allowed_transition",
    "apause",
    "arecord_decision",
    "aresume",
    "aretire",
    "change_stage",
    "decisions",
    "history",
    "pause",
    "record_decision",
    "resume",
    "retire",
]

PILOT_DECISION = "pilot_decision"
"""The audit event written by `record_decision`."""

DecisionKind = Literal["scale", "revise", "pause", "stop"]
"""What was decided about a pilot: scale it to production, revise it, pause it, stop it."""

_DECISION_KINDS: tuple[str, ...] = get_args(DecisionKind)

T = TypeVar("T")


class StageChangeRefused(GovernanceError):
    """A stage change was refused by the lifecycle rules; nothing was written.

    Attributes:
        workflow: The workflow's name.
        current: The stage it is in (stored, else declared); ``None`` when neither is
            known (a name with nothing stored).
        requested: The stage asked for; ``None`` for a resume with nothing to resume to.
        reason: Why, phrased so a person can act on it.
    """

    def __init__(
        self, workflow: str, current: Stage | None, requested: Stage | None, reason: str
    ) -> None:
        self.workflow = workflow
        self.current = current
        self.requested = requested
        self.reason = reason
        target = f" to {requested.value}" if requested is not None else ""
        origin = f" from {current.value}" if current is not None else ""
        super().__init__(f"workflow {workflow!r} cannot move{origin}{target}: {reason}")


@dataclass(frozen=True)
class PilotDecision:
    """A recorded decision about a pilot: scale, revise, pause or stop.

    Attributes:
        workflow: The workflow's name.
        decision: ``scale``, ``revise``, ``pause`` or ``stop``.
        actor: Who decided.
        reason: Why.
        at: When it was recorded.
        figures: The figures the decision rests on (``{"meetings_booked": 31}``),
            JSON-ready.
    """

    workflow: str
    decision: DecisionKind
    actor: str
    reason: str
    at: dt.datetime
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the decision as JSON-ready data."""
        return {
            "workflow": self.workflow,
            "decision": self.decision,
            "actor": self.actor,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "figures": dict(self.figures),
        }


@dataclass(frozen=True)
class StageChange:
    """One stored change of a workflow's stage, from the audit log.

    Attributes:
        at: When it changed.
        from_: The stage before, from the change recorded before it; ``None`` for the
            first recorded change (the workflow was in its declared stage).
        to: The stage after.
        actor: Who changed it (a person, ``review-timeout``, ``stop-rule:<kind>``).
        reason: Why.
    """

    at: dt.datetime
    from_: Stage | None
    to: Stage
    actor: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Return the change as JSON-ready data (``from`` and ``to`` as stage names)."""
        return {
            "at": self.at.isoformat(),
            "from": self.from_.value if self.from_ is not None else None,
            "to": self.to.value,
            "actor": self.actor,
            "reason": self.reason,
        }


# --- the rules -----------------------------------------------------------------------------

_NEXT: Mapping[Stage, tuple[Stage, ...]] = {
    Stage.DRAFT: (Stage.PILOT, Stage.PAUSED, Stage.RETIRED),
    Stage.PILOT: (Stage.PRODUCTION, Stage.PAUSED, Stage.RETIRED),
    Stage.PRODUCTION: (Stage.PILOT, Stage.PAUSED, Stage.RETIRED),
}


def allowed_transition(
    workflow: Workflow,
    current: Stage,
    to: Stage,
    decisions: Iterable[PilotDecision],
    *,
    paused_from: Stage | None = None,
) -> str | None:
    """Say whether ``workflow`` may move from ``current`` to ``to``.

    The rules: ``draft`` → ``pilot`` only when `readiness` says deployment;
    ``pilot`` → ``production`` only when the latest pilot decision for the workflow is
    ``scale``; ``production`` → ``pilot`` (scaling back); any stage → ``paused`` or
    ``retired``; ``paused`` → only the stage it was paused from; ``retired`` → nothing.

    Args:
        workflow: The declaration (for readiness and its declared stage).
        current: The stage it is in.
        to: The stage asked for.
        decisions: Pilot decisions, oldest first; those of other workflows are ignored.
        paused_from: The stage it was in before it was paused, when ``current`` is
            ``paused``; the declared stage if not given.

    Returns:
        ``None`` if the change is allowed, else why not.
    """
    return _refusal(
        workflow.name,
        Stage(current),
        Stage(to),
        workflow=workflow,
        decisions=decisions,
        paused_from=paused_from if paused_from is not None else workflow.stage,
    )


def _refusal(
    name: str,
    current: Stage | None,
    to: Stage,
    *,
    workflow: Workflow | None,
    decisions: Iterable[PilotDecision] = (),
    paused_from: Stage | None = None,
) -> str | None:
    """The rules, for a workflow known by its declaration or (pause, retire) its name."""
    if to is current:
        return f"it is already in {to.value}"
    if current is Stage.RETIRED:
        return "it is retired, and retirement is final; declare a new workflow instead"
    if to in (Stage.PAUSED, Stage.RETIRED):
        return None
    if current is None:
        return "its stage is unknown: nothing is stored for it; give its declaration"
    if current is Stage.PAUSED:
        if paused_from is None or paused_from is Stage.PAUSED:
            return (
                "there is no stage to resume it to: no stage before the pause is recorded "
                "and its declaration does not give one; change its declared stage"
            )
        if to is paused_from:
            return None
        return (
            f"it was paused from {paused_from.value}, so it resumes to {paused_from.value}; "
            f"move it on from there"
        )
    if current is Stage.DRAFT and to is Stage.PILOT:
        if workflow is None:
            return "promoting a draft needs its declaration, to check its readiness"
        result = readiness(workflow)
        if result.verdict is Verdict.DEPLOYMENT:
            return None
        missing = ", ".join(element.label for element in result.blocking)
        return f"it is still adoption mode; name its {missing} in the declaration first"
    if current is Stage.PILOT and to is Stage.PRODUCTION:
        latest = _latest(name, decisions)
        if latest is None:
            return (
                "no pilot decision to scale is recorded; record one "
                f"(`ada-governance decide {name} scale`) once the pilot's figures support it"
            )
        if latest.decision != "scale":
            return (
                f"the latest pilot decision is {latest.decision!r} "
                f"({latest.actor}, {latest.at.isoformat(timespec='seconds')}: {latest.reason}); "
                "production needs a decision to scale"
            )
        return None
    if current is Stage.PRODUCTION and to is Stage.PILOT:
        return None
    if current is Stage.DRAFT and to is Stage.PRODUCTION:
        return "a draft goes to pilot first, and to production after a decision to scale"
    allowed = ", ".join(stage.value for stage in _NEXT[current])
    return f"{current.value} moves only to {allowed}"


def _latest(name: str, decisions: Iterable[PilotDecision]) -> PilotDecision | None:
    latest = None
    for decision in decisions:
        if decision.workflow == name:
            latest = decision
    return latest


# --- reading the audit log -----------------------------------------------------------------


def _changes(events: Iterable[AuditEvent]) -> list[StageChange]:
    """Stage changes from ``stage_changed`` events in the order they were appended."""
    changes: list[StageChange] = []
    previous: Stage | None = None
    for event in events:
        try:
            stage = Stage(event.data["stage"])
        except (KeyError, ValueError, TypeError) as error:
            # Fail closed: a resume read from a history it cannot trust could go anywhere.
            raise StoreError(
                f"audit event {event.id} ({event.event} of {event.workflow}) names no "
                f"valid stage: {event.data!r}"
            ) from error
        changes.append(
            StageChange(
                event.at, previous, stage, event.actor or "", str(event.data.get("reason", ""))
            )
        )
        previous = stage
    return changes


def _decisions(events: Iterable[AuditEvent]) -> list[PilotDecision]:
    found: list[PilotDecision] = []
    for event in events:
        kind = event.data.get("decision")
        if kind not in _DECISION_KINDS:
            raise StoreError(
                f"audit event {event.id} ({event.event} of {event.workflow}) names no "
                f"valid decision: {event.data!r}"
            )
        found.append(
            PilotDecision(
                event.workflow,
                kind,
                event.actor or "",
                str(event.data.get("reason", "")),
                event.at,
                dict(event.data.get("figures") or {}),
            )
        )
    return found


def _paused_from(changes: list[StageChange]) -> Stage | None:
    """The stage before the latest pause (past repeated pauses), or ``None`` if unknown."""
    index = len(changes) - 1
    while index >= 0 and changes[index].to is Stage.PAUSED:
        if changes[index].from_ is not Stage.PAUSED:
            return changes[index].from_
        index -= 1
    return None


# --- the steps, driven sync or async --------------------------------------------------------

# One step: (object, method, args, kwargs). Sync runs ``object.method``; async awaits
# ``object.a<method>`` (the store's and the governance's async twins).
_Op = tuple[Any, str, tuple[Any, ...], dict[str, Any]]
_Steps = Generator[_Op, Any, T]


def _drive(steps: _Steps[T]) -> T:
    answer: Any = None
    while True:
        try:
            target, method, args, kwargs = steps.send(answer)
        except StopIteration as stop:
            return cast(T, stop.value)
        answer = getattr(target, method)(*args, **kwargs)


async def _adrive(steps: _Steps[T]) -> T:
    answer: Any = None
    while True:
        try:
            target, method, args, kwargs = steps.send(answer)
        except StopIteration as stop:
            return cast(T, stop.value)
        answer = await getattr(target, "a" + method)(*args, **kwargs)


def _require(actor: Any, reason: Any, what: str) -> tuple[str, str]:
    if not isinstance(actor, str) or not actor.strip():
        raise UsageError(f"{what} needs an actor: say who is doing it (actor='...')")
    if not isinstance(reason, str) or not reason.strip():
        raise UsageError(f"{what} needs a reason: say why (reason='...')")
    return actor.strip(), reason.strip()


def _stage(value: Any) -> Stage:
    try:
        return Stage(value)
    except ValueError:
        stages = ", ".join(stage.value for stage in Stage)
        raise UsageError(f"{value!r} is not a stage; choose one of {stages}") from None


def _name_of(workflow: Workflow | str) -> str:
    if isinstance(workflow, Workflow):
        return workflow.name
    if isinstance(workflow, str) and workflow.strip():
        return workflow
    raise UsageError(f"give a Workflow or a workflow's name, not {workflow!r}")


def _declaration(workflow: Any) -> None:
    if not isinstance(workflow, Workflow):
        raise UsageError(
            "change_stage needs the workflow's declaration (a Workflow), to check its "
            f"readiness and declared stage; got {type(workflow).__name__}. pause, resume "
            "and retire take a name"
        )


def _change_steps(
    governance: Governance,
    workflow: Workflow | str,
    to: Stage | None,
    actor: str,
    reason: str,
) -> _Steps[WorkflowState]:
    """Read the current stage, check the rules, and write the change.

    ``to=None`` is a resume: back to the stage before the pause.
    """
    name = _name_of(workflow)
    declared = workflow if isinstance(workflow, Workflow) else None
    store = governance.store
    state: WorkflowState | None = yield (store, "get_state", (name,), {})
    if state is not None:
        current: Stage | None = state.stage
    else:
        current = declared.stage if declared is not None else None
    paused_from: Stage | None = None
    if current is Stage.PAUSED:
        events = yield (store, "list_audit", (name,), {"event": audit.STAGE_CHANGED})
        paused_from = _paused_from(_changes(events))
        if paused_from is None and declared is not None:
            paused_from = declared.stage
    if to is None:  # resume: back to the stage before the pause
        if current is not Stage.PAUSED:
            where = f"it is in {current.value}" if current is not None else "nothing is stored"
            raise StageChangeRefused(name, current, None, f"it is not paused ({where})")
        if paused_from is None:
            raise UsageError(
                f"no stage before the pause of {name!r} is recorded: resume it with its "
                "declaration (a Workflow, or --workflows on the command line), whose "
                "declared stage it returns to"
            )
        if paused_from is Stage.PAUSED:
            raise StageChangeRefused(
                name,
                current,
                None,
                "there is no stage to resume it to: it is declared paused and no earlier "
                "stage is recorded; change its declared stage",
            )
        to = paused_from
    decided: list[PilotDecision] = []
    if current is Stage.PILOT and to is Stage.PRODUCTION:
        decided = _decisions((yield (store, "list_audit", (name,), {"event": PILOT_DECISION})))
    refusal = _refusal(
        name, current, to, workflow=declared, decisions=decided, paused_from=paused_from
    )
    if refusal is not None:
        raise StageChangeRefused(name, current, to, refusal)
    written: WorkflowState = yield (
        governance,
        "set_stage",
        (name, to),
        {"actor": actor, "reason": reason},
    )
    return written


def _decision_steps(
    governance: Governance,
    workflow: Workflow | str,
    decision: str,
    actor: str,
    reason: str,
    figures: Mapping[str, Any] | None,
) -> _Steps[PilotDecision]:
    name = _name_of(workflow)
    if decision not in _DECISION_KINDS:
        raise UsageError(
            f"{decision!r} is not a pilot decision; choose one of {', '.join(_DECISION_KINDS)}"
        )
    data = dict(figures or {})
    try:
        json.dumps(data)
    except (TypeError, ValueError) as error:
        raise UsageError(
            f"a decision's figures must be JSON data (numbers, text, lists, mappings): {error}"
        ) from None
    now = governance.clock.now()
    event = AuditEvent(
        now,
        PILOT_DECISION,
        name,
        actor=actor,
        data={"decision": decision, "reason": reason, "figures": data},
    )
    yield (governance.store, "append_audit", (event,), {})
    audit.log_event(event)
    return PilotDecision(name, cast(DecisionKind, decision), actor, reason, now, data)


def _read_steps(
    governance: Governance, workflow: Workflow | str, event: str
) -> _Steps[list[AuditEvent]]:
    events: list[AuditEvent] = yield (
        governance.store,
        "list_audit",
        (_name_of(workflow),),
        {"event": event},
    )
    return events


# --- the public functions ---------------------------------------------------------------------


def change_stage(
    governance: Governance,
    workflow: Workflow,
    to: Stage | str,
    *,
    actor: str,
    reason: str,
) -> WorkflowState:
    """Move a workflow to another stage, if the lifecycle rules allow it.

    Reads the current stage (the stored one, else the declared one), checks
    `allowed_transition`, and writes the change with `Governance.set_stage`, which
    audits it (``stage_changed``, with the actor and the reason). Every process sharing
    the store sees the new stage on its next call.

    Args:
        governance: Where the stage is stored.
        workflow: The declaration (needed for readiness and the declared stage).
        to: The new stage.
        actor: Who is changing it.
        reason: Why.

    Returns:
        The stored state.

    Raises:
        StageChangeRefused: The rules do not allow the change; nothing was written.
        UsageError: No actor or reason, or ``to`` is not a stage.
    """
    actor, reason = _require(actor, reason, "a stage change")
    _declaration(workflow)
    return _drive(_change_steps(governance, workflow, _stage(to), actor, reason))


async def achange_stage(
    governance: Governance,
    workflow: Workflow,
    to: Stage | str,
    *,
    actor: str,
    reason: str,
) -> WorkflowState:
    """Async twin of `change_stage`."""
    actor, reason = _require(actor, reason, "a stage change")
    _declaration(workflow)
    return await _adrive(_change_steps(governance, workflow, _stage(to), actor, reason))


def pause(
    governance: Governance, workflow: Workflow | str, *, actor: str, reason: str
) -> WorkflowState:
    """Pause a workflow: every process sharing the store refuses its next calls
    (`WorkflowPaused`) until it is resumed.

    Args:
        governance: Where the stage is stored.
        workflow: The declaration or the workflow's name.
        actor: Who is pausing it.
        reason: Why; the refusals quote it.

    Returns:
        The stored state.

    Raises:
        StageChangeRefused: It is already paused, or retired.
        UsageError: No actor or reason.
    """
    actor, reason = _require(actor, reason, "a pause")
    return _drive(_change_steps(governance, workflow, Stage.PAUSED, actor, reason))


async def apause(
    governance: Governance, workflow: Workflow | str, *, actor: str, reason: str
) -> WorkflowState:
    """Async twin of `pause`."""
    actor, reason = _require(actor, reason, "a pause")
    return await _adrive(_change_steps(governance, workflow, Stage.PAUSED, actor, reason))


def resume(
    governance: Governance, workflow: Workflow | str, *, actor: str, reason: str
) -> WorkflowState:
    """Resume a paused workflow, back to the stage it was paused from.

    That stage comes from the stage history; if the pause is the first recorded change,
    it is the declared stage, so give the declaration then.

    Args:
        governance: Where the stage is stored.
        workflow: The declaration or the workflow's name.
        actor: Who is resuming it.
        reason: Why (what was done about the cause of the pause).

    Returns:
        The stored state.

    Raises:
        StageChangeRefused: It is not paused, or there is no stage to return to.
        UsageError: No actor or reason, or only a name was given and the history does
            not say what stage it was paused from.
    """
    actor, reason = _require(actor, reason, "a resume")
    return _drive(_change_steps(governance, workflow, None, actor, reason))


async def aresume(
    governance: Governance, workflow: Workflow | str, *, actor: str, reason: str
) -> WorkflowState:
    """Async twin of `resume`."""
    actor, reason = _require(actor, reason, "a resume")
    return await _adrive(_change_steps(governance, workflow, None, actor, reason))


def retire(
    governance: Governance, workflow: Workflow | str, *, actor: str, reason: str
) -> WorkflowState:
    """Retire a workflow for good: it refuses every call (`WorkflowRetired`) and never
    changes stage again.

    Args:
        governance: Where the stage is stored.
        workflow: The declaration or the workflow's name.
        actor: Who is retiring it.
        reason: Why.

    Returns:
        The stored state.

    Raises:
        StageChangeRefused: It is already retired.
        UsageError: No actor or reason.
    """
    actor, reason = _require(actor, reason, "retiring a workflow")
    return _drive(_change_steps(governance, workflow, Stage.RETIRED, actor, reason))


async def aretire(
    governance: Governance, workflow: Workflow | str, *, actor: str, reason: str
) -> WorkflowState:
    """Async twin of `retire`."""
    actor, reason = _require(actor, reason, "retiring a workflow")
    return await _adrive(_change_steps(governance, workflow, Stage.RETIRED, actor, reason))


def record_decision(
    governance: Governance,
    workflow: Workflow | str,
    decision: DecisionKind,
    *,
    actor: str,
    reason: str,
    figures: Mapping[str, Any] | None = None,
) -> PilotDecision:
    """Record a decision about a pilot in the audit log (``pilot_decision``).

    A decision is a record, not a stage change: ``scale`` lets `change_stage` move the
    pilot to production (while it is the latest decision); acting on ``pause`` or
    ``stop`` is `pause` or `retire`.

    Args:
        governance: Where the decision is recorded.
        workflow: The declaration or the workflow's name.
        decision: ``scale``, ``revise``, ``pause`` or ``stop``.
        actor: Who decided.
        reason: Why.
        figures: The figures the decision rests on, JSON-ready.

    Returns:
        The recorded decision.

    Raises:
        UsageError: No actor or reason, an unknown decision, or figures that are not
            JSON data.
    """
    actor, reason = _require(actor, reason, "a pilot decision")
    return _drive(_decision_steps(governance, workflow, decision, actor, reason, figures))


async def arecord_decision(
    governance: Governance,
    workflow: Workflow | str,
    decision: DecisionKind,
    *,
    actor: str,
    reason: str,
    figures: Mapping[str, Any] | None = None,
) -> PilotDecision:
    """Async twin of `record_decision`."""
    actor, reason = _require(actor, reason, "a pilot decision")
    return await _adrive(_decision_steps(governance, workflow, decision, actor, reason, figures))


def decisions(governance: Governance, workflow: Workflow | str) -> list[PilotDecision]:
    """Return the pilot decisions recorded for a workflow, oldest first."""
    return _decisions(_drive(_read_steps(governance, workflow, PILOT_DECISION)))


async def adecisions(governance: Governance, workflow: Workflow | str) -> list[PilotDecision]:
    """Async twin of `decisions`."""
    return _decisions(await _adrive(_read_steps(governance, workflow, PILOT_DECISION)))


def history(governance: Governance, workflow: Workflow | str) -> list[StageChange]:
    """Return every stored change of a workflow's stage, oldest first.

    Each names the stage before it (from the change before; ``None`` for the first),
    the stage after, who changed it and why: people through the lifecycle functions and
    `Governance.set_stage`, and the library itself (``review-timeout``).

    Raises:
        StoreError: A ``stage_changed`` event in the log names no valid stage.
    """
    return _changes(_drive(_read_steps(governance, workflow, audit.STAGE_CHANGED)))


async def ahistory(governance: Governance, workflow: Workflow | str) -> list[StageChange]:
    """Async twin of `history`."""
    return _changes(await _adrive(_read_steps(governance, workflow, audit.STAGE_CHANGED)))
