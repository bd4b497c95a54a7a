"""Measurement against a baseline: `report`, `baseline_report`, `evaluate` and their commands.

Every test reads a fixed ledger written straight into a store, so each figure is checked
against a value worked out by hand in the comments beside it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from ada_governance import (
    AuditEvent,
    DeclarationError,
    Governance,
    MemoryStore,
    Metric,
    RunRecord,
    RunStatus,
    SQLiteStore,
    Store,
    TriggerEvent,
    UsageError,
    Workflow,
    governed_run,
)
from ada_governance._cli_report import register
from ada_governance.evaluation import Recommendation, decide, evaluate
from ada_governance.report import (
    BASELINE_MODE,
    MODE_ANNOTATION,
    STOP_RULE_TRIPPED,
    Report,
    baseline_report,
    compute_figures,
    percentile,
    report,
)
from ada_governance.reviews import Review, ReviewKind, payload_hash
from ada_governance.testing import ManualClock

UTC = dt.timezone.utc
SINCE = dt.datetime(2026, 3, 2, tzinfo=UTC)
UNTIL = SINCE + dt.timedelta(days=1)
BASELINE_START = SINCE - dt.timedelta(days=30)
NAME = "lead_follow_up"
OWNER = "Dana"

RESPONSE_TIME: dict[str, Any] = {
    "name": "response_time",
    "unit": "s",
    "direction": "decrease",
    "figure": "cycle_time_p50",
    "baseline": {"value": 3600, "sample_size": 40, "measured_at": "2026-01-15"},
    "target": 600,
    "threshold": 7200,
}
REWORK: dict[str, Any] = {
    "name": "rework",
    "unit": "share",
    "direction": "decrease",
    "figure": "rework_rate",
    "target": 0.5,
}
MEETINGS: dict[str, Any] = {
    "name": "meetings",
    "unit": "meetings per lead",
    "direction": "increase",
    "figure": "outcome:meeting_booked",
    "target": 0.3,
}
SLA: dict[str, Any] = {
    "name": "sla",
    "unit": "share",
    "direction": "increase",
    "figure": "sla_adherence",
}
NOTES: dict[str, Any] = {"name": "note_quality", "unit": "score", "direction": "increase"}


def declare(
    *metrics: dict[str, Any], owner: str | None = OWNER, sla: str | None = "5m"
) -> Workflow:
    """The workflow under measurement, with the given metrics."""
    data: dict[str, Any] = {"name": NAME, "metrics": list(metrics)}
    if owner is not None:
        data["owner"] = {"name": owner}
    if sla is not None:
        data["stop_rules"] = [{"kind": "sla_breach_rate", "sla": sla, "max_rate": 0.2}]
    return Workflow.from_dict(data)


WORKFLOW = declare(RESPONSE_TIME, REWORK, MEETINGS, SLA, NOTES)


# --- the fixed ledger ---------------------------------------------------------------------


def run(
    run_id: str,
    status: RunStatus,
    started: dt.datetime,
    cycle: float = 30.0,
    *,
    baseline: bool = False,
    **fields: Any,
) -> RunRecord:
    """A ledger row: received 30 s before it started, ended ``cycle`` s after received."""
    received = started - dt.timedelta(seconds=30)
    return RunRecord(
        run_id=run_id,
        workflow=NAME,
        version="1",
        status=status,
        trigger_id=f"event-{run_id}",
        trigger_type="form_fill",
        received_at=received,
        started_at=started,
        ended_at=received + dt.timedelta(seconds=cycle),
        annotations={MODE_ANNOTATION: BASELINE_MODE} if baseline else {},
        **fields,
    )


def pending(
    review_id: str,
    run_id: str,
    created: dt.datetime,
    kind: ReviewKind = ReviewKind.APPROVAL,
    requester: str | None = None,
) -> Review:
    """A pending review of the ``send`` action, requested by the run unless told."""
    payload = {"to": "ana@example.com", "body": "hello"}
    return Review(
        id=review_id,
        kind=kind,
        workflow=NAME,
        version="1",
        run_id=run_id,
        action="send",
        requester=requester or f"run:{run_id}",
        payload=payload,
        payload_sha256=payload_hash(payload),
        original_payload=payload,
        roles=("sdr",),
        approvals_required=1,
        requester_may_approve=False,
        on_timeout="reject",
        escalate_to=(),
        created_at=created,
        deadline=created + dt.timedelta(hours=1),
    )


def approved(review: Review, reviewer: str, *, edited: bool = False) -> Review:
    """The review approved by ``reviewer``, with or without edits."""
    edits = {"to": "ana@example.com", "body": "hello again"} if edited else None
    return review.approve(reviewer, ("sdr",), review.created_at, edits=edits)


def rejected(review: Review, reviewer: str) -> Review:
    """The review rejected by ``reviewer``."""
    return review.reject(reviewer, ("sdr",), review.created_at, reason="wrong tone")


def judged(review: Review, reviewer: str, correct: bool) -> Review:
    """The sampled review judged by ``reviewer``."""
    return review.judge(reviewer, ("sdr",), review.created_at, correct=correct)


def at(minutes: float, base: dt.datetime = SINCE) -> dt.datetime:
    """``minutes`` after ``base``."""
    return base + dt.timedelta(minutes=minutes)


def write_ledger(store: Store) -> None:
    """Write the fixed ledger the figures below are worked out from."""
    rows: list[RunRecord] = []
    # f1..f10 finish (8 succeeded, 2 pending review) with cycle times 60, 120, ..., 600 s.
    for i in range(1, 11):
        outcomes: dict[str, float] = {}
        if i <= 4:
            outcomes["meeting_booked"] = 1.0
        if i == 1:
            outcomes["revenue"] = 100.0
        if i == 2:
            outcomes["revenue"] = 50.0
        status = RunStatus.SUCCEEDED if i <= 8 else RunStatus.PENDING_REVIEW
        rows.append(
            run(
                f"f{i}",
                status,
                at(i),
                60.0 * i,
                model_calls=2,
                input_tokens=100,
                output_tokens=50,
                cost=0.02,
                outcomes=outcomes,
            )
        )
    # Three failures, two refusals, one cancellation.
    for i, error in enumerate(["TimeoutError", "TimeoutError", "KeyError"], start=1):
        rows.append(
            run(
                f"x{i}",
                RunStatus.FAILED,
                at(20 + i),
                error_type=error,
                model_calls=1,
                input_tokens=40,
                output_tokens=10,
                cost=0.01,
            )
        )
    rows.append(run("r1", RunStatus.REFUSED, at(30), 0.0, refusal_reason="paused"))
    rows.append(run("r2", RunStatus.REFUSED, at(31), 0.0, refusal_reason="trigger"))
    rows.append(
        run(
            "c1",
            RunStatus.CANCELLED,
            at(32),
            model_calls=1,
            input_tokens=40,
            output_tokens=10,
            cost=0.01,
        )
    )
    # Outside the period: started an hour before it, and exactly at its end.
    rows.append(run("early", RunStatus.SUCCEEDED, at(-60), 5.0, cost=9.0, model_calls=9))
    rows.append(run("late", RunStatus.SUCCEEDED, UNTIL, 5.0, cost=9.0, model_calls=9))
    # The baseline, a month before: 4 succeeded (1800..7200 s) and 1 failed, by hand.
    for i in range(1, 5):
        rows.append(
            run(
                f"b{i}",
                RunStatus.SUCCEEDED,
                at(60 * i, BASELINE_START),
                1800.0 * i,
                baseline=True,
                outcomes={"meeting_booked": 1.0} if i == 1 else {},
            )
        )
    rows.append(
        run(
            "b5",
            RunStatus.FAILED,
            at(300, BASELINE_START),
            baseline=True,
            error_type="ManualError",
        )
    )
    for row in rows:
        store.record_run(row)

    reviews = [
        approved(pending("A", "f1", at(1)), OWNER),
        approved(pending("B", "f2", at(2)), "sam", edited=True),
        rejected(pending("C", "f3", at(3)), "sam"),
        approved(pending("D", "f4", at(4)), "lee"),
        approved(pending("G", "f5", at(5)), "lee"),
        pending("E", "f6", at(6)),
        pending("F", "f7", at(7)).expire(at(67), dt.timedelta(hours=1)),
        judged(pending("S1", "f8", at(8), ReviewKind.SAMPLE), "lee", True),
        judged(pending("S2", "f9", at(9), ReviewKind.SAMPLE), OWNER, False),
        pending("S3", "f10", at(10), ReviewKind.SAMPLE),
        pending("H", "f1", at(11), requester="maria"),
        # Before the period: not counted.
        approved(pending("old", "early", at(-59)), "zoe"),
        # The baseline's reviews: one made before the period, one (for a baseline run
        # that started before it) made inside it.
        approved(pending("rb1", "b1", at(61, BASELINE_START)), "sam", edited=True),
        rejected(pending("rb2", "b2", at(121, BASELINE_START)), OWNER),
        judged(pending("rb3", "b3", at(12), ReviewKind.SAMPLE), "lee", True),
    ]
    for review in reviews:
        store.create_review(review)

    for when, actor in [(at(120), OWNER), (at(180), "ops"), (at(-24 * 60), OWNER)]:
        store.append_audit(
            AuditEvent(when, "stage_changed", NAME, actor=actor, data={"stage": "pilot"})
        )


@pytest.fixture
def governance() -> Iterator[Governance]:
    governance = Governance(MemoryStore(), development=True)
    write_ledger(governance.store)
    yield governance
    governance.close()


@pytest.fixture
def measured(governance: Governance) -> Report:
    return report(governance, WORKFLOW, SINCE, UNTIL)


# --- the figures --------------------------------------------------------------------------


def test_runs_are_counted_by_status_in_the_period_without_baseline_runs(measured: Report) -> None:
    """Runs count every status once, only runs started in [since, until), never baseline."""
    figures = measured.figures
    # 10 finished + 3 failed + 2 refused + 1 cancelled; "early", "late" and b1..b5 excluded.
    assert figures.runs == 16
    assert figures.runs_by_status == {
        "succeeded": 8,
        "failed": 3,
        "refused": 2,
        "cancelled": 1,
        "pending_review": 2,
    }
    assert figures.finished_runs == 10


def test_cycle_time_percentiles_are_nearest_rank_from_received_at(measured: Report) -> None:
    """p50 and p95 are the values at ranks ceil(0.5*10)=5 and ceil(0.95*10)=10."""
    # Cycle times 60..600 s from received_at (started_at is 30 s later, and not used).
    assert measured.figures.cycle_time_p50 == 300.0
    assert measured.figures.cycle_time_p95 == 600.0


def test_sla_adherence_counts_cycle_times_at_or_under_the_sla(measured: Report) -> None:
    """With a 5-minute SLA, 60..300 s are within it (300 included): 5 of 10."""
    assert measured.figures.sla_seconds == 300.0
    assert measured.figures.sla_adherence == 0.5


def test_rework_and_review_accuracy_come_from_decided_approval_reviews(measured: Report) -> None:
    """5 decided approvals (A, B, C, D, G): B edited and C rejected is rework 2/5; A, D, G
    unchanged is accuracy 3/5. Pending E, expired F, and other periods are left out."""
    figures = measured.figures
    assert figures.approval_reviews_decided == 5
    assert figures.rework_rate == pytest.approx(0.4)
    assert figures.review_accuracy == pytest.approx(0.6)


def test_sample_accuracy_is_the_share_of_judged_samples_judged_correct(measured: Report) -> None:
    """S1 correct and S2 incorrect (S3 pending; rb3 belongs to a baseline run): 1/2."""
    assert measured.figures.sample_reviews_judged == 2
    assert measured.figures.sample_accuracy == 0.5


def test_exceptions_are_counted_by_type_over_finished_and_failed_runs(measured: Report) -> None:
    """3 failed runs over 10 finished + 3 failed: 3/13."""
    figures = measured.figures
    assert figures.exceptions == 3
    assert figures.exceptions_by_type == {"KeyError": 1, "TimeoutError": 2}
    assert figures.exception_rate == pytest.approx(3 / 13)


def test_refusals_are_counted_by_reason_over_all_runs(measured: Report) -> None:
    """2 refused of 16 runs: 0.125."""
    figures = measured.figures
    assert figures.refusals == 2
    assert figures.refusals_by_reason == {"paused": 1, "trigger": 1}
    assert figures.refusal_rate == 0.125


def test_cost_and_tokens_per_run_leave_refused_runs_out(measured: Report) -> None:
    """14 runs not refused: cost 10*0.02 + 4*0.01 = 0.24, tokens 10*150 + 4*50 = 1700."""
    figures = measured.figures
    assert figures.model_calls == 24  # 10*2 + 3*1 + 1
    assert figures.cost == pytest.approx(0.24)
    assert figures.tokens == 1700
    assert figures.cost_per_run == pytest.approx(0.24 / 14)
    assert figures.tokens_per_run == pytest.approx(1700 / 14)


def test_owner_activity_counts_the_owners_decisions_and_stage_changes(measured: Report) -> None:
    """Dana approved A and judged S2 (2) and changed the stage once in the period (1)."""
    figures = measured.figures
    assert figures.owner == OWNER
    assert figures.owner_decisions == 2
    assert figures.owner_stage_changes == 1
    assert figures.owner_activity == 3


def test_outcomes_are_summed_and_averaged_over_finished_runs(measured: Report) -> None:
    """meeting_booked on 4 of 10 finished runs: 4 and 0.4; revenue 100 + 50: 150 and 15."""
    outcomes = measured.figures.outcomes
    assert set(outcomes) == {"meeting_booked", "revenue"}
    assert (outcomes["meeting_booked"].total, outcomes["meeting_booked"].mean) == (4.0, 0.4)
    assert (outcomes["revenue"].total, outcomes["revenue"].mean) == (150.0, 15.0)


def test_adoption_indicators_count_people_and_model_calls(measured: Report) -> None:
    """Reviewers who decided (Dana, sam, lee) and a person who requested (maria); the
    deadline, run requesters and other periods' reviewers are not actors."""
    adoption = measured.figures.adoption
    assert adoption.actors == ("Dana", "lee", "maria", "sam")
    assert adoption.distinct_actors == 4
    assert adoption.model_calls == 24
    assert adoption.ungoverned_model_calls is None
    assert "not counted" in adoption.note


