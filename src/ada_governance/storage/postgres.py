"""The PostgreSQL store: one database shared by every process on every host.

Install it with ``pip install 'ada-governance[postgres]'`` (psycopg 3 and psycopg-pool)
and open it by URL: ``postgresql://user@db.internal:5432/app?schema=governance``.

Every check-then-act is one transaction that holds the right lock:

- ``reserve`` takes a transaction-scoped advisory lock on its (workflow, rule) before it
  sums the window and inserts, so no two reservations of one limit interleave;
- ``update_review`` reads the review ``FOR UPDATE``, so no two changes of one review
  interleave, in any process on any host;
- ``record_run`` is one ``INSERT ... ON CONFLICT DO NOTHING`` statement (with its audit
  events in the same statement), so a retried write is harmless;
- the schema is versioned in ``ada_schema`` and migrated under an advisory lock, so many
  processes starting at once migrate it once.

Each process keeps a psycopg-pool `ConnectionPool`, opened on first use. When the
database cannot be reached, calls raise `StoreError` at once (the runtime refuses the run:
it fails closed); once it answers again, the next call opens a fresh pool, so an app
recovers without a restart. A connection the server closed (a restart, or
``pg_terminate_backend``) is retried once on a fresh pool when nothing it was doing can
have been committed, or when what it was doing is idempotent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
    from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout
except ImportError as _missing:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "the PostgreSQL store needs psycopg 3 and psycopg-pool: "
        "pip install 'ada-governance[postgres]'"
    ) from _missing

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
from .base import StoreError, SyncStoreBase, check_limit

__all__ = ["SCHEMA_VERSION", "PostgresStore"]

_T = TypeVar("_T")
_Connection = psycopg.Connection[tuple[Any, ...]]
_Pool = ConnectionPool[_Connection]

# --- schema ------------------------------------------------------------------------------

# Each entry migrates the schema from the version before it (entry 0 makes version 1).
# Never edit a released entry: a later schema appends one. `{p}` is the schema prefix
# (`"name".`, or nothing for the connection's search_path). Ids that order results are
# `COLLATE "C"`, so they sort by code point, as the memory and SQLite stores sort them.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE {p}workflow_state (
            workflow text PRIMARY KEY,
            stage text NOT NULL,
            changed_at timestamptz NOT NULL,
            actor text NOT NULL,
            reason text NOT NULL
        )""",
        """CREATE TABLE {p}runs (
            run_id text COLLATE "C" NOT NULL,
            workflow text NOT NULL,
            version text NOT NULL,
            status text NOT NULL,
            trigger_id text NOT NULL,
            trigger_type text NOT NULL,
            received_at timestamptz NOT NULL,
            started_at timestamptz NOT NULL,
            ended_at timestamptz NOT NULL,
            parent_run_id text,
            error_type text,
            error_message text,
            refusal_reason text,
            fallback_used boolean NOT NULL,
            ungoverned boolean NOT NULL,
            model_calls bigint NOT NULL,
            input_tokens bigint NOT NULL,
            output_tokens bigint NOT NULL,
            cost double precision NOT NULL,
            outcome_ref text,
            outcomes jsonb NOT NULL,
            annotations jsonb NOT NULL,
            attempts integer NOT NULL,
            reads jsonb NOT NULL,
            PRIMARY KEY (workflow, started_at, run_id)
        )""",
        """CREATE TABLE {p}audit (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL,
            event text NOT NULL,
            workflow text NOT NULL,
            run_id text,
            actor text,
            data jsonb NOT NULL
        )""",
        "CREATE INDEX audit_workflow_at ON {p}audit (workflow, at)",
        # `data` holds the whole review (`Review.to_dict`) as `json`, not `jsonb`, so its
        # payload comes back in the key order it was given; `roles` is a jsonb list.
        """CREATE TABLE {p}reviews (
            id text COLLATE "C" PRIMARY KEY,
            workflow text NOT NULL,
            status text NOT NULL,
            execution text NOT NULL,
            created_at timestamptz NOT NULL,
            deadline timestamptz NOT NULL,
            roles jsonb NOT NULL,
            data json NOT NULL
        )""",
        "CREATE INDEX reviews_workflow_status ON {p}reviews (workflow, status)",
        "CREATE INDEX reviews_execution ON {p}reviews (execution)",
        """CREATE TABLE {p}reservations (
            id text PRIMARY KEY,
            workflow text NOT NULL,
            rule text NOT NULL,
            amount double precision NOT NULL,
            created_at timestamptz NOT NULL,
            run_id text
        )""",
        "CREATE INDEX reservations_window ON {p}reservations (workflow, rule, created_at)",
    ),
)

SCHEMA_VERSION = len(_MIGRATIONS)
"""The schema version this library writes (1); a database with a newer one is refused."""

# --- options -----------------------------------------------------------------------------

