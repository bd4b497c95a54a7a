"""The declaration layer: models, their rules, loading from files and dumping back."""

from __future__ import annotations

import functools
import json
import sys
import textwrap
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from _declared import (
    Checks,
    FollowUp,
    has_subject,
    needs_review,
    renamed,
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
    DeclarationError,
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
    Problem,
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

# --- helpers -------------------------------------------------------------------------


def declaration_error(build: Callable[..., Any], *args: Any, **kwargs: Any) -> DeclarationError:
    """Call ``build`` and return the DeclarationError it must raise."""
    with pytest.raises(DeclarationError) as info:
        build(*args, **kwargs)
    return info.value


def paths_and_messages(error: DeclarationError) -> list[tuple[str, str]]:
    """Every problem of ``error`` as ``(dotted path, message)``, in order."""
    return [(problem.path, problem.message) for problem in error.problems]


def paths(error: DeclarationError) -> set[str]:
    """The dotted paths ``error`` names."""
    return {problem.path for problem in error.problems}


def write(path: Path, text: str) -> Path:
    """Write dedented ``text`` to ``path`` and return the path."""
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def pilot_data() -> dict[str, Any]:
    """A minimal workflow in pilot, as a file holds it, that meets every pilot rule."""
    return {
        "name": "lead_follow_up",
        "stage": "pilot",
        "owner": {"name": "Dana Reyes", "contact": "dana@example.com"},
        "trigger": {"event": "form_fill"},
        "system_of_record": "Salesforce",
        "metrics": [
            {
                "name": "response_time",
                "unit": "s",
                "direction": "decrease",
                "baseline": {"value": 3600, "sample_size": 40, "measured_at": "2024-05-01"},
            }
        ],
        "stop_rules": [{"kind": "kill_switch"}],
    }


def full_workflow() -> Workflow:
    """A workflow in pilot using every kind of declaration, importable objects included."""
    return Workflow(
        name="lead_follow_up",
        version="3",
        description="Follow up every inbound lead within five minutes.",
        stage=Stage.PILOT,
        owner=Owner(name="Dana Reyes", contact="dana@example.com"),
        trigger=Trigger(events=["form_fill", "missed_call"], description="A lead came in."),
        system_of_record="Salesforce",
        sources=[
            Source(name="crm.lead", system="Salesforce", classification="personal"),
            Source(name="calendar", system="Google Calendar"),
        ],
        output_standard=OutputStandard(
            schema=FollowUp,
            validators=[has_subject, Checks.no_placeholders],
            on_fail="retry",
        ),
        actions=[
            Action(name="send_email", risk="requires_approval"),
            Action(name="log_call", risk="autonomous"),
        ],
        review=ReviewPolicy(
            reviewers=["sales_manager"],
            mode="conditional",
            condition=FieldRule(field="amount", op="gt", value=500),
            timeout="1h30m",
            on_timeout="escalate",
            escalate_to=["head_of_sales"],
        ),
        exception_path=ExceptionPath(route_to="sales_ops", handler=route_exception),
        metrics=[
            Metric(
                name="response_time",
                unit="s",
                direction="decrease",
                baseline=Baseline(value=3600, sample_size=40, measured_at=date(2024, 5, 1)),
                target=300,
            ),
            Metric(name="meetings_booked", unit="meetings", direction="increase"),
        ],
        stop_rules=[
            KillSwitch(description="Sales ops pulls it."),
            Budget(limit=25, per_run=0.5, unit="usd", window="day"),
            RunCap(max_runs=200, window="7d"),
            ErrorRate(max_rate=0.1),
            ExceptionVolume(max_count=5),
            RejectionRate(max_rate=0.3),
            SlaBreachRate(sla="15m", max_rate=0.2),
        ],
    )


# --- every model: defaults, frozen, unknown keys -------------------------------------

MODELS = [
    pytest.param(Owner, {"name": "Dana"}, {"contact": ""}, id="Owner"),
    pytest.param(Trigger, {"events": ["form_fill"]}, {"description": ""}, id="Trigger"),
    pytest.param(SystemOfRecord, {"name": "Salesforce"}, {"description": ""}, id="SystemOfRecord"),
    pytest.param(
        ExceptionPath,
        {"route_to": "ops"},
        {"handler": None, "fallback": None},
        id="ExceptionPath",
    ),
    pytest.param(
        Source,
        {"name": "crm.lead", "system": "Salesforce"},
        {"classification": Classification.INTERNAL, "description": ""},
        id="Source",
    ),
    pytest.param(
        OutputStandard,
        {},
        {
            "schema_": None,
            "validators": (),
            "on_fail": OnFail.RAISE,
            "max_attempts": 3,
            "description": "",
        },
        id="OutputStandard",
    ),
    pytest.param(
        Action, {"name": "send_email", "risk": "autonomous"}, {"description": ""}, id="Action"
    ),
    pytest.param(
        FieldRule,
        {"field": "amount", "op": "gt", "value": 500},
        {"field": "amount", "op": "gt", "value": 500},
        id="FieldRule",
    ),
    pytest.param(
        ReviewPolicy,
        {"reviewers": ["sales"]},
        {
            "reviewers": ("sales",),
            "mode": ReviewMode.ALWAYS,
            "sample_rate": None,
            "condition": None,
            "timeout": timedelta(hours=24),
            "on_timeout": OnTimeout.REJECT,
            "escalate_to": (),
            "approvals_required": 1,
            "requester_may_approve": False,
        },
        id="ReviewPolicy",
    ),
    pytest.param(KillSwitch, {}, {"kind": "kill_switch", "description": ""}, id="KillSwitch"),
    pytest.param(
        Budget,
        {"limit": 50, "per_run": 2},
        {
            "kind": "budget",
            "limit": 50.0,
            "per_run": 2.0,
            "unit": BudgetUnit.USD,
            "window": BudgetWindow.DAY,
        },
        id="Budget",
    ),
    pytest.param(
        RunCap,
        {"max_runs": 100, "window": "7d"},
        {"kind": "run_cap", "window": timedelta(days=7)},
        id="RunCap",
    ),
    pytest.param(
        ErrorRate,
        {"max_rate": 0.1},
        {"kind": "error_rate", "window": timedelta(hours=1), "min_sample": 20},
        id="ErrorRate",
    ),
    pytest.param(
        ExceptionVolume,
        {"max_count": 5},
        {"kind": "exception_volume", "window": timedelta(hours=1)},
        id="ExceptionVolume",
    ),
    pytest.param(
        RejectionRate,
        {"max_rate": 0.2},
        {"kind": "rejection_rate", "window": timedelta(days=1), "min_sample": 10},
        id="RejectionRate",
    ),
    pytest.param(
        SlaBreachRate,
        {"sla": "15m", "max_rate": 0.1},
        {
            "kind": "sla_breach_rate",
            "sla": timedelta(minutes=15),
            "window": timedelta(days=1),
            "min_sample": 20,
        },
        id="SlaBreachRate",
    ),
    pytest.param(
        Baseline,
        {"value": 3600, "sample_size": 40, "measured_at": "2024-05-01"},
        {"value": 3600.0, "measured_at": date(2024, 5, 1), "note": ""},
        id="Baseline",
    ),
    pytest.param(
        Metric,
        {"name": "response_time", "unit": "s", "direction": "decrease"},
        {"direction": Direction.DECREASE, "baseline": None, "target": None, "description": ""},
        id="Metric",
    ),
    pytest.param(
        Workflow,
        {"name": "lead_follow_up"},
        {
            "version": "1",
            "description": "",
            "stage": Stage.DRAFT,
            "owner": None,
            "trigger": None,
            "system_of_record": None,
            "sources": (),
            "output_standard": None,
            "actions": (),
            "review": None,
            "exception_path": None,
            "metrics": (),
            "stop_rules": (),
            "on_store_unavailable": "refuse",
        },
        id="Workflow",
    ),
]


@pytest.mark.parametrize(("model", "required", "defaults"), MODELS)
def test_model_constructs_from_required_fields_with_documented_defaults(
    model: type[BaseModel], required: dict[str, Any], defaults: dict[str, Any]
) -> None:
    """Each model builds from its required fields alone and fills in its documented defaults."""
    declared = model(**required)

    assert {name: getattr(declared, name) for name in defaults} == defaults


@pytest.mark.parametrize(("model", "required", "defaults"), MODELS)
def test_model_is_frozen(
    model: type[BaseModel], required: dict[str, Any], defaults: dict[str, Any]
) -> None:
    """Assigning to any field of a built declaration raises and leaves it unchanged."""
    declared = model(**required)
    field = next(iter(type(declared).model_fields))
    before = getattr(declared, field)

    with pytest.raises(ValidationError, match="frozen"):
        setattr(declared, field, before)

    assert getattr(declared, field) == before


@pytest.mark.parametrize(("model", "required", "defaults"), MODELS)
def test_model_rejects_unknown_keys(
    model: type[BaseModel], required: dict[str, Any], defaults: dict[str, Any]
) -> None:
    """An unknown key is a DeclarationError naming the key, not silently dropped."""
    error = declaration_error(model, **required, colour="red")

    assert paths_and_messages(error) == [
        ("colour", "unknown field; check the spelling against the reference")
    ]


def test_missing_required_field_is_reported_as_required() -> None:
    """A missing required field is reported at its name with the message 'required'."""
    error = declaration_error(Action, risk="autonomous")

    assert paths_and_messages(error) == [("name", "required")]
    assert error.summary == "invalid Action declaration"


def test_unknown_nested_key_is_reported_at_its_dotted_path() -> None:
    """An unknown key inside a nested declaration names its full path from the workflow."""
    error = declaration_error(
        Workflow.from_dict, {"name": "w", "review": {"reviewers": ["sales"], "timout": "1h"}}
    )

    assert paths(error) == {"review.timout"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("1st", id="leading-digit"),
        pytest.param("lead follow up", id="space"),
        pytest.param("lead/follow", id="slash"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param("", id="empty"),
    ],
)
def test_workflow_name_must_be_a_name(name: str) -> None:
    """A workflow name starts with a letter and uses only letters, digits, '_', '-', '.'."""
    error = declaration_error(Workflow, name=name)

    assert paths(error) == {"name"}


# --- cross-field rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {"reviewers": []}, [("reviewers", "name at least one reviewer role")], id="no-reviewer"
        ),
        pytest.param(
            {"reviewers": ["  "]},
            [("reviewers", "name at least one reviewer role")],
            id="blank-reviewer",
        ),
        pytest.param(
            {"reviewers": ["sales"], "mode": "sampled"},
            [("sample_rate", "required when mode is 'sampled'")],
            id="sampled-without-rate",
        ),
        pytest.param(
            {"reviewers": ["sales"], "sample_rate": 0.5},
            [("sample_rate", "only used when mode is 'sampled'; remove it or set mode")],
            id="rate-without-sampled",
        ),
        pytest.param(
            {"reviewers": ["sales"], "mode": "conditional"},
            [("condition", "required when mode is 'conditional'")],
            id="conditional-without-condition",
        ),
        pytest.param(
            {
                "reviewers": ["sales"],
                "mode": "sampled",
                "sample_rate": 0.1,
                "condition": needs_review,
            },
            [("condition", "only used when mode is 'conditional'; remove it or set mode")],
            id="condition-without-conditional",
        ),
        pytest.param(
            {"reviewers": ["sales"], "on_timeout": "escalate"},
            [("escalate_to", "name the roles to escalate to when on_timeout is 'escalate'")],
            id="escalate-without-escalate_to",
        ),
        pytest.param(
            {"reviewers": [], "mode": "sampled", "on_timeout": "escalate"},
            [
                ("reviewers", "name at least one reviewer role"),
                ("sample_rate", "required when mode is 'sampled'"),
                ("escalate_to", "name the roles to escalate to when on_timeout is 'escalate'"),
            ],
            id="several-at-once",
        ),
    ],
)
def test_review_policy_cross_field_rules(
    kwargs: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    """A review policy that breaks a rule across its fields reports each rule at its field."""
    assert paths_and_messages(declaration_error(ReviewPolicy, **kwargs)) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"reviewers": ["sales"]}, id="always"),
        pytest.param({"reviewers": ["sales"], "mode": "sampled", "sample_rate": 1}, id="sampled"),
        pytest.param(
            {"reviewers": ["sales"], "mode": "conditional", "condition": needs_review},
            id="conditional-callable",
        ),
        pytest.param(
            {
                "reviewers": ["sales"],
                "mode": "conditional",
                "condition": {"field": "amount", "op": "gt", "value": 500},
            },
            id="conditional-field-rule",
        ),
        pytest.param(
            {"reviewers": ["sales"], "on_timeout": "escalate", "escalate_to": ["head_of_sales"]},
            id="escalate",
        ),
        pytest.param({"reviewers": ["sales"], "on_timeout": "pause_workflow"}, id="pause"),
    ],
)
def test_review_policy_that_meets_its_rules_builds(kwargs: dict[str, Any]) -> None:
    """Every mode and timeout outcome builds when the fields it needs are given."""
    policy = ReviewPolicy(**kwargs)

    assert policy.mode is ReviewMode(kwargs.get("mode", "always"))


