"""Governed calls per second with 1, 4 and 8 processes, on PostgreSQL and on SQLite.

Run::

    /work/venv/bin/python bench/throughput.py [--pg URL] [--seconds S] [--processes 1,4,8]

Each case spawns that many processes sharing one store (one SQLite file; one PostgreSQL
schema, created for the run and dropped after it). Each process opens its own
`Governance`, warms up, waits for the others, then calls a trivial governed function
(a draft workflow, in development mode: one state read and one ledger row per call) for
``--seconds``. The table shows the calls per second of all processes together.

PostgreSQL is ``--pg``, else ``$ADA_GOVERNANCE_BENCH_PG_DSN``, else
``$ADA_GOVERNANCE_TEST_PG_DSN``, else ``postgresql://postgres@127.0.0.1:5432/test``; the
role needs to create a schema there. Without a server, the PostgreSQL column says why.

The figures move with the machine (its cores, its disk's fsync), its load and the
server's settings (``synchronous_commit``); compare columns of one run, not runs of
different machines. It is a benchmark, not a test: it exits 0 whatever it measures.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import queue
import statistics
import sys
import tempfile
import time
import uuid
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ada_governance import Governance, TriggerEvent, Workflow, governed_workflow
from ada_governance.storage import open_store

WORKFLOW = Workflow(name="bench", trigger={"event": "job"})
WARM_UP = 20
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def worker(url: str, seconds: float, start: Barrier, results: Any) -> None:
    """In a spawned process: warm up, wait for the others, call for ``seconds``."""
    try:
        governance = Governance(url, development=True)

        @governed_workflow(WORKFLOW, governance=governance)
        def call(event: TriggerEvent) -> int:
            return 1

        event = TriggerEvent.now("job")
        for _ in range(WARM_UP):
            call(event)
        start.wait(timeout=120)
        calls = 0
        began = time.perf_counter()
        deadline = began + seconds
        while time.perf_counter() < deadline:
            calls += call(event)
        elapsed = time.perf_counter() - began
        governance.close()
        results.put((calls, elapsed, None))
    except BaseException as error:
        results.put((0, 0.0, f"{type(error).__name__}: {error}"))


def measure(url: str, processes: int, seconds: float) -> float:
    """Governed calls per second of ``processes`` processes together on ``url``."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    workers = [
        context.Process(target=worker, args=(url, seconds, start, results))
        for _ in range(processes)
    ]
    for process in workers:
        process.start()
    try:
        outcomes = [results.get(timeout=seconds + 120) for _ in workers]
    except queue.Empty:
        raise RuntimeError("a worker did not answer in time") from None
    finally:
        for process in workers:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
    errors = [error for _, _, error in outcomes if error]
    if errors:
        raise RuntimeError(errors[0])
    # The processes ran side by side for about the same time; the slowest sets it.
    return sum(calls for calls, _, _ in outcomes) / max(elapsed for _, elapsed, _ in outcomes)


def with_schema(url: str, schema: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "schema"] + [("schema", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def postgres_url(base: str) -> tuple[str | None, str, str]:
    """A URL on a fresh schema, its schema's name, and what to print about the server
    (or why there is none)."""
    schema = f"ada_bench_{uuid.uuid4().hex[:12]}"
    try:
        import psycopg
    except ImportError:
        return None, schema, "psycopg is not installed: pip install 'ada-governance[postgres]'"
    url = with_schema(base, schema)
    try:
        store = open_store(url)
        store.migrate()  # type: ignore[attr-defined]
        store.close()
        admin_url = urlunsplit(urlsplit(base)._replace(query=""))
        with psycopg.connect(admin_url, autocommit=True) as connection:
            row = connection.execute(
                "SELECT current_setting('server_version'), current_setting('synchronous_commit')"
            ).fetchone()
    except Exception as error:
        return None, schema, f"PostgreSQL unavailable ({' '.join(str(error).split())})"
    version, synchronous = row if row else ("?", "?")
    return url, schema, f"PostgreSQL {version}, synchronous_commit={synchronous}"


def drop_schema(base: str, schema: str) -> None:
    try:
        import psycopg

        admin_url = urlunsplit(urlsplit(base)._replace(query=""))
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except Exception as error:  # a benchmark: say so, and go on
        print(f"note: could not drop schema {schema}: {error}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pg",
        default=os.environ.get("ADA_GOVERNANCE_BENCH_PG_DSN")
        or os.environ.get("ADA_GOVERNANCE_TEST_PG_DSN")
        or DEFAULT_PG,
        help="the PostgreSQL server to measure (a schema is created and dropped there)",
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="calling time per case")
    parser.add_argument(
        "--processes", default="1,4,8", help="comma-separated process counts (default 1,4,8)"
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",") if n.strip()]

    began = time.perf_counter()
    pg_url, schema, pg_about = postgres_url(args.pg)
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs;"
        f" {pg_about}; {args.seconds:g} s of calls per case"
    )
    table: dict[int, dict[str, str]] = {n: {} for n in counts}
    with tempfile.TemporaryDirectory() as folder:
        sqlite_url = f"sqlite:///{(Path(folder) / 'bench.db').as_posix()}"
        open_store(sqlite_url).close()
        try:
            for n in counts:
                for name, url in (("sqlite", sqlite_url), ("postgres", pg_url)):
                    if url is None:
                        table[n][name] = "-"
                        continue
                    try:
                        table[n][name] = f"{measure(url, n, args.seconds):,.0f}"
                    except RuntimeError as error:
                        table[n][name] = "failed"
                        print(f"{name} with {n} processes failed: {error}", file=sys.stderr)
        finally:
            if pg_url is not None:
                drop_schema(args.pg, schema)

    header = ["processes", "SQLite calls/s", "PostgreSQL calls/s", "PostgreSQL / SQLite"]
    rows = [header]
    for n in counts:
        sqlite, postgres = table[n]["sqlite"], table[n]["postgres"]
        try:
            ratio = f"{float(postgres.replace(',', '')) / float(sqlite.replace(',', '')):.2f}"
        except ValueError:
            ratio = "-"
        rows.append([str(n), sqlite, postgres, ratio])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print()
    for index, row in enumerate(rows):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))
    if pg_url is None:
        print(f"\nPostgreSQL not measured: {pg_about}")
    per_process = [
        float(table[n]["postgres"].replace(",", "")) / n
        for n in counts
        if table[n]["postgres"] not in ("-", "failed")
    ]
    if per_process:
        print(f"\nPostgreSQL calls/s per process: median {statistics.median(per_process):,.0f}")
    print(f"(took {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
