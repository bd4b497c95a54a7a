"""The storage protocol every backend implements, sync with async twins.

A store keeps workflow state (stage, kill switch), the run ledger and the append-only
audit log; later, reviews, stop-rule counters and budgets. Every check-then-act is one
transaction in the backend. Backends raise `StoreError` (or any exception) when
they cannot answer; the runtime turns that into a refusal, failing closed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..exceptions import GovernanceError
from ..records import AuditEvent, Reservation, RunRecord, RunStatus, WorkflowState

if TYPE_CHECKING:
    from ..reviews import ExecutionStatus, Review, ReviewStatus

__all__ = ["Store", "StoreError", "SyncStoreBase", "check_limit", "claimable"]


class StoreError(GovernanceError):
    """A store could not do what it was asked (unreachable, locked, corrupt, too new)."""


def claimable(review: Review, actions: set[tuple[str, str]]) -> bool:
    """Whether ``claim_ready`` may take ``review`` for a worker that has ``actions``."""
    return (
        review.kind.value == "approval"
        and review.execution.value == "ready"
        and (review.workflow, review.action) in actions
    )


def check_limit(limit: int | None) -> None:
    """Refuse a negative ``limit``, which backends would read differently."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be 0 or more, not {limit}")


@runtime_checkable
class Store(Protocol):
    """What the runtime needs from a storage backend.

    Each method has an async twin prefixed with ``a`` (``get_state`` / ``aget_state``).
    """

    url: str
    """Where the store lives, as the URL that opens it (no password)."""

    def get_state(self, workflow: str) -> WorkflowState | None:
        """Return the stored state of ``workflow``, or ``None`` if none was ever stored."""
        ...

    def set_state(self, state: WorkflowState, event: AuditEvent) -> None:
        """Store a workflow's new state and its audit event in one transaction."""
        ...

    def record_run(self, record: RunRecord, events: Sequence[AuditEvent] = ()) -> None:
        """Add a ledger row, with the audit events about it, in one transaction.

        Recording a run that is already in the ledger (same workflow, start time and id)
        replaces nothing and raises nothing: a retried write is harmless. Run ids are
        unique by construction (time-ordered, with 72 random bits).
        """
        ...

    def append_audit(self, event: AuditEvent) -> None:
        """Append one audit event."""
        ...

    def list_runs(
        self,
        workflow: str | None = None,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        status: RunStatus | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Return ledger rows, oldest first, filtered by workflow, start time and status."""
        ...

    def list_audit(
        self,
        workflow: str | None = None,
        *,
        event: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Return audit events in the order they were appended."""
        ...

    def create_review(self, review: Review, events: Sequence[AuditEvent] = ()) -> None:
        """Add a review to the queue, with its audit events, in one transaction."""
        ...

    def get_review(self, review_id: str) -> Review | None:
        """Return the review with ``review_id``, or ``None``."""
        ...

    def list_reviews(
        self,
        workflow: str | None = None,
        *,
        status: ReviewStatus | None = None,
        execution: ExecutionStatus | None = None,
        role: str | None = None,
        limit: int | None = None,
    ) -> list[Review]:
        """Return reviews, oldest first, filtered by workflow, status, execution and role."""
        ...

    def update_review(
        self,
        review_id: str,
        change: Callable[[Review], Review],
        events: Callable[[Review, Review], Sequence[AuditEvent]] | None = None,
    ) -> Review:
        """Apply ``change`` to a review in one transaction that holds the review's row.

        ``change`` is pure: given the review as stored it returns the review to store,
        or raises to leave it untouched. ``events`` (given the review before and after)
        returns audit events written in the same transaction. No two updates of one
        review interleave, in any process, so a check inside ``change`` (is it pending?
        is it ready to claim?) holds when the result is written.

        Raises:
            KeyError: There is no such review.
        """
        ...

    def reserve(self, reservation: Reservation, limit: float, since: dt.datetime) -> bool:
        """Hold ``reservation`` if the limit allows it, in one transaction.

        Sums the amounts of the reservations for the same workflow and rule made at or
        after ``since``; if that sum plus ``reservation.amount`` is at most ``limit``, the
        reservation is stored and ``True`` returned; otherwise nothing is stored and
        ``False`` returned. No two reservations for one workflow and rule interleave, in
        any process, so concurrent runs can never together pass the limit.
        """
        ...

    def settle(self, reservation_id: str, amount: float) -> None:
        """Replace a reservation's amount with what was really used (0 releases it)."""
        ...

    def reserved(self, workflow: str, rule: str, since: dt.datetime) -> float:
        """The sum of the reservations for ``workflow`` and ``rule`` made at or after
        ``since``."""
        ...

    def claim_ready(
        self,
        worker: str,
        now: dt.datetime,
        lease: dt.timedelta,
        actions: Sequence[tuple[str, str]],
        limit: int | None = None,
    ) -> list[Review]:
        """Claim ready approved actions for ``worker``, oldest first, in one transaction.

        Only approval reviews whose ``(workflow, action)`` is in ``actions`` (the code this
        worker has) are taken, at most ``limit``; each is claimed as `Review.claim` does,
        until ``now + lease``. Rows another process is claiming at the same moment are
        skipped, not waited for, so many workers spread over the queue; none is ever
        claimed twice.
        """
        ...

    def close(self) -> None:
        """Release connections; the store may not be used afterwards."""
        ...

    async def aget_state(self, workflow: str) -> WorkflowState | None:
        """Async twin of `get_state`."""
        ...

    async def aset_state(self, state: WorkflowState, event: AuditEvent) -> None:
        """Async twin of `set_state`."""
        ...

    async def arecord_run(self, record: RunRecord, events: Sequence[AuditEvent] = ()) -> None:
        """Async twin of `record_run`."""
        ...

    async def aappend_audit(self, event: AuditEvent) -> None:
        """Async twin of `append_audit`."""
        ...

    async def alist_runs(
        self,
        workflow: str | None = None,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        status: RunStatus | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Async twin of `list_runs`."""
        ...

    async def alist_audit(
        self,
        workflow: str | None = None,
        *,
        event: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Async twin of `list_audit`."""
        ...

    async def acreate_review(self, review: Review, events: Sequence[AuditEvent] = ()) -> None:
        """Async twin of `create_review`."""
        ...

    async def aget_review(self, review_id: str) -> Review | None:
        """Async twin of `get_review`."""
        ...

    async def alist_reviews(
        self,
        workflow: str | None = None,
        *,
        status: ReviewStatus | None = None,
        execution: ExecutionStatus | None = None,
        role: str | None = None,
        limit: int | None = None,
    ) -> list[Review]:
        """Async twin of `list_reviews`."""
        ...

    async def aupdate_review(
        self,
        review_id: str,
        change: Callable[[Review], Review],
        events: Callable[[Review, Review], Sequence[AuditEvent]] | None = None,
    ) -> Review:
        """Async twin of `update_review`."""
        ...

    async def areserve(self, reservation: Reservation, limit: float, since: dt.datetime) -> bool:
        """Async twin of `reserve`."""
        ...

    async def asettle(self, reservation_id: str, amount: float) -> None:
        """Async twin of `settle`."""
        ...

    async def areserved(self, workflow: str, rule: str, since: dt.datetime) -> float:
        """Async twin of `reserved`."""
        ...

    async def aclaim_ready(
        self,
        worker: str,
        now: dt.datetime,
        lease: dt.timedelta,
        actions: Sequence[tuple[str, str]],
        limit: int | None = None,
    ) -> list[Review]:
        """Async twin of `claim_ready`."""
        ...

    async def aclose(self) -> None:
        """Async twin of `close`."""
        ...


class SyncStoreBase:
    """Gives a store with sync methods its async twins.

    Stores whose calls never block (memory) run them inline; stores that wait on disk or
    locks (SQLite) set ``blocking = True`` and run them in a worker thread, so an event
    loop is never held up by a busy database.
    """

    blocking: bool = False

    async def _call(self, name: str, *args: object, **kwargs: object) -> object:
        method = getattr(self, name)
        if self.blocking:
            return await asyncio.to_thread(method, *args, **kwargs)
        return method(*args, **kwargs)

    async def aget_state(self, workflow: str) -> WorkflowState | None:
        """Async twin of ``get_state``."""
        return await self._call("get_state", workflow)  # type: ignore[return-value]

    async def aset_state(self, state: WorkflowState, event: AuditEvent) -> None:
        """Async twin of ``set_state``."""
        await self._call("set_state", state, event)

    async def arecord_run(self, record: RunRecord, events: Sequence[AuditEvent] = ()) -> None:
        """Async twin of ``record_run``."""
        await self._call("record_run", record, events)

    async def aappend_audit(self, event: AuditEvent) -> None:
        """Async twin of ``append_audit``."""
        await self._call("append_audit", event)

    async def alist_runs(
        self,
        workflow: str | None = None,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        status: RunStatus | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Async twin of ``list_runs``."""
        return await self._call(  # type: ignore[return-value]
            "list_runs", workflow, since=since, until=until, status=status, limit=limit
        )

    async def alist_audit(
        self,
        workflow: str | None = None,
        *,
        event: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Async twin of ``list_audit``."""
        return await self._call(  # type: ignore[return-value]
            "list_audit", workflow, event=event, since=since, limit=limit
        )

    async def acreate_review(self, review: Review, events: Sequence[AuditEvent] = ()) -> None:
        """Async twin of ``create_review``."""
        await self._call("create_review", review, events)

    async def aget_review(self, review_id: str) -> Review | None:
        """Async twin of ``get_review``."""
        return await self._call("get_review", review_id)  # type: ignore[return-value]

    async def alist_reviews(
        self,
        workflow: str | None = None,
        *,
        status: ReviewStatus | None = None,
        execution: ExecutionStatus | None = None,
        role: str | None = None,
        limit: int | None = None,
    ) -> list[Review]:
        """Async twin of ``list_reviews``."""
        return await self._call(  # type: ignore[return-value]
            "list_reviews", workflow, status=status, execution=execution, role=role, limit=limit
        )

    async def aupdate_review(
        self,
        review_id: str,
        change: Callable[[Review], Review],
        events: Callable[[Review, Review], Sequence[AuditEvent]] | None = None,
    ) -> Review:
        """Async twin of ``update_review``."""
        return await self._call("update_review", review_id, change, events)  # type: ignore[return-value]

    async def areserve(self, reservation: Reservation, limit: float, since: dt.datetime) -> bool:
        """Async twin of ``reserve``."""
        return await self._call("reserve", reservation, limit, since)  # type: ignore[return-value]

    async def asettle(self, reservation_id: str, amount: float) -> None:
        """Async twin of ``settle``."""
        await self._call("settle", reservation_id, amount)

    async def areserved(self, workflow: str, rule: str, since: dt.datetime) -> float:
        """Async twin of ``reserved``."""
        return await self._call("reserved", workflow, rule, since)  # type: ignore[return-value]

    async def aclaim_ready(
        self,
        worker: str,
        now: dt.datetime,
        lease: dt.timedelta,
        actions: Sequence[tuple[str, str]],
        limit: int | None = None,
    ) -> list[Review]:
        """Async twin of ``claim_ready``."""
        return await self._call(  # type: ignore[return-value]
            "claim_ready", worker, now, lease, actions, limit
        )

    async def aclose(self) -> None:
        """Async twin of ``close``."""
        await self._call("close")