# --- edge cases of the formulas ----------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        pytest.param([], 50, None, id="no-values"),
        pytest.param([7.0], 95, 7.0, id="one-value"),
        pytest.param([10.0, 1.0, 5.0, 3.0], 50, 3.0, id="unsorted-even"),
        pytest.param([float(v) for v in range(1, 21)], 95, 19.0, id="rank-19-of-20"),
        pytest.param([float(v) for v in range(1, 21)], 100, 20.0, id="p100-is-max"),
        pytest.param([float(v) for v in range(1, 101)], 1, 1.0, id="p1-is-min"),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], p: int, expected: float | None) -> None:
    """The value at rank ceil(p/100 * n) of the sorted values; None with none."""
    assert percentile(values, p) == expected


@pytest.mark.parametrize("p", [0, 101])
def test_percentile_outside_1_to_100_is_refused(p: int) -> None:
    """A percentile outside 1..100 raises a usage error."""
    with pytest.raises(UsageError, match="from 1 to 100"):
        percentile([1.0], p)


def test_no_runs_gives_counts_of_zero_and_figures_of_none() -> None:
    """With nothing recorded every share, percentile and per-run figure is None."""
    figures = compute_figures(WORKFLOW, [])
    assert figures.runs == 0
    assert set(figures.runs_by_status.values()) == {0}
    for name in (
        "cycle_time_p50",
        "cycle_time_p95",
        "sla_adherence",
        "rework_rate",
        "review_accuracy",
        "sample_accuracy",
        "exception_rate",
        "refusal_rate",
        "cost_per_run",
        "tokens_per_run",
    ):
        assert getattr(figures, name) is None, name
    assert figures.outcomes == {}
    assert figures.value("outcome:meeting_booked") is None
    assert figures.value("runs") == 0.0
    assert figures.owner_activity == 0


