"""Telemetry of governed runs: the run span on every kind of callable and on `governed_run`,
chat spans for recorded model calls, content capture with redaction, the GenAI and
governance metrics, and failing open when any part of OpenTelemetry is broken.

Spans and metrics go to SDK providers made per test (an `InMemorySpanExporter` behind a
`SimpleSpanProcessor`, an `InMemoryMetricReader`) and passed to `Governance`. No test sets a
global provider; the two tests about the global path swap the API's module global with
``monkeypatch``, which restores it. Telemetry names are written out literally here, so a
renamed constant in ``_semconv`` fails these tests; ``test_semconv.py`` checks the
constants against the semantic-conventions package.

Async code is driven with ``asyncio.run`` from sync tests (no pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel
from structlog.testing import capture_logs

from ada_governance import (
    ExceptionPath,
    Governance,
    MemoryStore,
    RunRecord,
    RunStatus,
    TriggerEvent,
    TriggerRefused,
    Workflow,
    WorkflowNotRunnable,
    WorkflowPaused,
    current_run,
    governed_run,
    governed_workflow,
)
from ada_governance import _semconv as sc
from ada_governance.testing import ManualClock

LEAD = Workflow(
    name="speed-to-lead",
    trigger={"event": "lead"},
    owner={"name": "Head of Sales"},
    system_of_record="Salesforce",
)
"""A draft with one event type, an owner and a system of record: every static attribute."""

ROUTED = Workflow(
    name="speed-to-lead",
    trigger={"event": "lead"},
    owner={"name": "Head of Sales"},
    system_of_record="Salesforce",
    exception_path=ExceptionPath(route_to="ops"),
)
"""LEAD with an exception path routed to ops."""

ENRICH = Workflow(name="enrich-lead", trigger={"event": "lead"}, owner={"name": "Head of Sales"})
"""A second workflow, called from inside LEAD's runs."""

KINDS = [
    pytest.param("function", id="function"),
    pytest.param("coroutine", id="coroutine"),
    pytest.param("generator", id="generator"),
    pytest.param("async_generator", id="async_generator"),
    pytest.param("with", id="with"),
    pytest.param("async_with", id="async_with"),
]
DECORATED_KINDS = KINDS[:4]
RETURNING_KINDS = [
    pytest.param("function", id="function"),
    pytest.param("coroutine", id="coroutine"),
]
STREAM_KINDS = [
    pytest.param("generator", id="generator"),
    pytest.param("async_generator", id="async_generator"),
]

MODEL = "gpt-4o-mini"
ERROR_MESSAGE = "the CRM said no"

# Every attribute key a metric data point may carry: none is per run.
METRIC_ATTRIBUTES = {
    "gen_ai.operation.name",
    "gen_ai.workflow.name",
    "gen_ai.request.model",
    "gen_ai.provider.name",
    "gen_ai.token.type",
    "ada.run.status",
    "error.type",
    "ada.refusal.reason",
}


class Boom(Exception):
    """The error governed bodies raise in these tests."""


# --- providers -----------------------------------------------------------------------------


@dataclass
class Otel:
    """SDK providers that keep what they receive in memory."""

    exporter: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    reader: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)
    tracer_provider: TracerProvider = field(default_factory=TracerProvider)
    meter_provider: MeterProvider = field(init=False)

    def __post_init__(self) -> None:
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def governance(self, **options: Any) -> Governance:
        """A governance on a fresh in-memory store, in development, sending here."""
        options.setdefault("development", True)
        return Governance(
            MemoryStore(),
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            **options,
        )

    def spans(self) -> list[ReadableSpan]:
        """The finished spans, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        """The finished spans called ``name``."""
        return [span for span in self.spans() if span.name == name]

    def metrics(self) -> list[Metric]:
        """Every metric the library's meter produced so far."""
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            metric
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            if scope.scope.name == "ada_governance"
            for metric in scope.metrics
        ]

    def metric(self, name: str) -> Metric | None:
        """The metric called ``name``, if it has data."""
        found = [metric for metric in self.metrics() if metric.name == name]
        assert len(found) <= 1, found
        return found[0] if found else None

    def points(self, name: str) -> dict[frozenset[tuple[str, Any]], Any]:
        """The metric's data points, keyed by their attributes."""
        metric = self.metric(name)
        if metric is None:
            return {}
        return {frozenset(point.attributes.items()): point for point in metric.data.data_points}

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


@pytest.fixture
def otel() -> Iterator[Otel]:
    """In-memory span and metric providers, shut down after the test."""
    providers = Otel()
    yield providers
    providers.shutdown()


@pytest.fixture
def gov(otel: Otel) -> Governance:
    """A development governance on a fresh in-memory store, sending to ``otel``."""
    return otel.governance()


@pytest.fixture(autouse=True)
def no_context_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if OpenTelemetry logs that a context token was detached wrongly."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        assert "Failed to detach context" not in record.getMessage()


# --- calling governed code of every kind ----------------------------------------------------


