"""Spans and metrics for governed runs, through the OpenTelemetry API only.

The library never installs a provider: it uses the ones given to `Governance`, else the
global ones (looked up through the API's proxies, so providers set after start-up are
honoured). Telemetry fails open: an exporter, processor or provider that raises never
breaks a governed call; the failure is logged once and the call goes on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from . import _semconv as sc
from ._version import __version__

if TYPE_CHECKING:
    from .records import RunRecord, SourceRead
    from .reviews import Review
    from .run import ModelCall, Run
    from .sources import Source

__all__ = ["Telemetry"]

_SCOPE = "ada_governance"
_CONTENT_LIMIT = 8192


def _error_status(description: str) -> Status:
    return Status(StatusCode.ERROR, description)


class Telemetry:
    """Makes the spans and metrics of governed runs.

    Args:
        tracer_provider: Where spans go; the global provider if not given.
        meter_provider: Where metrics go; the global provider if not given.
        capture_content: Whether outputs and model prompts and completions are recorded
            on spans. Off by default; values read from sources classified as personal are
            redacted even when it is on.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        *,
        capture_content: bool = False,
    ) -> None:
        self.capture_content = capture_content
        self._warned = False
        try:
            self.tracer: trace.Tracer = (
                tracer_provider.get_tracer(_SCOPE, __version__)
                if tracer_provider is not None
                else trace.get_tracer(_SCOPE, __version__)
            )
        except Exception as error:
            self._failed("tracer", error)
            self.tracer = trace.NoOpTracer()
        try:
            meter = (
                meter_provider.get_meter(_SCOPE, __version__)
                if meter_provider is not None
                else metrics.get_meter(_SCOPE, __version__)
            )
            self._make_instruments(meter)
        except Exception as error:
            self._failed("meter", error)
            self._make_instruments(metrics.NoOpMeter(_SCOPE))
        self._attributes: dict[tuple[str, str, str], dict[str, str]] = {}

    def _make_instruments(self, meter: metrics.Meter) -> None:
        self.duration = meter.create_histogram(
            sc.METRIC_INVOKE_WORKFLOW_DURATION,
            unit="s",
            description="Duration of governed workflow runs, from opening to the outcome.",
            explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
        )
        self.token_usage = meter.create_histogram(
            sc.METRIC_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Tokens used by model calls recorded in governed runs.",
            explicit_bucket_boundaries_advisory=[float(b) for b in sc.TOKEN_BUCKETS],
        )
        self.cycle_time = meter.create_histogram(
            sc.METRIC_CYCLE_TIME,
            unit="s",
            description="Time from the trigger event to the run's end, for finished runs.",
            explicit_bucket_boundaries_advisory=list(sc.CYCLE_TIME_BUCKETS),
        )
        self.runs = meter.create_counter(
            sc.METRIC_RUNS, unit="{run}", description="Governed runs, by how they ended."
        )
        self.exceptions = meter.create_counter(
            sc.METRIC_EXCEPTIONS,
            unit="{exception}",
            description="Exceptions from governed runs, by type.",
        )
        self.refusals = meter.create_counter(
            sc.METRIC_REFUSALS, unit="{refusal}", description="Runs refused, by reason."
        )
        self._figures: dict[tuple[str, str], float] = {}
        meter.create_observable_gauge(
            sc.METRIC_WORKFLOW_FIGURE,
            callbacks=[self._observe_figures],
            description="The latest figures of each workflow's report (report(), evaluate()).",
        )
        self.trips = meter.create_counter(
            sc.METRIC_STOP_RULE_TRIPS,
            unit="{trip}",
            description="Stop rules that tripped and paused their workflow, by rule.",
        )
        self.review_latency = meter.create_histogram(
            sc.METRIC_REVIEW_LATENCY,
            unit="s",
            description="Time from a review's request to each decision on it.",
            explicit_bucket_boundaries_advisory=list(sc.CYCLE_TIME_BUCKETS),
        )
        self.review_decisions = meter.create_counter(
            sc.METRIC_REVIEW_DECISIONS,
            unit="{decision}",
            description="Review decisions, by verdict and whether the payload was edited.",
        )

    def _failed(self, what: str, error: BaseException) -> None:
        # Logged once per governance: a broken exporter would otherwise log every call.
        if self._warned:
            return
        self._warned = True
        try:
            from .audit import logger

            logger.warning(
                "telemetry_failed",
                part=what,
                error=f"{type(error).__name__}: {error}",
                note="governed calls go on; further telemetry failures are not logged",
            )
        except Exception:
            pass

    def _metric_attributes(self, workflow: str, key: str, value: str) -> dict[str, str]:
        # Built once per (workflow, key, value): the set is small, and the hot path reuses it.
        cache_key = (workflow, key, value)
        found = self._attributes.get(cache_key)
        if found is None:
            found = {sc.GEN_AI_WORKFLOW_NAME: workflow, key: value}
            self._attributes[cache_key] = found
        return found

    def _duration_attributes(self, workflow: str, key: str, value: str) -> dict[str, str]:
        cache_key = ("duration " + workflow, key, value)
        found = self._attributes.get(cache_key)
        if found is None:
            found = {
                sc.GEN_AI_OPERATION_NAME: sc.OPERATION_INVOKE_WORKFLOW,
                sc.GEN_AI_WORKFLOW_NAME: workflow,
                key: value,
            }
            self._attributes[cache_key] = found
        return found

    # --- the run span ------------------------------------------------------------------

    def start_run(
        self, run: Run, static: Mapping[str, Any], start_ns: int, stage: str | None
    ) -> Span | None:
        """Start the run's span (with the attributes samplers need) and make its context."""
        try:
            attributes = dict(static)
            trigger = run.trigger
            attributes[sc.ADA_RUN_ID] = run.id
            attributes[sc.ADA_TRIGGER_EVENT] = trigger.type
            attributes[sc.ADA_TRIGGER_ID] = trigger.id
            if stage is not None:
                attributes[sc.ADA_WORKFLOW_STAGE] = stage
            if run.parent is not None:
                attributes[sc.ADA_RUN_PARENT_ID] = run.parent.id
            span = self.tracer.start_span(
                f"invoke_workflow {run.workflow.name}",
                kind=SpanKind.INTERNAL,
                attributes=attributes,
                start_time=start_ns,
            )
            run._span = span
            # A sampled-out span still has a valid context, and spans made inside the run
            # must follow its decision; only the API's no-op span (no SDK) is skipped.
            run._otel_context = (
                trace.set_span_in_context(span) if span.get_span_context().is_valid else None
            )
            return span
        except Exception as error:
            self._failed("span", error)
            return None

    def end_run(
        self, run: Run, record: RunRecord, error: BaseException | None, output: Any
    ) -> None:
        """End the run's span and record the run's metrics."""
        workflow = record.workflow
        status = record.status.value
        elapsed = time.perf_counter() - run._t0
        span = run._span
        try:
            if span is not None and span.is_recording():
                attributes: dict[str, Any] = {sc.ADA_RUN_STATUS: status}
                for name, value in record.outcomes.items():
                    attributes[sc.ADA_OUTCOME_PREFIX + name] = value
                if record.outcome_ref is not None:
                    attributes[sc.ADA_OUTCOME_REF] = record.outcome_ref
                if record.ungoverned:
                    attributes[sc.ADA_UNGOVERNED] = True
                if record.fallback_used:
                    attributes[sc.ADA_FALLBACK_USED] = True
                if record.attempts > 1:
                    attributes[sc.ADA_ATTEMPTS] = record.attempts
                if isinstance(error, Exception) and record.error_type is not None:
                    attributes[sc.ERROR_TYPE] = record.error_type
                elif self.capture_content and output is not None:
                    # Redact the whole text, then cut it: cutting first could split a
                    # personal value and leave its beginning in the text.
                    attributes[sc.ADA_OUTPUT] = run._redact(_render(output))[:_CONTENT_LIMIT]
                span.set_attributes(attributes)
                if error is not None and isinstance(error, Exception):
                    span.set_status(_error_status(f"{record.error_type}: {record.error_message}"))
            if span is not None:
                span.end()
        except Exception as exc:
            self._failed("span", exc)
        try:
            if error is not None and isinstance(error, Exception) and record.error_type:
                self.duration.record(
                    elapsed, self._duration_attributes(workflow, sc.ERROR_TYPE, record.error_type)
                )
                self.exceptions.add(
                    1, self._metric_attributes(workflow, sc.ERROR_TYPE, record.error_type)
                )
            else:
                self.duration.record(
                    elapsed, self._duration_attributes(workflow, sc.ADA_RUN_STATUS, status)
                )
            self.runs.add(1, self._metric_attributes(workflow, sc.ADA_RUN_STATUS, status))
            cycle = (record.ended_at - record.received_at).total_seconds()
            if record.status.value == "succeeded" and cycle >= 0:
                self.cycle_time.record(
                    cycle, self._metric_attributes(workflow, sc.ADA_RUN_STATUS, status)
                )
        except Exception as exc:
            self._failed("metrics", exc)

    def refused(
        self,
        run: Run,
        record: RunRecord,
        error_type: str,
        message: str,
        check: str | None = None,
        rule: str | None = None,
    ) -> None:
        """End a refused run's span as an error naming the refusal (and the check or stop
        rule behind it), and count it."""
        reason = record.refusal_reason or "refused"
        try:
            span = run._span
            if span is not None:
                if span.is_recording():
                    attributes = {
                        sc.ADA_RUN_STATUS: record.status.value,
                        sc.ADA_REFUSAL_REASON: reason,
                        sc.ERROR_TYPE: error_type,
                    }
                    if check is not None:
                        attributes[sc.ADA_CHECK_NAME] = check
                    if rule is not None:
                        attributes[sc.ADA_STOP_RULE] = rule
                    span.set_attributes(attributes)
                    span.set_status(_error_status(message))
                span.end()
        except Exception as exc:
            self._failed("span", exc)
        try:
            self.refusals.add(
                1, self._metric_attributes(record.workflow, sc.ADA_REFUSAL_REASON, reason)
            )
            self.runs.add(
                1, self._metric_attributes(record.workflow, sc.ADA_RUN_STATUS, record.status.value)
            )
        except Exception as exc:
            self._failed("metrics", exc)

    def exception_routed(self, run: Run, error_type: str, route_to: str | None) -> None:
        """Note on the run's span that its failure went down the exception path."""
        span = run._span
        if span is None or not span.is_recording():
            return
        try:
            attributes = {sc.ERROR_TYPE: error_type}
            if route_to is not None:
                attributes[sc.ADA_ROUTE_TO] = route_to
            span.add_event(sc.EVENT_EXCEPTION_ROUTED, attributes)
        except Exception as exc:
            self._failed("span", exc)

    # --- source reads ----------------------------------------------------------------------

    def start_source(self, run: Run, declared: Source) -> Span | None:
        """Start a ``read_source {name}`` span under the run, around the loader."""
        context = run._otel_context
        if context is None:
            return None
        try:
            return self.tracer.start_span(
                f"read_source {declared.name}",
                context=context,
                kind=SpanKind.INTERNAL,
                attributes={
                    sc.ADA_SOURCE_NAME: declared.name,
                    sc.ADA_SOURCE_SYSTEM: declared.system,
                    sc.ADA_SOURCE_CLASSIFICATION: declared.classification.value,
                    sc.ADA_RUN_ID: run.id,
                },
            )
        except Exception as exc:
            self._failed("span", exc)
            return None

    def end_source(
        self, span: Span, run: Run, read: SourceRead | None, error: BaseException | None
    ) -> None:
        """End a source read's span with its provenance (hash and record id, never the
        data), and note the read as an event on the run's span."""
        try:
            if read is not None:
                provenance: dict[str, Any] = {
                    sc.ADA_SOURCE_NAME: read.source,
                    sc.ADA_SOURCE_SYSTEM: read.system,
                    sc.ADA_SOURCE_CLASSIFICATION: read.classification,
                    sc.ADA_SOURCE_SHA256: read.sha256,
                    sc.ADA_SOURCE_FETCHED_AT: read.fetched_at.isoformat(),
                }
                if read.record_id is not None:
                    provenance[sc.ADA_SOURCE_RECORD_ID] = read.record_id
                span.set_attributes(provenance)
                if run._span is not None and run._span.is_recording():
                    run._span.add_event(sc.EVENT_SOURCE_READ, provenance)
            if error is not None:
                span.set_attribute(sc.ERROR_TYPE, type(error).__name__)
                if isinstance(error, Exception):
                    span.set_status(_error_status(type(error).__name__))
            span.end()
        except Exception as exc:
            self._failed("span", exc)

    def start_child(self, run: Run, name: str, *, tool: str | None = None) -> Span | None:
        """Start a span under the run's span: ``validate_output {workflow}``, or
        ``execute_tool {action}`` for an action done inside the run."""
        context = run._otel_context
        if context is None:
            return None
        try:
            attributes: dict[str, Any] = {
                sc.GEN_AI_WORKFLOW_NAME: run.workflow.name,
                sc.ADA_RUN_ID: run.id,
            }
            if tool is not None:
                attributes[sc.GEN_AI_OPERATION_NAME] = sc.OPERATION_EXECUTE_TOOL
                attributes[sc.GEN_AI_TOOL_NAME] = tool
            return self.tracer.start_span(
                name, context=context, kind=SpanKind.INTERNAL, attributes=attributes
            )
        except Exception as exc:
            self._failed("span", exc)
            return None

    def end_child(self, span: Span | None, error: BaseException | None) -> None:
        """End a child span, as an error if ``error`` is an exception."""
        if span is None:
            return
        try:
            if isinstance(error, Exception):
                span.set_attribute(sc.ERROR_TYPE, type(error).__name__)
                span.set_status(_error_status(type(error).__name__))
            span.end()
        except Exception as exc:
            self._failed("span", exc)

    def end_validation(self, span: Span | None, attempt: int, issues: Sequence[Any]) -> None:
        """End an output check's span: whether it passed, and the issues' names."""
        if span is None:
            return
        try:
            span.set_attributes(
                {
                    sc.ADA_OUTPUT_VALID: not issues,
                    sc.ADA_OUTPUT_ISSUES: [str(getattr(i, "name", i)) for i in issues],
                    sc.ADA_ATTEMPT: attempt,
                }
            )
            if issues:
                span.set_status(_error_status("OutputRejected"))
            span.end()
        except Exception as exc:
            self._failed("span", exc)

    def attempt_failed(self, run: Run, attempt: int, reason: str) -> None:
        """Note on the run's span that an attempt at the body failed and will be retried."""
        span = run._span
        if span is None or not span.is_recording():
            return
        try:
            span.add_event(
                sc.EVENT_ATTEMPT_FAILED, {sc.ADA_ATTEMPT: attempt, sc.ERROR_TYPE: reason}
            )
        except Exception as exc:
            self._failed("span", exc)

    def publish_figures(self, workflow: str, figures: Mapping[str, float]) -> None:
        """Show a report's figures on the ``ada.workflow.figure`` gauge, by name."""
        for name, value in figures.items():
            self._figures[(workflow, name)] = value

    def _observe_figures(self, options: Any) -> Iterable[metrics.Observation]:
        try:
            return [
                metrics.Observation(value, {sc.GEN_AI_WORKFLOW_NAME: workflow, sc.ADA_FIGURE: name})
                for (workflow, name), value in list(self._figures.items())
            ]
        except Exception as exc:
            self._failed("metrics", exc)
            return []

    def stop_rule_tripped(self, workflow: str, rule: str) -> None:
        """Count a stop rule's trip."""
        try:
            self.trips.add(1, self._metric_attributes(workflow, sc.ADA_STOP_RULE, rule))
        except Exception as exc:
            self._failed("metrics", exc)

    # --- reviews and actions ---------------------------------------------------------------

    def review_requested(self, run: Run, review: Review) -> None:
        """Note on the run's span that an action was queued for review."""
        span = run._span
        if span is None or not span.is_recording():
            return
        try:
            span.add_event(
                sc.EVENT_REVIEW_REQUESTED,
                {
                    sc.ADA_REVIEW_ID: review.id,
                    sc.GEN_AI_TOOL_NAME: review.action,
                    sc.ADA_REVIEW_ROLES: list(review.roles),
                },
            )
        except Exception as exc:
            self._failed("span", exc)

    def review_decided(self, review: Review) -> None:
        """Record a decision: a ``review {action}`` span (its own trace, linked to the
        run's span) with an ``ada.review.decided`` event, the decision count, and how
        long the review waited for it."""
        decision = review.decisions[-1] if review.decisions else None
        if decision is None:
            return
        try:
            span = self.tracer.start_span(
                f"review {review.action}",
                context=Context(),
                kind=SpanKind.INTERNAL,
                links=_run_link(review),
                attributes={
                    sc.GEN_AI_WORKFLOW_NAME: review.workflow,
                    sc.GEN_AI_TOOL_NAME: review.action,
                    sc.ADA_RUN_ID: review.run_id,
                    sc.ADA_REVIEW_ID: review.id,
                },
            )
            span.add_event(
                sc.EVENT_REVIEW_DECIDED,
                {
                    sc.ADA_REVIEW_DECISION: decision.verdict,
                    sc.ADA_REVIEWER: decision.reviewer,
                    sc.ADA_REVIEW_EDITED: decision.edited,
                    sc.ADA_REVIEW_STATUS: review.status.value,
                },
            )
            span.end()
        except Exception as exc:
            self._failed("span", exc)
        try:
            latency = (decision.at - review.created_at).total_seconds()
            attributes: dict[str, str | bool] = {
                sc.GEN_AI_WORKFLOW_NAME: review.workflow,
                sc.ADA_REVIEW_DECISION: decision.verdict,
                sc.ADA_REVIEW_EDITED: decision.edited,
            }
            self.review_decisions.add(1, attributes)
            if latency >= 0:
                self.review_latency.record(
                    latency,
                    {
                        sc.GEN_AI_WORKFLOW_NAME: review.workflow,
                        sc.ADA_REVIEW_DECISION: decision.verdict,
                    },
                )
        except Exception as exc:
            self._failed("metrics", exc)

    def start_action(self, review: Review) -> Span | None:
        """Start an ``execute_tool {action}`` span for an approved action: a new trace,
        linked to the run's span (never a span held open while a person decided)."""
        try:
            links = _run_link(review)
            return self.tracer.start_span(
                f"execute_tool {review.action}",
                context=Context(),
                kind=SpanKind.INTERNAL,
                links=links,
                attributes={
                    sc.GEN_AI_OPERATION_NAME: sc.OPERATION_EXECUTE_TOOL,
                    sc.GEN_AI_TOOL_NAME: review.action,
                    sc.GEN_AI_WORKFLOW_NAME: review.workflow,
                    sc.ADA_RUN_ID: review.run_id,
                    sc.ADA_REVIEW_ID: review.id,
                },
            )
        except Exception as exc:
            self._failed("span", exc)
            return None

    def end_action(self, span: Span | None, review: Review) -> None:
        """End an approved action's span with how it went."""
        if span is None:
            return
        try:
            approvers = [d.reviewer for d in review.approvals]
            span.set_attributes(
                {
                    sc.ADA_ACTION_STATUS: review.execution.value,
                    sc.ADA_REVIEWER: approvers,
                    sc.ADA_REVIEW_EDITED: review.edited,
                }
            )
            if review.error is not None:
                span.set_attribute(sc.ERROR_TYPE, review.error.split(":", 1)[0])
                span.set_status(_error_status(review.error))
            span.end()
        except Exception as exc:
            self._failed("span", exc)

    # --- model calls ---------------------------------------------------------------------

    def model_call(
        self,
        run: Run,
        call: ModelCall,
        duration: float | None,
        prompt: Any = None,
        completion: Any = None,
    ) -> None:
        """Record a model call as a ``chat {model}`` span under the run, and its tokens."""
        workflow = run.workflow.name
        try:
            context: Context | None = run._otel_context
            if context is not None:
                end_ns = time.time_ns()
                start_ns = end_ns - int((duration or 0.0) * 1e9)
                attributes: dict[str, Any] = {
                    sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
                    sc.GEN_AI_REQUEST_MODEL: call.model,
                    sc.GEN_AI_WORKFLOW_NAME: workflow,
                    sc.ADA_RUN_ID: run.id,
                }
                if call.provider is not None:
                    attributes[sc.GEN_AI_PROVIDER_NAME] = call.provider
                if call.input_tokens is not None:
                    attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = call.input_tokens
                if call.output_tokens is not None:
                    attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = call.output_tokens
                if call.cost is not None:
                    attributes[sc.ADA_COST_USD] = call.cost
                if self.capture_content:
                    if prompt is not None:
                        attributes[sc.GEN_AI_INPUT_MESSAGES] = _messages("user", prompt, run)
                    if completion is not None:
                        attributes[sc.GEN_AI_OUTPUT_MESSAGES] = _messages(
                            "assistant", completion, run
                        )
                span = self.tracer.start_span(
                    f"chat {call.model}",
                    context=context,
                    kind=SpanKind.CLIENT,
                    attributes=attributes,
                    start_time=start_ns,
                )
                span.end(end_time=end_ns)
        except Exception as exc:
            self._failed("span", exc)
        try:
            base = {
                sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
                sc.GEN_AI_REQUEST_MODEL: call.model,
                sc.GEN_AI_WORKFLOW_NAME: workflow,
            }
            if call.provider is not None:
                base[sc.GEN_AI_PROVIDER_NAME] = call.provider
            if call.input_tokens is not None:
                self.token_usage.record(
                    call.input_tokens, {**base, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT}
                )
            if call.output_tokens is not None:
                self.token_usage.record(
                    call.output_tokens, {**base, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT}
                )
        except Exception as exc:
            self._failed("metrics", exc)


def _run_link(review: Review) -> list[trace.Link]:
    """A link to the span of the run that requested ``review``, when it was traced."""
    if not (review.trace_id and review.span_id):
        return []
    context = trace.SpanContext(
        int(review.trace_id, 16),
        int(review.span_id, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
    return [trace.Link(context)]


def _render(value: Any) -> str:
    """Text for a captured value: JSON where it can be, else ``repr``."""
    try:
        if hasattr(value, "model_dump_json"):
            return str(value.model_dump_json())
        return json.dumps(value, default=str, ensure_ascii=False)
    except Exception:
        return repr(value)


def _messages(role: str, content: Any, run: Run) -> str:
    # The content is redacted whole before it is cut and wrapped in JSON.
    text = content if isinstance(content, str) else _render(content)
    text = run._redact(text)[:_CONTENT_LIMIT]
    return json.dumps(
        [{"role": role, "parts": [{"type": "text", "content": text}]}], ensure_ascii=False
    )
