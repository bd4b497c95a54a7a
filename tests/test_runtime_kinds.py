"""The governed runtime on every kind of callable: functions, coroutines, generators and
async generators, plus methods, partials, nesting, concurrency, the exception path,
`governed_run` and triggers.

Async code is driven with ``asyncio.run`` from sync tests (no pytest-asyncio); every loop
collects what reaches its exception handler, and the test fails if anything does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import gc
import inspect
import logging
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from ada_governance import (
    AuditEvent,
    ExceptionPath,
    ExceptionRecord,
    Governance,
    NoActiveRun,
    Run,
    RunRecord,
    RunStatus,
    TriggerEvent,
    TriggerRefused,
    UsageError,
    Workflow,
    WorkflowNotRunnable,
    WorkflowPaused,
    WorkflowRetired,
    current_run,
    governed_run,
    governed_workflow,
    with_current_context,
)
from ada_governance.testing import memory_governance

T = TypeVar("T")

LEAD = Workflow(name="speed-to-lead", trigger={"event": "lead"}, owner={"name": "Head of Sales"})
"""A draft with one event type, so a call without a trigger gets one made for it."""

KINDS = [
    pytest.param("function", id="function"),
    pytest.param("coroutine", id="coroutine"),
    pytest.param("generator", id="generator"),
    pytest.param("async_generator", id="async_generator"),
]
RETURNING_KINDS = [
    pytest.param("function", id="function"),
    pytest.param("coroutine", id="coroutine"),
]
STREAM_KINDS = [
    pytest.param("generator", id="generator"),
    pytest.param("async_generator", id="async_generator"),
]
ASYNC_KINDS = [
    pytest.param("coroutine", id="coroutine"),
    pytest.param("async_generator", id="async_generator"),
]


class Boom(Exception):
    """The error governed bodies raise in these tests."""


# --- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def gov() -> Governance:
    """A governance on a fresh in-memory store, in development mode."""
    return memory_governance()


@pytest.fixture(autouse=True)
def no_context_errors(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[Any]]:
    """Fail the test if a context-token error is logged or an exception escapes a finalizer.

    Warnings already fail the test (``filterwarnings = error``); a warning or error raised
    in a finalizer (generator closed by the garbage collector) goes to
    ``sys.unraisablehook`` instead, so that is collected too.
    """
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    caplog.set_level(logging.DEBUG)
    yield unraisable
    gc.collect()
    assert unraisable == [], [(u.exc_type, u.exc_value, u.object) for u in unraisable]
    for record in caplog.records:
        text = record.getMessage()
        assert "Failed to detach context" not in text
        assert "was created in a different Context" not in text
        assert "Task exception was never retrieved" not in text


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` in a fresh loop; fail if the loop's exception handler hears anything."""
    heard: list[dict[str, Any]] = []

    async def wrapper() -> T:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: heard.append(ctx))
        return await main()

    try:
        return asyncio.run(wrapper())
    finally:
        assert heard == [], heard


def drive(awaitable: Awaitable[T]) -> T:
    """Drive an awaitable that only awaits ``asyncio.sleep(0)``, without an event loop.

    Used to let a BaseException such as KeyboardInterrupt leave a coroutine without it
    tearing down an event loop on its way out.
    """
    steps = awaitable.__await__()
    try:
        while True:
            steps.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def governed(
    kind: str,
    workflow: Workflow,
    gov: Governance,
    action: Callable[[], Any],
    **options: Any,
) -> Callable[..., Any]:
    """A governed callable of ``kind`` whose body returns (or yields once) ``action()``."""
    decorate = governed_workflow(workflow, governance=gov, **options)
    if kind == "function":

        def body(*args: Any) -> Any:
            return action()

    elif kind == "coroutine":

        async def body(*args: Any) -> Any:
            await asyncio.sleep(0)
            return action()

    elif kind == "generator":

        def body(*args: Any) -> Iterator[Any]:
            yield action()

    else:

        async def body(*args: Any) -> AsyncIterator[Any]:
            await asyncio.sleep(0)
            yield action()

    return decorate(body)


