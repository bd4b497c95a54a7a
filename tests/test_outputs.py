"""Output standards (schema, validators, what happens on failure, streams) and retries of
transient failures of the body.

Async code is driven with ``asyncio.run`` from sync tests (no pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pydantic
import pytest

import _checks_support
from ada_governance import (
    DeclarationError,
    ExceptionPath,
    ExceptionRecord,
    Governance,
    OutputIssue,
    OutputRejected,
    OutputStandard,
    RetryPolicy,
    RunRecord,
    RunStatus,
    UsageError,
    Workflow,
    current_run,
    governed_workflow,
)
from ada_governance.testing import memory_governance

RETURNING = [pytest.param("function", id="function"), pytest.param("coroutine", id="coroutine")]
STREAMING = [
    pytest.param("generator", id="generator"),
    pytest.param("async_generator", id="async_generator"),
]


class Reply(pydantic.BaseModel):
    """The output the tests' workflows promise: an email to send."""

    subject: str
    body: str


GOOD = {"subject": "Thanks", "body": "We will call you today."}
LONG = {"subject": "Thanks", "body": "x" * 100}


def short_body(output: Reply) -> list[str]:
    """An issue when the body is over 40 characters."""
    return [] if len(output.body) <= 40 else ["too_long"]


def polite(output: Reply) -> list[tuple[str, str]]:
    """An issue, with a message, when the body does not say thanks or call."""
    return [] if "call" in output.body else [("tone", "offer a call")]


class Boom(Exception):
    """The error governed bodies raise in these tests."""


@pytest.fixture
def gov() -> Governance:
    """A development governance on a fresh in-memory store."""
    return memory_governance()


def workflow(
    standard: OutputStandard | None = None,
    *,
    retry: RetryPolicy | None = None,
    handled: list[ExceptionRecord] | None = None,
    fallback: Callable[[ExceptionRecord], Any] | None = None,
) -> Workflow:
    """A draft workflow started by ``lead`` events; with an exception path whose handler
    appends to ``handled`` when it is given."""
    path = None
    if handled is not None:
        path = ExceptionPath(route_to="ops", handler=handled.append, fallback=fallback)
    return Workflow(
        name="reply",
        trigger={"event": "lead"},
        output_standard=standard,
        retry=retry,
        exception_path=path,
    )


def governed(
    kind: str, wf: Workflow, gov: Governance, body: Callable[[], Any]
) -> Callable[[], Any]:
    """A governed function or coroutine function returning ``body()``."""
    decorate = governed_workflow(wf, governance=gov)
    if kind == "function":
        return decorate(lambda: body())

    async def coroutine() -> Any:
        await asyncio.sleep(0)
        return body()

    return decorate(coroutine)


def call(kind: str, fn: Callable[[], Any]) -> Any:
    """Call a governed function, or run a governed coroutine function to its end."""
    return fn() if kind == "function" else asyncio.run(fn())


def only_row(gov: Governance) -> RunRecord:
    """The single ledger row the test produced."""
    rows = gov.runs()
    assert len(rows) == 1, rows
    return rows[0]


def event_names(gov: Governance) -> list[str]:
    """The audit event names, in the order they were appended."""
    return [event.event for event in gov.audit_events()]


# --- the schema ----------------------------------------------------------------------------

REPLY = Reply(**GOOD)
TEXT = json.dumps(GOOD)


@pytest.mark.parametrize(
    ("mode", "output", "expected"),
    [
        pytest.param("validate", GOOD, GOOD, id="validate-dict"),
        pytest.param("coerce", GOOD, REPLY, id="coerce-dict"),
        pytest.param("validate", REPLY, REPLY, id="validate-instance"),
        pytest.param("coerce", REPLY, REPLY, id="coerce-instance"),
        pytest.param("validate", TEXT, TEXT, id="validate-text"),
        pytest.param("coerce", TEXT, REPLY, id="coerce-text"),
    ],
)
@pytest.mark.parametrize("kind", RETURNING)
def test_schema_validates_and_the_mode_decides_what_is_returned(
    gov: Governance, kind: str, mode: str, output: Any, expected: Any
) -> None:
    """A valid output passes; validate returns it as given, coerce returns the model instance."""
    wf = workflow(OutputStandard(schema=Reply, mode=mode))

    result = call(kind, governed(kind, wf, gov, lambda: output))

    assert type(result) is type(expected)
    assert result == expected
    if mode == "validate":
        assert result is output
    assert only_row(gov).status is RunStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("output", "names"),
    [
        pytest.param({"subject": "Hi"}, ["schema.body"], id="missing-field"),
        pytest.param({"subject": 1, "body": 2}, ["schema.subject", "schema.body"], id="two-fields"),
        pytest.param('{"subject": "Hi", "body": ', ["schema"], id="broken-json-text"),
        pytest.param('{"subject": "Hi"}', ["schema.body"], id="json-text"),
        pytest.param(["not", "a", "reply"], ["schema"], id="wrong-type"),
    ],
)
def test_schema_errors_become_named_issues(gov: Governance, output: Any, names: list[str]) -> None:
    """Every schema error is an issue named ``schema.<field>``; text is parsed as JSON."""
    wf = workflow(OutputStandard(schema=Reply))

    with pytest.raises(OutputRejected) as caught:
        governed("function", wf, gov, lambda: output)()

    assert [issue.name for issue in caught.value.issues] == names
    assert all(issue.message for issue in caught.value.issues)


