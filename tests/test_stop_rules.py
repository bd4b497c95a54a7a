"""Stop rules at run time: each rule trips exactly at its threshold and not before,
pausing the workflow (stored stage, audit event, metric, notifiers); budgets reserve
before a run and settle after it, so concurrent runs in threads, processes and event
loops never pass the limit. Every test runs against the memory store and a SQLite file,
with a `ManualClock`.

Async code is driven with ``asyncio.run`` (no pytest-asyncio). Functions run in spawned
processes live in ``_stop_support``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import math
import multiprocessing
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import _stop_support
from _stop_support import START
from ada_governance import (
    Budget,
    BudgetUnit,
    BudgetWindow,
    CheckFailed,
    ErrorRate,
    ExceptionVolume,
    Governance,
    MemoryStore,
    RejectionRate,
    Review,
    RunCap,
    RunRefused,
    RunStatus,
    SlaBreachRate,
    SQLiteStore,
    Stage,
    StopRuleTripped,
    TriggerEvent,
    Workflow,
    WorkflowPaused,
    current_run,
    governed_run,
    governed_workflow,
)
from ada_governance import _engine as engine
from ada_governance.stops import Trip, reservation_rule, window_start
from ada_governance.storage import Store, StoreError
from ada_governance.testing import ManualClock

OWNER = "Olga Owner"
USD_DAY = "budget:usd:day"
TOKENS_DAY = "budget:tokens:day"
RUN_CAP_1H = "run_cap:3600s"


class Cancelled(BaseException):
    """Stands for a cancellation: the caller stopped the run, it did not fail."""


# --- fixtures ------------------------------------------------------------------------------


@dataclass
class TripNotifier:
    """A notifier that keeps the trips (and review notices) it is told about."""

    trips: list[tuple[str, str | None, Trip]] = field(default_factory=list)
    reviews: list[str] = field(default_factory=list)

    def notify(self, kind: str, review: Review) -> None:
        """Keep a review notice."""
        self.reviews.append(kind)

    def notify_trip(self, workflow: str, owner: str | None, trip: Trip) -> None:
        """Keep a trip."""
        self.trips.append((workflow, owner, trip))


@dataclass
class Rig:
    """A governance on the test's store and clock, with a metric reader and a notifier."""

    gov: Governance
    clock: ManualClock
    reader: InMemoryMetricReader
    notifier: TripNotifier

    @property
    def store(self) -> Store:
        """The governance's store."""
        return self.gov.store

    def held(
        self, workflow: Workflow, rule: str = USD_DAY, since: dt.datetime | None = None
    ) -> float:
        """What the store holds for ``rule`` since ``since`` (today, UTC, by default)."""
        start = since or window_start(BudgetWindow.DAY, self.clock.now())
        return self.store.reserved(workflow.name, rule, start)

    def trip_counts(self, workflow: Workflow) -> dict[str, int]:
        """The ``ada.stop_rule.trips`` counter for ``workflow``, by rule."""
        counts: Counter[str] = Counter()
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != "ada.stop_rule.trips":
                        continue
                    for point in metric.data.data_points:
                        attributes = point.attributes or {}
                        if attributes.get("gen_ai.workflow.name") == workflow.name:
                            value = getattr(point, "value", 0)
                            counts[str(attributes["ada.stop_rule"])] += int(value)
        return dict(counts)

    def assert_open(self, workflow: Workflow) -> None:
        """Nothing has tripped: not paused, no trip event, no metric, no notice."""
        state = self.gov.state(workflow)
        assert state is None or state.stage is not Stage.PAUSED
        assert self.gov.audit_events(workflow, event="stop_rule_tripped") == []
        assert self.trip_counts(workflow) == {}
        assert [t for t in self.notifier.trips if t[0] == workflow.name] == []

    def assert_tripped(
        self,
        workflow: Workflow,
        call: Callable[[], Any],
        rule: str,
        figure: Any,
        threshold: float,
        sample: int,
        run_id: str | None = None,
    ) -> None:
        """``rule`` tripped once with these values, and ``call`` is now refused as paused."""
        state = self.gov.state(workflow)
        assert state is not None
        assert state.stage is Stage.PAUSED
        assert state.actor == f"stop-rule:{rule}"
        [event] = self.gov.audit_events(workflow, event="stop_rule_tripped")
        assert event.actor == f"stop-rule:{rule}"
        assert event.run_id == run_id
        data = event.data
        assert (data["rule"], data["threshold"], data["sample"]) == (rule, threshold, sample)
        assert data["figure"] == figure
        assert data["owner"] == OWNER
        assert data["message"]
        assert self.trip_counts(workflow) == {rule: 1}
        [(told, owner, trip)] = [t for t in self.notifier.trips if t[0] == workflow.name]
        assert (told, owner) == (workflow.name, OWNER)
        assert (trip.rule, trip.threshold, trip.sample) == (rule, threshold, sample)
        assert trip.figure == figure
        with pytest.raises(WorkflowPaused) as refused:
            call()
        [row] = [r for r in self.gov.runs(workflow) if r.run_id == refused.value.run_id]
        assert (row.status, row.refusal_reason) == (RunStatus.REFUSED, "paused")
        assert self.trip_counts(workflow) == {rule: 1}
        assert len(self.gov.audit_events(workflow, event="stop_rule_tripped")) == 1


