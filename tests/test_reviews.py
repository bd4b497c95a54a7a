"""The review queue at run time: risk boundaries, who may decide, edits, timeouts, review
modes, exactly-once execution of approved actions, waiting on them, telemetry and
notifiers. Every test runs against the memory store and a SQLite file, with a
`ManualClock`.

The code behind an action is registered process-wide by (workflow name, action name):
each test declares workflows with names of its own, and an autouse fixture gives it a
registry of its own. Async code is driven with ``asyncio.run`` (no pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import multiprocessing
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

import _review_support
from _review_support import Email
from ada_governance import (
    ActionForbidden,
    AlreadyDecided,
    Check,
    CheckFailed,
    ExecutionStatus,
    Governance,
    GovernanceError,
    InvalidPayload,
    MemoryStore,
    NotAReviewer,
    PayloadChanged,
    PendingAction,
    Review,
    ReviewDecisionRefused,
    ReviewKind,
    ReviewNotPending,
    ReviewStatus,
    RunStatus,
    SelfApprovalForbidden,
    SQLiteStore,
    Stage,
    UsageError,
    Workflow,
    WorkflowPaused,
    _actions,
    governed_action,
    governed_run,
    governed_workflow,
)
from ada_governance.reviews import payload_hash, sampled
from ada_governance.testing import ManualClock

LEASE = dt.timedelta(minutes=5)
TIMEOUT = dt.timedelta(minutes=30)
PAYLOAD = {"to": "lead@example.com", "amount": 120}
SEND = ("send",)

# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _private_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give each test a registry of action code of its own, restored afterwards."""
    monkeypatch.setattr(_actions, "_REGISTRY", dict(_actions._REGISTRY))


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when a test moves it."""
    return ManualClock()


@pytest.fixture(params=["memory", "sqlite"])
def make_gov(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> Iterator[Callable[..., Governance]]:
    """Make governances that share one store (memory, or one SQLite file) and the clock."""
    memory = MemoryStore()
    made: list[Governance] = []

    def make(**options: Any) -> Governance:
        store = memory if request.param == "memory" else SQLiteStore(tmp_path / "g.db")
        options.setdefault("clock", clock)
        governance = Governance(store, development=True, **options)
        made.append(governance)
        return governance

    yield make
    for governance in made:
        governance.store.close()


@pytest.fixture
def gov(make_gov: Callable[..., Governance]) -> Governance:
    """A governance in development mode on the test's store and clock."""
    return make_gov()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> Callable[[], str]:
    """Make workflow names unique to this test (and to each call)."""
    base = "wf-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:90]
    counter = itertools.count()
    return lambda: f"{base}-{next(counter)}"


# --- helpers -------------------------------------------------------------------------------


def declare(name: str, *, send: dict[str, Any] | None = None, **review: Any) -> Workflow:
    """A workflow with send (needs approval), log (autonomous) and wire (manual only)."""
    review.setdefault("reviewers", ["sdr"])
    return Workflow(
        name=name,
        version="3",
        trigger={"event": "lead"},
        actions=[
            {"name": "send", "risk": "requires_approval", **(send or {})},
            {"name": "log", "risk": "autonomous"},
            {"name": "wire", "risk": "manual_only"},
        ],
        review=review,
    )