def call(
    kind: str,
    workflow: Workflow,
    gov: Governance,
    action: Callable[[], Any],
    trigger: TriggerEvent | None = None,
) -> Any:
    """Make one governed call of ``kind`` whose body returns (or yields once) ``action()``.

    Returns what the caller gets: the return value, or a stream's items as a list. The
    trigger, if given, is passed as the call's argument (or to `governed_run`).
    """
    args = () if trigger is None else (trigger,)
    if kind == "with":
        with governed_run(workflow, trigger, governance=gov):
            return action()
    if kind == "async_with":

        async def block() -> Any:
            async with governed_run(workflow, trigger, governance=gov):
                return action()

        return asyncio.run(block())
    decorate = governed_workflow(workflow, governance=gov)
    if kind == "function":
        return decorate(lambda *_: action())(*args)
    if kind == "coroutine":

        async def coroutine(*_: Any) -> Any:
            await asyncio.sleep(0)
            return action()

        return asyncio.run(decorate(coroutine)(*args))
    if kind == "generator":

        def generator(*_: Any) -> Iterator[Any]:
            yield action()

        return list(decorate(generator)(*args))

    async def async_generator(*_: Any) -> AsyncIterator[Any]:
        await asyncio.sleep(0)
        yield action()

    async def drain() -> list[Any]:
        return [item async for item in decorate(async_generator)(*args)]

    return asyncio.run(drain())


def returned(kind: str, value: Any) -> Any:
    """What ``call`` gives back when the body produced ``value``."""
    return [value] if kind in ("generator", "async_generator") else value


def fail() -> Any:
    """A body that raises Boom."""
    raise Boom(ERROR_MESSAGE)


def only_row(gov: Governance) -> RunRecord:
    """The single ledger row the test produced."""
    rows = gov.runs()
    assert len(rows) == 1, rows
    return rows[0]


def only_run_span(otel: Otel) -> ReadableSpan:
    """The single span the test produced, checked to be a run span."""
    spans = otel.spans()
    assert len(spans) == 1, [span.name for span in spans]
    assert spans[0].name == "invoke_workflow speed-to-lead"
    return spans[0]


def run_attributes(row: RunRecord, stage: str = "draft", **more: Any) -> dict[str, Any]:
    """The attributes a LEAD run span has, for the run in ``row``, plus ``more``."""
    return {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "speed-to-lead",
        "ada.workflow.version": "1",
        "ada.workflow.stage": stage,
        "ada.owner": "Head of Sales",
        "ada.system_of_record": "Salesforce",
        "ada.trigger.event": row.trigger_type,
        "ada.trigger.id": row.trigger_id,
        "ada.run.id": row.run_id,
        **more,
    }


def events_of(span: ReadableSpan) -> list[tuple[str, dict[str, Any]]]:
    """A span's events as (name, attributes) pairs."""
    return [(event.name, dict(event.attributes or {})) for event in span.events]


def personal(value: str) -> str:
    """What a personal value is replaced with in captured content."""
    return f"[personal:{hashlib.sha256(value.encode()).hexdigest()[:12]}]"


# --- the run span: success, failure, refusal, cancellation ---------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_success_is_one_internal_run_span_with_every_attribute(
    kind: str, otel: Otel, gov: Governance
) -> None:
    """Success: one INTERNAL run span, status unset, with the run's attributes and outcome."""

    def action() -> str:
        current_run().record_outcome(ref="crm-activity-7", meeting_booked=1)
        return "sent"

    assert call(kind, LEAD, gov, action) == returned(kind, "sent")

    row = only_row(gov)
    span = only_run_span(otel)
    assert span.kind is SpanKind.INTERNAL
    assert dict(span.attributes or {}) == run_attributes(
        row,
        **{
            "ada.run.status": "succeeded",
            "ada.outcome.meeting_booked": 1.0,
            "ada.outcome.ref": "crm-activity-7",
        },
    )
    assert span.attributes["ada.run.id"] == row.run_id
    assert span.status.status_code is StatusCode.UNSET
    assert span.parent is None
    assert events_of(span) == []


def test_run_span_names_the_trigger_event_it_was_given(otel: Otel, gov: Governance) -> None:
    """The run span names the given TriggerEvent and has no outcome attributes if none."""
    event = TriggerEvent("form-42", "lead", dt.datetime.now(dt.timezone.utc))

    call("function", LEAD, gov, lambda: None, trigger=event)

    span = only_run_span(otel)
    assert span.attributes["ada.trigger.event"] == "lead"
    assert span.attributes["ada.trigger.id"] == "form-42"
    assert not [key for key in span.attributes or {} if key.startswith("ada.outcome.")]


@pytest.mark.parametrize(
    "with_path",
    [pytest.param(False, id="no-exception-path"), pytest.param(True, id="exception-path")],
)
@pytest.mark.parametrize("kind", KINDS)
def test_failure_is_an_error_span_naming_the_exception(
    kind: str, with_path: bool, otel: Otel, gov: Governance
) -> None:
    """Failure: ERROR span with error.type, status failed, and the exception-path event."""
    workflow = ROUTED if with_path else LEAD

    with pytest.raises(Boom):
        call(kind, workflow, gov, fail)

    row = only_row(gov)
    span = only_run_span(otel)
    assert span.kind is SpanKind.INTERNAL
    assert dict(span.attributes or {}) == run_attributes(
        row, **{"ada.run.status": "failed", "error.type": "Boom"}
    )
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == f"Boom: {ERROR_MESSAGE}"
    expected = (
        [("ada.exception_routed", {"error.type": "Boom", "ada.exception.route_to": "ops"})]
        if with_path
        else []
    )
    assert events_of(span) == expected


REFUSALS = [
    pytest.param("paused", WorkflowPaused, "paused", id="paused"),
    pytest.param("draft", WorkflowNotRunnable, "draft", id="draft-outside-development"),
    pytest.param("trigger", TriggerRefused, "trigger", id="trigger-refused"),
]


