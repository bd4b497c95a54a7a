"""The PostgreSQL store: URLs, schema versions, and what many processes sharing one
database rely on (one budget, one review queue, one kill switch, one ledger), including
while the database goes away and comes back.

The contract every store meets runs against PostgreSQL in test_contract.py and
test_reviews_contract.py; these are what only a shared server can show. They need
``ADA_GOVERNANCE_TEST_PG_DSN`` (see conftest.py); each works in a schema of its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _pg import require_psycopg, with_host, with_query
from _pg_support import (
    BUDGET_RULE,
    BUDGET_WORKFLOW,
    PAUSABLE,
    WINDOW_START,
    Proxy,
    before_and_after_pause,
    call_pausable,
    claim_in_rounds,
    open_fresh,
    outbox_workflow,
    register_outbox,
    report,
    reserve_until_refused,
    run_actions_worker,
    spend_until_refused,
    try_claim,
)
from click.testing import CliRunner

from ada_governance import (
    ExecutionStatus,
    Governance,
    GovernanceUnavailable,
    TriggerEvent,
    Workflow,
    current_run,
    governed_workflow,
)
from ada_governance.cli import main
from ada_governance.records import AuditEvent, RunRecord, RunStatus, WorkflowState
from ada_governance.reviews import Review, ReviewKind, payload_hash
from ada_governance.storage import Store, StoreError, open_store
from ada_governance.workflow import Stage

UTC = dt.timezone.utc
PARIS = dt.timezone(dt.timedelta(hours=2))
T0 = dt.datetime(2025, 3, 1, 9, 30, 0, 123456, tzinfo=PARIS)
PROCESSES = 8


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def make_run(run_id: str, started: float = 0.0, **changes: Any) -> RunRecord:
    record = RunRecord(
        run_id=run_id,
        workflow="lead-followup",
        version="1",
        status=RunStatus.SUCCEEDED,
        trigger_id=f"trigger-{run_id}",
        trigger_type="form_fill",
        received_at=at(started - 5),
        started_at=at(started),
        ended_at=at(started + 2),
    )
    return dataclasses.replace(record, **changes) if changes else record


def ready_review(review_id: str, created: float = 0.0) -> Review:
    """An approval review approved by an ops reviewer: its action is ready to claim."""
    payload = {"to": "lead@example.com", "body": "hello"}
    review = Review(
        id=review_id,
        kind=ReviewKind.APPROVAL,
        workflow="lead-followup",
        version="1",
        run_id=f"run-{review_id}",
        action="send_email",
        requester="agent",
        payload=payload,
        payload_sha256=payload_hash(payload),
        original_payload=payload,
        roles=("ops",),
        approvals_required=1,
        requester_may_approve=False,
        on_timeout="reject",
        escalate_to=(),
        created_at=at(created),
        deadline=at(created + 3600),
    )
    return review.approve("olga", ("ops",), at(created + 1))


def admin(dsn: str) -> Any:
    """A connection of the test's own, outside any store."""
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


def spawn(target: Callable[..., Any], argument_lists: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Run ``target(*arguments)`` in one spawned process per argument list, at once;
    return each one's result by index. Fails if any process fails."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=report, args=(results, str(index), target, *arguments))
        for index, arguments in enumerate(argument_lists)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = dict(results.get(timeout=180) for _ in processes)
    finally:
        for process in processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
                process.join()
    assert [process.exitcode for process in processes] == [0] * len(processes), outcomes
    return outcomes


@pytest.fixture
def pg(pg_url: str) -> Iterator[Store]:
    opened = open_store(pg_url)
    yield opened
    opened.close()


@pytest.fixture
def psycopg_installed() -> None:
    """Skip (or, in CI, fail) without psycopg; no server needed."""
    require_psycopg()


# --- URLs and options ------------------------------------------------------------------------


@pytest.mark.usefixtures("psycopg_installed")
@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@db.invalid/governance",
        "postgres://db.invalid/g",
        "postgresql+psycopg://db.invalid/g",
    ],
)
def test_open_store_opens_postgresql_urls_without_connecting(url: str) -> None:
    """``postgresql://``, ``postgres://`` and ``postgresql+psycopg://`` open a
    `PostgresStore`; nothing connects until the first call."""
    from ada_governance.storage.postgres import PostgresStore

    store = open_store(url)
    assert isinstance(store, PostgresStore)
    assert store.url == url
    store.close()


