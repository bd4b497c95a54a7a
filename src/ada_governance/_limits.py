"""Stop rules at run time: reserving limits before a run, settling them after, checking
the rates over the ledger, and tripping (pausing the workflow, fail closed).

The rules themselves (which figure, which threshold) are pure functions in `stops`; these
are the steps that drive them against the store, as the engine's other steps are.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from . import audit
from ._ops import _NO_KWARGS, _STORE, Steps, _describe, _new_id
from .exceptions import GovernanceUnavailable, StopRuleTripped
from .records import AuditEvent, Reservation, RunRecord, RunStatus
from .stops import (
    Budget,
    BudgetUnit,
    RejectionRate,
    RunCap,
    Trip,
    limit_trip,
    reservation_rule,
    review_trip,
    run_trip,
    window_start,
)

if TYPE_CHECKING:
    from ._engine import Engine
    from .governance import Governance
    from .run import Run
    from .workflow import Workflow

__all__ = ["check_review_rules", "check_run_rules", "release", "reserve", "settle", "trip_steps"]

BASELINE_KEY = "ada.mode"
BASELINE = "baseline"
"""Baseline runs carry ``{"ada.mode": "baseline"}`` in their annotations."""


def reserve(
    engine: Engine, governance: Governance, run: Run, rule: Budget | RunCap, now: dt.datetime
) -> Steps[None]:
    """Take this run's share of a budget or run cap, or refuse the run and trip."""
    key = reservation_rule(rule)
    if isinstance(rule, Budget):
        since, limit, amount = window_start(rule.window, now), rule.limit, rule.per_run
    else:
        since, limit, amount = now - rule.window, float(rule.max_runs), 1.0
    reservation = Reservation(_new_id(), engine.workflow.name, key, amount, now, run.id)
    try:
        held = yield (_STORE, "reserve", (reservation, limit, since), _NO_KWARGS)
    except Exception as exc:
        # The store cannot say whether the limit allows the run: refuse it (fail
        # closed), and give back what this run already holds under other limits.
        try:
            yield from release(run)
        except Exception:
            run._reservations.clear()  # the store is down: the holds lapse with it
        message = (
            f"the governance store ({governance.store.url}) could not reserve "
            f"{rule.kind} for workflow {engine.workflow.name!r}, so the call was refused: "
            f"{_describe(exc)}"
        )
        record = engine._record(run, RunStatus.REFUSED, now, refusal_reason="store_unavailable")
        event_row = AuditEvent(
            now,
            audit.RUN_REFUSED,
            engine.workflow.name,
            run.id,
            data={"reason": "store_unavailable", "message": message},
        )
        yield from engine._write(governance, record, (event_row,))
        audit.log_event(event_row, engine.owner)
        governance.telemetry.refused(run, record, GovernanceUnavailable.__name__, message)
        raise GovernanceUnavailable(message, workflow=engine.workflow.name, run_id=run.id) from exc
    if held:
        run._reservations.append((reservation.id, rule))
        return
    yield from release(run)
    total = yield (_STORE, "reserved", (engine.workflow.name, key, since), _NO_KWARGS)
    trip = limit_trip(rule, float(total))
    record = engine._record(run, RunStatus.REFUSED, now, refusal_reason=StopRuleTripped.reason)
    refusal = AuditEvent(
        now,
        audit.RUN_REFUSED,
        engine.workflow.name,
        run.id,
        data={"reason": StopRuleTripped.reason, "rule": trip.rule, "message": trip.message},
    )
    yield from engine._write(governance, record, (refusal,))
    audit.log_event(refusal, engine.owner)
    yield from trip_steps(governance, engine.workflow, trip, now, run.id)
    governance.telemetry.refused(
        run, record, StopRuleTripped.__name__, trip.message, rule=trip.rule
    )
    raise StopRuleTripped(
        f"workflow {engine.workflow.name!r} refused the run and paused: {trip.message}",
        workflow=engine.workflow.name,
        run_id=run.id,
        rule=trip.rule,
        figure=trip.figure,
        threshold=trip.threshold,
    )