@pytest.fixture
def clock() -> ManualClock:
    """A clock that stands at mid-day UTC until a test moves it."""
    return ManualClock(START)


@pytest.fixture(params=["memory", "sqlite"])
def rig(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Iterator[Rig]:
    """A governance in development mode on a memory store or a SQLite file."""
    store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "stops.db")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    notifier = TripNotifier()
    gov = Governance(
        store, clock=clock, development=True, meter_provider=provider, notifiers=[notifier]
    )
    yield Rig(gov, clock, reader, notifier)
    store.close()
    provider.shutdown()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> Callable[[], str]:
    """Make workflow names unique to this test (and to each call)."""
    base = "stop-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:90]
    counter = itertools.count()
    return lambda: f"{base}-{next(counter)}"


# --- helpers -------------------------------------------------------------------------------


def declare(name: str, *rules: Any, **fields: Any) -> Workflow:
    """A workflow triggered by ``job``, owned by `OWNER`, with these stop rules."""
    return Workflow(
        name=name,
        trigger={"event": "job"},
        owner={"name": OWNER},
        stop_rules=list(rules),
        **fields,
    )


def gate(event: TriggerEvent | None = None, *, allow: bool = True, **_: Any) -> bool | str:
    """A pre-check that refuses the call when ``allow`` is false."""
    return True if allow else "not allowed"


def worker(rig: Rig, workflow: Workflow) -> Callable[..., str]:
    """A governed function that spends, fails or is cancelled as told; returns its run id."""

    @governed_workflow(workflow, governance=rig.gov)
    def work(
        event: TriggerEvent | None = None,
        *,
        cost: float = 0.0,
        tokens: tuple[int, int] = (0, 0),
        fail: bool = False,
        cancel: bool = False,
        allow: bool = True,
    ) -> str:
        run = current_run()
        if cost or any(tokens):
            run.record_model_call(
                "model", input_tokens=tokens[0], output_tokens=tokens[1], cost=cost
            )
        if cancel:
            raise Cancelled
        if fail:
            raise RuntimeError("the model timed out")
        return run.id

    return work


def fail(work: Callable[..., str], **options: Any) -> None:
    """Call ``work`` so that its run fails."""
    with pytest.raises(RuntimeError, match="timed out"):
        work(fail=True, **options)


def resume(rig: Rig, workflow: Workflow) -> None:
    """Put a paused workflow back in its declared stage."""
    rig.gov.set_stage(workflow, workflow.stage, actor="olga", reason="cause dealt with")


def statuses(rig: Rig, workflow: Workflow) -> Counter[RunStatus]:
    """How many ledger rows of ``workflow`` have each status."""
    return Counter(row.status for row in rig.gov.runs(workflow))


# --- pure functions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "now", "start"),
    [
        (BudgetWindow.HOUR, "2026-03-10T12:34:56.789+00:00", "2026-03-10T12:00:00+00:00"),
        (BudgetWindow.DAY, "2026-03-10T23:59:59.999999+00:00", "2026-03-10T00:00:00+00:00"),
        (BudgetWindow.MONTH, "2026-03-31T23:59:59+00:00", "2026-03-01T00:00:00+00:00"),
        (BudgetWindow.DAY, "2026-03-10T21:30:00-05:00", "2026-03-11T00:00:00+00:00"),
        (BudgetWindow.MONTH, "2026-03-01T00:30:00+02:00", "2026-02-01T00:00:00+00:00"),
    ],
)
def test_window_start_is_the_utc_calendar_window(
    window: BudgetWindow, now: str, start: str
) -> None:
    """A budget's window starts at the UTC hour, day or month ``now`` falls in."""
    found = window_start(window, dt.datetime.fromisoformat(now))
    assert found == dt.datetime.fromisoformat(start)
    assert found.utcoffset() == dt.timedelta(0)


