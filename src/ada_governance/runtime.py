"""The governed runtime: decorators and context managers that enforce a declaration.

Every kind of function is driven through one engine (`_engine`), so sync and async code,
functions and streams obey the same rules.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any, ParamSpec, TypeVar, cast

from ._engine import NO_FALLBACK, Engine, adrive, drive
from ._ops import RetryOutput
from .exceptions import ActionForbidden, UsageError
from .governance import Governance, get_governance
from .outputs import OnFail
from .records import TriggerEvent
from .run import _CURRENT, Run, _activate, _deactivate
from .workflow import Workflow

__all__ = ["GovernedRun", "governed_action", "governed_run", "governed_workflow"]

P = ParamSpec("P")
R = TypeVar("R")


# --- the body ------------------------------------------------------------------------------


def _call(
    engine: Engine,
    governance: Governance,
    run: Run,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Run the body (again, if the workflow retries) and check what it returns."""
    if not engine.retries:
        result = fn(*args, **kwargs)
        if engine.finishing or run._violations:
            return drive(engine.finish(run, result), governance.store)
        return result
    try:
        for attempt in engine.retrying(run, governance, asynchronous=False):
            with attempt:
                result = drive(engine.finish(run, fn(*args, **kwargs)), governance.store)
    except RetryOutput as rejected:
        raise engine.rejected(run, rejected.issues) from None
    return result