_DEFAULT_POOL_MIN = 1
_DEFAULT_POOL_MAX = 10
_DEFAULT_POOL_TIMEOUT = 10.0
_DEFAULT_CONNECT_TIMEOUT = "5"
_OPTIONS = ("pool_min", "pool_max", "pool_timeout", "schema")
# After a failed attempt to reach the server, calls within this many seconds fail at
# once instead of each trying again (a server that drops packets costs connect_timeout).
_RETRY_INTERVAL = 0.5
# How long closing a pool waits for its background threads.
_CLOSE_TIMEOUT = 2.0

_SCHEMES = ("postgresql", "postgres")

# --- values --------------------------------------------------------------------------------


def _aware(name: str, value: dt.datetime) -> dt.datetime:
    """Return ``value``, refusing a naive datetime (PostgreSQL would read it as UTC)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the store keeps timezone-aware datetimes only, not {name}={value!r}")
    return value


def _check_aware(name: str, value: dt.datetime | None) -> None:
    if value is not None:
        _aware(name, value)


def _text(value: str) -> str:
    """PostgreSQL text cannot hold NUL: it becomes U+FFFD, so a row is never refused."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _text_or_none(value: str | None) -> str | None:
    return _text(value) if value else value


def _scrub(value: Any, *, nul: bool) -> Any:
    """``value`` with the floats JSON cannot hold (NaN, infinities) as strings and, with
    ``nul``, NUL characters (which jsonb cannot hold) as U+FFFD."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, str):
        return _text(value) if nul else value
    if isinstance(value, dict):
        return {
            (_text(k) if nul and isinstance(k, str) else k): _scrub(v, nul=nul)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_scrub(item, nul=nul) for item in value]
    if isinstance(value, (bool, int)) or value is None:
        return value
    return _scrub(str(value), nul=nul)  # what json's default=str would write


_JSON = json.JSONEncoder(default=str, allow_nan=False, ensure_ascii=False)


def _json(value: Any, *, nul: bool = True) -> str:
    """``value`` as JSON text PostgreSQL takes, keeping its key order."""
    try:
        text = _JSON.encode(value)
    except ValueError as error:
        if "Out of range float" not in str(error):
            raise
        return _JSON.encode(_scrub(value, nul=nul))
    if nul and "\\u0000" in text:
        return _JSON.encode(_scrub(value, nul=nul))
    return text


def _jsonb(value: Any, empty: str) -> str:
    return _json(value) if value else empty


def _run_row(record: RunRecord) -> tuple[Any, ...]:
    return (
        _text(record.run_id),
        _text(record.workflow),
        _text(record.version),
        RunStatus(record.status).value,
        _text(record.trigger_id),
        _text(record.trigger_type),
        _aware("received_at", record.received_at),
        _aware("started_at", record.started_at),
        _aware("ended_at", record.ended_at),
        _text_or_none(record.parent_run_id),
        _text_or_none(record.error_type),
        _text_or_none(record.error_message),
        _text_or_none(record.refusal_reason),
        bool(record.fallback_used),
        bool(record.ungoverned),
        record.model_calls,
        record.input_tokens,
        record.output_tokens,
        float(record.cost),
        _text_or_none(record.outcome_ref),
        _jsonb(record.outcomes, "{}"),
        _jsonb(record.annotations, "{}"),
        record.attempts,
        _jsonb([read.to_dict() for read in record.reads], "[]"),
    )


def _run(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        row[0],
        row[1],
        row[2],
        RunStatus(row[3]),
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
        row[10],
        row[11],
        row[12],
        row[13],
        row[14],
        row[15],
        row[16],
        row[17],
        row[18],
        row[19],
        row[20],
        row[21],
        row[22],
        [SourceRead.from_dict(item) for item in row[23]],
    )


def _audit_row(event: AuditEvent) -> tuple[Any, ...]:
    return (
        _aware("at", event.at),
        _text(event.event),
        _text(event.workflow),
        _text_or_none(event.run_id),
        _text_or_none(event.actor),
        _jsonb(event.data, "{}"),
    )


def _audit_columns(events: Sequence[AuditEvent]) -> tuple[list[Any], ...]:
    """The events' rows as one list per column, for ``unnest``."""
    rows = [_audit_row(event) for event in events]
    return tuple([row[column] for row in rows] for column in range(6))


def _audit(row: Sequence[Any]) -> AuditEvent:
    return AuditEvent(row[0], row[1], row[2], row[3], row[4], row[5], row[6])


def _review_row(review: Review) -> tuple[Any, ...]:
    """The review's row, without its id: the columns queries use, then its whole data.

    Raises:
        ValueError: A datetime in it is naive.
    """
    created_at = _aware("created_at", review.created_at)
    deadline = _aware("deadline", review.deadline)
    _check_aware("lease_until", review.lease_until)
    _check_aware("executed_at", review.executed_at)
    for decision in review.decisions:
        _check_aware("decision.at", decision.at)
    return (
        review.workflow,
        ReviewStatus(review.status).value,
        ExecutionStatus(review.execution).value,
        created_at,
        deadline,
        _json(list(review.roles)),
        # `json` keeps NUL escapes as written; only NaN and infinities must change.
        _json(review.to_dict(), nul=False),
    )