@pytest.mark.parametrize(("case", "refused_with", "reason"), REFUSALS)
@pytest.mark.parametrize("kind", KINDS)
def test_refusal_is_a_lone_error_span_naming_the_refusal(
    kind: str, case: str, refused_with: type[Exception], reason: str, otel: Otel
) -> None:
    """Refusal: one ERROR span with the refusal's error.type and reason, and no children."""
    gov = otel.governance(development=case != "draft")
    trigger = None
    if case == "paused":
        gov.set_stage(LEAD, "paused", actor="ops@example.com", reason="incident 42")
    if case == "trigger":
        trigger = TriggerEvent("webinar-3", "webinar", dt.datetime.now(dt.timezone.utc))
    executed: list[bool] = []

    with pytest.raises(refused_with) as caught:
        call(kind, LEAD, gov, lambda: executed.append(True), trigger=trigger)

    assert executed == []
    row = only_row(gov)
    span = only_run_span(otel)
    assert span.kind is SpanKind.INTERNAL
    assert dict(span.attributes or {}) == run_attributes(
        row,
        stage="paused" if case == "paused" else "draft",
        **{
            "ada.run.status": "refused",
            "ada.refusal.reason": reason,
            "error.type": refused_with.__name__,
        },
    )
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == str(caught.value)
    assert events_of(span) == []


EARLY_ENDS = [
    pytest.param("generator", "break", id="generator-break"),
    pytest.param("generator", "close", id="generator-close"),
    pytest.param("async_generator", "aclose", id="async_generator-aclose"),
    pytest.param("async_generator", "cancel", id="async_generator-cancelled"),
]


@pytest.mark.parametrize(("kind", "how"), EARLY_ENDS)
def test_stream_stopped_early_is_cancelled_not_an_error(
    kind: str, how: str, otel: Otel, gov: Governance
) -> None:
    """A stream closed early or cancelled ends its span cancelled, unset, without error.type."""
    decorate = governed_workflow(LEAD, governance=gov)
    if kind == "generator":

        @decorate
        def stream() -> Iterator[int]:
            yield 1
            yield 2

        if how == "break":
            for _ in stream():  # the loop drops the generator, which closes it
                break
        else:
            items = stream()
            next(items)
            items.close()
    else:

        @decorate
        async def astream() -> AsyncIterator[int]:
            yield 1
            await asyncio.Event().wait()
            yield 2

        async def main() -> None:
            if how == "aclose":
                items = astream()
                await items.__anext__()
                await items.aclose()
                return
            seen: list[int] = []

            async def consume() -> None:
                async for item in astream():
                    seen.append(item)

            task = asyncio.create_task(consume())
            while not seen:
                await asyncio.sleep(0)
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())

    row = only_row(gov)
    assert row.status is RunStatus.CANCELLED
    span = only_run_span(otel)
    assert dict(span.attributes or {}) == run_attributes(row, **{"ada.run.status": "cancelled"})
    assert "error.type" not in (span.attributes or {})
    assert span.status.status_code is StatusCode.UNSET
    assert events_of(span) == []


# --- the run span in context ---------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_run_span_is_current_while_the_body_runs(kind: str, otel: Otel, gov: Governance) -> None:
    """The run span is current in the body, so a span started there is its child."""
    tracer = otel.tracer_provider.get_tracer("app")
    current: list[trace.Span] = []

    def action() -> None:
        current.append(trace.get_current_span())
        with tracer.start_as_current_span("crm lookup"):
            pass

    call(kind, LEAD, gov, action)

    [run_span] = otel.named("invoke_workflow speed-to-lead")
    [user_span] = otel.named("crm lookup")
    assert [span.get_span_context() for span in current] == [run_span.context]
    assert user_span.parent is not None
    assert user_span.parent.span_id == run_span.context.span_id
    assert user_span.context.trace_id == run_span.context.trace_id


@pytest.mark.parametrize("kind", STREAM_KINDS)
def test_run_span_is_not_current_between_a_streams_items(
    kind: str, otel: Otel, gov: Governance
) -> None:
    """A stream's run span is current in its body, never in the consumer between items."""
    tracer = otel.tracer_provider.get_tracer("app")
    inside: list[trace.SpanContext] = []
    outside: list[trace.Span] = []
    decorate = governed_workflow(LEAD, governance=gov)

    if kind == "generator":

        @decorate
        def stream() -> Iterator[int]:
            for n in range(2):
                inside.append(trace.get_current_span().get_span_context())
                yield n

        with tracer.start_as_current_span("consumer") as consumer:
            for _ in stream():
                outside.append(trace.get_current_span())
    else:

        @decorate
        async def astream() -> AsyncIterator[int]:
            for n in range(2):
                await asyncio.sleep(0)
                inside.append(trace.get_current_span().get_span_context())
                yield n

        async def main() -> trace.Span:
            with tracer.start_as_current_span("consumer") as span:
                async for _ in astream():
                    outside.append(trace.get_current_span())
            return span

        consumer = asyncio.run(main())

    [run_span] = otel.named("invoke_workflow speed-to-lead")
    assert inside == [run_span.context, run_span.context]
    assert outside == [consumer, consumer]
    assert run_span.parent is not None
    assert run_span.parent.span_id == consumer.get_span_context().span_id


