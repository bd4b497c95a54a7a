"""The SQLite store: the embedded default, one file shared by many processes on one host.

Concurrency rests on three things: WAL mode (readers never block the writer), a busy
timeout (a writer waits for the lock rather than failing), and ``BEGIN IMMEDIATE`` for
every write (the write lock is taken up front, so a check-then-act is one transaction and
never fails half-way with the ``SQLITE_BUSY`` of a read lock that cannot be upgraded).

Each thread gets its own connection; each process opens its own (connections are never
carried across ``fork``). The schema is versioned in the ``ada_schema`` table and applied
on first use, so a file written by a newer ada-governance is refused, not misread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..records import (
    AuditEvent,
    Reservation,
    RunRecord,
    RunStatus,
    SourceRead,
    WorkflowState,
)
from ..reviews import ExecutionStatus, Review, ReviewStatus
from ..stops import passes_limit
from ..workflow import Stage
from .base import StoreError, SyncStoreBase, check_limit, claimable

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

# --- schema ------------------------------------------------------------------------------

# Each entry migrates the file from the version before it (entry 0 makes version 1). Never
# edit a released entry: a later schema appends one.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE workflow_state (
            workflow TEXT PRIMARY KEY,
            stage TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            actor TEXT NOT NULL,
            reason TEXT NOT NULL
        )""",
        """CREATE TABLE runs (
            run_id TEXT NOT NULL,
            workflow TEXT NOT NULL,
            version TEXT NOT NULL,
            status TEXT NOT NULL,
            trigger_id TEXT NOT NULL,
            trigger_type TEXT NOT NULL,
            received_at TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            parent_run_id TEXT,
            error_type TEXT,
            error_message TEXT,
            refusal_reason TEXT,
            fallback_used INTEGER NOT NULL,
            ungoverned INTEGER NOT NULL,
            model_calls INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cost REAL NOT NULL,
            outcome_ref TEXT,
            outcomes TEXT NOT NULL,
            annotations TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            reads TEXT NOT NULL,
            -- Clustered by workflow and time, the order reports read it in: one B-tree,
            -- so recording a run writes one page, not a table page and an index page.
            PRIMARY KEY (workflow, started_at, run_id)
        ) WITHOUT ROWID""",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            event TEXT NOT NULL,
            workflow TEXT NOT NULL,
            run_id TEXT,
            actor TEXT,
            data TEXT NOT NULL
        )""",
        "CREATE INDEX audit_workflow_at ON audit (workflow, at)",
    ),
    (
        # The review queue. `data` holds the whole review (`Review.to_dict`); the other
        # columns repeat the fields queries filter and sort by. `created_at` and
        # `deadline` are UTC text, so text order is time order; `roles` is a JSON list.
        """CREATE TABLE reviews (
            id TEXT PRIMARY KEY,
            workflow TEXT NOT NULL,
            status TEXT NOT NULL,
            execution TEXT NOT NULL,
            created_at TEXT NOT NULL,
            deadline TEXT NOT NULL,
            roles TEXT NOT NULL,
            data TEXT NOT NULL
        )""",
        "CREATE INDEX reviews_workflow_status ON reviews (workflow, status)",
        "CREATE INDEX reviews_execution ON reviews (execution)",
    ),
    (
        """CREATE TABLE reservations (
            id TEXT PRIMARY KEY,
            workflow TEXT NOT NULL,
            rule TEXT NOT NULL,
            amount REAL NOT NULL,
            created_at TEXT NOT NULL,
            run_id TEXT
        )""",
        "CREATE INDEX reservations_window ON reservations (workflow, rule, created_at)",
    ),
)

SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema version this library writes (2); a file with a newer one is refused."""

# Upserts (`ON CONFLICT ... DO ...`) need SQLite 3.24 (2018).
_MIN_SQLITE = (3, 24, 0)

# --- statements ----------------------------------------------------------------------------
# Module constants, so each connection's statement cache prepares them once.

_BEGIN = "BEGIN IMMEDIATE"
_COMMIT = "COMMIT"
_ROLLBACK = "ROLLBACK"