def consume(kind: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn`` to the end: its return value, or for streams the list of items."""
    if kind == "function":
        return fn(*args)
    if kind == "coroutine":
        return run_async(lambda: fn(*args))
    if kind == "generator":
        return list(fn(*args))

    async def drain() -> list[Any]:
        return [item async for item in fn(*args)]

    return run_async(drain)


def consume_without_loop(kind: str, fn: Callable[..., Any]) -> Any:
    """Call ``fn`` to the end without an event loop (async kinds are driven by hand)."""
    if kind == "function":
        return fn()
    if kind == "coroutine":
        return drive(fn())
    if kind == "generator":
        return list(fn())
    stream = fn()
    return drive(stream.__anext__())


def only_row(gov: Governance) -> RunRecord:
    """The single ledger row the test produced."""
    rows = gov.runs()
    assert len(rows) == 1, rows
    return rows[0]


def events(gov: Governance) -> list[str]:
    """The audit event names, in order, leaving out stage changes."""
    return [e.event for e in gov.audit_events() if e.event != "stage_changed"]


def audit_event(gov: Governance, name: str) -> AuditEvent:
    """The single audit event called ``name``."""
    found = gov.audit_events(event=name)
    assert len(found) == 1, found
    return found[0]


def assert_complete(row: RunRecord, workflow: Workflow, status: RunStatus) -> None:
    """The row has the status and every always-present field filled and consistent."""
    assert row.status is status
    assert row.run_id
    assert row.workflow == workflow.name
    assert row.version == workflow.version
    assert row.trigger_id
    assert row.trigger_type == "lead"
    for moment in (row.received_at, row.started_at, row.ended_at):
        assert moment.tzinfo is not None
        assert moment.utcoffset() is not None
    assert row.received_at <= row.started_at <= row.ended_at


def seen_in_finally(gov: Governance) -> tuple[str | None, int]:
    """What a generator's finally block sees: the current run's id, and how many rows exist.

    Cleanup runs inside its run, before the run's ledger row is written.
    """
    try:
        run_id: str | None = current_run().id
    except NoActiveRun:
        run_id = None
    return run_id, len(gov.runs())


def routed(name: str = "routed", **path: Any) -> Workflow:
    """A workflow like LEAD with an exception path routed to ops."""
    return Workflow(
        name=name,
        trigger={"event": "lead"},
        owner={"name": "Head of Sales"},
        exception_path=ExceptionPath(route_to="ops", **path),
    )


# --- success ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_success_returns_the_value_and_records_a_complete_row(kind: str, gov: Governance) -> None:
    """A body that returns leaves its value unchanged and one complete succeeded row."""
    value = object()
    seen: list[Run] = []

    def action() -> object:
        seen.append(current_run())
        return value

    result = consume(kind, governed(kind, LEAD, gov, action))

    if kind in ("generator", "async_generator"):
        assert len(result) == 1
        assert result[0] is value
    else:
        assert result is value
    row = only_row(gov)
    assert_complete(row, LEAD, RunStatus.SUCCEEDED)
    assert [run.id for run in seen] == [row.run_id]
    assert row.parent_run_id is None
    assert row.error_type is row.error_message is row.refusal_reason is None
    assert row.fallback_used is False
    assert events(gov) == []


@pytest.mark.parametrize("kind", KINDS)
def test_wrapper_keeps_the_kind_of_callable(kind: str, gov: Governance) -> None:
    """The governed callable is still a coroutine / generator / async generator function."""
    fn = governed(kind, LEAD, gov, lambda: None)
    assert inspect.iscoroutinefunction(fn) is (kind == "coroutine")
    assert inspect.isgeneratorfunction(fn) is (kind == "generator")
    assert inspect.isasyncgenfunction(fn) is (kind == "async_generator")


# --- failure ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "with_path",
    [pytest.param(False, id="no-exception-path"), pytest.param(True, id="exception-path")],
)
@pytest.mark.parametrize("kind", KINDS)
def test_failure_reraises_the_same_error_and_records_it(
    kind: str, with_path: bool, gov: Governance
) -> None:
    """The body's exception object is re-raised unchanged and recorded as failed."""
    workflow = routed(name="speed-to-lead") if with_path else LEAD
    error = Boom("the CRM said no")

    def action() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        consume(kind, governed(kind, workflow, gov, action))

    assert caught.value is error
    row = only_row(gov)
    assert_complete(row, workflow, RunStatus.FAILED)
    assert row.error_type == "Boom"
    assert row.error_message == "the CRM said no"
    assert row.fallback_used is False
    expected = ["run_failed", "exception_routed"] if with_path else ["run_failed"]
    assert events(gov) == expected
    failed = audit_event(gov, "run_failed")
    assert failed.run_id == row.run_id
    assert failed.data == {"error_type": "Boom", "message": "the CRM said no"}
    if with_path:
        assert audit_event(gov, "exception_routed").data == {
            "error_type": "Boom",
            "route_to": "ops",
        }


@pytest.mark.parametrize("kind", KINDS)
def test_keyboard_interrupt_is_cancelled_not_routed(kind: str, gov: Governance) -> None:
    """KeyboardInterrupt from the body records cancelled and skips the exception path."""
    handled: list[ExceptionRecord] = []
    workflow = routed(name="speed-to-lead", handler=handled.append)
    interrupt = KeyboardInterrupt()

    def action() -> None:
        raise interrupt

    with pytest.raises(KeyboardInterrupt) as caught:
        consume_without_loop(kind, governed(kind, workflow, gov, action))

    assert caught.value is interrupt
    row = only_row(gov)
    assert_complete(row, workflow, RunStatus.CANCELLED)
    assert row.error_type == "KeyboardInterrupt"
    assert handled == []
    assert "exception_routed" not in events(gov)
    assert "run_failed" not in events(gov)


# --- refusal ------------------------------------------------------------------------------

REFUSALS = [
    pytest.param("paused", True, WorkflowPaused, "paused", id="paused"),
    pytest.param("retired", True, WorkflowRetired, "retired", id="retired"),
    pytest.param(None, False, WorkflowNotRunnable, "draft", id="draft-outside-development"),
]


@pytest.mark.parametrize(("stage", "development", "refused_with", "reason"), REFUSALS)
@pytest.mark.parametrize("kind", KINDS)
def test_refusal_is_raised_before_the_body_and_recorded(
    kind: str,
    stage: str | None,
    development: bool,
    refused_with: type[Exception],
    reason: str,
) -> None:
    """A paused, retired or (outside development) draft workflow refuses; the body never runs."""
    gov = memory_governance(development=development)
    if stage is not None:
        gov.set_stage(LEAD, stage, actor="ops@example.com", reason="incident 42")
    executed: list[bool] = []

    with pytest.raises(refused_with) as caught:
        consume(kind, governed(kind, LEAD, gov, lambda: executed.append(True)))

    assert executed == []
    row = only_row(gov)
    assert_complete(row, LEAD, RunStatus.REFUSED)
    assert row.refusal_reason == reason
    assert caught.value.run_id == row.run_id  # type: ignore[attr-defined]
    assert caught.value.workflow == LEAD.name  # type: ignore[attr-defined]
    refused = audit_event(gov, "run_refused")
    assert refused.run_id == row.run_id
    assert refused.data["reason"] == row.refusal_reason
    if stage == "paused":
        assert "ops@example.com" in str(caught.value)
        assert "incident 42" in str(caught.value)


def test_generator_refusal_is_raised_at_the_first_next(gov: Governance) -> None:
    """Calling a governed generator function opens nothing; the first next() refuses."""
    gov.set_stage(LEAD, "paused", actor="ops", reason="kill switch")
    executed: list[bool] = []
    stream = governed("generator", LEAD, gov, lambda: executed.append(True))()
    assert gov.runs() == []
    with pytest.raises(WorkflowPaused):
        next(stream)
    assert executed == []
    assert only_row(gov).status is RunStatus.REFUSED


def test_async_generator_refusal_is_raised_at_the_first_anext(gov: Governance) -> None:
    """Calling a governed async generator function opens nothing; the first __anext__ refuses."""
    gov.set_stage(LEAD, "retired", actor="ops", reason="replaced")
    executed: list[bool] = []

    async def main() -> None:
        stream = governed("async_generator", LEAD, gov, lambda: executed.append(True))()
        assert gov.runs() == []
        with pytest.raises(WorkflowRetired):
            await stream.__anext__()

    run_async(main)
    assert executed == []
    assert only_row(gov).status is RunStatus.REFUSED


# --- early close of a sync generator -----------------------------------------------------


def _stop_by_break(make: Callable[[], Iterator[int]]) -> None:
    for item in make():
        assert item == 0
        break


def _stop_by_close(make: Callable[[], Iterator[int]]) -> None:
    stream = make()
    assert next(stream) == 0
    stream.close()


def _stop_by_garbage_collection(make: Callable[[], Iterator[int]]) -> None:
    stream = make()
    assert next(stream) == 0
    del stream
    gc.collect()


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(_stop_by_break, id="break"),
        pytest.param(_stop_by_close, id="close"),
        pytest.param(_stop_by_garbage_collection, id="garbage-collected"),
    ],
)
def test_generator_closed_early_is_cancelled_and_cleans_up(
    stop: Callable[[Callable[[], Iterator[int]]], None], gov: Governance
) -> None:
    """A sync stream stopped early records cancelled (GeneratorExit) and runs its finally."""
    cleaned: list[tuple[str | None, int]] = []

    @governed_workflow(LEAD, governance=gov)
    def numbers() -> Iterator[int]:
        try:
            yield from range(10)
        finally:
            cleaned.append(seen_in_finally(gov))

    stop(numbers)

    row = only_row(gov)
    assert cleaned == [(row.run_id, 0)]
    assert_complete(row, LEAD, RunStatus.CANCELLED)
    assert row.error_type == "GeneratorExit"
    assert events(gov) == []