@pytest.mark.usefixtures("psycopg_installed")
def test_url_options_and_password() -> None:
    """Pool and schema options come from the query (keyword arguments win); the shown URL
    has no password, and libpq's own parameters pass through."""
    from ada_governance.storage.postgres import PostgresStore

    url = (
        "postgresql://ana:s3cret@db.invalid:6543/gov?sslmode=require&schema=governance"
        "&pool_min=2&pool_max=20&pool_timeout=3.5&password=other"
    )
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    assert (store.pool_min, store.pool_max, store.pool_timeout) == (2, 20, 3.5)
    assert store.schema == "governance"
    assert "s3cret" not in store.url
    assert "other" not in store.url
    assert store.url.startswith("postgresql://ana@db.invalid:6543/gov?sslmode=require")
    assert "s3cret" not in repr(store)
    defaults = PostgresStore("postgresql://db.invalid/gov", pool_max=4, schema="x")
    assert (defaults.pool_min, defaults.pool_max, defaults.schema) == (1, 4, "x")
    assert defaults.url == "postgresql://db.invalid/gov?pool_max=4&schema=x"


@pytest.mark.usefixtures("psycopg_installed")
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("pool_min=x", "pool_min must be a whole number"),
        ("pool_min=5&pool_max=2", "pool_min <= pool_max"),
        ("pool_max=0", "pool_max >= 1"),
        ("pool_timeout=0", "pool_timeout must be a positive"),
        ("pool_timeout=soon", "pool_timeout must be a number"),
        ("schema=", "schema must be a PostgreSQL name"),
    ],
)
def test_malformed_options_raise_value_error(query: str, message: str) -> None:
    """A malformed option raises `ValueError` when the store is opened."""
    with pytest.raises(ValueError, match=message):
        open_store(f"postgresql://db.invalid/gov?{query}")


def test_import_without_psycopg_names_the_extra() -> None:
    """Without psycopg, importing the module raises `ImportError` naming the extra, and
    `open_store` raises `StoreError` saying the same."""
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from ada_governance.storage import StoreError, open_store\n"
        "try:\n"
        "    open_store('postgresql://db/g')\n"
        "except StoreError as error:\n"
        "    print('store-error:', error)\n"
        "try:\n"
        "    import ada_governance.storage.postgres\n"
        "except ImportError as error:\n"
        "    print('import-error:', error)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "store-error:" in out
    assert "import-error:" in out
    assert out.count("pip install 'ada-governance[postgres]'") == 2


# --- schema versions -------------------------------------------------------------------------


def test_schema_is_created_in_its_own_schema_at_the_current_version(
    pg_url: str, pg_schema: str, pg_admin_dsn: str
) -> None:
    """The first call creates the named schema and its tables at `SCHEMA_VERSION`;
    `migrate` then finds it current."""
    from ada_governance.storage.postgres import SCHEMA_VERSION, PostgresStore

    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        assert store.get_state("w") is None
        assert store.migrate() == (SCHEMA_VERSION, SCHEMA_VERSION)
    finally:
        store.close()
    with admin(pg_admin_dsn) as connection:
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (pg_schema,)
            )
        }
        [version] = connection.execute(f'SELECT version FROM "{pg_schema}".ada_schema').fetchall()
    assert tables == {"ada_schema", "workflow_state", "runs", "audit", "reviews", "reservations"}
    assert version == (SCHEMA_VERSION,)


def test_migrate_reports_what_it_did(pg_url: str) -> None:
    """`migrate` on a new schema creates it (0 to current), then finds it current."""
    from ada_governance.storage.postgres import SCHEMA_VERSION, PostgresStore

    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        assert store.migrate() == (0, SCHEMA_VERSION)
        assert store.migrate() == (SCHEMA_VERSION, SCHEMA_VERSION)
    finally:
        store.close()