def test_conditional_review_condition_mapping_becomes_a_field_rule() -> None:
    """A condition written as a mapping is read as a FieldRule."""
    policy = ReviewPolicy(
        reviewers=["sales"],
        mode="conditional",
        condition={"field": "amount", "op": "gt", "value": 500},
    )

    assert policy.condition == FieldRule(field="amount", op="gt", value=500)


@pytest.mark.parametrize(
    "rate",
    [pytest.param(0, id="zero"), pytest.param(-0.1, id="negative"), pytest.param(1.5, id="over")],
)
def test_sample_rate_must_be_in_zero_one(rate: float) -> None:
    """A sample rate outside (0, 1] is rejected at sample_rate."""
    error = declaration_error(ReviewPolicy, reviewers=["sales"], mode="sampled", sample_rate=rate)

    assert paths(error) == {"sample_rate"}


def test_nested_cross_field_problem_is_reported_under_its_parent() -> None:
    """A rule broken inside the review policy is reported at review.<field> from the workflow."""
    error = declaration_error(
        Workflow.from_dict, {"name": "w", "review": {"reviewers": ["sales"], "mode": "sampled"}}
    )

    assert paths_and_messages(error) == [("review.sample_rate", "required when mode is 'sampled'")]


def test_action_requiring_approval_needs_a_review_policy() -> None:
    """An action with risk requires_approval and no review policy is reported at its risk."""
    actions = [
        {"name": "log_call", "risk": "autonomous"},
        {"name": "send_email", "risk": "requires_approval"},
    ]

    error = declaration_error(Workflow.from_dict, {"name": "w", "actions": actions})

    assert paths(error) == {"actions[1].risk"}
    assert "'send_email' requires approval" in error.problems[0].message
    assert "review policy" in error.problems[0].message
    assert Workflow.from_dict(
        {"name": "w", "actions": actions, "review": {"reviewers": ["sales"]}}
    ).action("send_email")