@pytest.mark.parametrize("kind", KINDS)
def test_nested_governed_call_is_a_child_run_span(kind: str, otel: Otel, gov: Governance) -> None:
    """A governed call inside a run is a child run span naming its parent run."""

    @governed_workflow(ENRICH, governance=gov)
    def enrich() -> str:
        return "enriched"

    call(kind, LEAD, gov, enrich)

    [outer] = otel.named("invoke_workflow speed-to-lead")
    [inner] = otel.named("invoke_workflow enrich-lead")
    assert inner.parent is not None
    assert inner.parent.span_id == outer.context.span_id
    assert inner.context.trace_id == outer.context.trace_id
    assert inner.attributes["ada.run.parent_id"] == outer.attributes["ada.run.id"]
    assert "ada.run.parent_id" not in (outer.attributes or {})


def test_nested_coroutine_run_span_is_a_child_across_awaits(otel: Otel, gov: Governance) -> None:
    """A governed coroutine awaited inside a governed coroutine is a child run span."""

    @governed_workflow(ENRICH, governance=gov)
    async def enrich() -> str:
        await asyncio.sleep(0)
        return "enriched"

    @governed_workflow(LEAD, governance=gov)
    async def follow_up() -> str:
        await asyncio.sleep(0)
        return await enrich()

    assert asyncio.run(follow_up()) == "enriched"

    [outer] = otel.named("invoke_workflow speed-to-lead")
    [inner] = otel.named("invoke_workflow enrich-lead")
    assert inner.parent is not None
    assert inner.parent.span_id == outer.context.span_id


@pytest.mark.parametrize("kind", KINDS)
def test_run_span_parent_is_the_span_current_at_the_call(
    kind: str, otel: Otel, gov: Governance
) -> None:
    """The run span is a child of whatever span was current when the run opened."""
    tracer = otel.tracer_provider.get_tracer("app")

    with tracer.start_as_current_span("POST /leads") as request:
        call(kind, LEAD, gov, lambda: None)

    [run_span] = otel.named("invoke_workflow speed-to-lead")
    assert run_span.parent is not None
    assert run_span.parent.span_id == request.get_span_context().span_id
    assert run_span.context.trace_id == request.get_span_context().trace_id


# --- model calls ---------------------------------------------------------------------------


def record_call(**content: Any) -> None:
    """Record one model call on the current run, half a second long."""
    current_run().record_model_call(MODEL, "openai", 120, 40, 0.002, duration=0.5, **content)


@pytest.mark.parametrize("kind", KINDS)
def test_model_call_is_a_client_chat_span_under_the_run(
    kind: str, otel: Otel, gov: Governance
) -> None:
    """record_model_call makes a CLIENT chat span under the run span, without content."""
    call(kind, LEAD, gov, lambda: record_call(prompt="Write to Jane", completion="Dear Jane"))

    row = only_row(gov)
    [run_span] = otel.named("invoke_workflow speed-to-lead")
    [chat] = otel.named(f"chat {MODEL}")
    assert chat.kind is SpanKind.CLIENT
    assert chat.parent is not None
    assert chat.parent.span_id == run_span.context.span_id
    assert chat.context.trace_id == run_span.context.trace_id
    assert dict(chat.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": MODEL,
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 40,
        "ada.cost.usd": 0.002,
        "gen_ai.workflow.name": "speed-to-lead",
        "ada.run.id": row.run_id,
    }
    assert chat.status.status_code is StatusCode.UNSET
    assert chat.end_time is not None
    assert chat.start_time is not None
    assert chat.end_time - chat.start_time == pytest.approx(500_000_000, abs=1_000)
    assert "ada.output" not in (run_span.attributes or {})


def test_model_call_without_provider_or_counts_has_only_what_is_known(
    otel: Otel, gov: Governance
) -> None:
    """A model call with only a model name has no provider, token or cost attributes."""
    call("function", LEAD, gov, lambda: current_run().record_model_call(MODEL))

    row = only_row(gov)
    [chat] = otel.named(f"chat {MODEL}")
    assert dict(chat.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": MODEL,
        "gen_ai.workflow.name": "speed-to-lead",
        "ada.run.id": row.run_id,
    }


class Draft(BaseModel):
    """A model-shaped return value."""

    subject: str
    body: str


@pytest.mark.parametrize(
    "output",
    [
        pytest.param({"subject": "Hello", "body": "Dear Jane"}, id="dict"),
        pytest.param(Draft(subject="Hello", body="Dear Jane"), id="pydantic-model"),
    ],
)
@pytest.mark.parametrize("kind", RETURNING_KINDS)
def test_capture_content_records_messages_and_output(kind: str, output: Any, otel: Otel) -> None:
    """capture_content=True puts messages JSON on the chat span and the output on the run."""
    gov = otel.governance(capture_content=True)

    def action() -> Any:
        record_call(prompt="Write to Jane", completion={"draft": "Dear Jane"})
        return output

    call(kind, LEAD, gov, action)

    [run_span] = otel.named("invoke_workflow speed-to-lead")
    [chat] = otel.named(f"chat {MODEL}")
    assert json.loads(chat.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Write to Jane"}]}
    ]
    assert json.loads(chat.attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": json.dumps({"draft": "Dear Jane"})}],
        }
    ]
    assert json.loads(run_span.attributes["ada.output"]) == {
        "subject": "Hello",
        "body": "Dear Jane",
    }