# --- early close of an async generator ---------------------------------------------------


def _cleaning_stream(
    gov: Governance, cleaned: list[tuple[str | None, int]], started: asyncio.Event | None = None
) -> Callable[[], AsyncIterator[int]]:
    @governed_workflow(LEAD, governance=gov)
    async def numbers() -> AsyncIterator[int]:
        try:
            for number in range(10):
                await asyncio.sleep(0)
                yield number
                if started is not None:
                    started.set()
                    await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0)
            cleaned.append(seen_in_finally(gov))

    return numbers


def test_async_generator_break_then_aclose_is_cancelled(gov: Governance) -> None:
    """Breaking out of `async for` and awaiting aclose() records cancelled (GeneratorExit)."""
    cleaned: list[tuple[str | None, int]] = []

    async def main() -> None:
        stream = _cleaning_stream(gov, cleaned)()
        async for item in stream:
            assert item == 0
            break
        assert cleaned == []
        await stream.aclose()  # type: ignore[attr-defined]

    run_async(main)
    row = only_row(gov)
    assert cleaned == [(row.run_id, 0)]
    assert_complete(row, LEAD, RunStatus.CANCELLED)
    assert row.error_type == "GeneratorExit"


def test_async_generator_aclose_from_another_task_is_cancelled(gov: Governance) -> None:
    """aclose() awaited in a different task than the consumer's closes the run cleanly."""
    cleaned: list[tuple[str | None, int]] = []

    async def main() -> None:
        stream = _cleaning_stream(gov, cleaned)()

        async def first() -> int:
            return await stream.__anext__()  # type: ignore[attr-defined, no-any-return]

        async def close() -> None:
            await stream.aclose()  # type: ignore[attr-defined]

        assert await asyncio.create_task(first()) == 0
        await asyncio.create_task(close())

    run_async(main)
    row = only_row(gov)
    assert cleaned == [(row.run_id, 0)]
    assert_complete(row, LEAD, RunStatus.CANCELLED)
    assert row.error_type == "GeneratorExit"


def test_async_generator_cancelled_while_body_awaits(gov: Governance) -> None:
    """Cancelling the consumer while the stream's body awaits records CancelledError."""
    cleaned: list[tuple[str | None, int]] = []

    async def main() -> None:
        started = asyncio.Event()
        numbers = _cleaning_stream(gov, cleaned, started)

        async def consumer() -> None:
            async for _ in numbers():
                pass

        task = asyncio.create_task(consumer())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_async(main)
    row = only_row(gov)
    assert cleaned == [(row.run_id, 0)]
    assert_complete(row, LEAD, RunStatus.CANCELLED)
    assert row.error_type == "CancelledError"
    assert events(gov) == []


def test_async_generator_abandoned_after_break_is_closed_by_the_loop(gov: Governance) -> None:
    """A stream left after `break` without aclose() is closed by the loop and recorded."""
    cleaned: list[tuple[str | None, int]] = []

    async def main() -> None:
        async for item in _cleaning_stream(gov, cleaned)():
            assert item == 0
            break
        # The loop's finalizer hook schedules aclose() in a task of its own; let it run.
        for _ in range(20):
            if gov.runs():
                break
            await asyncio.sleep(0)

    run_async(main)
    row = only_row(gov)
    assert cleaned == [(row.run_id, 0)]
    assert row.status is RunStatus.CANCELLED
    assert row.error_type == "GeneratorExit"


# --- the current run ------------------------------------------------------------------------


def test_current_run_outside_a_run_raises() -> None:
    """current_run() with no governed run active raises NoActiveRun."""
    with pytest.raises(NoActiveRun, match="outside a governed run"):
        current_run()


def test_generator_run_is_not_current_in_the_consumer(gov: Governance) -> None:
    """Between iterations, the consumer's code does not see the stream's run."""
    inside: list[str] = []

    @governed_workflow(LEAD, governance=gov)
    def numbers() -> Iterator[int]:
        for number in range(3):
            inside.append(current_run().id)
            yield number

    for _ in numbers():
        with pytest.raises(NoActiveRun):
            current_run()

    row = only_row(gov)
    assert inside == [row.run_id] * 3


def test_generator_consumer_inside_a_run_sees_its_own_run(gov: Governance) -> None:
    """A governed consumer sees its own run between a nested stream's iterations."""
    other = Workflow(name="consumer", trigger={"event": "lead"})

    @governed_workflow(LEAD, governance=gov)
    def numbers() -> Iterator[str]:
        for _ in range(3):
            yield current_run().id

    @governed_workflow(other, governance=gov)
    def consumer() -> tuple[str, list[str], list[str]]:
        mine = current_run().id
        seen_by_stream, seen_between = [], []
        for stream_run in numbers():
            seen_by_stream.append(stream_run)
            seen_between.append(current_run().id)
        return mine, seen_by_stream, seen_between

    mine, by_stream, between = consumer()
    assert between == [mine] * 3
    assert len(set(by_stream)) == 1
    assert by_stream[0] != mine


def test_async_generator_run_is_not_current_in_the_consumer(gov: Governance) -> None:
    """Between async iterations, the consumer's code does not see the stream's run."""
    inside: list[str] = []

    @governed_workflow(LEAD, governance=gov)
    async def numbers() -> AsyncIterator[int]:
        for number in range(3):
            await asyncio.sleep(0)
            inside.append(current_run().id)
            yield number

    async def main() -> int:
        count = 0
        async for _ in numbers():
            with pytest.raises(NoActiveRun):
                current_run()
            count += 1
        return count

    assert run_async(main) == 3
    assert inside == [only_row(gov).run_id] * 3


# --- talking to a generator -------------------------------------------------------------------