def test_only_refused_runs_give_a_refusal_rate_and_no_cost_per_run() -> None:
    """Refused runs count for refusals but not for cost, exceptions or cycle time."""
    figures = compute_figures(WORKFLOW, [run("r", RunStatus.REFUSED, SINCE, refusal_reason="x")])
    assert figures.refusal_rate == 1.0
    assert figures.cost_per_run is None
    assert figures.tokens_per_run is None
    assert figures.exception_rate is None
    assert figures.cycle_time_p50 is None


def test_sla_adherence_is_none_without_an_sla_rule() -> None:
    """No sla_breach_rate stop rule, no SLA to adhere to."""
    figures = compute_figures(declare(sla=None), [run("f", RunStatus.SUCCEEDED, SINCE, 10.0)])
    assert figures.sla_seconds is None
    assert figures.sla_adherence is None


def test_owner_activity_is_none_without_a_declared_owner() -> None:
    """No owner declared, no owner activity to count."""
    figures = compute_figures(declare(owner=None), [])
    assert figures.owner is None
    assert figures.owner_activity is None


def test_unknown_figure_name_is_a_usage_error() -> None:
    """Asking figures for a name the report does not compute raises."""
    with pytest.raises(UsageError, match="not a figure"):
        compute_figures(WORKFLOW, []).value("happiness")