def test_capture_content_leaves_failed_runs_without_output(otel: Otel) -> None:
    """A failed run's span has no ada.output even when content is captured."""
    gov = otel.governance(capture_content=True)

    with pytest.raises(Boom):
        call("function", LEAD, gov, fail)

    assert "ada.output" not in (only_run_span(otel).attributes or {})


@pytest.mark.parametrize("kind", RETURNING_KINDS)
def test_personal_values_are_redacted_from_captured_content(kind: str, otel: Otel) -> None:
    """Values in run._personal (source reads feed it; set here) are redacted when captured."""
    gov = otel.governance(capture_content=True)
    email = "jane.doe@example.com"

    def action() -> dict[str, str]:
        current_run()._personal.add(email)
        record_call(prompt=f"Write to {email}", completion=f"Sent to {email}")
        return {"to": email}

    call(kind, LEAD, gov, action)

    [run_span] = otel.named("invoke_workflow speed-to-lead")
    [chat] = otel.named(f"chat {MODEL}")
    token = personal(email)
    assert json.loads(chat.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == (
        f"Write to {token}"
    )
    assert json.loads(chat.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == (
        f"Sent to {token}"
    )
    assert json.loads(run_span.attributes["ada.output"]) == {"to": token}
    for span in otel.spans():
        assert email not in json.dumps(dict(span.attributes or {}))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("1 Main St\nSpringfield", id="newline"),
        pytest.param('Jane "JJ" Doe', id="quote"),
    ],
)
def test_personal_values_with_json_escaped_characters_are_redacted(value: str, otel: Otel) -> None:
    """Personal values (set on run._personal) with JSON-escaped characters are redacted."""
    gov = otel.governance(capture_content=True)

    def action() -> dict[str, str]:
        current_run()._personal.add(value)
        record_call(prompt=f"Write to {value}")
        return {"to": value}

    call("function", LEAD, gov, action)

    [run_span] = otel.named("invoke_workflow speed-to-lead")
    [chat] = otel.named(f"chat {MODEL}")
    assert json.loads(run_span.attributes["ada.output"]) == {"to": personal(value)}
    assert json.loads(chat.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == (
        f"Write to {personal(value)}"
    )


def test_personal_value_cut_by_the_content_limit_does_not_leak(otel: Otel) -> None:
    """A personal value (set on run._personal) cut by the content limit leaks no prefix."""
    gov = otel.governance(capture_content=True)
    email = "jane.doe@example.com"
    # JSON adds an opening quote: the cut falls after "jane.doe@".
    text = "x" * (8192 - 1 - len("jane.doe@")) + email

    def action() -> str:
        current_run()._personal.add(email)
        return text

    call("function", LEAD, gov, action)

    assert "jane.doe" not in only_run_span(otel).attributes["ada.output"]


def test_overlapping_personal_values_are_redacted_whole(otel: Otel) -> None:
    """A personal value (set on run._personal) containing another is redacted whole."""
    gov = otel.governance(capture_content=True)
    # Thirty pairs: whatever the string hashing, a set puts some shorter value first.
    pairs = [(f"Given{n:02d}", f"Given{n:02d} Family{n:02d}") for n in range(30)]

    def action() -> list[str]:
        for first, full in pairs:
            current_run()._personal.update((first, full))
        return [full for _, full in pairs]

    call("function", LEAD, gov, action)

    output = only_run_span(otel).attributes["ada.output"]
    assert "Family" not in output
    assert json.loads(output) == [personal(full) for _, full in pairs]


# --- metrics -------------------------------------------------------------------------------


def stop_stream_early(gov: Governance) -> None:
    """One governed generator run closed after its first item (cancelled)."""

    @governed_workflow(LEAD, governance=gov)
    def stream() -> Iterator[int]:
        yield 1
        yield 2

    items = stream()
    next(items)
    items.close()


def test_duration_histogram_by_status_or_error_type(otel: Otel, gov: Governance) -> None:
    """The duration histogram has one value per finished run, by status or error.type."""
    call("function", LEAD, gov, lambda: None)
    with pytest.raises(Boom):
        call("function", LEAD, gov, fail)
    stop_stream_early(gov)
    gov.set_stage(LEAD, "paused", actor="ops", reason="incident")
    with pytest.raises(WorkflowPaused):
        call("function", LEAD, gov, lambda: None)

    metric = otel.metric("gen_ai.invoke_workflow.duration")
    assert metric is not None
    assert metric.unit == "s"
    base = {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "speed-to-lead"}
    points = otel.points("gen_ai.invoke_workflow.duration")
    assert set(points) == {
        frozenset({**base, "ada.run.status": "succeeded"}.items()),
        frozenset({**base, "error.type": "Boom"}.items()),
        frozenset({**base, "ada.run.status": "cancelled"}.items()),
    }
    for point in points.values():
        assert isinstance(point, HistogramDataPoint)
        assert point.count == 1
        assert 0 <= point.sum < 5
        assert tuple(point.explicit_bounds) == sc.DURATION_BUCKETS


def test_token_usage_histogram_sums_the_recorded_tokens(otel: Otel, gov: Governance) -> None:
    """Token usage is recorded by token type, and its sums equal the recorded counts."""

    def action() -> None:
        current_run().record_model_call(MODEL, "openai", 120, 40)
        current_run().record_model_call(MODEL, "openai", 30, 2)

    call("function", LEAD, gov, action)

    metric = otel.metric("gen_ai.client.token.usage")
    assert metric is not None
    assert metric.unit == "{token}"
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": MODEL,
        "gen_ai.provider.name": "openai",
        "gen_ai.workflow.name": "speed-to-lead",
    }
    points = otel.points("gen_ai.client.token.usage")
    assert set(points) == {
        frozenset({**base, "gen_ai.token.type": "input"}.items()),
        frozenset({**base, "gen_ai.token.type": "output"}.items()),
    }
    used_in = points[frozenset({**base, "gen_ai.token.type": "input"}.items())]
    used_out = points[frozenset({**base, "gen_ai.token.type": "output"}.items())]
    assert (used_in.count, used_in.sum) == (2, 150)
    assert (used_out.count, used_out.sum) == (2, 42)
    assert tuple(used_in.explicit_bounds) == tuple(float(b) for b in sc.TOKEN_BUCKETS)


