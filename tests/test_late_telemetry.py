"""Telemetry of review decisions and stop-rule refusals, and redacted error messages."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ada_governance import (
    Governance,
    MemoryStore,
    OutputRejected,
    StopRuleTripped,
    Workflow,
    current_run,
    governed_run,
    governed_workflow,
)


@pytest.fixture
def traced() -> tuple[Governance, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Governance(MemoryStore(), development=True, tracer_provider=provider), exporter


def test_a_review_decision_is_a_span_linked_to_the_run(
    traced: tuple[Governance, InMemorySpanExporter],
) -> None:
    """Each decision is a `review {action}` span in its own trace, linked to the run's
    span, with an ada.review.decided event naming the reviewer and the verdict."""
    governance, exporter = traced
    workflow = Workflow(
        name="late_review",
        trigger={"event": "lead"},
        actions=[{"name": "send", "risk": "requires_approval"}],
        review={"reviewers": ["sdr"]},
    )
    with governed_run(workflow, governance=governance) as run:
        handle = run.action("send", lambda payload: None, {"to": "a@b.c"})
    governance.reject(handle.review_id, "dana", roles=["sdr"], reason="not now")
    (run_span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("invoke")]
    (decision,) = [s for s in exporter.get_finished_spans() if s.name == "review send"]
    assert decision.context.trace_id != run_span.context.trace_id
    assert [link.context.span_id for link in decision.links] == [run_span.context.span_id]
    (event,) = decision.events
    assert event.name == "ada.review.decided"
    assert event.attributes["ada.review.decision"] == "reject"
    assert event.attributes["ada.reviewer"] == "dana"
    assert event.attributes["ada.review.status"] == "rejected"


def test_a_stop_rule_refusal_span_names_the_rule(
    traced: tuple[Governance, InMemorySpanExporter],
) -> None:
    """The span of a run a run cap refused names the stop rule."""
    governance, exporter = traced
    workflow = Workflow(
        name="late_cap",
        trigger={"event": "lead"},
        stop_rules=[{"kind": "run_cap", "max_runs": 1, "window": "1h"}],
    )
    with governed_run(workflow, governance=governance):
        pass
    with pytest.raises(StopRuleTripped), governed_run(workflow, governance=governance):
        pass
    refused = exporter.get_finished_spans()[-1]
    assert refused.attributes["ada.refusal.reason"] == "stop_rule"
    assert refused.attributes["ada.stop_rule"] == "run_cap"


def test_error_messages_never_carry_personal_values(
    traced: tuple[Governance, InMemorySpanExporter],
) -> None:
    """A failure whose message quotes data read from a personal source is recorded with
    the value replaced, in the ledger, the audit log and the span."""
    governance, exporter = traced
    workflow = Workflow(
        name="late_personal",
        trigger={"event": "lead"},
        sources=[{"name": "crm.lead", "system": "CRM", "classification": "personal"}],
    )

    @governed_workflow(workflow, governance=governance)
    def draft() -> None:
        lead = current_run().source("crm.lead", lambda: {"email": "ana(at)initech"})
        raise ValueError(f"not an address: {lead['email']!r}")

    with pytest.raises(ValueError, match="initech"):  # the caller still gets the original
        draft()
    (row,) = governance.runs(workflow)
    assert row.error_message is not None
    assert "ana(at)initech" not in row.error_message
    assert "[personal:" in row.error_message
    for event in governance.audit_events(workflow):
        assert "ana(at)initech" not in str(event.data)
    for span in exporter.get_finished_spans():
        assert "ana(at)initech" not in str(span.status.description)
        assert "ana(at)initech" not in str(dict(span.attributes or {}))


def test_output_validation_is_a_child_span(
    traced: tuple[Governance, InMemorySpanExporter],
) -> None:
    """Checking an output is a `validate_output {workflow}` span under the run's span,
    saying whether it passed and naming the issues."""
    governance, exporter = traced
    workflow = Workflow(
        name="late_validate",
        trigger={"event": "lead"},
        output_standard={"validators": [lambda out: [] if out else ["empty"]]},
    )

    @governed_workflow(workflow, governance=governance)
    def draft(text: str) -> str:
        return text

    draft("hello")
    with pytest.raises(OutputRejected):
        draft("")
    checks = [s for s in exporter.get_finished_spans() if s.name == "validate_output late_validate"]
    runs = [s for s in exporter.get_finished_spans() if s.name.startswith("invoke_workflow")]
    assert [c.attributes["ada.output.valid"] for c in checks] == [True, False]
    assert list(checks[1].attributes["ada.output.issues"]) == ["empty"]
    assert [c.parent.span_id for c in checks] == [r.context.span_id for r in runs]


def test_an_autonomous_action_is_an_execute_tool_span_under_the_run(
    traced: tuple[Governance, InMemorySpanExporter],
) -> None:
    """An action done inside the run is an `execute_tool {action}` child of its span."""
    governance, exporter = traced
    workflow = Workflow(
        name="late_tool",
        trigger={"event": "lead"},
        actions=[{"name": "log", "risk": "autonomous"}],
    )
    with governed_run(workflow, governance=governance) as run:
        run.action("log", lambda payload: "logged", {"n": 1})
    spans = {s.name: s for s in exporter.get_finished_spans()}
    tool, run_span = spans["execute_tool log"], spans["invoke_workflow late_tool"]
    assert tool.parent.span_id == run_span.context.span_id
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "log"


def test_source_decorator_reads_through_the_current_run() -> None:
    """@source makes a loader read its approved source through the run, sync and async;
    an unapproved name is refused, and outside a run the loader is refused too."""
    import asyncio

    from ada_governance import NoActiveRun, UnapprovedSourceError, source

    governance = Governance(MemoryStore(), development=True)
    workflow = Workflow(
        name="late_source",
        trigger={"event": "lead"},
        sources=[{"name": "crm.lead", "system": "CRM", "key": "id"}],
    )

    @source("crm.lead")
    def get_lead(lead_id: str) -> dict[str, str]:
        return {"id": lead_id}

    @source("crm.lead")
    async def aget_lead(lead_id: str) -> dict[str, str]:
        return {"id": lead_id}

    @source("hr.salary")
    def get_salary() -> int:
        return 1

    with governed_run(workflow, governance=governance) as run:
        assert get_lead("L-1") == {"id": "L-1"}

    async def read() -> dict[str, str]:
        async with governed_run(workflow, governance=governance):
            return await aget_lead("L-2")

    assert asyncio.run(read()) == {"id": "L-2"}
    assert [r.record_id for r in run.reads] == ["L-1"]
    with pytest.raises(UnapprovedSourceError), governed_run(workflow, governance=governance):
        get_salary()
    with pytest.raises(NoActiveRun):
        get_lead("L-3")