def test_a_naive_period_is_refused(governance: Governance) -> None:
    """Stored times are timezone-aware; a naive since cannot be compared with them."""
    with pytest.raises(UsageError, match="timezone-aware"):
        report(governance, WORKFLOW, since=dt.datetime(2026, 3, 2))


def test_an_empty_period_is_refused(governance: Governance) -> None:
    """until must come after since."""
    with pytest.raises(UsageError, match="empty"):
        report(governance, WORKFLOW, since=UNTIL, until=SINCE)


# --- the baseline -------------------------------------------------------------------------


def test_baseline_report_counts_only_baseline_runs_and_their_reviews(
    governance: Governance,
) -> None:
    """b1..b4 succeeded (1800..7200 s) and b5 failed; rb1 edited, rb2 rejected, rb3 correct."""
    base = baseline_report(governance, WORKFLOW)
    assert base.sample_size == 5
    assert base.first_received_at == at(60, BASELINE_START) - dt.timedelta(seconds=30)
    assert base.last_received_at == at(300, BASELINE_START) - dt.timedelta(seconds=30)
    figures = base.figures
    assert figures.cycle_time_p50 == 3600.0  # rank ceil(0.5*4) = 2
    assert figures.cycle_time_p95 == 7200.0  # rank ceil(0.95*4) = 4
    assert figures.sla_adherence == 0.0
    assert figures.exception_rate == pytest.approx(1 / 5)
    assert figures.rework_rate == 1.0
    assert figures.review_accuracy == 0.0
    assert figures.sample_accuracy == 1.0
    assert figures.outcomes["meeting_booked"].mean == 0.25
    assert figures.owner_decisions == 1  # Dana rejected rb2; stage changes are no baseline


