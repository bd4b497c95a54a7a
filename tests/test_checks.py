"""Pre-checks: a passing check lets the body run; a failing one refuses the run, records
and routes the refusal, and the body never runs.

Async code is driven with ``asyncio.run`` from sync tests (no pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import _checks_support
from ada_governance import (
    Check,
    CheckFailed,
    ExceptionPath,
    ExceptionRecord,
    Governance,
    RunStatus,
    Source,
    Workflow,
    current_run,
    governed_run,
    governed_workflow,
)
from ada_governance.testing import memory_governance

KINDS = [
    pytest.param("function", id="function"),
    pytest.param("coroutine", id="coroutine"),
    pytest.param("generator", id="generator"),
    pytest.param("async_generator", id="async_generator"),
    pytest.param("block", id="governed_run"),
    pytest.param("async_block", id="async_governed_run"),
]

LEAD = {"id": "L-1", "consent": True, "owner": "sam"}


@pytest.fixture
def gov() -> Governance:
    """A development governance on a fresh in-memory store."""
    return memory_governance()


@pytest.fixture(autouse=True)
def _clear_calls() -> Iterator[None]:
    """Start and end every test with no recorded check calls."""
    _checks_support.CALLS.clear()
    yield
    _checks_support.CALLS.clear()


def workflow(
    *checks: Check, handled: list[ExceptionRecord] | None = None, **fields: Any
) -> Workflow:
    """A draft workflow started by ``lead`` events, with ``checks`` and, when ``handled``
    is given, an exception path whose handler appends to it."""
    if handled is not None:
        fields["exception_path"] = ExceptionPath(route_to="ops", handler=handled.append)
    return Workflow(name="reply", trigger={"event": "lead"}, checks=checks, **fields)


def check(fn: Callable[..., Any], name: str = "consent") -> Check:
    """A check called ``name`` running ``fn``."""
    return Check(name=name, fn=fn)


def run_as(kind: str, wf: Workflow, gov: Governance, body: Callable[[], Any]) -> Any:
    """Call ``body()`` as a governed ``kind``: what a caller gets (a stream's items)."""
    if kind == "block":
        with governed_run(wf, governance=gov):
            return body()
    if kind == "async_block":

        async def block() -> Any:
            async with governed_run(wf, governance=gov):
                return body()

        return asyncio.run(block())
    decorate = governed_workflow(wf, governance=gov)
    if kind == "function":
        return decorate(body)()
    if kind == "coroutine":

        async def coroutine() -> Any:
            return body()

        return asyncio.run(decorate(coroutine)())
    if kind == "generator":

        def generator() -> Iterator[Any]:
            yield body()

        return list(decorate(generator)())

    async def async_generator() -> Any:
        yield body()

    async def drain() -> list[Any]:
        return [item async for item in decorate(async_generator)()]

    return asyncio.run(drain())


def event_names(gov: Governance) -> list[str]:
    """The audit event names, in the order they were appended."""
    return [event.event for event in gov.audit_events()]


# --- passing -------------------------------------------------------------------------------


@pytest.mark.parametrize("result", [pytest.param(None, id="none"), pytest.param(True, id="true")])
@pytest.mark.parametrize("kind", KINDS)
def test_passing_check_lets_the_body_run(gov: Governance, kind: str, result: Any) -> None:
    """A check returning None or True passes: the body runs and the run succeeds."""
    ran: list[str] = []
    run_as(kind, workflow(check(lambda *a, **k: result)), gov, lambda: ran.append("body"))

    assert ran == ["body"]
    (row,) = gov.runs()
    assert row.status is RunStatus.SUCCEEDED
    assert row.refusal_reason is None


# --- refusing ------------------------------------------------------------------------------


def _raises(*args: Any) -> Any:
    raise ConnectionError("consent service unreachable")


@pytest.mark.parametrize(
    ("fn", "why"),
    [
        pytest.param(lambda lead: "no consent on file", "no consent on file", id="reason"),
        pytest.param(lambda lead: False, "the check returned False", id="false"),
        pytest.param(lambda lead: "", "the check failed without a reason", id="empty-reason"),
        pytest.param(
            _raises,
            "the check raised ConnectionError: consent service unreachable",
            id="raises",
        ),
        pytest.param(
            lambda lead: 0,
            "the check returned 0; return None to pass or a reason to refuse",
            id="other-value",
        ),
    ],
)
def test_failing_check_refuses_records_and_routes(
    gov: Governance, fn: Callable[..., Any], why: str
) -> None:
    """A check's reason, False or error refuses with CheckFailed, recorded and routed; no body."""
    handled: list[ExceptionRecord] = []
    ran: list[str] = []

    @governed_workflow(workflow(check(fn), handled=handled), governance=gov)
    def reply(lead: dict[str, Any]) -> None:
        ran.append("body")

    with pytest.raises(CheckFailed) as caught:
        reply(LEAD)

    error = caught.value
    assert error.check == "consent"
    assert error.why == why
    assert error.reason == "check"
    assert "consent" in str(error)
    assert ran == []
    (row,) = gov.runs()
    assert row.status is RunStatus.REFUSED
    assert row.refusal_reason == "check"
    assert error.run_id == row.run_id
    assert event_names(gov) == ["run_refused", "exception_routed"]
    (refused,) = gov.audit_events(event="run_refused")
    assert refused.data["reason"] == "check"
    assert refused.data["check"] == "consent"
    (routed,) = gov.audit_events(event="exception_routed")
    assert routed.data == {"error_type": "CheckFailed", "route_to": "ops"}
    (record,) = handled
    assert record.error is error
    assert record.error_type == "CheckFailed"
    assert record.run_id == row.run_id


@pytest.mark.parametrize("kind", KINDS)
def test_failing_check_stops_every_kind_before_its_body(gov: Governance, kind: str) -> None:
    """Functions, coroutines, streams and governed_run blocks are refused before the body."""
    ran: list[str] = []

    with pytest.raises(CheckFailed):
        run_as(kind, workflow(check(lambda *a: "not today")), gov, lambda: ran.append("body"))

    assert ran == []
    (row,) = gov.runs()
    assert (row.status, row.refusal_reason) == (RunStatus.REFUSED, "check")


def test_refusal_without_an_exception_path_is_still_recorded(gov: Governance) -> None:
    """With no exception path the refusal is recorded, and nothing is routed."""

    @governed_workflow(workflow(check(lambda: "no")), governance=gov)
    def reply() -> None:
        raise AssertionError("the body must not run")

    with pytest.raises(CheckFailed):
        reply()
    assert event_names(gov) == ["run_refused"]


# --- what checks see -----------------------------------------------------------------------


def test_checks_receive_the_calls_arguments(gov: Governance) -> None:
    """A check is called with the governed call's positional and keyword arguments."""
    seen: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def record(*args: Any, **kwargs: Any) -> None:
        seen.append((args, kwargs))

    @governed_workflow(workflow(check(record)), governance=gov)
    def reply(lead: dict[str, Any], channel: str, *, urgent: bool = False) -> str:
        return channel

    assert reply(LEAD, "sms", urgent=True) == "sms"
    assert seen == [((LEAD, "sms"), {"urgent": True})]


def test_checks_read_sources_through_the_run(gov: Governance) -> None:
    """A check reads approved sources via current_run().source; the read is the run's."""
    crm = Source(name="crm.owner", system="Salesforce", key="id")

    def owner_available(lead: dict[str, Any]) -> str | None:
        owner = current_run().source("crm.owner", lambda: {"id": lead["owner"], "away": False})
        return "the owner is away" if owner["away"] else None

    @governed_workflow(workflow(check(owner_available), sources=[crm]), governance=gov)
    def reply(lead: dict[str, Any]) -> list[str]:
        return [read.source for read in current_run().reads]

    assert reply(LEAD) == ["crm.owner"]
    (row,) = gov.runs()
    assert [(read.source, read.record_id) for read in row.reads] == [("crm.owner", "sam")]


def test_check_reading_an_unapproved_source_refuses(gov: Governance) -> None:
    """A check that reads a source the workflow does not declare refuses the run."""

    def peek(*args: Any) -> None:
        current_run().source("hr.salaries", dict)

    @governed_workflow(workflow(check(peek)), governance=gov)
    def reply() -> None:
        raise AssertionError("the body must not run")

    with pytest.raises(CheckFailed, match="UnapprovedSourceError"):
        reply()


# --- async checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "refused"),
    [pytest.param(None, False, id="passes"), pytest.param("still cooling off", True, id="refuses")],
)
@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("coroutine", id="coroutine"),
        pytest.param("async_generator", id="async_generator"),
        pytest.param("async_block", id="async_governed_run"),
    ],
)
def test_async_checks_are_awaited_in_async_code(
    gov: Governance, kind: str, answer: str | None, refused: bool
) -> None:
    """An async check is awaited in async code, and its answer decides the run."""
    awaited: list[str] = []

    async def cooling_off(*args: Any) -> str | None:
        await asyncio.sleep(0)
        awaited.append("check")
        return answer

    ran: list[str] = []
    wf = workflow(check(cooling_off, "cooling_off"))
    if refused:
        with pytest.raises(CheckFailed) as caught:
            run_as(kind, wf, gov, lambda: ran.append("body"))
        assert caught.value.why == answer
        assert ran == []
    else:
        run_as(kind, wf, gov, lambda: ran.append("body"))
        assert ran == ["body"]
    assert awaited == ["check"]


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("function", id="function"),
        pytest.param("generator", id="generator"),
        pytest.param("block", id="governed_run"),
    ],
)
def test_async_check_in_sync_code_refuses(
    gov: Governance, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An async check in sync code refuses with the UsageError as reason; no coroutine leaks."""
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    async def consent(*args: Any) -> None:
        return None

    ran: list[str] = []
    with pytest.raises(CheckFailed) as caught:
        run_as(kind, workflow(check(consent)), gov, lambda: ran.append("body"))

    assert caught.value.why.startswith("the check raised UsageError")
    assert "async" in caught.value.why
    assert ran == []
    gc.collect()
    assert unraisable == []


# --- checks declared in files --------------------------------------------------------------

YAML = """
name: reply
trigger:
  event: lead
checks:
  - name: consent
    fn: "_checks_support:consent_given"
    description: The lead agreed to be contacted.
"""


@pytest.mark.parametrize(
    ("consent", "refused"),
    [pytest.param(True, False, id="consented"), pytest.param(False, True, id="no-consent")],
)
def test_checks_declared_in_yaml_by_import_path(
    gov: Governance, consent: bool, refused: bool
) -> None:
    """A check named by import path in YAML is imported and run before the body."""
    wf = Workflow.from_string(YAML)
    assert wf.checks[0].fn is _checks_support.consent_given

    @governed_workflow(wf, governance=gov)
    def reply(lead: dict[str, Any]) -> str:
        return "sent"

    if refused:
        with pytest.raises(CheckFailed) as caught:
            reply({"consent": consent})
        assert (caught.value.check, caught.value.why) == (
            "consent",
            "the lead has not consented to contact",
        )
    else:
        assert reply({"consent": consent}) == "sent"


def _ordered(second: str) -> Workflow:
    return Workflow.from_string(
        f"""
name: reply
trigger:
  event: lead
checks:
  - name: first
    fn: "_checks_support:first_passes"
  - name: second
    fn: "_checks_support:{second}"
  - name: third
    fn: "_checks_support:third_passes"
"""
    )


def test_checks_run_in_declaration_order(gov: Governance) -> None:
    """Every check runs, in the order declared, before the body."""

    @governed_workflow(_ordered("second_passes"), governance=gov)
    def reply() -> None:
        _checks_support.CALLS.append("body")

    reply()
    assert _checks_support.CALLS == ["first", "second", "third", "body"]


def test_checks_stop_at_the_first_failure(gov: Governance) -> None:
    """The first failing check refuses the run; later checks are not called."""

    @governed_workflow(_ordered("second_refuses"), governance=gov)
    def reply() -> None:
        _checks_support.CALLS.append("body")

    with pytest.raises(CheckFailed) as caught:
        reply()
    assert caught.value.check == "second"
    assert _checks_support.CALLS == ["first", "second"]
    assert len(gov.audit_events(event="run_refused")) == 1