# --- statements ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Statements:
    """Every statement, with table names in the store's schema."""

    select_state: str
    upsert_state: str
    insert_run: str
    insert_run_with_events: str
    select_runs: str
    insert_audit: str
    select_audit: str
    lock_reservations: str
    sum_reserved: str
    insert_reservation: str
    settle_reservation: str
    insert_review: str
    update_review: str
    select_review: str
    select_review_for_update: str
    select_ready_for_update: str
    select_reviews: str


# In RunRecord's field order, so a row maps to the dataclass positionally.
_RUN_COLUMNS = (
    "run_id, workflow, version, status, trigger_id, trigger_type, received_at, started_at,"
    " ended_at, parent_run_id, error_type, error_message, refusal_reason, fallback_used,"
    " ungoverned, model_calls, input_tokens, output_tokens, cost, outcome_ref, outcomes,"
    " annotations, attempts, reads"
)
_RUN_VALUES = (
    "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " %s::jsonb, %s::jsonb, %s, %s::jsonb"
)
_AUDIT_COLUMNS = "at, event, workflow, run_id, actor, data"


def _statements(p: str) -> _Statements:
    audit_values = "%s, %s, %s, %s, %s, %s::jsonb"
    insert_audit = f"INSERT INTO {p}audit ({_AUDIT_COLUMNS}) VALUES ({audit_values})"
    insert_run = (
        f"INSERT INTO {p}runs ({_RUN_COLUMNS}) VALUES ({_RUN_VALUES})"
        " ON CONFLICT (workflow, started_at, run_id) DO NOTHING"
    )
    return _Statements(
        select_state=(
            f"SELECT stage, changed_at, actor, reason FROM {p}workflow_state WHERE workflow = %s"
        ),
        # One statement writes the state and its audit event: atomic, one round trip.
        upsert_state=(
            f"WITH state AS (INSERT INTO {p}workflow_state"
            " (workflow, stage, changed_at, actor, reason) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (workflow) DO UPDATE SET"
            " stage = excluded.stage, changed_at = excluded.changed_at,"
            " actor = excluded.actor, reason = excluded.reason)"
            f" {insert_audit}"
        ),
        insert_run=insert_run,
        # The run and its events in one statement: the events go in only if the run did
        # (a repeated run id appends nothing), in the order given.
        insert_run_with_events=(
            f"WITH inserted AS ({insert_run} RETURNING 1)"
            f" INSERT INTO {p}audit ({_AUDIT_COLUMNS})"
            " SELECT e.at, e.event, e.workflow, e.run_id, e.actor, e.data::jsonb"
            " FROM inserted, unnest(%s::timestamptz[], %s::text[], %s::text[], %s::text[],"
            " %s::text[], %s::text[]) WITH ORDINALITY AS e(at, event, workflow, run_id,"
            " actor, data, n)"
            " ORDER BY e.n"
        ),
        select_runs=f"SELECT {_RUN_COLUMNS} FROM {p}runs",
        insert_audit=insert_audit,
        select_audit=f"SELECT {_AUDIT_COLUMNS}, id FROM {p}audit",
        lock_reservations="SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
        sum_reserved=(
            f"SELECT COALESCE(SUM(amount), 0.0) FROM {p}reservations"
            " WHERE workflow = %s AND rule = %s AND created_at >= %s"
        ),
        insert_reservation=(
            f"INSERT INTO {p}reservations (id, workflow, rule, amount, created_at, run_id)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
        ),
        settle_reservation=f"UPDATE {p}reservations SET amount = %s WHERE id = %s",
        insert_review=(
            f"INSERT INTO {p}reviews"
            " (id, workflow, status, execution, created_at, deadline, roles, data)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::json)"
            " ON CONFLICT (id) DO NOTHING RETURNING id"
        ),
        update_review=(
            f"UPDATE {p}reviews SET workflow = %s, status = %s, execution = %s,"
            " created_at = %s, deadline = %s, roles = %s::jsonb, data = %s::json WHERE id = %s"
        ),
        select_review=f"SELECT data FROM {p}reviews WHERE id = %s",
        select_review_for_update=f"SELECT data FROM {p}reviews WHERE id = %s FOR UPDATE",
        # Workers claiming at once take different rows: a row another transaction holds
        # is skipped, not waited for. Only the actions this worker has are locked.
        select_ready_for_update=(
            f"SELECT data FROM {p}reviews WHERE execution = 'ready'"
            " AND data->>'kind' = 'approval'"
            " AND (workflow || chr(31) || (data->>'action')) = ANY(%s)"
            " ORDER BY created_at, id LIMIT %s FOR UPDATE SKIP LOCKED"
        ),
        select_reviews=f"SELECT data FROM {p}reviews",
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# --- URLs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """What a URL names: how to connect, the store's options, and how to show it."""

    conninfo: str
    url: str
    where: str
    pool_min: int
    pool_max: int
    pool_timeout: float
    schema: str | None


def _split_netloc(netloc: str) -> tuple[str, str]:
    """``netloc`` without its password, and its user (``""`` if none)."""
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        return netloc, ""
    user = userinfo.partition(":")[0]
    return (f"{user}@{hosts}" if user else hosts), user


def _int_option(name: str, text: str | int) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, not {text!r}") from None


def _parse(
    url: str,
    *,
    pool_min: int | None,
    pool_max: int | None,
    pool_timeout: float | None,
    schema: str | None,
) -> _Target:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.partition("+")[0].lower() not in _SCHEMES:
        raise ValueError(f"not a PostgreSQL URL: {url!r}; use postgresql://user@host:5432/database")
    parts = urlsplit(f"postgresql://{rest}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = {key: value for key, value in query if key in _OPTIONS}
    libpq = [(key, value) for key, value in query if key not in _OPTIONS]

    # Keyword arguments win over the URL; either way the shown URL says what is used.
    chosen: dict[str, str] = dict(given)
    for name, value in (
        ("pool_min", pool_min),
        ("pool_max", pool_max),
        ("pool_timeout", pool_timeout),
        ("schema", schema),
    ):
        if value is not None:
            chosen[name] = str(value)
    size_min = _int_option("pool_min", chosen.get("pool_min", _DEFAULT_POOL_MIN))
    size_max = _int_option("pool_max", chosen.get("pool_max", max(_DEFAULT_POOL_MAX, size_min)))
    if size_min < 0 or size_max < 1 or size_max < size_min:
        raise ValueError(
            f"the pool needs 0 <= pool_min <= pool_max and pool_max >= 1,"
            f" not pool_min={size_min}, pool_max={size_max}"
        )
    try:
        wait = float(chosen.get("pool_timeout", _DEFAULT_POOL_TIMEOUT))
    except ValueError:
        raise ValueError(
            f"pool_timeout must be a number of seconds, not {chosen['pool_timeout']!r}"
        ) from None
    if not wait > 0 or not math.isfinite(wait):
        raise ValueError(f"pool_timeout must be a positive number of seconds, not {wait}")
    schema_name = chosen.get("schema")
    if schema_name is not None and (
        not schema_name or "\x00" in schema_name or len(schema_name.encode()) > 63
    ):
        raise ValueError(f"schema must be a PostgreSQL name of 1 to 63 bytes, not {schema_name!r}")

    # libpq's own parameters, with defaults that suit a governance store.
    keys = {key for key, _ in libpq}
    if "connect_timeout" not in keys and "PGCONNECT_TIMEOUT" not in os.environ:
        libpq.append(("connect_timeout", _DEFAULT_CONNECT_TIMEOUT))
    if "application_name" not in keys and "PGAPPNAME" not in os.environ:
        libpq.append(("application_name", "ada-governance"))
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(libpq), ""))
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.Error as error:
        raise ValueError(f"cannot read the PostgreSQL URL: {error}") from None

    shown_netloc, user = _split_netloc(parts.netloc)
    shown_query = [(key, value) for key, value in query if key not in _OPTIONS]
    shown_query = [(key, value) for key, value in shown_query if key != "password"]
    shown_query += [(key, chosen[key]) for key in _OPTIONS if key in chosen]
    shown = urlunsplit((scheme, shown_netloc, parts.path, urlencode(shown_query), ""))

    host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
    port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
    database = str(params.get("dbname") or os.environ.get("PGDATABASE") or user or "")
    where = f"{host}:{port}/{database}" + (f" (schema {schema_name})" if schema_name else "")
    return _Target(conninfo, shown, where, size_min, size_max, wait, schema_name)