def test_baseline_report_honours_its_period(governance: Governance) -> None:
    """Only baseline runs started in [since, until) are counted."""
    base = baseline_report(governance, WORKFLOW, at(90, BASELINE_START), at(200, BASELINE_START))
    assert base.sample_size == 2  # b2 at 120 min, b3 at 180 min
    assert base.figures.cycle_time_p50 == 3600.0


def test_a_metric_with_a_declared_baseline_uses_it(measured: Report) -> None:
    """response_time: 300 s against the declared 3600 s is -91.67 %, better, target met."""
    result = measured.metric("response_time")
    assert (result.value, result.baseline, result.baseline_source) == (300.0, 3600.0, "declared")
    assert result.change_pct == pytest.approx((300 - 3600) / 3600 * 100)
    assert result.improved is True
    assert result.worse is False
    assert result.met_target is True
    assert result.failing is False


def test_a_metric_without_a_declared_baseline_uses_the_measured_one(measured: Report) -> None:
    """rework: 0.4 against the measured baseline's 1.0 is -60 %; meetings 0.4 vs 0.25 +60 %."""
    rework = measured.metric("rework")
    assert (rework.value, rework.baseline, rework.baseline_source) == (0.4, 1.0, "measured")
    assert rework.change_pct == pytest.approx(-60.0)
    assert rework.improved is True
    meetings = measured.metric("meetings")
    assert (meetings.value, meetings.baseline, meetings.baseline_source) == (
        0.4,
        0.25,
        "measured",
    )
    assert meetings.change_pct == pytest.approx(60.0)
    assert meetings.met_target is True


def test_a_baseline_of_zero_gives_no_change_pct(measured: Report) -> None:
    """sla adherence 0.5 against a measured 0.0 is better, but has no percentage change."""
    result = measured.metric("sla")
    assert (result.value, result.baseline) == (0.5, 0.0)
    assert result.change_pct is None
    assert result.improved is True
    assert result.met_target is None


def test_without_any_baseline_a_metric_cannot_be_compared() -> None:
    """No declared baseline and no baseline runs: baseline, source and improved are None."""
    governance = Governance(MemoryStore(), development=True)
    governance.store.record_run(run("f", RunStatus.SUCCEEDED, SINCE, 100.0))
    result = report(governance, declare(REWORK | {"figure": "cycle_time_p50"})).metric("rework")
    assert result.value == 100.0
    assert (result.baseline, result.baseline_source, result.improved, result.worse) == (
        None,
        None,
        None,
        None,
    )


def test_metrics_without_a_figure_are_listed_as_not_measured(measured: Report) -> None:
    """note_quality declares no figure: it is named, not measured."""
    assert [m.name for m in measured.metrics] == ["response_time", "rework", "meetings", "sla"]
    assert measured.not_measured == ("note_quality",)


def test_report_to_dict_is_json_ready(measured: Report) -> None:
    """The report's data survives json.dumps and names the figures and metrics."""
    data = json.loads(json.dumps(measured.to_dict()))
    assert data["figures"]["cycle_time_p50"] == 300.0
    assert data["metrics"][0]["direction"] == "decrease"
    assert data["baseline"]["sample_size"] == 5
    assert data["since"] == SINCE.isoformat()


