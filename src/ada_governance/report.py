"""Measurement against a baseline: what the ledger says a workflow did, and what to do next.

`report` computes a workflow's operating figures for a period from the run ledger, the
review queue and the audit log, and sets each declared `Metric` that names a ``figure``
against its baseline and target. `baseline_report` computes the same figures from the
runs recorded in baseline mode (the process as it was, measured before the AI change),
and `evaluate` turns a report into a recommendation: ``scale``, ``revise``, ``pause`` or
``stop``, each with the figures behind it.

Runs recorded in baseline mode carry the annotation ``{"ada.mode": "baseline"}``; they
(and the reviews they requested) are left out of every figure of `report` and are the only
rows `baseline_report` counts.

Computing figures does no I/O: `compute_figures` and `decide` take plain records, so the
formulas can be checked without a store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from . import audit
from ._limits import BASELINE, BASELINE_KEY
from .exceptions import UsageError
from .governance import Governance
from .measurement import FIGURES, OUTCOME_PREFIX, Direction, Metric
from .records import AuditEvent, RunRecord, RunStatus
from .reviews import Review, ReviewKind, ReviewStatus
from .stops import SlaBreachRate
from .workflow import Workflow

__all__ = [
    "BASELINE_MODE",
    "MODE_ANNOTATION",
    "STOP_RULE_TRIPPED",
    "AdoptionIndicators",
    "BaselineReport",
    "Figures",
    "MetricResult",
    "OutcomeFigure",
    "Report",
    "baseline_report",
    "compute_figures",
    "is_baseline",
    "percentile",
    "report",
]

MODE_ANNOTATION = BASELINE_KEY
"""The run annotation (``ada.mode``) that says in which mode a run was recorded."""
BASELINE_MODE = BASELINE
"""``annotations["ada.mode"]`` of a run that measured the process before the change, as
``governed_workflow(..., baseline=True)`` records it."""
STOP_RULE_TRIPPED = audit.STOP_RULE_TRIPPED
"""The audit event a stop rule writes when it trips (and pauses the workflow)."""

_FINISHED = (RunStatus.SUCCEEDED, RunStatus.PENDING_REVIEW)
# Verdicts a person gives; "escalate", "expire" and "withdraw" are the deadline's or the run's.
_PERSON_VERDICTS = frozenset({"approve", "reject", "correct", "incorrect"})
_STAGE_CHANGED = audit.STAGE_CHANGED
_UNGOVERNED_NOTE = (
    "model calls made outside any governed run are not counted by this version; "
    "ungoverned_model_calls is None"
)


def is_baseline(record: RunRecord) -> bool:
    """Whether ``record`` was recorded in baseline mode."""
    return record.annotations.get(MODE_ANNOTATION) == BASELINE_MODE


def percentile(values: Iterable[float], p: int) -> float | None:
    """The nearest-rank percentile: the value at rank ``ceil(p/100 * n)`` of the sorted values.

    Args:
        values: The values.
        p: The percentile, from 1 to 100.

    Returns:
        The value at that rank (rank 1 is the smallest), or ``None`` with no values.

    Raises:
        UsageError: ``p`` is not from 1 to 100.
    """
    if not 1 <= p <= 100:
        raise UsageError(f"a percentile is from 1 to 100, not {p}")
    ordered = sorted(values)
    if not ordered:
        return None
    # Integer ceiling: 0.95 * 20 in floating point is not reliably 19.
    rank = -(-p * len(ordered) // 100)
    return ordered[rank - 1]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# --- the figures -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutcomeFigure:
    """One recorded outcome over the finished runs of a period."""

    total: float
    """Sum of ``outcomes[name]`` over finished runs (a run that did not record it adds 0)."""
    mean: float
    """``total / finished_runs``."""


@dataclass(frozen=True, slots=True)
class AdoptionIndicators:
    """Usage indicators: are people using AI? Reported beside the deployment figures,
    never mixed with them."""

    actors: tuple[str, ...]
    """Distinct people seen, sorted: reviewers who decided a review (approve, reject,
    correct, incorrect) plus review requesters whose name does not start with ``run:``."""
    distinct_actors: int
    """``len(actors)``."""
    model_calls: int
    """Sum of ``model_calls`` over the runs."""
    ungoverned_model_calls: int | None
    """Model calls made outside any governed run: not counted by this version, so
    always ``None`` (see ``note``)."""
    note: str
    """What the indicators leave out."""


@dataclass(frozen=True, slots=True)
class Figures:
    """A workflow's operating figures over a set of runs, reviews and audit events.

    "Finished" runs are those with status ``succeeded`` or ``pending_review``. A run's
    cycle time is ``(ended_at - received_at)`` in seconds. Shares are from 0 to 1. A
    figure whose formula would divide by zero is ``None``.
    """

    runs: int
    """Number of runs (ledger rows)."""
    runs_by_status: dict[str, int]
    """Number of runs per status; every status is listed, 0 when none."""
    finished_runs: int
    """Number of runs with status ``succeeded`` or ``pending_review``."""
    cycle_time_p50: float | None
    """Nearest-rank 50th percentile of finished runs' cycle times, in seconds: the value
    at rank ``ceil(0.50 * n)`` of the n sorted cycle times; ``None`` with no finished run."""
    cycle_time_p95: float | None
    """Nearest-rank 95th percentile of finished runs' cycle times, in seconds: the value
    at rank ``ceil(0.95 * n)``; ``None`` with no finished run."""
    sla_seconds: float | None
    """The ``sla`` of the workflow's first ``sla_breach_rate`` stop rule, in seconds;
    ``None`` when it declares none."""
    sla_adherence: float | None
    """(finished runs with cycle time <= ``sla_seconds``) / ``finished_runs``; ``None``
    without an SLA rule or without finished runs."""
    approval_reviews_decided: int
    """Approval reviews decided by people: status ``approved`` or ``rejected``."""
    rework_rate: float | None
    """(decided approval reviews approved with edits + rejected) /
    ``approval_reviews_decided``; ``None`` when none was decided."""
    review_accuracy: float | None
    """(decided approval reviews approved unchanged) / ``approval_reviews_decided``;
    ``None`` when none was decided."""
    sample_reviews_judged: int
    """Sampled reviews judged by people: status ``approved`` (correct) or ``rejected``
    (incorrect)."""
    sample_accuracy: float | None
    """(sampled reviews judged correct) / ``sample_reviews_judged``; ``None`` when none
    was judged."""
    exceptions: int
    """Number of failed runs."""
    exceptions_by_type: dict[str, int]
    """Failed runs per ``error_type`` (``unknown`` when the row has none)."""
    exception_rate: float | None
    """``exceptions / (finished_runs + exceptions)``; ``None`` when both are 0."""
    refusals: int
    """Number of refused runs."""
    refusals_by_reason: dict[str, int]
    """Refused runs per ``refusal_reason`` (``unknown`` when the row has none)."""
    refusal_rate: float | None
    """``refusals / runs``; ``None`` with no runs."""
    model_calls: int
    """Sum of ``model_calls`` over all runs."""
    cost: float
    """Sum of ``cost`` (USD) over runs that were not refused."""
    tokens: int
    """Sum of ``input_tokens + output_tokens`` over runs that were not refused."""
    cost_per_run: float | None
    """``cost / (runs - refusals)``; ``None`` when every run was refused or there is none."""
    tokens_per_run: float | None
    """``tokens / (runs - refusals)``; ``None`` when every run was refused or there is none."""
    owner: str | None
    """The workflow owner's name; ``None`` when no owner is declared."""
    owner_decisions: int | None
    """Decisions on the reviews counted here whose reviewer is ``owner``."""
    owner_stage_changes: int | None
    """``stage_changed`` audit events counted here whose actor is ``owner``."""
    owner_activity: int | None
    """``owner_decisions + owner_stage_changes``; ``None`` without a declared owner."""
    outcomes: dict[str, OutcomeFigure]
    """Per outcome name recorded by any finished run: its sum and its mean per finished run."""
    adoption: AdoptionIndicators
    """Usage indicators, kept apart from the deployment figures above."""

    def value(self, figure: str) -> float | None:
        """The number a `Metric`'s ``figure`` names.

        Args:
            figure: A name in `ada_governance.measurement.FIGURES`, or ``outcome:<name>``
                (the outcome's mean per finished run; ``None`` when no finished run
                recorded it).

        Returns:
            The figure, or ``None`` when the data cannot give it.

        Raises:
            UsageError: No such figure.
        """
        if figure.startswith(OUTCOME_PREFIX):
            outcome = self.outcomes.get(figure[len(OUTCOME_PREFIX) :])
            return outcome.mean if outcome is not None else None
        if figure in FIGURES:
            found: float | None = getattr(self, figure)
            return float(found) if found is not None else None
        raise UsageError(f"{figure!r} is not a figure the report computes")

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data."""
        data: dict[str, Any] = _jsonable(self)
        return data


def compute_figures(
    workflow: Workflow,
    runs: Sequence[RunRecord],
    reviews: Sequence[Review] = (),
    events: Sequence[AuditEvent] = (),
) -> Figures:
    """Compute the figures of `Figures` from records already selected (no I/O).

    Args:
        workflow: The declaration: its owner and its SLA rule.
        runs: The ledger rows to count.
        reviews: The reviews to count.
        events: The audit events to count (``stage_changed`` for owner activity).

    Returns:
        The figures.
    """
    by_status = Counter(run.status for run in runs)
    finished = [run for run in runs if run.status in _FINISHED]
    cycle_times = [(run.ended_at - run.received_at).total_seconds() for run in finished]

    sla = next((rule.sla for rule in workflow.stop_rules if isinstance(rule, SlaBreachRate)), None)
    sla_seconds = sla.total_seconds() if sla is not None else None
    adherence = (
        _share(sum(1 for t in cycle_times if t <= sla_seconds), len(cycle_times))
        if sla_seconds is not None
        else None
    )

    approvals = [
        review
        for review in reviews
        if review.kind is ReviewKind.APPROVAL
        and review.status in (ReviewStatus.APPROVED, ReviewStatus.REJECTED)
    ]
    outcomes = Counter(review.outcome for review in approvals)
    judged = [
        review
        for review in reviews
        if review.kind is ReviewKind.SAMPLE
        and review.status in (ReviewStatus.APPROVED, ReviewStatus.REJECTED)
    ]
    correct = sum(1 for review in judged if review.status is ReviewStatus.APPROVED)

    failed = [run for run in runs if run.status is RunStatus.FAILED]
    refused = [run for run in runs if run.status is RunStatus.REFUSED]
    spent = [run for run in runs if run.status is not RunStatus.REFUSED]
    cost = sum(run.cost for run in spent)
    tokens = sum(run.input_tokens + run.output_tokens for run in spent)

    owner = workflow.owner.name if workflow.owner is not None else None
    decisions = [d for review in reviews for d in review.decisions if d.verdict in _PERSON_VERDICTS]
    owner_decisions = owner_changes = None
    if owner is not None:
        owner_decisions = sum(1 for d in decisions if d.reviewer == owner)
        owner_changes = sum(1 for e in events if e.event == _STAGE_CHANGED and e.actor == owner)

    names = sorted({name for run in finished for name in run.outcomes})
    outcome_figures = {}
    for name in names:
        total = sum(run.outcomes.get(name, 0.0) for run in finished)
        outcome_figures[name] = OutcomeFigure(total, total / len(finished))

    actors = {d.reviewer for d in decisions} | {
        review.requester
        for review in reviews
        if review.requester and not review.requester.startswith("run:")
    }
    model_calls = sum(run.model_calls for run in runs)

    return Figures(
        runs=len(runs),
        runs_by_status={status.value: by_status.get(status, 0) for status in RunStatus},
        finished_runs=len(finished),
        cycle_time_p50=percentile(cycle_times, 50),
        cycle_time_p95=percentile(cycle_times, 95),
        sla_seconds=sla_seconds,
        sla_adherence=adherence,
        approval_reviews_decided=len(approvals),
        rework_rate=_share(outcomes["approved with edits"] + outcomes["rejected"], len(approvals)),
        review_accuracy=_share(outcomes["approved unchanged"], len(approvals)),
        sample_reviews_judged=len(judged),
        sample_accuracy=_share(correct, len(judged)),
        exceptions=len(failed),
        exceptions_by_type=dict(
            sorted(Counter(run.error_type or "unknown" for run in failed).items())
        ),
        exception_rate=_share(len(failed), len(finished) + len(failed)),
        refusals=len(refused),
        refusals_by_reason=dict(
            sorted(Counter(run.refusal_reason or "unknown" for run in refused).items())
        ),
        refusal_rate=_share(len(refused), len(runs)),
        model_calls=model_calls,
        cost=cost,
        tokens=tokens,
        cost_per_run=cost / len(spent) if spent else None,
        tokens_per_run=tokens / len(spent) if spent else None,
        owner=owner,
        owner_decisions=owner_decisions,
        owner_stage_changes=owner_changes,
        owner_activity=(
            owner_decisions + owner_changes
            if owner_decisions is not None and owner_changes is not None
            else None
        ),
        outcomes=outcome_figures,
        adoption=AdoptionIndicators(
            actors=tuple(sorted(actors)),
            distinct_actors=len(actors),
            model_calls=model_calls,
            ungoverned_model_calls=None,
            note=_UNGOVERNED_NOTE,
        ),
    )


# --- reading the store -------------------------------------------------------------------


def _check_period(since: dt.datetime | None, until: dt.datetime | None) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise UsageError(
                f"{name} must be a timezone-aware datetime, such as "
                "datetime(2026, 1, 1, tzinfo=timezone.utc); stored times are in UTC"
            )
    if since is not None and until is not None and until <= since:
        raise UsageError(f"the period is empty: until ({until}) is not after since ({since})")


def _within(when: dt.datetime, since: dt.datetime | None, until: dt.datetime | None) -> bool:
    return (since is None or when >= since) and (until is None or when < until)


@dataclass(frozen=True, slots=True)
class _Period:
    """What the store holds for one workflow and period, split by mode."""

    runs: tuple[RunRecord, ...]
    reviews: tuple[Review, ...]
    baseline_runs: frozenset[str]

    def select(self, baseline: bool) -> tuple[list[RunRecord], list[Review]]:
        runs = [run for run in self.runs if is_baseline(run) is baseline]
        reviews = [r for r in self.reviews if (r.run_id in self.baseline_runs) is baseline]
        return runs, reviews


def _load(
    governance: Governance,
    workflow: Workflow,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> _Period:
    runs = tuple(governance.runs(workflow, since=since, until=until))
    reviews = tuple(r for r in governance.reviews(workflow) if _within(r.created_at, since, until))
    mode = {run.run_id: is_baseline(run) for run in runs}
    unknown = {review.run_id for review in reviews} - mode.keys()
    if unknown:
        # A review made in the period may belong to a run that started before it.
        for run in governance.runs(workflow, until=until):
            if run.run_id in unknown:
                mode[run.run_id] = is_baseline(run)
    return _Period(runs, reviews, frozenset(run_id for run_id, base in mode.items() if base))


def _events(
    governance: Governance,
    workflow: Workflow,
    since: dt.datetime | None,
    until: dt.datetime | None,
    event: str | None = None,
) -> list[AuditEvent]:
    return [
        e
        for e in governance.audit_events(workflow, event=event, since=since)
        if _within(e.at, since, until)
    ]


# --- the baseline ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BaselineReport:
    """The figures of the runs recorded in baseline mode: the process before the change.

    Its owner activity counts only decisions on reviews those runs requested (stage
    changes belong to no run, so they are not part of a baseline).
    """

    workflow: str
    """The workflow's name."""
    since: dt.datetime | None
    """The start of the period asked for (runs started at or after it)."""
    until: dt.datetime | None
    """The end of the period asked for (runs started before it)."""
    sample_size: int
    """Number of baseline runs counted (every status)."""
    first_received_at: dt.datetime | None
    """The earliest ``received_at`` among them; ``None`` without any."""
    last_received_at: dt.datetime | None
    """The latest ``received_at`` among them; ``None`` without any."""
    figures: Figures
    """Their figures, by the same formulas as `Report.figures`."""

    def to_dict(self) -> dict[str, Any]:
        """The baseline as JSON-ready data."""
        data: dict[str, Any] = _jsonable(self)
        return data