def release(run: Run) -> Steps[None]:
    """Give back a refused run's reservations."""
    for reservation_id, _ in run._reservations:
        yield (_STORE, "settle", (reservation_id, 0.0), _NO_KWARGS)
    run._reservations.clear()


def settle(engine: Engine, run: Run, record: RunRecord) -> Steps[None]:
    """Settle a finished run's budget reservations to what it recorded."""
    for reservation_id, rule in run._reservations:
        if isinstance(rule, Budget):
            used = (
                record.cost
                if rule.unit is BudgetUnit.USD
                else float(record.input_tokens + record.output_tokens)
            )
            yield (_STORE, "settle", (reservation_id, used), _NO_KWARGS)
            if used > rule.per_run:
                # The run spent more than it declared: the budget holds it as spent,
                # so later runs see it, but runs already in flight may pass the limit.
                overrun = AuditEvent(
                    record.ended_at,
                    audit.BUDGET_OVERRUN,
                    record.workflow,
                    record.run_id,
                    data={"per_run": rule.per_run, "used": used, "unit": rule.unit.value},
                )
                yield (_STORE, "append_audit", (overrun,), _NO_KWARGS)
                audit.log_event(overrun, engine.owner)
    run._reservations.clear()


def check_run_rules(engine: Engine, governance: Governance, now: dt.datetime) -> Steps[None]:
    """After a run: trip the first rule over the ledger whose figure passed its
    threshold (error rate, exception volume, SLA breach rate)."""
    window = max(rule.window for rule in engine.run_rules)
    runs = yield (
        _STORE,
        "list_runs",
        (engine.workflow.name,),
        {"since": now - window},
    )
    # Baseline runs measure the process as it was: they are not the workflow's runs.
    runs = [run for run in runs if run.annotations.get(BASELINE_KEY) != BASELINE]
    for rule in engine.run_rules:
        trip = run_trip(rule, runs, now)
        if trip is not None:
            yield from trip_steps(governance, engine.workflow, trip, now, None)
            return


def trip_steps(
    governance: Governance, workflow: Workflow, trip: Trip, now: dt.datetime, run_id: str | None
) -> Steps[None]:
    """Pause ``workflow`` because ``trip`` happened: the stored stage (fail closed), a
    ``stop_rule_tripped`` audit event with the figure and threshold, the trips metric,
    and the notifiers (told with the owner)."""
    from .records import WorkflowState
    from .workflow import Stage

    current = yield (_STORE, "get_state", (workflow.name,), _NO_KWARGS)
    if current is not None and current.stage in (Stage.PAUSED, Stage.RETIRED):
        return  # already stopped: a person's pause (or a retirement) stands as it is
    actor = f"stop-rule:{trip.rule}"
    owner = workflow.owner.name if workflow.owner is not None else None
    state = WorkflowState(workflow.name, Stage.PAUSED, now, actor, trip.message)
    stage_event = AuditEvent(
        now,
        audit.STAGE_CHANGED,
        workflow.name,
        actor=actor,
        data={"stage": Stage.PAUSED.value, "reason": trip.message},
    )
    yield (_STORE, "set_state", (state, stage_event), _NO_KWARGS)
    tripped = AuditEvent(
        now,
        audit.STOP_RULE_TRIPPED,
        workflow.name,
        run_id,
        actor=actor,
        data={**trip.to_dict(), "owner": owner},
    )
    yield (_STORE, "append_audit", (tripped,), _NO_KWARGS)
    audit.log_event(tripped, owner)
    governance.telemetry.stop_rule_tripped(workflow.name, trip.rule)
    governance._notify_trip(workflow, trip)


def check_review_rules(governance: Governance, workflow: Workflow, now: dt.datetime) -> Steps[None]:
    """Trip the rejection-rate rule if reviewers have rejected too much in its window."""
    rules = [r for r in workflow.stop_rules if isinstance(r, RejectionRate)]
    if not rules:
        return
    reviews = yield (_STORE, "list_reviews", (workflow.name,), _NO_KWARGS)
    for rule in rules:
        trip = review_trip(rule, reviews, now)
        if trip is not None:
            yield from trip_steps(governance, workflow, trip, now, None)
            return
