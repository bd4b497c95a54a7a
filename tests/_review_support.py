"""Module-level objects for the review-queue tests: a payload schema named by import path
(``"_review_support:Email"``), and functions run in spawned worker processes, which import
this module as ``_review_support`` as the tests do."""

from __future__ import annotations

import os
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path

from pydantic import BaseModel

from ada_governance import Governance, SQLiteStore, Workflow, governed_action

ACTION = "deliver"


class Email(BaseModel):
    """The payload of the tests' ``send`` action."""

    to: str
    amount: int = 0


def outbox_workflow(name: str) -> Workflow:
    """A workflow whose one action, ``deliver``, needs an ``ops`` approval."""
    return Workflow(
        name=name,
        trigger={"event": "job"},
        actions=[{"name": ACTION, "risk": "requires_approval"}],
        review={"reviewers": ["ops"]},
    )


def register_outbox(name: str, outbox: Path) -> object:
    """Register ``deliver`` of workflow ``name``: it appends its line to ``outbox``."""
    workflow = outbox_workflow(name)

    @governed_action(workflow, ACTION)
    def deliver(line: str) -> str:
        time.sleep(0.01)  # widen the window in which the other worker could claim it too
        with outbox.open("a", encoding="utf-8") as file:
            file.write(f"{line}\n")
        return line

    return deliver


def run_outbox_worker(db_path: str, name: str, outbox: str, start: Barrier) -> None:
    """Register ``deliver`` here, wait for the other worker, then run approved actions."""
    governance = Governance(SQLiteStore(Path(db_path)), development=True)
    register_outbox(name, Path(outbox))
    start.wait(timeout=60)
    try:
        governance.run_actions(worker=f"worker-{os.getpid()}")
    finally:
        governance.store.close()
