"""The SQLite store: a file that outlives the process and is shared by many; and `open_store`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import sqlite3
import threading
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from ada_governance.records import AuditEvent, RunRecord, RunStatus, WorkflowState
from ada_governance.reviews import ExecutionStatus, Review, ReviewKind, payload_hash
from ada_governance.storage import (
    MemoryStore,
    SQLiteStore,
    StoreError,
    default_store_url,
    open_store,
)
from ada_governance.storage.sqlite import _MIGRATIONS, SCHEMA_VERSION
from ada_governance.workflow import Stage

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def make_run(run_id: str, started: float = 0.0, *, workflow: str = "lead-followup") -> RunRecord:
    return RunRecord(
        run_id=run_id,
        workflow=workflow,
        version="1",
        status=RunStatus.SUCCEEDED,
        trigger_id=f"trigger-{run_id}",
        trigger_type="form_fill",
        received_at=T0 + dt.timedelta(seconds=started - 1),
        started_at=T0 + dt.timedelta(seconds=started),
        ended_at=T0 + dt.timedelta(seconds=started + 1),
    )


def busy_run(worker: int, index: int) -> RunRecord:
    """The run a concurrent writer records: every field set, so losing one shows."""
    return dataclasses.replace(
        make_run(f"w{worker}-{index}", worker * 1000 + index, workflow=f"wf-{worker}"),
        status=RunStatus.FAILED if index % 2 else RunStatus.SUCCEEDED,
        parent_run_id=f"parent-{worker}",
        error_type="ValueError",
        error_message=f"error {index}",
        refusal_reason="none",
        fallback_used=True,
        model_calls=index,
        input_tokens=index * 10,
        output_tokens=index * 3,
        cost=index / 1000,
        outcome_ref=f"crm://{worker}/{index}",
        outcomes={"booked": float(index % 2)},
        annotations={"worker": worker, "index": index},
    )


def busy_event(worker: int, index: int) -> AuditEvent:
    return AuditEvent(
        at=T0, event="run_recorded", workflow=f"wf-{worker}", run_id=f"w{worker}-{index}"
    )


def record_many(path: str, worker: int, count: int, start: Barrier) -> None:
    """Record ``count`` runs from a separate process, once every process is ready."""
    store = SQLiteStore(path)
    start.wait()
    for index in range(count):
        store.record_run(busy_run(worker, index), [busy_event(worker, index)])
    store.close()


def record_after_fork(store: SQLiteStore) -> None:
    # The parent's connection must not be used in the child: a fresh one is opened.
    assert store._local.connection is None
    store.record_run(make_run("from-child"))
    store.close()


# --- a file ------------------------------------------------------------------------------


def test_data_survives_reopening(tmp_path: Path) -> None:
    """State, runs and audit events written by one store are read by a later one."""
    path = tmp_path / "governance.db"
    state = WorkflowState("lead-followup", Stage.PAUSED, T0, "ana", "too slow")
    first = SQLiteStore(path)
    first.set_state(state, AuditEvent(T0, "stage_changed", "lead-followup"))
    first.record_run(make_run("r1"))
    first.close()
    second = SQLiteStore(path)
    try:
        assert second.get_state("lead-followup") == state
        assert second.list_runs() == [make_run("r1")]
        assert [e.event for e in second.list_audit()] == ["stage_changed"]
    finally:
        second.close()


def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    """Two stores open on one file each read what the other wrote, immediately."""
    one, two = SQLiteStore(tmp_path / "g.db"), SQLiteStore(tmp_path / "g.db")
    try:
        assert one.list_runs() == two.list_runs() == []
        one.record_run(make_run("from-one"))
        assert [r.run_id for r in two.list_runs()] == ["from-one"]
        two.set_state(
            WorkflowState("w", Stage.PILOT, T0, "bo", "go"), AuditEvent(T0, "stage_changed", "w")
        )
        state = one.get_state("w")
        assert state is not None
        assert state.stage is Stage.PILOT
    finally:
        one.close()
        two.close()


def test_datetimes_come_back_in_utc(tmp_path: Path) -> None:
    """Datetimes in any timezone come back as the same instant, in UTC."""
    store = SQLiteStore(tmp_path / "g.db")
    tokyo = dt.timezone(dt.timedelta(hours=9))
    record = dataclasses.replace(make_run("r1"), started_at=T0.astimezone(tokyo))
    store.record_run(record)
    [listed] = store.list_runs()
    store.close()
    assert listed.started_at == T0
    assert listed.started_at.tzinfo == UTC


def test_naive_datetime_is_refused(tmp_path: Path) -> None:
    """A naive datetime is refused rather than guessed at."""
    store = SQLiteStore(tmp_path / "g.db")
    record = dataclasses.replace(make_run("r1"), started_at=dt.datetime(2025, 3, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record_run(record)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.list_runs(since=dt.datetime(2025, 3, 1))
    assert store.list_runs() == []
    store.close()


def test_run_missing_a_required_field_fails_loudly(tmp_path: Path) -> None:
    """A run with a required field missing raises `StoreError`; it is not silently dropped."""
    store = SQLiteStore(tmp_path / "g.db")
    record = dataclasses.replace(make_run("r1"), trigger_id=None)
    with pytest.raises(StoreError, match="NOT NULL"):
        store.record_run(record, [AuditEvent(T0, "run_succeeded", "lead-followup")])
    assert store.list_runs() == []
    assert store.list_audit() == []
    store.close()


def test_runs_table_has_a_column_per_record_field(tmp_path: Path) -> None:
    """The ledger table holds every field of `RunRecord`, in order."""
    SQLiteStore(tmp_path / "g.db").get_state("w")
    with sqlite3.connect(tmp_path / "g.db") as raw:
        columns = [row[1] for row in raw.execute("PRAGMA table_info(runs)")]
    assert columns == [field.name for field in dataclasses.fields(RunRecord)]


def test_wal_mode_is_on(tmp_path: Path) -> None:
    """The file is in WAL mode, so readers never block the writer."""
    store = SQLiteStore(tmp_path / "g.db")
    store.get_state("w")
    store.close()
    raw = sqlite3.connect(tmp_path / "g.db")
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()


def schema_version(path: Path) -> int:
    raw = sqlite3.connect(path)
    try:
        return int(raw.execute("SELECT max(version) FROM ada_schema").fetchone()[0])
    finally:
        raw.close()


def test_new_file_is_at_the_current_schema_version(tmp_path: Path) -> None:
    """A new file is created at the current schema, version 3, with every table."""
    assert SCHEMA_VERSION == len(_MIGRATIONS) == 3
    SQLiteStore(tmp_path / "g.db").get_state("w")
    assert schema_version(tmp_path / "g.db") == 3
    with sqlite3.connect(tmp_path / "g.db") as raw:
        columns = [row[1] for row in raw.execute("PRAGMA table_info(reviews)")]
        indexes = {row[1] for row in raw.execute("PRAGMA index_list(reviews)")}
    assert columns == [
        "id",
        "workflow",
        "status",
        "execution",
        "created_at",
        "deadline",
        "roles",
        "data",
    ]
    assert {"reviews_workflow_status", "reviews_execution"} <= indexes


def test_schema_1_file_migrates_to_the_current_version_on_open(tmp_path: Path) -> None:
    """A file written at schema 1 (runs, state, audit; no reviews) is migrated to 2 when
    a store opens it: its data is kept and reviews can be created."""
    path = tmp_path / "g.db"
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        for statement in _MIGRATIONS[0]:
            raw.execute(statement)
        raw.execute("CREATE TABLE ada_schema (version INTEGER NOT NULL)")
        raw.execute("INSERT INTO ada_schema (version) VALUES (1)")
        raw.execute("COMMIT")
    finally:
        raw.close()
    # Data written by the version-1 code, before the upgrade.
    old = SQLiteStore(path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("ada_governance.storage.sqlite.SCHEMA_VERSION", 1)
        patch.setattr("ada_governance.storage.sqlite._MIGRATIONS", _MIGRATIONS[:1])
        old.record_run(make_run("r-before"), [AuditEvent(T0, "run_succeeded", "lead-followup")])
    old.close()
    assert schema_version(path) == 1
    payload = {"to": "lead@example.com"}
    review = Review(
        id="rev-1",
        kind=ReviewKind.APPROVAL,
        workflow="lead-followup",
        version="1",
        run_id="r-after",
        action="send_email",
        requester="agent",
        payload=payload,
        payload_sha256=payload_hash(payload),
        original_payload=payload,
        roles=("sales-manager",),
        approvals_required=1,
        requester_may_approve=False,
        on_timeout="reject",
        escalate_to=(),
        created_at=T0,
        deadline=T0 + dt.timedelta(hours=1),
    )
    store = SQLiteStore(path)
    try:
        store.create_review(review, [AuditEvent(T0, "review_requested", "lead-followup")])
        assert store.get_review("rev-1") == review
        assert store.list_reviews(role="sales-manager") == [review]
        approved = store.update_review(
            "rev-1", lambda r: r.approve("ana", ("sales-manager",), T0 + dt.timedelta(minutes=1))
        )
        assert approved.execution is ExecutionStatus.READY
        assert store.list_runs() == [make_run("r-before")]
        assert [e.event for e in store.list_audit()] == ["run_succeeded", "review_requested"]
    finally:
        store.close()
    assert schema_version(path) == SCHEMA_VERSION


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    """A file written by a newer ada-governance raises `StoreError` asking for an upgrade."""
    path = tmp_path / "g.db"
    SQLiteStore(path).get_state("w")
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE ada_schema SET version = version + 1")
    raw.close()
    store = SQLiteStore(path)
    with pytest.raises(StoreError, match=r"newer ada-governance.*Upgrade ada-governance"):
        store.get_state("w")
    store.close()


def test_folder_is_created(tmp_path: Path) -> None:
    """The file's folder is created when missing."""
    path = tmp_path / "state" / "ada_governance" / "governance.db"
    store = SQLiteStore(path)
    store.append_audit(AuditEvent(T0, "note", "w"))
    store.close()
    assert path.is_file()


