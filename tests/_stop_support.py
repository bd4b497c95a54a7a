"""Module-level helpers for the stop-rule tests, importable by spawned worker processes
(which import this module as ``_stop_support``, as the tests do)."""

from __future__ import annotations

import datetime as dt
import json
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from ada_governance import (
    Governance,
    RunRefused,
    SQLiteStore,
    Workflow,
    current_run,
    governed_workflow,
)
from ada_governance.testing import ManualClock

START = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
"""The time every governance in the concurrency tests stands still at (mid-day, UTC)."""


def budget_workflow(name: str, limit: float, per_run: float) -> Workflow:
    """A workflow whose one stop rule is a daily USD budget."""
    return Workflow(
        name=name,
        trigger={"event": "job"},
        owner={"name": "Olga Owner"},
        stop_rules=[{"kind": "budget", "limit": limit, "per_run": per_run}],
    )


def spend_until_refused(
    governance: Governance, workflow: Workflow, per_run: float
) -> dict[str, Any]:
    """Call a governed function that spends ``per_run`` until a run is refused."""

    @governed_workflow(workflow, governance=governance)
    def spend() -> str:
        run = current_run()
        run.record_model_call("model", cost=per_run)
        return run.id

    succeeded: list[str] = []
    while True:
        try:
            succeeded.append(spend())
        except RunRefused as refusal:
            return {
                "succeeded": succeeded,
                "refused": [refusal.run_id],
                "reasons": [refusal.reason],
            }


def run_budget_worker(
    db_path: str, name: str, limit: float, per_run: float, start: Barrier, out_path: str
) -> None:
    """In a spawned process: wait for the others, spend until refused, write the outcome."""
    governance = Governance(SQLiteStore(Path(db_path)), development=True, clock=ManualClock(START))
    workflow = budget_workflow(name, limit, per_run)
    try:
        start.wait(timeout=60)
        outcome = spend_until_refused(governance, workflow, per_run)
        outcome["backlog"] = governance.backlog
    finally:
        governance.store.close()
    Path(out_path).write_text(json.dumps(outcome), encoding="utf-8")
