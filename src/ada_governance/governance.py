"""The governance object: which store, which clock, and the process-wide default."""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from . import _actions as queue
from . import audit
from ._actions import roles_for
from ._engine import adrive, drive
from .clock import Clock, SystemClock
from .records import AuditEvent, RunRecord, RunStatus, WorkflowState
from .reviews import Review, ReviewStatus
from .stops import Trip
from .storage import Store, default_store_url, open_store
from .telemetry import Telemetry
from .workflow import Stage, Workflow

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["Governance", "Notifier", "configure", "get_governance"]


class Notifier(Protocol):
    """Told about the review queue: ``kind`` is ``requested``, ``escalated``,
    ``expired`` or ``decided``. A notifier that raises is logged and ignored."""

    def notify(self, kind: str, review: Review) -> None:
        """Tell someone about ``review``."""
        ...


class Governance:
    """Where governed runs are checked and recorded: a store, a clock, a mode.

    Args:
        store: A `Store`, or a URL (``sqlite:////var/lib/app/governance.db``,
            ``memory://``). Defaults to the ``ADA_GOVERNANCE_STORE`` environment variable,
            else a SQLite file under ``$XDG_STATE_HOME/ada_governance/`` (or
            ``~/.local/state/ada_governance/``).
        clock: Where the time comes from; the system clock in UTC by default.
        development: Whether draft workflows may run (for development and tests).
        backlog_limit: How many ledger rows to hold in memory while the store is down,
            to be written when it answers again. Past it, the oldest are dropped and
            logged.
        tracer_provider: Where run spans go; the global OpenTelemetry provider if not
            given (looked up at each span, so a provider set later is used).
        meter_provider: Where metrics go; the global provider if not given.
        capture_content: Record outputs, prompts and completions on spans. Off by
            default; values from sources classified as personal are redacted even then.
        reviewer_roles: Where reviewers' roles come from: a mapping from reviewer to
            roles, or a callable. Without it, the caller of `approve` or `reject` says
            which roles the reviewer holds (as the app's own sign-in establishes).
        notifiers: Told when a review is requested, escalated, expired or decided
            (`StructlogNotifier`, `WebhookNotifier`, or your own with ``notify``).
    """

    def __init__(
        self,
        store: Store | str | None = None,
        *,
        clock: Clock | None = None,
        development: bool = False,
        backlog_limit: int = 10_000,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        capture_content: bool = False,
        reviewer_roles: Mapping[str, Iterable[str]] | Callable[[str], Iterable[str]] | None = None,
        notifiers: Iterable[Notifier] = (),
    ) -> None:
        self.store: Store = (
            open_store(store or default_store_url()) if not isinstance(store, Store) else store
        )
        self.clock: Clock = clock or SystemClock()
        self.development = development
        self._backlog: deque[tuple[RunRecord, tuple[AuditEvent, ...]]] = deque()
        self._backlog_limit = backlog_limit
        self._backlog_lock = threading.Lock()
        self.telemetry = Telemetry(tracer_provider, meter_provider, capture_content=capture_content)
        self.reviewer_roles = reviewer_roles
        self.notifiers = tuple(notifiers)

    def __repr__(self) -> str:
        return f"<Governance store={self.store.url!r} development={self.development}>"

    # --- workflow state ------------------------------------------------------------

    def state(self, workflow: Workflow | str) -> WorkflowState | None:
        """Return the stored state of a workflow, or ``None`` if none was stored."""
        return self.store.get_state(_name(workflow))

    def set_stage(
        self, workflow: Workflow | str, stage: Stage | str, *, actor: str, reason: str
    ) -> WorkflowState:
        """Store a workflow's stage, with who changed it and why, and audit the change.

        This is the low-level write the lifecycle commands build on; it applies to
        every version of the workflow and is seen by every process sharing the store.

        Args:
            workflow: The workflow or its name.
            stage: The new stage.
            actor: Who is changing it.
            reason: Why.

        Returns:
            The stored state.
        """
        state, event = self._stage_change(workflow, stage, actor, reason)
        self.store.set_state(state, event)
        audit.log_event(event)
        return state

    async def aset_stage(
        self, workflow: Workflow | str, stage: Stage | str, *, actor: str, reason: str
    ) -> WorkflowState:
        """Async twin of `set_stage`."""
        state, event = self._stage_change(workflow, stage, actor, reason)
        await self.store.aset_state(state, event)
        audit.log_event(event)
        return state

    def _stage_change(
        self, workflow: Workflow | str, stage: Stage | str, actor: str, reason: str
    ) -> tuple[WorkflowState, AuditEvent]:
        if not actor.strip() or not reason.strip():
            from .exceptions import UsageError

            raise UsageError("a stage change needs an actor and a reason")
        name, stage, now = _name(workflow), Stage(stage), self.clock.now()
        state = WorkflowState(name, stage, now, actor, reason)
        event = AuditEvent(
            now,
            audit.STAGE_CHANGED,
            name,
            actor=actor,
            data={"stage": stage.value, "reason": reason},
        )
        return state, event

    # --- the ledger and the audit log ----------------------------------------------

    def runs(
        self,
        workflow: Workflow | str | None = None,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        status: RunStatus | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Return ledger rows, oldest first."""
        name = _name(workflow) if workflow is not None else None
        return self.store.list_runs(name, since=since, until=until, status=status, limit=limit)

    def audit_events(
        self,
        workflow: Workflow | str | None = None,
        *,
        event: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Return audit events in the order they were appended."""
        name = _name(workflow) if workflow is not None else None
        return self.store.list_audit(name, event=event, since=since, limit=limit)

    # --- rows the store could not take -----------------------------------------------

    @property
    def backlog(self) -> int:
        """How many ledger rows wait in memory for the store to come back."""
        return len(self._backlog)

    def _hold(self, record: RunRecord, events: Sequence[AuditEvent]) -> None:
        with self._backlog_lock:
            if len(self._backlog) >= self._backlog_limit:
                dropped, _ = self._backlog.popleft()
                audit.logger.error(
                    "ledger_row_dropped",
                    workflow=dropped.workflow,
                    run_id=dropped.run_id,
                    reason=f"backlog is full ({self._backlog_limit} rows)",
                )
            self._backlog.append((record, tuple(events)))

    def _take_backlog(self) -> list[tuple[RunRecord, tuple[AuditEvent, ...]]]:
        with self._backlog_lock:
            items = list(self._backlog)
            self._backlog.clear()
        return items

    def flush_backlog(self) -> int:
        """Write held ledger rows to the store now; return how many were written.

        Runs call this by themselves once the store answers again.
        """
        written = 0
        items = self._take_backlog()
        for index, (record, events) in enumerate(items):
            try:
                self.store.record_run(record, events)
            except Exception:
                for item in reversed(items[index:]):
                    with self._backlog_lock:
                        self._backlog.appendleft(item)
                break
            written += 1
        return written

    # --- the review queue ------------------------------------------------------------

    def review(self, review_id: str) -> Review:
        """Return one review.

        Raises:
            KeyError: There is no such review.
        """
        review = self.store.get_review(review_id)
        if review is None:
            raise KeyError(f"no review {review_id!r} in {self.store.url}")
        return review

    def reviews(
        self,
        workflow: Workflow | str | None = None,
        *,
        status: ReviewStatus | str | None = None,
        role: str | None = None,
        limit: int | None = None,
    ) -> list[Review]:
        """Return reviews, oldest first: pending ones with ``status="pending"``, those a
        role may decide with ``role=``."""
        name = _name(workflow) if workflow is not None else None
        wanted = ReviewStatus(status) if status is not None else None
        return self.store.list_reviews(name, status=wanted, role=role, limit=limit)

    def approve(
        self,
        review_id: str,
        reviewer: str,
        *,
        roles: Iterable[str] | str | None = None,
        edits: Any = None,
        comment: str | None = None,
        expected_sha256: str | None = None,
    ) -> Review:
        """Approve a review, optionally editing its payload.

        Once the review has every approval it needs, its action runs here, exactly
        once, if this process has its code registered (`governed_action`); otherwise a
        worker runs it (`run_actions`).

        Args:
            review_id: The review.
            reviewer: Who approves.
            roles: The roles they hold (unless the governance has a reviewer directory).
            edits: A changed payload; validated against the action's input schema, kept
                beside the original, and what the action will run with.
            comment: Why, or what was changed.
            expected_sha256: The payload hash the reviewer was shown; a different payload
                (edited since) is refused.

        Returns:
            The review after the decision (and after its action ran, if it ran here).

        Raises:
            KeyError: No such review.
            ReviewDecisionRefused: Not pending, not the reviewer's role, self-approval,
                a second approval by the same reviewer, or a changed payload.
            InvalidPayload: The edit fails the action's input schema.
        """
        held = roles_for(self, reviewer, roles)
        steps = queue.approve(
            self,
            review_id,
            reviewer,
            held,
            edits=edits,
            comment=comment,
            expected_sha256=expected_sha256,
        )
        return drive(steps, self.store)

    async def aapprove(
        self,
        review_id: str,
        reviewer: str,
        *,
        roles: Iterable[str] | str | None = None,
        edits: Any = None,
        comment: str | None = None,
        expected_sha256: str | None = None,
    ) -> Review:
        """Async twin of `approve`."""
        held = roles_for(self, reviewer, roles)
        steps = queue.approve(
            self,
            review_id,
            reviewer,
            held,
            edits=edits,
            comment=comment,
            expected_sha256=expected_sha256,
            asynchronous=True,
        )
        return await adrive(steps, self.store)

    def reject(
        self,
        review_id: str,
        reviewer: str,
        *,
        reason: str,
        roles: Iterable[str] | str | None = None,
    ) -> Review:
        """Reject a review with a reason; its action will never run.

        Raises:
            UsageError: No reason was given.
            ReviewDecisionRefused: Not pending, or not the reviewer's role.
        """
        held = roles_for(self, reviewer, roles)
        return drive(queue.reject(self, review_id, reviewer, held, reason), self.store)

    async def areject(
        self,
        review_id: str,
        reviewer: str,
        *,
        reason: str,
        roles: Iterable[str] | str | None = None,
    ) -> Review:
        """Async twin of `reject`."""
        held = roles_for(self, reviewer, roles)
        return await adrive(queue.reject(self, review_id, reviewer, held, reason), self.store)

    def judge(
        self,
        review_id: str,
        reviewer: str,
        *,
        correct: bool,
        comment: str | None = None,
        roles: Iterable[str] | str | None = None,
    ) -> Review:
        """Give the verdict on an autonomous action sampled for review after the fact."""
        held = roles_for(self, reviewer, roles)
        return drive(queue.judge(self, review_id, reviewer, held, correct, comment), self.store)

    def expire_overdue(self, now: dt.datetime | None = None) -> list[Review]:
        """Apply ``on_timeout`` to every review past its deadline: escalate (once, with
        a new deadline), reject, or reject and pause the workflow. Call it from a worker
        or a scheduler. Returns the reviews it changed."""
        return drive(queue.expire_overdue(self, now or self.clock.now()), self.store)

    async def aexpire_overdue(self, now: dt.datetime | None = None) -> list[Review]:
        """Async twin of `expire_overdue`."""
        return await adrive(queue.expire_overdue(self, now or self.clock.now()), self.store)

    def run_actions(
        self,
        *,
        worker: str | None = None,
        lease: dt.timedelta = queue.DEFAULT_LEASE,
        limit: int | None = None,
    ) -> list[Review]:
        """Run the approved actions whose code is registered in this process.

        Each runs exactly once: it is claimed atomically under a lease, its payload is
        checked against the approved hash, it runs, and how it went is recorded. A claim
        whose lease lapsed (its process died) becomes ``unknown`` for a person to
        resolve, or ready again if the action is idempotent. A paused workflow's
        actions stay ready and are not run, and so do actions whose code is async: run
        those with `arun_actions`.

        Returns:
            The reviews whose actions this call ran or settled.
        """
        steps = queue.run_actions(self, worker or queue.worker_name(), lease, limit)
        return drive(steps, self.store)

    async def arun_actions(
        self,
        *,
        worker: str | None = None,
        lease: dt.timedelta = queue.DEFAULT_LEASE,
        limit: int | None = None,
    ) -> list[Review]:
        """Async twin of `run_actions`; it also runs actions whose code is async."""
        steps = queue.run_actions(
            self, worker or queue.worker_name(), lease, limit, asynchronous=True
        )
        return await adrive(steps, self.store)

    def _notify_trip(self, workflow: Workflow, trip: Trip) -> None:
        # Notifiers that can hear of trips say so with ``notify_trip``; the owner is named.
        owner = workflow.owner
        for notifier in self.notifiers:
            notify_trip = getattr(notifier, "notify_trip", None)
            if notify_trip is None:
                continue
            try:
                notify_trip(workflow.name, owner.name if owner else None, trip)
            except Exception as error:  # a notifier must never break the trip
                audit.logger.error(
                    "notifier_failed",
                    notifier=type(notifier).__name__,
                    workflow=workflow.name,
                    error=f"{type(error).__name__}: {error}",
                )

    def _notify(self, kind: str, review: Review) -> None:
        for notifier in self.notifiers:
            try:
                notifier.notify(kind, review)
            except Exception as error:  # a notifier must never break a decision
                audit.logger.error(
                    "notifier_failed",
                    notifier=type(notifier).__name__,
                    review_id=review.id,
                    error=f"{type(error).__name__}: {error}",
                )

    def close(self) -> None:
        """Write what the backlog holds if the store answers, then close the store."""
        self.flush_backlog()
        self.store.close()


def _name(workflow: Workflow | str) -> str:
    return workflow if isinstance(workflow, str) else workflow.name


_default: Governance | None = None
_default_lock = threading.Lock()


def configure(
    store: Store | str | None = None,
    *,
    clock: Clock | None = None,
    development: bool = False,
    backlog_limit: int = 10_000,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool = False,
    reviewer_roles: Mapping[str, Iterable[str]] | Callable[[str], Iterable[str]] | None = None,
    notifiers: Iterable[Notifier] = (),
) -> Governance:
    """Set the process-wide governance used by decorators not given one explicitly.

    Arguments are those of `Governance`. Returns the new default; the previous one is
    closed.
    """
    global _default
    governance = Governance(
        store,
        clock=clock,
        development=development,
        backlog_limit=backlog_limit,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content=capture_content,
        reviewer_roles=reviewer_roles,
        notifiers=notifiers,
    )
    with _default_lock:
        previous, _default = _default, governance
    if previous is not None:
        previous.close()
    return governance


def get_governance() -> Governance:
    """Return the process-wide governance, creating the default one on first use."""
    governance = _default
    if governance is not None:
        return governance
    return _create_default()


def _create_default() -> Governance:
    global _default
    with _default_lock:
        if _default is None:
            _default = Governance()
        return _default


def _reset_default() -> None:
    """Forget the process-wide governance (for tests), closing it."""
    global _default
    with _default_lock:
        previous, _default = _default, None
    if previous is not None:
        previous.store.close()