@pytest.mark.parametrize(
    "risk",
    [
        pytest.param(RiskBoundary.AUTONOMOUS, id="autonomous"),
        pytest.param(RiskBoundary.MANUAL_ONLY, id="manual_only"),
    ],
)
def test_actions_not_requiring_approval_need_no_review_policy(risk: RiskBoundary) -> None:
    """Autonomous and manual-only actions are valid without a review policy."""
    workflow = Workflow(name="w", actions=[Action(name="a", risk=risk)])

    assert workflow.actions[0].risk is risk


def test_output_standard_on_fail_review_needs_a_review_policy() -> None:
    """on_fail 'review' without a review policy is reported at output_standard.on_fail."""
    error = declaration_error(
        Workflow.from_dict, {"name": "w", "output_standard": {"on_fail": "review"}}
    )
    assert paths(error) == {"output_standard.on_fail"}
    assert "needs a review policy" in error.problems[0].message
    assert Workflow(
        name="w",
        output_standard=OutputStandard(on_fail="review"),
        review=ReviewPolicy(reviewers=["sales"]),
    ).output_standard


@pytest.mark.parametrize(
    "on_fail",
    [
        pytest.param(OnFail.RAISE, id="raise"),
        pytest.param(OnFail.EXCEPTION_PATH, id="exception_path"),
        pytest.param(OnFail.RETRY, id="retry"),
    ],
)
def test_other_on_fail_choices_need_no_review_policy(on_fail: OnFail) -> None:
    """Only on_fail 'review' needs a review policy."""
    workflow = Workflow(name="w", output_standard=OutputStandard(on_fail=on_fail))

    assert workflow.output_standard is not None
    assert workflow.output_standard.on_fail is on_fail


@pytest.mark.parametrize(
    ("field", "items"),
    [
        pytest.param(
            "sources",
            [
                {"name": "crm.lead", "system": "Salesforce"},
                {"name": "calendar", "system": "Google"},
                {"name": "crm.lead", "system": "HubSpot"},
            ],
            id="sources",
        ),
        pytest.param(
            "actions",
            [
                {"name": "crm.lead", "risk": "autonomous"},
                {"name": "calendar", "risk": "autonomous"},
                {"name": "crm.lead", "risk": "manual_only"},
            ],
            id="actions",
        ),
        pytest.param(
            "metrics",
            [
                {"name": "crm.lead", "unit": "s", "direction": "decrease"},
                {"name": "calendar", "unit": "s", "direction": "decrease"},
                {"name": "crm.lead", "unit": "%", "direction": "increase"},
            ],
            id="metrics",
        ),
    ],
)
def test_names_are_unique_within_their_list(field: str, items: list[dict[str, Any]]) -> None:
    """A second item with a name already used in the same list is reported at its name."""
    error = declaration_error(Workflow.from_dict, {"name": "w", field: items})

    assert set(paths_and_messages(error)) == {
        (f"{field}[2].name", f"duplicate name 'crm.lead' (also {field}[0])")
    }


def test_same_name_in_different_lists_is_allowed() -> None:
    """Uniqueness is per list: a source and an action may share a name."""
    workflow = Workflow(
        name="w",
        sources=[Source(name="crm", system="Salesforce")],
        actions=[Action(name="crm", risk="autonomous")],
        metrics=[Metric(name="crm", unit="s", direction="decrease")],
    )

    assert workflow.source("crm") is not None
    assert workflow.action("crm") is not None


@pytest.mark.parametrize("stage", ["pilot", "production"])
def test_deployed_workflow_must_name_everything_it_is_measured_and_stopped_by(stage: str) -> None:
    """A workflow in pilot or production with nothing else reports each missing part."""
    error = declaration_error(Workflow.from_dict, {"name": "w", "stage": stage})

    assert paths(error) == {"owner", "trigger", "system_of_record", "metrics", "stop_rules"}
    assert all(f"a workflow in {stage} must name" in p.message for p in error.problems)


@pytest.mark.parametrize("stage", ["pilot", "production"])
def test_deployed_workflow_with_every_part_builds(stage: str) -> None:
    """A workflow in pilot or production naming all it must is valid."""
    workflow = Workflow.from_dict({**pilot_data(), "stage": stage})

    assert workflow.stage is Stage(stage)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param({"owner": None}, "owner", id="owner"),
        pytest.param({"trigger": None}, "trigger", id="trigger"),
        pytest.param({"system_of_record": None}, "system_of_record", id="system_of_record"),
        pytest.param({"metrics": []}, "metrics", id="no-metric"),
        pytest.param(
            {"metrics": [{"name": "response_time", "unit": "s", "direction": "decrease"}]},
            "metrics",
            id="metric-without-baseline",
        ),
        pytest.param({"stop_rules": []}, "stop_rules", id="no-stop-rule"),
    ],
)
def test_deployed_workflow_missing_one_part_names_it(change: dict[str, Any], expected: str) -> None:
    """Leaving out one part a pilot needs is reported at exactly that part."""
    data = {key: value for key, value in {**pilot_data(), **change}.items() if value is not None}

    error = declaration_error(Workflow.from_dict, data)

    assert paths(error) == {expected}


