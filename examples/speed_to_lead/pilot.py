"""A short pilot of the speed-to-lead workflow, on a simulated clock.

The seed's steps 6 to 8: measure the baseline before changing the process, run a limited
pilot, and decide whether to scale, revise, pause or stop. Two simulated days:

- Day 1, morning: the SDR team handles eight leads the way it always has (baseline mode:
  timed from trigger to reply, no model). Afternoon: the AI workflow takes twelve leads;
  the daily budget trips partway and pauses the workflow, so the rest are refused.
- Day 2: Dana, the owner, resumes it with a reason; the remaining leads run.

Then the report (figures against the baseline and targets) and the recommendation. The
pilot uses its own store and a clock the script moves, so it takes no real time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from crm import LEADS, get_availability, get_lead
from drafting import MODEL, PROVIDER, draft_follow_up
from followup import FollowUp
from opentelemetry import metrics, trace
from workflow import SPEED_TO_LEAD

from ada_governance import (
    Governance,
    RunRefused,
    TriggerEvent,
    current_run,
    evaluate,
    governed_run,
    governed_workflow,
    record_decision,
    report,
    resume,
)
from ada_governance.testing import ManualClock

START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc)  # a Monday


def booked(lead_id: str, rate: float) -> int:
    """Whether a lead booked a meeting: a fixed draw per lead, so the pilot repeats."""
    draw = int(hashlib.sha256(lead_id.encode()).hexdigest()[:8], 16) / 2**32
    return int(draw < rate)


def pilot_lead(number: int) -> dict[str, object]:
    """A pilot lead: a copy of a CRM lead with consent, under a new id."""
    base = dict(LEADS["L-1041" if number % 2 else "L-1042"])
    base.pop("template", None)
    return {**base, "id": f"P-{number:03d}", "consent": True}


def run_pilot(folder: Path) -> None:
    """Measure a baseline, run the pilot through a budget trip and a resume, and report."""
    clock = ManualClock(START)
    # The pilot's telemetry goes nowhere: its runs are a simulation, not the example's.
    governance = Governance(
        f"sqlite:///{folder / 'pilot.db'}",
        clock=clock,
        tracer_provider=trace.NoOpTracerProvider(),
        meter_provider=metrics.NoOpMeterProvider(),
    )
    print("\nPilot (simulated days, its own ledger):")

    # Day 1, morning: the current process, measured. Replies took hours.
    for number in range(8):
        received = clock.now()
        clock.advance(dt.timedelta(hours=2, minutes=17 * number))
        with governed_run(
            SPEED_TO_LEAD,
            TriggerEvent(f"base-{number}", "form_fill", received),
            governance=governance,
            baseline=True,
        ) as run:
            run.record_outcome(
                ref=f"crm:manual:{number}", meeting_booked=booked(f"B{number}", 0.12)
            )
    print("  day 1 am: 8 leads handled by hand, measured as the baseline")

    # Day 1, afternoon: the AI workflow. Each draft costs about 0.05 USD; the daily budget
    # of 0.60 USD reserves 0.10 per run, so it trips before the day's leads are done.
    @governed_workflow(SPEED_TO_LEAD, governance=governance)
    def draft_reply(event: TriggerEvent, lead_id: str) -> FollowUp:
        run = current_run()
        lead = run.source("crm.lead", get_lead, lead_id)
        calendar = run.source("calendar.availability", get_availability, "sdr-team")
        draft, tokens_in, tokens_out, cost = draft_follow_up(lead, slot=calendar["slots"][0])
        run.record_model_call(MODEL, PROVIDER, tokens_in, tokens_out, cost)
        run.record_outcome(ref=f"crm:activity:{lead_id}", meeting_booked=booked(lead_id, 0.2))
        return FollowUp(**draft)

    clock.set(START.replace(hour=13))
    done = refused = 0
    for number in range(1, 25):
        if number == 15:
            # Day 2: the owner looks at the trip, and resumes with a reason.
            print(f"  day 1 pm: {done} AI runs, then {refused} refused: the workflow is paused")
            clock.set(START + dt.timedelta(days=1))
            resume(
                governance,
                SPEED_TO_LEAD,
                actor="Dana Whitfield, VP Sales",
                reason="budget trip reviewed: spend as planned; new day, new budget",
            )
            print("  day 2: the owner resumes it, with a reason")
        lead = pilot_lead(number)
        LEADS[str(lead["id"])] = lead  # the pilot's leads arrive in the CRM
        received = clock.now()
        clock.advance(dt.timedelta(minutes=3, seconds=20 * (number % 4)))
        try:
            draft_reply(TriggerEvent(f"pilot-{number}", "form_fill", received), str(lead["id"]))
            done += 1
        except RunRefused as stopped:
            refused += 1
            if refused == 1:
                print(f"  {type(stopped).__name__}: {stopped}")
        clock.advance(dt.timedelta(minutes=10))
    print(f"  pilot: {done} AI runs in all, {refused} refused while paused")

    result = report(governance, SPEED_TO_LEAD)
    print(
        f"\nReport: {result.figures.finished_runs} AI runs finished; baseline of "
        f"{result.baseline.figures.finished_runs} runs measured"
    )
    for metric in result.metrics:
        value = "-" if metric.value is None else f"{metric.value:g}"
        base = "-" if metric.baseline is None else f"{metric.baseline:g} ({metric.baseline_source})"
        change = "" if metric.change_pct is None else f", {metric.change_pct:+.0f}%"
        print(
            f"  {metric.name}: {value} {metric.unit} vs baseline {base}{change}; "
            f"target {metric.target:g}: {'met' if metric.met_target else 'not met'}"
        )
    verdict = evaluate(governance, SPEED_TO_LEAD)
    print(f"Recommendation: {verdict.recommendation.value}")
    for reason in verdict.reasons:
        print(f"  - {reason.message}")
    # The owner decides, and the decision is kept: production needs a recorded `scale`.
    decision = record_decision(
        governance,
        SPEED_TO_LEAD,
        "revise",
        actor="Dana Whitfield, VP Sales",
        reason="response time is on target; raise the daily budget, then pilot again",
        figures={m.name: m.value for m in result.metrics},
    )
    print(f"Owner's decision: {decision.decision} ({decision.reason})")
    governance.close()
