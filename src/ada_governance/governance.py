"""The governance object: which store, which clock, and the process-wide default."""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import audit
from .clock import Clock, SystemClock
from .records import AuditEvent, RunRecord, RunStatus, WorkflowState
from .storage import Store, default_store_url, open_store
from .telemetry import Telemetry
from .workflow import Stage, Workflow

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["Governance", "configure", "get_governance"]


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