def test_draft_workflow_needs_none_of_the_deployed_parts() -> None:
    """A draft workflow is valid with nothing but a name."""
    workflow = Workflow.from_dict({"name": "w", "stage": "draft"})

    assert workflow.stage is Stage.DRAFT
    assert workflow.owner is None
    assert workflow.stop_rules == ()


# --- every problem at once -----------------------------------------------------------


def all_wrong_data() -> dict[str, Any]:
    """A pilot with field errors, a duplicate name and missing pilot parts."""
    return {
        "name": "lead_follow_up",
        "stage": "pilot",
        "review": {"reviewers": ["sales"], "timeout": -60},
        "actions": [
            {"name": "send_email", "risk": "autonomous"},
            {"name": "send_email", "risk": "autonomous"},
        ],
        "stop_rules": [{"kind": "budget", "limit": -1, "per_run": 1}],
    }


@pytest.mark.parametrize(
    "load",
    [
        pytest.param(Workflow.from_dict, id="from_dict"),
        pytest.param(lambda data: Workflow(**data), id="constructor"),
    ],
)
def test_field_and_cross_field_problems_are_reported_together(
    load: Callable[[dict[str, Any]], Workflow],
) -> None:
    """One DeclarationError lists field errors and workflow rules, each at its dotted path."""
    error = declaration_error(load, all_wrong_data())

    assert sorted(problem.path for problem in error.problems) == sorted(
        [
            "review.timeout",
            "stop_rules[0].limit",
            "actions[1].name",
            "owner",
            "trigger",
            "system_of_record",
            "metrics",
        ]
    )
    messages = dict(paths_and_messages(error))
    assert "must be positive" in messages["review.timeout"]
    assert "greater than 0" in messages["stop_rules[0].limit"]
    assert messages["actions[1].name"] == "duplicate name 'send_email' (also actions[0])"


def test_declaration_error_message_lists_every_problem() -> None:
    """The error's text counts the problems and shows each with its path."""
    error = declaration_error(Workflow.from_dict, all_wrong_data())

    text = str(error)
    assert text.startswith(f"invalid workflow declaration lead_follow_up ({len(error.problems)} ")
    for problem in error.problems:
        assert f"  {problem.path}: {problem.message}" in text.splitlines()


PILOT_GAPS = ["owner", "trigger", "system_of_record", "metrics", "stop_rules"]


@pytest.mark.parametrize(
    ("load", "expected"),
    [
        pytest.param(
            lambda: Workflow.from_dict({"name": "w", "stage": "pilot"}), PILOT_GAPS, id="from_dict"
        ),
        pytest.param(lambda: Workflow(name="w", stage="pilot"), PILOT_GAPS, id="constructor"),
        pytest.param(
            lambda: Workflow.from_string("name: w\noutput_standard: {on_fail: review}\n"),
            ["output_standard.on_fail"],
            id="from_string-on_fail",
        ),
        pytest.param(
            lambda: Workflow(name="w", actions=[Action(name="a", risk="requires_approval")]),
            ["actions[0].risk"],
            id="constructor-approval",
        ),
    ],
)
def test_workflow_rule_problem_is_reported_once(
    load: Callable[[], Workflow], expected: list[str]
) -> None:
    """With every field valid, each broken workflow rule is reported once, not once per check."""
    error = declaration_error(load)

    assert [problem.path for problem in error.problems] == expected


# --- durations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param("90s", timedelta(seconds=90), id="seconds"),
        pytest.param("15m", timedelta(minutes=15), id="minutes"),
        pytest.param("1h30m", timedelta(hours=1, minutes=30), id="hours-minutes"),
        pytest.param("7d", timedelta(days=7), id="days"),
        pytest.param("1.5h", timedelta(minutes=90), id="fraction"),
        pytest.param("250ms", timedelta(milliseconds=250), id="milliseconds"),
        pytest.param("10us", timedelta(microseconds=10), id="microseconds"),
        pytest.param(" 1h 30m ", timedelta(hours=1, minutes=30), id="spaces"),
        pytest.param("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4), id="all"),
        pytest.param(90, timedelta(seconds=90), id="int-seconds"),
        pytest.param(1.5, timedelta(seconds=1.5), id="float-seconds"),
        pytest.param(timedelta(minutes=5), timedelta(minutes=5), id="timedelta"),
    ],
)
def test_duration_is_read_from_compact_text_or_seconds(written: Any, expected: timedelta) -> None:
    """Durations read '90s', '15m', '1h30m', '7d', plain seconds and timedeltas."""
    assert ReviewPolicy(reviewers=["sales"], timeout=written).timeout == expected


@pytest.mark.parametrize(
    "written",
    [
        pytest.param("PT1H", id="iso-8601"),
        pytest.param("P1D", id="iso-8601-days"),
        pytest.param("1:30:00", id="clock"),
        pytest.param("1 hour", id="word"),
        pytest.param("h", id="unit-only"),
        pytest.param("30", id="no-unit"),
        pytest.param("1.h", id="dangling-point"),
        pytest.param("1w", id="unknown-unit"),
        pytest.param("1h-30m", id="minus-inside"),
        pytest.param("-5m", id="negative-text"),
        pytest.param("", id="empty"),
    ],
)
def test_duration_text_that_is_not_a_duration_is_rejected(written: str) -> None:
    """Text that is not in the compact form is rejected with a message showing the form."""
    error = declaration_error(ReviewPolicy, reviewers=["sales"], timeout=written)

    assert paths(error) == {"timeout"}
    assert "is not a duration; write it like '30s'" in error.problems[0].message


@pytest.mark.parametrize(
    "written",
    [
        pytest.param(0, id="zero"),
        pytest.param(-1, id="negative-int"),
        pytest.param(-0.5, id="negative-float"),
        pytest.param("0s", id="zero-text"),
        pytest.param("0h0m", id="zero-parts"),
        pytest.param(timedelta(0), id="zero-timedelta"),
        pytest.param(timedelta(seconds=-1), id="negative-timedelta"),
    ],
)
def test_duration_must_be_positive(written: Any) -> None:
    """A zero or negative duration is rejected with 'must be positive'."""
    error = declaration_error(ReviewPolicy, reviewers=["sales"], timeout=written)

    assert paths_and_messages(error) == [("timeout", "must be positive")]


def test_boolean_is_not_a_duration() -> None:
    """True is not read as one second."""
    error = declaration_error(ReviewPolicy, reviewers=["sales"], timeout=True)

    assert paths(error) == {"timeout"}