async def _acall(
    engine: Engine,
    governance: Governance,
    run: Run,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Async twin of `_call`."""
    if not engine.retries:
        result = await fn(*args, **kwargs)
        if engine.finishing or run._violations:
            return await adrive(engine.finish(run, result), governance.store)
        return result
    try:
        async for attempt in engine.retrying(run, governance, asynchronous=True):
            with attempt:
                result = await adrive(
                    engine.finish(run, await fn(*args, **kwargs)), governance.store
                )
    except RetryOutput as rejected:
        raise engine.rejected(run, rejected.issues) from None
    return result


def _stream_output(items: list[Any]) -> Any:
    """What a stream produced, for its standard: the text if it streamed text."""
    if items and all(isinstance(item, str) for item in items):
        return "".join(items)
    return items


def _finish_stream(engine: Engine, run: Run, items: list[Any] | None) -> Any:
    """The stage that checks a finished stream (its collected items, if it keeps them)."""
    output = _stream_output(items) if items is not None else None
    return engine.finish(run, output, check_output=items is not None)


# --- decorators ----------------------------------------------------------------------------


def _wrap_function(fn: Callable[..., Any], engine: Engine) -> Callable[..., Any]:
    @functools.wraps(fn)
    def governed(*args: Any, **kwargs: Any) -> Any:
        governance = engine.governance or get_governance()
        run = drive(engine.open(governance, args, kwargs), governance.store)
        token = _activate(run)
        try:
            result = _call(engine, governance, run, fn, args, kwargs)
        except BaseException as error:
            fallback = drive(engine.fail(governance, run, error), governance.store)
            if fallback is NO_FALLBACK:
                raise
            return fallback
        finally:
            _deactivate(token)
        drive(engine.succeed(governance, run, result), governance.store)
        return result

    return governed


def _wrap_coroutine(fn: Callable[..., Any], engine: Engine) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def governed(*args: Any, **kwargs: Any) -> Any:
        governance = engine.governance or get_governance()
        run = await adrive(engine.open(governance, args, kwargs), governance.store)
        token = _activate(run)
        try:
            result = await _acall(engine, governance, run, fn, args, kwargs)
        except BaseException as error:
            fallback = await adrive(engine.fail(governance, run, error), governance.store)
            if fallback is NO_FALLBACK:
                raise
            return fallback
        finally:
            _deactivate(token)
        await adrive(engine.succeed(governance, run, result), governance.store)
        return result

    return governed


def _wrap_generator(fn: Callable[..., Any], engine: Engine) -> Callable[..., Any]:
    # The run is current only while the body runs between yields, and is set and reset
    # within one step each time: never across a yield, so no context leaks to the
    # consumer or is reset from another context.
    @functools.wraps(fn)
    def governed(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        governance = engine.governance or get_governance()
        run = drive(engine.open(governance, args, kwargs), governance.store)
        inner = fn(*args, **kwargs)
        # A stream with an output standard is checked when it ends, on what it yielded.
        items: list[Any] | None = [] if engine.standard is not None else None
        answer: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                token = _activate(run)
                try:
                    item = inner.throw(thrown) if thrown is not None else inner.send(answer)
                finally:
                    _deactivate(token)
                if items is not None:
                    items.append(item)
                thrown = None
                try:
                    answer = yield item
                except GeneratorExit:
                    raise
                except BaseException as error:
                    thrown, answer = error, None
        except StopIteration as stop:
            if engine.finishing or run._violations:
                try:
                    drive(_finish_stream(engine, run, items), governance.store)
                except Exception as error:
                    token = _activate(run)
                    try:
                        drive(engine.fail(governance, run, error, fallback=False), governance.store)
                    finally:
                        _deactivate(token)
                    raise
            drive(engine.succeed(governance, run, stop.value), governance.store)
            return stop.value
        except GeneratorExit as closed:
            # Closing ends the run: the inner generator's cleanup, and the exception
            # path's handler, see the run as current, as a function's would.
            token = _activate(run)
            try:
                try:
                    inner.close()
                except BaseException as error:
                    drive(engine.fail(governance, run, error, fallback=False), governance.store)
                    raise
                drive(engine.fail(governance, run, closed, fallback=False), governance.store)
            finally:
                _deactivate(token)
            raise
        except BaseException as error:
            token = _activate(run)
            try:
                drive(engine.fail(governance, run, error, fallback=False), governance.store)
            finally:
                _deactivate(token)
            raise

    return governed


def _wrap_async_generator(fn: Callable[..., Any], engine: Engine) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def governed(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        governance = engine.governance or get_governance()
        run = await adrive(engine.open(governance, args, kwargs), governance.store)
        inner = fn(*args, **kwargs)
        items: list[Any] | None = [] if engine.standard is not None else None
        answer: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                token = _activate(run)
                try:
                    if thrown is not None:
                        item = await inner.athrow(thrown)
                    else:
                        item = await inner.asend(answer)
                finally:
                    _deactivate(token)
                if items is not None:
                    items.append(item)
                thrown = None
                try:
                    answer = yield item
                except GeneratorExit:
                    raise
                except BaseException as error:
                    thrown, answer = error, None
        except StopAsyncIteration:
            if engine.finishing or run._violations:
                try:
                    await adrive(_finish_stream(engine, run, items), governance.store)
                except Exception as error:
                    token = _activate(run)
                    try:
                        await adrive(
                            engine.fail(governance, run, error, fallback=False), governance.store
                        )
                    finally:
                        _deactivate(token)
                    raise
            await adrive(engine.succeed(governance, run), governance.store)
        except GeneratorExit as closed:
            token = _activate(run)
            try:
                try:
                    await inner.aclose()
                except BaseException as error:
                    await adrive(
                        engine.fail(governance, run, error, fallback=False), governance.store
                    )
                    raise
                await adrive(engine.fail(governance, run, closed, fallback=False), governance.store)
            finally:
                _deactivate(token)
            raise
        except BaseException as error:
            token = _activate(run)
            try:
                await adrive(engine.fail(governance, run, error, fallback=False), governance.store)
            finally:
                _deactivate(token)
            raise

    return governed


def _wrap(fn: Callable[..., Any], engine: Engine) -> Callable[..., Any]:
    streams = inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn)
    held = (OnFail.RETRY, OnFail.REVIEW)
    if streams and engine.standard is not None and engine.standard.on_fail in held:
        raise UsageError(
            f"{fn.__qualname__} streams its output, which cannot be taken back to retry or "
            f"to hold for review: workflow {engine.workflow.name!r} says on_fail "
            f"{engine.standard.on_fail.value!r}; choose 'raise' or 'exception_path' for a "
            "streaming workflow, or return the whole output"
        )
    if inspect.isasyncgenfunction(fn):
        return _wrap_async_generator(fn, engine)
    if inspect.iscoroutinefunction(fn):
        return _wrap_coroutine(fn, engine)
    if inspect.isgeneratorfunction(fn):
        return _wrap_generator(fn, engine)
    return _wrap_function(fn, engine)


def governed_workflow(
    workflow: Workflow,
    *,
    governance: Governance | None = None,
    trigger_from: str | Callable[..., Any] | None = None,
    baseline: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Govern every call of a function by a declared workflow.

    Works on plain functions, coroutine functions, generator functions, async generator
    functions, methods, staticmethods and classmethods, keeping their signature.

    Each call opens a run: its trigger event is resolved, the workflow's stored stage is
    read from the store (fail closed if it cannot be), and a refused run raises a
    `RunRefused` error and is recorded. The body then runs with the run available from
    `current_run()`. A failure is recorded, routed down the exception path and
    re-raised (or replaced by a declared fallback). Every run leaves one ledger row.
    For generators, the run opens on the first ``next()`` and ends when the stream is
    exhausted, raises or is closed.

    Args:
        workflow: The declaration to enforce.
        governance: The governance to use; the process-wide one (`configure`) if not
            given, looked up at call time.
        trigger_from: Where each call's trigger event comes from: the name of a
            parameter holding a `TriggerEvent` (or a mapping, or an event type), or a
            callable given the call's arguments that returns one. Without it, an
            argument that is a `TriggerEvent` is used; else the enclosing run's event;
            else one is made at call time with the workflow's only event type.
        baseline: Measure the current process instead (the seed's "measure the
            baseline before changing the process"): runs are recorded in the same ledger,
            timed from trigger to outcome, marked ``{"ada.mode": "baseline"}``, and kept
            out of stop rules, budgets and the AI figures; they record no model calls.
            A draft workflow may be measured without development mode.

    Returns:
        A decorator.
    """

    def decorate(fn: Any) -> Any:
        if isinstance(fn, (staticmethod, classmethod)):
            inner = fn.__func__
            engine = Engine(workflow, governance, trigger_from, inner, baseline)
            return type(fn)(_wrap(inner, engine))
        if not callable(fn):
            raise UsageError(f"@governed_workflow decorates a function, not {fn!r}")
        return _wrap(fn, Engine(workflow, governance, trigger_from, fn, baseline))

    # Validate the declaration and arguments now, not at the first call.
    Engine(workflow, governance, None, None)
    if trigger_from is not None and not (isinstance(trigger_from, str) or callable(trigger_from)):
        raise UsageError("trigger_from is a parameter name or a callable")
    return decorate


class GovernedRun:
    """A governed run as a context manager, for ``with`` and ``async with``.

    Made by `governed_run`. Entering opens the run (or raises a `RunRefused`);
    leaving records it. An exception leaving the block is recorded and routed down the
    exception path; if the path declares a fallback, the exception is suppressed and the
    fallback's value is left in ``run.fallback``.
    """

    def __init__(
        self,
        workflow: Workflow,
        trigger: TriggerEvent | str | None,
        governance: Governance | None,
        baseline: bool = False,
    ) -> None:
        self._engine = Engine(workflow, governance, None, None, baseline)
        self._trigger = trigger
        self._governance = governance
        self._run: Run | None = None
        self._token: Any = None
        self._active: Governance | None = None

    def _begin(self) -> Governance:
        if self._active is not None:
            raise UsageError("a governed_run(...) block can be entered once; make a new one")
        self._active = self._governance or get_governance()
        return self._active

    def __enter__(self) -> Run:
        governance = self._begin()
        self._run = drive(self._engine.open(governance, (), {}, self._trigger), governance.store)
        self._token = _activate(self._run)
        return self._run

    def __exit__(self, exc_type: Any, error: BaseException | None, traceback: Any) -> bool:
        governance = cast(Governance, self._active)
        run = cast(Run, self._run)
        engine = self._engine
        try:
            if error is None:
                try:
                    if engine.finishing or run._violations:
                        drive(engine.finish(run, None, check_output=False), governance.store)
                except Exception as problem:
                    # The block ended but broke the declaration (an unapproved read, a
                    # required source not read): the run fails with that error.
                    if (
                        drive(engine.fail(governance, run, problem), governance.store)
                        is NO_FALLBACK
                    ):
                        raise
                    return False
                drive(engine.succeed(governance, run), governance.store)
                return False
            fallback = drive(engine.fail(governance, run, error), governance.store)
        finally:
            _deactivate(self._token)
        if fallback is NO_FALLBACK:
            return False
        run.fallback = fallback
        return True

    async def __aenter__(self) -> Run:
        governance = self._begin()
        self._run = await adrive(
            self._engine.open(governance, (), {}, self._trigger), governance.store
        )
        self._token = _activate(self._run)
        return self._run

    async def __aexit__(self, exc_type: Any, error: BaseException | None, traceback: Any) -> bool:
        governance = cast(Governance, self._active)
        run = cast(Run, self._run)
        engine = self._engine
        try:
            if error is None:
                try:
                    if engine.finishing or run._violations:
                        await adrive(engine.finish(run, None, check_output=False), governance.store)
                except Exception as problem:
                    failed = await adrive(engine.fail(governance, run, problem), governance.store)
                    if failed is NO_FALLBACK:
                        raise
                    return False
                await adrive(engine.succeed(governance, run), governance.store)
                return False
            fallback = await adrive(engine.fail(governance, run, error), governance.store)
        finally:
            _deactivate(self._token)
        if fallback is NO_FALLBACK:
            return False
        run.fallback = fallback
        return True


def governed_run(
    workflow: Workflow,
    trigger: TriggerEvent | str | None = None,
    *,
    governance: Governance | None = None,
    baseline: bool = False,
) -> GovernedRun:
    """Govern a block of code as one run of ``workflow``: ``with`` or ``async with``.

    Args:
        workflow: The declaration to enforce.
        trigger: The event that started the run, or just its type; if not given, the
            enclosing run's event, else one made now with the workflow's only event type.
        governance: The governance to use; the process-wide one if not given.
        baseline: Measure the current process, as for `governed_workflow`.

    Returns:
        A context manager whose value is the `Run`.
    """
    return GovernedRun(workflow, trigger, governance, baseline)


def governed_action(
    workflow: Workflow, name: str, *, governance: Governance | None = None
) -> Callable[[Callable[P, R]], Callable[P, Any]]:
    """Make a function one of ``workflow``'s actions, done within its risk boundary.

    Called inside a run of ``workflow``, the decorated function does what the action's
    risk boundary says: an ``autonomous`` action runs and returns its result; a
    ``requires_approval`` one returns a `PendingAction` and runs once, after approval;
    a ``manual_only`` one is refused. Its arguments are the payload, so they must be
    JSON data (or pydantic models); a reviewer may edit them.

    Decorating also registers the function as the code behind the action in this
    process, so approvals given here run it at once, and a worker that imports the
    module (``ada-governance worker --import app.actions``) runs approved ones.

    Args:
        workflow: The workflow that declares the action.
        name: The declared action's name.
        governance: The governance to use; the process-wide one if not given.

    Raises:
        UsageError: The workflow does not declare the action, or the function takes
            positional-only or variadic positional arguments (which a payload cannot
            carry).
    """
    from ._actions import register_action, request

    if workflow.action(name) is None:
        declared = ", ".join(a.name for a in workflow.actions) or "none"
        raise UsageError(
            f"workflow {workflow.name!r} declares no action {name!r} (it declares {declared})"
        )

    def decorate(fn: Callable[P, R]) -> Callable[P, Any]:
        signature = inspect.signature(fn)
        for parameter in signature.parameters.values():
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.VAR_POSITIONAL):
                raise UsageError(
                    f"{fn.__qualname__} takes {parameter.name} positionally only; an "
                    "action's payload is passed by keyword, so make it a normal parameter"
                )
        register_action(workflow.name, name, fn, "kwargs")

        def prepare(args: Any, kwargs: Any) -> tuple[Run, Governance, dict[str, Any]]:
            run = _CURRENT.get()
            if run is None or run.workflow.name != workflow.name:
                where = f"a run of {run.workflow.name!r}" if run is not None else "no run"
                raise ActionForbidden(
                    f"action {name!r} of {workflow.name!r} was called in {where}; it may "
                    f"only be done inside a governed run of {workflow.name!r}",
                    workflow=workflow.name,
                    run_id=run.id if run is not None else None,
                    action=name,
                )
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            chosen = governance or run._governance or get_governance()
            return run, chosen, dict(bound.arguments)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def governed_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                run, chosen, payload = prepare(args, kwargs)
                steps = request(chosen, run, name, fn, payload, call="kwargs", requester=None)
                return await adrive(steps, chosen.store)

            return governed_async

        @functools.wraps(fn)
        def governed_sync(*args: P.args, **kwargs: P.kwargs) -> Any:
            run, chosen, payload = prepare(args, kwargs)
            steps = request(chosen, run, name, fn, payload, call="kwargs", requester=None)
            return drive(steps, chosen.store)

        return governed_sync

    return decorate