def test_instance_that_no_longer_fits_the_schema_is_rejected(gov: Governance) -> None:
    """A model instance whose fields were changed to break the schema is rejected."""

    def draft() -> Reply:
        reply = Reply(**GOOD)
        reply.body = None  # type: ignore[assignment]
        return reply

    with pytest.raises(OutputRejected):
        governed("function", workflow(OutputStandard(schema=Reply)), gov, draft)()


# --- validators ----------------------------------------------------------------------------


def judged_by(result: Any) -> Callable[[Any], Any]:
    """A validator called ``judge`` that returns ``result`` (or raises it)."""

    def judge(output: Any) -> Any:
        if isinstance(result, Exception):
            raise result
        return result

    return judge


@pytest.mark.parametrize(
    ("result", "issues"),
    [
        pytest.param([], [], id="empty-list"),
        pytest.param(None, [], id="none"),
        pytest.param(
            ["too_long", "no_greeting"],
            [OutputIssue("too_long"), OutputIssue("no_greeting")],
            id="names",
        ),
        pytest.param("too_long", [OutputIssue("too_long")], id="one-name"),
        pytest.param(
            [OutputIssue("tone", "too casual")], [OutputIssue("tone", "too casual")], id="issues"
        ),
        pytest.param([("tone", "too casual")], [OutputIssue("tone", "too casual")], id="pairs"),
        pytest.param(
            ValueError("model judge timed out"),
            [OutputIssue("judge.raised", "ValueError: model judge timed out")],
            id="raises",
        ),
        pytest.param([42], [OutputIssue("judge.bad_result", "returned 42")], id="bad-item"),
    ],
)
def test_validator_results_become_issues(
    gov: Governance, result: Any, issues: list[OutputIssue]
) -> None:
    """Validator results ([], names, OutputIssues, pairs, raising) become the named issues."""
    wf = workflow(OutputStandard(schema=Reply, validators=[judged_by(result)]))
    fn = governed("function", wf, gov, lambda: dict(GOOD))

    if issues:
        with pytest.raises(OutputRejected) as caught:
            fn()
        assert list(caught.value.issues) == issues
    else:
        assert fn() == GOOD


def test_validators_see_the_schemas_instance(gov: Governance) -> None:
    """Validators are given the validated model, even when the body returned a dict."""
    seen: list[Any] = []

    def record(output: Any) -> None:
        seen.append(output)

    wf = workflow(OutputStandard(schema=Reply, validators=[record]))
    assert governed("function", wf, gov, lambda: dict(GOOD))() == GOOD
    assert seen == [REPLY]


def test_validators_are_not_run_on_output_that_fails_its_schema(gov: Governance) -> None:
    """Validators never see an output that failed its schema; the schema's issues are raised."""
    seen: list[Any] = []

    def record(output: Any) -> None:
        seen.append(output)

    wf = workflow(OutputStandard(schema=Reply, validators=[record]))
    with pytest.raises(OutputRejected) as caught:
        governed("function", wf, gov, lambda: {"subject": "Hi"})()

    assert [issue.name for issue in caught.value.issues] == ["schema.body"]
    assert seen == []


