"""The engine behind every governed call, written once for sync and async code.

Each stage of a run (open, check the output, succeed, fail) is a generator that yields the
I/O it needs (a store call, a user callable such as a handler or a check) and receives
the answer; `drive` answers it synchronously and `adrive` with ``await``. The
decorators and context managers in `runtime` only choose the runner and call the body.
"""

from __future__ import annotations

import datetime as dt
import inspect
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from . import _limits, _retrying, audit, policy
from . import _semconv as sc
from ._limits import BASELINE, BASELINE_KEY, check_review_rules
from ._ops import (
    _CALL,
    _CALL_IN_RUN,
    _NO_KWARGS,
    _STORE,
    RetryOutput,
    Steps,
    _describe,
    _new_id,
    _text,
)
from .checks import check_reason
from .exceptions import (
    CheckFailed,
    GovernanceUnavailable,
    OutputRejected,
    RequiredSourceNotRead,
    TriggerRefused,
    UsageError,
)
from .outputs import OnFail, OutputIssue, check_schema, validator_issues
from .records import AuditEvent, RunRecord, RunStatus, TriggerEvent
from .run import _CURRENT, ExceptionRecord, Run, _activate, _deactivate
from .stops import (
    Budget,
    ErrorRate,
    ExceptionVolume,
    RejectionRate,
    RunCap,
    SlaBreachRate,
)
from .storage import Store

if TYPE_CHECKING:
    from .governance import Governance
from .workflow import Workflow