def test_generator_send_values_reach_the_body(gov: Governance) -> None:
    """Values passed to send() arrive at the inner generator's yield."""
    received: list[Any] = []

    @governed_workflow(LEAD, governance=gov)
    def echo() -> Iterator[int]:
        total = 0
        while total < 5:
            got = yield total
            received.append(got)
            total += got

    stream = echo()
    assert next(stream) == 0
    assert stream.send(2) == 2
    with pytest.raises(StopIteration):
        stream.send(3)
    assert received == [2, 3]
    assert only_row(gov).status is RunStatus.SUCCEEDED


def test_async_generator_asend_values_reach_the_body(gov: Governance) -> None:
    """Values passed to asend() arrive at the inner async generator's yield."""
    received: list[Any] = []

    @governed_workflow(LEAD, governance=gov)
    async def echo() -> AsyncIterator[int]:
        total = 0
        while total < 5:
            got = yield total
            received.append(got)
            total += got

    async def main() -> None:
        stream = echo()
        assert await stream.__anext__() == 0  # type: ignore[attr-defined]
        assert await stream.asend(2) == 2  # type: ignore[attr-defined]
        with pytest.raises(StopAsyncIteration):
            await stream.asend(3)  # type: ignore[attr-defined]

    run_async(main)
    assert received == [2, 3]
    assert only_row(gov).status is RunStatus.SUCCEEDED


def test_generator_throw_reaches_the_body_which_may_handle_it(gov: Governance) -> None:
    """gen.throw() delivers the exception to the inner generator, which can go on."""
    caught: list[BaseException] = []
    error = Boom("skip this one")

    @governed_workflow(LEAD, governance=gov)
    def numbers() -> Iterator[int]:
        try:
            yield 1
        except Boom as exc:
            caught.append(exc)
        yield 2

    stream = numbers()
    assert next(stream) == 1
    assert stream.throw(error) == 2
    assert list(stream) == []
    assert caught == [error]
    assert caught[0] is error
    assert only_row(gov).status is RunStatus.SUCCEEDED


def test_generator_throw_unhandled_records_failed(gov: Governance) -> None:
    """An exception thrown in and not handled by the body propagates and records failed."""
    cleaned: list[tuple[str | None, int]] = []
    error = Boom("stop")

    @governed_workflow(LEAD, governance=gov)
    def numbers() -> Iterator[int]:
        try:
            yield 1
            yield 2
        finally:
            cleaned.append(seen_in_finally(gov))

    stream = numbers()
    next(stream)
    with pytest.raises(Boom) as raised:
        stream.throw(error)
    assert raised.value is error
    row = only_row(gov)
    assert cleaned == [(row.run_id, 0)]
    assert row.status is RunStatus.FAILED
    assert row.error_type == "Boom"


def test_async_generator_athrow_reaches_the_body_and_unhandled_records_failed(
    gov: Governance,
) -> None:
    """athrow() delivers to the inner body: once handled, then unhandled records failed."""
    caught: list[BaseException] = []
    first, second = Boom("handled"), Boom("fatal")

    @governed_workflow(LEAD, governance=gov)
    async def numbers() -> AsyncIterator[int]:
        try:
            yield 1
        except Boom as exc:
            caught.append(exc)
        yield 2
        yield 3

    async def main() -> None:
        stream = numbers()
        assert await stream.__anext__() == 1  # type: ignore[attr-defined]
        assert await stream.athrow(first) == 2  # type: ignore[attr-defined]
        with pytest.raises(Boom) as raised:
            await stream.athrow(second)  # type: ignore[attr-defined]
        assert raised.value is second

    run_async(main)
    assert caught == [first]
    row = only_row(gov)
    assert row.status is RunStatus.FAILED
    assert row.error_message == "fatal"


def test_generator_return_value_is_kept_through_yield_from(gov: Governance) -> None:
    """The inner generator's return value reaches `yield from` (StopIteration.value)."""
    result = object()

    @governed_workflow(LEAD, governance=gov)
    def numbers() -> Iterator[int]:
        yield 1
        return result  # type: ignore[return-value]

    def outer() -> Iterator[int]:
        got = yield from numbers()
        assert got is result
        yield 99

    assert list(outer()) == [1, 99]
    stream = numbers()
    next(stream)
    with pytest.raises(StopIteration) as stopped:
        next(stream)
    assert stopped.value.value is result
    assert [row.status for row in gov.runs()] == [RunStatus.SUCCEEDED] * 2


# --- methods, partials, wraps -----------------------------------------------------------------


def _service_class(gov: Governance) -> type:
    decorate = governed_workflow(LEAD, governance=gov)

    class Service:
        @decorate
        def method(self, x: int) -> tuple[Any, int, str]:
            return self, x, current_run().id

        @decorate
        @staticmethod
        def static_above(x: int) -> tuple[Any, int, str]:
            return None, x, current_run().id

        @staticmethod
        @decorate
        def static_below(x: int) -> tuple[Any, int, str]:
            return None, x, current_run().id

        @decorate
        @classmethod
        def class_above(cls, x: int) -> tuple[Any, int, str]:
            return cls, x, current_run().id

        @classmethod
        @decorate
        def class_below(cls, x: int) -> tuple[Any, int, str]:
            return cls, x, current_run().id

        @decorate
        async def amethod(self, x: int) -> tuple[Any, int, str]:
            await asyncio.sleep(0)
            return self, x, current_run().id

    return Service


@pytest.mark.parametrize(
    ("name", "bound_to"),
    [
        pytest.param("method", "instance", id="method"),
        pytest.param("static_above", None, id="staticmethod-decorated-above"),
        pytest.param("static_below", None, id="staticmethod-decorated-below"),
        pytest.param("class_above", "class", id="classmethod-decorated-above"),
        pytest.param("class_below", "class", id="classmethod-decorated-below"),
    ],
)
def test_methods_static_and_class_methods_are_governed(
    name: str, bound_to: str | None, gov: Governance
) -> None:
    """Methods, staticmethods and classmethods (decorated either side) bind and record."""
    service_class = _service_class(gov)
    service = service_class()
    expected = {"instance": service, "class": service_class, None: None}[bound_to]

    got_self, got_x, run_id = getattr(service, name)(7)

    assert got_self is expected
    assert got_x == 7
    assert only_row(gov).run_id == run_id
    if bound_to != "instance":
        _, _, second = getattr(service_class, name)(8)
        assert gov.runs()[-1].run_id == second


def test_async_method_is_governed(gov: Governance) -> None:
    """An async method binds self and records its run."""
    service = _service_class(gov)()
    got_self, got_x, run_id = run_async(lambda: service.amethod(3))
    assert got_self is service
    assert got_x == 3
    assert only_row(gov).run_id == run_id