# --- connections -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Down:
    """Why the server could not be reached, and when that was found."""

    reason: str
    at: float


def _configure(connection: _Connection) -> None:
    # Times come back in UTC, as from the SQLite store, whatever the server's default.
    connection.execute("SET TIME ZONE 'UTC'")


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# Pools inherited through fork() must never be used or closed in the child: closing
# would end the parent's sessions. The child keeps them here, untouched.
_INHERITED: list[object] = []
_STORES: weakref.WeakSet[PostgresStore] = weakref.WeakSet()


def _forget_pools_after_fork() -> None:
    for store in _STORES:
        if store._pool is not None:
            _INHERITED.append(store._pool)
        store._pool = None
        store._lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows only
    os.register_at_fork(after_in_child=_forget_pools_after_fork)


class PostgresStore(SyncStoreBase):
    """A store in a PostgreSQL database, shared by processes on any number of hosts.

    Nothing connects until the first call: then the schema is created or checked (and
    migrated, under an advisory lock), and a connection pool opened. Each process has
    its own pool; threads share it.

    Datetimes are ``timestamptz`` and come back as timezone-aware UTC datetimes; naive
    datetimes are refused with `ValueError`. Ledger and audit JSON (``outcomes``,
    ``annotations``, ``data``) is ``jsonb``, written with ``default=str``; a review is kept
    whole as the ``json`` of `Review.to_dict`, so its payload keeps its key order.
    PostgreSQL cannot hold NUL characters in text or jsonb, nor NaN or infinities in
    JSON: in ledger and audit rows NUL becomes U+FFFD and those floats their names as
    strings (``"NaN"``, ``"Infinity"``), so a row is never refused for them.

    Args:
        url: ``postgresql://user:password@host:5432/database``, with libpq's own
            parameters and the store's options in the query (``?schema=governance&
            pool_max=20``). ``postgres://`` and ``postgresql+psycopg://`` work too.
        pool_min: Connections each process keeps open (default 1; URL ``pool_min``).
        pool_max: Connections each process may open (default 10; URL ``pool_max``).
        pool_timeout: Seconds a call waits for a free connection before it fails
            (default 10; URL ``pool_timeout``).
        schema: The PostgreSQL schema that holds the tables, created if missing
            (URL ``schema``); by default, the first schema of the search path.

    Raises:
        ValueError: The URL or an option is malformed.
    """

    blocking = True

    def __init__(
        self,
        url: str,
        *,
        pool_min: int | None = None,
        pool_max: int | None = None,
        pool_timeout: float | None = None,
        schema: str | None = None,
    ) -> None:
        target = _parse(
            url, pool_min=pool_min, pool_max=pool_max, pool_timeout=pool_timeout, schema=schema
        )
        self.url = target.url
        """The URL the store was opened by, without its password."""
        self.schema = target.schema
        self.pool_min = target.pool_min
        self.pool_max = target.pool_max
        self.pool_timeout = target.pool_timeout
        self._conninfo = target.conninfo
        self._where = target.where
        self._prefix = f"{_quote(target.schema)}." if target.schema else ""
        self._sql = _statements(self._prefix)
        self._pool: _Pool | None = None
        self._down: _Down | None = None
        self._lock = threading.Lock()
        self._schema_ready = False
        self._closed = False
        _STORES.add(self)

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    # --- connections ---------------------------------------------------------------------

    def _connect(self) -> _Connection:
        """A connection of its own, outside the pool (to migrate, or to probe)."""
        connection = psycopg.connect(self._conninfo, autocommit=True)
        try:
            _configure(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _new_pool(self) -> _Pool:
        pool: _Pool = ConnectionPool(
            self._conninfo,
            kwargs={"autocommit": True},
            min_size=self.pool_min,
            max_size=self.pool_max,
            timeout=self.pool_timeout,
            configure=_configure,
            name=f"ada-governance {self._where}",
            open=False,
        )
        pool.open(wait=False)
        return pool

    def _ready(self) -> _Pool:
        """The pool, opened (after the schema is checked) on first use.

        After the server was found unreachable, each call (at most every
        ``_RETRY_INTERVAL`` seconds) tries one connection of its own: if it fails the
        call fails at once, rather than wait on a pool retrying in the background; if it
        works, a fresh pool replaces the old one, whose connections may all be dead.
        """
        pool = self._pool
        if pool is not None and self._down is None:
            return pool
        old: _Pool | None = None
        with self._lock:
            if self._closed:
                raise self._closed_error()
            if self._pool is not None and self._down is None:
                return self._pool
            down = self._down
            if down is not None and time.monotonic() - down.at < _RETRY_INTERVAL:
                raise self._unreachable(down.reason)
            try:
                with self._connect() as connection:
                    if not self._schema_ready:
                        self._apply_schema(connection)
                        self._schema_ready = True
            except psycopg.OperationalError as error:
                self._down = _Down(_one_line(error), time.monotonic())
                raise self._unreachable(self._down.reason) from error
            except psycopg.Error as error:
                raise self._error("prepare the schema", error) from error
            old, self._pool = self._pool, self._new_pool()
            self._down = None
            pool = self._pool
        if old is not None:
            old.close(timeout=_CLOSE_TIMEOUT)
        return pool

    def _lost(self, pool: _Pool, error: BaseException) -> None:
        """A connection of ``pool`` broke: check the server on the next call."""
        with self._lock:
            if self._pool is pool and self._down is None:
                self._down = _Down(_one_line(error), -math.inf)

    def _execute(
        self,
        what: str,
        work: Callable[[_Connection], _T],
        *,
        transaction: bool = False,
    ) -> _T:
        """Run ``work`` on a pooled connection, in one transaction if asked.

        A connection found broken is retried once, on a fresh pool, if the transaction
        never reached its commit (so nothing was written). Without a transaction,
        ``work`` must be one statement that reads, or writes idempotently: it is retried
        too, though it may have committed before the connection broke.
        Database errors become `StoreError`; whatever else ``work`` raises propagates
        unchanged, after the transaction is rolled back.
        """
        retried = False
        renewals = 0
        while True:
            pool = self._ready()
            connection: _Connection | None = None
            committing = False
            try:
                with pool.connection(timeout=self.pool_timeout) as connection:
                    if not transaction:
                        return work(connection)
                    with connection.transaction():
                        result = work(connection)
                        committing = True
                    return result
            except PoolClosed as error:
                # Closed by `close`, or replaced by a fresh pool while this call waited.
                if self._closed:
                    raise self._closed_error() from error
                renewals += 1
                if renewals > 3:
                    raise self._error(what, error) from error
            except PoolTimeout as error:
                raise StoreError(
                    f"PostgreSQL store {self._where}: cannot {what}: no connection came free"
                    f" within {self.pool_timeout:g} s (the pool holds at most {self.pool_max};"
                    " raise pool_max, or check that the server answers)"
                ) from error
            except psycopg.Error as error:
                broken = connection is not None and connection.closed
                if broken:
                    self._lost(pool, error)
                if broken and not retried and not committing:
                    retried = True
                    continue
                if self._closed:
                    raise self._closed_error() from error
                raise self._error(what, error) from error

    def _error(self, what: str, error: BaseException) -> StoreError:
        return StoreError(f"PostgreSQL store {self._where}: cannot {what}: {_one_line(error)}")

    def _unreachable(self, reason: str) -> StoreError:
        return StoreError(f"PostgreSQL store {self._where} cannot be reached: {reason}")

    def _closed_error(self) -> StoreError:
        return StoreError(f"the PostgreSQL store {self._where} is closed")

    def _unreadable(self, what: str, error: Exception) -> StoreError:
        return StoreError(
            f"PostgreSQL store {self._where}: cannot {what}: it holds a value this version of"
            f" ada-governance cannot read ({error}); is it written by a newer one?"
        )

    # --- schema ----------------------------------------------------------------------------

    def _schema_version(self, connection: _Connection) -> int:
        found = connection.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f"{self._prefix}ada_schema",)
        ).fetchone()
        if not found or not found[0]:
            return 0
        row = connection.execute(f"SELECT max(version) FROM {self._prefix}ada_schema").fetchone()
        return int(row[0] or 0) if row else 0

    def _check_not_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the PostgreSQL store {self._where} has schema version {version}, written by"
                f" a newer ada-governance; this one knows up to version {SCHEMA_VERSION}."
                " Upgrade ada-governance (pip install -U 'ada-governance[postgres]') to use"
                " this database."
            )

    def _apply_schema(self, connection: _Connection) -> tuple[int, int]:
        """Bring the schema to `SCHEMA_VERSION`, or refuse a newer one.

        Returns:
            The version found, and the version now.
        """
        # Most opens find the schema current: read it first, so that processes starting
        # together do not queue for the lock only to find nothing to do.
        version = self._schema_version(connection)
        if version == SCHEMA_VERSION:
            return version, version
        self._check_not_newer(version)
        p = self._prefix
        with connection.transaction():
            # Held to the end of the transaction: one process migrates, the others then
            # read the version it wrote. DDL is transactional: a failed step leaves nothing.
            connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"ada_governance:migrate:{self.schema or ''}",),
            )
            if self.schema is not None:
                exists = connection.execute(
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
                ).fetchone()
                if not exists:
                    connection.execute(f"CREATE SCHEMA {_quote(self.schema)}")
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS {p}ada_schema (version integer NOT NULL)"
            )
            version = self._schema_version(connection)
            self._check_not_newer(version)
            for steps in _MIGRATIONS[version:]:
                for statement in steps:
                    connection.execute(statement.format(p=p))
            if version != SCHEMA_VERSION:
                connection.execute(f"DELETE FROM {p}ada_schema")
                connection.execute(
                    f"INSERT INTO {p}ada_schema (version) VALUES (%s)", (SCHEMA_VERSION,)
                )
        return version, SCHEMA_VERSION

    def migrate(self) -> tuple[int, int]:
        """Create or migrate the schema now, as the first call would.

        Returns:
            The schema version found and the version now (equal if it was current).

        Raises:
            StoreError: The server cannot be reached, or its schema is newer than this
                library knows.
        """
        with self._lock:
            if self._closed:
                raise self._closed_error()
            try:
                with self._connect() as connection:
                    found = self._apply_schema(connection)
            except psycopg.Error as error:
                raise self._error("migrate the schema", error) from error
            self._schema_ready = True
        return found

    # --- the Store protocol --------------------------------------------------------------

    def get_state(self, workflow: str) -> WorkflowState | None:
        """Return the stored state of ``workflow``, or ``None`` if none was ever stored."""
        what = f"read the state of workflow {workflow!r}"
        rows = self._execute(
            what,
            lambda connection: connection.execute(
                self._sql.select_state, (_text(workflow),)
            ).fetchall(),
        )
        if not rows:
            return None
        stage, changed_at, actor, reason = rows[0]
        try:
            return WorkflowState(workflow, Stage(stage), changed_at, actor, reason)
        except ValueError as error:
            raise self._unreadable(what, error) from error

    def set_state(self, state: WorkflowState, event: AuditEvent) -> None:
        """Store a workflow's new state and its audit event in one statement."""
        row = (
            _text(state.workflow),
            Stage(state.stage).value,
            _aware("changed_at", state.changed_at),
            _text(state.actor),
            _text(state.reason),
            *_audit_row(event),
        )
        # In a transaction, so that a connection found broken before the commit is
        # retried: a lone statement may have committed, and its audit event with it.
        self._execute(
            f"set the state of workflow {state.workflow!r}",
            lambda connection: connection.execute(self._sql.upsert_state, row),
            transaction=True,
        )

    def record_run(self, record: RunRecord, events: Sequence[AuditEvent] = ()) -> None:
        """Add a ledger row, with the audit events about it, in one statement.

        A run already in the ledger is left as it is, and its events are not appended; so
        a write whose connection broke is simply written again.
        """
        row = _run_row(record)
        if events:
            sql, parameters = self._sql.insert_run_with_events, (*row, *_audit_columns(events))
        else:
            sql, parameters = self._sql.insert_run, row
        self._execute(
            f"record run {record.run_id!r}",
            lambda connection: connection.execute(sql, parameters),
        )

    def append_audit(self, event: AuditEvent) -> None:
        """Append one audit event."""
        row = _audit_row(event)
        self._execute(
            f"append audit event {event.event!r}",
            lambda connection: connection.execute(self._sql.insert_audit, row),
            transaction=True,
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
            where.append("workflow = %s")
            parameters.append(_text(workflow))
        if since is not None:
            where.append("started_at >= %s")
            parameters.append(_aware("since", since))
        if until is not None:
            where.append("started_at < %s")
            parameters.append(_aware("until", until))
        if status is not None:
            where.append("status = %s")
            parameters.append(RunStatus(status).value)
        sql = _select(self._sql.select_runs, where, "started_at, run_id", limit, parameters)
        rows = self._read("list runs", sql, parameters)
        try:
            return [_run(row) for row in rows]
        except (ValueError, KeyError, TypeError) as error:
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
            where.append("workflow = %s")
            parameters.append(_text(workflow))
        if event is not None:
            where.append("event = %s")
            parameters.append(_text(event))
        if since is not None:
            where.append("at >= %s")
            parameters.append(_aware("since", since))
        sql = _select(self._sql.select_audit, where, "id", limit, parameters)
        return [_audit(row) for row in self._read("list audit events", sql, parameters)]

    def _read(self, what: str, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._execute(
            what, lambda connection: connection.execute(sql, parameters).fetchall()
        )

    # --- reviews -------------------------------------------------------------------------

    def _review(self, what: str, data: Any) -> Review:
        try:
            return Review.from_dict(data)
        except (ValueError, KeyError, TypeError) as error:
            raise self._unreadable(what, error) from error

    def create_review(self, review: Review, events: Sequence[AuditEvent] = ()) -> None:
        """Add a review to the queue, with its audit events, in one transaction.

        Raises:
            StoreError: A review with its id already exists (nothing is written).
            ValueError: A datetime in it is naive.
        """
        row = (review.id, *_review_row(review))
        audit_rows = [_audit_row(event) for event in events]

        def work(connection: _Connection) -> None:
            if connection.execute(self._sql.insert_review, row).fetchone() is None:
                raise _Exists(f"review {review.id} already exists")
            if audit_rows:
                with connection.cursor() as cursor:
                    cursor.executemany(self._sql.insert_audit, audit_rows)

        try:
            self._execute(f"create review {review.id!r}", work, transaction=True)
        except _Exists as error:
            raise StoreError(str(error)) from None

    def get_review(self, review_id: str) -> Review | None:
        """Return the review with ``review_id``, or ``None``."""
        what = f"read review {review_id!r}"
        rows = self._read(what, self._sql.select_review, (review_id,))
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
            where.append("workflow = %s")
            parameters.append(workflow)
        if status is not None:
            where.append("status = %s")
            parameters.append(ReviewStatus(status).value)
        if execution is not None:
            where.append("execution = %s")
            parameters.append(ExecutionStatus(execution).value)
        if role is not None:
            # Containment of a one-string array: an exact element, never part of one.
            where.append("roles @> %s::jsonb")
            parameters.append(_json([role]))
        sql = _select(self._sql.select_reviews, where, "created_at, id", limit, parameters)
        rows = self._read("list reviews", sql, parameters)
        return [self._review("list reviews", row[0]) for row in rows]

    def update_review(
        self,
        review_id: str,
        change: Callable[[Review], Review],
        events: Callable[[Review, Review], Sequence[AuditEvent]] | None = None,
    ) -> Review:
        """Apply ``change`` to a review in one transaction that holds its row.

        The row is read ``FOR UPDATE``: any other update of it, in any process, waits
        until this one commits, then reads what it wrote. Whatever ``change`` or
        ``events`` raises rolls the transaction back and propagates unchanged.

        Raises:
            KeyError: There is no such review.
            StoreError: The database failed.
            ValueError: A datetime in the changed review is naive.
        """
        what = f"update review {review_id!r}"

        def work(connection: _Connection) -> Review:
            found = connection.execute(self._sql.select_review_for_update, (review_id,))
            row = found.fetchone()
            if row is None:
                raise KeyError(review_id)
            before = self._review(what, row[0])
            # The caller's functions run outside any wrapping: what they raise is theirs.
            after = change(before)
            added = list(events(before, after)) if events is not None else []
            changed = (*_review_row(after), review_id)
            audit_rows = [_audit_row(event) for event in added]
            connection.execute(self._sql.update_review, changed)
            if audit_rows:
                with connection.cursor() as cursor:
                    cursor.executemany(self._sql.insert_audit, audit_rows)
            return after

        return self._execute(what, work, transaction=True)

    def claim_ready(
        self,
        worker: str,
        now: dt.datetime,
        lease: dt.timedelta,
        actions: Sequence[tuple[str, str]],
        limit: int | None = None,
    ) -> list[Review]:
        """Claim ready approved actions in one transaction, locking their rows ``FOR
        UPDATE SKIP LOCKED``: workers claiming at once take different actions, and none
        is ever claimed twice."""
        check_limit(limit)
        keys = [f"{workflow}\x1f{action}" for workflow, action in actions]
        if not keys or limit == 0:
            return []
        what = "claim ready actions"

        def work(connection: _Connection) -> list[Review]:
            found = connection.execute(
                self._sql.select_ready_for_update, (keys, limit if limit is not None else None)
            ).fetchall()
            claimed = []
            for (data,) in found:
                after = self._review(what, data).claim(worker, now, lease)
                connection.execute(self._sql.update_review, (*_review_row(after), after.id))
                claimed.append(after)
            return claimed

        return self._execute(what, work, transaction=True)

    # --- reservations -------------------------------------------------------------------

    def reserve(self, reservation: Reservation, limit: float, since: dt.datetime) -> bool:
        """Hold ``reservation`` if the limit allows, in one transaction that first takes
        an advisory lock on its workflow and rule (no other reservation of that limit, in
        any process, runs between the sum and the insert)."""
        row = (
            reservation.id,
            reservation.workflow,
            reservation.rule,
            float(reservation.amount),
            _aware("created_at", reservation.created_at),
            reservation.run_id,
        )
        window = (reservation.workflow, reservation.rule, _aware("since", since))
        key = json.dumps(["reserve", self.schema or "", reservation.workflow, reservation.rule])

        def work(connection: _Connection) -> bool:
            # A statement of its own: the sum's snapshot is taken after the lock is held,
            # so it sees every reservation committed by the lock's previous holders.
            connection.execute(self._sql.lock_reservations, (key,))
            found = connection.execute(self._sql.sum_reserved, window).fetchone()
            total = float(found[0]) if found else 0.0
            if passes_limit(total, reservation.amount, limit):
                return False
            connection.execute(self._sql.insert_reservation, row)
            return True

        return self._execute(
            f"reserve {reservation.rule!r} for {reservation.workflow!r}", work, transaction=True
        )

    def settle(self, reservation_id: str, amount: float) -> None:
        """Replace a reservation's amount with what was really used."""
        self._execute(
            f"settle reservation {reservation_id!r}",
            lambda connection: connection.execute(
                self._sql.settle_reservation, (float(amount), reservation_id)
            ),
        )

    def reserved(self, workflow: str, rule: str, since: dt.datetime) -> float:
        """The sum of the reservations for ``workflow`` and ``rule`` since ``since``."""
        rows = self._read(
            f"read reservations of {workflow!r}",
            self._sql.sum_reserved,
            (workflow, rule, _aware("since", since)),
        )
        return float(rows[0][0]) if rows else 0.0

    def close(self) -> None:
        """Close the pool; the store may not be used afterwards.

        Call it once no call is in flight: a call running meanwhile may fail.
        """
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):  # best effort: the store is closed anyway
                pool.close(timeout=_CLOSE_TIMEOUT)


class _Exists(Exception):
    """A review with the id exists: raised inside the transaction to roll it back."""


def _select(
    base: str, where: list[str], order: str, limit: int | None, parameters: list[Any]
) -> str:
    sql = base
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order}"
    check_limit(limit)
    if limit is not None:
        sql += " LIMIT %s"
        parameters.append(limit)
    return sql