def test_sqlite_gives_the_same_report_as_memory(governance: Governance, tmp_path: Path) -> None:
    """The same ledger in SQLite gives the same figures, to the last field."""
    store = SQLiteStore(tmp_path / "governance.db")
    write_ledger(store)
    on_sqlite = Governance(store, development=True)
    try:
        assert _same(
            report(on_sqlite, WORKFLOW, SINCE, UNTIL).to_dict(),
            report(governance, WORKFLOW, SINCE, UNTIL).to_dict(),
        )
    finally:
        on_sqlite.close()


def _same(a: Any, b: Any) -> bool:
    """Equal data, floats compared with pytest.approx."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return bool(a == pytest.approx(b))
    return bool(a == b)


def test_runs_governed_in_baseline_mode_are_the_measured_baseline() -> None:
    """Runs recorded by governed_run(..., baseline=True) feed the baseline, not the report."""
    clock = ManualClock(SINCE)
    governance = Governance(MemoryStore(), clock=clock, development=True)
    workflow = declare(REWORK | {"figure": "cycle_time_p50"}, sla=None)
    for seconds, baseline in [(600, True), (1200, True), (60, False)]:
        event = TriggerEvent("e", "form_fill", clock.now())
        with governed_run(workflow, event, governance=governance, baseline=baseline):
            clock.advance(seconds)
    measured = report(governance, workflow)
    assert measured.figures.runs == 1
    assert measured.baseline.sample_size == 2
    result = measured.metric("rework")
    # Baseline cycle times 600 and 1200 s: p50 at rank 1 is 600; the AI run took 60 s.
    assert (result.value, result.baseline, result.baseline_source) == (60.0, 600.0, "measured")
    assert result.change_pct == pytest.approx(-90.0)


# --- the figure and threshold declarations ------------------------------------------------


@pytest.mark.parametrize(
    "figure",
    [
        "runs",
        "cycle_time_p50",
        "cycle_time_p95",
        "sla_adherence",
        "rework_rate",
        "review_accuracy",
        "exception_rate",
        "refusal_rate",
        "cost_per_run",
        "tokens_per_run",
        "outcome:meeting_booked",
    ],
)
def test_metric_accepts_every_documented_figure(figure: str) -> None:
    """Each documented figure name is accepted and kept."""
    assert Metric(name="m", unit="u", direction="increase", figure=figure).figure == figure


@pytest.mark.parametrize(
    ("figure", "message"),
    [
        pytest.param("happiness", "not a figure the report computes", id="unknown"),
        pytest.param("outcome:", "names no outcome", id="outcome-without-name"),
        pytest.param("outcome: booked", "names no outcome", id="outcome-with-space"),
    ],
)
def test_metric_refuses_a_figure_the_report_does_not_compute(figure: str, message: str) -> None:
    """An unknown figure is a declaration error at metrics.figure that says what to write."""
    with pytest.raises(DeclarationError, match=message) as caught:
        Workflow.from_dict({"name": NAME, "metrics": [{**NOTES, "figure": figure}]})
    assert [p.loc for p in caught.value.problems] == [("metrics", 0, "figure")]


def test_a_threshold_needs_a_figure() -> None:
    """A threshold with nothing to compare it with is a declaration error."""
    with pytest.raises(DeclarationError, match="threshold needs a figure"):
        Metric(name="m", unit="u", direction="increase", threshold=1.0)


def test_figure_and_threshold_round_trip_through_yaml() -> None:
    """Both new fields are written to YAML and read back the same."""
    assert Workflow.from_string(WORKFLOW.to_string()) == WORKFLOW
    assert "figure: cycle_time_p50" in WORKFLOW.to_string()


# --- evaluate -----------------------------------------------------------------------------


def test_evaluate_recommends_scale_when_every_target_is_met_and_nothing_is_worse(
    governance: Governance,
) -> None:
    """All three targets met, every baseline beaten: scale, with each metric as a reason."""
    result = evaluate(governance, WORKFLOW, SINCE, UNTIL)
    assert result.recommendation is Recommendation.SCALE
    assert [r.figures for r in result.reasons] == [
        ("cycle_time_p50",),
        ("rework_rate",),
        ("outcome:meeting_booked",),
        ("sla_adherence",),
    ]
    assert result.not_measured == ("note_quality",)


def test_evaluate_recommends_revise_when_a_target_is_missed(governance: Governance) -> None:
    """p50 of 300 s misses a 200 s target though it beats its baseline: revise."""
    workflow = declare(RESPONSE_TIME | {"target": 200}, REWORK)
    result = evaluate(governance, workflow, SINCE, UNTIL)
    assert result.recommendation is Recommendation.REVISE
    assert len(result.reasons) == 1
    assert result.reasons[0].figures == ("cycle_time_p50",)
    assert "misses its target 200" in result.reasons[0].message


def test_evaluate_recommends_revise_without_evidence(governance: Governance) -> None:
    """No metric with a figure: nothing shows the workflow works, so revise, not scale."""
    result = evaluate(governance, declare(NOTES), SINCE, UNTIL)
    assert result.recommendation is Recommendation.REVISE
    assert "nothing shows" in result.reasons[0].message
    assert result.not_measured == ("note_quality",)


def test_evaluate_recommends_stop_when_a_metric_fails_its_threshold(
    governance: Governance,
) -> None:
    """A p50 of 300 s past a 240 s threshold (should decrease): stop."""
    workflow = declare(RESPONSE_TIME | {"threshold": 240}, REWORK, MEETINGS)
    result = evaluate(governance, workflow, SINCE, UNTIL)
    assert result.recommendation is Recommendation.STOP
    assert result.report.metric("response_time").failing is True
    assert [r.figures for r in result.reasons] == [("cycle_time_p50",)]
    assert "past its threshold 240" in result.reasons[0].message


def test_evaluate_recommends_stop_when_most_metrics_are_worse_than_baseline(
    governance: Governance,
) -> None:
    """p50 300 vs 100 and exception rate 3/13 vs 0.1 worse, refusals 0.125 vs 0.5 better."""

    def declared(value: float) -> dict[str, Any]:
        return {"value": value, "sample_size": 10, "measured_at": "2026-01-15"}

    workflow = declare(
        RESPONSE_TIME | {"baseline": declared(100), "target": None, "threshold": None},
        {**SLA, "name": "errors", "direction": "decrease", "figure": "exception_rate"}
        | {"baseline": declared(0.1)},
        {**SLA, "name": "refusals", "direction": "decrease", "figure": "refusal_rate"}
        | {"baseline": declared(0.5)},
    )
    result = evaluate(governance, workflow, SINCE, UNTIL)
    assert result.recommendation is Recommendation.STOP
    assert result.reasons[-1].figures == ("cycle_time_p50", "exception_rate")
    assert result.reasons[-1].message.startswith("2 of 3 metrics")


def test_evaluate_recommends_pause_after_a_stop_rule_tripped(governance: Governance) -> None:
    """A stop_rule_tripped event in the period outweighs metrics that would scale."""
    governance.store.append_audit(
        AuditEvent(
            at(200),
            STOP_RULE_TRIPPED,
            NAME,
            actor="stop-rule:error_rate",
            data={
                "rule": "error_rate",
                "figure": 0.2,
                "threshold": 0.1,
                "sample": 20,
                "message": "4 of 20 runs failed",
            },
        )
    )
    result = evaluate(governance, WORKFLOW, SINCE, UNTIL)
    assert result.recommendation is Recommendation.PAUSE
    assert [r.figures for r in result.reasons] == [(STOP_RULE_TRIPPED, "stop_rule:error_rate")]
    assert "error_rate tripped" in result.reasons[0].message
    assert result.reasons[0].message.endswith("4 of 20 runs failed")


def test_a_trip_outside_the_period_does_not_pause(governance: Governance) -> None:
    """Only the period's trips count."""
    governance.store.append_audit(
        AuditEvent(UNTIL + dt.timedelta(hours=1), STOP_RULE_TRIPPED, NAME, data={"rule": "x"})
    )
    assert evaluate(governance, WORKFLOW, SINCE, UNTIL).recommendation is Recommendation.SCALE


