"""The production lifecycle: the transition rules, pilot decisions, stage changes, history.

The rules are tested without I/O; the functions over a governance run on an in-memory store
with a manual clock, and across processes on a SQLite file. Async code is driven with
``asyncio.run`` (no pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from _workers import WORKFLOW as MULTI
from _workers import call_once
from ada_governance import (
    Governance,
    GovernanceError,
    Stage,
    StoreError,
    UsageError,
    Workflow,
    WorkflowPaused,
    WorkflowRetired,
    governed_workflow,
)
from ada_governance.lifecycle import (
    PILOT_DECISION,
    PilotDecision,
    StageChange,
    StageChangeRefused,
    achange_stage,
    adecisions,
    ahistory,
    allowed_transition,
    apause,
    arecord_decision,
    aresume,
    aretire,
    change_stage,
    decisions,
    history,
    pause,
    record_decision,
    resume,
    retire,
)
from ada_governance.records import AuditEvent
from ada_governance.testing import ManualClock, memory_governance

READY_FIELDS: dict[str, Any] = {
    "name": "lead",
    "owner": {"name": "Dana"},
    "trigger": {"event": "form_fill"},
    "system_of_record": "CRM",
    "review": {"reviewers": ["sdr"]},
    "metrics": [
        {
            "name": "response_time",
            "unit": "s",
            "direction": "decrease",
            "baseline": {"value": 600, "sample_size": 40, "measured_at": dt.date(2026, 1, 1)},
        }
    ],
    "stop_rules": [{"kind": "kill_switch"}],
}
READY = Workflow(**READY_FIELDS)
"""A draft whose declaration names every element of a deployment."""
UNREADY = Workflow(name="lead", trigger={"event": "form_fill"})
"""A draft that names its trigger and nothing else: still adoption mode."""

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)


def decided(kind: str, workflow: str = "lead", minute: int = 0) -> PilotDecision:
    return PilotDecision(workflow, kind, "ops", "figures", T0 + dt.timedelta(minutes=minute))  # type: ignore[arg-type]


SCALE = [decided("scale")]

D, PI, PR, PA, RE = Stage.DRAFT, Stage.PILOT, Stage.PRODUCTION, Stage.PAUSED, Stage.RETIRED

ALLOWED = [
    pytest.param(READY, D, PI, [], None, id="draft->pilot when ready"),
    pytest.param(READY, D, PA, [], None, id="draft->paused"),
    pytest.param(READY, D, RE, [], None, id="draft->retired"),
    pytest.param(READY, PI, PR, SCALE, None, id="pilot->production after scale"),
    pytest.param(
        READY,
        PI,
        PR,
        [decided("revise"), decided("scale", minute=1)],
        None,
        id="pilot->production when scale is the latest",
    ),
    pytest.param(READY, PI, PA, [], None, id="pilot->paused"),
    pytest.param(READY, PI, RE, [], None, id="pilot->retired"),
    pytest.param(READY, PR, PI, [], None, id="production->pilot (scale back)"),
    pytest.param(READY, PR, PA, [], None, id="production->paused"),
    pytest.param(READY, PR, RE, [], None, id="production->retired"),
    pytest.param(READY, PA, PI, [], PI, id="paused->pilot when paused from pilot"),
    pytest.param(READY, PA, PR, [], PR, id="paused->production when paused from production"),
    pytest.param(READY, PA, D, [], D, id="paused->draft when paused from draft"),
    pytest.param(READY, PA, D, [], None, id="paused->declared stage when nothing recorded"),
    pytest.param(READY, PA, RE, [], PI, id="paused->retired"),
    pytest.param(UNREADY, PI, PA, [], None, id="pause needs no readiness"),
]

REFUSED = [
    pytest.param(READY, D, D, [], None, "already in draft", id="draft->draft"),
    pytest.param(READY, PI, PI, SCALE, None, "already in pilot", id="pilot->pilot"),
    pytest.param(READY, PR, PR, SCALE, None, "already in production", id="production->prod"),
    pytest.param(READY, PA, PA, [], PI, "already in paused", id="paused->paused"),
    pytest.param(READY, RE, RE, [], None, "already in retired", id="retired->retired"),
    pytest.param(
        UNREADY,
        D,
        PI,
        [],
        None,
        "adoption mode; name its system of record, human review rule, "
        "measurement with a baseline, business owner",
        id="draft->pilot when adoption mode names what is missing",
    ),
    pytest.param(READY, D, PR, SCALE, None, "goes to pilot first", id="draft->production"),
    pytest.param(READY, PI, D, [], None, "pilot moves only to production", id="pilot->draft"),
    pytest.param(
        READY, PI, PR, [], None, "no pilot decision to scale", id="pilot->production no decision"
    ),
    pytest.param(
        READY,
        PI,
        PR,
        [decided("scale"), decided("revise", minute=1)],
        None,
        "latest pilot decision is 'revise'",
        id="pilot->production when revise came after scale",
    ),
    pytest.param(
        READY,
        PI,
        PR,
        [decided("scale"), decided("stop", minute=1)],
        None,
        "latest pilot decision is 'stop'",
        id="pilot->production when stop came after scale",
    ),
    pytest.param(
        READY,
        PI,
        PR,
        [decided("scale", workflow="other")],
        None,
        "no pilot decision to scale",
        id="pilot->production with another workflow's scale",
    ),
    pytest.param(READY, PR, D, [], None, "production moves only to pilot", id="production->draft"),
    pytest.param(
        READY,
        PA,
        PR,
        SCALE,
        PI,
        "paused from pilot, so it resumes to pilot",
        id="paused pilot->production",
    ),
    pytest.param(READY, PA, PI, [], PR, "paused from production", id="paused production->pilot"),
    pytest.param(READY, PA, D, [], PI, "paused from pilot", id="paused pilot->draft"),
    pytest.param(READY, RE, D, [], None, "retirement is final", id="retired->draft"),
    pytest.param(READY, RE, PI, [], None, "retirement is final", id="retired->pilot"),
    pytest.param(READY, RE, PR, SCALE, None, "retirement is final", id="retired->production"),
    pytest.param(READY, RE, PA, [], None, "retirement is final", id="retired->paused"),
]


@pytest.mark.parametrize(("workflow", "current", "to", "decisions_", "paused_from"), ALLOWED)
def test_allowed_transitions(
    workflow: Workflow,
    current: Stage,
    to: Stage,
    decisions_: list[PilotDecision],
    paused_from: Stage | None,
) -> None:
    """Each change the lifecycle allows returns no reason."""
    assert allowed_transition(workflow, current, to, decisions_, paused_from=paused_from) is None


@pytest.mark.parametrize(
    ("workflow", "current", "to", "decisions_", "paused_from", "reason"), REFUSED
)
def test_refused_transitions(
    workflow: Workflow,
    current: Stage,
    to: Stage,
    decisions_: list[PilotDecision],
    paused_from: Stage | None,
    reason: str,
) -> None:
    """Each change the lifecycle refuses returns a reason saying why."""
    refusal = allowed_transition(workflow, current, to, decisions_, paused_from=paused_from)
    assert refusal is not None
    assert reason in refusal


def test_every_pair_of_stages_is_in_the_table() -> None:
    """The table covers every (current, to) pair, so no transition goes untested."""
    covered = {(case.values[1], case.values[2]) for case in ALLOWED + REFUSED}
    assert covered == {(a, b) for a in Stage for b in Stage}


def test_paused_declared_workflow_has_nothing_to_resume_to() -> None:
    """A workflow declared paused, with no recorded stage before, has no resume target."""
    paused = Workflow(name="lead", stage="paused")
    refusal = allowed_transition(paused, PA, D, [])
    assert refusal is not None
    assert "no stage to resume it to" in refusal


# --- over a governance ------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def governance(clock: ManualClock) -> Governance:
    return memory_governance(clock=clock)


def at_pilot(governance: Governance, clock: ManualClock) -> None:
    change_stage(governance, READY, "pilot", actor="dana", reason="ready to pilot")
    clock.advance(60)


def test_change_stage_writes_the_stage_and_audits_it(
    governance: Governance, clock: ManualClock
) -> None:
    """An allowed change is stored and audited as stage_changed with actor and reason."""
    state = change_stage(governance, READY, Stage.PILOT, actor="dana", reason="pilot on SDR team")
    assert state.stage is Stage.PILOT
    assert governance.state(READY) == state
    assert (state.actor, state.reason, state.changed_at) == ("dana", "pilot on SDR team", T0)
    [event] = governance.audit_events(READY, event="stage_changed")
    assert event.actor == "dana"
    assert event.data == {"stage": "pilot", "reason": "pilot on SDR team"}


def test_refused_change_raises_with_its_data_and_writes_nothing(governance: Governance) -> None:
    """A refused change raises StageChangeRefused carrying the stages and reason; no write."""
    with pytest.raises(StageChangeRefused) as caught:
        change_stage(governance, UNREADY, "pilot", actor="dana", reason="try")
    error = caught.value
    assert isinstance(error, GovernanceError)
    assert (error.workflow, error.current, error.requested) == ("lead", D, PI)
    assert "business owner" in error.reason
    assert str(error).startswith("workflow 'lead' cannot move from draft to pilot: ")
    assert governance.state("lead") is None
    assert governance.audit_events() == []


def test_current_stage_is_the_declared_one_when_nothing_is_stored(governance: Governance) -> None:
    """With nothing stored, the declared stage is the current one."""
    declared_pilot = Workflow(**{**READY_FIELDS, "stage": "pilot"})
    with pytest.raises(StageChangeRefused, match="already in pilot"):
        change_stage(governance, declared_pilot, "pilot", actor="dana", reason="again")
    record_decision(governance, declared_pilot, "scale", actor="vp", reason="it works")
    assert change_stage(governance, declared_pilot, "production", actor="dana", reason="go").stage


def test_production_needs_a_scale_decision(governance: Governance, clock: ManualClock) -> None:
    """pilot->production is refused without a scale decision and allowed after one."""
    at_pilot(governance, clock)
    with pytest.raises(StageChangeRefused, match="no pilot decision to scale") as caught:
        change_stage(governance, READY, "production", actor="dana", reason="looks good")
    assert caught.value.requested is PR
    record_decision(governance, READY, "scale", actor="vp", reason="meets baseline")
    clock.advance(60)
    state = change_stage(governance, READY, "production", actor="dana", reason="scaling")
    assert state.stage is PR


def test_a_revise_after_scale_refuses_production_again(
    governance: Governance, clock: ManualClock
) -> None:
    """A later revise decision supersedes an earlier scale: production is refused again."""
    at_pilot(governance, clock)
    record_decision(governance, READY, "scale", actor="vp", reason="meets baseline")
    clock.advance(60)
    record_decision(governance, READY, "revise", actor="vp", reason="error rate crept up")
    with pytest.raises(StageChangeRefused, match=r"'revise' \(vp, .*error rate crept up"):
        change_stage(governance, READY, "production", actor="dana", reason="scaling")
    state = governance.state(READY)
    assert state is not None
    assert state.stage is PI


def test_record_decision_writes_a_pilot_decision_event(
    governance: Governance, clock: ManualClock
) -> None:
    """A decision is an audit event pilot_decision, read back with its figures."""
    recorded = record_decision(
        governance,
        "lead",
        "scale",
        actor="vp",
        reason="meets baseline",
        figures={"response_time_p50": 48, "runs": 212},
    )
    assert recorded == PilotDecision(
        "lead", "scale", "vp", "meets baseline", T0, {"response_time_p50": 48, "runs": 212}
    )
    [event] = governance.audit_events("lead", event=PILOT_DECISION)
    assert event.actor == "vp"
    assert event.data["decision"] == "scale"
    assert decisions(governance, "lead") == [recorded]
    assert recorded.to_dict()["at"] == T0.isoformat()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"decision": "ship"}, "not a pilot decision", id="unknown decision"),
        pytest.param({"actor": " "}, "needs an actor", id="no actor"),
        pytest.param({"reason": ""}, "needs a reason", id="no reason"),
        pytest.param({"figures": {"when": T0}}, "JSON data", id="figures not JSON"),
    ],
)
def test_record_decision_refuses_misuse(
    governance: Governance, kwargs: dict[str, Any], message: str
) -> None:
    """A bad decision, a missing actor or reason, or non-JSON figures are UsageErrors."""
    arguments: dict[str, Any] = {"decision": "scale", "actor": "vp", "reason": "ok", **kwargs}
    decision = arguments.pop("decision")
    with pytest.raises(UsageError, match=message):
        record_decision(governance, "lead", decision, **arguments)
    assert governance.audit_events() == []


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda g: change_stage(g, READY, "pilot", actor="", reason="x"), id="change"),
        pytest.param(lambda g: pause(g, "lead", actor="dana", reason=" "), id="pause"),
        pytest.param(lambda g: resume(g, "lead", actor=None, reason="x"), id="resume"),
        pytest.param(lambda g: retire(g, "lead", actor="dana", reason=None), id="retire"),
    ],
)
def test_actor_and_reason_are_required(governance: Governance, call: Any) -> None:
    """Every stage change without an actor or a reason is a UsageError, and writes nothing."""
    with pytest.raises(UsageError, match=r"needs an? (actor|reason)"):
        call(governance)
    assert governance.audit_events() == []


def test_change_stage_refuses_misuse(governance: Governance) -> None:
    """An unknown stage, or a name where the declaration is needed, is a UsageError."""
    with pytest.raises(UsageError, match="'live' is not a stage"):
        change_stage(governance, READY, "live", actor="dana", reason="x")
    with pytest.raises(UsageError, match="needs the workflow's declaration"):
        change_stage(governance, "lead", "pilot", actor="dana", reason="x")  # type: ignore[arg-type]


def test_resume_returns_to_the_stage_before_the_pause(
    governance: Governance, clock: ManualClock
) -> None:
    """Resume goes back to the stage the workflow was paused from, not to its declared one."""
    at_pilot(governance, clock)
    record_decision(governance, READY, "scale", actor="vp", reason="meets baseline")
    change_stage(governance, READY, "production", actor="dana", reason="scaling")
    clock.advance(60)
    assert pause(governance, "lead", actor="ops", reason="CRM outage").stage is PA
    clock.advance(60)
    state = resume(governance, "lead", actor="ops", reason="CRM back")
    assert state.stage is PR
    assert (state.actor, state.reason) == ("ops", "CRM back")


def test_resume_past_repeated_pauses(governance: Governance, clock: ManualClock) -> None:
    """A pause written over a pause (a stop rule after a person) still resumes to before."""
    at_pilot(governance, clock)
    pause(governance, READY, actor="ops", reason="outage")
    governance.set_stage("lead", "paused", actor="review-timeout", reason="review expired")
    assert resume(governance, "lead", actor="ops", reason="fixed").stage is PI


def test_a_retired_workflow_paused_afterwards_resumes_to_retired(
    governance: Governance, clock: ManualClock
) -> None:
    """A pause written over retirement (a review timing out) resumes to retired, not
    to a live stage."""
    at_pilot(governance, clock)
    retire(governance, READY, actor="dana", reason="replaced")
    governance.set_stage("lead", "paused", actor="review-timeout", reason="review expired")
    with pytest.raises(StageChangeRefused, match="paused from retired"):
        change_stage(governance, READY, "pilot", actor="dana", reason="revive")
    assert resume(governance, "lead", actor="ops", reason="tidy up").stage is RE


def test_a_paused_pilot_cannot_go_straight_to_production(
    governance: Governance, clock: ManualClock
) -> None:
    """From a pause, only the stage it was paused from: never a paused pilot to production."""
    at_pilot(governance, clock)
    record_decision(governance, READY, "scale", actor="vp", reason="meets baseline")
    pause(governance, READY, actor="ops", reason="outage")
    with pytest.raises(StageChangeRefused, match="paused from pilot, so it resumes to pilot"):
        change_stage(governance, READY, "production", actor="dana", reason="skip ahead")
    assert change_stage(governance, READY, "pilot", actor="ops", reason="resume").stage is PI


def test_resume_without_history_returns_to_the_declared_stage(governance: Governance) -> None:
    """When the pause is the first recorded change, resume goes to the declared stage, and
    needs the declaration to know it."""
    pause(governance, "lead", actor="ops", reason="outage")
    with pytest.raises(UsageError, match="resume it with its declaration"):
        resume(governance, "lead", actor="ops", reason="fixed")
    declared_pilot = Workflow(**{**READY_FIELDS, "stage": "pilot"})
    assert resume(governance, declared_pilot, actor="ops", reason="fixed").stage is PI


def test_resume_refuses_a_workflow_that_is_not_paused(
    governance: Governance, clock: ManualClock
) -> None:
    """Resuming what is not paused is refused, with the stage it is in."""
    with pytest.raises(StageChangeRefused, match=r"not paused \(nothing is stored\)") as caught:
        resume(governance, "lead", actor="ops", reason="x")
    assert caught.value.requested is None
    at_pilot(governance, clock)
    with pytest.raises(StageChangeRefused, match=r"not paused \(it is in pilot\)"):
        resume(governance, READY, actor="ops", reason="x")


def test_pause_and_retire_by_name_need_no_declaration(governance: Governance) -> None:
    """A workflow known only by name can be paused and retired."""
    assert pause(governance, "anything", actor="ops", reason="stop").stage is PA
    with pytest.raises(StageChangeRefused, match="already in paused"):
        pause(governance, "anything", actor="ops", reason="again")
    assert retire(governance, "anything", actor="ops", reason="replaced").stage is RE


def test_retired_is_final(governance: Governance, clock: ManualClock) -> None:
    """After retirement every change is refused, resume included, and calls are refused."""
    at_pilot(governance, clock)
    retire(governance, READY, actor="dana", reason="replaced by v2")
    for stage in Stage:
        with pytest.raises(StageChangeRefused, match="retire"):
            change_stage(governance, READY, stage, actor="dana", reason="undo")
    for again in (pause, retire):
        with pytest.raises(StageChangeRefused):
            again(governance, READY, actor="dana", reason="again")
    with pytest.raises(StageChangeRefused, match="not paused"):
        resume(governance, READY, actor="dana", reason="undo")

    @governed_workflow(READY, governance=governance)
    def follow_up() -> str:
        return "sent"

    with pytest.raises(WorkflowRetired):
        follow_up()
    assert [change.to for change in history(governance, READY)] == [PI, RE]


def test_history_lists_every_change_with_actor_reason_and_time(
    governance: Governance, clock: ManualClock
) -> None:
    """history gives each change in order: when, from, to, who and why."""
    at_pilot(governance, clock)
    record_decision(governance, READY, "scale", actor="vp", reason="meets baseline")
    change_stage(governance, READY, "production", actor="dana", reason="scaling")
    clock.advance(60)
    pause(governance, READY, actor="ops", reason="CRM outage")
    clock.advance(60)
    resume(governance, READY, actor="ops", reason="CRM back")
    clock.advance(60)
    retire(governance, READY, actor="dana", reason="replaced")
    minute = dt.timedelta(minutes=1)
    assert history(governance, "lead") == [
        StageChange(T0, None, PI, "dana", "ready to pilot"),
        StageChange(T0 + minute, PI, PR, "dana", "scaling"),
        StageChange(T0 + 2 * minute, PR, PA, "ops", "CRM outage"),
        StageChange(T0 + 3 * minute, PA, PR, "ops", "CRM back"),
        StageChange(T0 + 4 * minute, PR, RE, "dana", "replaced"),
    ]
    assert history(governance, "lead")[1].to_dict() == {
        "at": (T0 + minute).isoformat(),
        "from": "pilot",
        "to": "production",
        "actor": "dana",
        "reason": "scaling",
    }
    assert history(governance, "other") == []


def test_history_fails_closed_on_an_unreadable_event(governance: Governance) -> None:
    """A stage_changed event naming no valid stage is a StoreError, not a guess."""
    governance.store.append_audit(
        AuditEvent(T0, "stage_changed", "lead", actor="x", data={"stage": "live"})
    )
    with pytest.raises(StoreError, match="names no valid stage"):
        history(governance, "lead")


def test_async_twins(governance: Governance, clock: ManualClock) -> None:
    """The async twins change, decide, pause, resume, retire and read like the sync ones."""

    async def lifecycle() -> list[StageChange]:
        await achange_stage(governance, READY, "pilot", actor="dana", reason="pilot")
        with pytest.raises(StageChangeRefused, match="no pilot decision"):
            await achange_stage(governance, READY, "production", actor="dana", reason="go")
        recorded = await arecord_decision(governance, READY, "scale", actor="vp", reason="ok")
        assert await adecisions(governance, READY) == [recorded]
        assert (await achange_stage(governance, READY, "production", actor="d", reason="go")).stage
        assert (await apause(governance, "lead", actor="ops", reason="outage")).stage is PA
        assert (await aresume(governance, "lead", actor="ops", reason="back")).stage is PR
        with pytest.raises(UsageError):
            await apause(governance, "lead", actor="", reason="outage")
        assert (await aretire(governance, "lead", actor="dana", reason="done")).stage is RE
        return await ahistory(governance, "lead")

    changes = asyncio.run(lifecycle())
    assert [(c.from_, c.to) for c in changes] == [
        (None, PI),
        (PI, PR),
        (PR, PA),
        (PA, PR),
        (PR, RE),
    ]


def test_async_twins_on_sqlite(tmp_path: Path) -> None:
    """The async twins work on a store whose calls run in a worker thread."""
    governance = Governance(f"sqlite:///{tmp_path / 'governance.db'}")

    async def run() -> Stage:
        await apause(governance, "lead", actor="ops", reason="outage")
        return (await aresume(governance, READY, actor="ops", reason="back")).stage

    try:
        assert asyncio.run(run()) is D
        assert [c.to for c in history(governance, "lead")] == [PA, D]
    finally:
        governance.close()


def test_pause_in_one_process_refuses_runs_in_another(tmp_path: Path) -> None:
    """A pause written here refuses the next call in a spawned process; resume lets it run."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    governance = Governance(url)
    try:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            assert pool.apply(call_once, (url,)) == "ran"
            pause(governance, MULTI.name, actor="ops", reason="bad sends")
            assert pool.apply(call_once, (url,)) == "WorkflowPaused"
            resume(governance, MULTI, actor="ops", reason="fixed")
            assert pool.apply(call_once, (url,)) == "ran"
    finally:
        governance.close()


def test_pause_through_one_governance_refuses_calls_through_another(tmp_path: Path) -> None:
    """Two governance objects on one SQLite file: a pause by one refuses calls by the other."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    operator, app = Governance(url), Governance(url, development=True)

    @governed_workflow(MULTI, governance=app)
    def work() -> str:
        return "ran"

    try:
        assert work() == "ran"
        pause(operator, MULTI, actor="ops", reason="bad sends")
        with pytest.raises(WorkflowPaused, match="paused by ops: bad sends"):
            work()
        resume(operator, MULTI, actor="ops", reason="fixed")
        assert work() == "ran"
    finally:
        operator.close()
        app.close()
