"""What the store keeps: workflow state, ledger rows and audit events, as plain records.

These are dataclasses rather than pydantic models because one is built on every governed
call; the hot path cannot pay for validation it does not need.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .workflow import Stage

__all__ = [
    "AuditEvent",
    "RunRecord",
    "RunStatus",
    "Reservation",
    "SourceRead",
    "TriggerEvent",
    "WorkflowState",
]


class RunStatus(str, Enum):
    """How a run ended."""

    SUCCEEDED = "succeeded"
    """The body returned (or the stream was exhausted)."""
    FAILED = "failed"
    """The body raised; the error went down the exception path."""
    REFUSED = "refused"
    """Governance refused to start it (stage, trigger, store unavailable...)."""
    CANCELLED = "cancelled"
    """The caller stopped it: a stream closed early, or the task was cancelled."""
    PENDING_REVIEW = "pending_review"
    """It finished its part and waits for a person's decision."""


@dataclass(frozen=True, slots=True)
class TriggerEvent:
    """The event that started a run.

    Attributes:
        id: The event's id in the system it came from (a form submission id, a call id).
        type: The event type; must be one the workflow's trigger declares.
        received_at: When the event really happened (timezone-aware); cycle time counts
            from here, so pass the source system's time when you have it.
        payload_ref: Where the event's payload lives, if anywhere (a URL, a record id).
    """

    id: str
    type: str
    received_at: dt.datetime
    payload_ref: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.received_at, dt.datetime) or self.received_at.tzinfo is None:
            raise ValueError(
                "TriggerEvent.received_at must be a timezone-aware datetime, such as "
                "datetime.now(timezone.utc); a naive time cannot be compared across hosts"
            )
        if not self.type:
            raise ValueError("TriggerEvent.type must name the event type")

    @classmethod
    def now(cls, type: str, id: str | None = None, payload_ref: str | None = None) -> TriggerEvent:
        """Make an event of ``type`` received now (for events with no time of their own)."""
        return cls(id or os.urandom(16).hex(), type, dt.datetime.now(dt.timezone.utc), payload_ref)


@dataclass(frozen=True, slots=True)
class WorkflowState:
    """The stored state of a workflow, which prevails over its declared stage.

    Attributes:
        workflow: The workflow's name (state applies to every version).
        stage: Its current stage.
        changed_at: When the stage last changed.
        actor: Who changed it (a person, or ``stop-rule:<kind>``).
        reason: Why.
    """

    workflow: str
    stage: Stage
    changed_at: dt.datetime
    actor: str
    reason: str


@dataclass(slots=True)
class RunRecord:
    """One row of the run ledger: everything about one run, complete when it ends.

    Attributes:
        run_id: The run's id.
        workflow: The workflow's name.
        version: The declaration's version.
        status: How the run ended.
        trigger_id: The trigger event's id.
        trigger_type: The trigger event's type.
        received_at: When the trigger event happened.
        started_at: When governance opened the run.
        ended_at: When the run ended.
        parent_run_id: The enclosing run, for a nested governed call.
        error_type: The exception's class name, for failed and cancelled runs.
        error_message: The exception's message, truncated.
        refusal_reason: Why governance refused the run.
        fallback_used: Whether the exception path returned a declared fallback.
        ungoverned: Whether the run went ahead while the store was unavailable.
        model_calls: How many model calls the run recorded.
        input_tokens: Input tokens over those calls.
        output_tokens: Output tokens over those calls.
        cost: Cost over those calls, in USD.
        outcome_ref: The outcome's reference in the system of record.
        outcomes: Named outcome values (``{"meeting_booked": 1}``).
        annotations: Free-form facts the app attached with ``run.annotate``.
        attempts: How many times the body ran (more than one when retried).
        reads: The provenance of every source read: one `SourceRead` each.
    """

    run_id: str
    workflow: str
    version: str
    status: RunStatus
    trigger_id: str
    trigger_type: str
    received_at: dt.datetime
    started_at: dt.datetime
    ended_at: dt.datetime
    parent_run_id: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    refusal_reason: str | None = None
    fallback_used: bool = False
    ungoverned: bool = False
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    outcome_ref: str | None = None
    outcomes: dict[str, float] = field(default_factory=dict)
    annotations: dict[str, Any] = field(default_factory=dict)
    attempts: int = 1
    reads: list[SourceRead] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SourceRead:
    """The provenance of one read of an approved source.

    Attributes:
        source: The source's declared name.
        system: The system that holds it.
        classification: Its classification (``public``, ``internal``, ``confidential``,
            ``personal``).
        record_id: The record's id, from the source's declared ``key`` or the loader's
            `SourceData`; ``None`` when neither says.
        sha256: The SHA-256 of the data's canonical JSON form: the same data gives the
            same hash in any process.
        fetched_at: When it was read.
        as_of: When the data was last true, if known.
    """

    source: str
    system: str
    classification: str
    record_id: str | None
    sha256: str
    fetched_at: dt.datetime
    as_of: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The read as JSON-ready data."""
        return {
            "source": self.source,
            "system": self.system,
            "classification": self.classification,
            "record_id": self.record_id,
            "sha256": self.sha256,
            "fetched_at": self.fetched_at.isoformat(),
            "as_of": self.as_of.isoformat() if self.as_of is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceRead:
        """Read back what `to_dict` wrote."""
        as_of = data.get("as_of")
        return cls(
            data["source"],
            data["system"],
            data["classification"],
            data.get("record_id"),
            data["sha256"],
            dt.datetime.fromisoformat(data["fetched_at"]),
            dt.datetime.fromisoformat(as_of) if as_of else None,
        )


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One append-only row of the audit log: a governance event.

    Attributes:
        at: When it happened.
        event: What happened (``run_refused``, ``run_failed``, ``exception_routed``,
            ``stage_changed``...).
        workflow: The workflow it concerns.
        run_id: The run it concerns, if any.
        actor: Who caused it, if a person or a rule did.
        data: The facts, JSON-ready.
        id: The row's id, given by the store.
    """

    at: dt.datetime
    event: str
    workflow: str
    run_id: str | None = None
    actor: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Reservation:
    """A share of a limit held by a run: budget it may spend, or a place under a run cap.

    A run reserves its declared maximum before it starts and settles to what it really
    used when it ends, so concurrent runs can never together pass the limit.

    Attributes:
        id: The reservation's id.
        workflow: The workflow's name.
        rule: Which limit (``budget:usd:day``, ``run_cap``...).
        amount: How much it holds (USD, tokens or runs).
        created_at: When it was made; limits count reservations made in their window.
        run_id: The run that holds it.
    """

    id: str
    workflow: str
    rule: str
    amount: float
    created_at: dt.datetime
    run_id: str | None = None
