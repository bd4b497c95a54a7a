"""The storage contract: every backend gives the same answers to the same calls."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ada_governance.records import AuditEvent, RunRecord, RunStatus, WorkflowState
from ada_governance.storage import MemoryStore, SQLiteStore, Store, StoreError, open_store
from ada_governance.workflow import Stage

# Not UTC, with microseconds: stores must keep the instant, to the microsecond.
PARIS = dt.timezone(dt.timedelta(hours=2))
T0 = dt.datetime(2025, 3, 1, 9, 30, 0, 123456, tzinfo=PARIS)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def make_run(
    run_id: str,
    started: float = 0.0,
    *,
    workflow: str = "lead-followup",
    status: RunStatus = RunStatus.SUCCEEDED,
) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        workflow=workflow,
        version="1",
        status=status,
        trigger_id=f"trigger-{run_id}",
        trigger_type="form_fill",
        received_at=at(started - 5),
        started_at=at(started),
        ended_at=at(started + 2),
    )


def full_run() -> RunRecord:
    """A run with every field away from its default."""
    return RunRecord(
        run_id="run-full",
        workflow="lead-followup",
        version="2.1",
        status=RunStatus.FAILED,
        trigger_id="form-991",
        trigger_type="form_fill",
        received_at=at(-60.5),
        started_at=at(0.000001),
        ended_at=dt.datetime(2025, 3, 1, 7, 31, 2, 5, tzinfo=dt.timezone.utc),
        parent_run_id="run-parent",
        error_type="TimeoutError",
        error_message="the model did not answer in 30 s",
        refusal_reason="over budget",
        fallback_used=True,
        ungoverned=True,
        model_calls=3,
        input_tokens=1200,
        output_tokens=345,
        cost=0.0123,
        outcome_ref="crm://leads/42",
        outcomes={"meeting_booked": 1.0, "reply_minutes": 12.5},
        annotations={"region": "emea", "score": 0.75, "tags": ["a", "b"], "nested": {"n": 1}},
    )


def event(
    name: str, seconds: float = 0.0, *, workflow: str = "lead-followup", **data: Any
) -> AuditEvent:
    return AuditEvent(
        at=at(seconds), event=name, workflow=workflow, run_id=None, actor="tester", data=data
    )


def without_id(events: list[AuditEvent]) -> list[AuditEvent]:
    return [dataclasses.replace(e, id=None) for e in events]


@pytest.fixture(params=["memory", "sqlite", "postgres"], ids=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store
    if request.param == "memory":
        opened = MemoryStore()
    elif request.param == "sqlite":
        opened = SQLiteStore(tmp_path / "governance.db")
    else:  # a schema of this test's own, dropped afterwards (see conftest.py)
        opened = open_store(request.getfixturevalue("pg_url"))
    yield opened
    opened.close()


# --- workflow state ----------------------------------------------------------------------


def test_state_is_none_until_set(store: Store) -> None:
    """A workflow whose state was never stored has none."""
    assert store.get_state("lead-followup") is None


def test_set_state_round_trips(store: Store) -> None:
    """The stored state comes back with every field equal and an aware datetime."""
    state = WorkflowState("lead-followup", Stage.PAUSED, at(1.5), "ana@example.com", "too slow")
    store.set_state(state, event("stage_changed"))
    got = store.get_state("lead-followup")
    assert got == state
    assert got is not None
    assert got.stage is Stage.PAUSED
    assert got.changed_at.utcoffset() is not None
    assert store.get_state("other") is None


def test_set_state_replaces_the_previous_state(store: Store) -> None:
    """Setting a workflow's state again replaces it, and leaves other workflows alone."""
    store.set_state(WorkflowState("a", Stage.PILOT, at(0), "ana", "start"), event("x"))
    store.set_state(WorkflowState("b", Stage.DRAFT, at(0), "bo", "new"), event("x"))
    later = WorkflowState("a", Stage.PRODUCTION, at(60), "ana", "scale")
    store.set_state(later, event("x"))
    assert store.get_state("a") == later
    assert store.get_state("b") == WorkflowState("b", Stage.DRAFT, at(0), "bo", "new")


def test_set_state_writes_its_audit_event(store: Store) -> None:
    """`set_state` appends its audit event, which comes back with an id."""
    change = event("stage_changed", 3, previous="pilot", stage="paused")
    store.set_state(WorkflowState("lead-followup", Stage.PAUSED, at(3), "ana", "why"), change)
    [listed] = store.list_audit()
    assert isinstance(listed.id, int)
    assert dataclasses.replace(listed, id=None) == change


# --- the run ledger ----------------------------------------------------------------------