# --- on_fail -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", RETURNING)
def test_on_fail_raise_rejects_with_every_issue_and_is_not_routed(
    gov: Governance, kind: str
) -> None:
    """on_fail raise: OutputRejected with every issue after 1 attempt; the run is not routed."""
    handled: list[ExceptionRecord] = []
    calls: list[int] = []
    standard = OutputStandard(schema=Reply, validators=[short_body, polite], on_fail="raise")

    def body() -> dict[str, str]:
        calls.append(1)
        return dict(LONG)

    with pytest.raises(OutputRejected) as caught:
        call(kind, governed(kind, workflow(standard, handled=handled), gov, body))

    error = caught.value
    assert error.issues == (OutputIssue("too_long"), OutputIssue("tone", "offer a call"))
    assert error.attempts == 1
    assert calls == [1]
    row = only_row(gov)
    assert (row.status, row.error_type, row.attempts) == (RunStatus.FAILED, "OutputRejected", 1)
    assert error.run_id == row.run_id
    assert handled == []
    assert event_names(gov) == ["run_failed"]


@pytest.mark.parametrize(
    "with_fallback", [pytest.param(True, id="fallback"), pytest.param(False, id="no-fallback")]
)
@pytest.mark.parametrize("kind", RETURNING)
def test_on_fail_exception_path_routes_the_rejection(
    gov: Governance, kind: str, with_fallback: bool
) -> None:
    """on_fail exception_path: the rejection is routed, and a declared fallback is returned."""
    handled: list[ExceptionRecord] = []
    fallback = (lambda record: {"queued_for": "ops"}) if with_fallback else None
    standard = OutputStandard(schema=Reply, validators=[short_body], on_fail="exception_path")
    fn = governed(kind, workflow(standard, handled=handled, fallback=fallback), gov, dict)

    if with_fallback:
        assert call(kind, fn) == {"queued_for": "ops"}
    else:
        with pytest.raises(OutputRejected):
            call(kind, fn)

    (record,) = handled
    assert isinstance(record.error, OutputRejected)
    assert record.error_type == "OutputRejected"
    row = only_row(gov)
    assert (row.status, row.error_type) == (RunStatus.FAILED, "OutputRejected")
    assert row.fallback_used is with_fallback
    assert len(gov.audit_events(event="exception_routed")) == 1


@pytest.mark.parametrize("kind", RETURNING)
def test_on_fail_retry_runs_the_body_again_with_the_issues(gov: Governance, kind: str) -> None:
    """on_fail retry: attempt 2 runs with the previous issues, and its success is recorded."""
    seen: list[tuple[int, tuple[OutputIssue, ...]]] = []
    standard = OutputStandard(schema=Reply, validators=[short_body], on_fail="retry")

    def body() -> dict[str, str]:
        run = current_run()
        seen.append((run.attempt, run.previous_issues))
        return dict(GOOD if run.previous_issues else LONG)

    assert call(kind, governed(kind, workflow(standard), gov, body)) == GOOD

    assert seen == [(1, ()), (2, (OutputIssue("too_long"),))]
    row = only_row(gov)
    assert (row.status, row.attempts) == (RunStatus.SUCCEEDED, 2)
    (failed,) = gov.audit_events(event="attempt_failed")
    assert failed.data["attempt"] == 1
    assert failed.data["error_type"] == "OutputRejected"
    assert failed.data["issues"] == ["too_long"]


@pytest.mark.parametrize("max_attempts", [pytest.param(1, id="1"), pytest.param(3, id="3")])
@pytest.mark.parametrize("kind", RETURNING)
def test_on_fail_retry_is_bounded_by_max_attempts(
    gov: Governance, kind: str, max_attempts: int
) -> None:
    """An output failing every attempt is rejected after exactly max_attempts body runs."""
    calls: list[int] = []
    standard = OutputStandard(
        schema=Reply, validators=[short_body], on_fail="retry", max_attempts=max_attempts
    )

    def body() -> dict[str, str]:
        calls.append(current_run().attempt)
        return dict(LONG)

    with pytest.raises(OutputRejected) as caught:
        call(kind, governed(kind, workflow(standard), gov, body))

    assert caught.value.attempts == max_attempts
    assert caught.value.issues == (OutputIssue("too_long"),)
    assert calls == list(range(1, max_attempts + 1))
    row = only_row(gov)
    assert (row.status, row.attempts) == (RunStatus.FAILED, max_attempts)
    assert len(gov.audit_events(event="attempt_failed")) == max_attempts - 1