def test_evaluate_recommends_pause_when_the_workflow_is_paused(governance: Governance) -> None:
    """The stored stage prevails: a paused workflow is to be paused, whatever its figures."""
    governance.set_stage(WORKFLOW, "paused", actor=OWNER, reason="holiday")
    result = evaluate(governance, WORKFLOW, SINCE, UNTIL)
    assert result.recommendation is Recommendation.PAUSE
    assert [r.figures for r in result.reasons] == [("stage",)]


def test_decide_applies_the_rules_without_a_store(measured: Report) -> None:
    """The rules are a pure function of a report, the trips and the stage."""
    assert decide(measured)[0] is Recommendation.SCALE
    assert decide(measured, paused=True)[0] is Recommendation.PAUSE


# --- the commands -------------------------------------------------------------------------


@pytest.fixture
def cli() -> click.Group:
    @click.group()
    def main() -> None:
        """A stand-in for ada-governance."""

    register(main)
    return main


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, str]:
    """A declarations folder and a SQLite store holding the fixed ledger."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    WORKFLOW.dump(folder / "lead.yaml")
    url = f"sqlite:///{tmp_path / 'governance.db'}"
    store = SQLiteStore(tmp_path / "governance.db")
    write_ledger(store)
    store.close()
    return folder, url


def invoke(cli: click.Group, *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_report_command_prints_json(cli: click.Group, setup: tuple[Path, str]) -> None:
    """`report NAME --format json` prints the report's data for the period."""
    folder, url = setup
    result = invoke(
        cli,
        "report",
        NAME,
        "--workflows",
        str(folder),
        "--since",
        "2026-03-02",
        "--until",
        "2026-03-03T00:00:00Z",
        "--store",
        url,
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["figures"]["runs"] == 16
    assert data["figures"]["cycle_time_p95"] == 600.0
    assert data["metrics"][1]["baseline_source"] == "measured"


def test_report_command_prints_a_table(cli: click.Group, setup: tuple[Path, str]) -> None:
    """The table lists the figures, the metrics and the measured baseline."""
    folder, url = setup
    result = invoke(
        cli, "report", NAME, "--workflows", str(folder), "--since", "2026-03-02",
        "--until", "2026-03-03", "--store", url,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split() == ["cycle_time_p50", "300"] for line in lines)
    assert any(line.split() == ["distinct_actors", "4"] for line in lines)
    assert "adoption indicator (usage)" in result.output
    assert any(line.startswith("response_time") and "declared" in line for line in lines)
    assert "not measured (no figure declared): note_quality" in result.output
    assert "measured baseline: 5 runs" in result.output


def test_evaluate_command_prints_the_recommendation(
    cli: click.Group, setup: tuple[Path, str]
) -> None:
    """`evaluate NAME` prints the recommendation and its reasons, or them as JSON."""
    folder, url = setup
    base = ["evaluate", NAME, "--workflows", str(folder), "--since", "2026-03-02"]
    base += ["--until", "2026-03-03", "--store", url]
    table = invoke(cli, *base)
    assert table.exit_code == 0, table.output
    assert table.output.startswith(f"{NAME} 1: scale")
    assert "[cycle_time_p50]" in table.output
    data = json.loads(invoke(cli, *base, "--format", "json").output)
    assert data["recommendation"] == "scale"
    assert data["reasons"][0]["figures"] == ["cycle_time_p50"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["report", "nope"], "no workflow 'nope'", id="unknown-workflow"),
        pytest.param(["report", NAME, "--since", "yesterday"], "not an ISO 8601", id="bad-time"),
        pytest.param(
            ["evaluate", NAME, "--since", "2026-03-03", "--until", "2026-03-02"],
            "the period is empty",
            id="empty-period",
        ),
    ],
)
def test_commands_fail_with_one_line_saying_what_to_fix(
    cli: click.Group, setup: tuple[Path, str], args: list[str], message: str
) -> None:
    """Expected errors exit 1 with a message on stderr, not a traceback."""
    folder, url = setup
    result = CliRunner().invoke(cli, [*args, "--workflows", str(folder), "--store", url])
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_report_figures_reach_the_figure_gauge() -> None:
    """report() shows its figures on the ada.workflow.figure gauge, by workflow and name."""
    import datetime as dt

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from ada_governance import Governance, MemoryStore, Workflow, governed_run, report
    from ada_governance.testing import ManualClock

    reader = InMemoryMetricReader()
    clock = ManualClock(dt.datetime(2026, 5, 4, 9, tzinfo=dt.timezone.utc))
    governance = Governance(
        MemoryStore(), development=True, clock=clock, meter_provider=MeterProvider([reader])
    )
    workflow = Workflow(name="gauge_wf", trigger={"event": "lead"})
    for seconds in (60, 120, 180):
        with governed_run(workflow, governance=governance) as run:
            clock.advance(seconds)
            run.record_outcome(booked=1)
    report(governance, workflow)
    points = {
        point.attributes["ada.figure"]: point.value
        for metric in reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics
        if metric.name == "ada.workflow.figure"
        for point in metric.data.data_points
        if point.attributes["gen_ai.workflow.name"] == "gauge_wf"
    }
    assert points["runs"] == 3
    assert points["cycle_time_p50"] == 120.0
    assert points["outcome:booked"] == 1.0
