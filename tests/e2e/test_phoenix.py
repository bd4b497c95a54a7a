"""End to end: the speed-to-lead example's spans, exported over OTLP, as Phoenix stores them.

Runs the example with ``--otlp`` against a real Phoenix server on 127.0.0.1 (see
``conftest.py``) and reads the spans back through Phoenix's REST API.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from _e2e import clean_environment, example_command, http_get

from ada_governance import RunStatus, SQLiteStore

RUN_SPAN = "invoke_workflow speed_to_lead"
CHAT_SPAN = "chat local-drafter-1"
OWNER = "Dana Whitfield, VP Sales"
# The example's leads: trigger id -> (event type, how the run ends, outcome ref).
# Drafted runs wait for the SDR to approve their email: they end pending review.
TRIGGERS = {
    "form-1041": ("form_fill", RunStatus.PENDING_REVIEW, "crm:activity:L-1041"),
    "call-7731": ("missed_call", RunStatus.PENDING_REVIEW, "crm:activity:L-1042"),
    "form-1043": ("form_fill", RunStatus.FAILED, None),  # exception path: ValidationError
    "form-1044": ("form_fill", RunStatus.REFUSED, None),  # the consent check refuses it
    "call-7732": ("missed_call", RunStatus.PENDING_REVIEW, "crm:activity:L-1045"),
}
SPANS_TIMEOUT = 30.0


def fetch_spans(base_url: str, project: str) -> list[dict[str, Any]]:
    """Every span Phoenix holds for ``project`` (following the cursor), or [] if none yet."""
    spans: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        url = (
            f"{base_url}/v1/projects/{urllib.parse.quote(project, safe='')}/spans?"
            f"{urllib.parse.urlencode(query)}"
        )
        status, body = http_get(url)
        if status == 404:  # the project appears with its first span
            return []
        assert status == 200, f"GET {url} -> {status}: {body[:500]!r}"
        page = json.loads(body)
        spans.extend(page["data"])
        cursor = page.get("next_cursor")
        if not cursor:
            return spans


def wait_for_spans(base_url: str, project: str, runs: int, chats: int) -> list[dict[str, Any]]:
    """Poll until Phoenix holds ``runs`` run spans and ``chats`` chat spans; return all."""
    deadline = time.monotonic() + SPANS_TIMEOUT
    names: list[str] = []
    while time.monotonic() < deadline:
        spans = fetch_spans(base_url, project)
        names = [span["name"] for span in spans]
        if names.count(RUN_SPAN) >= runs and names.count(CHAT_SPAN) >= chats:
            return spans
        time.sleep(0.25)
    raise AssertionError(
        f"after {SPANS_TIMEOUT:.0f} s Phoenix held these spans for project {project!r}, "
        f"expected {runs} {RUN_SPAN!r} and {chats} {CHAT_SPAN!r}: {names}"
    )


def run_example(phoenix: str, project: str, store: Path, cwd: Path) -> None:
    """Run the example with ``--otlp``, exporting spans to Phoenix under ``project``."""
    env = clean_environment(
        OTEL_EXPORTER_OTLP_ENDPOINT=phoenix,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_METRICS_EXPORTER="none",
        # Phoenix files spans under the project this resource attribute names.
        OTEL_RESOURCE_ATTRIBUTES=f"openinference.project.name={project}",
        ADA_GOVERNANCE_STORE=f"sqlite:///{store}",
    )
    result = subprocess.run(
        example_command("--otlp"),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=cwd,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "telemetry_timeout" not in result.stdout + result.stderr


def test_example_spans_reach_phoenix(phoenix: str, tmp_path: Path) -> None:
    """A run span per lead with its governance attributes, its chat spans beneath it."""
    project = f"ada-governance-e2e-{uuid.uuid4().hex[:8]}"
    store = tmp_path / "ledger.db"
    run_example(phoenix, project, store, tmp_path)
    sqlite = SQLiteStore(store)
    try:
        ledger = {row.trigger_id: row for row in sqlite.list_runs("speed_to_lead")}
    finally:
        sqlite.close()
    assert set(ledger) == set(TRIGGERS)
    model_calls = sum(row.model_calls for row in ledger.values())
    assert model_calls >= len(TRIGGERS) - 1  # every run that was not refused drafted

    spans = wait_for_spans(phoenix, project, runs=len(TRIGGERS), chats=model_calls)
    runs = [span for span in spans if span["name"] == RUN_SPAN]
    chats = [span for span in spans if span["name"] == CHAT_SPAN]
    assert len(runs) == len(TRIGGERS), [span["name"] for span in spans]
    assert len(chats) == model_calls, [span["name"] for span in spans]

    runs_by_trigger = {span["attributes"]["ada.trigger.id"]: span for span in runs}
    assert set(runs_by_trigger) == set(TRIGGERS)
    for trigger_id, (event_type, status, outcome_ref) in TRIGGERS.items():
        span, row = runs_by_trigger[trigger_id], ledger[trigger_id]
        attributes = span["attributes"]
        assert span["parent_id"] is None
        assert attributes["gen_ai.operation.name"] == "invoke_workflow"
        assert attributes["gen_ai.workflow.name"] == "speed_to_lead"
        assert attributes["ada.workflow.version"] == "1"
        assert attributes["ada.workflow.stage"] == "pilot"
        assert attributes["ada.owner"] == OWNER
        assert attributes["ada.system_of_record"] == "CRM"
        assert attributes["ada.trigger.event"] == event_type
        assert re.fullmatch(r"[0-9a-f]{32}", attributes["ada.run.id"])
        assert attributes["ada.run.id"] == row.run_id
        assert attributes["ada.run.status"] == status.value == row.status.value
        if status is RunStatus.FAILED:
            assert span["status_code"] == "ERROR"
            assert attributes["error.type"] == "ValidationError" == row.error_type
            assert "ada.outcome.ref" not in attributes
        elif status is RunStatus.REFUSED:
            assert span["status_code"] == "ERROR"
            assert attributes["error.type"] == "CheckFailed"
            assert attributes["ada.refusal.reason"] == row.refusal_reason == "check"
        else:
            assert span["status_code"] != "ERROR"
            assert "error.type" not in attributes
            assert attributes["ada.outcome.ref"] == outcome_ref == row.outcome_ref
            assert attributes["ada.outcome.draft_ready"] == 1.0
    failed = [span for span in runs if span["status_code"] == "ERROR"]
    assert sorted(span["attributes"]["error.type"] for span in failed) == [
        "CheckFailed",
        "ValidationError",
    ]

    # Each chat span is a child of its run's span, in its trace; tokens match the ledger.
    runs_by_span_id = {span["context"]["span_id"]: span for span in runs}
    for chat in chats:
        assert chat["parent_id"] in runs_by_span_id, chat
        run = runs_by_span_id[chat["parent_id"]]
        attributes = chat["attributes"]
        assert chat["context"]["trace_id"] == run["context"]["trace_id"]
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "example"
        assert attributes["gen_ai.request.model"] == "local-drafter-1"
        assert attributes["gen_ai.workflow.name"] == "speed_to_lead"
        assert attributes["ada.run.id"] == run["attributes"]["ada.run.id"]
    for trigger_id, row in ledger.items():
        span_id = runs_by_trigger[trigger_id]["context"]["span_id"]
        own = [chat["attributes"] for chat in chats if chat["parent_id"] == span_id]
        assert len(own) == row.model_calls, trigger_id
        assert sum(a["gen_ai.usage.input_tokens"] for a in own) == row.input_tokens
        assert sum(a["gen_ai.usage.output_tokens"] for a in own) == row.output_tokens

    # The two emails the SDR approved were sent later, each in a trace of its own (linked
    # to its run's span, never a span held open while the SDR decided). Nothing else went
    # astray: every other span belongs to the trace of one of the runs.
    traces = {span["context"]["trace_id"] for span in runs}
    assert len(traces) == len(runs)
    sends = [span for span in spans if span["name"] == "execute_tool send_email"]
    assert len(sends) == 2, [span["name"] for span in spans]
    for send in sends:
        assert send["parent_id"] is None
        assert send["context"]["trace_id"] not in traces
        assert send["attributes"]["ada.run.id"] in {row.run_id for row in ledger.values()}
        assert send["attributes"]["ada.action.status"] == "succeeded"
    # Each decision the SDR made is a `review send_email` span of its own trace too.
    decisions = [span for span in spans if span["name"] == "review send_email"]
    assert len(decisions) == 3, [span["name"] for span in spans]
    for decision in decisions:
        assert decision["context"]["trace_id"] not in traces
    others = [span for span in spans if span not in sends and span not in decisions]
    assert {span["context"]["trace_id"] for span in others} == traces
