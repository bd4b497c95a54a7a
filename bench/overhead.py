"""What a governed call costs, next to a bare call, a raw OpenTelemetry span and a SQLite commit.

Run::

    /work/venv/bin/python bench/overhead.py [--calls N] [--repeats R] [--profile]

Every case is measured in this one process and this one run: after a warm-up, each round
times ``calls`` calls of every case (``calls // 4`` for the SQLite cases), in an order that
rotates from round to round so that machine noise is spread over all of them, and keeps
the mean cost per call of that round. The table shows the median over rounds.

Only ratios between cases of the same run mean anything: the absolute figures move with
the machine, its load and its CPU frequency. A target that is missed prints MISS; the
script still exits 0, as it is a benchmark, not a test.

``--profile`` skips the benchmark and runs the governed call on the memory store under
cProfile, printing where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import platform
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import ada_governance
from ada_governance import MemoryStore, Workflow, governed_workflow
from ada_governance.governance import Governance
from ada_governance.storage.sqlite import SQLiteStore
from ada_governance.testing import memory_governance

# A block of `n` calls of one case; returns the elapsed nanoseconds.
Block = Callable[[int], int]

TARGET = 1.5

SPAN_ATTRIBUTES: dict[str, Any] = {
    "workflow.name": "bench",
    "workflow.version": "1",
    "workflow.stage": "draft",
    "run.id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "trigger.id": "00112233445566778899aabbccddeeff",
    "trigger.type": "bench",
    "owner": "revenue-ops",
    "model_calls": 0,
    "cost": 0.0,
    "fallback_used": False,
}

# A row shaped like a ledger row (22 columns, about 400 bytes), for the bare commit.
LEDGER_LIKE_ROW: tuple[Any, ...] = (
    "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "bench",
    "1",
    "succeeded",
    "00112233445566778899aabbccddeeff",
    "bench",
    "2026-01-01T00:00:00.000000+00:00",
    "2026-01-01T00:00:00.000001+00:00",
    "2026-01-01T00:00:00.000002+00:00",
    None,
    None,
    None,
    None,
    False,
    False,
    0,
    0,
    0,
    0.0,
    None,
    "{}",
    '{"note": "' + "x" * 150 + '"}',
)


def work(x: int) -> int:
    """The trivial function every case calls."""
    return x + 1


# --- the cases -------------------------------------------------------------------------------


def bare_block() -> Block:
    def block(n: int) -> int:
        fn = work
        start = time.perf_counter_ns()
        for i in range(n):
            fn(i)
        return time.perf_counter_ns() - start

    return block


class SpanCase:
    """A raw SDK span per call; its own provider, never the global one."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("bench")

    def block(self, n: int) -> int:
        fn = work
        start_span = self.tracer.start_as_current_span
        attributes = SPAN_ATTRIBUTES
        start = time.perf_counter_ns()
        for i in range(n):
            with start_span("bench", attributes=attributes):
                fn(i)
        elapsed = time.perf_counter_ns() - start
        # Outside the timing: export what is queued (so no span is dropped for a full
        # queue, and no export spills into the next case), then drop it to keep memory flat.
        self.provider.force_flush()
        self.exporter.clear()
        return elapsed

    def close(self) -> None:
        self.provider.shutdown()


def bench_workflow() -> Workflow:
    return Workflow(name="bench", trigger={"event": "bench"})


class MemoryGovernedCase:
    """A governed call on the memory store; a fresh store each block keeps memory flat."""

    def __init__(self) -> None:
        self.workflow = bench_workflow()
        self.fn = self._decorate()

    def _decorate(self) -> Callable[[int], int]:
        governance = memory_governance(development=True)
        return governed_workflow(self.workflow, governance=governance)(work)

    def block(self, n: int) -> int:
        fn = self.fn
        start = time.perf_counter_ns()
        for i in range(n):
            fn(i)
        elapsed = time.perf_counter_ns() - start
        self.fn = self._decorate()
        return elapsed


