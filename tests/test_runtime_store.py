"""The runtime against its store: fail closed, the backlog, processes sharing SQLite."""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from _workers import WORKFLOW, call_once, governed_calls
from ada_governance import (
    ExceptionPath,
    Governance,
    GovernanceUnavailable,
    MemoryStore,
    RunStatus,
    SQLiteStore,
    Stage,
    StoreError,
    Workflow,
    WorkflowPaused,
    configure,
    get_governance,
    governed_run,
    governed_workflow,
)
from ada_governance.records import AuditEvent, RunRecord


class FlakyStore(MemoryStore):
    """A memory store that can be switched off, failing every call while it is down."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def _fail(self) -> None:
        if self.down:
            raise StoreError("connection refused")

    def get_state(self, workflow: str) -> Any:
        self._fail()
        return super().get_state(workflow)

    def record_run(self, record: RunRecord, events: Sequence[AuditEvent] = ()) -> None:
        self._fail()
        super().record_run(record, events)


def test_store_down_refuses_with_governance_unavailable() -> None:
    """When the store cannot answer, the call is refused (fail closed) and the body never runs."""
    store = FlakyStore()
    governance = Governance(store, development=True)
    ran = []

    @governed_workflow(WORKFLOW, governance=governance)
    def work() -> None:
        ran.append(1)

    store.down = True
    with pytest.raises(GovernanceUnavailable, match="could not say whether") as caught:
        work()
    assert ran == []
    assert caught.value.workflow == "multi"
    assert caught.value.reason == "store_unavailable"
    assert governance.backlog == 1


def test_refusal_while_down_is_recorded_when_store_is_back() -> None:
    """The refusal held while the store was down reaches the ledger on the next write."""
    store = FlakyStore()
    governance = Governance(store, development=True)

    @governed_workflow(WORKFLOW, governance=governance)
    def work() -> str:
        return "ok"

    store.down = True
    with pytest.raises(GovernanceUnavailable):
        work()
    store.down = False
    assert work() == "ok"
    statuses = [row.status for row in governance.runs()]
    assert sorted(statuses) == sorted([RunStatus.REFUSED, RunStatus.SUCCEEDED])
    refused = governance.runs(status=RunStatus.REFUSED)[0]
    assert refused.refusal_reason == "store_unavailable"
    assert governance.backlog == 0
    assert [e.event for e in governance.audit_events(event="run_refused")] == ["run_refused"]


def test_store_failing_after_the_body_keeps_the_row_and_the_result() -> None:
    """If the ledger write fails after the body ran, the caller still gets its result
    and the row is held, then written once the store answers."""
    store = FlakyStore()
    governance = Governance(store, development=True)

    @governed_workflow(WORKFLOW, governance=governance)
    def work() -> str:
        store.down = True
        return "done"

    assert work() == "done"
    assert governance.backlog == 1
    store.down = False
    assert governance.flush_backlog() == 1
    (row,) = governance.runs()
    assert row.status is RunStatus.SUCCEEDED


def test_run_ungoverned_when_declared_and_recorded_later() -> None:
    """A workflow that declares run_ungoverned runs while the store is down, flagged."""
    store = FlakyStore()
    governance = Governance(store, development=True)
    workflow = WORKFLOW.model_copy(update={"on_store_unavailable": "run_ungoverned"})

    @governed_workflow(workflow, governance=governance)
    def work() -> str:
        return "ran anyway"

    store.down = True
    assert work() == "ran anyway"
    store.down = False
    assert governance.flush_backlog() == 1
    (row,) = governance.runs()
    assert row.ungoverned is True
    assert row.status is RunStatus.SUCCEEDED
    assert [e.event for e in governance.audit_events()] == ["ungoverned_run"]


def test_declaration_rejects_unknown_store_policy() -> None:
    """on_store_unavailable accepts only refuse or run_ungoverned."""
    from ada_governance import DeclarationError

    with pytest.raises(DeclarationError, match="on_store_unavailable"):
        Workflow(name="w", on_store_unavailable="ignore")


def test_backlog_is_bounded() -> None:
    """Past its limit the backlog drops the oldest rows rather than growing forever."""
    store = FlakyStore()
    governance = Governance(store, development=True, backlog_limit=3)

    @governed_workflow(WORKFLOW, governance=governance)
    def work() -> None:
        return None

    store.down = True
    for _ in range(5):
        with pytest.raises(GovernanceUnavailable):
            work()
    assert governance.backlog == 3


def test_exception_path_handler_failure_with_store_down_still_raises_original() -> None:
    """With the store down mid-run, a failing body still raises its own error."""
    store = FlakyStore()
    governance = Governance(store, development=True)
    workflow = WORKFLOW.model_copy(update={"exception_path": ExceptionPath(route_to="ops")})

    @governed_workflow(workflow, governance=governance)
    def work() -> None:
        store.down = True
        raise LookupError("original")

    with pytest.raises(LookupError, match="original"):
        work()
    store.down = False
    governance.flush_backlog()
    (row,) = governance.runs()
    assert row.status is RunStatus.FAILED


def test_default_governance_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no configuration, the store is the one ADA_GOVERNANCE_STORE names."""
    path = tmp_path / "env.db"
    monkeypatch.setenv("ADA_GOVERNANCE_STORE", f"sqlite:///{path}")
    governance = get_governance()
    assert governance.store.url == f"sqlite:///{path}"
    assert governance is get_governance()


