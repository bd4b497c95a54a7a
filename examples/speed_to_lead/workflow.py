"""The speed-to-lead workflow, declared in Python.

``speed_to_lead.yaml`` beside this file declares the same workflow; the two are equal.
"""

from __future__ import annotations

import datetime as dt

from followup import FollowUp, has_consent, no_placeholders, offers_a_slot, route_to_sdr_lead

from ada_governance import (
    Action,
    Baseline,
    Budget,
    Check,
    Classification,
    Direction,
    ErrorRate,
    ExceptionPath,
    KillSwitch,
    Metric,
    OutputStandard,
    Owner,
    RejectionRate,
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

SPEED_TO_LEAD = Workflow(
    name="speed_to_lead",
    version="1",
    description="Every high-intent lead gets a reviewed, personal follow-up within minutes.",
    stage=Stage.PILOT,
    owner=Owner(name="Dana Whitfield, VP Sales", contact="dana@example.com"),
    trigger=Trigger(
        events=("form_fill", "missed_call"),
        description="A demo form is filled in, or a call from a prospect is missed.",
    ),
    system_of_record=SystemOfRecord(name="CRM", description="Lead and activity records"),
    sources=(
        Source(
            name="crm.lead",
            system="CRM",
            classification=Classification.PERSONAL,
            key="id",
            required=True,
        ),
        Source(
            name="calendar.availability",
            system="Google Calendar",
            as_of="synced_at",
            freshness=dt.timedelta(minutes=15),
        ),
    ),
    checks=(Check(name="consent", fn=has_consent, description="The lead agreed to contact."),),
    output_standard=OutputStandard(
        schema=FollowUp,
        validators=(no_placeholders, offers_a_slot),
        on_fail="retry",
        max_attempts=2,
    ),
    actions=(
        Action(name="draft_follow_up", risk=RiskBoundary.AUTONOMOUS),
        Action(name="send_email", risk=RiskBoundary.REQUIRES_APPROVAL),
        Action(name="change_deal_stage", risk=RiskBoundary.MANUAL_ONLY),
    ),
    review=ReviewPolicy(
        reviewers=("sdr",),
        timeout=dt.timedelta(minutes=30),
        on_timeout="escalate",
        escalate_to=("sdr_lead",),
    ),
    exception_path=ExceptionPath(route_to="sdr_lead", handler=route_to_sdr_lead),
    metrics=(
        Metric(
            name="response_time",
            unit="s",
            direction=Direction.DECREASE,
            baseline=Baseline(value=14_400, sample_size=212, measured_at=dt.date(2026, 10, 1)),
            target=300,
            figure="cycle_time_p50",
            description="Trigger received to the drafted reply, median.",
        ),
        Metric(
            name="meeting_conversion",
            unit="ratio",
            direction=Direction.INCREASE,
            baseline=Baseline(value=0.12, sample_size=212, measured_at=dt.date(2026, 10, 1)),
            target=0.18,
            figure="outcome:meeting_booked",
        ),
    ),
    stop_rules=(
        KillSwitch(description="Dana or the SDR lead pauses it with `ada-governance pause`."),
        Budget(limit=0.6, per_run=0.1, window="day"),
        RunCap(max_runs=500, window=dt.timedelta(days=7)),
        ErrorRate(max_rate=0.2, window=dt.timedelta(hours=1)),
        RejectionRate(max_rate=0.3),
        SlaBreachRate(sla=dt.timedelta(minutes=15), max_rate=0.25),
    ),
)
