"""Baseline mode: measuring the current process in the same ledger."""

from __future__ import annotations

import pytest

from ada_governance import (
    Governance,
    MemoryStore,
    RunStatus,
    StopRuleTripped,
    UsageError,
    Workflow,
    WorkflowNotRunnable,
    WorkflowPaused,
    current_run,
    governed_run,
    governed_workflow,
)

CAPPED = Workflow(
    name="baseline_capped",
    trigger={"event": "lead"},
    stop_rules=[{"kind": "run_cap", "max_runs": 1, "window": "1h"}],
)


def test_baseline_runs_are_marked_in_the_ledger() -> None:
    """A baseline run's ledger row carries {"ada.mode": "baseline"} and its outcome."""
    governance = Governance(MemoryStore())
    with governed_run(CAPPED, governance=governance, baseline=True) as run:
        run.record_outcome("crm:1", meeting_booked=1)
    (row,) = governance.runs(CAPPED)
    assert row.annotations == {"ada.mode": "baseline"}
    assert row.status is RunStatus.SUCCEEDED
    assert row.outcomes == {"meeting_booked": 1.0}


def test_a_draft_may_be_measured_without_development_mode() -> None:
    """Baseline runs of a draft run anywhere; AI runs of it still need development mode."""
    governance = Governance(MemoryStore())

    @governed_workflow(CAPPED, governance=governance, baseline=True)
    def manual_process() -> str:
        return "done by hand"

    assert manual_process() == "done by hand"
    with pytest.raises(WorkflowNotRunnable), governed_run(CAPPED, governance=governance):
        pass


def test_baseline_runs_record_no_model_calls() -> None:
    """A model call in a baseline run is refused: the baseline is the process without AI."""
    governance = Governance(MemoryStore())

    @governed_workflow(CAPPED, governance=governance, baseline=True)
    def manual_process() -> None:
        current_run().record_model_call("gpt", "openai", 10, 10, 0.01)

    with pytest.raises(UsageError, match="without AI"):
        manual_process()


def test_baseline_runs_are_outside_stop_rules() -> None:
    """Baseline runs take no place under a run cap, and do not trip it."""
    governance = Governance(MemoryStore(), development=True)
    for _ in range(3):
        with governed_run(CAPPED, governance=governance, baseline=True):
            pass
    with governed_run(CAPPED, governance=governance):  # the first AI run fits the cap of 1
        pass
    with pytest.raises(StopRuleTripped), governed_run(CAPPED, governance=governance):
        pass


def test_baseline_runs_still_obey_a_pause() -> None:
    """A paused workflow refuses baseline runs too."""
    governance = Governance(MemoryStore())
    governance.set_stage(CAPPED, "paused", actor="dana", reason="hold")
    with pytest.raises(WorkflowPaused), governed_run(CAPPED, governance=governance, baseline=True):
        pass