def test_reservation_rule_keys_tell_limits_apart() -> None:
    """Reservations are kept under a key of the budget's unit and window, or the cap's window."""
    assert reservation_rule(Budget(limit=1, per_run=0.5)) == USD_DAY
    assert reservation_rule(Budget(limit=1, per_run=0.5, unit="tokens", window="hour")) == (
        "budget:tokens:hour"
    )
    assert reservation_rule(RunCap(max_runs=3, window="1h")) == RUN_CAP_1H


# --- budget --------------------------------------------------------------------------------


def test_budget_trips_on_the_run_that_would_pass_the_limit(rig: Rig, name: Any) -> None:
    """limit 1.0, per_run 0.25: four runs fit; the fifth is refused, recorded and trips."""
    workflow = declare(name(), Budget(limit=1.0, per_run=0.25))
    work = worker(rig, workflow)

    for n in range(1, 5):
        work(cost=0.25)
        assert rig.held(workflow) == 0.25 * n
        rig.assert_open(workflow)

    with pytest.raises(StopRuleTripped) as info:
        work(cost=0.25)

    error = info.value
    assert (error.rule, error.figure, error.threshold) == ("budget", 1.25, 1.0)
    assert error.reason == "stop_rule"
    assert error.workflow == workflow.name
    assert rig.held(workflow) == 1.0
    [refused] = rig.gov.runs(workflow, status=RunStatus.REFUSED)
    assert (refused.run_id, refused.refusal_reason) == (error.run_id, "stop_rule")
    [refusal] = rig.gov.audit_events(workflow, event="run_refused")
    assert refusal.run_id == error.run_id
    assert refusal.data["reason"] == "stop_rule"
    assert refusal.data["rule"] == "budget"
    assert statuses(rig, workflow)[RunStatus.SUCCEEDED] == 4
    rig.assert_tripped(workflow, work, "budget", 1.25, 1.0, 0, run_id=error.run_id)


def test_budget_reserves_per_run_while_runs_are_in_flight(rig: Rig, name: Any) -> None:
    """Four runs settled to 0.1 hold 0.4; two open runs hold 0.25 each; the seventh trips."""
    workflow = declare(name(), Budget(limit=1.0, per_run=0.25))
    work = worker(rig, workflow)
    for _ in range(4):
        work(cost=0.1)
    assert rig.held(workflow) == pytest.approx(0.4)

    with contextlib.ExitStack() as stack:
        first = stack.enter_context(governed_run(workflow, governance=rig.gov))
        assert rig.held(workflow) == pytest.approx(0.65)
        second = stack.enter_context(governed_run(workflow, governance=rig.gov))
        assert rig.held(workflow) == pytest.approx(0.9)
        rig.assert_open(workflow)
        with (
            pytest.raises(StopRuleTripped) as info,
            governed_run(workflow, governance=rig.gov),
        ):
            pytest.fail("the body of a refused run ran")  # pragma: no cover
        assert rig.held(workflow) == pytest.approx(0.9)
        for run in (first, second):
            run.record_model_call("model", cost=0.1)

    # 0.4 settled + 0.25 + 0.25 reserved, and one more 0.25 would be 1.15 > 1.0.
    assert info.value.figure == pytest.approx(1.15)
    assert info.value.threshold == 1.0
    assert rig.held(workflow) == pytest.approx(0.6)
    assert statuses(rig, workflow) == {RunStatus.SUCCEEDED: 6, RunStatus.REFUSED: 1}
    rig.assert_tripped(
        workflow, work, "budget", pytest.approx(1.15), 1.0, 0, run_id=info.value.run_id
    )