class Desk:
    """A workflow whose ``send`` action is registered here and counts each time it runs."""

    def __init__(
        self,
        gov: Governance,
        name: str,
        *,
        send: dict[str, Any] | None = None,
        fail: bool = False,
        **review: Any,
    ) -> None:
        self.gov = gov
        self.workflow = declare(name, send=send, **review)
        self.calls: list[Any] = []
        self.fail = fail
        self.register()

    def register(self) -> None:
        """Make ``deliver`` the code behind ``send`` in this process."""
        governed_action(self.workflow, "send")(self.deliver)

    def unregister(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Forget the code behind ``send``, as a process that never imported it would."""
        monkeypatch.delitem(_actions._REGISTRY, (self.workflow.name, "send"))

    def deliver(self, payload: Any) -> dict[str, Any]:
        """The action: note the payload it ran with."""
        data = payload.model_dump() if isinstance(payload, BaseModel) else payload
        self.calls.append(data)
        if self.fail:
            raise RuntimeError("smtp is down")
        return {"sent": data}

    def request(self, payload: Any = None, *, requester: str | None = None) -> Any:
        """Open a run that does ``send`` with ``payload``; return what the run got."""
        with governed_run(self.workflow, governance=self.gov) as run:
            return run.action(
                "send", self.deliver, PAYLOAD if payload is None else payload, requester=requester
            )

    def events(self) -> list[str]:
        """The workflow's audit events, in order."""
        return [event.event for event in self.gov.audit_events(self.workflow)]


def approve(gov: Governance, review_id: str, reviewer: str = "dana", **options: Any) -> Review:
    """Approve as an ``sdr`` unless other roles are given."""
    options.setdefault("roles", ["sdr"])
    return gov.approve(review_id, reviewer, **options)


@dataclass
class Recorder:
    """A notifier that keeps what it is told."""

    seen: list[tuple[str, str, ReviewStatus]] = field(default_factory=list)

    def notify(self, kind: str, review: Review) -> None:
        self.seen.append((kind, review.id, review.status))


class BrokenNotifier:
    """A notifier that always raises."""

    def notify(self, kind: str, review: Review) -> None:
        raise ConnectionError("the chat service is down")


# --- risk boundaries -------------------------------------------------------------------------


def test_autonomous_action_runs_now_and_is_audited(gov: Governance, name: Any) -> None:
    """An autonomous action runs at once; its result is returned and audited."""
    workflow = declare(name())
    done: list[Any] = []

    with governed_run(workflow, governance=gov) as run:
        result = run.action("log", lambda p: done.append(p) or "logged", {"n": 1})

    assert result == "logged"
    assert done == [{"n": 1}]
    [row] = gov.runs(workflow)
    assert row.status is RunStatus.SUCCEEDED
    [event] = gov.audit_events(workflow, event="action_executed")
    assert event.data["action"] == "log"
    assert event.data["payload_sha256"] == payload_hash({"n": 1})
    assert gov.reviews(workflow) == []


@pytest.mark.parametrize(
    "action", [pytest.param("wire", id="manual-only"), pytest.param("nope", id="undeclared")]
)
def test_forbidden_action_raises_and_fails_the_run_even_if_caught(
    gov: Governance, name: Any, action: str
) -> None:
    """A manual-only or undeclared action is refused and fails the run even if caught."""
    workflow = declare(name())
    done: list[Any] = []

    caught: list[ActionForbidden] = []

    def body() -> None:
        with governed_run(workflow, governance=gov) as run:
            try:
                run.action(action, done.append, {"n": 1})
            except ActionForbidden as error:
                caught.append(error)

    with pytest.raises(ActionForbidden):
        body()

    [refused] = caught
    assert refused.action == action
    assert done == []
    [row] = gov.runs(workflow)
    assert row.status is RunStatus.FAILED
    assert row.error_type == "ActionForbidden"


def test_action_needing_approval_is_held_not_run(gov: Governance, name: Any) -> None:
    """A requires_approval action is held: a PendingAction, a pending_review run, audited."""
    desk = Desk(gov, name())

    with governed_run(desk.workflow, governance=gov) as run:
        handle = run.action("send", desk.deliver, PAYLOAD)
        pending = run.pending_reviews

    assert isinstance(handle, PendingAction)
    assert handle.status is ExecutionStatus.WAITING
    assert pending == (handle.review_id,)
    assert desk.calls == []
    [row] = gov.runs(desk.workflow)
    assert row.status is RunStatus.PENDING_REVIEW
    [event] = gov.audit_events(desk.workflow, event="review_requested")
    assert event.data["review_id"] == handle.review_id
    assert gov.review(handle.review_id).status is ReviewStatus.PENDING


def test_review_stores_what_was_asked_and_the_policy_in_force(gov: Governance, name: Any) -> None:
    """The review keeps the action, payload and its hash, run, requester, version, policy."""
    desk = Desk(gov, name(), approvals_required=2, timeout=TIMEOUT)
    with governed_run(desk.workflow, governance=gov) as run:
        handle = run.action("send", desk.deliver, PAYLOAD, requester="sam")
        run_id = run.id

    review = gov.review(handle.review_id)

    assert review.kind is ReviewKind.APPROVAL
    assert review.workflow == desk.workflow.name
    assert review.action == "send"
    assert review.payload == PAYLOAD
    assert review.original_payload == PAYLOAD
    assert review.payload_sha256 == payload_hash(PAYLOAD)
    assert review.run_id == run_id
    assert review.requester == "sam"
    assert review.version == "3"
    assert review.roles == ("sdr",)
    assert review.approvals_required == 2
    assert review.deadline == review.created_at + TIMEOUT
    assert review.policy["reviewers"] == ["sdr"]
    assert review.policy["approvals_required"] == 2
    assert review.policy["timeout_seconds"] == TIMEOUT.total_seconds()


def test_run_is_the_requester_by_default(gov: Governance, name: Any) -> None:
    """Without a requester, the run that asked is named as the requester."""
    desk = Desk(gov, name())
    handle = desk.request()
    review = gov.review(handle.review_id)
    assert review.requester == f"run:{review.run_id}"


def test_governed_action_outside_a_run_is_forbidden(gov: Governance, name: Any) -> None:
    """A governed action called outside any run raises ActionForbidden and does not run."""
    workflow = declare(name())
    done: list[str] = []

    @governed_action(workflow, "log")
    def log(text: str) -> None:
        done.append(text)

    with pytest.raises(ActionForbidden):
        log(text="hi")
    assert done == []


def test_governed_action_in_a_run_of_another_workflow_is_forbidden(
    gov: Governance, name: Any
) -> None:
    """A governed action called inside a run of another workflow raises ActionForbidden."""
    mine, other = declare(name()), declare(name())
    done: list[str] = []

    @governed_action(mine, "log")
    def log(text: str) -> None:
        done.append(text)

    with governed_run(other, governance=gov), pytest.raises(ActionForbidden):
        log(text="hi")
    assert done == []


def _positional_only(text: str, /) -> None: ...


def _variadic(*texts: str) -> None: ...


@pytest.mark.parametrize(
    ("action", "fn"),
    [
        pytest.param("undeclared", lambda text: None, id="undeclared-action"),
        pytest.param("log", _positional_only, id="positional-only"),
        pytest.param("log", _variadic, id="var-positional"),
    ],
)
def test_governed_action_refuses_bad_declarations_at_decoration(
    name: Any, action: str, fn: Callable[..., Any]
) -> None:
    """An undeclared action or a positional-only function is refused at decoration."""
    workflow = declare(name())
    with pytest.raises(UsageError):
        governed_action(workflow, action)(fn)
    assert _actions.registered_action(workflow.name, action) is None


def test_payload_must_be_json_data(gov: Governance, name: Any) -> None:
    """A payload that is not JSON data raises UsageError; nothing runs or is queued."""
    desk = Desk(gov, name())
    with governed_run(desk.workflow, governance=gov) as run:
        with pytest.raises(UsageError):
            run.action("send", desk.deliver, {"when": object()})
        with pytest.raises(UsageError):
            run.action("log", desk.deliver, {"when": object()})
    assert desk.calls == []
    assert gov.reviews(desk.workflow) == []


def test_payload_must_meet_the_input_schema(gov: Governance, name: Any) -> None:
    """A payload failing the action's input schema raises InvalidPayload; nothing queued."""
    desk = Desk(gov, name(), send={"input_schema": Email})
    with (
        governed_run(desk.workflow, governance=gov) as run,
        pytest.raises(InvalidPayload) as invalid,
    ):
        run.action("send", desk.deliver, {"to": "a@x.io", "amount": "lots"})
    assert invalid.value.action == "send"
    assert gov.reviews(desk.workflow) == []


@pytest.mark.parametrize("action", ["send", "log"])
def test_failing_action_check_refuses_the_action(gov: Governance, name: Any, action: str) -> None:
    """A refusing action check raises CheckFailed: the action neither runs nor is queued."""
    seen: list[Any] = []

    def small(payload: Any) -> str | None:
        seen.append(payload)
        return None if payload["amount"] <= 500 else "amount over 500"

    workflow = Workflow(
        name=name(),
        trigger={"event": "lead"},
        actions=[
            {
                "name": action,
                "risk": "requires_approval" if action == "send" else "autonomous",
                "checks": [Check(name="small", fn=small)],
            },
        ],
        review={"reviewers": ["sdr"]},
    )
    done: list[Any] = []
    with governed_run(workflow, governance=gov) as run:
        with pytest.raises(CheckFailed) as refused:
            run.action(action, done.append, {"to": "a@x.io", "amount": 900})
        allowed = run.action(action, done.append, {"to": "a@x.io", "amount": 10})

    assert refused.value.check == "small"
    assert len(seen) == 2
    if action == "send":
        assert isinstance(allowed, PendingAction)
        assert len(gov.reviews(workflow)) == 1
        assert done == []
    else:
        assert done == [{"to": "a@x.io", "amount": 10}]


def test_async_run_action_runs_or_holds(gov: Governance, name: Any) -> None:
    """run.aaction awaits an autonomous async action and holds one needing approval."""
    desk = Desk(gov, name())
    done: list[Any] = []

    async def log(payload: Any) -> str:
        done.append(payload)
        return "logged"

    async def main() -> tuple[Any, Any]:
        async with governed_run(desk.workflow, governance=gov) as run:
            return await run.aaction("log", log, {"n": 1}), await run.aaction(
                "send", desk.deliver, PAYLOAD
            )

    logged, held = asyncio.run(main())

    assert logged == "logged"
    assert done == [{"n": 1}]
    assert isinstance(held, PendingAction)
    assert desk.calls == []
    assert [row.status for row in gov.runs(desk.workflow)] == [RunStatus.PENDING_REVIEW]


def test_sync_governed_action_runs_with_its_keyword_payload_after_approval(
    gov: Governance, name: Any
) -> None:
    """A sync governed_action is held; after approval it runs once with its arguments."""
    workflow = declare(name())
    sent: list[tuple[str, int]] = []

    @governed_action(workflow, "send")
    def send(to: str, amount: int = 5) -> str:
        sent.append((to, amount))
        return f"sent to {to}"

    @governed_workflow(workflow, governance=gov)
    def follow_up(lead: str) -> Any:
        return send(lead)

    handle = follow_up("a@x.io")
    assert isinstance(handle, PendingAction)
    assert gov.review(handle.review_id).payload == {"to": "a@x.io", "amount": 5}
    assert sent == []

    review = approve(gov, handle.review_id)

    assert sent == [("a@x.io", 5)]
    assert review.execution is ExecutionStatus.SUCCEEDED
    assert review.result == "sent to a@x.io"


def test_async_governed_action_runs_once_after_async_approval(gov: Governance, name: Any) -> None:
    """An async governed_action is held, runs once on aapprove, and can be awaited."""
    workflow = declare(name())
    sent: list[str] = []

    @governed_action(workflow, "send")
    async def send(to: str) -> str:
        await asyncio.sleep(0)
        sent.append(to)
        return f"sent to {to}"

    @governed_workflow(workflow, governance=gov)
    async def follow_up(lead: str) -> Any:
        return await send(to=lead)

    async def main() -> tuple[Review, Review]:
        handle = await follow_up("a@x.io")
        assert isinstance(handle, PendingAction)
        assert sent == []
        decided = await gov.aapprove(handle.review_id, "dana", roles=["sdr"])
        again = await gov.arun_actions()
        assert again == []
        return decided, await handle.wait(1)

    decided, final = asyncio.run(main())

    assert sent == ["a@x.io"]
    assert decided.execution is ExecutionStatus.SUCCEEDED
    assert final.result == "sent to a@x.io"


def test_async_reject_skips_the_action(gov: Governance, name: Any) -> None:
    """areject rejects with a reason; the action is skipped and never runs."""
    desk = Desk(gov, name())
    handle = desk.request()

    review = asyncio.run(gov.areject(handle.review_id, "dana", roles=["sdr"], reason="off tone"))

    assert review.status is ReviewStatus.REJECTED
    assert review.execution is ExecutionStatus.SKIPPED
    assert review.outcome == "rejected"
    assert gov.run_actions() == []
    assert desk.calls == []


# --- authority -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A decision that must be refused, after some decisions that stand."""

    policy: dict[str, Any]
    before: Callable[[Governance, str], Any]
    attempt: Callable[[Governance, str], Any]
    error: type[Exception]


def _nothing(gov: Governance, review_id: str) -> None:
    return None


def _edit(gov: Governance, review_id: str) -> None:
    approve(gov, review_id, "dana", edits={"to": "b@x.io", "amount": 7})


REFUSALS = [
    pytest.param(
        Refusal({}, _nothing, lambda g, r: approve(g, r, "max", roles=["marketing"]), NotAReviewer),
        id="approve-without-a-reviewer-role",
    ),
    pytest.param(
        Refusal(
            {},
            _nothing,
            lambda g, r: g.reject(r, "max", roles="marketing", reason="no"),
            NotAReviewer,
        ),
        id="reject-without-a-reviewer-role",
    ),
    pytest.param(
        Refusal({}, _nothing, lambda g, r: approve(g, r, "sam"), SelfApprovalForbidden),
        id="requester-approves-own-request",
    ),
    pytest.param(
        Refusal(
            {"approvals_required": 2},
            lambda g, r: approve(g, r, "dana"),
            lambda g, r: approve(g, r, "dana"),
            AlreadyDecided,
        ),
        id="same-reviewer-approves-twice",
    ),
    pytest.param(
        Refusal(
            {}, _nothing, lambda g, r: g.reject(r, "dana", roles=["sdr"], reason=""), UsageError
        ),
        id="reject-with-empty-reason",
    ),
    pytest.param(
        Refusal(
            {}, _nothing, lambda g, r: g.reject(r, "dana", roles=["sdr"], reason="  "), UsageError
        ),
        id="reject-with-blank-reason",
    ),
    pytest.param(
        Refusal(
            {},
            lambda g, r: g.reject(r, "dana", roles=["sdr"], reason="no"),
            lambda g, r: approve(g, r, "eve"),
            ReviewNotPending,
        ),
        id="approve-after-rejection",
    ),
    pytest.param(
        Refusal(
            {},
            lambda g, r: g.reject(r, "dana", roles=["sdr"], reason="no"),
            lambda g, r: g.reject(r, "eve", roles=["sdr"], reason="no"),
            ReviewNotPending,
        ),
        id="reject-after-rejection",
    ),
    pytest.param(
        Refusal(
            {},
            lambda g, r: approve(g, r, "dana"),
            lambda g, r: approve(g, r, "eve"),
            ReviewNotPending,
        ),
        id="approve-after-approval",
    ),
    pytest.param(
        Refusal({}, _nothing, lambda g, r: g.approve(r, "dana"), UsageError),
        id="roles-missing-without-a-directory",
    ),
    pytest.param(
        Refusal({}, _nothing, lambda g, r: approve(g, r, "dana", edits={"to": 5}), InvalidPayload),
        id="edit-fails-the-input-schema",
    ),
    pytest.param(
        Refusal(
            {"approvals_required": 2},
            _edit,
            lambda g, r: approve(g, r, "eve", expected_sha256=payload_hash(PAYLOAD)),
            PayloadChanged,
        ),
        id="approve-a-payload-edited-since",
    ),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_decision_raises_and_changes_nothing(
    gov: Governance, name: Any, case: Refusal
) -> None:
    """A refused decision raises and leaves the review, the audit log and the action alone."""
    desk = Desk(gov, name(), send={"input_schema": Email}, **case.policy)
    handle = desk.request(requester="sam")
    case.before(gov, handle.review_id)
    before = gov.review(handle.review_id)
    events = desk.events()
    calls = list(desk.calls)

    with pytest.raises(case.error):
        case.attempt(gov, handle.review_id)

    assert gov.review(handle.review_id) == before
    assert desk.events() == events
    assert desk.calls == calls


def test_refusals_are_review_decision_refused(gov: Governance, name: Any) -> None:
    """Refusals are ReviewDecisionRefused errors that carry the review id."""
    desk = Desk(gov, name())
    handle = desk.request(requester="sam")
    with pytest.raises(ReviewDecisionRefused) as refused:
        approve(gov, handle.review_id, "sam")
    assert refused.value.review_id == handle.review_id


def test_requester_may_approve_when_the_policy_allows(gov: Governance, name: Any) -> None:
    """With requester_may_approve, the requester's approval counts and the action runs."""
    desk = Desk(gov, name(), requester_may_approve=True)
    handle = desk.request(requester="sam")

    review = approve(gov, handle.review_id, "sam")

    assert review.status is ReviewStatus.APPROVED
    assert desk.calls == [PAYLOAD]


def test_two_approvals_need_two_reviewers_and_the_action_runs_after_the_second(
    gov: Governance, name: Any
) -> None:
    """With approvals_required=2 the action runs only after a second reviewer approves."""
    desk = Desk(gov, name(), approvals_required=2)
    handle = desk.request()

    first = approve(gov, handle.review_id, "dana")
    assert first.status is ReviewStatus.PENDING
    assert first.execution is ExecutionStatus.WAITING
    assert gov.run_actions() == []
    assert desk.calls == []

    second = approve(gov, handle.review_id, "eve")
    assert second.status is ReviewStatus.APPROVED
    assert second.execution is ExecutionStatus.SUCCEEDED
    assert [d.reviewer for d in second.approvals] == ["dana", "eve"]
    assert desk.calls == [PAYLOAD]


def test_reject_records_the_reason_and_the_action_never_runs(gov: Governance, name: Any) -> None:
    """A rejection with a reason skips the action for good."""
    desk = Desk(gov, name())
    handle = desk.request()

    review = gov.reject(handle.review_id, "dana", roles=["sdr"], reason="wrong tone")

    assert review.status is ReviewStatus.REJECTED
    assert review.execution is ExecutionStatus.SKIPPED
    assert review.decisions[-1].comment == "wrong tone"
    assert review.decisions[-1].verdict == "reject"
    assert gov.run_actions() == []
    assert desk.calls == []


@pytest.mark.parametrize(
    "directory",
    [
        pytest.param({"dana": ["sdr"], "max": ["marketing"]}, id="mapping"),
        pytest.param(lambda who: ["sdr"] if who == "dana" else ["marketing"], id="callable"),
    ],
)
def test_reviewer_directory_overrides_roles_the_caller_claims(
    make_gov: Callable[..., Governance], name: Any, directory: Any
) -> None:
    """With a reviewer directory, the roles it gives count and the caller's claims don't."""
    gov = make_gov(reviewer_roles=directory)
    desk = Desk(gov, name())
    handle = desk.request()

    with pytest.raises(NotAReviewer):
        gov.approve(handle.review_id, "max", roles=["sdr"])
    review = gov.approve(handle.review_id, "dana", roles=["marketing"])

    assert review.status is ReviewStatus.APPROVED
    assert review.decisions[-1].roles == ("sdr",)


def test_reviewer_missing_from_the_directory_holds_no_role(
    make_gov: Callable[..., Governance], name: Any
) -> None:
    """A reviewer the directory does not list is not a reviewer, whatever they claim."""
    gov = make_gov(reviewer_roles={"dana": ["sdr"]})
    desk = Desk(gov, name())
    handle = desk.request()
    with pytest.raises(NotAReviewer):
        gov.approve(handle.review_id, "zoe", roles=["sdr"])


# --- edits -----------------------------------------------------------------------------------


def test_approval_with_edits_runs_the_edited_payload_and_keeps_the_original(
    gov: Governance, name: Any
) -> None:
    """An edited approval keeps both payloads and runs the action with the edited one."""
    desk = Desk(gov, name(), send={"input_schema": Email})
    handle = desk.request()
    edits = {"to": "boss@example.com", "amount": 120}

    review = approve(gov, handle.review_id, edits=edits, comment="right person")

    assert review.original_payload == PAYLOAD
    assert review.payload == edits
    assert review.payload_sha256 == payload_hash(edits)
    assert review.edited is True
    assert review.diff() == [{"field": "to", "before": PAYLOAD["to"], "after": edits["to"]}]
    assert review.outcome == "approved with edits"
    assert review.decisions[-1].edited is True
    assert desk.calls == [edits]
    assert review.result == {"sent": edits}


def test_approval_without_edits_is_approved_unchanged(gov: Governance, name: Any) -> None:
    """An approval that changes nothing is 'approved unchanged' with an empty diff."""
    desk = Desk(gov, name())
    handle = desk.request()

    review = approve(gov, handle.review_id)

    assert review.edited is False
    assert review.diff() == []
    assert review.outcome == "approved unchanged"
    assert desk.calls == [PAYLOAD]


def test_invalid_edit_is_refused_against_the_input_schema(gov: Governance, name: Any) -> None:
    """An edit failing the input schema raises InvalidPayload naming the field."""
    desk = Desk(gov, name(), send={"input_schema": Email})
    handle = desk.request()
    with pytest.raises(InvalidPayload) as invalid:
        approve(gov, handle.review_id, edits={"to": "b@x.io", "amount": "many"})
    assert any("amount" in problem for problem in invalid.value.errors)
    assert desk.calls == []


def test_edit_makes_earlier_approvals_of_the_old_payload_stop_counting(
    gov: Governance, name: Any
) -> None:
    """After an edit, approvals of the old payload no longer count."""
    desk = Desk(gov, name(), approvals_required=2)
    handle = desk.request()
    edits = {"to": "b@x.io", "amount": 1}

    approve(gov, handle.review_id, "dana")
    edited = approve(gov, handle.review_id, "eve", edits=edits)
    assert edited.status is ReviewStatus.PENDING
    assert [d.reviewer for d in edited.approvals] == ["eve"]
    assert desk.calls == []

    final = approve(gov, handle.review_id, "dana", expected_sha256=payload_hash(edits))

    assert final.status is ReviewStatus.APPROVED
    assert desk.calls == [edits]


def test_stale_approval_after_an_edit_is_refused(gov: Governance, name: Any) -> None:
    """Approving a payload someone has edited since raises PayloadChanged."""
    desk = Desk(gov, name(), approvals_required=2)
    handle = desk.request()
    shown = gov.review(handle.review_id).payload_sha256
    edits = {"to": "b@x.io", "amount": 1}
    approve(gov, handle.review_id, "dana", edits=edits)

    with pytest.raises(PayloadChanged):
        approve(gov, handle.review_id, "eve", expected_sha256=shown)
    review = approve(gov, handle.review_id, "eve", expected_sha256=payload_hash(edits))

    assert review.status is ReviewStatus.APPROVED
    assert desk.calls == [edits]


# --- timeouts --------------------------------------------------------------------------------


def test_nothing_expires_before_the_deadline(
    gov: Governance, name: Any, clock: ManualClock
) -> None:
    """expire_overdue before the deadline changes nothing."""
    desk = Desk(gov, name(), timeout=TIMEOUT)
    handle = desk.request()
    before = gov.review(handle.review_id)

    clock.advance(TIMEOUT - dt.timedelta(seconds=1))

    assert gov.expire_overdue() == []
    assert gov.review(handle.review_id) == before


def test_timeout_reject_expires_and_skips_the_action(
    gov: Governance, name: Any, clock: ManualClock
) -> None:
    """on_timeout reject: past the deadline the review expires and its action never runs."""
    desk = Desk(gov, name(), timeout=TIMEOUT, on_timeout="reject")
    handle = desk.request()

    clock.advance(TIMEOUT)
    [expired] = gov.expire_overdue()

    assert expired.id == handle.review_id
    assert expired.status is ReviewStatus.EXPIRED
    assert expired.execution is ExecutionStatus.SKIPPED
    assert expired.outcome == "expired"
    assert gov.run_actions() == []
    with pytest.raises(ReviewNotPending):
        approve(gov, handle.review_id)
    assert desk.calls == []
    assert desk.events()[-1] == "review_expired"
    assert gov.state(desk.workflow) is None


def test_timeout_escalate_hands_over_then_expires(
    gov: Governance, name: Any, clock: ManualClock
) -> None:
    """on_timeout escalate: handed to escalate_to with a new deadline, then expired."""
    desk = Desk(gov, name(), timeout=TIMEOUT, on_timeout="escalate", escalate_to=["lead"])
    handle = desk.request()

    now = clock.advance(TIMEOUT + dt.timedelta(minutes=1))
    [escalated] = gov.expire_overdue()

    assert escalated.status is ReviewStatus.PENDING
    assert escalated.roles == ("lead",)
    assert escalated.deadline == now + TIMEOUT
    with pytest.raises(NotAReviewer):
        approve(gov, handle.review_id, roles=["sdr"])
    assert desk.events()[-1] == "review_escalated"

    clock.advance(TIMEOUT - dt.timedelta(seconds=1))
    assert gov.expire_overdue() == []
    clock.advance(dt.timedelta(seconds=1))
    [expired] = gov.expire_overdue()

    assert expired.status is ReviewStatus.EXPIRED
    assert expired.execution is ExecutionStatus.SKIPPED
    assert desk.events()[-1] == "review_expired"
    assert desk.calls == []


def test_escalated_review_can_be_approved_by_the_new_roles(
    gov: Governance, name: Any, clock: ManualClock
) -> None:
    """After escalation, a holder of an escalate_to role may approve, and the action runs."""
    desk = Desk(gov, name(), timeout=TIMEOUT, on_timeout="escalate", escalate_to=["lead"])
    handle = desk.request()
    clock.advance(TIMEOUT)
    gov.expire_overdue()

    review = approve(gov, handle.review_id, "lee", roles=["lead"])

    assert review.execution is ExecutionStatus.SUCCEEDED
    assert desk.calls == [PAYLOAD]


def test_timeout_pause_workflow_expires_and_pauses(
    gov: Governance, name: Any, clock: ManualClock
) -> None:
    """on_timeout pause_workflow: the review expires and the workflow is paused."""
    desk = Desk(gov, name(), timeout=TIMEOUT, on_timeout="pause_workflow")
    handle = desk.request()

    clock.advance(TIMEOUT)
    [expired] = gov.expire_overdue()

    assert expired.id == handle.review_id
    assert expired.status is ReviewStatus.EXPIRED
    state = gov.state(desk.workflow)
    assert state is not None
    assert state.stage is Stage.PAUSED
    with pytest.raises(WorkflowPaused):
        desk.request()
    assert desk.calls == []


# --- review modes ----------------------------------------------------------------------------


def test_sampled_mode_holds_a_reproducible_share_of_runs(gov: Governance, name: Any) -> None:
    """Sampled mode holds exactly the runs sampled(run_id, rate, action) picks, about rate."""
    rate = 0.3
    desk = Desk(gov, name(), mode="sampled", sample_rate=rate)

    for index in range(200):
        desk.request({"to": f"l{index}@x.io", "amount": index})

    run_ids = [row.run_id for row in gov.runs(desk.workflow)]
    held = {review.run_id for review in gov.reviews(desk.workflow)}
    assert len(run_ids) == 200
    assert held == {run_id for run_id in run_ids if sampled(run_id, rate, salt="send")}
    assert 0.15 <= len(held) / 200 <= 0.45  # over 4 standard deviations either side
    assert len(desk.calls) == 200 - len(held)
    statuses = {row.run_id: row.status for row in gov.runs(desk.workflow)}
    assert {
        run_id for run_id, status in statuses.items() if status is RunStatus.PENDING_REVIEW
    } == held


@pytest.mark.parametrize(
    "condition",
    [
        pytest.param({"field": "amount", "op": "gt", "value": 500}, id="field-rule"),
        pytest.param(lambda payload: payload["amount"] > 500, id="callable"),
    ],
)
def test_conditional_mode_holds_only_payloads_meeting_the_condition(
    gov: Governance, name: Any, condition: Any
) -> None:
    """In conditional mode only payloads meeting the condition wait; the others run."""
    desk = Desk(gov, name(), mode="conditional", condition=condition)

    results = {
        amount: desk.request({"to": "a@x.io", "amount": amount}) for amount in (100, 500, 501, 900)
    }

    assert {a for a, result in results.items() if isinstance(result, PendingAction)} == {501, 900}
    assert desk.calls == [{"to": "a@x.io", "amount": 100}, {"to": "a@x.io", "amount": 500}]
    assert sorted(r.payload["amount"] for r in gov.reviews(desk.workflow)) == [501, 900]


def test_quality_sample_reviews_an_autonomous_action_after_it_ran(
    gov: Governance, name: Any
) -> None:
    """quality_sample_rate queues a non-blocking review of an action that ran; judge it."""
    workflow = declare(name(), quality_sample_rate=1.0)
    done: list[Any] = []

    with governed_run(workflow, governance=gov) as run:
        result = run.action("log", lambda p: done.append(p) or "logged", {"n": 1})
        assert run.pending_reviews == ()

    assert result == "logged"
    assert done == [{"n": 1}]
    [row] = gov.runs(workflow)
    assert row.status is RunStatus.SUCCEEDED
    [sample] = gov.reviews(workflow)
    assert sample.kind is ReviewKind.SAMPLE
    assert sample.status is ReviewStatus.PENDING
    assert sample.execution is ExecutionStatus.SUCCEEDED
    assert sample.result == "logged"

    judged = gov.judge(sample.id, "dana", correct=False, comment="wrong lead", roles=["sdr"])

    assert judged.decisions[-1].verdict == "incorrect"
    assert judged.decisions[-1].comment == "wrong lead"
    assert judged.execution is ExecutionStatus.SUCCEEDED
    assert gov.run_actions() == []
    assert done == [{"n": 1}]


def test_no_quality_sample_without_a_rate(gov: Governance, name: Any) -> None:
    """Without quality_sample_rate, an autonomous action queues no review."""
    workflow = declare(name())
    with governed_run(workflow, governance=gov) as run:
        run.action("log", lambda p: None, {"n": 1})
    assert gov.reviews(workflow) == []


# --- exactly once ----------------------------------------------------------------------------


def test_approval_runs_a_registered_action_once_and_never_again(gov: Governance, name: Any) -> None:
    """An approved action whose code is registered runs at once and never again."""
    desk = Desk(gov, name())
    handle = desk.request()

    review = approve(gov, handle.review_id)

    assert review.execution is ExecutionStatus.SUCCEEDED
    assert review.result == {"sent": PAYLOAD}
    assert review.executed_at is not None
    with pytest.raises(ReviewNotPending):
        approve(gov, handle.review_id, "eve")
    assert gov.run_actions() == []
    assert desk.calls == [PAYLOAD]
    assert desk.events() == ["review_requested", "review_decided", "action_executed"]


def test_approval_where_the_code_is_missing_leaves_the_action_ready(
    make_gov: Callable[..., Governance], name: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Approved where its code is missing, an action waits ready for a process with it."""
    gov = make_gov()
    desk = Desk(gov, name())
    handle = desk.request()
    desk.unregister(monkeypatch)
    elsewhere = make_gov()

    review = approve(elsewhere, handle.review_id)
    assert review.execution is ExecutionStatus.READY
    assert elsewhere.run_actions() == []
    assert gov.review(handle.review_id).execution is ExecutionStatus.READY

    desk.register()
    [done] = gov.run_actions()

    assert done.execution is ExecutionStatus.SUCCEEDED
    assert gov.run_actions() == []
    assert desk.calls == [PAYLOAD]


def test_rejected_and_pending_actions_never_run_via_run_actions(gov: Governance, name: Any) -> None:
    """run_actions runs neither a rejected action nor one still waiting for approval."""
    desk = Desk(gov, name(), approvals_required=2)
    rejected, waiting, half = desk.request(), desk.request(), desk.request()
    gov.reject(rejected.review_id, "dana", roles=["sdr"], reason="no")
    approve(gov, half.review_id, "dana")

    assert gov.run_actions() == []
    assert desk.calls == []
    assert waiting.status is ExecutionStatus.WAITING
    assert half.status is ExecutionStatus.WAITING
    assert rejected.status is ExecutionStatus.SKIPPED


def _approve_unregistered(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> str:
    """Queue and approve ``send`` while its code is not registered; return the review id."""
    handle = desk.request()
    desk.unregister(monkeypatch)
    approve(desk.gov, handle.review_id)
    assert desk.gov.review(handle.review_id).execution is ExecutionStatus.READY
    return str(handle.review_id)


def test_action_claimed_by_a_live_worker_is_not_run_by_another(
    gov: Governance, name: Any, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An action under another worker's live lease is neither run nor taken over."""
    desk = Desk(gov, name())
    review_id = _approve_unregistered(desk, monkeypatch)
    gov.store.update_review(review_id, lambda r: r.claim("busy-worker", clock.now(), LEASE))
    desk.register()

    clock.advance(LEASE - dt.timedelta(seconds=1))

    assert gov.run_actions() == []
    review = gov.review(review_id)
    assert review.execution is ExecutionStatus.CLAIMED
    assert review.claimed_by == "busy-worker"
    assert desk.calls == []


def test_lapsed_claim_becomes_unknown_and_is_not_run_again(
    gov: Governance, name: Any, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim whose lease lapsed becomes unknown (audited) and is never run again."""
    desk = Desk(gov, name())
    review_id = _approve_unregistered(desk, monkeypatch)
    gov.store.update_review(review_id, lambda r: r.claim("dead-worker", clock.now(), LEASE))
    desk.register()

    assert gov.run_actions() == []
    clock.advance(LEASE + dt.timedelta(seconds=1))
    [settled] = gov.run_actions()

    assert settled.id == review_id
    assert settled.execution is ExecutionStatus.UNKNOWN
    assert gov.run_actions() == []
    assert desk.calls == []
    assert desk.events()[-1] == "action_unknown"


def test_lapsed_claim_on_an_idempotent_action_runs_it_once(
    gov: Governance, name: Any, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idempotent action whose claim lapsed is ready again and runs exactly once."""
    desk = Desk(gov, name(), send={"idempotent": True})
    review_id = _approve_unregistered(desk, monkeypatch)
    gov.store.update_review(review_id, lambda r: r.claim("dead-worker", clock.now(), LEASE))
    desk.register()

    clock.advance(LEASE + dt.timedelta(seconds=1))
    [done] = gov.run_actions()

    assert done.execution is ExecutionStatus.SUCCEEDED
    assert gov.run_actions() == []
    assert desk.calls == [PAYLOAD]
    assert "action_unknown" not in desk.events()


def test_paused_workflow_leaves_approved_actions_ready_until_resumed(
    gov: Governance, name: Any
) -> None:
    """A paused workflow's approved actions stay ready and unrun until it is resumed."""
    desk = Desk(gov, name())
    handle = desk.request()
    gov.set_stage(desk.workflow, "paused", actor="ops", reason="incident")

    review = approve(gov, handle.review_id)
    assert review.execution is ExecutionStatus.READY
    assert gov.run_actions() == []
    assert desk.calls == []

    gov.set_stage(desk.workflow, "draft", actor="ops", reason="resolved")
    [done] = gov.run_actions()

    assert done.execution is ExecutionStatus.SUCCEEDED
    assert desk.calls == [PAYLOAD]


def test_tampered_payload_is_never_run(
    gov: Governance, name: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored payload changed after approval without its hash fails and never runs."""
    desk = Desk(gov, name())
    review_id = _approve_unregistered(desk, monkeypatch)
    gov.store.update_review(
        review_id, lambda r: dataclasses.replace(r, payload={"to": "evil@x.io", "amount": 9999})
    )
    desk.register()

    [done] = gov.run_actions()

    assert done.execution is ExecutionStatus.FAILED
    assert done.error is not None
    assert "PayloadChanged" in done.error
    assert desk.calls == []
    assert desk.events()[-1] == "action_failed"


def test_payload_changed_with_its_hash_is_never_run(
    gov: Governance, name: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored payload replaced together with its hash (no approval of it) never runs."""
    desk = Desk(gov, name())
    review_id = _approve_unregistered(desk, monkeypatch)
    forged = {"to": "evil@x.io", "amount": 9999}
    gov.store.update_review(
        review_id,
        lambda r: dataclasses.replace(r, payload=forged, payload_sha256=payload_hash(forged)),
    )
    desk.register()

    [done] = gov.run_actions()

    assert done.execution is ExecutionStatus.FAILED
    assert done.error is not None
    assert "PayloadChanged" in done.error
    assert desk.calls == []


def test_action_that_raises_is_failed_with_its_error(gov: Governance, name: Any) -> None:
    """An approved action that raises is failed with the error text and audited."""
    desk = Desk(gov, name(), fail=True)
    handle = desk.request()

    review = approve(gov, handle.review_id)

    assert review.execution is ExecutionStatus.FAILED
    assert review.error is not None
    assert "RuntimeError" in review.error
    assert "smtp is down" in review.error
    assert review.result is None
    assert gov.run_actions() == []
    assert len(desk.calls) == 1
    [event] = gov.audit_events(desk.workflow, event="action_failed")
    assert event.data["review_id"] == handle.review_id


def test_two_processes_run_each_approved_action_exactly_once(
    tmp_path: Path, clock: ManualClock, name: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes racing on one SQLite file run each of 10 actions exactly once."""
    db, outbox = tmp_path / "g.db", tmp_path / "outbox.txt"
    workflow_name = name()
    gov = Governance(SQLiteStore(db), development=True, clock=clock)
    deliver = _review_support.register_outbox(workflow_name, tmp_path / "never.txt")

    @governed_workflow(_review_support.outbox_workflow(workflow_name), governance=gov)
    def queue(index: int) -> Any:
        return deliver(line=f"line-{index}")  # type: ignore[operator]

    handles = [queue(index) for index in range(10)]
    monkeypatch.delitem(_actions._REGISTRY, (workflow_name, _review_support.ACTION))
    for handle in handles:
        assert (
            gov.approve(handle.review_id, "olga", roles=["ops"]).execution is ExecutionStatus.READY
        )

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    workers = [
        context.Process(
            target=_review_support.run_outbox_worker,
            args=(str(db), workflow_name, str(outbox), start),
        )
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0

    lines = outbox.read_text(encoding="utf-8").splitlines()
    assert sorted(lines) == sorted(f"line-{index}" for index in range(10))
    assert not (tmp_path / "never.txt").exists()
    reviews = [gov.review(handle.review_id) for handle in handles]
    assert {review.execution for review in reviews} == {ExecutionStatus.SUCCEEDED}
    gov.store.close()


# --- waiting on a pending action -------------------------------------------------------------


def test_wait_returns_the_final_review_once_decided(gov: Governance, name: Any) -> None:
    """In sync code, wait returns the final review after approval."""
    desk = Desk(gov, name())
    handle = desk.request()
    approve(gov, handle.review_id)

    review = handle.wait(1)

    assert review.execution is ExecutionStatus.SUCCEEDED
    assert review.result == {"sent": PAYLOAD}


def test_wait_times_out_while_pending(gov: Governance, name: Any) -> None:
    """In sync code, wait raises TimeoutError while the review is pending."""
    desk = Desk(gov, name())
    handle = desk.request()
    with pytest.raises(TimeoutError):
        handle.wait(0.05, poll=0.01)


def test_wait_returns_for_a_rejected_action(gov: Governance, name: Any) -> None:
    """wait returns once the action will never run (rejected: skipped)."""
    desk = Desk(gov, name())
    handle = desk.request()
    gov.reject(handle.review_id, "dana", roles=["sdr"], reason="no")
    assert handle.wait(1).execution is ExecutionStatus.SKIPPED


def test_await_wait_in_async_code(gov: Governance, name: Any) -> None:
    """In async code, await handle.wait(timeout) times out, then returns the review."""
    desk = Desk(gov, name())
    handle = desk.request()

    async def main() -> Review:
        with pytest.raises(TimeoutError):
            await handle.wait(0.05, poll=0.01)
        await gov.aapprove(handle.review_id, "dana", roles=["sdr"])
        return await handle.wait(1)

    review = asyncio.run(main())

    assert review.execution is ExecutionStatus.SUCCEEDED
    assert desk.calls == [PAYLOAD]


# --- telemetry -------------------------------------------------------------------------------


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

    def named(self, span_name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == span_name]

    def points(self, metric_name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == metric_name
            for point in metric.data.data_points
        ]


@pytest.fixture
def otel() -> Iterator[Otel]:
    """In-memory span and metric providers, shut down after the test."""
    providers = Otel()
    yield providers
    providers.tracer_provider.shutdown()
    providers.meter_provider.shutdown()


def test_review_request_is_an_event_on_the_run_span(
    make_gov: Callable[..., Governance], name: Any, otel: Otel
) -> None:
    """The run span gets an ada.review.requested event naming the review and action."""
    gov = make_gov(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    desk = Desk(gov, name())
    handle = desk.request()

    [run_span] = otel.named(f"invoke_workflow {desk.workflow.name}")
    [event] = [e for e in run_span.events if e.name == "ada.review.requested"]

    assert event.attributes is not None
    assert event.attributes["ada.review.id"] == handle.review_id
    assert event.attributes["gen_ai.tool.name"] == "send"


def test_approved_action_span_is_a_new_trace_linked_to_the_run(
    make_gov: Callable[..., Governance], name: Any, otel: Otel
) -> None:
    """An approved action's execute_tool span is a new trace linked to the run span."""
    gov = make_gov(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    desk = Desk(gov, name())
    handle = desk.request()
    [run_span] = otel.named(f"invoke_workflow {desk.workflow.name}")

    approve(gov, handle.review_id)

    [action_span] = otel.named("execute_tool send")
    assert run_span.context is not None
    assert action_span.context is not None
    assert action_span.context.trace_id != run_span.context.trace_id
    assert action_span.parent is None
    [link] = action_span.links
    assert link.context.span_id == run_span.context.span_id
    assert link.context.trace_id == run_span.context.trace_id
    assert action_span.attributes is not None
    assert action_span.attributes["ada.review.id"] == handle.review_id
    assert action_span.attributes["ada.action.status"] == "succeeded"


def test_review_decisions_and_latency_metrics(
    make_gov: Callable[..., Governance], name: Any, otel: Otel, clock: ManualClock
) -> None:
    """Decisions count by verdict and edit; latency is the wait since the request."""
    gov = make_gov(tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)
    desk = Desk(gov, name())
    edited, rejected = desk.request(), desk.request()

    clock.advance(90)
    approve(gov, edited.review_id, edits={"to": "b@x.io", "amount": 1})
    gov.reject(rejected.review_id, "dana", roles=["sdr"], reason="no")

    decisions = {
        (p.attributes["ada.review.decision"], p.attributes["ada.review.edited"]): p.value
        for p in otel.points("ada.review.decisions")
    }
    assert decisions == {("approve", True): 1, ("reject", False): 1}
    latency = {p.attributes["ada.review.decision"]: p for p in otel.points("ada.review.latency")}
    assert latency["approve"].count == 1
    assert latency["approve"].sum == 90.0
    assert latency["reject"].sum == 90.0


# --- notifiers -------------------------------------------------------------------------------


def test_notifiers_hear_requests_decisions_escalations_and_expiries(
    make_gov: Callable[..., Governance], name: Any, clock: ManualClock
) -> None:
    """A notifier is told when a review is requested, decided, escalated and expired."""
    recorder = Recorder()
    gov = make_gov(notifiers=[recorder])
    desk = Desk(gov, name(), timeout=TIMEOUT, on_timeout="escalate", escalate_to=["lead"])
    decided, forgotten = desk.request(), desk.request()

    approve(gov, decided.review_id)
    clock.advance(TIMEOUT)
    gov.expire_overdue()
    clock.advance(TIMEOUT)
    gov.expire_overdue()

    assert recorder.seen == [
        ("requested", decided.review_id, ReviewStatus.PENDING),
        ("requested", forgotten.review_id, ReviewStatus.PENDING),
        ("decided", decided.review_id, ReviewStatus.APPROVED),
        ("escalated", forgotten.review_id, ReviewStatus.PENDING),
        ("expired", forgotten.review_id, ReviewStatus.EXPIRED),
    ]


def test_broken_notifier_does_not_break_decisions(
    make_gov: Callable[..., Governance], name: Any
) -> None:
    """A notifier that raises breaks no decision, and other notifiers are still told."""
    recorder = Recorder()
    gov = make_gov(notifiers=[BrokenNotifier(), recorder])
    desk = Desk(gov, name())
    handle = desk.request()

    review = approve(gov, handle.review_id)

    assert review.execution is ExecutionStatus.SUCCEEDED
    assert desk.calls == [PAYLOAD]
    assert [kind for kind, _, _ in recorder.seen] == ["requested", "decided"]


# --- decisions that fit only one kind of review, async code, late finishes ------------------


def test_judge_refuses_an_approval_review(gov: Governance, name: Any) -> None:
    """judge refuses an approval review and changes nothing."""
    desk = Desk(gov, name(), approvals_required=2)
    handle = desk.request(requester="sam")
    before = gov.review(handle.review_id)

    with pytest.raises(ReviewDecisionRefused):
        gov.judge(handle.review_id, "sam", correct=True, roles=["sdr"])

    assert gov.review(handle.review_id) == before


@pytest.mark.parametrize("decide", ["approve", "reject"])
def test_approve_and_reject_refuse_a_sample_review(gov: Governance, name: Any, decide: str) -> None:
    """approve and reject refuse a sample review; its execution stays succeeded."""
    workflow = declare(name(), quality_sample_rate=1.0)
    with governed_run(workflow, governance=gov) as run:
        run.action("log", lambda p: None, {"n": 1})
    [sample] = gov.reviews(workflow)

    decisions = {
        "approve": lambda: approve(gov, sample.id),
        "reject": lambda: gov.reject(sample.id, "dana", roles=["sdr"], reason="no"),
    }
    with pytest.raises(ReviewDecisionRefused):
        decisions[decide]()

    assert gov.review(sample.id) == sample
    assert sample.execution is ExecutionStatus.SUCCEEDED


def test_sync_callers_leave_an_async_action_ready_for_an_async_worker(
    gov: Governance, name: Any
) -> None:
    """Sync callers leave an async action ready; arun_actions runs it once."""
    workflow = declare(name())
    sent: list[str] = []

    @governed_action(workflow, "send")
    async def send(to: str) -> str:
        sent.append(to)
        return "sent"

    @governed_workflow(workflow, governance=gov)
    async def follow_up() -> Any:
        return await send(to="a@x.io")

    handle = asyncio.run(follow_up())
    review = approve(gov, handle.review_id)

    assert review.execution is ExecutionStatus.READY
    assert gov.run_actions() == []
    assert sent == []
    [done] = asyncio.run(gov.arun_actions())
    assert done.execution is ExecutionStatus.SUCCEEDED
    assert done.result == "sent"
    assert asyncio.run(gov.arun_actions()) == []
    assert sent == ["a@x.io"]


def test_action_outliving_its_lease_is_recorded_not_raised(
    gov: Governance, name: Any, clock: ManualClock
) -> None:
    """When an action outlives its lease, approve returns it unknown and audits the finish."""
    workflow = declare(name())
    sent: list[str] = []

    @governed_action(workflow, "send")
    def send(to: str) -> str:
        sent.append(to)
        clock.advance(LEASE + dt.timedelta(seconds=1))
        gov.run_actions(worker="other-worker")
        return "sent"

    @governed_workflow(workflow, governance=gov)
    def follow_up() -> Any:
        return send(to="a@x.io")

    handle = follow_up()
    review = approve(gov, handle.review_id)

    assert review.execution is ExecutionStatus.UNKNOWN
    assert sent == ["a@x.io"]
    events = [event.event for event in gov.audit_events(workflow)]
    assert events[-2:] == ["action_unknown", "action_finished_late"]
    [late] = gov.audit_events(workflow, event="action_finished_late")
    assert late.data["result"] == "sent"
    assert gov.run_actions() == []
    assert sent == ["a@x.io"]


# --- known bugs ------------------------------------------------------------------------------


@pytest.mark.parametrize("on_timeout", ["reject", "escalate"])
def test_review_past_its_deadline_cannot_be_approved(
    gov: Governance, name: Any, clock: ManualClock, on_timeout: str
) -> None:
    """A review past its deadline takes no approval, even before expire_overdue runs."""
    desk = Desk(gov, name(), timeout=TIMEOUT, on_timeout=on_timeout, escalate_to=["lead"])
    handle = desk.request()
    clock.advance(TIMEOUT + dt.timedelta(hours=1))

    with contextlib.suppress(ReviewDecisionRefused):
        approve(gov, handle.review_id, roles=["sdr"])

    assert desk.calls == []
    assert gov.review(handle.review_id).status is not ReviewStatus.APPROVED


def test_one_reviewer_cannot_give_both_approvals_by_editing_back(
    gov: Governance, name: Any
) -> None:
    """One reviewer's approvals of a payload edited away and back count once."""
    desk = Desk(gov, name(), approvals_required=2)
    handle = desk.request()
    approve(gov, handle.review_id, "dana")
    approve(gov, handle.review_id, "eve", edits={"to": "other@x.io", "amount": 1})

    with contextlib.suppress(ReviewDecisionRefused):
        approve(gov, handle.review_id, "dana", edits=PAYLOAD)

    review = gov.review(handle.review_id)
    assert [d.reviewer for d in review.approvals] == ["dana"]
    assert review.status is ReviewStatus.PENDING
    assert desk.calls == []


def test_edited_payload_must_pass_the_action_checks(gov: Governance, name: Any) -> None:
    """An edit the action's checks refuse is refused; the action never runs with it."""

    def at_most_500(payload: Any) -> str | None:
        return None if payload["amount"] <= 500 else "amount over 500"

    desk = Desk(gov, name(), send={"checks": [Check(name="limit", fn=at_most_500)]})
    handle = desk.request({"to": "a@x.io", "amount": 100})

    with contextlib.suppress(GovernanceError):
        approve(gov, handle.review_id, edits={"to": "a@x.io", "amount": 90_000})

    assert desk.calls == []


class _Module:
    """Holds a model class that has no import path (defined in a function)."""

    @staticmethod
    def local_schema() -> type[BaseModel]:
        class Local(BaseModel):
            to: str

        return Local


def test_input_schema_without_import_path_works_here_and_refuses_edits_elsewhere(
    gov: Governance, name: Any
) -> None:
    """A local input schema checks payloads in its own process; an edit decided where the
    workflow is not known cannot be checked, so it is refused."""
    desk = Desk(gov, name(), send={"input_schema": _Module.local_schema()})
    with governed_run(desk.workflow, governance=gov) as run:
        handle = run.action("send", desk.deliver, {"to": "a@x.io"})
    review = gov.review(handle.review_id)
    assert review.policy["input_schema"] is None
    assert review.policy["has_input_schema"] is True


def test_pending_action_names_its_workflow_action_and_run(gov: Governance, name: Any) -> None:
    """The PendingAction names the workflow and action; its review, the requesting run."""
    desk = Desk(gov, name())
    with governed_run(desk.workflow, governance=gov) as run:
        handle = run.action("send", desk.deliver, PAYLOAD)
    assert handle.workflow == desk.workflow.name
    assert handle.action == "send"
    assert handle.review.run_id == run.id