def test_eight_processes_starting_at_once_migrate_once(
    pg_url: str, pg_schema: str, pg_admin_dsn: str
) -> None:
    """8 processes whose first call is at the same moment, on a schema that does not
    exist yet: every one works, and the schema is created once."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    outcomes = spawn(open_fresh, [(pg_url, start)] * PROCESSES)
    assert sorted(outcomes.values()) == ["ok"] * PROCESSES
    with admin(pg_admin_dsn) as connection:
        rows = connection.execute(f'SELECT version FROM "{pg_schema}".ada_schema').fetchall()
    assert len(rows) == 1


def test_newer_schema_is_refused(pg_url: str, pg_schema: str, pg_admin_dsn: str) -> None:
    """A schema written by a newer ada-governance is refused with `StoreError` saying to
    upgrade, on every call and by `migrate`; nothing is changed."""
    first = open_store(pg_url)
    first.record_run(make_run("r1"))
    first.close()
    with admin(pg_admin_dsn) as connection:
        connection.execute(f'UPDATE "{pg_schema}".ada_schema SET version = 99')
    store = open_store(pg_url)
    try:
        for _ in range(2):
            with pytest.raises(StoreError, match=r"schema version 99.*newer.*Upgrade"):
                store.list_runs()
        with pytest.raises(StoreError, match="Upgrade ada-governance"):
            store.migrate()
    finally:
        store.close()
    result = CliRunner().invoke(main, ["store", "migrate", "--store", pg_url])
    assert result.exit_code == 1
    assert "newer" in result.stderr
    with admin(pg_admin_dsn) as connection:
        assert connection.execute(f'SELECT version FROM "{pg_schema}".ada_schema').fetchall() == [
            (99,)
        ]


def test_cli_store_migrate(pg_url: str) -> None:
    """``ada-governance store migrate`` creates the schema, then says it is current."""
    runner = CliRunner()
    created = runner.invoke(main, ["store", "migrate", "--store", pg_url])
    assert created.exit_code == 0, created.output
    assert "created schema version 1" in created.stdout
    again = runner.invoke(main, ["store", "migrate", "--store", pg_url])
    assert again.exit_code == 0, again.output
    assert "schema version 1, up to date" in again.stdout


# --- values ----------------------------------------------------------------------------------


def test_datetimes_come_back_in_utc(pg: Store) -> None:
    """Datetimes given in any offset come back as the same instants, in UTC."""
    pg.record_run(make_run("r1"))
    [got] = pg.list_runs()
    assert got.started_at == at(0)
    assert got.started_at.tzinfo is not None
    assert got.started_at.utcoffset() == dt.timedelta(0)


def test_naive_datetimes_are_refused(pg: Store) -> None:
    """A naive datetime, written or used as a filter, raises `ValueError`."""
    naive = dt.datetime(2025, 3, 1, 9, 30)
    with pytest.raises(ValueError, match="timezone-aware"):
        pg.record_run(make_run("r1", started_at=naive))
    with pytest.raises(ValueError, match="timezone-aware"):
        pg.list_runs(since=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        pg.append_audit(AuditEvent(naive, "x", "w"))
    assert pg.list_runs() == []


def test_values_postgresql_cannot_hold_never_refuse_a_row(pg: Store) -> None:
    """NUL characters and non-finite floats, which PostgreSQL cannot store in text or
    jsonb, are written as U+FFFD and as strings: the ledger row is never refused."""
    record = make_run(
        "r1",
        error_message="bad\x00byte",
        annotations={"ratio": float("nan"), "top": float("inf"), "text": "a\x00b"},
    )
    pg.record_run(record, [AuditEvent(at(0), "run_failed", "lead-followup", data={"x": "\x00"})])
    [got] = pg.list_runs()
    assert got.error_message == "bad\ufffdbyte"
    assert got.annotations == {"ratio": "NaN", "top": "Infinity", "text": "a\ufffdb"}
    [event] = pg.list_audit()
    assert event.data == {"x": "\ufffd"}


# --- one budget ----------------------------------------------------------------------------


def test_eight_processes_share_one_budget(pg_url: str) -> None:
    """8 processes reserve shares of one budget until refused: together they hold exactly
    the budget, never more, and every run they recorded is in the ledger."""
    amount, limit = 0.25, 30.0  # exact in binary: sums are exact
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    outcomes = spawn(
        reserve_until_refused,
        [(pg_url, worker, start, amount, limit) for worker in range(PROCESSES)],
    )
    recorded = [run_id for runs in outcomes.values() for run_id in runs]
    store = open_store(pg_url)
    try:
        spent = store.reserved(BUDGET_WORKFLOW, BUDGET_RULE, WINDOW_START)
        runs = store.list_runs(BUDGET_WORKFLOW)
        events = store.list_audit(BUDGET_WORKFLOW, event="run_succeeded")
    finally:
        store.close()
    assert spent <= limit
    assert spent == len(recorded) * amount == limit
    assert sorted(run.run_id for run in runs) == sorted(recorded)
    assert sum(run.cost for run in runs) == spent
    assert len(events) == len(recorded)
    assert sum(1 for runs in outcomes.values() if runs) > 1  # they really did share it


def test_eight_processes_spend_one_budget_through_governed_calls(pg_url: str) -> None:
    """8 processes make governed calls on a workflow with a budget stop rule until each is
    refused: together they spend exactly the budget, never more; every run (those that
    ran and those refused) is in the ledger."""
    limit, per_run = 2.0, 0.03125  # exact in binary: 64 runs fit
    name = f"budget-{uuid.uuid4().hex[:8]}"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    outcomes = list(
        spawn(spend_until_refused, [(pg_url, name, limit, per_run, start)] * PROCESSES).values()
    )
    succeeded = [run_id for outcome in outcomes for run_id in outcome["succeeded"]]
    refused = [outcome["refused"] for outcome in outcomes]
    assert len(succeeded) == limit / per_run
    assert {outcome["reason"] for outcome in outcomes} <= {"StopRuleTripped", "WorkflowPaused"}
    assert [outcome["backlog"] for outcome in outcomes] == [0] * PROCESSES
    governance = Governance(pg_url, development=True)
    try:
        runs = governance.runs(name)
        ran = [run for run in runs if run.status is RunStatus.SUCCEEDED]
        assert sorted(run.run_id for run in ran) == sorted(succeeded)
        assert sum(run.cost for run in ran) == limit
        assert sorted(run.run_id for run in runs if run.status is RunStatus.REFUSED) == sorted(
            refused
        )
        assert len(runs) == len(succeeded) + PROCESSES
        state = governance.state(name)
        assert state is not None
        assert state.stage is Stage.PAUSED  # the budget tripped, for every process
    finally:
        governance.close()


def test_threads_share_one_budget(pg_url: str) -> None:
    """8 threads of one process, sharing its pool, never hold more than the budget."""
    from ada_governance.records import Reservation

    store = open_store(f"{pg_url}&pool_max=4")
    held: list[bool] = []
    start = threading.Barrier(8)

    def reserve(worker: int) -> None:
        start.wait()
        for index in range(40):
            reservation = Reservation(
                f"t{worker}-{index}", "w", "runs", 1.0, dt.datetime.now(UTC), None
            )
            held.append(store.reserve(reservation, 50.0, WINDOW_START))

    threads = [threading.Thread(target=reserve, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert held.count(True) == 50
        assert store.reserved("w", "runs", WINDOW_START) == 50.0
    finally:
        store.close()


# --- one review queue ------------------------------------------------------------------------

ROUNDS = 12


def test_eight_processes_race_to_claim_each_review_once(pg_url: str) -> None:
    """8 processes claim the same ready reviews, all at once for each: every review is
    claimed by exactly one, the 7 others get `NotClaimable`, and one claim is audited."""
    store = open_store(pg_url)
    review_ids = [f"race-{index:02d}" for index in range(ROUNDS)]
    for index, review_id in enumerate(review_ids):
        store.create_review(ready_review(review_id, index))
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    workers = [f"proc-{index}" for index in range(PROCESSES)]
    outcomes = spawn(claim_in_rounds, [(pg_url, worker, review_ids, start) for worker in workers])
    try:
        audit = store.list_audit(event="review_claimed")
        for index, review_id in enumerate(review_ids):
            by_worker = {workers[int(n)]: outcomes[n][index] for n in outcomes}
            assert sorted(by_worker.values()) == ["NotClaimable"] * 7 + ["claimed"], by_worker
            [winner] = [worker for worker, outcome in by_worker.items() if outcome == "claimed"]
            got = store.get_review(review_id)
            assert got is not None
            assert got.execution is ExecutionStatus.CLAIMED
            assert got.claimed_by == winner
            assert [e.actor for e in audit if e.data["review"] == review_id] == [winner]
        assert len(audit) == ROUNDS
    finally:
        store.close()


def test_eight_threads_race_to_claim(pg_url: str) -> None:
    """8 threads sharing one store's pool claim one ready review: exactly one wins."""
    store = open_store(f"{pg_url}&pool_max=8")
    try:
        for round_ in range(5):
            review_id = f"threads-{round_}"
            store.create_review(ready_review(review_id, round_))
            start = threading.Barrier(8)
            outcomes: dict[str, str] = {}

            def claim(
                worker: str,
                review_id: str = review_id,
                start: threading.Barrier = start,
                outcomes: dict[str, str] = outcomes,
            ) -> None:
                start.wait()
                outcomes[worker] = try_claim(store, review_id, worker)

            threads = [threading.Thread(target=claim, args=(f"t{n}",)) for n in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
            assert sorted(outcomes.values()) == ["NotClaimable"] * 7 + ["claimed"], outcomes
    finally:
        store.close()


def test_eight_workers_run_each_approved_action_exactly_once(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 worker processes run the same approved actions: each action runs exactly once."""
    from ada_governance import _actions

    name = f"outbox-{uuid.uuid4().hex[:8]}"
    outbox = tmp_path / "outbox.txt"
    governance = Governance(pg_url, development=True)
    deliver = register_outbox(name, tmp_path / "never.txt")

    @governed_workflow(outbox_workflow(name), governance=governance)
    def queue(index: int) -> Any:
        return deliver(line=f"line-{index}")

    handles = [queue(index) for index in range(16)]
    monkeypatch.delitem(_actions._REGISTRY, (name, "deliver"))  # only the workers run them
    for handle in handles:
        approved = governance.approve(handle.review_id, "olga", roles=["ops"])
        assert approved.execution is ExecutionStatus.READY
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    outcomes = spawn(run_actions_worker, [(pg_url, name, str(outbox), start)] * PROCESSES)
    try:
        lines = outbox.read_text(encoding="utf-8").splitlines()
        assert sorted(line.split()[0] for line in lines) == sorted(
            f"line-{index}" for index in range(16)
        )
        assert sum(outcomes.values()) == 16
        assert not (tmp_path / "never.txt").exists()
        finished = [governance.review(handle.review_id) for handle in handles]
        assert {review.execution for review in finished} == {ExecutionStatus.SUCCEEDED}
    finally:
        governance.close()


# --- one kill switch -------------------------------------------------------------------------


def test_a_pause_written_by_one_process_refuses_runs_in_all_others(pg_url: str) -> None:
    """Long-lived processes run a workflow; one process pauses it; each of the others'
    next governed call is refused with `WorkflowPaused`."""
    context = multiprocessing.get_context("spawn")
    others = 4
    ready = context.Barrier(others + 1)
    paused = context.Event()
    processes_done: dict[str, Any] = {}

    def pause_when_ready() -> None:
        ready.wait(timeout=120)
        governance = Governance(pg_url, development=True)
        try:
            governance.set_stage(PAUSABLE, "paused", actor="ops@example.com", reason="incident")
        finally:
            governance.close()
        paused.set()

    pauser = threading.Thread(target=pause_when_ready)
    pauser.start()
    try:
        processes_done.update(spawn(before_and_after_pause, [(pg_url, ready, paused)] * others))
    finally:
        pauser.join(timeout=120)
    assert sorted(processes_done.values()) == [("ran", "WorkflowPaused")] * others
    governance = Governance(pg_url, development=True)
    try:
        assert call_pausable(governance) == "WorkflowPaused"
        state = governance.state(PAUSABLE)
        assert state is not None
        assert state.stage is Stage.PAUSED
        refused = governance.runs(PAUSABLE, status=RunStatus.REFUSED)
        assert len(refused) == others + 1
    finally:
        governance.close()


# --- the database goes away ------------------------------------------------------------------

WORK = Workflow(name="steady", trigger={"event": "job"})


class Calls:
    """A governed function on ``governance``, and the ids of the runs it started."""

    def __init__(self, governance: Governance, body: Callable[[], None] = lambda: None) -> None:
        self.governance = governance
        self.ran: list[str] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()

        @governed_workflow(WORK, governance=governance)
        def work(event: TriggerEvent) -> str:
            run_id = current_run().id
            with self._lock:
                self.ran.append(run_id)
            body()
            return run_id

        self._work = work

    def call(self) -> str:
        """``ran`` or ``refused`` (GovernanceUnavailable); anything else fails the test."""
        try:
            self._work(TriggerEvent.now("job"))
        except GovernanceUnavailable as error:
            with self._lock:
                self.refused.append(str(error.run_id))
            return "refused"
        return "ran"

    def settle(self, timeout: float = 20.0) -> None:
        """Call until calls run again and the backlog is written, or fail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.call() == "ran" and self.governance.backlog == 0:
                return
            time.sleep(0.1)
        pytest.fail(f"calls did not recover within {timeout} s")

    def assert_nothing_lost(self) -> None:
        """Every run that started, and every refusal, is in the ledger, once."""
        ledger = [run.run_id for run in self.governance.runs(WORK)]
        assert len(ledger) == len(set(ledger))
        assert set(self.ran) | set(self.refused) == set(ledger)
        statuses = {run.run_id: run.status for run in self.governance.runs(WORK)}
        assert {statuses[run_id] for run_id in self.refused} <= {RunStatus.REFUSED}
        assert {statuses[run_id] for run_id in self.ran} == {RunStatus.SUCCEEDED}


@pytest.mark.usefixtures("psycopg_installed")
def test_unreachable_database_refuses_governed_calls_at_once() -> None:
    """A governance on a port nothing listens on refuses each governed call with
    `GovernanceUnavailable`, quickly, naming the server; the body never runs; the
    refusals wait in the backlog."""
    governance = Governance("postgresql://postgres@127.0.0.1:1/test", development=True)
    calls = Calls(governance)
    try:
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(GovernanceUnavailable, match=r"127\.0\.0\.1:1/test"):
                calls._work(TriggerEvent.now("job"))
            assert time.monotonic() - started < 3.0
        assert calls.ran == []
        assert governance.backlog == 3
        with pytest.raises(StoreError, match="cannot be reached"):
            governance.store.get_state("steady")
    finally:
        governance.store.close()


def terminate(dsn: str, application: str) -> int:
    """End every session of ``application`` from the server side; return how many."""
    with admin(dsn) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application,),
        ).fetchall()
    return len(rows)