class TracedGovernedCase:
    """A governed call on the memory store with the OpenTelemetry SDK recording its spans
    (BatchSpanProcessor, in-memory exporter) and metrics (an in-memory reader): the cost
    a user with telemetry on pays, against the raw span."""

    def __init__(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader

        self.workflow = bench_workflow()
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
        self.fn = self._decorate()

    def _decorate(self) -> Callable[[int], int]:
        governance = Governance(
            MemoryStore(),
            development=True,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
        )
        return governed_workflow(self.workflow, governance=governance)(work)

    def block(self, n: int) -> int:
        fn = self.fn
        start = time.perf_counter_ns()
        for i in range(n):
            fn(i)
        elapsed = time.perf_counter_ns() - start
        self.tracer_provider.force_flush()
        self.exporter.clear()
        self.fn = self._decorate()
        return elapsed

    def close(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


class SQLiteGovernedCase:
    """A governed call on the SQLite store, in a file that keeps its ledger."""

    def __init__(self, path: Path) -> None:
        self.governance = Governance(SQLiteStore(path), development=True)
        self.fn = governed_workflow(bench_workflow(), governance=self.governance)(work)

    def block(self, n: int) -> int:
        fn = self.fn
        start = time.perf_counter_ns()
        for i in range(n):
            fn(i)
        return time.perf_counter_ns() - start

    def close(self) -> None:
        self.governance.close()


class SQLiteCommitCase:
    """One WAL commit on its own: the floor under any durable ledger write."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA busy_timeout = 30000")
        self.connection.execute("PRAGMA journal_mode = WAL")
        self.connection.execute("PRAGMA synchronous = NORMAL")
        columns = ", ".join(f"c{index}" for index in range(len(LEDGER_LIKE_ROW)))
        self.connection.execute(f"CREATE TABLE t ({columns})")
        self.insert = f"INSERT INTO t VALUES ({', '.join('?' * len(LEDGER_LIKE_ROW))})"

    def block(self, n: int) -> int:
        execute = self.connection.execute
        insert = self.insert
        row = LEDGER_LIKE_ROW
        start = time.perf_counter_ns()
        for _ in range(n):
            execute("BEGIN IMMEDIATE")
            execute(insert, row)
            execute("COMMIT")
        return time.perf_counter_ns() - start

    def close(self) -> None:
        self.connection.close()


# --- measuring -------------------------------------------------------------------------------


def measure(
    cases: dict[str, tuple[Block, int]], repeats: int, warmup: int
) -> dict[str, list[float]]:
    """Return, for each case, its mean µs per call in each round."""
    names = list(cases)
    for name in names:
        block, calls = cases[name]
        block(max(1, min(calls, warmup)))
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            block, calls = cases[name]
            gc.collect()
            results[name].append(block(calls) / calls / 1000)
    return results


def cpu_description() -> str:
    logical = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    return f"{logical} logical cores ({usable} usable by this process)"


def print_header(args: argparse.Namespace) -> None:
    from importlib.metadata import version

    print("ada_governance overhead benchmark")
    print(
        f"  Python {platform.python_version()} ({platform.python_implementation()}) "
        f"on {platform.system()} {platform.machine()}, {cpu_description()}"
    )
    print(
        f"  ada_governance {ada_governance.__version__}, "
        f"opentelemetry-sdk {version('opentelemetry-sdk')}, SQLite {sqlite3.sqlite_version}"
    )
    print(
        "  Note: this machine is noisy: absolute figures vary from run to run; only "
        "ratios between cases of this same run are meaningful."
    )


def report(results: dict[str, list[float]], calls: dict[str, int], repeats: int) -> None:
    medians = {name: statistics.median(values) for name, values in results.items()}
    print(f"\n{repeats} rounds, order rotated each round; median of per-round means")
    print(f"{'case':<34}{'calls/round':>12}{'median µs':>12}{'min µs':>10}{'max µs':>10}")
    for name, values in results.items():
        print(
            f"{name:<34}{calls[name]:>12}{medians[name]:>12.3f}"
            f"{min(values):>10.3f}{max(values):>10.3f}"
        )

    def paired(numerator: Callable[[int], float], denominator: Callable[[int], float]) -> float:
        # The same ratio computed within each round, then the median: rounds share the
        # machine's state, so this is the steadier figure on a noisy machine.
        return statistics.median(numerator(i) / denominator(i) for i in range(repeats))

    def at(name: str) -> Callable[[int], float]:
        return lambda i: results[name][i]

    span, commit = at(SPAN), at(COMMIT)
    ratios = [
        (
            "governed(memory) / raw span",
            medians[MEMORY] / medians[SPAN],
            paired(at(MEMORY), span),
            True,
        ),
        (
            "governed(sqlite) / (raw span + WAL commit)",
            medians[SQLITE] / (medians[SPAN] + medians[COMMIT]),
            paired(at(SQLITE), lambda i: span(i) + commit(i)),
            True,
        ),
        (
            "governed(memory, SDK tracing+metrics) / raw span",
            medians[TRACED] / medians[SPAN],
            paired(at(TRACED), span),
            False,
        ),
        (
            "governed(memory) / bare call",
            medians[MEMORY] / medians[BARE],
            paired(at(MEMORY), at(BARE)),
            False,
        ),
        ("raw span / bare call", medians[SPAN] / medians[BARE], paired(span, at(BARE)), False),
    ]
    print(f"\n{'ratio':<46}{'of medians':>12}{'per round':>11}  target")
    for label, of_medians, per_round, targeted in ratios:
        verdict = ""
        if targeted:
            verdict = f"≤ {TARGET}  {'PASS' if of_medians <= TARGET else 'MISS'}"
        print(f"{label:<46}{of_medians:>12.2f}{per_round:>11.2f}  {verdict}".rstrip())
    print(
        "\n'of medians' divides the medians above (PASS/MISS is judged on it); "
        "'per round' is the median of the ratio taken within each round."
    )


BARE = "bare call"
SPAN = "raw OTel span (10 attributes)"
MEMORY = "governed, memory store"
TRACED = "governed, memory, SDK telemetry"
SQLITE = "governed, SQLite store"
COMMIT = "SQLite WAL commit alone"


def run_benchmark(args: argparse.Namespace) -> None:
    print_header(args)
    sqlite_calls = max(1, args.calls // 4)
    with tempfile.TemporaryDirectory(prefix="ada-bench-") as folder:
        span = SpanCase()
        traced = TracedGovernedCase()
        sqlite_governed = SQLiteGovernedCase(Path(folder) / "bench.db")
        commit = SQLiteCommitCase(Path(folder) / "commit.db")
        try:
            cases: dict[str, tuple[Block, int]] = {
                BARE: (bare_block(), args.calls),
                SPAN: (span.block, args.calls),
                MEMORY: (MemoryGovernedCase().block, args.calls),
                TRACED: (traced.block, args.calls),
                SQLITE: (sqlite_governed.block, sqlite_calls),
                COMMIT: (commit.block, sqlite_calls),
            }
            started = time.perf_counter()
            results = measure(cases, args.repeats, warmup=args.calls // 2)
            elapsed = time.perf_counter() - started
        finally:
            span.close()
            traced.close()
            sqlite_governed.close()
            commit.close()
    report(results, {name: calls for name, (_, calls) in cases.items()}, args.repeats)
    print(f"\nmeasured in {elapsed:.1f} s")


def run_profile(args: argparse.Namespace) -> None:
    print_header(args)
    calls = args.calls * 5
    governance = memory_governance(development=True)
    fn = governed_workflow(bench_workflow(), governance=governance)(work)
    for i in range(min(calls, 1000)):
        fn(i)
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(calls):
        fn(i)
    profiler.disable()
    print(f"\ncProfile of {calls} governed calls on the memory store, top 25 by tottime")
    print("(cProfile inflates every function call; read the shares, not the times)")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats(pstats.SortKey.TIME).print_stats(25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per case per round")
    parser.add_argument("--repeats", type=int, default=15, help="rounds")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile calls*5 governed calls on the memory store instead of benchmarking",
    )
    args = parser.parse_args(argv)
    if args.calls < 1 or args.repeats < 1:
        parser.error("--calls and --repeats must be at least 1")
    if args.profile:
        run_profile(args)
    else:
        run_benchmark(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