def test_signature_is_kept_above_staticmethod_and_classmethod(gov: Governance) -> None:
    """Decorating above @staticmethod/@classmethod keeps the descriptor and the signature."""
    service_class = _service_class(gov)
    assert isinstance(inspect.getattr_static(service_class, "static_above"), staticmethod)
    assert isinstance(inspect.getattr_static(service_class, "class_above"), classmethod)
    assert list(inspect.signature(service_class.static_above).parameters) == ["x"]
    assert list(inspect.signature(service_class.class_above).parameters) == ["x"]


@pytest.mark.parametrize("kind", RETURNING_KINDS)
def test_partial_of_a_governed_callable(kind: str, gov: Governance) -> None:
    """functools.partial of a governed function or coroutine function is governed per call."""
    if kind == "function":

        @governed_workflow(LEAD, governance=gov)
        def add(a: int, b: int) -> tuple[int, str]:
            return a + b, current_run().id

        total, run_id = functools.partial(add, 1)(2)
    else:

        @governed_workflow(LEAD, governance=gov)
        async def add(a: int, b: int) -> tuple[int, str]:
            await asyncio.sleep(0)
            return a + b, current_run().id

        total, run_id = run_async(lambda: functools.partial(add, 1)(2))

    assert total == 3
    assert only_row(gov).run_id == run_id


def test_governing_a_partial(gov: Governance) -> None:
    """A functools.partial can itself be governed."""

    def add(a: int, b: int) -> tuple[int, str]:
        return a + b, current_run().id

    governed_add = governed_workflow(LEAD, governance=gov)(functools.partial(add, 1))
    total, run_id = governed_add(b=4)
    assert total == 5
    assert only_row(gov).run_id == run_id


def _plain(lead: str, *, tone: str = "warm") -> str:
    """Draft a reply."""
    return lead


async def _coro(lead: str, *, tone: str = "warm") -> str:
    """Draft a reply."""
    return lead


def _gen(lead: str, *, tone: str = "warm") -> Iterator[str]:
    """Draft a reply."""
    yield lead


async def _agen(lead: str, *, tone: str = "warm") -> AsyncIterator[str]:
    """Draft a reply."""
    yield lead


@pytest.mark.parametrize(
    "original",
    [
        pytest.param(_plain, id="function"),
        pytest.param(_coro, id="coroutine"),
        pytest.param(_gen, id="generator"),
        pytest.param(_agen, id="async_generator"),
    ],
)
def test_wraps_keeps_name_doc_wrapped_and_signature(
    original: Callable[..., Any], gov: Governance
) -> None:
    """The wrapper keeps __name__, __doc__, __wrapped__ and the signature of the original."""
    wrapper = governed_workflow(LEAD, governance=gov)(original)
    assert wrapper.__name__ == original.__name__
    assert wrapper.__qualname__ == original.__qualname__
    assert wrapper.__doc__ == "Draft a reply."
    assert wrapper.__wrapped__ is original  # type: ignore[attr-defined]
    assert inspect.signature(wrapper) == inspect.signature(original)


# --- nesting ------------------------------------------------------------------------------------

NESTED = [
    pytest.param("function", "function", id="function-in-function"),
    pytest.param("function", "generator", id="generator-in-function"),
    pytest.param("coroutine", "coroutine", id="coroutine-in-coroutine"),
    pytest.param("coroutine", "async_generator", id="async_generator-in-coroutine"),
    pytest.param("coroutine", "function", id="function-in-coroutine"),
]


@pytest.mark.parametrize(("outer_kind", "inner_kind"), NESTED)
def test_nested_run_records_its_parent_and_inherits_the_trigger(
    outer_kind: str, inner_kind: str, gov: Governance
) -> None:
    """A governed call inside a run records parent_run_id and inherits an allowed trigger."""
    inner_workflow = Workflow(name="enrich", trigger={"events": ["lead", "manual"]})
    inner = governed(inner_kind, inner_workflow, gov, lambda: current_run().id)

    if outer_kind == "function":

        @governed_workflow(LEAD, governance=gov)
        def outer() -> Any:
            return consume(inner_kind, inner)

        result = outer()
    else:

        @governed_workflow(LEAD, governance=gov)
        async def outer() -> Any:
            if inner_kind == "coroutine":
                return await inner()
            if inner_kind == "function":
                return inner()
            return [item async for item in inner()]

        result = run_async(outer)

    inner_id = result[0] if isinstance(result, list) else result
    rows = {row.workflow: row for row in gov.runs()}
    assert rows["enrich"].run_id == inner_id
    assert rows["enrich"].parent_run_id == rows[LEAD.name].run_id
    assert rows["enrich"].trigger_id == rows[LEAD.name].trigger_id
    assert rows["enrich"].trigger_type == "lead"
    assert rows[LEAD.name].parent_run_id is None


def test_nested_run_with_another_event_type_makes_its_own_trigger(gov: Governance) -> None:
    """An inner workflow that does not accept the outer event type gets its own trigger."""
    inner_workflow = Workflow(name="nightly", trigger={"event": "schedule"})

    @governed_workflow(inner_workflow, governance=gov)
    def inner() -> None:
        pass

    @governed_workflow(LEAD, governance=gov)
    def outer() -> None:
        inner()

    outer()
    rows = {row.workflow: row for row in gov.runs()}
    assert rows["nightly"].status is RunStatus.SUCCEEDED
    assert rows["nightly"].parent_run_id == rows[LEAD.name].run_id
    assert rows["nightly"].trigger_type == "schedule"
    assert rows["nightly"].trigger_id != rows[LEAD.name].trigger_id


# --- concurrency ---------------------------------------------------------------------------------


def test_gathered_coroutines_each_see_their_own_run(gov: Governance) -> None:
    """50 coroutines under asyncio.gather each see their own run across awaits."""

    @governed_workflow(LEAD, governance=gov)
    async def work(n: int) -> tuple[int, str]:
        mine = current_run()
        for _ in range(3):
            await asyncio.sleep(0)
            assert current_run() is mine
        return n, mine.id

    async def main() -> list[tuple[int, str]]:
        return await asyncio.gather(*(work(n) for n in range(50)))

    results = run_async(main)
    ids = [run_id for _, run_id in results]
    assert len(set(ids)) == 50
    assert {row.run_id for row in gov.runs()} == set(ids)
    assert all(row.status is RunStatus.SUCCEEDED for row in gov.runs())


