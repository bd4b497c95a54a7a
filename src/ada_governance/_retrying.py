"""Retrying a governed body with tenacity: transient errors and rejected outputs, each
within its own limit, never past an executed action, never starting after the deadline."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tenacity

from . import audit
from ._ops import RetryOutput, _describe
from .records import AuditEvent
from .reviews import Review, ReviewDecisionRefused

if TYPE_CHECKING:
    from ._engine import Engine
    from .governance import Governance
    from .run import Run

__all__ = ["retrying"]


def retrying(engine: Engine, run: Run, governance: Governance, *, asynchronous: bool) -> Any:
    """A tenacity controller for the body's attempts: transient errors and rejected
    outputs, each within its own limit; never past an executed action."""
    policy_ = engine.retry_policy
    standard = engine.standard
    transient: tuple[type[BaseException], ...] = tuple(policy_.on) if policy_ else ()
    output_limit = standard.max_attempts if standard is not None else 1
    counts = {"output": 0, "transient": 0}
    deadline = policy_.deadline.total_seconds() if policy_ and policy_.deadline else None
    # Exponential from initial_wait to max_wait, plus up to initial_wait of jitter.
    # Written out rather than tenacity's wait_exponential_jitter, whose arguments
    # changed between the tenacity versions we support.
    initial = policy_.initial_wait.total_seconds() if policy_ else 0.0
    ceiling = policy_.max_wait.total_seconds() if policy_ else 0.0
    spread = initial if policy_ and policy_.jitter else 0.0

    def backoff(attempt: int) -> float:
        base = min(ceiling, initial * 2.0 ** max(0, attempt - 1))
        return float(base + (random.uniform(0, spread) if spread else 0.0))

    def failure(state: tenacity.RetryCallState) -> BaseException | None:
        return state.outcome.exception() if state.outcome is not None else None

    def retry(state: tenacity.RetryCallState) -> bool:
        error = failure(state)
        if error is None or run._side_effects:
            return False
        if isinstance(error, RetryOutput):
            counts["output"] += 1
            return True
        if transient and isinstance(error, transient):
            counts["transient"] += 1
            return True
        return False

    waits: dict[str, float] = {}

    def stop(state: tenacity.RetryCallState) -> bool:
        error = failure(state)
        if isinstance(error, RetryOutput):
            waits["next"] = 0.0
            return counts["output"] >= output_limit
        if policy_ is None or counts["transient"] >= policy_.attempts:
            return True
        waits["next"] = backoff(counts["transient"])
        elapsed = state.seconds_since_start or 0.0
        # The next attempt must start before the deadline, wait included.
        return deadline is not None and elapsed + waits["next"] >= deadline

    def wait(state: tenacity.RetryCallState) -> float:
        return waits.pop("next", 0.0)

    def discard_attempt() -> list[str]:
        # Reviews the discarded attempt requested must not be decided and run: the
        # retry will request its own.
        withdrawn = run._pending[:]
        run._pending.clear()
        return withdrawn

    def withdraw_events(before: Review, after: Review) -> list[AuditEvent]:
        return [
            AuditEvent(
                after.decisions[-1].at,
                audit.REVIEW_WITHDRAWN,
                after.workflow,
                after.run_id,
                data={"review_id": after.id, "action": after.action},
            )
        ]

    def withdraw(review_id: str, now: dt.datetime) -> Callable[[Review], Review]:
        reason = f"attempt {run.attempt} was discarded and retried"
        return lambda review: review.withdraw(now, reason)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        note(state)
        for review_id in discard_attempt():
            now = governance.clock.now()
            # One decided in the instant since it was asked stands.
            with contextlib.suppress(ReviewDecisionRefused):
                governance.store.update_review(review_id, withdraw(review_id, now), withdraw_events)
        run.attempt += 1

    async def abefore_sleep(state: tenacity.RetryCallState) -> None:
        note(state)
        for review_id in discard_attempt():
            now = governance.clock.now()
            with contextlib.suppress(ReviewDecisionRefused):
                await governance.store.aupdate_review(
                    review_id, withdraw(review_id, now), withdraw_events
                )
        run.attempt += 1

    def note(state: tenacity.RetryCallState) -> None:
        error = failure(state)
        if isinstance(error, RetryOutput):
            run.previous_issues = tuple(error.issues)
            reason = "OutputRejected"
            detail: dict[str, Any] = {"issues": [str(issue) for issue in error.issues]}
        else:
            reason = type(error).__name__
            detail = {"error": _describe(error) if error is not None else ""}
        run._kept_events.append(
            AuditEvent(
                governance.clock.now(),
                audit.ATTEMPT_FAILED,
                engine.workflow.name,
                run.id,
                data={"attempt": run.attempt, "error_type": reason, **detail},
            )
        )
        if run._telemetry is not None:
            run._telemetry.attempt_failed(run, run.attempt, reason)

    options: dict[str, Any] = {
        "retry": retry,
        "stop": stop,
        "wait": wait,
        "before_sleep": abefore_sleep if asynchronous else before_sleep,
        "reraise": True,
    }
    return (tenacity.AsyncRetrying if asynchronous else tenacity.Retrying)(**options)