def test_budget_settles_each_run_to_what_it_spent(rig: Rig, name: Any) -> None:
    """Runs that spend 0.1 of a 0.25 reservation settle to 0.1, so eight runs fit in 1.0."""
    workflow = declare(name(), Budget(limit=1.0, per_run=0.25))
    work = worker(rig, workflow)
    # Run k starts with 0.1 * (k - 1) held: it fits while that plus 0.25 is at most 1.0.
    fits = math.floor((1.0 - 0.25) / 0.1 + 1e-9) + 1
    assert fits == 8

    for n in range(1, fits + 1):
        work(cost=0.1)
        assert rig.held(workflow) == pytest.approx(0.1 * n)
    rig.assert_open(workflow)

    with pytest.raises(StopRuleTripped) as info:
        work(cost=0.1)

    assert info.value.figure == pytest.approx(1.05)
    assert rig.held(workflow) == pytest.approx(0.8)
    assert sum(row.cost for row in rig.gov.runs(workflow)) == pytest.approx(0.8)
    rig.assert_tripped(
        workflow, work, "budget", pytest.approx(1.05), 1.0, 0, run_id=info.value.run_id
    )


def test_token_budget_settles_input_plus_output_tokens(rig: Rig, name: Any) -> None:
    """A tokens budget reserves per_run tokens and settles to input plus output tokens."""
    workflow = declare(name(), Budget(limit=1000, per_run=400, unit=BudgetUnit.TOKENS))
    work = worker(rig, workflow)

    with governed_run(workflow, governance=rig.gov) as run:
        assert rig.held(workflow, TOKENS_DAY) == 400
        run.record_model_call("model", input_tokens=100, output_tokens=50, cost=0.5)
        run.record_model_call("model", input_tokens=30, output_tokens=20, cost=0.5)
    assert rig.held(workflow, TOKENS_DAY) == 200
    assert rig.held(workflow, USD_DAY) == 0

    # Run k starts with 200 * (k - 1) held; it fits while that plus 400 is at most 1000.
    for n in range(2, 5):
        work(tokens=(150, 50), cost=1.0)
        assert rig.held(workflow, TOKENS_DAY) == 200 * n
    rig.assert_open(workflow)

    with pytest.raises(StopRuleTripped) as info:
        work(tokens=(150, 50))

    assert (info.value.figure, info.value.threshold) == (1200.0, 1000.0)
    rig.assert_tripped(workflow, work, "budget", 1200.0, 1000.0, 0, run_id=info.value.run_id)


def test_budget_resets_on_a_new_utc_day(rig: Rig, name: Any) -> None:
    """A full daily budget stays full until midnight UTC, then starts again from zero."""
    workflow = declare(name(), Budget(limit=1.0, per_run=0.25))
    work = worker(rig, workflow)
    for _ in range(4):
        work(cost=0.25)

    rig.clock.advance(dt.timedelta(hours=11, minutes=59, seconds=59))  # 23:59:59
    with pytest.raises(StopRuleTripped):
        work(cost=0.25)
    resume(rig, workflow)

    rig.clock.advance(1)  # midnight: a new day
    assert rig.held(workflow) == 0
    for n in range(1, 5):
        work(cost=0.25)
        assert rig.held(workflow) == 0.25 * n
    with pytest.raises(StopRuleTripped) as info:
        work(cost=0.25)

    assert info.value.figure == 1.25
    yesterday = window_start(BudgetWindow.DAY, START)
    assert rig.held(workflow, since=yesterday) == 2.0
    assert statuses(rig, workflow) == {RunStatus.SUCCEEDED: 8, RunStatus.REFUSED: 2}
    assert rig.trip_counts(workflow) == {"budget": 2}


# --- run cap -------------------------------------------------------------------------------


def test_run_cap_trips_on_the_run_past_max_and_frees_places_as_the_window_slides(
    rig: Rig, name: Any
) -> None:
    """RunCap(3, 1h): three runs pass, the fourth trips; an hour on, a place is free again."""
    workflow = declare(name(), RunCap(max_runs=3, window="1h"))
    work = worker(rig, workflow)
    first_at = rig.clock.now()

    for n in range(1, 4):
        work()
        assert rig.held(workflow, RUN_CAP_1H, first_at) == n
        rig.assert_open(workflow)
        rig.clock.advance(dt.timedelta(minutes=10))

    with pytest.raises(StopRuleTripped) as info:
        work()

    error = info.value
    assert (error.rule, error.figure, error.threshold) == ("run_cap", 4.0, 3.0)
    assert rig.held(workflow, RUN_CAP_1H, first_at) == 3
    [refused] = rig.gov.runs(workflow, status=RunStatus.REFUSED)
    assert (refused.run_id, refused.refusal_reason) == (error.run_id, "stop_rule")
    rig.assert_tripped(workflow, work, "run_cap", 4.0, 3.0, 3, run_id=error.run_id)

    # Resumed but still within the hour of all three runs: the cap still holds.
    resume(rig, workflow)
    with pytest.raises(StopRuleTripped):
        work()
    resume(rig, workflow)

    # Just past an hour after the first run: its place is free, and only its place.
    rig.clock.set(first_at + dt.timedelta(hours=1, seconds=1))
    work()
    with pytest.raises(StopRuleTripped) as again:
        work()
    assert again.value.figure == 4.0
    assert statuses(rig, workflow)[RunStatus.SUCCEEDED] == 4