def test_threads_each_see_their_own_run(gov: Governance) -> None:
    """Eight threads running governed calls at once each see their own runs."""
    barrier = threading.Barrier(8)
    seen: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    @governed_workflow(LEAD, governance=gov)
    def work() -> str:
        mine = current_run()
        barrier.wait(timeout=10)
        assert current_run() is mine
        return mine.id

    def thread_main(index: int) -> None:
        try:
            ids = [work() for _ in range(5)]
            with pytest.raises(NoActiveRun):
                current_run()
            seen[index] = ids
        except BaseException as exc:  # collected for the main thread to report
            errors.append(exc)

    threads = [threading.Thread(target=thread_main, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    all_ids = [run_id for ids in seen.values() for run_id in ids]
    assert len(all_ids) == len(set(all_ids)) == 40
    assert {row.run_id for row in gov.runs()} == set(all_ids)


def test_with_current_context_carries_the_run_into_a_pool(gov: Governance) -> None:
    """with_current_context(fn) sees the submitting run in a pool; a plain fn does not."""

    def whose_run() -> str:
        return current_run().id

    @governed_workflow(LEAD, governance=gov)
    def submit(pool: ThreadPoolExecutor) -> tuple[str, str]:
        carried = pool.submit(with_current_context(whose_run)).result()
        plain = pool.submit(whose_run)
        with pytest.raises(NoActiveRun):
            plain.result()
        return current_run().id, carried

    with ThreadPoolExecutor(max_workers=2) as pool:
        mine, carried = submit(pool)
    assert carried == mine == only_row(gov).run_id


def test_governed_call_in_a_pool_nests_under_the_submitting_run(gov: Governance) -> None:
    """A governed call submitted with with_current_context records the submitter as parent."""
    inner_workflow = Workflow(name="enrich", trigger={"event": "lead"})

    @governed_workflow(inner_workflow, governance=gov)
    def enrich() -> str:
        return current_run().id

    @governed_workflow(LEAD, governance=gov)
    def outer(pool: ThreadPoolExecutor) -> str:
        return pool.submit(with_current_context(enrich)).result()

    with ThreadPoolExecutor(max_workers=1) as pool:
        inner_id = outer(pool)
    rows = {row.workflow: row for row in gov.runs()}
    assert rows["enrich"].run_id == inner_id
    assert rows["enrich"].parent_run_id == rows[LEAD.name].run_id


# --- the exception path ---------------------------------------------------------------------------


def test_long_error_message_is_truncated(gov: Governance) -> None:
    """The ledger keeps the first 500 characters of the error's message."""

    def action() -> None:
        raise Boom("x" * 2000)

    with pytest.raises(Boom):
        governed("function", LEAD, gov, action)()
    assert only_row(gov).error_message == "x" * 500


class Unprintable(Exception):
    """An exception whose message cannot be rendered."""

    def __str__(self) -> str:
        raise RuntimeError("cannot render")


@pytest.mark.parametrize("kind", KINDS)
def test_error_with_unprintable_message_is_still_reraised_and_recorded(
    kind: str, gov: Governance
) -> None:
    """An exception whose __str__ fails is re-raised unchanged and still leaves a row."""
    error = Unprintable()

    def action() -> None:
        raise error

    with pytest.raises(Unprintable) as caught:
        consume(kind, governed(kind, LEAD, gov, action))
    assert caught.value is error
    assert only_row(gov).status is RunStatus.FAILED


@pytest.mark.parametrize("kind", KINDS)
def test_handler_is_called_once_with_the_exception_record(kind: str, gov: Governance) -> None:
    """The handler gets one ExceptionRecord naming the workflow, run, owner, route and error."""
    handled: list[ExceptionRecord] = []
    workflow = routed(handler=handled.append)
    error = Boom("no slot free")

    def action() -> None:
        raise error

    with pytest.raises(Boom):
        consume(kind, governed(kind, workflow, gov, action))

    row = only_row(gov)
    assert len(handled) == 1
    record = handled[0]
    assert isinstance(record, ExceptionRecord)
    assert record.workflow == "routed"
    assert record.version == workflow.version
    assert record.run_id == row.run_id
    assert record.owner == "Head of Sales"
    assert record.route_to == "ops"
    assert record.error_type == "Boom"
    assert record.error is error
    assert record.trigger.id == row.trigger_id
    assert record.occurred_at.tzinfo is not None


@pytest.mark.parametrize("kind", ASYNC_KINDS)
def test_async_handler_is_awaited_in_async_code(kind: str, gov: Governance) -> None:
    """An async handler is awaited when the governed code is async."""
    handled: list[ExceptionRecord] = []

    async def handler(record: ExceptionRecord) -> None:
        await asyncio.sleep(0)
        handled.append(record)

    error = Boom("async")

    def action() -> None:
        raise error

    with pytest.raises(Boom):
        consume(kind, governed(kind, routed(handler=handler), gov, action))

    assert [record.error for record in handled] == [error]
    assert "exception_handler_failed" not in events(gov)


def test_async_handler_in_sync_code_is_recorded_as_failed_not_leaked(gov: Governance) -> None:
    """An async handler for sync code is reported as a handler failure, unawaited and closed."""

    async def handler(record: ExceptionRecord) -> None:
        raise AssertionError("never awaited")

    def action() -> None:
        raise Boom("sync")

    with pytest.raises(Boom):
        governed("function", routed(handler=handler), gov, action)()

    failed = audit_event(gov, "exception_handler_failed")
    assert failed.data["error"].startswith("UsageError")


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_handler_does_not_hide_the_original_error(kind: str, gov: Governance) -> None:
    """A handler that raises is audited; the caller still gets the body's own error."""

    def handler(record: ExceptionRecord) -> None:
        raise RuntimeError("pager is down")

    error = Boom("original")

    def action() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        consume(kind, governed(kind, routed(handler=handler), gov, action))

    assert caught.value is error
    row = only_row(gov)
    assert row.status is RunStatus.FAILED
    assert row.error_type == "Boom"
    failed = audit_event(gov, "exception_handler_failed")
    assert failed.run_id == row.run_id
    assert failed.data == {"error": "RuntimeError: pager is down"}


@pytest.mark.parametrize("kind", RETURNING_KINDS)
def test_fallback_is_returned_instead_of_raising(kind: str, gov: Governance) -> None:
    """A declared fallback's value is returned; the run is failed with fallback_used."""
    given: list[ExceptionRecord] = []
    value = object()

    def fallback(record: ExceptionRecord) -> object:
        given.append(record)
        return value

    error = Boom("model timed out")

    def action() -> None:
        raise error

    result = consume(kind, governed(kind, routed(fallback=fallback), gov, action))

    assert result is value
    row = only_row(gov)
    assert row.status is RunStatus.FAILED
    assert row.fallback_used is True
    assert row.error_type == "Boom"
    assert [record.error for record in given] == [error]
    assert given[0].run_id == row.run_id
    assert events(gov) == ["run_failed", "exception_routed", "fallback_returned"]


def test_async_fallback_is_awaited_for_a_coroutine(gov: Governance) -> None:
    """An async fallback is awaited, and its value returned, for a coroutine function."""

    async def fallback(record: ExceptionRecord) -> str:
        await asyncio.sleep(0)
        return "sorry"

    def action() -> None:
        raise Boom("x")

    assert consume("coroutine", governed("coroutine", routed(fallback=fallback), gov, action)) == (
        "sorry"
    )
    assert only_row(gov).fallback_used is True


@pytest.mark.parametrize("kind", RETURNING_KINDS)
def test_a_failing_fallback_raises_the_original_error(kind: str, gov: Governance) -> None:
    """A fallback that raises is audited and the body's own error propagates."""

    def fallback(record: ExceptionRecord) -> None:
        raise RuntimeError("template missing")

    error = Boom("original")

    def action() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        consume(kind, governed(kind, routed(fallback=fallback), gov, action))

    assert caught.value is error
    row = only_row(gov)
    assert row.status is RunStatus.FAILED
    assert row.fallback_used is False
    assert audit_event(gov, "fallback_failed").data == {"error": "RuntimeError: template missing"}
    assert "fallback_returned" not in events(gov)


@pytest.mark.parametrize("kind", STREAM_KINDS)
def test_streams_never_use_the_fallback(kind: str, gov: Governance) -> None:
    """A generator's failure always propagates: the fallback is not called."""
    called: list[ExceptionRecord] = []
    error = Boom("mid-stream")

    def action() -> None:
        raise error

    with pytest.raises(Boom) as caught:
        consume(kind, governed(kind, routed(fallback=called.append), gov, action))

    assert caught.value is error
    assert called == []
    row = only_row(gov)
    assert row.status is RunStatus.FAILED
    assert row.fallback_used is False


# --- governed_run ------------------------------------------------------------------------------

MODES = [pytest.param("with", id="with"), pytest.param("async with", id="async-with")]


def within(mode: str, manager: Any, body: Callable[[Run], T]) -> T | None:
    """Run ``body(run)`` inside ``manager`` entered with ``with`` or ``async with``.

    Returns the body's value, or ``None`` when the manager suppressed its exception.
    """
    if mode == "with":
        with manager as run:
            return body(run)
        return None

    async def main() -> T | None:
        async with manager as run:
            return body(run)
        return None

    return run_async(main)


@pytest.mark.parametrize("mode", MODES)
def test_governed_run_success(mode: str, gov: Governance) -> None:
    """A block that completes records a succeeded run that was current inside it."""

    def body(run: Run) -> str:
        assert current_run() is run
        return run.id

    run_id = within(mode, governed_run(LEAD, governance=gov), body)
    row = only_row(gov)
    assert row.run_id == run_id
    assert_complete(row, LEAD, RunStatus.SUCCEEDED)
    with pytest.raises(NoActiveRun):
        current_run()


@pytest.mark.parametrize("mode", MODES)
def test_governed_run_failure_reraises(mode: str, gov: Governance) -> None:
    """An exception leaving the block is recorded, routed and re-raised unchanged."""
    handled: list[ExceptionRecord] = []
    error = Boom("in block")

    def body(run: Run) -> None:
        raise error

    with pytest.raises(Boom) as caught:
        within(mode, governed_run(routed(handler=handled.append), governance=gov), body)

    assert caught.value is error
    row = only_row(gov)
    assert row.status is RunStatus.FAILED
    assert [record.error for record in handled] == [error]
    assert events(gov) == ["run_failed", "exception_routed"]


@pytest.mark.parametrize("mode", MODES)
def test_governed_run_fallback_suppresses_and_is_kept_on_the_run(
    mode: str, gov: Governance
) -> None:
    """With a fallback, the block's exception is suppressed and run.fallback holds the value."""
    manager = governed_run(routed(fallback=lambda record: "fallback"), governance=gov)
    runs: list[Run] = []

    def body(run: Run) -> None:
        runs.append(run)
        raise Boom("in block")

    within(mode, manager, body)

    assert runs[0].fallback == "fallback"
    row = only_row(gov)
    assert row.status is RunStatus.FAILED
    assert row.fallback_used is True


@pytest.mark.parametrize("mode", MODES)
def test_governed_run_cannot_be_entered_twice(mode: str, gov: Governance) -> None:
    """Entering one governed_run object a second time raises UsageError."""
    manager = governed_run(LEAD, governance=gov)
    within(mode, manager, lambda run: None)
    with pytest.raises(UsageError, match="entered once"):
        within(mode, manager, lambda run: None)
    assert len(gov.runs()) == 1


@pytest.mark.parametrize("mode", MODES)
def test_governed_run_refusal_is_raised_on_enter(mode: str, gov: Governance) -> None:
    """A paused workflow refuses on enter; the block never runs."""
    gov.set_stage(LEAD, "paused", actor="ops", reason="incident")
    executed: list[bool] = []
    with pytest.raises(WorkflowPaused):
        within(mode, governed_run(LEAD, governance=gov), lambda run: executed.append(True))
    assert executed == []
    assert only_row(gov).refusal_reason == "paused"


@pytest.mark.parametrize("mode", MODES)
def test_governed_run_keyboard_interrupt_is_cancelled(mode: str, gov: Governance) -> None:
    """KeyboardInterrupt leaving a `with` block records cancelled, not routed."""
    handled: list[ExceptionRecord] = []
    manager = governed_run(routed(handler=handled.append), governance=gov)
    if mode == "with":
        with pytest.raises(KeyboardInterrupt), manager:
            raise KeyboardInterrupt
    else:

        async def main() -> None:
            async with manager:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            drive(main())
    row = only_row(gov)
    assert row.status is RunStatus.CANCELLED
    assert row.error_type == "KeyboardInterrupt"
    assert handled == []
    assert events(gov) == []


# --- triggers ----------------------------------------------------------------------------------

EARLIER = dt.datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))


