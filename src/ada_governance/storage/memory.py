"""The in-memory store: for tests and notebooks; one process, nothing kept."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Sequence

from ..records import AuditEvent, Reservation, RunRecord, RunStatus, WorkflowState
from ..reviews import ExecutionStatus, Review, ReviewStatus
from ..stops import passes_limit
from .base import StoreError, SyncStoreBase, check_limit, claimable

__all__ = ["MemoryStore"]


def _copy(record: RunRecord) -> RunRecord:
    # Positional and explicit: dataclasses.replace costs four times as much, and this
    # runs on every governed call.
    return RunRecord(
        record.run_id,
        record.workflow,
        record.version,
        record.status,
        record.trigger_id,
        record.trigger_type,
        record.received_at,
        record.started_at,
        record.ended_at,
        record.parent_run_id,
        record.error_type,
        record.error_message,
        record.refusal_reason,
        record.fallback_used,
        record.ungoverned,
        record.model_calls,
        record.input_tokens,
        record.output_tokens,
        record.cost,
        record.outcome_ref,
        dict(record.outcomes),
        dict(record.annotations),
        record.attempts,
        list(record.reads),
    )


class MemoryStore(SyncStoreBase):
    """A store held in this process's memory, safe across threads.

    Args:
        url: The URL it was opened by (``memory://``).
    """

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._lock = threading.Lock()
        self._states: dict[str, WorkflowState] = {}
        self._runs: dict[str, RunRecord] = {}
        self._audit: list[AuditEvent] = []
        self._reviews: dict[str, Review] = {}
        self._reservations: dict[str, Reservation] = {}
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the memory store is closed")

    def get_state(self, workflow: str) -> WorkflowState | None:
        self._check_open()
        return self._states.get(workflow)

    def set_state(self, state: WorkflowState, event: AuditEvent) -> None:
        with self._lock:
            self._check_open()
            self._states[state.workflow] = state
            self._append(event)

    def _append(self, event: AuditEvent) -> None:
        self._audit.append(dataclasses.replace(event, id=len(self._audit) + 1))

    def record_run(self, record: RunRecord, events: Sequence[AuditEvent] = ()) -> None:
        with self._lock:
            self._check_open()
            if record.run_id in self._runs:
                return
            # A copy, so nothing the caller does to its record afterwards changes the ledger.
            # A copy, so nothing the caller does to its record afterwards changes the ledger.
            self._runs[record.run_id] = _copy(record)
            for event in events:
                self._append(event)

    def append_audit(self, event: AuditEvent) -> None:
        with self._lock:
            self._check_open()
            self._append(event)

    def list_runs(
        self,
        workflow: str | None = None,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        status: RunStatus | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        check_limit(limit)
        with self._lock:
            self._check_open()
            rows = [
                _copy(row)
                for row in self._runs.values()
                if (workflow is None or row.workflow == workflow)
                and (since is None or row.started_at >= since)
                and (until is None or row.started_at < until)
                and (status is None or row.status is status)
            ]
        rows.sort(key=lambda row: (row.started_at, row.run_id))
        return rows[:limit] if limit is not None else rows

    def list_audit(
        self,
        workflow: str | None = None,
        *,
        event: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        check_limit(limit)
        with self._lock:
            self._check_open()
            rows = [
                row
                for row in self._audit
                if (workflow is None or row.workflow == workflow)
                and (event is None or row.event == event)
                and (since is None or row.at >= since)
            ]
        return rows[:limit] if limit is not None else rows

    # --- reviews -------------------------------------------------------------------------

    def create_review(self, review: Review, events: Sequence[AuditEvent] = ()) -> None:
        with self._lock:
            self._check_open()
            if review.id in self._reviews:
                raise StoreError(f"review {review.id} already exists")
            self._reviews[review.id] = review
            for event in events:
                self._append(event)

    def get_review(self, review_id: str) -> Review | None:
        self._check_open()
        return self._reviews.get(review_id)

    def list_reviews(
        self,
        workflow: str | None = None,
        *,
        status: ReviewStatus | None = None,
        execution: ExecutionStatus | None = None,
        role: str | None = None,
        limit: int | None = None,
    ) -> list[Review]:
        check_limit(limit)
        with self._lock:
            self._check_open()
            rows = [
                review
                for review in self._reviews.values()
                if (workflow is None or review.workflow == workflow)
                and (status is None or review.status is status)
                and (execution is None or review.execution is execution)
                and (role is None or role in review.roles)
            ]
        rows.sort(key=lambda review: (review.created_at, review.id))
        return rows[:limit] if limit is not None else rows

    def update_review(
        self,
        review_id: str,
        change: Callable[[Review], Review],
        events: Callable[[Review, Review], Sequence[AuditEvent]] | None = None,
    ) -> Review:
        # Reviews are frozen dataclasses, so the stored one is never changed in place.
        with self._lock:
            self._check_open()
            before = self._reviews.get(review_id)
            if before is None:
                raise KeyError(review_id)
            after = change(before)
            # Both are worked out before anything is stored, so a change or an events
            # callback that raises leaves the review and the audit log as they were.
            new_events = list(events(before, after)) if events is not None else []
            self._reviews[review_id] = after
            for event in new_events:
                self._append(event)
            return after

    def claim_ready(
        self,
        worker: str,
        now: dt.datetime,
        lease: dt.timedelta,
        actions: Sequence[tuple[str, str]],
        limit: int | None = None,
    ) -> list[Review]:
        check_limit(limit)
        wanted = set(actions)
        with self._lock:
            self._check_open()
            ready = sorted(
                (r for r in self._reviews.values() if claimable(r, wanted)),
                key=lambda review: (review.created_at, review.id),
            )
            claimed = [review.claim(worker, now, lease) for review in ready[:limit]]
            for review in claimed:
                self._reviews[review.id] = review
            return claimed

    # --- reservations ----------------------------------------------------------------------

    def reserve(self, reservation: Reservation, limit: float, since: dt.datetime) -> bool:
        with self._lock:
            self._check_open()
            held = self._sum(reservation.workflow, reservation.rule, since)
            if passes_limit(held, reservation.amount, limit):
                return False
            self._reservations[reservation.id] = reservation
            return True

    def settle(self, reservation_id: str, amount: float) -> None:
        with self._lock:
            self._check_open()
            found = self._reservations.get(reservation_id)
            if found is not None:
                self._reservations[reservation_id] = dataclasses.replace(found, amount=amount)

    def reserved(self, workflow: str, rule: str, since: dt.datetime) -> float:
        with self._lock:
            self._check_open()
            return self._sum(workflow, rule, since)

    def _sum(self, workflow: str, rule: str, since: dt.datetime) -> float:
        return sum(
            r.amount
            for r in self._reservations.values()
            if r.workflow == workflow and r.rule == rule and r.created_at >= since
        )

    def close(self) -> None:
        self._closed = True