# --- reservations given back -----------------------------------------------------------------


def test_a_check_that_refuses_a_run_gives_back_its_reservations(rig: Rig, name: Any) -> None:
    """A run refused by a pre-check holds nothing: budget and run cap totals are unchanged."""
    workflow = declare(
        name(),
        Budget(limit=1.0, per_run=0.25),
        RunCap(max_runs=3, window="1h"),
        checks=[{"name": "gate", "fn": gate}],
    )
    work = worker(rig, workflow)
    work(cost=0.1)
    assert rig.held(workflow) == pytest.approx(0.1)
    assert rig.held(workflow, RUN_CAP_1H) == 1

    for _ in range(3):
        with pytest.raises(CheckFailed):
            work(allow=False)
        assert rig.held(workflow) == pytest.approx(0.1)
        assert rig.held(workflow, RUN_CAP_1H) == 1

    refused = rig.gov.runs(workflow, status=RunStatus.REFUSED)
    assert [row.refusal_reason for row in refused] == ["check"] * 3
    work(cost=0.1)
    work(cost=0.1)
    rig.assert_open(workflow)
    with pytest.raises(StopRuleTripped) as info:
        work(cost=0.1)
    assert (info.value.rule, info.value.figure) == ("run_cap", 4.0)
    assert rig.held(workflow) == pytest.approx(0.3)


def test_a_limit_that_refuses_gives_back_what_earlier_limits_reserved(rig: Rig, name: Any) -> None:
    """When the run cap refuses a run, the budget it had already reserved is given back."""
    workflow = declare(name(), Budget(limit=1.0, per_run=0.25), RunCap(max_runs=2, window="1h"))
    work = worker(rig, workflow)
    work(cost=0.25)
    work(cost=0.25)

    with pytest.raises(StopRuleTripped) as info:
        work(cost=0.25)

    assert (info.value.rule, info.value.figure, info.value.threshold) == ("run_cap", 3.0, 2.0)
    assert rig.held(workflow) == 0.5
    assert rig.held(workflow, RUN_CAP_1H) == 2
    rig.assert_tripped(workflow, work, "run_cap", 3.0, 2.0, 2, run_id=info.value.run_id)


# --- error rate, exception volume, SLA breach rate ------------------------------------------------


def test_error_rate_waits_for_min_sample_then_trips_over_the_rate(rig: Rig, name: Any) -> None:
    """ErrorRate(0.5, min_sample=4): three failures of three never trip; 3 of 4 (0.75) does."""
    workflow = declare(name(), ErrorRate(max_rate=0.5, min_sample=4))
    work = worker(rig, workflow)
    for _ in range(3):
        fail(work)
        rig.assert_open(workflow)

    work()  # succeeds; the rule trips after it, over 4 finished runs

    rig.assert_tripped(workflow, work, "error_rate", 0.75, 0.5, 4)


def test_error_rate_at_the_rate_does_not_trip_and_over_it_does(rig: Rig, name: Any) -> None:
    """2 of 4 failed (0.5) is not over 0.5; 3 of 5 (0.6) is, and the failing run trips it."""
    workflow = declare(name(), ErrorRate(max_rate=0.5, min_sample=4))
    work = worker(rig, workflow)
    for failing in (True, False, True, False):
        if failing:
            fail(work)
        else:
            work()
        rig.assert_open(workflow)

    fail(work)

    rig.assert_tripped(workflow, work, "error_rate", 3 / 5, 0.5, 5)