def test_configure_replaces_the_default_used_by_decorators() -> None:
    """Decorators without an explicit governance use whatever configure set at call time."""

    @governed_workflow(WORKFLOW)
    def work() -> str:
        return "ok"

    first = configure(MemoryStore(), development=True)
    work()
    second = configure(MemoryStore(), development=True)
    work()
    work()
    assert len(second.runs()) == 2
    assert get_governance() is second
    with pytest.raises(StoreError):  # configure closed the previous store
        first.runs()


def test_default_governance_is_not_development(tmp_path: Path) -> None:
    """The default governance refuses drafts: development mode is opt-in."""
    from ada_governance import WorkflowNotRunnable

    @governed_workflow(WORKFLOW)
    def work() -> None:
        return None

    with pytest.raises(WorkflowNotRunnable, match="draft"):
        work()


def test_stage_change_needs_actor_and_reason() -> None:
    """set_stage refuses to record a change with no actor or reason."""
    from ada_governance import UsageError

    governance = Governance(MemoryStore())
    with pytest.raises(UsageError):
        governance.set_stage(WORKFLOW, Stage.PAUSED, actor=" ", reason="x")


def test_stored_stage_prevails_over_declared_stage() -> None:
    """A workflow declared in pilot but stored as paused refuses; resumed, it runs."""
    governance = Governance(MemoryStore())
    pilot = Workflow(
        name="declared_pilot",
        stage="pilot",
        owner={"name": "o"},
        trigger={"event": "job"},
        system_of_record="crm",
        metrics=[
            {
                "name": "m",
                "unit": "s",
                "direction": "decrease",
                "baseline": {"value": 1, "sample_size": 1, "measured_at": "2026-01-01"},
            }
        ],
        stop_rules=[{"kind": "kill_switch"}],
    )
    with governed_run(pilot, governance=governance):
        pass
    governance.set_stage(pilot, "paused", actor="dana", reason="complaint from a lead")
    refused = governed_run(pilot, governance=governance)
    with pytest.raises(WorkflowPaused, match="paused by dana: complaint from a lead"):
        refused.__enter__()
    governance.set_stage(pilot, "pilot", actor="dana", reason="fixed")
    with governed_run(pilot, governance=governance):
        pass
    assert [r.status for r in governance.runs()] == [
        RunStatus.SUCCEEDED,
        RunStatus.REFUSED,
        RunStatus.SUCCEEDED,
    ]
    assert [e.event for e in governance.audit_events()] == [
        "stage_changed",
        "run_refused",
        "stage_changed",
    ]


def _spawn() -> Any:
    return multiprocessing.get_context("spawn")


def test_four_processes_write_a_complete_ledger_to_one_sqlite_file(tmp_path: Path) -> None:
    """4 processes x 250 governed calls on one SQLite file leave 1,000 complete rows."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with _spawn().Pool(4) as pool:
        done = pool.starmap(governed_calls, [(url, worker, 250) for worker in range(4)])
    assert done == [250] * 4
    store = SQLiteStore(tmp_path / "shared.db")
    rows = store.list_runs("multi")
    store.close()
    assert len(rows) == 1000
    assert len({row.run_id for row in rows}) == 1000
    assert {row.trigger_id for row in rows} == {f"w{w}-{i}" for w in range(4) for i in range(250)}
    for row in rows:
        assert row.status is RunStatus.SUCCEEDED
        assert row.workflow == "multi"
        assert row.version == "1"
        assert row.trigger_type == "job"
        assert row.received_at <= row.started_at <= row.ended_at
        assert row.model_calls == 1
        assert row.output_tokens == 1
        assert row.cost == pytest.approx(0.001)
        assert row.outcome_ref == row.trigger_id
        assert row.outcomes == {"done": 1.0}


def test_pause_in_one_process_refuses_calls_in_another(tmp_path: Path) -> None:
    """A stage stored as paused by this process refuses the next call in another process."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    context = _spawn()
    with context.Pool(1) as pool:
        assert pool.apply(call_once, (url,)) == "ran"
        governance = Governance(url)
        governance.set_stage(WORKFLOW, "paused", actor="dana", reason="stop sends")
        assert pool.apply(call_once, (url,)) == "WorkflowPaused"
        governance.set_stage(WORKFLOW, "draft", actor="dana", reason="resume")
        assert pool.apply(call_once, (url,)) == "ran"
        governance.close()