@pytest.mark.parametrize("kind", STREAMING)
def test_on_fail_retry_on_a_stream_is_refused_at_decoration(gov: Governance, kind: str) -> None:
    """A stream cannot be taken back to retry: decorating one raises UsageError."""
    wf = workflow(OutputStandard(schema=Reply, on_fail="retry"))

    def generator() -> Iterator[str]:
        yield "{}"

    async def async_generator() -> AsyncIterator[str]:
        yield "{}"

    with pytest.raises(UsageError, match="retry"):
        governed_workflow(wf, governance=gov)(generator if kind == "generator" else async_generator)


# --- streams -------------------------------------------------------------------------------

GOOD_CHUNKS = ['{"subject": "Thanks", ', '"body": "We will call ', 'you today."}']
BAD_CHUNKS = ['{"subject": "Thanks", ', '"body": 42}']


def consume(
    kind: str, wf: Workflow, gov: Governance, chunks: list[str], received: list[str]
) -> None:
    """Stream ``chunks`` through a governed stream of ``kind``, appending each chunk the
    consumer gets to ``received`` as it arrives."""
    decorate = governed_workflow(wf, governance=gov)
    if kind == "generator":

        @decorate
        def stream() -> Iterator[str]:
            yield from chunks

        for chunk in stream():
            received.append(chunk)
        return

    @decorate
    async def astream() -> AsyncIterator[str]:
        for chunk in chunks:
            await asyncio.sleep(0)
            yield chunk

    async def drain() -> None:
        async for chunk in astream():
            received.append(chunk)

    asyncio.run(drain())


@pytest.mark.parametrize("kind", STREAMING)
def test_stream_is_validated_when_it_completes(gov: Governance, kind: str) -> None:
    """A stream's text chunks are joined and parsed as JSON for the schema when it ends."""
    seen: list[Any] = []
    wf = workflow(OutputStandard(schema=Reply, validators=[lambda o: seen.append(o)]))

    received: list[str] = []
    consume(kind, wf, gov, GOOD_CHUNKS, received)

    assert received == GOOD_CHUNKS

    assert seen == [REPLY]
    assert only_row(gov).status is RunStatus.SUCCEEDED


@pytest.mark.parametrize("kind", STREAMING)
def test_rejected_stream_delivers_every_chunk_then_raises(gov: Governance, kind: str) -> None:
    """A failing stream gives the consumer every chunk, then raises OutputRejected at the end."""
    received: list[str] = []

    with pytest.raises(OutputRejected) as caught:
        consume(kind, workflow(OutputStandard(schema=Reply)), gov, BAD_CHUNKS, received)

    assert received == BAD_CHUNKS
    assert [issue.name for issue in caught.value.issues] == ["schema.body"]
    row = only_row(gov)
    assert (row.status, row.error_type) == (RunStatus.FAILED, "OutputRejected")


@pytest.mark.parametrize("kind", STREAMING)
def test_rejected_stream_is_routed_under_exception_path(gov: Governance, kind: str) -> None:
    """A rejected stream under exception_path is routed, and re-raises despite a fallback."""
    handled: list[ExceptionRecord] = []
    standard = OutputStandard(schema=Reply, on_fail="exception_path")
    wf = workflow(standard, handled=handled, fallback=lambda record: "unused")

    with pytest.raises(OutputRejected):
        consume(kind, wf, gov, BAD_CHUNKS, [])

    assert [record.error_type for record in handled] == ["OutputRejected"]
    assert only_row(gov).fallback_used is False


# --- transient retries ---------------------------------------------------------------------


"""Lets the tests below exercise retries past the DeprecationWarning the engine triggers
in tenacity (see `test_retry_policy_runs_under_warnings_as_errors`)."""


def policy(*on: Any, **options: Any) -> RetryPolicy:
    """A retry policy on ``on`` with waits short enough for tests."""
    options.setdefault("initial_wait", "1ms")
    options.setdefault("max_wait", "2ms")
    return RetryPolicy(on=on or (TimeoutError,), **options)


def test_retry_policy_runs_under_warnings_as_errors(gov: Governance) -> None:
    """A workflow with a retry policy runs where warnings are errors (as in this suite)."""
    fn = governed("function", workflow(retry=policy(TimeoutError)), gov, lambda: "sent")
    assert fn() == "sent"