def test_refused_and_cancelled_runs_are_not_finished_runs_for_rates(rig: Rig, name: Any) -> None:
    """Runs refused by a check and cancelled runs are in the ledger but not in the rate."""
    workflow = declare(
        name(), ErrorRate(max_rate=0.5, min_sample=4), checks=[{"name": "gate", "fn": gate}]
    )
    work = worker(rig, workflow)
    for _ in range(3):
        fail(work)
    for _ in range(2):
        with pytest.raises(CheckFailed):
            work(allow=False)
        with pytest.raises(Cancelled):
            work(cancel=True)
    assert statuses(rig, workflow) == {
        RunStatus.FAILED: 3,
        RunStatus.REFUSED: 2,
        RunStatus.CANCELLED: 2,
    }
    rig.assert_open(workflow)

    work()

    rig.assert_tripped(workflow, work, "error_rate", 0.75, 0.5, 4)


def test_error_rate_counts_only_runs_within_its_window(rig: Rig, name: Any) -> None:
    """Failures that started more than the window ago no longer count."""
    workflow = declare(name(), ErrorRate(max_rate=0.5, min_sample=4, window="1h"))
    work = worker(rig, workflow)
    for _ in range(3):
        fail(work)
    rig.clock.advance(dt.timedelta(hours=1, seconds=1))
    for _ in range(3):
        work()
    fail(work)  # 1 of 4 within the hour
    rig.assert_open(workflow)
    fail(work)
    fail(work)  # 3 of 6: 0.5, not over
    rig.assert_open(workflow)

    fail(work)

    rig.assert_tripped(workflow, work, "error_rate", 4 / 7, 0.5, 7)


def test_exception_volume_trips_on_the_failure_past_max_count(rig: Rig, name: Any) -> None:
    """ExceptionVolume(2): two failures (among successes) pass; the third trips."""
    workflow = declare(name(), ExceptionVolume(max_count=2))
    work = worker(rig, workflow)
    for failing in (False, True, False, True):
        if failing:
            fail(work)
        else:
            work()
        rig.assert_open(workflow)

    fail(work)

    rig.assert_tripped(workflow, work, "exception_volume", 3.0, 2.0, 5)


def test_sla_breach_rate_counts_cycle_times_over_the_sla(rig: Rig, name: Any) -> None:
    """SLA 60s, max 0.25, min_sample 4: 1 breach of 4 passes; 2 of 5 (0.4) trips."""
    workflow = declare(name(), SlaBreachRate(sla="60s", max_rate=0.25, min_sample=4, window="1d"))
    work = worker(rig, workflow)

    def run_taking(seconds: float) -> None:
        received = rig.clock.now() - dt.timedelta(seconds=seconds)
        work(TriggerEvent(f"job-{seconds}", "job", received))

    # 120s is a breach; exactly 60s is not (over the SLA means longer than it).
    for seconds in (120, 60, 30, 59.999):
        run_taking(seconds)
        rig.assert_open(workflow)
    cycles = [(row.ended_at - row.received_at).total_seconds() for row in rig.gov.runs(workflow)]
    assert sorted(cycles) == [30, 59.999, 60, 120]

    run_taking(60.001)

    rig.assert_tripped(workflow, work, "sla_breach_rate", 2 / 5, 0.25, 5)


# --- rejection rate ------------------------------------------------------------------------


def review_workflow(name: str) -> Workflow:
    """A workflow whose ``send`` action needs an ``sdr``'s approval, with a rejection rate."""
    return declare(
        name,
        RejectionRate(max_rate=0.5, min_sample=2),
        actions=[{"name": "send", "risk": "requires_approval"}],
        review={"reviewers": ["sdr"]},
    )


def requester(rig: Rig, workflow: Workflow) -> Callable[..., Any]:
    """A governed function that asks for ``send``; returns the pending action."""

    @governed_workflow(workflow, governance=rig.gov)
    def ask(n: int = 0) -> Any:
        return current_run().action("send", lambda payload: payload, {"n": n})

    return ask


def reject(rig: Rig, review_id: str) -> Review:
    """Reject as an ``sdr``."""
    return rig.gov.reject(review_id, "dana", reason="wrong lead", roles=["sdr"])


def test_rejection_rate_trips_on_the_rejecting_decision(rig: Rig, name: Any) -> None:
    """RejectionRate(0.5, 2): rejecting 1 of 1 (too few), 1 of 2 (0.5) pass; 2 of 3 trips."""
    workflow = review_workflow(name())
    ask = requester(rig, workflow)
    handles = [ask(n) for n in range(3)]
    assert statuses(rig, workflow) == {RunStatus.PENDING_REVIEW: 3}

    reject(rig, handles[0].review_id)
    rig.assert_open(workflow)
    rig.gov.approve(handles[1].review_id, "dana", roles=["sdr"])
    rig.assert_open(workflow)

    reject(rig, handles[2].review_id)

    rig.assert_tripped(workflow, lambda: ask(9), "rejection_rate", 2 / 3, 0.5, 3)