def test_negative_review_timeout_in_a_workflow_says_it_must_be_positive() -> None:
    """review.timeout below zero is reported at review.timeout, saying it must be positive."""
    error = declaration_error(
        Workflow.from_dict, {"name": "w", "review": {"reviewers": ["sales"], "timeout": -5}}
    )

    assert len(error.problems) == 1
    assert error.problems[0].path == "review.timeout"
    assert "must be positive" in error.problems[0].message


@pytest.mark.parametrize(
    ("written", "message"),
    [
        pytest.param(float("inf"), "inf seconds is not a usable duration", id="infinity"),
        pytest.param(float("nan"), "nan seconds is not a usable duration", id="nan"),
        pytest.param(10**20, f"{10**20} seconds is not a usable duration", id="huge-int"),
        pytest.param("9999999999d", "'9999999999d' is too long a duration", id="huge-text"),
    ],
)
def test_unusable_duration_is_a_declaration_error(written: Any, message: str) -> None:
    """A duration a timedelta cannot hold is a DeclarationError at its field, not a crash."""
    error = declaration_error(ReviewPolicy, reviewers=["sales"], timeout=written)

    assert paths_and_messages(error) == [("timeout", message)]


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        pytest.param(timedelta(seconds=90), "1m30s", id="90s"),
        pytest.param(timedelta(minutes=15), "15m", id="15m"),
        pytest.param(timedelta(hours=1, minutes=30), "1h30m", id="1h30m"),
        pytest.param(timedelta(days=7), "7d", id="7d"),
        pytest.param(timedelta(days=1, seconds=1), "1d1s", id="gap"),
        pytest.param(timedelta(milliseconds=250), "250000us", id="250ms"),
        pytest.param(timedelta(microseconds=1), "1us", id="1us"),
        pytest.param(
            timedelta(days=2, hours=3, minutes=4, seconds=5, microseconds=6),
            "2d3h4m5s6us",
            id="every-unit",
        ),
    ],
)
def test_format_duration_writes_compact_text_that_reads_back_exactly(
    duration: timedelta, text: str
) -> None:
    """format_duration writes the compact form, and parsing it gives the same timedelta."""
    assert format_duration(duration) == text
    assert parse_duration(text) == duration


def test_durations_are_written_compactly_in_files() -> None:
    """Durations in a dumped workflow are compact text, not seconds or ISO 8601."""
    data = full_workflow().to_dict()

    assert data["review"]["timeout"] == "1h30m"
    assert data["stop_rules"][2] == {"kind": "run_cap", "max_runs": 200, "window": "7d"}
    assert data["stop_rules"][6] == {"kind": "sla_breach_rate", "sla": "15m", "max_rate": 0.2}


# --- shorthands and coercions --------------------------------------------------------


def test_trigger_accepts_a_single_event() -> None:
    """Trigger(event=...) is shorthand for a one-element events list."""
    assert Trigger(event="form_fill") == Trigger(events=["form_fill"])
    assert Workflow.from_string("name: w\ntrigger: {event: form_fill}\n").trigger == Trigger(
        events=("form_fill",)
    )


def test_trigger_rejects_both_event_and_events() -> None:
    """Writing both event and events is an error that says to choose one."""
    error = declaration_error(
        Workflow.from_dict, {"name": "w", "trigger": {"event": "a", "events": ["b"]}}
    )

    assert paths_and_messages(error) == [("trigger", "write either 'event' or 'events', not both")]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([], {"trigger.events"}, id="none"),
        pytest.param(["a", "  "], {"trigger.events[1]"}, id="blank"),
        pytest.param(["a", "b", "a"], {"trigger.events"}, id="repeated"),
    ],
)
def test_trigger_events_are_non_empty_and_distinct(events: list[str], expected: set[str]) -> None:
    """A trigger needs at least one event type, none blank, none repeated."""
    error = declaration_error(Workflow.from_dict, {"name": "w", "trigger": {"events": events}})

    assert paths(error) == expected


@pytest.mark.parametrize(
    ("event", "shown"),
    [
        pytest.param(5, "5", id="number"),
        pytest.param(" ", "' '", id="blank"),
        pytest.param(["a", "b"], "['a', 'b']", id="list"),
    ],
)
def test_trigger_event_shorthand_error_names_event(event: Any, shown: str) -> None:
    """A wrong value given as 'event' is one problem at trigger.event, as the user wrote it."""
    error = declaration_error(Workflow.from_dict, {"name": "w", "trigger": {"event": event}})

    assert paths_and_messages(error) == [
        ("trigger.event", f"name one event type, such as form_fill; got {shown}")
    ]


def test_system_of_record_accepts_a_plain_name() -> None:
    """system_of_record given as a string is the system's name."""
    workflow = Workflow.from_string("name: w\nsystem_of_record: Salesforce\n")

    assert workflow.system_of_record == SystemOfRecord(name="Salesforce")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("version: 2", "2", id="int"),
        pytest.param("version: '2.1'", "2.1", id="text"),
        pytest.param("version: 2024-q3", "2024-q3", id="label"),
    ],
)
def test_version_is_kept_as_text(text: str, expected: str) -> None:
    """A version written as a YAML int becomes the string of its digits."""
    assert Workflow.from_string(f"name: w\n{text}\n").version == expected


@pytest.mark.parametrize("written", ["yes", "true", "off"])
def test_boolean_version_is_rejected(written: str) -> None:
    """A YAML boolean as version is rejected, not turned into the label 'True'."""
    error = declaration_error(Workflow.from_string, f"name: w\nversion: {written}\n")

    assert paths(error) == {"version"}


# --- files ---------------------------------------------------------------------------


def test_yaml_problems_name_the_file_and_the_line_of_the_offending_key(tmp_path: Path) -> None:
    """Every problem from a YAML file names the file and the line of its key."""
    path = write(
        tmp_path / "lead_follow_up.yaml",
        """\
        # Inbound lead follow-up
        name: lead_follow_up
        stage: draft
        review:
          reviewers: [sales]
          timeout: -5
        actions:
          - name: send_email
            risk: autonomous
          - name: send_email
            risk: autonomous
        stop_rules:
          - {kind: budget, per_run: 1,
             limit: -1}
          - kind: run_cap
            max_runs: 3
        """,
    )

    error = declaration_error(Workflow.from_file, path)

    assert sorted((p.path, p.source, p.line) for p in error.problems) == sorted(
        [
            ("review.timeout", str(path), 6),
            ("actions[1].name", str(path), 10),
            ("stop_rules[0].limit", str(path), 14),
            ("stop_rules[1].window", str(path), 15),  # missing: the mapping that lacks it
        ]
    )
    assert f"  {path}:6: review.timeout: must be positive" in str(error).splitlines()