@pytest.mark.parametrize("kind", KINDS)
def test_trigger_event_argument_is_used_exactly(kind: str, gov: Governance) -> None:
    """A TriggerEvent among the arguments is the run's trigger, received_at honoured exactly."""
    event = TriggerEvent("form-123", "lead", EARLIER, payload_ref="crm://lead/9")
    seen: list[TriggerEvent] = []
    fn = governed(kind, LEAD, gov, lambda: seen.append(current_run().trigger))

    consume(kind, fn, "payload", event)

    assert seen == [event]
    row = only_row(gov)
    assert row.trigger_id == "form-123"
    assert row.trigger_type == "lead"
    assert row.received_at == EARLIER
    assert row.received_at.utcoffset() == dt.timedelta(hours=2)
    assert row.received_at <= row.started_at <= row.ended_at


@pytest.mark.parametrize(
    ("given", "trigger_id", "received_at"),
    [
        pytest.param(TriggerEvent("evt-1", "lead", EARLIER), "evt-1", EARLIER, id="event"),
        pytest.param(
            {"type": "lead", "id": "evt-2", "received_at": "2026-03-01T09:30:15.123456+02:00"},
            "evt-2",
            EARLIER,
            id="mapping",
        ),
        pytest.param(
            {"type": "lead", "id": "evt-3", "received_at": "2026-03-01T07:30:15.123456Z"},
            "evt-3",
            EARLIER,
            id="mapping-utc-z",
        ),
        pytest.param("lead", None, None, id="event-type"),
    ],
)
def test_trigger_from_parameter(
    given: Any, trigger_id: str | None, received_at: dt.datetime | None, gov: Governance
) -> None:
    """trigger_from names a parameter holding an event, a mapping or an event type."""

    @governed_workflow(LEAD, governance=gov, trigger_from="source")
    def handle(lead: str, source: Any) -> str:
        return current_run().trigger.type

    assert handle("x", given) == "lead"
    assert handle("y", source=given) == "lead"
    for row in gov.runs():
        assert row.status is RunStatus.SUCCEEDED
        assert row.trigger_type == "lead"
        if trigger_id is not None:
            assert row.trigger_id == trigger_id
        if received_at is not None:
            assert row.received_at == received_at
        assert row.received_at <= row.started_at