def test_connections_terminated_mid_run_lose_nothing(pg_url: str, pg_admin_dsn: str) -> None:
    """The server ends the pool's connections (pg_terminate_backend) while a run is in
    progress, and again between calls: no call hangs or fails otherwise than refused,
    every run is in the ledger, and calls go on without restarting anything."""
    application = f"ada-test-{uuid.uuid4().hex[:8]}"
    governance = Governance(with_query(pg_url, application_name=application), development=True)
    kill = threading.Event()

    def body() -> None:
        if kill.is_set():
            kill.clear()
            assert terminate(pg_admin_dsn, application) >= 1

    calls = Calls(governance, body)
    try:
        assert [calls.call() for _ in range(3)] == ["ran"] * 3
        kill.set()  # the next run ends its store's sessions while it runs
        assert calls.call() == "ran"
        assert calls.call() in ("ran", "refused")
        assert terminate(pg_admin_dsn, application) >= 1  # and between calls
        assert calls.call() in ("ran", "refused")
        calls.settle()
        assert [calls.call() for _ in range(3)] == ["ran"] * 3
        calls.assert_nothing_lost()
        assert len(calls.ran) >= 9
    finally:
        governance.close()


def test_repeated_terminations_under_load_lose_nothing(pg_url: str, pg_admin_dsn: str) -> None:
    """4 threads make governed calls while the server ends the pool's sessions every
    0.2 s: each call runs or is refused, and the ledger ends with every one of them."""
    application = f"ada-test-{uuid.uuid4().hex[:8]}"
    url = with_query(pg_url, application_name=application, pool_max="4")
    governance = Governance(url, development=True)
    calls = Calls(governance)
    stop = threading.Event()
    outcomes: list[str] = []

    def hammer() -> None:
        while not stop.is_set():
            outcomes.append(calls.call())

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(8):
            time.sleep(0.2)
            terminate(pg_admin_dsn, application)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    try:
        assert not any(thread.is_alive() for thread in threads)
        assert set(outcomes) <= {"ran", "refused"}
        assert outcomes.count("ran") > 20
        calls.settle()
        calls.assert_nothing_lost()
    finally:
        governance.close()


