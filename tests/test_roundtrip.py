"""Round trips of declarations: any valid workflow dumps and loads back equal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from _declared import (
    Checks,
    Escalation,
    FollowUp,
    has_subject,
    needs_review,
    route_exception,
    within_budget,
)
from ada_governance import (
    Action,
    Baseline,
    Budget,
    BudgetUnit,
    BudgetWindow,
    Classification,
    Direction,
    ErrorRate,
    ExceptionPath,
    ExceptionVolume,
    FieldRule,
    KillSwitch,
    Metric,
    OnFail,
    OnTimeout,
    OutputStandard,
    Owner,
    RejectionRate,
    ReviewMode,
    ReviewPolicy,
    RiskBoundary,
    RunCap,
    SlaBreachRate,
    Source,
    Stage,
    SystemOfRecord,
    Trigger,
    Workflow,
)
from ada_governance._declaration import format_duration, parse_duration

# --- values --------------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z][A-Za-z0-9_.\-]{0,15}", fullmatch=True)
characters = st.characters(exclude_categories=("Cs",))  # text holds no lone surrogates
# Declared text has surrounding whitespace stripped, so generate it already stripped.
texts = st.text(characters, max_size=20).map(str.strip)
nonblank = texts.filter(bool)
durations = st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=400))
rates = st.floats(min_value=0, max_value=1, exclude_min=True)
positive = st.floats(min_value=0, exclude_min=True, allow_infinity=False)
finite = st.floats(allow_nan=False, allow_infinity=False)
# FieldRule.value is Any: anything JSON can hold, with lists (tuples would come back lists).
plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(characters, max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(characters, max_size=5), inner)
    ),
    max_leaves=6,
)

# --- declarations --------------------------------------------------------------------

field_rules = st.builds(
    FieldRule,
    field=st.lists(names, min_size=1, max_size=3).map(".".join),
    op=st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le", "in", "not_in"]),
    value=plain_values,
)
conditions = field_rules | st.just(needs_review)

stop_rules = st.one_of(
    st.builds(KillSwitch, description=texts),
    st.builds(
        Budget,
        limit=positive,
        per_run=positive,
        unit=st.sampled_from(BudgetUnit),
        window=st.sampled_from(BudgetWindow),
    ),
    st.builds(RunCap, max_runs=st.integers(min_value=1), window=durations),
    st.builds(ErrorRate, max_rate=rates, window=durations, min_sample=st.integers(min_value=1)),
    st.builds(ExceptionVolume, max_count=st.integers(min_value=1), window=durations),
    st.builds(RejectionRate, max_rate=rates, window=durations, min_sample=st.integers(min_value=1)),
    st.builds(
        SlaBreachRate,
        sla=durations,
        max_rate=rates,
        window=durations,
        min_sample=st.integers(min_value=1),
    ),
)

baselines = st.builds(
    Baseline,
    value=finite,
    sample_size=st.integers(min_value=1),
    measured_at=st.dates(),
    note=texts,
)


def metrics(baseline: st.SearchStrategy[Baseline | None]) -> st.SearchStrategy[Metric]:
    """Metrics whose baseline is drawn from ``baseline``."""
    return st.builds(
        Metric,
        name=names,
        unit=nonblank,
        direction=st.sampled_from(Direction),
        baseline=baseline,
        target=st.none() | finite,
        description=texts,
    )


@st.composite
def review_policies(draw: st.DrawFn) -> ReviewPolicy:
    """Review policies of every mode and timeout outcome, each with the fields it needs."""
    mode = draw(st.sampled_from(ReviewMode))
    on_timeout = draw(st.sampled_from(OnTimeout))
    needed: dict[str, Any] = {}
    if mode is ReviewMode.SAMPLED:
        needed["sample_rate"] = draw(rates)
    if mode is ReviewMode.CONDITIONAL:
        needed["condition"] = draw(conditions)
    return ReviewPolicy(
        reviewers=draw(st.lists(names, min_size=1, max_size=3)),
        mode=mode,
        timeout=draw(durations),
        on_timeout=on_timeout,
        escalate_to=draw(
            st.lists(names, min_size=1 if on_timeout is OnTimeout.ESCALATE else 0, max_size=2)
        ),
        approvals_required=draw(st.integers(min_value=1, max_value=10)),
        requester_may_approve=draw(st.booleans()),
        **needed,
    )


def output_standards(on_fail: st.SearchStrategy[OnFail]) -> st.SearchStrategy[OutputStandard]:
    """Output standards naming importable schemas and validators."""
    return st.builds(
        OutputStandard,
        schema=st.none() | st.sampled_from([FollowUp, Escalation]),
        validators=st.lists(
            st.sampled_from([has_subject, within_budget, Checks.no_placeholders]), max_size=3
        ),
        on_fail=on_fail,
        max_attempts=st.integers(min_value=1, max_value=20),
        description=texts,
    )


owners = st.builds(Owner, name=nonblank, contact=texts)
triggers = st.builds(
    Trigger,
    events=st.lists(nonblank, min_size=1, max_size=3, unique=True),
    description=texts,
)
systems = st.builds(SystemOfRecord, name=nonblank, description=texts)
exception_paths = st.builds(
    ExceptionPath,
    route_to=nonblank,
    handler=st.none() | st.just(route_exception),
    fallback=st.none() | st.just(route_exception),
)
sources = st.builds(
    Source,
    name=names,
    system=texts,
    classification=st.sampled_from(Classification),
    description=texts,
)


def optional(strategy: st.SearchStrategy[Any], *, required: bool) -> st.SearchStrategy[Any]:
    """``strategy``, or also ``None`` unless the value is required."""
    return strategy if required else st.none() | strategy


@st.composite
def workflows(draw: st.DrawFn) -> Workflow:
    """Valid workflows in every stage: unique names, review where needed, pilot parts."""
    stage = draw(st.sampled_from(Stage))
    deployed = stage in (Stage.PILOT, Stage.PRODUCTION)
    review = draw(st.none() | review_policies())
    risks = list(RiskBoundary)
    on_fails = list(OnFail)
    if review is None:  # an approval and on_fail 'review' both need a review policy
        risks.remove(RiskBoundary.REQUIRES_APPROVAL)
        on_fails.remove(OnFail.REVIEW)
    declared_metrics = draw(
        st.lists(
            metrics(st.none() | baselines),
            min_size=1 if deployed else 0,
            max_size=3,
            unique_by=lambda metric: metric.name,
        )
    )
    if deployed and all(metric.baseline is None for metric in declared_metrics):
        first = declared_metrics[0]
        declared_metrics[0] = Metric(
            name=first.name,
            unit=first.unit,
            direction=first.direction,
            baseline=draw(baselines),
            target=first.target,
            description=first.description,
        )
    return Workflow(
        name=draw(names),
        version=draw(names | st.integers(min_value=0, max_value=10**6).map(str)),
        description=draw(texts),
        stage=stage,
        owner=draw(optional(owners, required=deployed)),
        trigger=draw(optional(triggers, required=deployed)),
        system_of_record=draw(optional(systems, required=deployed)),
        sources=draw(st.lists(sources, max_size=3, unique_by=lambda source: source.name)),
        output_standard=draw(st.none() | output_standards(st.sampled_from(on_fails))),
        actions=draw(
            st.lists(
                st.builds(Action, name=names, risk=st.sampled_from(risks), description=texts),
                max_size=3,
                unique_by=lambda action: action.name,
            )
        ),
        review=review,
        exception_path=draw(st.none() | exception_paths),
        metrics=declared_metrics,
        stop_rules=draw(st.lists(stop_rules, min_size=1 if deployed else 0, max_size=4)),
        on_store_unavailable=draw(st.sampled_from(["refuse", "run_ungoverned"])),
    )


# --- properties ----------------------------------------------------------------------

ROUND_TRIP = settings(max_examples=100, deadline=None)  # a deadline would only add flakes


@ROUND_TRIP
@given(workflows())
def test_workflow_round_trips_through_plain_data(workflow: Workflow) -> None:
    """Workflow.from_dict(w.to_dict()) == w for any valid workflow."""
    assert Workflow.from_dict(workflow.to_dict()) == workflow


@ROUND_TRIP
@given(workflows())
def test_workflow_round_trips_through_yaml(workflow: Workflow) -> None:
    """Workflow.from_string(w.to_string("yaml")) == w for any valid workflow."""
    assert Workflow.from_string(workflow.to_string("yaml"), "yaml") == workflow


@ROUND_TRIP
@given(workflows())
def test_workflow_round_trips_through_json(workflow: Workflow) -> None:
    """Workflow.from_string(w.to_string("json"), "json") == w for any valid workflow."""
    assert Workflow.from_string(workflow.to_string("json"), "json") == workflow


@settings(max_examples=200)
@given(st.timedeltas(min_value=timedelta(microseconds=1)))
def test_format_duration_round_trips_exactly(duration: timedelta) -> None:
    """parse_duration(format_duration(d)) == d for every positive timedelta."""
    assert parse_duration(format_duration(duration)) == duration