__all__ = ["Engine", "NO_FALLBACK", "adrive", "drive"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class _NoFallback:
    """Marks that the exception path gave no fallback value: re-raise."""


NO_FALLBACK = _NoFallback()

WORKFLOWS: dict[str, Workflow] = {}
"""The workflows governed in this process, by name: stop rules about reviews are checked
where their decisions are made, if the workflow is known there."""


def _sync_only(target: Any, answer: Any) -> Any:
    if inspect.isawaitable(answer):
        if inspect.iscoroutine(answer):
            answer.close()
        raise UsageError(
            f"{target!r} is async, but the governed code is sync: give a sync "
            "callable, or make the governed function async"
        )
    return answer


def drive(steps: Steps[T], store: Store) -> T:
    """Run an engine stage, answering its requests synchronously."""
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            kind, target, args, kwargs = (
                steps.throw(error) if error is not None else steps.send(answer)
            )
        except StopIteration as stop:
            return cast(T, stop.value)
        error = None
        try:
            if kind == _STORE:
                answer = getattr(store, target)(*args, **kwargs)
            elif kind == _CALL:
                answer = _sync_only(target, target(*args, **kwargs))
            else:
                fn, run = target
                tokens = _activate(run)
                try:
                    answer = _sync_only(fn, fn(*args, **kwargs))
                finally:
                    _deactivate(tokens)
        except Exception as exc:
            answer, error = None, exc


async def adrive(steps: Steps[T], store: Store) -> T:
    """Run an engine stage, answering its requests with ``await``."""
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            kind, target, args, kwargs = (
                steps.throw(error) if error is not None else steps.send(answer)
            )
        except StopIteration as stop:
            return cast(T, stop.value)
        error = None
        try:
            if kind == _STORE:
                answer = await getattr(store, "a" + target)(*args, **kwargs)
            elif kind == _CALL:
                answer = target(*args, **kwargs)
                if inspect.isawaitable(answer):
                    answer = await answer
            else:
                # The run stays current across the await: it is this task's own step,
                # never handed to a consumer in between.
                fn, run = target
                tokens = _activate(run)
                try:
                    answer = fn(*args, **kwargs)
                    if inspect.isawaitable(answer):
                        answer = await answer
                finally:
                    _deactivate(tokens)
        except Exception as exc:
            answer, error = None, exc


class Engine:
    """Everything about one governed callable that can be worked out once, not per call."""

    __slots__ = (
        "baseline",
        "checks",
        "default_refusal",
        "default_type",
        "fallback",
        "finishing",
        "governance",
        "handler",
        "limit_rules",
        "owner",
        "required_sources",
        "retry_policy",
        "review_rules",
        "route_to",
        "run_rules",
        "signature",
        "span_attributes",
        "standard",
        "trigger_from",
        "version",
        "workflow",
    )

    def __init__(
        self,
        workflow: Workflow,
        governance: Governance | None,
        trigger_from: str | Callable[..., Any] | None,
        fn: Callable[..., Any] | None,
        baseline: bool = False,
    ) -> None:
        if not isinstance(workflow, Workflow):
            raise UsageError(
                f"governed_workflow needs a Workflow declaration, not {type(workflow).__name__}"
            )
        self.workflow = workflow
        self.baseline = baseline
        self.version = workflow.version
        self.governance = governance
        # The trigger made at call time is the same for every call: decide it once.
        self.default_type = policy.default_trigger_type(workflow)
        self.default_refusal = policy.check_trigger(workflow, self.default_type)
        self.owner = workflow.owner.name if workflow.owner else None
        # The run span's attributes that are the same for every call.
        self.span_attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_INVOKE_WORKFLOW,
            sc.GEN_AI_WORKFLOW_NAME: workflow.name,
            sc.ADA_WORKFLOW_VERSION: workflow.version,
        }
        if self.owner is not None:
            self.span_attributes[sc.ADA_OWNER] = self.owner
        if workflow.system_of_record is not None:
            self.span_attributes[sc.ADA_SYSTEM_OF_RECORD] = workflow.system_of_record.name
        path = workflow.exception_path
        self.route_to = path.route_to if path else None
        self.handler = path.handler if path else None
        self.fallback = path.fallback if path else None
        self.checks = workflow.checks
        self.limit_rules = tuple(r for r in workflow.stop_rules if isinstance(r, (Budget, RunCap)))
        self.run_rules = tuple(
            r
            for r in workflow.stop_rules
            if isinstance(r, (ErrorRate, ExceptionVolume, SlaBreachRate))
        )
        self.review_rules = tuple(r for r in workflow.stop_rules if isinstance(r, RejectionRate))
        WORKFLOWS[workflow.name] = workflow
        standard = workflow.output_standard
        self.standard = (
            standard if standard is not None and (standard.schema_ or standard.validators) else None
        )
        self.required_sources = tuple(s.name for s in workflow.sources if s.required)
        self.retry_policy = workflow.retry
        # Whether anything must be checked once the body returns; most workflows on the
        # hot path have nothing, and skip the stage entirely.
        self.finishing = bool(not baseline and (self.standard is not None or self.required_sources))
        self.trigger_from = trigger_from
        self.signature: inspect.Signature | None = None
        if isinstance(trigger_from, str) and fn is not None:
            self.signature = inspect.signature(fn)
            parameters = list(self.signature.parameters)
            if trigger_from not in parameters:
                raise UsageError(
                    f"trigger_from={trigger_from!r} names no parameter of {fn.__qualname__}; "
                    f"its parameters are {', '.join(parameters) or 'none'}"
                )

    # --- the trigger -------------------------------------------------------------------

    def _trigger(
        self,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        explicit: TriggerEvent | str | None,
        parent: Run | None,
        now: dt.datetime,
        run_id: str,
    ) -> tuple[TriggerEvent, policy.Refusal | None]:
        found: Any = explicit
        if found is None and self.trigger_from is not None:
            try:
                found = self._extract(args, kwargs)
            except Exception as exc:
                return TriggerEvent(run_id, "unknown", now), policy.Refusal(
                    TriggerRefused,
                    f"could not take the trigger event from the call: {type(exc).__name__}: "
                    f"{_text(exc)}",
                )
        if found is None:
            for value in args:
                if type(value) is TriggerEvent:
                    found = value
                    break
            else:
                if kwargs:
                    for value in kwargs.values():
                        if type(value) is TriggerEvent:
                            found = value
                            break
        if found is None and parent is not None and self._accepts(parent.trigger.type):
            found = parent.trigger
        if found is None:
            # An event made at call time shares the run's id: it has none of its own.
            return TriggerEvent(run_id, self.default_type or "unknown", now), self.default_refusal
        try:
            event = _as_trigger_event(found, now)
        except (TypeError, ValueError) as exc:
            return TriggerEvent(run_id, "unknown", now), policy.Refusal(TriggerRefused, str(exc))
        return event, policy.check_trigger(self.workflow, event.type)

    def _extract(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        source = self.trigger_from
        if callable(source):
            return source(*args, **kwargs)
        if self.signature is None:
            raise ValueError("trigger_from names a parameter, but the callable is unknown")
        # Bind as Python would, so defaults, keyword-only and positional-only parameters
        # all resolve to the value the function itself will see.
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments[cast(str, source)]

    def _accepts(self, event_type: str) -> bool:
        trigger = self.workflow.trigger
        return trigger is None or event_type in trigger.events

    # --- the stages of a run -------------------------------------------------------------

    def open(
        self,
        governance: Governance,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        explicit: TriggerEvent | str | None = None,
    ) -> Steps[Run]:
        """Open a run: resolve its trigger, read the stored state, admit or refuse it."""
        workflow = self.workflow
        start_ns = time.time_ns()
        now = governance.clock.now()
        parent = _CURRENT.get()
        run_id = _new_id()
        event, refusal = self._trigger(args, kwargs, explicit, parent, now, run_id)
        run = Run(run_id, workflow, event, now, parent)
        telemetry = governance.telemetry
        run._telemetry = telemetry
        run._governance = governance
        try:
            state = yield (_STORE, "get_state", (workflow.name,), _NO_KWARGS)
        except Exception as exc:
            if workflow.on_store_unavailable == "run_ungoverned" and refusal is None:
                run.ungoverned = True
                audit.log_event(
                    AuditEvent(
                        now,
                        audit.UNGOVERNED_RUN,
                        workflow.name,
                        run.id,
                        data={"store_error": _describe(exc)},
                    ),
                    self.owner,
                )
                telemetry.start_run(run, self.span_attributes, start_ns, None)
                return run
            message = (
                f"the governance store ({governance.store.url}) could not say whether "
                f"workflow {workflow.name!r} may run, so the call was refused: "
                f"{_describe(exc)}"
            )
            record = self._record(run, RunStatus.REFUSED, now, refusal_reason="store_unavailable")
            event_row = AuditEvent(
                now,
                audit.RUN_REFUSED,
                workflow.name,
                run.id,
                data={"reason": "store_unavailable", "message": message},
            )
            governance._hold(record, (event_row,))
            audit.log_event(event_row, self.owner)
            telemetry.start_run(run, self.span_attributes, start_ns, None)
            telemetry.refused(run, record, GovernanceUnavailable.__name__, message)
            raise GovernanceUnavailable(message, workflow=workflow.name, run_id=run.id) from exc
        stage = policy.effective_stage(workflow, state)
        if refusal is None:
            # Measuring the current process (baseline) comes before the workflow is ready,
            # so a draft may be measured anywhere; paused and retired still refuse.
            development = governance.development or self.baseline
            refusal = policy.admit(workflow, state, development=development)
        telemetry.start_run(run, self.span_attributes, start_ns, stage.value)
        if refusal is not None:
            record = self._record(run, RunStatus.REFUSED, now, refusal_reason=refusal.reason)
            event_row = AuditEvent(
                now,
                audit.RUN_REFUSED,
                workflow.name,
                run.id,
                data={"reason": refusal.reason, "message": refusal.message},
            )
            yield from self._write(governance, record, (event_row,))
            audit.log_event(event_row, self.owner)
            telemetry.refused(run, record, refusal.error.__name__, refusal.message)
            raise refusal.error(refusal.message, workflow=workflow.name, run_id=run.id)
        if self.baseline:
            run._annotations[BASELINE_KEY] = BASELINE
            return run
        for rule in self.limit_rules:
            yield from _limits.reserve(self, governance, run, rule, now)
        for check in self.checks:
            try:
                reason = check_reason((yield (_CALL_IN_RUN, (check.fn, run), args, kwargs)))
            except Exception as exc:
                reason = f"the check raised {_describe(exc)}"
            if reason is not None:
                yield from self._check_failed(governance, run, check.name, reason)
        return run

    def _check_failed(
        self, governance: Governance, run: Run, check: str, reason: str
    ) -> Steps[None]:
        """Refuse a run a pre-check failed: record it, route it, raise `CheckFailed`."""
        yield from _limits.release(run)
        workflow = self.workflow
        now = governance.clock.now()
        message = f"check {check!r} refused the run of {workflow.name!r}: {reason}"
        error = CheckFailed(message, workflow=workflow.name, run_id=run.id, check=check, why=reason)
        record = self._record(run, RunStatus.REFUSED, now, refusal_reason=CheckFailed.reason)
        events = [
            AuditEvent(
                now,
                audit.RUN_REFUSED,
                workflow.name,
                run.id,
                data={"reason": CheckFailed.reason, "check": check, "message": message},
            )
        ]
        events.extend((yield from self._route(run, error, now)))
        yield from self._write(governance, record, events)
        for event in events:
            audit.log_event(event, self.owner)
        governance.telemetry.refused(run, record, CheckFailed.__name__, message, check)
        raise error

    def _route(self, run: Run, error: Exception, now: dt.datetime) -> Steps[list[AuditEvent]]:
        """Send an error down the exception path: the routing event and the handler."""
        workflow = self.workflow
        events: list[AuditEvent] = []
        error_type = type(error).__name__
        if workflow.exception_path is None:
            return events
        if run._telemetry is not None:
            run._telemetry.exception_routed(run, error_type, self.route_to)
        events.append(
            AuditEvent(
                now,
                audit.EXCEPTION_ROUTED,
                workflow.name,
                run.id,
                data={"error_type": error_type, "route_to": self.route_to},
            )
        )
        if self.handler is not None:
            try:
                yield (_CALL, self.handler, (self._exception_record(run, error, now),), _NO_KWARGS)
            except Exception as handler_error:
                events.append(
                    AuditEvent(
                        now,
                        audit.EXCEPTION_HANDLER_FAILED,
                        workflow.name,
                        run.id,
                        data={"error": _describe(handler_error)},
                    )
                )
        return events

    def _exception_record(
        self, run: Run, error: BaseException, now: dt.datetime
    ) -> ExceptionRecord:
        workflow = self.workflow
        return ExceptionRecord(
            workflow.name,
            workflow.version,
            run.id,
            self.owner,
            self.route_to,
            type(error).__name__,
            error,
            run.trigger,
            now,
        )

    # --- after the body ------------------------------------------------------------------

    def finish(self, run: Run, output: Any, *, check_output: bool = True) -> Steps[Any]:
        """Check what the body left: violations, required sources, the output's standard.

        Returns the output (the schema's instance when the standard coerces). Raises the
        violation, `RequiredSourceNotRead` or `OutputRejected`; raises `RetryOutput`
        instead when the standard says ``retry``, for the attempt loop to catch.
        """
        workflow = self.workflow
        if run._violations:
            raise run._violations[0]
        if self.baseline:
            return output  # the process as it is: the AI's declared standards are not its
        if self.required_sources:
            read = {item.source for item in run._reads}
            missing = tuple(name for name in self.required_sources if name not in read)
            if missing:
                raise RequiredSourceNotRead(
                    f"the run of {workflow.name!r} ended without reading the required "
                    f"source{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                    workflow=workflow.name,
                    run_id=run.id,
                    sources=missing,
                )
        standard = self.standard
        if standard is None or not check_output:
            return output
        span = (
            run._telemetry.start_child(run, f"validate_output {workflow.name}")
            if (run._telemetry is not None)
            else None
        )
        value, issues = check_schema(standard, output)
        if not issues:
            for validator in standard.validators:
                try:
                    result = yield (_CALL_IN_RUN, (validator, run), (value,), _NO_KWARGS)
                    issues.extend(validator_issues(validator, result))
                except Exception as exc:
                    name = getattr(validator, "__name__", "validator")
                    issues.append(OutputIssue(f"{name}.raised", _describe(exc)))
        if run._telemetry is not None:
            run._telemetry.end_validation(span, run.attempt, issues)
        if not issues:
            return value if standard.mode == "coerce" else output
        if standard.on_fail is OnFail.RETRY:
            raise RetryOutput(issues)
        if standard.on_fail is OnFail.REVIEW and run._governance is not None:
            # The output goes to a person instead of being discarded: the call returns a
            # PendingAction, and the approved (perhaps edited) output is its result.
            from ._actions import hold_output

            return (yield from hold_output(run._governance, run, output, issues))
        raise self.rejected(run, issues)

    def rejected(self, run: Run, issues: list[OutputIssue]) -> OutputRejected:
        """The error for an output that failed its standard with ``issues``."""
        names = ", ".join(issue.name for issue in issues)
        return OutputRejected(
            f"the output of {self.workflow.name!r} failed its standard after "
            f"{run.attempt} attempt{'s' if run.attempt > 1 else ''}: {names}",
            workflow=self.workflow.name,
            run_id=run.id,
            issues=tuple(issues),
            attempts=run.attempt,
        )

    def routes(self, error: BaseException) -> bool:
        """Whether a failure goes down the exception path (an output rejected under
        ``on_fail: raise`` is raised to the caller, not routed)."""
        return not (
            isinstance(error, OutputRejected)
            and self.standard is not None
            and self.standard.on_fail in (OnFail.RAISE, OnFail.RETRY)
        )

    # --- retrying the body ---------------------------------------------------------------

    @property
    def retries(self) -> bool:
        """Whether the body may run more than once."""
        return self.retry_policy is not None or (
            self.standard is not None and self.standard.on_fail is OnFail.RETRY
        )

    def retrying(self, run: Run, governance: Governance, *, asynchronous: bool) -> Any:
        """A tenacity controller for the body's attempts (see `_retrying`)."""
        return _retrying.retrying(self, run, governance, asynchronous=asynchronous)

    def succeed(self, governance: Governance, run: Run, output: Any = None) -> Steps[None]:
        """Close a run whose body returned (waiting for review if it queued actions)."""
        status = RunStatus.PENDING_REVIEW if run._pending else RunStatus.SUCCEEDED
        record = self._record(run, status, governance.clock.now())
        yield from self._write(governance, record, self._events_to_write(run, record))
        governance.telemetry.end_run(run, record, None, output)
        yield from self._after(governance, run, record)

    def _after(self, governance: Governance, run: Run, record: RunRecord) -> Steps[None]:
        """After a run's row is written: settle its reservations, check the rules over
        the ledger. Neither may turn a finished run into a failure: a store that cannot
        answer now leaves the reservation held (fail closed) and the rules unchecked
        until the next run."""
        if (
            not (run._reservations or self.run_rules or self.review_rules)
            or run.ungoverned
            or self.baseline
        ):
            return
        try:
            if run._reservations:
                yield from _limits.settle(self, run, record)
            if self.run_rules:
                yield from _limits.check_run_rules(self, governance, record.ended_at)
            if self.review_rules:
                yield from check_review_rules(governance, self.workflow, record.ended_at)
        except Exception as error:
            audit.logger.error(
                "stop_rules_unchecked",
                workflow=record.workflow,
                run_id=record.run_id,
                error=_describe(error),
            )

    def fail(
        self, governance: Governance, run: Run, error: BaseException, *, fallback: bool = True
    ) -> Steps[Any]:
        """Close a run whose body raised: record, count and route the error.

        Returns the fallback value, or `NO_FALLBACK` when the error must propagate.
        """
        now = governance.clock.now()
        workflow = self.workflow
        error_type = type(error).__name__
        if not isinstance(error, Exception):
            # Cancellation, an early-closed stream, KeyboardInterrupt: the caller stopped
            # the run; it did not fail, and the exception path is not for it.
            record = self._record(run, RunStatus.CANCELLED, now, error_type=error_type)
            yield from self._write(governance, record, self._events_to_write(run, record))
            governance.telemetry.end_run(run, record, error, None)
            yield from self._after(governance, run, record)
            return NO_FALLBACK
        # An error's text may quote the data it choked on (pydantic shows input values):
        # values read from personal sources are replaced before it is logged or stored.
        message = run._redact(_text(error)) if run._personal else _text(error)
        events = [
            AuditEvent(
                now,
                audit.RUN_FAILED,
                workflow.name,
                run.id,
                data={"error_type": error_type, "message": message},
            ),
        ]
        routed = self.routes(error)
        if routed:
            events.extend((yield from self._route(run, error, now)))
        result: Any = NO_FALLBACK
        if fallback and routed and self.fallback is not None:
            try:
                exception_record = self._exception_record(run, error, now)
                result = yield (_CALL, self.fallback, (exception_record,), _NO_KWARGS)
                events.append(
                    AuditEvent(
                        now,
                        audit.FALLBACK_RETURNED,
                        workflow.name,
                        run.id,
                        data={"error_type": error_type},
                    )
                )
            except Exception as fallback_error:
                result = NO_FALLBACK
                events.append(
                    AuditEvent(
                        now,
                        audit.FALLBACK_FAILED,
                        workflow.name,
                        run.id,
                        data={"error": _describe(fallback_error)},
                    )
                )
        record = self._record(
            run,
            RunStatus.FAILED,
            now,
            error_type=error_type,
            error_message=message,
            fallback_used=result is not NO_FALLBACK,
        )
        events.extend(self._events_to_write(run, record))
        yield from self._write(governance, record, events)
        governance.telemetry.end_run(run, record, error, None)
        for event in events:
            audit.log_event(event, self.owner)
        yield from self._after(governance, run, record)
        return result

    # --- writing -----------------------------------------------------------------------

    def _record(
        self,
        run: Run,
        status: RunStatus,
        ended_at: dt.datetime,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        refusal_reason: str | None = None,
        fallback_used: bool = False,
    ) -> RunRecord:
        calls = run._model_calls
        trigger = run.trigger
        parent = run.parent
        # Positional: this runs once per call, and keyword construction costs twice as much.
        return RunRecord(
            run.id,
            self.workflow.name,
            self.version,
            status,
            trigger.id,
            trigger.type,
            trigger.received_at,
            run.started_at,
            ended_at,
            parent.id if parent is not None else None,
            error_type,
            error_message,
            refusal_reason,
            fallback_used,
            run.ungoverned,
            len(calls),
            sum(c.input_tokens or 0 for c in calls) if calls else 0,
            sum(c.output_tokens or 0 for c in calls) if calls else 0,
            sum(c.cost or 0.0 for c in calls) if calls else 0.0,
            run._outcome_ref,
            dict(run._outcomes) if run._outcomes else {},
            dict(run._annotations) if run._annotations else {},
            run.attempt,
            list(run._reads) if run._reads else [],
        )

    @staticmethod
    def _events_to_write(run: Run, record: RunRecord) -> tuple[AuditEvent, ...]:
        # Events kept on the run while it worked (failed attempts, refused reads) are
        # written with its ledger row, in the same transaction.
        kept = tuple(run._kept_events) + tuple(
            AuditEvent(
                record.ended_at,
                audit.POLICY_VIOLATION,
                record.workflow,
                run.id,
                data={"error_type": type(v).__name__, "message": _text(v)},
            )
            for v in run._violations
        )
        if not run.ungoverned:
            return kept
        ungoverned = AuditEvent(
            record.ended_at,
            audit.UNGOVERNED_RUN,
            record.workflow,
            run.id,
            data={"status": record.status.value},
        )
        return (*kept, ungoverned)

    def _write(
        self,
        governance: Governance,
        record: RunRecord,
        events: tuple[AuditEvent, ...] | list[AuditEvent],
    ) -> Steps[None]:
        """Write a ledger row; hold it in memory if the store cannot take it now."""
        try:
            yield (_STORE, "record_run", (record, events), _NO_KWARGS)
        except Exception as exc:
            governance._hold(record, events)
            audit.log_event(
                AuditEvent(
                    record.ended_at,
                    audit.STORE_UNAVAILABLE,
                    record.workflow,
                    record.run_id,
                    data={"error": _describe(exc), "held": True},
                ),
                self.owner,
            )
            return
        if governance._backlog:
            held = governance._take_backlog()
            for index, (row, row_events) in enumerate(held):
                try:
                    yield (_STORE, "record_run", (row, row_events), _NO_KWARGS)
                except Exception:
                    for item in held[index:]:
                        governance._hold(*item)
                    return


def _as_trigger_event(found: Any, now: dt.datetime) -> TriggerEvent:
    if isinstance(found, TriggerEvent):
        return found
    if isinstance(found, str):
        return TriggerEvent(_new_id(), found, now)
    if isinstance(found, Mapping):
        data = dict(found)
        unknown = set(data) - {"id", "type", "received_at", "payload_ref"}
        if unknown or "type" not in data:
            raise ValueError(
                "a trigger mapping has 'type' and may have 'id', 'received_at' and "
                f"'payload_ref'; got {sorted(data)}"
            )
        received = data.get("received_at", now)
        if isinstance(received, str):
            received = dt.datetime.fromisoformat(received)
        return TriggerEvent(
            str(data.get("id") or _new_id()),
            str(data["type"]),
            received,
            data.get("payload_ref"),
        )
    raise TypeError(
        f"a trigger is a TriggerEvent, an event type or a mapping, not {type(found).__name__}"
    )