def test_trigger_from_callable(gov: Governance) -> None:
    """trigger_from may be a callable given the call's arguments."""

    @governed_workflow(
        LEAD,
        governance=gov,
        trigger_from=lambda lead: TriggerEvent(lead["id"], "lead", EARLIER),
    )
    def handle(lead: dict[str, str]) -> None:
        pass

    handle({"id": "lead-77"})
    row = only_row(gov)
    assert row.trigger_id == "lead-77"
    assert row.received_at == EARLIER


def test_trigger_from_missing_parameter_is_a_usage_error(gov: Governance) -> None:
    """trigger_from naming no parameter fails at decoration, not at the first call."""
    decorate = governed_workflow(LEAD, governance=gov, trigger_from="event")
    with pytest.raises(UsageError, match="names no parameter"):

        @decorate
        def handle(lead: str) -> None:
            pass


@pytest.mark.parametrize(
    "trigger_from",
    [pytest.param(42, id="not-callable"), pytest.param(b"event", id="bytes")],
)
def test_trigger_from_must_be_a_name_or_a_callable(trigger_from: Any, gov: Governance) -> None:
    """trigger_from that is neither a parameter name nor a callable fails at decoration."""
    with pytest.raises(UsageError, match="parameter name or a callable"):
        governed_workflow(LEAD, governance=gov, trigger_from=trigger_from)


def test_decorator_needs_a_workflow(gov: Governance) -> None:
    """governed_workflow given something other than a Workflow fails at decoration."""
    with pytest.raises(UsageError, match="needs a Workflow declaration"):
        governed_workflow({"name": "w"}, governance=gov)  # type: ignore[arg-type]


def test_trigger_from_parameter_left_at_its_default_uses_the_default(gov: Governance) -> None:
    """A trigger parameter the caller leaves at its default holds the default event type."""

    @governed_workflow(LEAD, governance=gov, trigger_from="kind")
    def handle(lead: str, kind: str = "lead") -> str:
        return current_run().trigger.type

    assert handle("x", "lead") == "lead"
    assert handle("x") == "lead"


def test_trigger_from_keyword_only_parameter_is_not_read_from_star_args(
    gov: Governance,
) -> None:
    """A keyword-only trigger parameter after *args is never taken from the *args values."""
    workflow = Workflow(name="calls", trigger={"events": ["lead", "missed_call"]})

    @governed_workflow(workflow, governance=gov, trigger_from="event")
    def handle(*phones: str, event: str = "missed_call") -> str:
        return current_run().trigger.type

    assert handle("555-0100", "lead") == "missed_call"


def test_undeclared_event_type_is_refused_and_recorded(gov: Governance) -> None:
    """An event type the workflow does not declare raises TriggerRefused, recorded as 'trigger'."""
    executed: list[bool] = []
    fn = governed("function", LEAD, gov, lambda: executed.append(True))
    with pytest.raises(TriggerRefused, match="not on 'missed_call'"):
        fn(TriggerEvent("c-1", "missed_call", EARLIER))
    assert executed == []
    row = only_row(gov)
    assert row.status is RunStatus.REFUSED
    assert row.refusal_reason == "trigger"


def test_two_event_types_need_a_trigger(gov: Governance) -> None:
    """A workflow declaring two event types refuses a call that says neither."""
    workflow = Workflow(name="two", trigger={"events": ["lead", "missed_call"]})
    fn = governed("function", workflow, gov, lambda: None)
    with pytest.raises(TriggerRefused, match="lead or missed_call"):
        fn()
    row = only_row(gov)
    assert row.status is RunStatus.REFUSED
    assert row.refusal_reason == "trigger"
    fn(TriggerEvent.now("missed_call"))
    assert gov.runs()[-1].status is RunStatus.SUCCEEDED


def test_naive_received_at_is_rejected() -> None:
    """A TriggerEvent with a naive received_at raises ValueError when made."""
    with pytest.raises(ValueError, match="timezone-aware"):
        TriggerEvent("e", "lead", dt.datetime(2026, 1, 1, 12, 0))


@pytest.mark.parametrize("kind", KINDS)
def test_exception_handler_sees_the_failed_run_as_current(kind: str, gov: Governance) -> None:
    """The exception path's handler runs with the failed run current, for every kind."""
    seen: list[str] = []

    def handler(record: ExceptionRecord) -> None:
        seen.append(current_run().id)

    workflow = LEAD.model_copy(
        update={"exception_path": ExceptionPath(route_to="ops", handler=handler)}
    )

    def fail() -> None:
        raise LookupError("no lead")

    with pytest.raises(LookupError):
        consume(kind, governed(kind, workflow, gov, fail))
    assert seen == [only_row(gov).run_id]