def test_token_usage_has_no_point_when_counts_are_unknown(otel: Otel, gov: Governance) -> None:
    """A model call recorded without token counts adds no token-usage data point."""
    call("function", LEAD, gov, lambda: current_run().record_model_call(MODEL, "openai"))

    assert otel.points("gen_ai.client.token.usage") == {}
    assert len(otel.named(f"chat {MODEL}")) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_cycle_time_runs_from_the_trigger_event_to_the_end(kind: str, otel: Otel) -> None:
    """Cycle time runs from the trigger's received_at to the end, for succeeded runs only."""
    clock = ManualClock()
    gov = otel.governance(clock=clock)
    earlier = clock.now() - dt.timedelta(seconds=90)

    call(kind, LEAD, gov, lambda: None, trigger=TriggerEvent("form-1", "lead", earlier))
    with pytest.raises(Boom):
        call(kind, LEAD, gov, fail, trigger=TriggerEvent("form-2", "lead", earlier))

    metric = otel.metric("ada.run.cycle_time")
    assert metric is not None
    assert metric.unit == "s"
    points = otel.points("ada.run.cycle_time")
    key = frozenset(
        {"gen_ai.workflow.name": "speed-to-lead", "ada.run.status": "succeeded"}.items()
    )
    assert set(points) == {key}
    assert (points[key].count, points[key].sum) == (1, 90.0)


def test_counters_by_status_error_type_and_refusal_reason(otel: Otel, gov: Governance) -> None:
    """The counters count runs by status, failures by error.type, refusals by reason."""
    call("function", LEAD, gov, lambda: None)
    call("coroutine", LEAD, gov, lambda: None)
    with pytest.raises(Boom):
        call("function", LEAD, gov, fail)

    def bad_value() -> None:
        raise ValueError("no phone number")

    with pytest.raises(ValueError, match="no phone number"):
        call("generator", LEAD, gov, bad_value)
    webinar = TriggerEvent("webinar-3", "webinar", dt.datetime.now(dt.timezone.utc))
    with pytest.raises(TriggerRefused):
        call("function", LEAD, gov, lambda: None, trigger=webinar)
    gov.set_stage(LEAD, "paused", actor="ops", reason="incident")
    with pytest.raises(WorkflowPaused):
        call("function", LEAD, gov, lambda: None)

    def counts(name: str, unit: str) -> dict[tuple[tuple[str, Any], ...], Any]:
        metric = otel.metric(name)
        assert metric is not None
        assert metric.unit == unit
        assert metric.data.is_monotonic
        points = otel.points(name)
        for point in points.values():
            assert isinstance(point, NumberDataPoint)
        return {tuple(sorted(key)): point.value for key, point in points.items()}

    workflow = ("gen_ai.workflow.name", "speed-to-lead")
    assert counts("ada.runs", "{run}") == {
        (("ada.run.status", "succeeded"), workflow): 2,
        (("ada.run.status", "failed"), workflow): 2,
        (("ada.run.status", "refused"), workflow): 2,
    }
    assert counts("ada.exceptions", "{exception}") == {
        (("error.type", "Boom"), workflow): 1,
        (("error.type", "ValueError"), workflow): 1,
    }
    assert counts("ada.refusals", "{refusal}") == {
        (("ada.refusal.reason", "trigger"), workflow): 1,
        (("ada.refusal.reason", "paused"), workflow): 1,
    }


def test_no_metric_carries_a_per_run_attribute(otel: Otel, gov: Governance) -> None:
    """No metric data point carries a run id or any other per-run attribute."""
    run_ids: list[str] = []

    def busy() -> str:
        run = current_run()
        run_ids.append(run.id)
        run.record_outcome(ref="crm-activity-7", meeting_booked=1)
        run.annotate(lead_id="lead-99")
        run.record_model_call(MODEL, "openai", 120, 40, 0.002, duration=0.1)
        return "sent"

    for kind in ("function", "coroutine", "generator", "async_generator", "with", "async_with"):
        event = TriggerEvent(f"form-{kind}", "lead", dt.datetime.now(dt.timezone.utc))
        call(kind, ROUTED, gov, busy, trigger=event)
        with pytest.raises(Boom):
            call(kind, ROUTED, gov, fail, trigger=event)
    stop_stream_early(gov)
    gov.set_stage(LEAD, "paused", actor="ops", reason="incident")
    with pytest.raises(WorkflowPaused):
        call("function", LEAD, gov, lambda: None)

    names = {metric.name for metric in otel.metrics()}
    assert names == {
        "gen_ai.invoke_workflow.duration",
        "gen_ai.client.token.usage",
        "ada.run.cycle_time",
        "ada.runs",
        "ada.exceptions",
        "ada.refusals",
    }
    run_ids.extend(row.run_id for row in gov.runs())
    for metric in otel.metrics():
        for point in metric.data.data_points:
            assert set(point.attributes) <= METRIC_ATTRIBUTES, (metric.name, point.attributes)
            assert not set(point.attributes.values()) & set(run_ids), metric.name