_SELECT_STATE = "SELECT stage, changed_at, actor, reason FROM workflow_state WHERE workflow = ?"
_UPSERT_STATE = (
    "INSERT INTO workflow_state (workflow, stage, changed_at, actor, reason)"
    " VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (workflow) DO UPDATE SET"
    " stage = excluded.stage, changed_at = excluded.changed_at,"
    " actor = excluded.actor, reason = excluded.reason"
)

# In RunRecord's field order, so a row maps to the dataclass positionally.
_RUN_COLUMNS = (
    "run_id, workflow, version, status, trigger_id, trigger_type, received_at, started_at,"
    " ended_at, parent_run_id, error_type, error_message, refusal_reason, fallback_used,"
    " ungoverned, model_calls, input_tokens, output_tokens, cost, outcome_ref, outcomes,"
    " annotations, attempts, reads"
)
# `ON CONFLICT (run_id) DO NOTHING` rather than `INSERT OR IGNORE`: both skip a repeated
# run id, but OR IGNORE would also silently drop a row that breaks a NOT NULL constraint.
_INSERT_RUN = (
    f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * 24)})"
    " ON CONFLICT (workflow, started_at, run_id) DO NOTHING"
)
_SELECT_RUNS = f"SELECT {_RUN_COLUMNS} FROM runs"