def test_rejection_rate_is_checked_at_the_next_run_end_where_decisions_could_not_be(
    rig: Rig, name: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decided where the workflow is not governed, the rate trips at the next run's end."""
    workflow = review_workflow(name())
    ask = requester(rig, workflow)
    handles = [ask(n) for n in range(2)]
    monkeypatch.delitem(engine.WORKFLOWS, workflow.name)

    for handle in handles:
        reject(rig, handle.review_id)
    rig.assert_open(workflow)

    handle = ask(2)  # this run is let through; the rule trips when it ends

    assert rig.gov.review(handle.review_id).status.value == "pending"
    rig.assert_tripped(workflow, lambda: ask(3), "rejection_rate", 1.0, 0.5, 2)


# --- async ---------------------------------------------------------------------------------


def test_coroutine_runs_reserve_before_and_settle_after(rig: Rig, name: Any) -> None:
    """Async runs in flight hold per_run each; the one past the limit trips; the rest settle."""
    workflow = declare(name(), Budget(limit=1.0, per_run=0.25))
    entered: list[float] = []

    async def main() -> list[Any]:
        gate_open = asyncio.Event()

        @governed_workflow(workflow, governance=rig.gov)
        async def work(n: int) -> int:
            entered.append(rig.held(workflow))
            await gate_open.wait()
            current_run().record_model_call("model", cost=0.1)
            return n

        tasks = [asyncio.create_task(work(n)) for n in range(5)]
        while len(entered) + sum(task.done() for task in tasks) < 5:
            await asyncio.sleep(0.001)
        assert rig.held(workflow) == 1.0
        gate_open.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(asyncio.wait_for(main(), 20))

    [error] = [r for r in results if isinstance(r, BaseException)]
    assert isinstance(error, StopRuleTripped)
    assert (error.figure, error.threshold) == (1.25, 1.0)
    # Each body starts holding its own reservation (and any others' made so far).
    assert len(entered) == 4
    assert all(held in (0.25, 0.5, 0.75, 1.0) for held in entered)
    assert rig.held(workflow) == pytest.approx(0.4)
    assert statuses(rig, workflow) == {RunStatus.SUCCEEDED: 4, RunStatus.REFUSED: 1}
    rig.assert_tripped(
        workflow,
        lambda: asyncio.run(workflow_call(rig, workflow)),
        "budget",
        1.25,
        1.0,
        0,
        run_id=error.run_id,
    )


async def workflow_call(rig: Rig, workflow: Workflow) -> None:
    """One async governed call of ``workflow``."""
    async with governed_run(workflow, governance=rig.gov):
        pass


# --- concurrency -----------------------------------------------------------------------------

LIMIT = 25.0
PER_RUN = 0.125  # exact in binary, so sums of reservations are exact


def check_budget_held(gov: Governance, workflow: Workflow, outcomes: list[dict[str, Any]]) -> None:
    """Nothing overspent, exactly floor(limit/per_run) runs succeeded, nothing lost."""
    expected = math.floor(LIMIT / PER_RUN)
    succeeded = [run_id for outcome in outcomes for run_id in outcome["succeeded"]]
    refused = [run_id for outcome in outcomes for run_id in outcome["refused"]]
    reasons = Counter(reason for outcome in outcomes for reason in outcome["reasons"])
    assert len(succeeded) == len(set(succeeded)) == expected
    assert len(refused) == len(set(refused)) == len(outcomes)
    assert set(reasons) <= {"stop_rule", "paused"}
    assert reasons["stop_rule"] >= 1

    ledger = gov.runs(workflow)
    by_status: dict[RunStatus, set[str]] = {}
    for row in ledger:
        by_status.setdefault(row.status, set()).add(row.run_id)
    assert set(by_status) == {RunStatus.SUCCEEDED, RunStatus.REFUSED}
    assert by_status[RunStatus.SUCCEEDED] == set(succeeded)
    assert by_status[RunStatus.REFUSED] == set(refused)
    assert len(ledger) == expected + len(outcomes)
    spent = sum(row.cost for row in ledger if row.status is RunStatus.SUCCEEDED)
    held = gov.store.reserved(workflow.name, USD_DAY, window_start(BudgetWindow.DAY, START))
    assert spent <= LIMIT
    assert held <= LIMIT
    assert spent == held == expected * PER_RUN
    assert gov.backlog == 0
    assert all(outcome.get("backlog", 0) == 0 for outcome in outcomes)
    assert gov.audit_events(workflow, event="stop_rule_tripped")


def spend_in_threads(
    gov: Governance, workflow: Workflow, count: int, start: Any
) -> list[dict[str, Any]]:
    """Spend until refused in ``count`` threads that start together."""
    outcomes: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def main() -> None:
        try:
            start.wait(timeout=60)
            outcomes.append(_stop_support.spend_until_refused(gov, workflow, PER_RUN))
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=main) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert len(outcomes) == count
    return outcomes


