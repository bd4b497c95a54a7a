"""The audit log: governance events as structlog events and append-only store rows."""

from __future__ import annotations

from typing import Any

import structlog

from .records import AuditEvent

__all__ = ["RUN_FAILED", "RUN_REFUSED", "log_event", "logger"]

RUN_REFUSED = "run_refused"
RUN_FAILED = "run_failed"
EXCEPTION_ROUTED = "exception_routed"
EXCEPTION_HANDLER_FAILED = "exception_handler_failed"
FALLBACK_RETURNED = "fallback_returned"
FALLBACK_FAILED = "fallback_failed"
STAGE_CHANGED = "stage_changed"
UNGOVERNED_RUN = "ungoverned_run"
STORE_UNAVAILABLE = "store_unavailable"
BACKLOG_FLUSHED = "backlog_flushed"
ATTEMPT_FAILED = "attempt_failed"
POLICY_VIOLATION = "policy_violation"
REVIEW_REQUESTED = "review_requested"
REVIEW_DECIDED = "review_decided"
REVIEW_ESCALATED = "review_escalated"
REVIEW_EXPIRED = "review_expired"
REVIEW_WITHDRAWN = "review_withdrawn"
ACTION_EXECUTED = "action_executed"
ACTION_FAILED = "action_failed"
ACTION_UNKNOWN = "action_unknown"
ACTION_FINISHED_LATE = "action_finished_late"
STOP_RULE_TRIPPED = "stop_rule_tripped"
BUDGET_OVERRUN = "budget_overrun"

_LEVELS = {
    RUN_REFUSED: "warning",
    RUN_FAILED: "warning",
    EXCEPTION_ROUTED: "info",
    EXCEPTION_HANDLER_FAILED: "error",
    FALLBACK_RETURNED: "info",
    FALLBACK_FAILED: "error",
    STAGE_CHANGED: "info",
    UNGOVERNED_RUN: "warning",
    STORE_UNAVAILABLE: "error",
    BACKLOG_FLUSHED: "info",
    ATTEMPT_FAILED: "info",
    POLICY_VIOLATION: "warning",
    REVIEW_REQUESTED: "info",
    REVIEW_DECIDED: "info",
    REVIEW_ESCALATED: "warning",
    REVIEW_EXPIRED: "warning",
    REVIEW_WITHDRAWN: "info",
    ACTION_EXECUTED: "info",
    ACTION_FAILED: "error",
    ACTION_UNKNOWN: "error",
    ACTION_FINISHED_LATE: "error",
    STOP_RULE_TRIPPED: "error",
    BUDGET_OVERRUN: "warning",
}

logger = structlog.get_logger("ada_governance")
"""The library's logger. Configure structlog (or the stdlib logging it may route to) to
filter or format it; routine run start and end are never logged here."""


def log_event(event: AuditEvent, owner: str | None = None, **extra: Any) -> None:
    """Emit an audit event as a structlog event bound with workflow, run and owner.

    Logging never raises into the caller: a broken logging setup must not break a call.
    """
    try:
        method = getattr(logger, _LEVELS.get(event.event, "info"))
        method(
            event.event,
            workflow=event.workflow,
            run_id=event.run_id,
            owner=owner,
            actor=event.actor,
            **event.data,
            **extra,
        )
    except Exception:
        pass