_SUM_RESERVED = (
    "SELECT COALESCE(SUM(amount), 0.0) FROM reservations"
    " WHERE workflow = ? AND rule = ? AND created_at >= ?"
)
_INSERT_RESERVATION = (
    "INSERT INTO reservations (id, workflow, rule, amount, created_at, run_id)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_SETTLE_RESERVATION = "UPDATE reservations SET amount = ? WHERE id = ?"

_INSERT_AUDIT = (
    "INSERT INTO audit (at, event, workflow, run_id, actor, data) VALUES (?, ?, ?, ?, ?, ?)"
)
_SELECT_AUDIT = "SELECT at, event, workflow, run_id, actor, data, id FROM audit"

# In `_review_row`'s order.
_INSERT_REVIEW = (
    "INSERT INTO reviews (id, workflow, status, execution, created_at, deadline, roles, data)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO NOTHING"
)
# The id is the last parameter: a change never moves a review to another id.
_UPDATE_REVIEW = (
    "UPDATE reviews SET workflow = ?, status = ?, execution = ?, created_at = ?,"
    " deadline = ?, roles = ?, data = ? WHERE id = ?"
)
_SELECT_REVIEW = "SELECT data FROM reviews WHERE id = ?"
_SELECT_READY = "SELECT data FROM reviews WHERE execution = 'ready' ORDER BY created_at, id"
_SELECT_REVIEWS = "SELECT data FROM reviews"
# Exact: a role matches an element of the JSON list, never part of one.
_HAS_ROLE = "EXISTS (SELECT 1 FROM json_each(reviews.roles) WHERE json_each.value = ?)"

# --- values --------------------------------------------------------------------------------

_UTC = dt.timezone.utc


def _time_text(value: dt.datetime) -> str:
    """Return ``value`` as UTC ISO 8601 text whose lexicographic order is time order."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the store keeps timezone-aware datetimes only, not {value!r}")
    # Fixed width (microseconds always, +00:00 always), so comparing text compares times.
    if value.tzinfo is not _UTC:
        value = value.astimezone(_UTC)
    return value.isoformat(timespec="microseconds")


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


_ENCODER = json.JSONEncoder(sort_keys=True, default=str)


def _json(value: Any) -> str:
    return _ENCODER.encode(value) if value else "{}"


def _reads_json(reads: list[SourceRead]) -> str:
    return json.dumps([read.to_dict() for read in reads]) if reads else "[]"


def _run_row(record: RunRecord) -> tuple[Any, ...]:
    return (
        record.run_id,
        record.workflow,
        record.version,
        record.status.value,
        record.trigger_id,
        record.trigger_type,
        _time_text(record.received_at),
        _time_text(record.started_at),
        _time_text(record.ended_at),
        record.parent_run_id,
        record.error_type,
        record.error_message,
        record.refusal_reason,
        bool(record.fallback_used),
        bool(record.ungoverned),
        record.model_calls,
        record.input_tokens,
        record.output_tokens,
        record.cost,
        record.outcome_ref,
        _json(record.outcomes),
        _json(record.annotations),
        record.attempts,
        _reads_json(record.reads),
    )


def _run(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        row[0],
        row[1],
        row[2],
        RunStatus(row[3]),
        row[4],
        row[5],
        _time(row[6]),
        _time(row[7]),
        _time(row[8]),
        row[9],
        row[10],
        row[11],
        row[12],
        bool(row[13]),
        bool(row[14]),
        row[15],
        row[16],
        row[17],
        row[18],
        row[19],
        json.loads(row[20]),
        json.loads(row[21]),
        row[22],
        [SourceRead.from_dict(item) for item in json.loads(row[23])],
    )


def _audit_row(event: AuditEvent) -> tuple[Any, ...]:
    return (
        _time_text(event.at),
        event.event,
        event.workflow,
        event.run_id,
        event.actor,
        _json(event.data),
    )


def _audit(row: Sequence[Any]) -> AuditEvent:
    return AuditEvent(_time(row[0]), row[1], row[2], row[3], row[4], json.loads(row[5]), row[6])


def _check_aware(name: str, value: dt.datetime | None) -> None:
    if value is not None and (value.tzinfo is None or value.utcoffset() is None):
        raise ValueError(f"the store keeps timezone-aware datetimes only, not {name}={value!r}")


def _review_row(review: Review) -> tuple[Any, ...]:
    """The review's row, without its id: the columns queries use, then its whole data.

    Raises:
        ValueError: A datetime in it is naive.
    """
    created_at, deadline = _time_text(review.created_at), _time_text(review.deadline)
    _check_aware("lease_until", review.lease_until)
    _check_aware("executed_at", review.executed_at)
    for decision in review.decisions:
        _check_aware("decision.at", decision.at)
    # Not sorted and not ASCII-escaped: the payload comes back as it was given, in its
    # key order (its hash does not depend on that order).
    data = json.dumps(review.to_dict(), ensure_ascii=False, default=str)
    return (
        review.workflow,
        ReviewStatus(review.status).value,
        ExecutionStatus(review.execution).value,
        created_at,
        deadline,
        json.dumps(list(review.roles), ensure_ascii=False),
        data,
    )


# --- connections ---------------------------------------------------------------------------


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced, so a dead thread's one is closed."""


class _Local(threading.local):
    connection: _Connection | None = None


# Connections inherited through fork() must never be used or closed in the child (SQLite:
# "all kinds of locking problems will result"); the child keeps them here, untouched.
_INHERITED: list[_Connection] = []
_STORES: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


def _forget_connections_after_fork() -> None:
    for store in _STORES:
        _INHERITED.extend(store._connections)
        store._connections = weakref.WeakSet()
        store._local = _Local()
        store._lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_forget_connections_after_fork)


def _is_busy(error: sqlite3.Error) -> bool:
    name = getattr(error, "sqlite_errorname", None)  # Python 3.11+
    return name.startswith("SQLITE_BUSY") if name else "database is locked" in str(error)


def _rollback(connection: sqlite3.Connection) -> None:
    # Some errors (disk full, interrupt) have already rolled the transaction back.
    if connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # the original error is the one to raise
            connection.execute(_ROLLBACK)


