"""The speed-to-lead example: the seed's lead follow-up workflow, declared and governed.

Run it from anywhere: ``python examples/speed_to_lead/main.py``. It writes its ledger to
a SQLite file in a temporary folder (or to ``$ADA_GOVERNANCE_STORE`` if set).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

from drafting import MODEL, PROVIDER, draft_follow_up
from followup import FollowUp
from workflow import SPEED_TO_LEAD

from ada_governance import (
    TriggerEvent,
    Workflow,
    configure,
    current_run,
    governed_workflow,
    load_workflows,
    readiness,
)

HERE = Path(__file__).parent
NOW = dt.datetime.now(dt.timezone.utc)

LEADS: list[tuple[TriggerEvent, dict[str, Any]]] = [
    (
        TriggerEvent("form-1041", "form_fill", NOW - dt.timedelta(minutes=4)),
        {"id": "L-1041", "name": "Priya", "email": "priya@acme.test", "interest": "pricing"},
    ),
    (
        TriggerEvent("call-7731", "missed_call", NOW - dt.timedelta(minutes=2)),
        {"id": "L-1042", "name": "Tom", "email": "tom@globex.test", "interest": "demo"},
    ),
    (
        # A form fill with a mistyped address: the draft fails its schema, and the run
        # goes down the exception path to the SDR lead.
        TriggerEvent("form-1043", "form_fill", NOW - dt.timedelta(minutes=1)),
        {"id": "L-1043", "name": "Ana", "email": "ana(at)initech", "interest": "onboarding"},
    ),
]


def check_declarations() -> None:
    """Show the Python and YAML forms agree, and which workflows are deployments."""
    from_yaml = Workflow.from_file(HERE / "speed_to_lead.yaml")
    print(f"Python and YAML declarations are equal: {from_yaml == SPEED_TO_LEAD}")
    for workflow in load_workflows(HERE).values():
        result = readiness(workflow)
        print(f"\n{workflow.name} {workflow.version}: {result.verdict.value}")
        for element, named in result.elements.items():
            print(f"  {'yes' if named else ' - '}  {element.label}")
        if result.blocking:
            missing = ", ".join(element.label for element in result.blocking)
            print(f"  still adoption mode: name its {missing}")


@governed_workflow(SPEED_TO_LEAD)
def follow_up(event: TriggerEvent, lead: dict[str, Any]) -> FollowUp:
    """Draft a follow-up to a new lead. Governed: every call is checked and recorded."""
    run = current_run()
    draft, input_tokens, output_tokens, cost = draft_follow_up(lead, slot="Thursday 10:00")
    run.record_model_call(MODEL, PROVIDER, input_tokens, output_tokens, cost)
    follow = FollowUp(**draft)  # raises on a malformed draft: the exception path takes it
    run.record_outcome(ref=f"crm:activity:{lead['id']}", draft_ready=1)
    return follow


def print_ledger(rows: list[Any]) -> None:
    """Print the ledger rows the runs wrote."""
    header = f"{'run':10} {'trigger':12} {'status':10} {'error':16} {'tokens':>6} {'cost $':>8}"
    print(f"\n{header}  outcome")
    for row in rows:
        tokens = row.input_tokens + row.output_tokens
        print(
            f"{row.run_id[:8]:10} {row.trigger_type:12} {row.status.value:10} "
            f"{row.error_type or '-':16} {tokens:>6} {row.cost:>8.5f}  {row.outcome_ref or '-'}"
        )


def main() -> None:
    """Check the declarations, govern a few follow-ups, and print the ledger."""
    check_declarations()
    store = os.environ.get("ADA_GOVERNANCE_STORE") or (
        "sqlite:///" + str(Path(tempfile.mkdtemp(prefix="speed_to_lead_")) / "governance.db")
    )
    governance = configure(store)
    print(f"\nGoverning runs of {SPEED_TO_LEAD.name}; ledger in {governance.store.url}")
    for event, lead in LEADS:
        try:
            draft = follow_up(event, lead)
            print(f"  {lead['id']}: drafted '{draft.subject}' for {draft.to}")
        except Exception as error:  # the exception path has recorded and routed it
            print(f"  {lead['id']}: failed with {type(error).__name__}; routed to the SDR lead")
    print_ledger(governance.runs(SPEED_TO_LEAD))
    governance.close()


if __name__ == "__main__":
    main()