@pytest.mark.parametrize("kind", RETURNING)
def test_declared_transient_error_is_retried(gov: Governance, kind: str) -> None:
    """A declared error twice, then success: the result, 3 attempts and 2 audited failures."""
    calls: list[int] = []

    def body() -> str:
        calls.append(current_run().attempt)
        if len(calls) < 3:
            raise TimeoutError("provider slow")
        return "sent"

    fn = governed(kind, workflow(retry=policy(TimeoutError, attempts=5)), gov, body)

    assert call(kind, fn) == "sent"
    assert calls == [1, 2, 3]
    row = only_row(gov)
    assert (row.status, row.attempts) == (RunStatus.SUCCEEDED, 3)
    failed = gov.audit_events(event="attempt_failed")
    assert [(e.data["attempt"], e.data["error_type"]) for e in failed] == [
        (1, "TimeoutError"),
        (2, "TimeoutError"),
    ]


def test_async_retry_waits_without_blocking_the_loop(gov: Governance) -> None:
    """A coroutine's wait between attempts yields to the event loop (AsyncRetrying)."""
    timeline: list[str] = []

    async def body() -> str:
        timeline.append("attempt")
        if timeline.count("attempt") == 1:
            raise TimeoutError
        return "sent"

    retry = policy(TimeoutError, attempts=2, initial_wait="30ms", max_wait="30ms", jitter=False)
    fn = governed_workflow(workflow(retry=retry), governance=gov)(body)

    async def main() -> str:
        async def tick() -> None:
            while True:
                timeline.append("tick")
                await asyncio.sleep(0.002)

        ticker = asyncio.create_task(tick())
        try:
            return await fn()
        finally:
            ticker.cancel()

    assert asyncio.run(main()) == "sent"
    first, second = (i for i, entry in enumerate(timeline) if entry == "attempt")
    assert "tick" in timeline[first:second]


@pytest.mark.parametrize("kind", RETURNING)
def test_undeclared_error_is_not_retried(gov: Governance, kind: str) -> None:
    """An exception type the policy does not declare fails the run on the first attempt."""
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        raise Boom("not transient")

    with pytest.raises(Boom):
        call(kind, governed(kind, workflow(retry=policy(TimeoutError)), gov, body))

    assert calls == [1]
    assert only_row(gov).attempts == 1
    assert gov.audit_events(event="attempt_failed") == []


@pytest.mark.parametrize("attempts", [pytest.param(1, id="1"), pytest.param(3, id="3")])
@pytest.mark.parametrize("kind", RETURNING)
def test_always_failing_body_runs_exactly_attempts_times(
    gov: Governance, kind: str, attempts: int
) -> None:
    """An always-failing body runs `attempts` times; its last error propagates, routed once."""
    handled: list[ExceptionRecord] = []
    raised: list[TimeoutError] = []

    def body() -> None:
        raised.append(TimeoutError(f"attempt {len(raised) + 1}"))
        raise raised[-1]

    wf = workflow(retry=policy(TimeoutError, attempts=attempts), handled=handled)
    with pytest.raises(TimeoutError) as caught:
        call(kind, governed(kind, wf, gov, body))

    assert len(raised) == attempts
    assert caught.value is raised[-1]
    assert [record.error for record in handled] == [raised[-1]]
    assert len(gov.audit_events(event="exception_routed")) == 1
    row = only_row(gov)
    assert (row.status, row.error_type, row.attempts) == (
        RunStatus.FAILED,
        "TimeoutError",
        attempts,
    )
    assert len(gov.audit_events(event="attempt_failed")) == attempts - 1


def test_deadline_stops_retrying_early(gov: Governance) -> None:
    """Retries stop at the deadline, before ``attempts`` is reached."""
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        raise TimeoutError

    retry = policy(TimeoutError, attempts=10, initial_wait="50ms", max_wait="1s", deadline="200ms")
    with pytest.raises(TimeoutError):
        governed("function", workflow(retry=retry), gov, body)()

    assert 1 < len(calls) < 10
    assert only_row(gov).attempts == len(calls)


def test_no_attempt_starts_after_the_deadline(gov: Governance) -> None:
    """No attempt starts after the deadline, however long the wait before it would be."""
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        raise TimeoutError

    retry = policy(
        TimeoutError,
        attempts=5,
        initial_wait="200ms",
        max_wait="200ms",
        jitter=False,
        deadline="50ms",
    )
    with pytest.raises(TimeoutError):
        governed("function", workflow(retry=retry), gov, body)()

    assert len(calls) == 1