class SQLiteStore(SyncStoreBase):
    """A store in one SQLite file, safe across threads and processes on one host.

    Nothing touches the disk until the first call: then the file's folder is created if
    missing, the file opened in WAL mode, and its schema created or checked. Each thread
    uses its own connection; `close` closes them all.

    Datetimes are kept as UTC ISO 8601 text and come back as timezone-aware UTC datetimes;
    naive datetimes are refused with `ValueError`. JSON fields (``outcomes``,
    ``annotations``, ``data``) are written with ``default=str``, so a value JSON cannot hold
    comes back as its string. A review is kept whole as the JSON of `Review.to_dict`, so
    its datetimes come back with the offsets they were given (the same instants).

    Args:
        path: The database file; a relative path is taken from the current directory now.
        busy_timeout: Seconds a call waits for another writer before failing.
        url: The URL the store was opened by; by default, a ``sqlite:///`` URL of
            ``path``.

    Raises:
        ValueError: ``busy_timeout`` is negative.
    """

    blocking = True

    def __init__(
        self, path: str | Path, *, busy_timeout: float = 30.0, url: str | None = None
    ) -> None:
        if busy_timeout < 0:
            raise ValueError(f"busy_timeout must be zero or more seconds, not {busy_timeout}")
        self.path = Path(os.path.abspath(path))
        self.url = url if url is not None else f"sqlite:///{self.path.as_posix()}"
        self.busy_timeout = busy_timeout
        self._local = _Local()
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._schema_ready = False
        self._closed = False
        _STORES.add(self)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # --- connections ---------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        return self._local.connection or self._connect()

    def _connect(self) -> sqlite3.Connection:
        """Open this thread's connection, creating or checking the schema the first time."""
        with self._lock:
            if self._closed:
                raise StoreError(f"the SQLite store {self.path} is closed")
            if not self._schema_ready:
                self._make_folder()
            try:
                connection = sqlite3.connect(
                    self.path,
                    timeout=self.busy_timeout,
                    isolation_level=None,  # autocommit: transactions are explicit
                    check_same_thread=False,  # so close() may close every thread's one
                    factory=_Connection,
                )
            except sqlite3.Error as error:
                raise self._error("open the file", error) from error
            try:
                # busy_timeout first: switching to WAL must wait for others, not fail.
                connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
                self._use_wal(connection)
                connection.execute("PRAGMA synchronous = NORMAL")
                connection.execute("PRAGMA foreign_keys = ON")
                if not self._schema_ready:
                    self._apply_schema(connection)
                    self._schema_ready = True
            except BaseException as error:
                connection.close()
                if isinstance(error, sqlite3.Error):
                    raise self._error("open the file", error) from error
                raise
            self._connections.add(connection)
            self._local.connection = connection
            return connection

    def _use_wal(self, connection: sqlite3.Connection) -> None:
        # Switching a new file to WAL needs an exclusive lock, and SQLite reports a
        # conflict at once, without its busy handler: so wait here, as a write would.
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.001
        while True:
            try:
                connection.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or time.monotonic() >= deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
            else:
                return

    def _make_folder(self) -> None:
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise StoreError(
                f"the SQLite store needs SQLite {'.'.join(map(str, _MIN_SQLITE))} or newer;"
                f" this Python has {sqlite3.sqlite_version}"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"cannot create the folder {self.path.parent} for the SQLite store"
                f" {self.path}: {error.strerror or error}"
            ) from error

    def _apply_schema(self, connection: sqlite3.Connection) -> None:
        """Bring the file's schema to `SCHEMA_VERSION`, or refuse a newer one."""
        # Most opens find the schema current: read it first, so that processes starting
        # together do not queue for the write lock only to find nothing to do.
        version = self._schema_version(connection, create=False)
        if version == SCHEMA_VERSION:
            return
        self._check_not_newer(version)
        connection.execute(_BEGIN)
        try:
            # Read again under the write lock: another process may have migrated meanwhile.
            version = self._schema_version(connection, create=True)
            self._check_not_newer(version)
            for steps in _MIGRATIONS[version:]:
                for statement in steps:
                    connection.execute(statement)
            if version != SCHEMA_VERSION:
                connection.execute("DELETE FROM ada_schema")
                connection.execute("INSERT INTO ada_schema (version) VALUES (?)", (SCHEMA_VERSION,))
            connection.execute(_COMMIT)
        except BaseException:
            _rollback(connection)
            raise

    @staticmethod
    def _schema_version(connection: sqlite3.Connection, *, create: bool) -> int:
        if create:
            connection.execute("CREATE TABLE IF NOT EXISTS ada_schema (version INTEGER NOT NULL)")
        elif not connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ada_schema'"
        ).fetchone():
            return 0
        row = connection.execute("SELECT max(version) FROM ada_schema").fetchone()
        return int(row[0] or 0)

    def _check_not_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the SQLite store {self.path} has schema version {version}, written by a"
                f" newer ada-governance; this one knows up to version {SCHEMA_VERSION}."
                " Upgrade ada-governance to use this file."
            )

    def _error(self, what: str, error: Exception) -> StoreError:
        if self._closed:
            return StoreError(f"the SQLite store {self.path} is closed")
        return StoreError(f"SQLite store {self.path}: cannot {what}: {error}")

    def _write(self, what: str, work: Callable[[sqlite3.Connection], object]) -> None:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction, rolled back if it fails."""
        connection = self._connection()
        try:
            connection.execute(_BEGIN)
            try:
                work(connection)
                connection.execute(_COMMIT)
            except BaseException:
                _rollback(connection)
                raise
        except sqlite3.Error as error:
            raise self._error(what, error) from error

    def _read(self, what: str, sql: str, parameters: Sequence[Any]) -> list[Any]:
        try:
            return self._connection().execute(sql, parameters).fetchall()
        except sqlite3.Error as error:
            raise self._error(what, error) from error

    def _unreadable(self, what: str, error: Exception) -> StoreError:
        return StoreError(
            f"SQLite store {self.path}: cannot {what}: it holds a value this version of"
            f" ada-governance cannot read ({error}); is it written by a newer one?"
        )

    # --- the Store protocol --------------------------------------------------------------

    def get_state(self, workflow: str) -> WorkflowState | None:
        """Return the stored state of ``workflow``, or ``None`` if none was ever stored."""
        try:
            row = self._connection().execute(_SELECT_STATE, (workflow,)).fetchone()
        except sqlite3.Error as error:
            raise self._error(f"read the state of workflow {workflow!r}", error) from error
        if row is None:
            return None
        try:
            return WorkflowState(workflow, Stage(row[0]), _time(row[1]), row[2], row[3])
        except ValueError as error:
            raise self._unreadable(f"read the state of workflow {workflow!r}", error) from error

    def set_state(self, state: WorkflowState, event: AuditEvent) -> None:
        """Store a workflow's new state and its audit event in one transaction."""
        state_row = (
            state.workflow,
            Stage(state.stage).value,
            _time_text(state.changed_at),
            state.actor,
            state.reason,
        )
        audit_row = _audit_row(event)

        def work(connection: sqlite3.Connection) -> None:
            connection.execute(_UPSERT_STATE, state_row)
            connection.execute(_INSERT_AUDIT, audit_row)

        self._write(f"set the state of workflow {state.workflow!r}", work)

    def record_run(self, record: RunRecord, events: Sequence[AuditEvent] = ()) -> None:
        """Add a ledger row, with the audit events about it, in one transaction.

        A run id already in the ledger is left as it is, and its events are not appended.
        """
        run_row = _run_row(record)
        if not events:
            # One statement is its own transaction in autocommit mode: the common case
            # (a run that succeeded) pays for one commit and no BEGIN/COMMIT round trips.
            try:
                self._connection().execute(_INSERT_RUN, run_row)
            except sqlite3.Error as error:
                raise self._error(f"record run {record.run_id!r}", error) from error
            return
        audit_rows = [_audit_row(event) for event in events]

        def work(connection: sqlite3.Connection) -> None:
            if connection.execute(_INSERT_RUN, run_row).rowcount:
                connection.executemany(_INSERT_AUDIT, audit_rows)

        self._write(f"record run {record.run_id!r}", work)

    def append_audit(self, event: AuditEvent) -> None:
        """Append one audit event."""
        audit_row = _audit_row(event)
        self._write(
            f"append audit event {event.event!r}",
            lambda connection: connection.execute(_INSERT_AUDIT, audit_row),
        )

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
        where: list[str] = []
        parameters: list[Any] = []
        if workflow is not None:
            where.append("workflow = ?")
            parameters.append(workflow)
        if since is not None:
            where.append("started_at >= ?")
            parameters.append(_time_text(since))
        if until is not None:
            where.append("started_at < ?")
            parameters.append(_time_text(until))
        if status is not None:
            where.append("status = ?")
            parameters.append(RunStatus(status).value)
        # The run id breaks ties, as the memory store does; ids are time-ordered.
        sql = _select(_SELECT_RUNS, where, "started_at, run_id", limit, parameters)
        rows = self._read("list runs", sql, parameters)
        try:
            return [_run(row) for row in rows]
        except ValueError as error:
            raise self._unreadable("list runs", error) from error

    def list_audit(
        self,
        workflow: str | None = None,
        *,
        event: str | None = None,
        since: dt.datetime | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Return audit events in the order they were appended, each with its id."""
        where: list[str] = []
        parameters: list[Any] = []
        if workflow is not None:
            where.append("workflow = ?")
            parameters.append(workflow)
        if event is not None:
            where.append("event = ?")
            parameters.append(event)
        if since is not None:
            where.append("at >= ?")
            parameters.append(_time_text(since))
        sql = _select(_SELECT_AUDIT, where, "id", limit, parameters)
        rows = self._read("list audit events", sql, parameters)
        try:
            return [_audit(row) for row in rows]
        except ValueError as error:
            raise self._unreadable("list audit events", error) from error

    # --- reviews -------------------------------------------------------------------------

    def _review(self, what: str, text: str) -> Review:
        try:
            return Review.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as error:
            raise self._unreadable(what, error) from error

    def claim_ready(
        self,
        worker: str,
        now: dt.datetime,
        lease: dt.timedelta,
        actions: Sequence[tuple[str, str]],
        limit: int | None = None,
    ) -> list[Review]:
        """Claim ready approved actions in one ``BEGIN IMMEDIATE`` transaction (SQLite
        has one writer at a time, so there is nothing to skip: claims simply queue)."""
        check_limit(limit)
        wanted = set(actions)
        claimed: list[Review] = []

        def work(connection: sqlite3.Connection) -> None:
            rows = connection.execute(_SELECT_READY).fetchall()
            for (data,) in rows:
                if limit is not None and len(claimed) >= limit:
                    break
                review = self._review("claim ready actions", data)
                if not claimable(review, wanted):
                    continue
                after = review.claim(worker, now, lease)
                connection.execute(_UPDATE_REVIEW, (*_review_row(after), after.id))
                claimed.append(after)

        self._write("claim ready actions", work)
        return claimed

    # --- reservations -------------------------------------------------------------------

    def reserve(self, reservation: Reservation, limit: float, since: dt.datetime) -> bool:
        """Hold ``reservation`` if the limit allows, in one ``BEGIN IMMEDIATE`` transaction
        (which no other writer, in any process, can interleave with)."""
        row = (
            reservation.id,
            reservation.workflow,
            reservation.rule,
            float(reservation.amount),
            _time_text(reservation.created_at),
            reservation.run_id,
        )
        window = (reservation.workflow, reservation.rule, _time_text(since))
        held: list[bool] = []

        def work(connection: sqlite3.Connection) -> None:
            (total,) = connection.execute(_SUM_RESERVED, window).fetchone()
            if passes_limit(float(total), reservation.amount, limit):
                held.append(False)
                return
            connection.execute(_INSERT_RESERVATION, row)
            held.append(True)

        self._write(f"reserve {reservation.rule!r} for {reservation.workflow!r}", work)
        return held[0]

    def settle(self, reservation_id: str, amount: float) -> None:
        """Replace a reservation's amount with what was really used."""

        def work(connection: sqlite3.Connection) -> None:
            connection.execute(_SETTLE_RESERVATION, (float(amount), reservation_id))

        self._write(f"settle reservation {reservation_id!r}", work)

    def reserved(self, workflow: str, rule: str, since: dt.datetime) -> float:
        """The sum of the reservations for ``workflow`` and ``rule`` since ``since``."""
        try:
            (total,) = (
                self._connection()
                .execute(_SUM_RESERVED, (workflow, rule, _time_text(since)))
                .fetchone()
            )
        except sqlite3.Error as error:
            raise self._error(f"read reservations of {workflow!r}", error) from error
        return float(total)

    def create_review(self, review: Review, events: Sequence[AuditEvent] = ()) -> None:
        """Add a review to the queue, with its audit events, in one transaction.

        Raises:
            StoreError: A review with its id already exists (nothing is written).
            ValueError: A datetime in it is naive.
        """
        row = (review.id, *_review_row(review))
        audit_rows = [_audit_row(event) for event in events]

        def work(connection: sqlite3.Connection) -> None:
            if not connection.execute(_INSERT_REVIEW, row).rowcount:
                raise StoreError(f"review {review.id} already exists")
            if audit_rows:
                connection.executemany(_INSERT_AUDIT, audit_rows)

        self._write(f"create review {review.id!r}", work)

    def get_review(self, review_id: str) -> Review | None:
        """Return the review with ``review_id``, or ``None``."""
        what = f"read review {review_id!r}"
        rows = self._read(what, _SELECT_REVIEW, (review_id,))
        return self._review(what, rows[0][0]) if rows else None

    def list_reviews(
        self,
        workflow: str | None = None,
        *,
        status: ReviewStatus | None = None,
        execution: ExecutionStatus | None = None,
        role: str | None = None,
        limit: int | None = None,
    ) -> list[Review]:
        """Return reviews, oldest first (the id breaks ties), filtered by workflow,
        status, execution and role (one of the roles that may decide it now, exactly)."""
        where: list[str] = []
        parameters: list[Any] = []
        if workflow is not None:
            where.append("workflow = ?")
            parameters.append(workflow)
        if status is not None:
            where.append("status = ?")
            parameters.append(ReviewStatus(status).value)
        if execution is not None:
            where.append("execution = ?")
            parameters.append(ExecutionStatus(execution).value)
        if role is not None:
            where.append(_HAS_ROLE)
            parameters.append(role)
        sql = _select(_SELECT_REVIEWS, where, "created_at, id", limit, parameters)
        rows = self._read("list reviews", sql, parameters)
        return [self._review("list reviews", row[0]) for row in rows]

    def update_review(
        self,
        review_id: str,
        change: Callable[[Review], Review],
        events: Callable[[Review, Review], Sequence[AuditEvent]] | None = None,
    ) -> Review:
        """Apply ``change`` to a review in one ``BEGIN IMMEDIATE`` transaction.

        The write lock is taken before the review is read, so no other update of it, in
        any process, runs between the read and the write. Whatever ``change`` or
        ``events`` raises rolls the transaction back and propagates unchanged.

        Raises:
            KeyError: There is no such review.
            StoreError: The database failed.
            ValueError: A datetime in the changed review is naive.
        """
        what = f"update review {review_id!r}"
        connection = self._connection()
        try:
            connection.execute(_BEGIN)
        except sqlite3.Error as error:
            raise self._error(what, error) from error
        try:
            try:
                found = connection.execute(_SELECT_REVIEW, (review_id,)).fetchone()
            except sqlite3.Error as error:
                raise self._error(what, error) from error
            if found is None:
                raise KeyError(review_id)
            before = self._review(what, found[0])
            # The caller's functions run outside any wrapping: what they raise is theirs.
            after = change(before)
            added = list(events(before, after)) if events is not None else []
            row = (*_review_row(after), review_id)
            audit_rows = [_audit_row(event) for event in added]
            try:
                connection.execute(_UPDATE_REVIEW, row)
                if audit_rows:
                    connection.executemany(_INSERT_AUDIT, audit_rows)
                connection.execute(_COMMIT)
            except sqlite3.Error as error:
                raise self._error(what, error) from error
        except BaseException:
            _rollback(connection)
            raise
        return after

    def close(self) -> None:
        """Close every thread's connection; the store may not be used afterwards.

        Call it once no call is in flight: a call running meanwhile may fail.
        """
        with self._lock:
            self._closed = True
            self._local = _Local()
            connections, self._connections = list(self._connections), weakref.WeakSet()
        for connection in connections:
            with contextlib.suppress(sqlite3.Error):  # best effort: the store is closed anyway
                connection.close()


def _select(
    base: str, where: list[str], order: str, limit: int | None, parameters: list[Any]
) -> str:
    sql = base
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order}"
    check_limit(limit)
    if limit is not None:
        sql += " LIMIT ?"
        parameters.append(limit)
    return sql