def test_record_run_round_trips_every_field(store: Store) -> None:
    """A recorded run lists back equal in every field, enums and aware datetimes included."""
    record = full_run()
    store.record_run(record)
    [listed] = store.list_runs()
    assert listed == record
    assert listed.status is RunStatus.FAILED
    assert all(
        value.utcoffset() is not None
        for value in (listed.received_at, listed.started_at, listed.ended_at)
    )
    assert listed.outcomes == {"meeting_booked": 1.0, "reply_minutes": 12.5}
    assert listed.annotations == record.annotations


def test_record_run_keeps_defaults(store: Store) -> None:
    """A run with only the required fields lists back with the same defaults."""
    record = make_run("r1")
    store.record_run(record)
    assert store.list_runs() == [record]


def test_changing_a_record_after_recording_it_leaves_the_ledger_alone(store: Store) -> None:
    """The ledger keeps the run as it was recorded, not the caller's object."""
    record = full_run()
    store.record_run(record)
    record.outcomes["meeting_booked"] = 99.0
    record.annotations["region"] = "apac"
    [listed] = store.list_runs()
    assert listed.outcomes["meeting_booked"] == 1.0
    assert listed.annotations["region"] == "emea"


def test_record_run_appends_its_events(store: Store) -> None:
    """The audit events given with a run are appended, in order, with the run."""
    events = [event("run_failed", 1, error="boom"), event("exception_routed", 2, to="ops")]
    store.record_run(make_run("r1"), events)
    assert without_id(store.list_audit()) == events


def test_duplicate_run_id_is_ignored(store: Store) -> None:
    """Recording a run again (a retried write) changes nothing, appends no events and
    raises nothing."""
    first = make_run("r1", status=RunStatus.SUCCEEDED)
    store.record_run(first, [event("run_succeeded")])
    store.record_run(make_run("r1", status=RunStatus.FAILED), [event("run_failed")])
    assert store.list_runs() == [first]
    assert [e.event for e in store.list_audit()] == ["run_succeeded"]


def test_list_runs_is_oldest_first(store: Store) -> None:
    """Runs list by start time, and runs starting together in the order they were recorded."""
    for run_id, started in [("c", 3), ("a", 1), ("tie-1", 2), ("b", 0.000001), ("tie-2", 2)]:
        store.record_run(make_run(run_id, started))
    assert [r.run_id for r in store.list_runs()] == ["b", "a", "tie-1", "tie-2", "c"]


RUN_FILTERS = [
    pytest.param({}, ["r0", "r1", "r2", "r3", "r4"], id="none"),
    pytest.param({"workflow": "lead-followup"}, ["r0", "r2", "r3", "r4"], id="workflow"),
    pytest.param({"workflow": "unknown"}, [], id="unknown-workflow"),
    pytest.param({"since": at(2)}, ["r2", "r3", "r4"], id="since-inclusive"),
    pytest.param({"since": at(2.000001)}, ["r3", "r4"], id="since-to-the-microsecond"),
    pytest.param({"until": at(2)}, ["r0", "r1"], id="until-exclusive"),
    pytest.param(
        {"since": at(1).astimezone(dt.timezone.utc), "until": at(3).astimezone(dt.timezone.utc)},
        ["r1", "r2"],
        id="since-until-in-another-timezone",
    ),
    pytest.param({"status": RunStatus.FAILED}, ["r1", "r3"], id="status"),
    pytest.param({"limit": 2}, ["r0", "r1"], id="limit-keeps-the-oldest"),
    pytest.param({"limit": 0}, [], id="limit-zero"),
    pytest.param(
        {"workflow": "lead-followup", "since": at(1), "status": RunStatus.SUCCEEDED, "limit": 1},
        ["r2"],
        id="combined",
    ),
]


@pytest.mark.parametrize(("filters", "expected"), RUN_FILTERS)
def test_list_runs_filters(store: Store, filters: dict[str, Any], expected: list[str]) -> None:
    """`list_runs` filters by workflow, start (since in, until out), status and limit."""
    runs = [
        make_run("r3", 3, status=RunStatus.FAILED),
        make_run("r0", 0),
        make_run("r1", 1, workflow="invoice-triage", status=RunStatus.FAILED),
        make_run("r4", 4, status=RunStatus.REFUSED),
        make_run("r2", 2),
    ]
    for run in runs:
        store.record_run(run)
    assert [r.run_id for r in store.list_runs(**filters)] == expected


# --- the audit log -----------------------------------------------------------------------