@pytest.mark.parametrize(
    ("name", "error"),
    [
        pytest.param("TimeoutError", TimeoutError, id="builtin"),
        pytest.param("ConnectionError", ConnectionError, id="builtin-2"),
        pytest.param("_checks_support:Transient", _checks_support.Transient, id="import-path"),
        pytest.param("json:JSONDecodeError", json.JSONDecodeError, id="stdlib-path"),
    ],
)
def test_exception_types_resolve_by_name(
    gov: Governance, name: str, error: type[Exception]
) -> None:
    """Bare built-in names and import paths name the exception types that are retried."""
    retry = policy(name, attempts=2)
    assert retry.on == (error,)
    calls: list[int] = []

    def body() -> None:
        calls.append(1)
        raise error("flaky", "doc", 0) if error is json.JSONDecodeError else error("flaky")

    with pytest.raises(error):
        governed("function", workflow(retry=retry), gov, body)()
    assert len(calls) == 2


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("len", id="builtin-not-exception"),
        pytest.param("KeyboardInterrupt", id="base-exception"),
        pytest.param("_checks_support:consent_given", id="path-not-exception"),
        pytest.param("NoSuchError", id="unknown"),
    ],
)
def test_names_that_are_not_exception_types_are_refused(name: str) -> None:
    """A name that is not an Exception subclass is a declaration error."""
    with pytest.raises(DeclarationError):
        RetryPolicy(on=[name])


@pytest.mark.parametrize(
    "cause", [pytest.param("transient", id="transient"), pytest.param("output", id="output")]
)
def test_side_effects_stop_retries(gov: Governance, cause: str) -> None:
    """Once the body has done something that cannot be done twice, its failure is final.

    Executed actions will count side effects when actions arrive; until then the test
    sets ``run._side_effects`` itself, as an executed action will.
    """
    calls: list[int] = []

    def body() -> dict[str, str]:
        calls.append(1)
        current_run()._side_effects += 1
        if cause == "transient":
            raise TimeoutError("after sending")
        return dict(LONG)

    standard = OutputStandard(schema=Reply, validators=[short_body], on_fail="retry")
    wf = workflow(standard, retry=policy(TimeoutError, attempts=5))
    expected = TimeoutError if cause == "transient" else OutputRejected
    with pytest.raises(expected):
        governed("function", wf, gov, body)()

    assert calls == [1]
    assert only_row(gov).attempts == 1
    assert gov.audit_events(event="attempt_failed") == []


def test_on_fail_review_holds_the_output_for_a_person() -> None:
    """on_fail 'review': a failing output is not discarded but held in a review; the
    call returns a PendingAction, the run waits for review, and the approved (edited)
    output is the result; an edit that breaks the schema is refused."""
    from pydantic import BaseModel

    from ada_governance import Governance, InvalidPayload, MemoryStore, PendingAction

    class Note(BaseModel):
        text: str

    governance = Governance(MemoryStore(), development=True)
    workflow = Workflow(
        name="held_output",
        trigger={"event": "lead"},
        output_standard={
            "schema": Note,
            "validators": [lambda note: ["too_short"] if len(note.text) < 5 else []],
            "on_fail": "review",
        },
        review={"reviewers": ["sdr"]},
    )

    @governed_workflow(workflow, governance=governance)
    def draft(text: str) -> dict[str, str]:
        return {"text": text}

    assert draft("long enough") == {"text": "long enough"}
    handle = draft("hi")
    assert isinstance(handle, PendingAction)
    assert [row.status.value for row in governance.runs(workflow)] == [
        "succeeded",
        "pending_review",
    ]
    review = governance.review(handle.review_id)
    assert review.payload == {"text": "hi"}
    assert review.policy["issues"] == ["too_short"]
    with pytest.raises(InvalidPayload):
        governance.approve(handle.review_id, "dana", roles=["sdr"], edits={"text": 5})
    governance.approve(handle.review_id, "dana", roles=["sdr"], edits={"text": "hi there"})
    assert handle.wait(1).result == {"text": "hi there"}


def test_on_fail_review_is_refused_for_streams() -> None:
    """A stream cannot be held for review: declaring it on a generator is a UsageError."""
    from ada_governance import UsageError

    workflow = Workflow(
        name="held_stream",
        trigger={"event": "lead"},
        output_standard={"validators": [lambda out: []], "on_fail": "review"},
        review={"reviewers": ["sdr"]},
    )
    with pytest.raises(UsageError, match="hold for review"):

        @governed_workflow(workflow)
        def stream() -> Any:
            yield "chunk"