# --- failing open --------------------------------------------------------------------------


@dataclass
class Broken:
    """Providers with one broken part, and how to tell the broken part was reached."""

    tracer_provider: Any = None
    meter_provider: Any = None
    hits: list[str] = field(default_factory=list)
    logged_by_us: bool = True
    """Whether the failure reaches ada_governance (else the SDK catches and logs it)."""
    cleanup: list[Callable[[], Any]] = field(default_factory=list)


class RaisingProcessor(SpanProcessor):
    """A span processor that raises from on_start and/or on_end."""

    def __init__(self, hits: list[str], *, on_start: bool, on_end: bool) -> None:
        self._hits = hits
        self._on_start = on_start
        self._on_end = on_end

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self._on_start:
            self._hits.append("on_start")
            raise RuntimeError("processor on_start is broken")

    def on_end(self, span: ReadableSpan) -> None:
        if self._on_end:
            self._hits.append("on_end")
            raise RuntimeError("processor on_end is broken")


class RaisingSpanExporter(SpanExporter):
    """A span exporter whose export raises."""

    def __init__(self, hits: list[str]) -> None:
        self._hits = hits

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._hits.append("export")
        raise RuntimeError("collector unreachable")


class RaisingMetricExporter(MetricExporter):
    """A metric exporter whose export raises."""

    def __init__(self, hits: list[str]) -> None:
        super().__init__()
        self._hits = hits

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self._hits.append("export")
        raise RuntimeError("collector unreachable")

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


class RaisingTracerProvider(trace.TracerProvider):
    """A tracer provider whose get_tracer raises."""

    def __init__(self, hits: list[str]) -> None:
        self._hits = hits

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        self._hits.append("get_tracer")
        raise RuntimeError("tracer provider is broken")


class RaisingMeterProvider(metrics.MeterProvider):
    """A meter provider whose get_meter raises."""

    def __init__(self, hits: list[str]) -> None:
        self._hits = hits

    def get_meter(self, *args: Any, **kwargs: Any) -> metrics.Meter:
        self._hits.append("get_meter")
        raise RuntimeError("meter provider is broken")


class RaisingInstrument:
    """A histogram or counter whose record and add raise."""

    def __init__(self, hits: list[str]) -> None:
        self._hits = hits

    def record(self, *args: Any, **kwargs: Any) -> None:
        self._hits.append("record")
        raise RuntimeError("instrument is broken")

    def add(self, *args: Any, **kwargs: Any) -> None:
        self._hits.append("add")
        raise RuntimeError("instrument is broken")


class RaisingInstrumentsMeterProvider(metrics.MeterProvider):
    """A meter provider whose instruments raise when used."""

    def __init__(self, hits: list[str]) -> None:
        self._hits = hits

    def get_meter(self, name: str, *args: Any, **kwargs: Any) -> metrics.Meter:
        hits = self._hits

        class Meter(metrics.NoOpMeter):
            def create_histogram(self, *args: Any, **kwargs: Any) -> Any:
                return RaisingInstrument(hits)

            def create_counter(self, *args: Any, **kwargs: Any) -> Any:
                return RaisingInstrument(hits)

        return Meter(name)


def processor_raising_everywhere() -> Broken:
    broken = Broken()
    provider = TracerProvider()
    provider.add_span_processor(RaisingProcessor(broken.hits, on_start=True, on_end=True))
    broken.tracer_provider = provider
    broken.cleanup.append(provider.shutdown)
    return broken


def processor_raising_on_end() -> Broken:
    broken = Broken()
    provider = TracerProvider()
    provider.add_span_processor(RaisingProcessor(broken.hits, on_start=False, on_end=True))
    broken.tracer_provider = provider
    broken.cleanup.append(provider.shutdown)
    return broken


def exporter_raising() -> Broken:
    broken = Broken(logged_by_us=False)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(RaisingSpanExporter(broken.hits)))
    broken.tracer_provider = provider
    broken.cleanup.append(provider.shutdown)
    return broken


def tracer_provider_raising() -> Broken:
    broken = Broken()
    broken.tracer_provider = RaisingTracerProvider(broken.hits)
    return broken


def meter_provider_raising() -> Broken:
    broken = Broken()
    broken.meter_provider = RaisingMeterProvider(broken.hits)
    return broken


def instruments_raising() -> Broken:
    broken = Broken()
    broken.meter_provider = RaisingInstrumentsMeterProvider(broken.hits)
    return broken


def metric_exporter_raising() -> Broken:
    broken = Broken(logged_by_us=False)
    reader = PeriodicExportingMetricReader(
        RaisingMetricExporter(broken.hits), export_interval_millis=math.inf
    )
    provider = MeterProvider(metric_readers=[reader])
    broken.meter_provider = provider
    # Collection is pulled, not pushed by a call: flush so the exporter is reached.
    broken.cleanup.append(provider.force_flush)
    broken.cleanup.append(provider.shutdown)
    return broken