def test_budget_holds_across_threads_and_processes_on_one_sqlite_file(
    tmp_path: Path, name: Any
) -> None:
    """8 threads here and 4 spawned processes spend one budget: exactly limit/per_run runs pass."""
    db = tmp_path / "shared.db"
    workflow = _stop_support.budget_workflow(name(), LIMIT, PER_RUN)
    gov = Governance(SQLiteStore(db), development=True, clock=ManualClock(START))
    gov.store.get_state(workflow.name)  # create the file and its schema
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(12)
    outputs = [tmp_path / f"process-{index}.json" for index in range(4)]
    processes = [
        context.Process(
            target=_stop_support.run_budget_worker,
            args=(str(db), workflow.name, LIMIT, PER_RUN, start, str(output)),
        )
        for output in outputs
    ]
    for process in processes:
        process.start()
    try:
        outcomes = spend_in_threads(gov, workflow, 8, start)
    finally:
        for process in processes:
            process.join(120)
    assert [process.exitcode for process in processes] == [0] * 4
    outcomes += [json.loads(output.read_text(encoding="utf-8")) for output in outputs]

    check_budget_held(gov, workflow, outcomes)
    gov.store.close()


def test_budget_holds_across_threads_on_the_memory_store(name: Any) -> None:
    """8 threads spend one budget in memory: exactly limit/per_run runs pass, none lost."""
    workflow = _stop_support.budget_workflow(name(), LIMIT, PER_RUN)
    gov = Governance(MemoryStore(), development=True, clock=ManualClock(START))

    outcomes = spend_in_threads(gov, workflow, 8, threading.Barrier(8))

    check_budget_held(gov, workflow, outcomes)


# --- bugs ----------------------------------------------------------------------------------


def test_a_store_error_while_reserving_is_a_recorded_refusal(
    rig: Rig, name: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that cannot reserve refuses the run, failing closed, and the refusal is recorded."""
    workflow = declare(name(), Budget(limit=1.0, per_run=0.25))
    work = worker(rig, workflow)

    def reserve(*args: Any, **kwargs: Any) -> bool:
        raise StoreError("the database is locked")

    monkeypatch.setattr(rig.store, "reserve", reserve)
    with pytest.raises(RunRefused) as info:
        work(cost=0.1)

    [row] = rig.gov.runs(workflow)
    assert (row.run_id, row.status) == (info.value.run_id, RunStatus.REFUSED)


def test_a_store_error_on_a_later_limit_gives_back_earlier_reservations(
    rig: Rig, name: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that could not reserve its run-cap place gives back its budget reservation."""
    workflow = declare(name(), Budget(limit=1.0, per_run=0.25), RunCap(max_runs=3, window="1h"))
    work = worker(rig, workflow)
    reserve_really = rig.store.reserve

    def reserve(reservation: Any, limit: float, since: dt.datetime) -> bool:
        if reservation.rule == RUN_CAP_1H:
            raise StoreError("the database is locked")
        return reserve_really(reservation, limit, since)

    monkeypatch.setattr(rig.store, "reserve", reserve)
    with pytest.raises((StoreError, RunRefused)):
        work(cost=0.1)

    assert rig.held(workflow) == 0


def test_a_budget_fits_limit_over_per_run_runs_in_decimal_amounts(rig: Rig, name: Any) -> None:
    """Budget(limit=0.3, per_run=0.1) admits three runs, as 3 x 0.1 = 0.3 is not past 0.3."""
    workflow = declare(name(), Budget(limit=0.3, per_run=0.1))
    work = worker(rig, workflow)

    for _ in range(3):
        work(cost=0.1)

    rig.assert_open(workflow)