def test_list_audit_is_in_append_order_with_increasing_ids(store: Store) -> None:
    """Audit events list in the order appended, not by time, with increasing ids."""
    appended = [event("late", 9), event("early", -9), event("middle", 0)]
    for e in appended:
        store.append_audit(e)
    listed = store.list_audit()
    assert without_id(listed) == appended
    ids = [e.id for e in listed]
    assert all(isinstance(i, int) for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


AUDIT_FILTERS = [
    pytest.param({}, ["e0", "e1", "e2", "e3"], id="none"),
    pytest.param({"workflow": "lead-followup"}, ["e0", "e2", "e3"], id="workflow"),
    pytest.param({"event": "stage_changed"}, ["e1", "e3"], id="event"),
    pytest.param({"since": at(2)}, ["e2", "e3"], id="since-inclusive"),
    pytest.param(
        {"since": at(2).astimezone(dt.timezone.utc)}, ["e2", "e3"], id="since-another-timezone"
    ),
    pytest.param({"limit": 3}, ["e0", "e1", "e2"], id="limit-keeps-the-first"),
    pytest.param(
        {"workflow": "lead-followup", "event": "run_failed", "since": at(1), "limit": 5},
        ["e2"],
        id="combined",
    ),
]


@pytest.mark.parametrize(("filters", "expected"), AUDIT_FILTERS)
def test_list_audit_filters(store: Store, filters: dict[str, Any], expected: list[str]) -> None:
    """`list_audit` filters by workflow, event, time (since inclusive) and limit."""
    store.append_audit(event("run_failed", 0, id="e0"))
    store.append_audit(event("stage_changed", 1, workflow="invoice-triage", id="e1"))
    store.append_audit(event("run_failed", 2, id="e2"))
    store.append_audit(event("stage_changed", 3, id="e3"))
    assert [e.data["id"] for e in store.list_audit(**filters)] == expected


def test_events_from_every_write_share_one_log(store: Store) -> None:
    """Events from `set_state`, `record_run` and `append_audit` interleave in call order."""
    store.append_audit(event("first"))
    store.record_run(make_run("r1"), [event("second"), event("third")])
    store.set_state(WorkflowState("lead-followup", Stage.PAUSED, at(0), "a", "b"), event("fourth"))
    store.append_audit(event("fifth"))
    listed = store.list_audit()
    assert [e.event for e in listed] == ["first", "second", "third", "fourth", "fifth"]
    assert [e.id for e in listed] == sorted(e.id for e in listed if e.id is not None)


# --- async twins and closing -------------------------------------------------------------


def test_async_twins_give_the_same_answers(store: Store) -> None:
    """Each async twin does what its sync method does."""
    state = WorkflowState("lead-followup", Stage.PILOT, at(0), "ana", "start")

    async def scenario() -> tuple[Any, ...]:
        assert await store.aget_state("lead-followup") is None
        await store.aset_state(state, event("stage_changed"))
        await store.arecord_run(full_run(), [event("run_failed", 1)])
        await store.arecord_run(make_run("r2", 5), ())
        await store.arecord_run(make_run("r2", 5, status=RunStatus.FAILED), [event("ignored")])
        await store.aappend_audit(event("note", 2))
        return (
            await store.aget_state("lead-followup"),
            await store.alist_runs(),
            await store.alist_runs("lead-followup", since=at(1), until=at(6), limit=5),
            await store.alist_runs(status=RunStatus.FAILED),
            await store.alist_audit(),
            await store.alist_audit("lead-followup", event="note", since=at(0), limit=1),
        )

    answers = asyncio.run(scenario())
    assert answers == (
        store.get_state("lead-followup"),
        store.list_runs(),
        store.list_runs("lead-followup", since=at(1), until=at(6), limit=5),
        store.list_runs(status=RunStatus.FAILED),
        store.list_audit(),
        store.list_audit("lead-followup", event="note", since=at(0), limit=1),
    )
    assert answers[0] == state
    assert [r.run_id for r in answers[1]] == ["run-full", "r2"]
    assert [e.event for e in answers[4]] == ["stage_changed", "run_failed", "note"]


CALLS: list[Any] = [
    pytest.param(lambda s: s.get_state("lead-followup"), id="get_state"),
    pytest.param(
        lambda s: s.set_state(WorkflowState("w", Stage.PAUSED, at(0), "a", "b"), event("x")),
        id="set_state",
    ),
    pytest.param(lambda s: s.record_run(make_run("r1")), id="record_run"),
    pytest.param(lambda s: s.append_audit(event("x")), id="append_audit"),
    pytest.param(lambda s: s.list_runs(), id="list_runs"),
    pytest.param(lambda s: s.list_audit(), id="list_audit"),
    pytest.param(lambda s: asyncio.run(s.aget_state("w")), id="aget_state"),
    pytest.param(lambda s: asyncio.run(s.arecord_run(make_run("r1"))), id="arecord_run"),
]


@pytest.mark.parametrize("call", CALLS)
def test_closed_store_raises_store_error(store: Store, call: Callable[[Store], object]) -> None:
    """Every call on a closed store raises `StoreError`, even after earlier use."""
    store.record_run(make_run("r0"))
    store.close()
    with pytest.raises(StoreError, match="closed"):
        call(store)


def test_close_twice_is_harmless(store: Store) -> None:
    """Closing a closed store, sync or async, raises nothing."""
    store.close()
    store.close()
    asyncio.run(store.aclose())