def test_folder_that_cannot_be_created_raises_store_error(tmp_path: Path) -> None:
    """A folder that cannot be created raises `StoreError` naming it."""
    (tmp_path / "a-file").write_text("not a folder")
    store = SQLiteStore(tmp_path / "a-file" / "sub" / "g.db")
    with pytest.raises(StoreError, match=r"cannot create the folder .*a-file"):
        store.get_state("w")


def test_file_that_is_not_a_database_raises_store_error(tmp_path: Path) -> None:
    """A file that is not SQLite raises `StoreError` naming the file."""
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are notes, not a database" * 100)
    store = SQLiteStore(path)
    with pytest.raises(StoreError, match=r"notes\.db"):
        store.get_state("w")


def test_opening_a_new_file_waits_for_another_connection(tmp_path: Path) -> None:
    """A store opening a new file while another connection writes to it waits, not fails."""
    path = tmp_path / "g.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE other_app (x)")
    release = threading.Timer(0.2, other.execute, args=("COMMIT",))
    release.start()
    store = SQLiteStore(path, busy_timeout=10)
    try:
        assert store.get_state("w") is None
    finally:
        release.join()
        other.close()
        store.close()


# --- many writers ------------------------------------------------------------------------


def test_four_processes_write_one_file(tmp_path: Path) -> None:
    """4 processes recording 250 runs each into one file leave 1,000 complete runs."""
    path, workers, count = str(tmp_path / "g.db"), 4, 250
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(workers)
    processes = [
        context.Process(target=record_many, args=(path, worker, count, start))
        for worker in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * workers
    store = SQLiteStore(path)
    try:
        runs = store.list_runs()
        events = store.list_audit()
    finally:
        store.close()
    expected = [busy_run(w, i) for w in range(workers) for i in range(count)]
    assert runs == expected  # every field of every run, oldest first
    assert sorted((e.run_id or "") for e in events) == sorted(r.run_id for r in expected)
    assert len({e.id for e in events}) == workers * count


def test_threads_share_one_store(tmp_path: Path) -> None:
    """8 threads writing through one store at once lose no run and no event."""
    store = SQLiteStore(tmp_path / "g.db")
    workers, count = 8, 50
    start = threading.Barrier(workers)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            start.wait()
            for index in range(count):
                store.record_run(busy_run(worker, index), [busy_event(worker, index)])
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert store.list_runs() == [busy_run(w, i) for w in range(workers) for i in range(count)]
        assert len(store.list_audit()) == workers * count
    finally:
        store.close()


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork()")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_store_opened_before_fork_works_in_the_child(tmp_path: Path) -> None:
    """A child forked from a process using a store opens its own connection and writes."""
    store = SQLiteStore(tmp_path / "g.db")
    store.record_run(make_run("from-parent"))
    child = multiprocessing.get_context("fork").Process(target=record_after_fork, args=(store,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert sorted(r.run_id for r in store.list_runs()) == ["from-child", "from-parent"]
    store.close()


# --- URLs --------------------------------------------------------------------------------


def test_open_store_memory() -> None:
    """``memory://`` opens a memory store."""
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    assert store.url == "memory://"


def test_open_store_relative_sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three slashes name a file relative to the current directory."""
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///state/g.db")
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "state" / "g.db"
    assert store.url == "sqlite:///state/g.db"
    store.record_run(make_run("r1"))
    store.close()
    assert (tmp_path / "state" / "g.db").is_file()


def test_open_store_absolute_sqlite_path(tmp_path: Path) -> None:
    """Four slashes name a file by its absolute path."""
    url = f"sqlite:///{tmp_path.as_posix()}/g.db"
    assert url.startswith("sqlite:////")
    store = open_store(url)
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "g.db"
    assert store.url == url
    store.close()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("governance.db", id="bare-path"),
        pytest.param("mysql://db/g", id="other-scheme"),
        pytest.param("sqlite://", id="sqlalchemy-memory"),
        pytest.param("sqlite:///", id="no-path"),
        pytest.param("sqlite:///g.db?timeout=5", id="query"),
        pytest.param("memory://named", id="named-memory"),
        pytest.param("", id="empty"),
    ],
)
def test_open_store_rejects_other_urls(url: str) -> None:
    """Any other URL raises `ValueError` naming the accepted forms."""
    with pytest.raises(ValueError, match=r"sqlite:////absolute/path\.db"):
        open_store(url)


def test_default_store_url_honours_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``ADA_GOVERNANCE_STORE`` names the default store."""
    monkeypatch.setenv("ADA_GOVERNANCE_STORE", "memory://")
    monkeypatch.setenv("XDG_STATE_HOME", "/ignored")
    assert default_store_url() == "memory://"


def test_default_store_url_is_in_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the variable, the default is a file under ``$XDG_STATE_HOME``."""
    monkeypatch.delenv("ADA_GOVERNANCE_STORE", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    url = default_store_url()
    assert url == f"sqlite:///{tmp_path.as_posix()}/ada_governance/governance.db"
    store = open_store(url)
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "ada_governance" / "governance.db"


@pytest.mark.parametrize("xdg", [None, "", "relative/state"], ids=["unset", "empty", "relative"])
def test_default_store_url_falls_back_to_local_state(
    xdg: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a usable ``$XDG_STATE_HOME``, the default is under ``~/.local/state``."""
    monkeypatch.delenv("ADA_GOVERNANCE_STORE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_STATE_HOME", xdg)
    expected = tmp_path / ".local" / "state" / "ada_governance" / "governance.db"
    assert default_store_url() == f"sqlite:///{expected.as_posix()}"