def test_yaml_missing_top_level_key_points_at_the_document(tmp_path: Path) -> None:
    """A missing top-level part of a pilot points at the document's first key."""
    path = write(
        tmp_path / "w.yml",
        """\
        # a comment first
        name: w
        stage: pilot
        owner: {name: Dana}
        trigger: {event: form_fill}
        system_of_record: Salesforce
        metrics: []
        """,
    )

    error = declaration_error(Workflow.from_file, path)

    assert sorted((p.path, p.line) for p in error.problems) == [("metrics", 7), ("stop_rules", 2)]


def test_json_problems_name_the_file_without_a_line(tmp_path: Path) -> None:
    """Problems from a JSON file name the file; JSON gives no line per key."""
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"name": "w", "review": {"reviewers": ["a"], "timeout": -5}}))

    error = declaration_error(Workflow.from_file, path)

    assert [(p.path, p.source, p.line) for p in error.problems] == [
        ("review.timeout", str(path), None)
    ]


@pytest.mark.parametrize(
    ("filename", "text", "line", "message"),
    [
        pytest.param(
            "w.yaml",
            "name: w\nstage: draft\n  owner: x\n",
            3,
            "not valid YAML: mapping values are not allowed here",
            id="yaml-indent",
        ),
        pytest.param(
            "w.yaml",
            "name: w\n\tstage: draft\n",
            2,
            "not valid YAML: found character '\\t' that cannot start any token",
            id="yaml-tab",
        ),
        pytest.param(
            "w.yaml",
            "name: w\n---\nname: x\n",
            2,
            "not valid YAML: but found another document",
            id="yaml-two-documents",
        ),
        pytest.param(
            "w.json",
            '{\n  "name": "w",\n  "stage": \n}\n',
            4,
            "not valid JSON: Expecting value",
            id="json-missing-value",
        ),
        pytest.param(
            "w.json",
            '{\n  "name": "w"\n  "stage": "draft"\n}\n',
            3,
            "not valid JSON: Expecting ',' delimiter",
            id="json-missing-comma",
        ),
    ],
)
def test_malformed_file_is_reported_with_its_line(
    tmp_path: Path, filename: str, text: str, line: int, message: str
) -> None:
    """Text that is not YAML or JSON is one problem naming the file, the line and the reason."""
    path = tmp_path / filename
    path.write_text(text)

    error = declaration_error(Workflow.from_file, path)

    assert error.problems == (Problem((), message, str(path), line),)


@pytest.mark.parametrize(
    ("filename", "text", "kind"),
    [
        pytest.param("w.yaml", "- name: w\n", "list", id="yaml-list"),
        pytest.param("w.yaml", "", "nothing", id="yaml-empty"),
        pytest.param("w.yaml", "lead_follow_up\n", "str", id="yaml-text"),
        pytest.param("w.yaml", "42\n", "int", id="yaml-int"),
        pytest.param("w.json", '[{"name": "w"}]', "list", id="json-list"),
        pytest.param("w.json", "null", "nothing", id="json-null"),
    ],
)
def test_document_that_is_not_a_mapping_is_rejected(
    tmp_path: Path, filename: str, text: str, kind: str
) -> None:
    """A document that is not a mapping of fields says what it is instead."""
    path = tmp_path / filename
    path.write_text(text)

    error = declaration_error(Workflow.from_file, path)

    assert error.problems == (
        Problem((), f"a workflow declaration is a mapping of fields, not {kind}", str(path), 1),
    )


def test_file_with_unknown_suffix_is_rejected(tmp_path: Path) -> None:
    """Only .yaml, .yml and .json files are read or written."""
    path = tmp_path / "w.toml"
    path.write_text('name = "w"\n')

    read_error = declaration_error(Workflow.from_file, path)
    write_error = declaration_error(Workflow(name="w").dump, tmp_path / "out.txt")

    for error in (read_error, write_error):
        assert [p.message for p in error.problems] == [
            "declaration files end in .yaml, .yml or .json"
        ]
    assert not (tmp_path / "out.txt").exists()


def test_missing_file_is_a_declaration_error(tmp_path: Path) -> None:
    """A file that cannot be read is a DeclarationError naming it."""
    path = tmp_path / "absent.yaml"

    error = declaration_error(Workflow.from_file, path)

    assert [(p.source, p.message) for p in error.problems] == [
        (str(path), "cannot read the file: No such file or directory")
    ]


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_dump_and_from_file_round_trip(tmp_path: Path, suffix: str) -> None:
    """A workflow dumped to a file in the suffix's format loads back equal."""
    workflow = full_workflow()
    path = tmp_path / f"lead_follow_up{suffix}"

    workflow.dump(path)

    assert Workflow.from_file(path) == workflow
    text = path.read_text(encoding="utf-8")
    if suffix == ".json":
        assert json.loads(text) == workflow.to_dict()
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        assert yaml.safe_load(text) == workflow.to_dict()


def test_yaml_round_trip_keeps_next_line_character() -> None:
    """Text holding U+0085 (NEL) loads back from YAML unchanged."""
    workflow = Workflow(name="w", description="a\x85b")

    assert Workflow.from_string(workflow.to_string("yaml")) == workflow


def test_to_dict_writes_import_paths_and_leaves_out_defaults() -> None:
    """Dumped data names objects by import path and omits fields left at their default."""
    data = Workflow(
        name="w",
        output_standard=OutputStandard(
            schema=FollowUp, validators=[has_subject, Checks.no_placeholders]
        ),
        exception_path=ExceptionPath(route_to="ops", handler=route_exception),
        review=ReviewPolicy(reviewers=["sales"], mode="conditional", condition=needs_review),
        stop_rules=[KillSwitch()],
    ).to_dict()

    assert data == {
        "name": "w",
        "output_standard": {
            "schema": "_declared:FollowUp",
            "validators": ["_declared:has_subject", "_declared:Checks.no_placeholders"],
        },
        "review": {
            "reviewers": ["sales"],
            "mode": "conditional",
            "condition": "_declared:needs_review",
        },
        "exception_path": {"route_to": "ops", "handler": "_declared:route_exception"},
        "stop_rules": [{"kind": "kill_switch"}],
    }


# --- import paths --------------------------------------------------------------------


def test_import_paths_in_a_file_resolve_to_the_objects(tmp_path: Path) -> None:
    """Schema, validators, review condition and handler written as import paths are imported."""
    path = write(
        tmp_path / "w.yaml",
        """\
        name: w
        output_standard:
          schema: "_declared:FollowUp"
          validators: ["_declared:has_subject", "_declared:Checks.no_placeholders"]
        review:
          reviewers: [sales]
          mode: conditional
          condition: "_declared:needs_review"
        exception_path:
          route_to: ops
          handler: "_declared:route_exception"
        """,
    )

    workflow = Workflow.from_file(path)

    assert workflow.output_standard is not None
    assert workflow.output_standard.schema_ is FollowUp
    assert workflow.output_standard.validators == (has_subject, Checks.no_placeholders)
    assert workflow.review is not None
    assert workflow.review.condition is needs_review
    assert workflow.exception_path is not None
    assert workflow.exception_path.handler is route_exception