def baseline_report(
    governance: Governance,
    workflow: Workflow,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> BaselineReport:
    """Compute the figures of the runs recorded in baseline mode, alone.

    Args:
        governance: Where the ledger is.
        workflow: The workflow's declaration.
        since: Count runs started at or after this time (timezone-aware).
        until: Count runs started before this time.

    Returns:
        The baseline's figures, sample size and period.

    Raises:
        UsageError: A naive or empty period.
    """
    _check_period(since, until)
    runs, reviews = _load(governance, workflow, since, until).select(baseline=True)
    received = [run.received_at for run in runs]
    return BaselineReport(
        workflow=workflow.name,
        since=since,
        until=until,
        sample_size=len(runs),
        first_received_at=min(received, default=None),
        last_received_at=max(received, default=None),
        figures=compute_figures(workflow, runs, reviews),
    )


# --- metrics against their baselines -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One declared metric, measured, against its baseline and target."""

    name: str
    """The metric's name."""
    figure: str
    """The figure that measures it."""
    unit: str
    """Its unit."""
    direction: Direction
    """Which way is better."""
    value: float | None
    """The figure in the period; ``None`` when the data cannot give it."""
    baseline: float | None
    """``Baseline.value`` when declared, else the measured baseline's figure."""
    baseline_source: Literal["declared", "measured"] | None
    """Where ``baseline`` came from; ``None`` when there is none."""
    target: float | None
    """The declared target."""
    threshold: float | None
    """The declared threshold."""
    change_pct: float | None
    """``(value - baseline) / |baseline| * 100``; ``None`` without both or when the
    baseline is 0."""
    improved: bool | None
    """Whether ``value`` is better than ``baseline`` in ``direction`` (strictly);
    ``None`` without both."""
    worse: bool | None
    """Whether ``value`` is worse than ``baseline`` in ``direction`` (strictly);
    ``None`` without both."""
    met_target: bool | None
    """``value <= target`` for a decreasing metric, ``value >= target`` for an
    increasing one; ``None`` without a target; ``False`` with a target and no value."""
    failing: bool
    """``value > threshold`` for a decreasing metric, ``value < threshold`` for an
    increasing one; ``False`` without both."""

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        data: dict[str, Any] = _jsonable(self)
        return data


def _better(direction: Direction, a: float, b: float) -> bool:
    """Whether ``a`` is strictly better than ``b``."""
    return a < b if direction is Direction.DECREASE else a > b


def _measure(
    metric: Metric, figure: str, figures: Figures, measured: BaselineReport | None
) -> MetricResult:
    value = figures.value(figure)
    base: float | None = None
    source: Literal["declared", "measured"] | None = None
    if metric.baseline is not None:
        base, source = metric.baseline.value, "declared"
    elif measured is not None and measured.sample_size:
        base = measured.figures.value(figure)
        source = "measured" if base is not None else None
    change = improved = worse = None
    if value is not None and base is not None:
        improved = _better(metric.direction, value, base)
        worse = _better(metric.direction, base, value)
        if base != 0:
            change = (value - base) / abs(base) * 100
    met = None
    if metric.target is not None:
        met = value is not None and not _better(metric.direction, metric.target, value)
    failing = (
        value is not None
        and metric.threshold is not None
        and _better(metric.direction, metric.threshold, value)
    )
    return MetricResult(
        name=metric.name,
        figure=figure,
        unit=metric.unit,
        direction=metric.direction,
        value=value,
        baseline=base,
        baseline_source=source,
        target=metric.target,
        threshold=metric.threshold,
        change_pct=change,
        improved=improved,
        worse=worse,
        met_target=met,
        failing=failing,
    )


@dataclass(frozen=True, slots=True)
class Report:
    """A workflow's figures for a period, and each declared metric against its baseline."""

    workflow: str
    """The workflow's name."""
    version: str
    """The declaration's version whose metrics were measured."""
    since: dt.datetime | None
    """The start of the period: runs started, reviews created and audit events at or after it."""
    until: dt.datetime | None
    """The end of the period: before it."""
    figures: Figures
    """The period's figures, baseline runs and their reviews left out."""
    metrics: tuple[MetricResult, ...]
    """Each declared metric with a ``figure``, in declaration order."""
    not_measured: tuple[str, ...]
    """The declared metrics without a ``figure``."""
    baseline: BaselineReport
    """The measured baseline: baseline runs started before ``until`` (any time before
    the period, too), used for metrics that declare no baseline."""

    def metric(self, name: str) -> MetricResult:
        """Return the result of the metric called ``name``.

        Raises:
            KeyError: No measured metric has that name.
        """
        for result in self.metrics:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        data: dict[str, Any] = _jsonable(self)
        return data


def report(
    governance: Governance,
    workflow: Workflow,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Report:
    """Compute a workflow's figures for a period and measure its metrics against baselines.

    Runs are counted by ``started_at``, reviews by ``created_at`` and audit events by
    ``at``, each in ``[since, until)``. Baseline runs, and the reviews they requested,
    are left out. A metric without a declared baseline is compared with the measured
    baseline (`baseline_report` over baseline runs started before ``until``).

    Args:
        governance: Where the ledger, reviews and audit log are.
        workflow: The workflow's declaration (its metrics, owner and stop rules).
        since: The start of the period (timezone-aware); from the first record if omitted.
        until: The end of the period; to the last record if omitted.

    Returns:
        The report.

    Raises:
        UsageError: A naive or empty period.
    """
    _check_period(since, until)
    runs, reviews = _load(governance, workflow, since, until).select(baseline=False)
    figures = compute_figures(workflow, runs, reviews, _events(governance, workflow, since, until))
    measured = baseline_report(governance, workflow, until=until)
    result = Report(
        workflow=workflow.name,
        version=workflow.version,
        since=since,
        until=until,
        figures=figures,
        metrics=tuple(
            _measure(m, m.figure, figures, measured) for m in workflow.metrics if m.figure
        ),
        not_measured=tuple(m.name for m in workflow.metrics if not m.figure),
        baseline=measured,
    )
    governance.telemetry.publish_figures(workflow.name, _published(result))
    return result


def _published(result: Report) -> dict[str, float]:
    """The report's figures a dashboard shows: every number the report has, and each
    metric's value and baseline."""
    figures = result.figures
    values: dict[str, float | None] = {name: figures.value(name) for name in FIGURES}
    for name, outcome in figures.outcomes.items():
        values[f"{OUTCOME_PREFIX}{name}"] = outcome.mean
    for metric in result.metrics:
        values[f"metric:{metric.name}"] = metric.value
        values[f"baseline:{metric.name}"] = metric.baseline
    return {name: float(value) for name, value in values.items() if value is not None}


# --- JSON --------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(item) for item in value]
    return value