BROKEN = [
    pytest.param(processor_raising_everywhere, id="span-processor-on_start-and-on_end"),
    pytest.param(processor_raising_on_end, id="span-processor-on_end"),
    pytest.param(exporter_raising, id="span-exporter"),
    pytest.param(tracer_provider_raising, id="tracer-provider-get_tracer"),
    pytest.param(meter_provider_raising, id="meter-provider-get_meter"),
    pytest.param(instruments_raising, id="metric-instruments"),
    pytest.param(metric_exporter_raising, id="metric-exporter"),
]


@pytest.mark.parametrize("make_broken", BROKEN)
@pytest.mark.parametrize("kind", KINDS)
def test_broken_telemetry_never_breaks_a_governed_call(
    kind: str, make_broken: Callable[[], Broken]
) -> None:
    """Broken telemetry never changes what a governed call returns, raises or records."""
    broken = make_broken()
    error = Boom(ERROR_MESSAGE)

    def succeed() -> str:
        record_call(prompt="Write to Jane", completion="Dear Jane")
        return "sent"

    def failing() -> None:
        raise error

    try:
        with capture_logs() as logs:
            gov = Governance(
                MemoryStore(),
                development=True,
                tracer_provider=broken.tracer_provider,
                meter_provider=broken.meter_provider,
                capture_content=True,
            )
            assert call(kind, ROUTED, gov, succeed) == returned(kind, "sent")
            with pytest.raises(Boom) as caught:
                call(kind, ROUTED, gov, failing)
            assert caught.value is error
            gov.set_stage(ROUTED, "paused", actor="ops", reason="incident")
            with pytest.raises(WorkflowPaused):
                call(kind, ROUTED, gov, succeed)
    finally:
        for step in broken.cleanup:
            step()

    assert broken.hits, "the broken part was never reached"
    assert [row.status for row in gov.runs()] == [
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.REFUSED,
    ]
    assert gov.runs()[0].model_calls == 1
    failures = [log for log in logs if log["event"] == "telemetry_failed"]
    if broken.logged_by_us:
        assert len(failures) == 1, failures
        assert failures[0]["log_level"] == "warning"
        assert "RuntimeError" in failures[0]["error"]
    else:
        assert len(failures) <= 1, failures


def test_everything_broken_is_logged_once(otel: Otel) -> None:
    """With every part of telemetry broken, telemetry_failed is logged once."""
    hits: list[str] = []
    with capture_logs() as logs:
        gov = Governance(
            MemoryStore(),
            development=True,
            tracer_provider=RaisingTracerProvider(hits),
            meter_provider=RaisingMeterProvider(hits),
        )
        for kind in ("function", "coroutine", "generator", "async_generator"):
            assert call(kind, LEAD, gov, lambda: "sent") == returned(kind, "sent")
            with pytest.raises(Boom):
                call(kind, LEAD, gov, fail)

    assert hits == ["get_tracer", "get_meter"]
    assert len(gov.runs()) == 8
    assert [log["event"] for log in logs].count("telemetry_failed") == 1


# --- the global providers ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_without_providers_calls_work_and_record_no_span(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without providers or a global SDK, calls work and record no span; nothing is installed."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.delenv("OTEL_PYTHON_TRACER_PROVIDER", raising=False)
    tracer_provider = trace.get_tracer_provider()
    meter_provider = metrics.get_meter_provider()
    seen: list[tuple[bool, Any]] = []

    def action() -> str:
        run = current_run()
        seen.append((trace.get_current_span().is_recording(), run._span))
        return "sent"

    gov = Governance(MemoryStore(), development=True)
    assert call(kind, LEAD, gov, action) == returned(kind, "sent")

    assert only_row(gov).status is RunStatus.SUCCEEDED
    [(current_is_recording, run_span)] = seen
    assert current_is_recording is False
    assert run_span is None or not run_span.is_recording()
    assert trace.get_tracer_provider() is tracer_provider
    assert metrics.get_meter_provider() is meter_provider


def test_global_tracer_provider_set_after_start_up_is_used(
    otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A global tracer provider set after the Governance was made receives its run spans."""
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", None)
    monkeypatch.delenv("OTEL_PYTHON_TRACER_PROVIDER", raising=False)
    gov = Governance(MemoryStore(), development=True)
    # set_tracer_provider is once per process; swapping the module global is undone by
    # monkeypatch at teardown.
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", otel.tracer_provider)

    call("function", LEAD, gov, lambda: None)

    span = only_run_span(otel)
    assert span.attributes["ada.run.id"] == only_row(gov).run_id


# --- sampling ------------------------------------------------------------------------------


class DropRunSpans(Sampler):
    """Samples every root span but run spans: a ratio sampler that happened to drop a run."""

    def should_sample(
        self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any
    ) -> SamplingResult:
        if name.startswith("invoke_workflow "):
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE)

    def get_description(self) -> str:
        return "DropRunSpans"


def test_spans_inside_a_sampled_out_run_follow_its_sampling_decision() -> None:
    """Spans inside a run the sampler dropped follow its decision and are dropped too."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(DropRunSpans()))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    gov = Governance(MemoryStore(), development=True, tracer_provider=provider)
    current: list[trace.SpanContext] = []

    def action() -> None:
        current.append(trace.get_current_span().get_span_context())
        with provider.get_tracer("app").start_as_current_span("crm lookup"):
            pass

    try:
        call("function", LEAD, gov, action)
    finally:
        provider.shutdown()

    assert current[0].is_valid
    assert [span.name for span in exporter.get_finished_spans()] == []