def test_from_file_imports_modules_beside_the_file(tmp_path: Path) -> None:
    """A file's import paths may name a module in its own folder, found only while loading."""
    module = "beside_the_declaration"
    (tmp_path / f"{module}.py").write_text(
        "from pydantic import BaseModel\n\n\nclass Reply(BaseModel):\n    text: str\n"
    )
    path = write(tmp_path / "w.yaml", f"name: w\noutput_standard: {{schema: '{module}:Reply'}}\n")
    try:
        workflow = Workflow.from_file(path)
        assert workflow.output_standard is not None
        assert workflow.output_standard.schema_ is sys.modules[module].Reply
    finally:
        sys.modules.pop(module, None)

    assert str(tmp_path.resolve()) not in sys.path
    with pytest.raises(DeclarationError, match=f"No module named '{module}'"):
        Workflow.from_string(path.read_text())


def test_objects_given_directly_are_kept() -> None:
    """In Python, a schema class and callables may be passed as themselves."""
    standard = OutputStandard(schema=FollowUp, validators=[within_budget])

    assert standard.schema_ is FollowUp
    assert standard.validators == (within_budget,)


@pytest.mark.parametrize(
    ("where", "import_path", "reason"),
    [
        pytest.param(
            "output_standard.schema",
            "_declared:Missing",
            "module '_declared' has no attribute 'Missing'",
            id="schema-missing-attribute",
        ),
        pytest.param(
            "output_standard.schema",
            "_nowhere:FollowUp",
            "ModuleNotFoundError: No module named '_nowhere'",
            id="schema-missing-module",
        ),
        pytest.param(
            "output_standard.validators[0]",
            "_declared:Checks.missing",
            "module '_declared' has no attribute 'Checks.missing'",
            id="validator-missing-nested-attribute",
        ),
        pytest.param(
            "review.condition",
            "_nowhere:needs_review",
            "No module named '_nowhere'",
            id="condition-missing-module",
        ),
        pytest.param(
            "exception_path.handler",
            "_declared:missing_handler",
            "has no attribute 'missing_handler'",
            id="handler-missing-attribute",
        ),
        pytest.param(
            "exception_path.handler",
            "route_exception",
            "is not an import path; write it as 'package.module:Name'",
            id="handler-without-colon",
        ),
        pytest.param(
            "exception_path.handler",
            "_declared:",
            "is not an import path; write it as 'package.module:Name'",
            id="handler-without-attribute",
        ),
    ],
)
def test_unimportable_path_is_a_declaration_error_naming_it(
    where: str, import_path: str, reason: str
) -> None:
    """An import path that does not import is reported at its field, naming the path and why."""
    data: dict[str, Any] = {
        "name": "w",
        "output_standard": {"schema": "_declared:FollowUp", "validators": []},
        "review": {"reviewers": ["sales"], "mode": "conditional", "condition": needs_review},
        "exception_path": {"route_to": "ops"},
    }
    parent, _, leaf = where.partition(".")
    if leaf == "validators[0]":
        data[parent]["validators"] = [import_path]
    else:
        data[parent][leaf] = import_path

    error = declaration_error(Workflow.from_dict, data)

    assert paths(error) == {where}
    assert repr(import_path) in error.problems[0].message
    assert reason in error.problems[0].message


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        pytest.param(
            "schema", "_declared:has_subject", "is not a pydantic model class", id="schema"
        ),
        pytest.param(
            "validators",
            ["_declared:NOT_CALLABLE"],
            "'_declared:NOT_CALLABLE' names 42, which is not callable",
            id="validator",
        ),
    ],
)
def test_import_path_to_the_wrong_kind_of_object_is_rejected(
    field: str, value: Any, reason: str
) -> None:
    """A schema must be a pydantic model class and a validator must be callable."""
    error = declaration_error(OutputStandard, **{field: value})

    assert len(error.problems) == 1
    assert reason in error.problems[0].message


def _local_validator(output: Any) -> list[str]:
    return []


def _cannot_be_named() -> list[tuple[str, Callable[[], Workflow], str]]:
    def local_handler(record: Any) -> None:
        return None

    class LocalSchema(BaseModel):
        subject: str

    return [
        (
            "lambda",
            lambda: Workflow(
                name="w", exception_path=ExceptionPath(route_to="ops", handler=lambda r: None)
            ),
            "has no import path",
        ),
        (
            "local-function",
            lambda: Workflow(
                name="w", exception_path=ExceptionPath(route_to="ops", handler=local_handler)
            ),
            "has no import path",
        ),
        (
            "local-class",
            lambda: Workflow(name="w", output_standard=OutputStandard(schema=LocalSchema)),
            "has no import path",
        ),
        (
            "partial",
            lambda: Workflow(
                name="w",
                output_standard=OutputStandard(validators=[functools.partial(has_subject)]),
            ),
            "has no import path",
        ),
        (
            "renamed",
            lambda: Workflow(name="w", output_standard=OutputStandard(validators=[renamed])),
            "does not import back from '_declared:no_longer_here'",
        ),
    ]


@pytest.mark.parametrize(
    ("build", "reason"),
    [pytest.param(build, reason, id=case) for case, build, reason in _cannot_be_named()],
)
def test_object_without_an_import_path_cannot_be_dumped(
    tmp_path: Path, build: Callable[[], Workflow], reason: str
) -> None:
    """A lambda, local object or renamed function is usable in Python but cannot be written."""
    workflow = build()
    path = tmp_path / "w.yaml"

    for dump in (workflow.to_dict, workflow.to_string, lambda: workflow.dump(path)):
        error = declaration_error(dump)
        assert error.summary == "workflow w cannot be dumped"
        assert "cannot be written to a file" in error.problems[0].message
        assert reason in error.problems[0].message
    assert not path.exists()


def test_invalid_field_rule_condition_is_reported_with_the_others(tmp_path: Path) -> None:
    """A bad FieldRule condition is one problem among the others, at its path and line."""
    path = write(
        tmp_path / "w.yaml",
        """\
        name: w
        review:
          reviewers: [sales]
          mode: conditional
          condition:
            field: amount
            op: bigger
            value: 500
        stop_rules:
          - {kind: budget, per_run: 1,
             limit: -1}
        """,
    )

    error = declaration_error(Workflow.from_file, path)

    assert sorted((p.path, p.line) for p in error.problems) == [
        ("review.condition.op", 7),
        ("stop_rules[0].limit", 11),
    ]


