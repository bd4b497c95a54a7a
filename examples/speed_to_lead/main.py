"""The speed-to-lead example: the seed's lead follow-up workflow, declared and governed.

Run it from anywhere: ``python examples/speed_to_lead/main.py``. It writes its ledger to
a SQLite file in a temporary folder (or to ``$ADA_GOVERNANCE_STORE`` if set).

Two flags send the runs' telemetry somewhere (both need ``ada-governance[otel]``):

- ``--otlp`` exports spans and metrics over OTLP/HTTP, configured by the standard
  ``OTEL_*`` environment variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, default
  ``http://localhost:4318``), and flushes them before exiting.
- ``--metrics-port PORT`` serves the metrics for Prometheus on
  ``http://127.0.0.1:PORT/metrics`` (needs ``ada-governance[prometheus]``) and, after the
  runs, keeps serving until standard input ends (Ctrl-D) or the process gets SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from crm import get_availability, get_lead
from drafting import MODEL, PROVIDER, draft_follow_up
from followup import FollowUp
from outbox import outbox_path, send_email
from pilot import run_pilot
from workflow import SPEED_TO_LEAD

from ada_governance import (
    CheckFailed,
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

# Leads arrive as trigger events (a form fill or a missed call) naming a CRM record.
LEADS: list[tuple[TriggerEvent, str]] = [
    (TriggerEvent("form-1041", "form_fill", NOW - dt.timedelta(minutes=4)), "L-1041"),
    # Its first draft keeps a template placeholder: the output standard rejects it, and
    # the run retries with the issue, as a model asked again would.
    (TriggerEvent("call-7731", "missed_call", NOW - dt.timedelta(minutes=2)), "L-1042"),
    # A mistyped address in the CRM: the draft cannot be built, and the run goes down the
    # exception path to the SDR lead.
    (TriggerEvent("form-1043", "form_fill", NOW - dt.timedelta(minutes=1)), "L-1043"),
    # No consent to contact: the consent check refuses the run before anything is drafted.
    (TriggerEvent("form-1044", "form_fill", NOW), "L-1044"),
    # Drafted and queued like the first two; the SDR will reject this one.
    (TriggerEvent("call-7732", "missed_call", NOW), "L-1045"),
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
def follow_up(event: TriggerEvent, lead_id: str) -> FollowUp:
    """Draft a follow-up to a new lead. Governed: every call is checked and recorded."""
    run = current_run()
    lead = run.source("crm.lead", get_lead, lead_id)  # approved source, with provenance
    calendar = run.source("calendar.availability", get_availability, "sdr-team")
    draft, input_tokens, output_tokens, cost = draft_follow_up(
        lead, slot=calendar["slots"][0], issues=run.previous_issues
    )
    run.record_model_call(MODEL, PROVIDER, input_tokens, output_tokens, cost)
    follow = FollowUp(**draft)  # raises on a malformed draft: the exception path takes it
    run.record_outcome(ref=f"crm:activity:{lead['id']}", draft_ready=1)
    # Sending requires an SDR's approval: this queues a review and returns at once.
    send_email(lead_id=follow.lead_id, to=follow.to, subject=follow.subject, body=follow.body)
    return follow


def print_ledger(rows: list[Any]) -> None:
    """Print the ledger rows the runs wrote."""
    header = (
        f"{'run':10} {'trigger':12} {'status':10} {'error':16} {'tries':>5} {'tokens':>6} "
        f"{'cost $':>8}  sources read"
    )
    print(f"\n{header}")
    for row in rows:
        tokens = row.input_tokens + row.output_tokens
        reads = ", ".join(f"{r.source}#{r.sha256[:8]}" for r in row.reads) or "-"
        print(
            f"{row.run_id[-8:]:10} {row.trigger_type:12} {row.status.value:10} "
            f"{row.error_type or row.refusal_reason or '-':16} {row.attempts:>5} {tokens:>6} "
            f"{row.cost:>8.5f}  {reads}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: no flags runs the example with no telemetry set up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--otlp",
        action="store_true",
        help="export spans and metrics over OTLP/HTTP, as the OTEL_* environment says",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve metrics for Prometheus on 127.0.0.1:PORT until stdin ends or SIGTERM",
    )
    return parser.parse_args(argv)


def start_telemetry(args: argparse.Namespace) -> Any:
    """Set up the global OpenTelemetry providers the flags ask for (imported only then)."""
    try:
        from ada_governance.otel import setup_telemetry

        if args.metrics_port is None:
            return setup_telemetry(service_name="speed_to_lead")
        return setup_telemetry(
            service_name="speed_to_lead",
            traces=args.otlp,
            otlp=args.otlp,
            prometheus_port=args.metrics_port,
        )
    except ImportError as error:
        sys.exit(f"telemetry needs more packages: {error}")
    except OSError as error:
        sys.exit(f"cannot serve metrics on 127.0.0.1:{args.metrics_port}: {error}")


def serve_until_stopped() -> None:
    """Block until standard input reaches end of file or the process gets SIGTERM."""
    stop = threading.Event()

    def read_stdin() -> None:
        try:
            while sys.stdin is not None and sys.stdin.readline():
                pass
        except (OSError, ValueError):  # no usable standard input: stop as at its end
            pass
        finally:
            stop.set()

    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    threading.Thread(target=read_stdin, name="stdin", daemon=True).start()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> None:
    """Check the declarations, govern a few follow-ups, and print the ledger."""
    args = parse_args(argv)
    telemetry = start_telemetry(args) if args.otlp or args.metrics_port is not None else None
    try:
        run_example()
        if telemetry is not None and telemetry.prometheus_url is not None:
            print(f"\nmetrics ready on {telemetry.prometheus_url}", flush=True)
            serve_until_stopped()
    finally:
        if telemetry is not None:
            telemetry.shutdown(timeout=5.0)


def run_example() -> None:
    """Check the declarations, govern a few follow-ups, and print the ledger."""
    check_declarations()
    folder = Path(tempfile.mkdtemp(prefix="speed_to_lead_"))
    store = os.environ.get("ADA_GOVERNANCE_STORE") or "sqlite:///" + str(folder / "governance.db")
    os.environ.setdefault("SPEED_TO_LEAD_OUTBOX", str(folder / "outbox.jsonl"))
    governance = configure(store)
    print(f"\nGoverning runs of {SPEED_TO_LEAD.name}; ledger in {governance.store.url}")
    for event, lead_id in LEADS:
        try:
            draft = follow_up(event, lead_id)
            print(f"  {lead_id}: drafted '{draft.subject}' for {draft.to}")
        except CheckFailed as refused:  # recorded as refused, and routed
            print(f"  {lead_id}: refused by the {refused.check} check: {refused.why}")
        except Exception as error:  # the exception path has recorded and routed it
            print(f"  {lead_id}: failed with {type(error).__name__}; routed to the SDR lead")
    print_ledger(governance.runs(SPEED_TO_LEAD))
    review_queue(governance)
    governance.close()
    run_pilot(folder)


def print_queue(governance: Any, title: str) -> None:
    """Print the review queue: every review, its status and its action's."""
    print(f"\n{title}")
    for review in governance.reviews(SPEED_TO_LEAD):
        to = review.payload.get("to", "?")
        print(
            f"  {review.id[-8:]}  {review.action:10} to {to:18} {review.outcome:20} "
            f"action {review.execution.value}"
        )


def review_queue(governance: Any) -> None:
    """An SDR works the queue: approves one email, edits one, rejects one."""
    print_queue(governance, "Review queue before the SDR:")
    pending = {review.payload["lead_id"]: review for review in governance.reviews(status="pending")}
    sdr = {"roles": ["sdr"]}
    governance.approve(pending["L-1041"].id, "jordan.sdr", **sdr, comment="good to go")
    edited = dict(pending["L-1042"].payload, subject="Your demo: two times that work")
    governance.approve(pending["L-1042"].id, "jordan.sdr", **sdr, edits=edited)
    governance.reject(
        pending["L-1045"].id, "jordan.sdr", **sdr, reason="the AE is already talking to them"
    )
    governance.run_actions()  # a worker's pass: nothing is sent twice
    print_queue(governance, "Review queue after the SDR:")
    sent = outbox_path().read_text(encoding="utf-8").splitlines()
    print(f"\nOutbox ({outbox_path()}): {len(sent)} emails sent")
    for line in sent:
        email = json.loads(line)
        print(f"  to {email['to']}: {email['subject']}")


if __name__ == "__main__":
    main()