def test_database_down_and_back_without_restarting(pg_url: str, pg_admin_dsn: str) -> None:
    """The database goes away (new connections refused, open ones cut) and comes back:
    meanwhile calls are refused at once; afterwards they run again in the same process,
    and the refusals held in memory reach the ledger."""
    import psycopg.conninfo

    params = psycopg.conninfo.conninfo_to_dict(pg_admin_dsn)
    host = str(params.get("host") or "")
    if not host or host.startswith("/"):
        pytest.skip("the proxy needs a TCP host in ADA_GOVERNANCE_TEST_PG_DSN")
    proxy = Proxy(host, int(params.get("port") or 5432))
    governance = Governance(with_host(pg_url, "127.0.0.1", proxy.port), development=True)
    calls = Calls(governance)
    try:
        assert [calls.call() for _ in range(3)] == ["ran"] * 3
        proxy.down()
        for _ in range(5):
            started = time.monotonic()
            assert calls.call() == "refused"
            assert time.monotonic() - started < 3.0
        assert len(calls.ran) == 3
        assert governance.backlog == 5
        proxy.up()
        calls.settle()
        assert [calls.call() for _ in range(3)] == ["ran"] * 3
        calls.assert_nothing_lost()
        assert len(calls.refused) >= 5
    finally:
        governance.close()
        proxy.close()