# --- FieldRule.matches ---------------------------------------------------------------

OUTPUT = {
    "amount": 750,
    "status": "open",
    "lead": {"score": 80, "owner": SimpleNamespace(region="emea")},
}


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        pytest.param("status", "eq", "open", True, id="eq-true"),
        pytest.param("status", "eq", "closed", False, id="eq-false"),
        pytest.param("status", "ne", "closed", True, id="ne-true"),
        pytest.param("status", "ne", "open", False, id="ne-false"),
        pytest.param("amount", "gt", 500, True, id="gt-true"),
        pytest.param("amount", "gt", 750, False, id="gt-false"),
        pytest.param("amount", "ge", 750, True, id="ge-true"),
        pytest.param("amount", "ge", 751, False, id="ge-false"),
        pytest.param("amount", "lt", 1000, True, id="lt-true"),
        pytest.param("amount", "lt", 750, False, id="lt-false"),
        pytest.param("amount", "le", 750, True, id="le-true"),
        pytest.param("amount", "le", 749, False, id="le-false"),
        pytest.param("status", "in", ["open", "new"], True, id="in-true"),
        pytest.param("status", "in", ["closed"], False, id="in-false"),
        pytest.param("status", "not_in", ["closed"], True, id="not_in-true"),
        pytest.param("status", "not_in", ["open", "new"], False, id="not_in-false"),
        pytest.param("lead.score", "ge", 80, True, id="nested-mapping"),
        pytest.param("lead.owner.region", "eq", "emea", True, id="nested-attribute"),
        pytest.param("lead.owner.region", "eq", "apac", False, id="nested-attribute-false"),
    ],
)
def test_field_rule_compares_the_field_with_its_operator(
    field: str, op: str, value: Any, expected: bool
) -> None:
    """Each operator compares the (possibly dotted) field of the output with the value."""
    assert FieldRule(field=field, op=op, value=value).matches(OUTPUT) is expected


def test_field_rule_reads_attributes_of_objects() -> None:
    """A rule reads an attribute of a model output as it reads a key of a mapping."""
    output = FollowUp(subject="Hello", body="Hi", amount=750)

    assert FieldRule(field="amount", op="gt", value=500).matches(output) is True
    assert FieldRule(field="amount", op="gt", value=1000).matches(output) is False


@pytest.mark.parametrize(
    ("field", "op", "value"),
    [
        pytest.param("missing", "ne", 1, id="top-level-ne"),
        pytest.param("missing", "not_in", [1], id="top-level-not_in"),
        pytest.param("lead.missing", "ne", 1, id="nested-mapping"),
        pytest.param("lead.owner.country", "ne", "fr", id="nested-attribute"),
        pytest.param("status.deeper", "ne", "x", id="below-a-leaf"),
    ],
)
def test_field_rule_on_missing_field_does_not_match(field: str, op: str, value: Any) -> None:
    """A missing field never matches, even for ne and not_in that a None would satisfy."""
    assert FieldRule(field=field, op=op, value=value).matches(OUTPUT) is False


@pytest.mark.parametrize(
    ("field", "op", "value"),
    [
        pytest.param("status", "gt", 5, id="text-gt-int"),
        pytest.param("amount", "lt", None, id="int-lt-none"),
        pytest.param("amount", "in", 5, id="in-non-container"),
        pytest.param("amount", "not_in", 5, id="not_in-non-container"),
    ],
)
def test_field_rule_on_incomparable_values_does_not_match(field: str, op: str, value: Any) -> None:
    """Values that cannot be compared make the rule not match instead of raising."""
    assert FieldRule(field=field, op=op, value=value).matches(OUTPUT) is False


def test_field_rule_rejects_unknown_operator() -> None:
    """Only the documented operators are accepted."""
    error = declaration_error(FieldRule, field="amount", op="like", value=1)

    assert paths(error) == {"op"}


# --- lookups -------------------------------------------------------------------------


def test_source_and_action_lookups_by_name() -> None:
    """Workflow.source() and .action() return the declared item by name, or None."""
    workflow = full_workflow()

    assert workflow.source("calendar") is workflow.sources[1]
    assert workflow.source("crm.lead") is workflow.sources[0]
    assert workflow.source("email") is None
    assert workflow.action("log_call") is workflow.actions[1]
    assert workflow.action("send_email") is workflow.actions[0]
    assert workflow.action("calendar") is None
    assert workflow.key == ("lead_follow_up", "3")


# --- Problem and DeclarationError ----------------------------------------------------


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        pytest.param((), "", id="whole"),
        pytest.param(("name",), "name", id="field"),
        pytest.param(("review", "timeout"), "review.timeout", id="nested"),
        pytest.param(("stop_rules", 0), "stop_rules[0]", id="index"),
        pytest.param(("sources", 1, "name"), "sources[1].name", id="index-then-field"),
        pytest.param(("trigger", "events", 2), "trigger.events[2]", id="field-then-index"),
    ],
)
def test_problem_path_is_dotted_with_indices_in_brackets(loc: tuple[Any, ...], path: str) -> None:
    """A problem's location reads as a dotted path with list indices in brackets."""
    assert Problem(loc, "wrong").path == path


@pytest.mark.parametrize(
    ("problem", "text"),
    [
        pytest.param(
            Problem(("name",), "required", "w.yaml", 3), "w.yaml:3: name: required", id="line"
        ),
        pytest.param(Problem(("name",), "required", "w.json"), "w.json: name: required", id="file"),
        pytest.param(Problem(("name",), "required"), "name: required", id="bare"),
        pytest.param(
            Problem((), "not valid YAML", "w.yaml", 1), "w.yaml:1: not valid YAML", id="whole"
        ),
    ],
)
def test_problem_text_names_file_line_and_path(problem: Problem, text: str) -> None:
    """A problem prints as file:line: path: message, leaving out what is unknown."""
    assert str(problem) == text


def test_declaration_error_needs_a_problem() -> None:
    """A DeclarationError with nothing wrong cannot be made."""
    with pytest.raises(ValueError, match="at least one problem"):
        DeclarationError([])


def test_with_source_fills_in_file_and_lines_it_does_not_know() -> None:
    """with_source names the file and finds lines, keeping those already known."""
    error = DeclarationError(
        [Problem(("name",), "required"), Problem(("stage",), "bad", "other.yaml", 9)],
        summary="invalid thing",
    )

    located = error.with_source("w.yaml", lambda loc: {("name",): 2}.get(loc))

    assert located.problems == (
        Problem(("name",), "required", "w.yaml", 2),
        Problem(("stage",), "bad", "other.yaml", 9),
    )
    assert located.summary == "invalid thing"
