"""The active run: what a governed function can ask for and record while it works."""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import hashlib
import inspect
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from opentelemetry import context as otel_context

from .exceptions import NoActiveRun, UsageError
from .records import SourceRead, TriggerEvent
from .sources import approve_read, complete_read
from .workflow import Workflow

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from .exceptions import PolicyViolation
    from .outputs import OutputIssue
    from .telemetry import Telemetry

__all__ = [
    "ExceptionRecord",
    "ModelCall",
    "Run",
    "current_run",
    "source",
    "with_current_context",
]

P = ParamSpec("P")
R = TypeVar("R")

_CURRENT: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "ada_governance_current_run", default=None
)


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One model call made inside a run.

    Attributes:
        model: The model's name (``"gpt-4o-mini"``).
        provider: Who serves it (``"openai"``), if known.
        input_tokens: Input tokens, if known.
        output_tokens: Output tokens, if known.
        cost: Cost in USD, if known.
        at: When it was recorded.
    """

    model: str
    provider: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class ExceptionRecord:
    """What the exception path's handler and fallback are given about a failure.

    Attributes:
        workflow: The workflow's name.
        version: Its version.
        run_id: The failed run.
        owner: The workflow's business owner, if declared.
        route_to: Who takes the workflow's exceptions, if declared.
        error_type: The exception's class name.
        error: The exception itself.
        trigger: The event that started the run.
        occurred_at: When the failure was caught.
    """

    workflow: str
    version: str
    run_id: str
    owner: str | None
    route_to: str | None
    error_type: str
    error: BaseException
    trigger: TriggerEvent
    occurred_at: dt.datetime

    def __str__(self) -> str:
        return f"{self.workflow} run {self.run_id} failed with {self.error_type}: {self.error}"


def _check_count(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise UsageError(f"{name} must be a whole number of tokens, 0 or more; got {value!r}")


class Run:
    """One governed run of a workflow.

    Get the active one with `current_run()`. A run records what the governed code did
    (model calls, outcomes, annotations); governance writes it to the ledger when it ends.

    Attributes:
        id: The run's id.
        workflow: The workflow's declaration.
        trigger: The event that started the run.
        started_at: When governance opened the run.
        parent: The run this one is nested in, if any.
        ungoverned: Whether the run went ahead while the store was unavailable.
        attempt: Which attempt at the body this is (1, then 2... when retried).
        previous_issues: The issues the previous attempt's output was rejected for, so
            the body can ask the model again with them; empty on the first attempt.
    """

    __slots__ = (
        "_annotations",
        "_governance",
        "_kept_events",
        "_model_calls",
        "_otel_context",
        "_outcome_ref",
        "_outcomes",
        "_pending",
        "_personal",
        "_reads",
        "_reservations",
        "_side_effects",
        "_span",
        "_t0",
        "_telemetry",
        "_violations",
        "attempt",
        "fallback",
        "id",
        "parent",
        "previous_issues",
        "started_at",
        "trigger",
        "ungoverned",
        "workflow",
    )

    def __init__(
        self,
        id: str,
        workflow: Workflow,
        trigger: TriggerEvent,
        started_at: dt.datetime,
        parent: Run | None = None,
    ) -> None:
        self.id = id
        self.workflow = workflow
        self.trigger = trigger
        self.started_at = started_at
        self.parent = parent
        self.ungoverned = False
        self.fallback: Any = None
        self._outcomes: dict[str, float] = {}
        self._outcome_ref: str | None = None
        self._annotations: dict[str, Any] = {}
        self._model_calls: list[ModelCall] = []
        self._span: Span | None = None
        self._otel_context: otel_context.Context | None = None
        self._t0 = time.perf_counter()
        self._telemetry: Telemetry | None = None
        self._personal: set[str] = set()
        self._reads: list[SourceRead] = []
        self._reservations: list[tuple[str, Any]] = []
        self._violations: list[PolicyViolation] = []
        self._side_effects = 0
        self._pending: list[str] = []
        self._governance: Any = None
        self._kept_events: list[Any] = []
        self.attempt = 1
        self.previous_issues: tuple[OutputIssue, ...] = ()

    def __repr__(self) -> str:
        return f"<Run {self.id} of {self.workflow.name} {self.workflow.version}>"

    def record_outcome(self, ref: str | None = None, **values: float) -> None:
        """Record the run's outcome against the system of record.

        Args:
            ref: The outcome's reference in the system of record (a CRM activity id).
            **values: Named outcome values, such as ``meeting_booked=1``.

        Raises:
            UsageError: A value is not a finite number.
        """
        for name, value in values.items():
            if isinstance(value, bool):
                value = int(value)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UsageError(f"outcome {name!r} must be a finite number; got {value!r}")
        if ref is not None:
            self._outcome_ref = str(ref)
        self._outcomes.update({name: float(value) for name, value in values.items()})

    def record_model_call(
        self,
        model: str,
        provider: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cost: float | None = None,
        *,
        at: dt.datetime | None = None,
        duration: float | None = None,
        prompt: Any = None,
        completion: Any = None,
    ) -> ModelCall:
        """Record a model call made for this run, so budgets and reports can count it.

        The call becomes a ``chat {model}`` span under the run's span, and its tokens
        feed ``gen_ai.client.token.usage``.

        Args:
            model: The model's name.
            provider: Who serves it.
            input_tokens: Input tokens, if known.
            output_tokens: Output tokens, if known.
            cost: Cost in USD, if known.
            at: When the call finished; now if not given.
            duration: How long the call took, in seconds, so its span covers it.
            prompt: The prompt, recorded on the span only when governance captures
                content (off by default).
            completion: The completion, likewise.

        Returns:
            The recorded call.

        Raises:
            UsageError: A count is negative or not whole, or the cost is negative.
        """
        if self._annotations.get("ada.mode") == "baseline":
            raise UsageError(
                "a baseline run measures the process as it is, without AI: it records no "
                "model calls"
            )
        _check_count("input_tokens", input_tokens)
        _check_count("output_tokens", output_tokens)
        if cost is not None and (not isinstance(cost, (int, float)) or not cost >= 0):
            raise UsageError(f"cost must be a number of USD, 0 or more; got {cost!r}")
        call = ModelCall(
            model,
            provider,
            input_tokens,
            output_tokens,
            cost,
            at or dt.datetime.now(dt.timezone.utc),
        )
        self._model_calls.append(call)
        if self._telemetry is not None:
            self._telemetry.model_call(self, call, duration, prompt, completion)
        return call

    def source(self, name: str, loader: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Read approved source data through the run, leaving its provenance.

        Args:
            name: The source's declared name.
            loader: A function that fetches the data (for an async loader use `asource`).
            *args: Passed to the loader.
            **kwargs: Passed to the loader.

        Returns:
            What the loader returned (its ``data`` when it returns `SourceData`).

        Raises:
            UnapprovedSourceError: The workflow does not declare the source.
            StaleSourceError: The data is older than the source allows.
        """
        declared = approve_read(self, name)
        span = self._telemetry.start_source(self, declared) if self._telemetry else None
        try:
            result = loader(*args, **kwargs)
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise UsageError(f"the loader for {name!r} is async: use `await run.asource(...)`")
            data = complete_read(self, declared, result, self._now())
        except BaseException as error:
            if span is not None and self._telemetry is not None:
                self._telemetry.end_source(span, self, None, error)
            raise
        if span is not None and self._telemetry is not None:
            self._telemetry.end_source(span, self, self._reads[-1], None)
        return data

    async def asource(
        self, name: str, loader: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Any:
        """Async twin of `source`: the loader may be async or sync."""
        declared = approve_read(self, name)
        span = self._telemetry.start_source(self, declared) if self._telemetry else None
        try:
            result = loader(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            data = complete_read(self, declared, result, self._now())
        except BaseException as error:
            if span is not None and self._telemetry is not None:
                self._telemetry.end_source(span, self, None, error)
            raise
        if span is not None and self._telemetry is not None:
            self._telemetry.end_source(span, self, self._reads[-1], None)
        return data

    def action(
        self,
        name: str,
        fn: Callable[..., Any],
        payload: Any,
        *,
        requester: str | None = None,
    ) -> Any:
        """Do an action of this run's workflow, within its risk boundary.

        An ``autonomous`` action runs now, ``fn(payload)``, and its result is returned.
        A ``requires_approval`` action does not run: a review is queued and a
        `PendingAction` is returned; it runs once, after approval, in whichever process
        has ``fn`` registered (see `governed_action`). A ``manual_only`` or undeclared
        action is refused.

        Args:
            name: The declared action.
            fn: The code that does it (sync; use `aaction` for async code).
            payload: What it is done with: JSON data or a pydantic model, since it may
                run in another process.
            requester: Who asks for it; the run by default.

        Raises:
            ActionForbidden: The action is ``manual_only`` or not declared.
            InvalidPayload: The payload fails the action's input schema.
            CheckFailed: One of the action's pre-checks refused it.
        """
        from ._actions import request
        from ._engine import drive
        from .governance import get_governance

        governance = self._governance or get_governance()
        return drive(
            request(governance, self, name, fn, payload, call="payload", requester=requester),
            governance.store,
        )

    async def aaction(
        self,
        name: str,
        fn: Callable[..., Any],
        payload: Any,
        *,
        requester: str | None = None,
    ) -> Any:
        """Async twin of `action`: ``fn`` may be async."""
        from ._actions import request
        from ._engine import adrive
        from .governance import get_governance

        governance = self._governance or get_governance()
        return await adrive(
            request(governance, self, name, fn, payload, call="payload", requester=requester),
            governance.store,
        )

    def _now(self) -> dt.datetime:
        governance = self._governance
        return (
            governance.clock.now() if governance is not None else dt.datetime.now(dt.timezone.utc)
        )

    @property
    def pending_reviews(self) -> tuple[str, ...]:
        """The ids of the reviews this run has queued."""
        return tuple(self._pending)

    @property
    def reads(self) -> tuple[SourceRead, ...]:
        """The provenance of every source read so far."""
        return tuple(self._reads)

    def annotate(self, **attributes: Any) -> None:
        """Attach facts to the run's ledger row (JSON-ready values)."""
        self._annotations.update(attributes)

    def _redact(self, text: str) -> str:
        """Replace values read from personal sources with their hash in captured text."""
        # Longest first, so a value inside another ('Jane' in 'Jane Doe') cannot leave
        # the rest of the longer one in the text.
        for value in sorted(self._personal, key=len, reverse=True):
            if not value:
                continue
            # Text may hold the value as written, or escaped inside JSON (a newline in an
            # address becomes \n): both forms are replaced.
            for form in {
                value,
                json.dumps(value)[1:-1],
                json.dumps(value, ensure_ascii=False)[1:-1],
            }:
                if form in text:
                    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
                    text = text.replace(form, f"[personal:{digest}]")
        return text

    @property
    def outcomes(self) -> dict[str, float]:
        """The outcome values recorded so far (a copy)."""
        return dict(self._outcomes)

    @property
    def outcome_ref(self) -> str | None:
        """The outcome's reference in the system of record, if recorded."""
        return self._outcome_ref

    @property
    def annotations(self) -> dict[str, Any]:
        """The annotations recorded so far (a copy)."""
        return dict(self._annotations)

    @property
    def model_calls(self) -> tuple[ModelCall, ...]:
        """The model calls recorded so far."""
        return tuple(self._model_calls)


def _activate(run: Run) -> tuple[contextvars.Token[Run | None], object]:
    """Make ``run`` current, and its span the current span; undo with `_deactivate`.

    Called and undone within one synchronous step: never held across a ``yield``.
    """
    token = _CURRENT.set(run)
    span_context = run._otel_context
    return token, (otel_context.attach(span_context) if span_context is not None else None)


def _deactivate(tokens: tuple[contextvars.Token[Run | None], object]) -> None:
    token, otel_token = tokens
    if otel_token is not None:
        otel_context.detach(otel_token)  # type: ignore[arg-type]
    _CURRENT.reset(token)


def current_run() -> Run:
    """Return the run active in this context.

    Raises:
        NoActiveRun: No governed run is active here. Threads do not inherit the run:
            wrap the function you submit with `with_current_context`.
    """
    run = _CURRENT.get()
    if run is None:
        raise NoActiveRun(
            "current_run() was called outside a governed run: call it inside a function "
            "decorated with @governed_workflow or a `with governed_run(...)` block; in a "
            "thread pool, submit with_current_context(fn)"
        )
    return run


def with_current_context(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``fn`` so it runs in a copy of the caller's context, active run included.

    Threads and pools start with an empty context; submit the wrapped function instead::

        executor.submit(with_current_context(draft), lead)

    Each call runs in its own copy, so the wrapper may be called from many threads at
    once. No executor is patched.
    """
    context = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.copy().run(fn, *args, **kwargs)

    return run_in_context


def source(name: str) -> Callable[[Callable[P, R]], Callable[P, Any]]:
    """Make a loader function read the approved source ``name`` through the current run.

    ``@source("crm.lead")`` on ``def get_lead(lead_id)`` means every call of
    ``get_lead`` inside a governed run is checked against the workflow's approved sources
    and leaves its provenance, as ``current_run().source("crm.lead", get_lead, ...)``
    would; async loaders become awaitable the same way. Outside a run it raises
    `NoActiveRun`: approved data is read by governed code only.
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, Any]:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def read_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await current_run().asource(name, fn, *args, **kwargs)

            return read_async

        @functools.wraps(fn)
        def read(*args: P.args, **kwargs: P.kwargs) -> Any:
            return current_run().source(name, fn, *args, **kwargs)

        return read

    return decorate