def test_a_call_that_finds_every_connection_busy_fails_after_pool_timeout(pg_url: str) -> None:
    """With ``pool_max=1`` and its one connection held, another call waits
    ``pool_timeout`` and fails with `StoreError` saying so; then calls work again."""
    store = open_store(with_query(pg_url, pool_max="1", pool_timeout="0.5"))
    store.create_review(ready_review("r1"))
    holding, release = threading.Event(), threading.Event()

    def hold(review: Review) -> Review:
        holding.set()
        release.wait(timeout=30)
        return review

    holder = threading.Thread(target=store.update_review, args=("r1", hold))
    holder.start()
    try:
        assert holding.wait(timeout=30)
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"no connection came free within 0\.5 s"):
            store.get_state("w")
        assert 0.4 < time.monotonic() - started < 5.0
    finally:
        release.set()
        holder.join(timeout=30)
    try:
        assert store.get_state("w") is None
    finally:
        store.close()


def test_two_stores_on_one_schema_see_each_others_writes(pg_url: str) -> None:
    """Two stores on one schema: what one writes, the other reads on its next call."""
    one, two = open_store(pg_url), open_store(pg_url)
    try:
        assert two.get_state("w") is None
        one.set_state(
            WorkflowState("w", Stage.PAUSED, at(0), "ana", "why"), AuditEvent(at(0), "x", "w")
        )
        got = two.get_state("w")
        assert got is not None
        assert got.stage is Stage.PAUSED
    finally:
        one.close()
        two.close()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_store_opened_before_fork_works_in_the_child(pg_url: str) -> None:
    """A store used before ``fork`` works in the child, which opens its own pool and
    leaves the parent's connections alone; the parent's store still works after."""
    store = open_store(pg_url)
    store.record_run(make_run("parent-1"))
    child = multiprocessing.get_context("fork").Process(target=_record_in_child, args=(store,))
    child.start()
    child.join(timeout=60)
    try:
        assert child.exitcode == 0
        store.record_run(make_run("parent-2", 2))
        assert [r.run_id for r in store.list_runs()] == ["parent-1", "child", "parent-2"]
    finally:
        store.close()


def _record_in_child(store: Store) -> None:
    store.record_run(make_run("child", 1))
    store.close()
    os._exit(0)
