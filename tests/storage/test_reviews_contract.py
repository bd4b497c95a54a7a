"""The review queue's storage contract: every backend keeps, lists and changes reviews
the same way, and a change to one review is one transaction, even across processes."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import multiprocessing
import threading
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from ada_governance.records import AuditEvent
from ada_governance.reviews import (
    Decision,
    ExecutionStatus,
    NotAReviewer,
    NotClaimable,
    Review,
    ReviewKind,
    ReviewNotPending,
    ReviewStatus,
    payload_hash,
)
from ada_governance.storage import MemoryStore, SQLiteStore, Store, StoreError, open_store

# Not UTC, with microseconds: stores must keep the instant, to the microsecond.
PARIS = dt.timezone(dt.timedelta(hours=2))
T0 = dt.datetime(2025, 3, 1, 9, 30, 0, 123456, tzinfo=PARIS)
LEASE = dt.timedelta(minutes=5)
MANAGER = ("sales-manager",)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def make_review(
    review_id: str,
    created: float = 0.0,
    *,
    workflow: str = "lead-followup",
    roles: tuple[str, ...] = MANAGER,
    payload: Any = None,
    **changes: Any,
) -> Review:
    """A pending approval, built field by field."""
    payload = {"to": "lead@example.com", "body": "hello"} if payload is None else payload
    review = Review(
        id=review_id,
        kind=ReviewKind.APPROVAL,
        workflow=workflow,
        version="1",
        run_id=f"run-{review_id}",
        action="send_email",
        requester="agent",
        payload=payload,
        payload_sha256=payload_hash(payload),
        original_payload=payload,
        roles=roles,
        approvals_required=1,
        requester_may_approve=False,
        on_timeout="reject",
        escalate_to=(),
        created_at=at(created),
        deadline=at(created + 3600),
    )
    return dataclasses.replace(review, **changes) if changes else review


def full_review() -> Review:
    """A review with every field away from its default."""
    original = {"to": "lead@example.com", "body": "hello", "cc": ["a@x.io", "b@x.io"]}
    edited = {"to": "lead@example.com", "body": "Hello, Ana", "meta": {"n": 1, "ok": True}}
    first = Decision("ana", ("sales-manager",), "approve", at(10.5), "fine", "abc", False)
    second = Decision(
        "bo",
        ("sales-manager", "legal"),
        "approve",
        dt.datetime(2025, 3, 1, 7, 31, 2, 5, tzinfo=dt.timezone.utc),
        "tone fixed",
        payload_hash(edited),
        True,
    )
    return Review(
        id="rev-full",
        kind=ReviewKind.APPROVAL,
        workflow="lead-followup",
        version="2.1",
        run_id="run-full",
        action="send_email",
        requester="agent@example.com",
        payload=edited,
        payload_sha256=payload_hash(edited),
        original_payload=original,
        roles=("sales-manager", "legal"),
        approvals_required=2,
        requester_may_approve=True,
        on_timeout="escalate",
        escalate_to=("vp-sales", "cro"),
        created_at=at(0.000001),
        deadline=at(7200),
        status=ReviewStatus.APPROVED,
        decisions=(first, second),
        execution=ExecutionStatus.SUCCEEDED,
        call="kwargs",
        idempotent=True,
        claimed_by="worker-7",
        lease_until=at(400),
        executed_at=at(120.25),
        result={"message_id": "m-1", "accepted": ["lead@example.com"], "n": 2.5},
        error="retried once",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        span_id="b7ad6b7169203331",
        policy={"roles": ["sales-manager"], "approvals": 2, "timeout": "PT2H"},
    )


def ready(review_id: str, created: float = 0.0, **changes: Any) -> Review:
    """A review approved by a holder of its first role: its action is ready to claim."""
    review = make_review(review_id, created, **changes)
    return review.approve("ana", review.roles[:1], at(created + 1))


def note(name: str, **data: Any) -> Callable[[Review, Review], list[AuditEvent]]:
    """An ``events`` function: one audit event about the change."""

    def events(before: Review, after: Review) -> list[AuditEvent]:
        return [
            AuditEvent(
                at(50),
                name,
                after.workflow,
                after.run_id,
                "tester",
                {"review": after.id, "from": before.status.value, "to": after.status.value} | data,
            )
        ]

    return events


def created_event(review: Review) -> AuditEvent:
    return AuditEvent(at(0), "review_requested", review.workflow, review.run_id, "agent")


@pytest.fixture(params=["memory", "sqlite", "postgres"], ids=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened: Store
    if request.param == "memory":
        opened = MemoryStore()
    elif request.param == "sqlite":
        opened = SQLiteStore(tmp_path / "governance.db")
    else:  # a schema of this test's own, dropped afterwards (see conftest.py)
        opened = open_store(request.getfixturevalue("pg_url"))
    yield opened
    opened.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "governance.db")
    yield opened
    opened.close()


# --- create and get --------------------------------------------------------------------


def test_create_get_round_trips_every_field(store: Store) -> None:
    """A review with every field set comes back equal, enums, tuples and aware datetimes
    included."""
    review = full_review()
    store.create_review(review)
    got = store.get_review("rev-full")
    assert got == review
    assert got is not None
    assert got.kind is ReviewKind.APPROVAL
    assert got.status is ReviewStatus.APPROVED
    assert got.execution is ExecutionStatus.SUCCEEDED
    assert got.decisions == review.decisions
    assert isinstance(got.roles, tuple)
    assert isinstance(got.decisions[0].roles, tuple)
    for value in (got.created_at, got.deadline, got.lease_until, got.executed_at):
        assert value is not None
        assert value.utcoffset() is not None
    assert got.payload == review.payload
    assert list(got.payload) == list(review.payload)  # key order kept
    assert got.result == review.result
    assert got.policy == review.policy
    assert got.edited
    assert got.diff() == review.diff()


def test_create_get_round_trips_defaults_and_a_sample(store: Store) -> None:
    """A review with only the required fields, and a sampled one, come back equal."""
    plain = make_review("r1", payload=["not", "a", "mapping"])
    sample = make_review("r2", kind=ReviewKind.SAMPLE, execution=ExecutionStatus.SUCCEEDED)
    store.create_review(plain)
    store.create_review(sample)
    assert store.get_review("r1") == plain
    assert store.get_review("r2") == sample


def test_get_unknown_review_is_none(store: Store) -> None:
    """An id never created gives ``None``."""
    assert store.get_review("nope") is None
    store.create_review(make_review("r1"))
    assert store.get_review("nope") is None


def test_create_review_writes_its_events(store: Store) -> None:
    """The audit events given with a review are appended with it, in order."""
    review = make_review("r1")
    events = [created_event(review), AuditEvent(at(1), "review_notified", "lead-followup")]
    store.create_review(review, events)
    assert [dataclasses.replace(e, id=None) for e in store.list_audit()] == events


def test_duplicate_create_raises_store_error(store: Store) -> None:
    """Creating a review whose id exists raises `StoreError`, and changes nothing."""
    first = make_review("r1")
    store.create_review(first, [created_event(first)])
    with pytest.raises(StoreError, match="r1 already exists"):
        store.create_review(make_review("r1", workflow="other"), [created_event(first)])
    assert store.get_review("r1") == first
    assert store.list_reviews() == [first]
    assert len(store.list_audit()) == 1


# --- listing -----------------------------------------------------------------------------


def listed_reviews() -> list[Review]:
    """Reviews created out of order, with a tie on creation time broken by id."""
    return [
        make_review("r3", 3, roles=("ops",)),
        make_review("r0", 0, roles=("sales-manager", "ops-lead")),
        ready("r1", 1, workflow="invoice-triage", roles=("finance", "ops")),
        make_review("r4", 4, roles=('x"ops', "o%s")).reject("ana", ('x"ops',), at(5), reason="no"),
        make_review("r2b", 2, roles=("sales-manager",)),
        ready("r2a", 2, roles=("sales-manager", "ops")).claim("w1", at(3), LEASE),
    ]


REVIEW_FILTERS = [
    pytest.param({}, ["r0", "r1", "r2a", "r2b", "r3", "r4"], id="none-oldest-first-id-ties"),
    pytest.param({"workflow": "lead-followup"}, ["r0", "r2a", "r2b", "r3", "r4"], id="workflow"),
    pytest.param({"workflow": "unknown"}, [], id="unknown-workflow"),
    pytest.param({"status": ReviewStatus.PENDING}, ["r0", "r2b", "r3"], id="status-pending"),
    pytest.param({"status": ReviewStatus.APPROVED}, ["r1", "r2a"], id="status-approved"),
    pytest.param({"status": ReviewStatus.REJECTED}, ["r4"], id="status-rejected"),
    pytest.param({"status": ReviewStatus.EXPIRED}, [], id="status-none"),
    pytest.param({"execution": ExecutionStatus.READY}, ["r1"], id="execution-ready"),
    pytest.param({"execution": ExecutionStatus.CLAIMED}, ["r2a"], id="execution-claimed"),
    pytest.param({"execution": ExecutionStatus.SKIPPED}, ["r4"], id="execution-skipped"),
    pytest.param(
        {"execution": ExecutionStatus.WAITING}, ["r0", "r2b", "r3"], id="execution-waiting"
    ),
    pytest.param({"role": "ops"}, ["r1", "r2a", "r3"], id="role-exact"),
    pytest.param({"role": "sales-manager"}, ["r0", "r2a", "r2b"], id="role-among-several"),
    pytest.param({"role": "sales"}, [], id="role-prefix-is-not-a-match"),
    pytest.param({"role": "manager"}, [], id="role-suffix-is-not-a-match"),
    pytest.param({"role": "ops-"}, [], id="role-part-is-not-a-match"),
    pytest.param({"role": "o_s"}, [], id="role-no-wildcard-underscore"),
    pytest.param({"role": "o%"}, [], id="role-no-wildcard-percent"),
    pytest.param({"role": "o%s"}, ["r4"], id="role-with-percent"),
    pytest.param({"role": 'x"ops'}, ["r4"], id="role-with-quote"),
    pytest.param({"role": ""}, [], id="role-empty"),
    pytest.param({"limit": 2}, ["r0", "r1"], id="limit-keeps-the-oldest"),
    pytest.param({"limit": 0}, [], id="limit-zero"),
    pytest.param(
        {"workflow": "lead-followup", "status": ReviewStatus.PENDING, "role": "ops", "limit": 5},
        ["r3"],
        id="combined",
    ),
    pytest.param(
        {"role": "sales-manager", "execution": ExecutionStatus.WAITING, "limit": 1},
        ["r0"],
        id="combined-limit",
    ),
]


@pytest.mark.parametrize(("filters", "expected"), REVIEW_FILTERS)
def test_list_reviews_filters(store: Store, filters: dict[str, Any], expected: list[str]) -> None:
    """`list_reviews` filters by workflow, status, execution, exact role and limit, oldest
    first with the id breaking ties."""
    for review in listed_reviews():
        store.create_review(review)
    assert [r.id for r in store.list_reviews(**filters)] == expected


def test_list_reviews_returns_whole_reviews(store: Store) -> None:
    """Listed reviews are equal to the stored ones in every field."""
    reviews = listed_reviews()
    for review in reviews:
        store.create_review(review)
    by_id = {review.id: review for review in reviews}
    assert store.list_reviews() == [by_id[i] for i in ["r0", "r1", "r2a", "r2b", "r3", "r4"]]


def test_list_reviews_orders_by_instant_across_timezones(store: Store) -> None:
    """Creation times given in different offsets sort by the instant they name."""
    tokyo = dt.timezone(dt.timedelta(hours=9))
    new_york = dt.timezone(dt.timedelta(hours=-5))
    store.create_review(make_review("late", 0, created_at=at(10).astimezone(tokyo)))
    store.create_review(make_review("early", 0, created_at=at(-10).astimezone(new_york)))
    store.create_review(make_review("middle", 0))
    assert [r.id for r in store.list_reviews()] == ["early", "middle", "late"]


def test_list_reviews_refuses_a_negative_limit(store: Store) -> None:
    """A negative limit raises `ValueError`."""
    with pytest.raises(ValueError, match="limit"):
        store.list_reviews(limit=-1)


def test_role_filter_follows_escalation(store: Store) -> None:
    """After an escalation, the review lists under the roles it was handed to, only."""
    review = make_review("r1", on_timeout="escalate", escalate_to=("vp-sales",))
    store.create_review(review)
    assert [r.id for r in store.list_reviews(role="sales-manager")] == ["r1"]
    store.update_review("r1", lambda r: r.expire(at(4000), dt.timedelta(hours=1)))
    assert store.list_reviews(role="sales-manager") == []
    assert [r.id for r in store.list_reviews(role="vp-sales")] == ["r1"]


# --- updating ----------------------------------------------------------------------------


def test_update_review_applies_a_transition_and_writes_its_events(store: Store) -> None:
    """The change is stored and returned, and its events appended with it."""
    review = make_review("r1")
    store.create_review(review, [created_event(review)])
    after = store.update_review(
        "r1", lambda r: r.approve("ana", MANAGER, at(60), comment="ok"), note("review_approved")
    )
    assert after.status is ReviewStatus.APPROVED
    assert after.execution is ExecutionStatus.READY
    assert store.get_review("r1") == after
    assert store.list_reviews(execution=ExecutionStatus.READY) == [after]
    assert store.list_reviews(status=ReviewStatus.PENDING) == []
    assert [(e.event, e.data) for e in store.list_audit()] == [
        ("review_requested", {}),
        ("review_approved", {"review": "r1", "from": "pending", "to": "approved"}),
    ]


def test_update_review_drives_a_review_through_its_life(store: Store) -> None:
    """Approve, claim, lapse, recover, claim again and finish: each step is stored."""
    store.create_review(make_review("r1", idempotent=True))
    store.update_review("r1", lambda r: r.approve("ana", MANAGER, at(1)))
    store.update_review("r1", lambda r: r.claim("w1", at(2), LEASE))
    claimed = store.get_review("r1")
    assert claimed is not None
    assert (claimed.execution, claimed.claimed_by) == (ExecutionStatus.CLAIMED, "w1")
    assert claimed.lease_until == at(2) + LEASE
    recovered = store.update_review("r1", lambda r: r.recover(at(2) + LEASE))
    assert recovered.execution is ExecutionStatus.READY
    assert recovered.claimed_by is None
    store.update_review("r1", lambda r: r.claim("w2", at(400), LEASE))
    done = store.update_review("r1", lambda r: r.finish("w2", at(401), result={"id": 7}))
    assert done.execution is ExecutionStatus.SUCCEEDED
    assert store.get_review("r1") == done
    assert done.result == {"id": 7}
    assert done.executed_at == at(401)


def test_update_review_with_no_events_appends_none(store: Store) -> None:
    """An update without ``events``, or whose events are empty, appends nothing."""
    store.create_review(make_review("r1"))
    store.update_review("r1", lambda r: r.reject("ana", MANAGER, at(1), reason="no"))
    store.update_review("r1", lambda r: r, lambda before, after: [])
    assert store.list_audit() == []
    got = store.get_review("r1")
    assert got is not None
    assert got.status is ReviewStatus.REJECTED


class Refused(Exception):
    """A change's own error, to check it comes back as itself."""


def refuse(review: Review) -> Review:
    raise Refused(review.id)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param(refuse, Refused, id="own-error"),
        pytest.param(lambda r: r.approve("eve", ("intern",), at(1)), NotAReviewer, id="transition"),
        pytest.param(lambda r: r.claim("w1", at(1), LEASE), NotClaimable, id="not-ready"),
    ],
)
def test_change_that_raises_leaves_everything_untouched(
    store: Store, change: Callable[[Review], Review], error: type[Exception]
) -> None:
    """A change that raises writes nothing, and its exception propagates unchanged."""
    review = make_review("r1")
    store.create_review(review, [created_event(review)])
    audit = store.list_audit()
    with pytest.raises(error) as raised:
        store.update_review("r1", change, note("never"))
    assert type(raised.value) is error
    assert not isinstance(raised.value, StoreError)
    assert store.get_review("r1") == review
    assert store.list_audit() == audit


def test_change_raises_the_very_exception_object(store: Store) -> None:
    """The exception a change raises is the one the caller sees, not a copy or a wrapper."""
    store.create_review(make_review("r1"))
    mine = Refused("mine")

    def change(review: Review) -> Review:
        raise mine

    with pytest.raises(Refused) as raised:
        store.update_review("r1", change)
    assert raised.value is mine


def test_refused_decision_on_a_decided_review(store: Store) -> None:
    """A second decision on a rejected review raises `ReviewNotPending`; nothing changes."""
    store.create_review(make_review("r1"))
    rejected = store.update_review("r1", lambda r: r.reject("ana", MANAGER, at(1), reason="no"))
    with pytest.raises(ReviewNotPending):
        store.update_review("r1", lambda r: r.approve("bo", MANAGER, at(2)), note("x"))
    assert store.get_review("r1") == rejected
    assert store.list_audit() == []


def test_update_missing_review_raises_key_error(store: Store) -> None:
    """Updating an id never created raises `KeyError`, without calling the change."""
    called: list[Review] = []

    def change(review: Review) -> Review:
        called.append(review)
        return review

    with pytest.raises(KeyError, match="nope"):
        store.update_review("nope", change)
    assert called == []
    assert store.list_reviews() == []


def test_update_review_keeps_other_reviews(store: Store) -> None:
    """Changing one review leaves the others as they were."""
    one, two = make_review("r1"), make_review("r2", 1)
    store.create_review(one)
    store.create_review(two)
    store.update_review("r1", lambda r: r.reject("ana", MANAGER, at(1), reason="no"))
    assert store.get_review("r2") == two


# --- async twins and closing -------------------------------------------------------------


def test_async_twins_agree(store: Store) -> None:
    """Each async twin does what its sync method does."""
    review = make_review("r1")

    async def scenario() -> tuple[Any, ...]:
        await store.acreate_review(review, [created_event(review)])
        await store.acreate_review(full_review())
        assert await store.aget_review("nope") is None
        with pytest.raises(StoreError):
            await store.acreate_review(review)
        approved = await store.aupdate_review(
            "r1", lambda r: r.approve("ana", MANAGER, at(1)), note("review_approved")
        )
        with pytest.raises(NotClaimable):
            await store.aupdate_review("rev-full", lambda r: r.claim("w", at(2), LEASE))
        with pytest.raises(KeyError):
            await store.aupdate_review("nope", lambda r: r)
        return (
            approved,
            await store.aget_review("r1"),
            await store.aget_review("rev-full"),
            await store.alist_reviews(),
            await store.alist_reviews("lead-followup", status=ReviewStatus.APPROVED, limit=1),
            await store.alist_reviews(execution=ExecutionStatus.READY, role="sales-manager"),
            await store.alist_reviews(role="legal"),
        )

    answers = asyncio.run(scenario())
    assert answers[1:] == (
        store.get_review("r1"),
        store.get_review("rev-full"),
        store.list_reviews(),
        store.list_reviews("lead-followup", status=ReviewStatus.APPROVED, limit=1),
        store.list_reviews(execution=ExecutionStatus.READY, role="sales-manager"),
        store.list_reviews(role="legal"),
    )
    assert answers[0] == answers[1]
    assert answers[0].execution is ExecutionStatus.READY
    assert [r.id for r in answers[3]] == ["r1", "rev-full"]
    assert [r.id for r in answers[4]] == ["r1"]
    assert [r.id for r in answers[5]] == ["r1"]
    assert [r.id for r in answers[6]] == ["rev-full"]
    assert [e.event for e in store.list_audit()] == ["review_requested", "review_approved"]


CALLS: list[Any] = [
    pytest.param(lambda s: s.create_review(make_review("r9")), id="create_review"),
    pytest.param(lambda s: s.get_review("r0"), id="get_review"),
    pytest.param(lambda s: s.list_reviews(), id="list_reviews"),
    pytest.param(lambda s: s.update_review("r0", lambda r: r), id="update_review"),
    pytest.param(lambda s: asyncio.run(s.aget_review("r0")), id="aget_review"),
    pytest.param(lambda s: asyncio.run(s.aupdate_review("r0", lambda r: r)), id="aupdate_review"),
]


@pytest.mark.parametrize("call", CALLS)
def test_closed_store_raises_store_error(store: Store, call: Callable[[Store], object]) -> None:
    """Every review call on a closed store raises `StoreError`, even after earlier use."""
    store.create_review(make_review("r0"))
    store.close()
    with pytest.raises(StoreError, match="closed"):
        call(store)


# --- SQLite only -------------------------------------------------------------------------


def test_events_that_raise_roll_the_change_back(sqlite_store: SQLiteStore) -> None:
    """In SQLite, an ``events`` function that raises undoes the change with it."""
    review = make_review("r1")
    sqlite_store.create_review(review)

    def events(before: Review, after: Review) -> Sequence[AuditEvent]:
        raise Refused("no events")

    with pytest.raises(Refused, match="no events"):
        sqlite_store.update_review("r1", lambda r: r.approve("ana", MANAGER, at(1)), events)
    assert sqlite_store.get_review("r1") == review
    assert sqlite_store.list_audit() == []


def test_audit_failure_rolls_the_review_back(sqlite_store: SQLiteStore) -> None:
    """An audit event the database refuses (a naive time) writes neither it nor the review."""
    review = make_review("r1")
    naive = AuditEvent(dt.datetime(2025, 3, 1), "review_requested", "lead-followup")
    with pytest.raises(ValueError, match="timezone-aware"):
        sqlite_store.create_review(review, [naive])
    assert sqlite_store.get_review("r1") is None
    sqlite_store.create_review(review)
    with pytest.raises(ValueError, match="timezone-aware"):
        sqlite_store.update_review(
            "r1", lambda r: r.approve("ana", MANAGER, at(1)), lambda b, a: [naive]
        )
    assert sqlite_store.get_review("r1") == review
    assert sqlite_store.list_audit() == []


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"created_at": dt.datetime(2025, 3, 1)}, id="created_at"),
        pytest.param({"deadline": dt.datetime(2025, 3, 1)}, id="deadline"),
        pytest.param({"lease_until": dt.datetime(2025, 3, 1)}, id="lease_until"),
        pytest.param({"executed_at": dt.datetime(2025, 3, 1)}, id="executed_at"),
        pytest.param(
            {"decisions": (Decision("ana", MANAGER, "approve", dt.datetime(2025, 3, 1)),)},
            id="decision",
        ),
    ],
)
def test_naive_datetimes_are_refused(sqlite_store: SQLiteStore, changes: dict[str, Any]) -> None:
    """A review holding a naive datetime is refused, on create and on update."""
    with pytest.raises(ValueError, match="timezone-aware"):
        sqlite_store.create_review(make_review("r1", **changes))
    assert sqlite_store.get_review("r1") is None
    review = make_review("r1")
    sqlite_store.create_review(review)
    with pytest.raises(ValueError, match="timezone-aware"):
        sqlite_store.update_review("r1", lambda r: dataclasses.replace(r, **changes))
    assert sqlite_store.get_review("r1") == review


def test_reviews_survive_reopening(tmp_path: Path) -> None:
    """Reviews written by one store are read, listed and changed by a later one."""
    path = tmp_path / "g.db"
    first = SQLiteStore(path)
    first.create_review(full_review())
    first.create_review(make_review("r1"))
    first.close()
    second = SQLiteStore(path)
    try:
        assert second.get_review("rev-full") == full_review()
        assert [r.id for r in second.list_reviews(role="sales-manager")] == ["r1", "rev-full"]
        after = second.update_review("r1", lambda r: r.approve("ana", MANAGER, at(1)))
        assert second.get_review("r1") == after
    finally:
        second.close()


def test_a_change_sees_the_other_stores_write(tmp_path: Path) -> None:
    """Two stores on one file: the second's change starts from the first's write."""
    one, two = SQLiteStore(tmp_path / "g.db"), SQLiteStore(tmp_path / "g.db")
    try:
        one.create_review(ready("r1"))
        two.update_review("r1", lambda r: r.claim("w2", at(2), LEASE))
        with pytest.raises(NotClaimable):
            one.update_review("r1", lambda r: r.claim("w1", at(3), LEASE))
        got = one.get_review("r1")
        assert got is not None
        assert got.claimed_by == "w2"
    finally:
        one.close()
        two.close()


# --- racing to claim ---------------------------------------------------------------------

ROUNDS = 20


def claim_event(before: Review, after: Review) -> list[AuditEvent]:
    return [
        AuditEvent(
            at(2),
            "review_claimed",
            after.workflow,
            after.run_id,
            after.claimed_by,
            {"review": after.id},
        )
    ]


def try_claim(store: Store, review_id: str, worker: str) -> str:
    """Claim a review's action for ``worker``: ``claimed``, or the error's class name."""
    try:
        store.update_review(review_id, lambda r: r.claim(worker, at(2), LEASE), claim_event)
    except Exception as error:  # reported to the test, which expects NotClaimable
        return type(error).__name__
    return "claimed"


def claim_in_rounds(path: str, worker: str, review_ids: list[str], start: Barrier) -> list[str]:
    """From a separate process: race the other process for each review, in step."""
    store = SQLiteStore(path)
    outcomes = []
    try:
        for review_id in review_ids:
            start.wait()
            outcomes.append(try_claim(store, review_id, worker))
    finally:
        store.close()
    return outcomes


def claim_process(
    path: str, worker: str, review_ids: list[str], start: Barrier, results: Any
) -> None:
    results.put((worker, claim_in_rounds(path, worker, review_ids, start)))


def test_two_processes_race_to_claim(tmp_path: Path) -> None:
    """Two processes claiming the same ready review: one wins, the other gets
    `NotClaimable`; 20 times over, with fresh reviews."""
    path = str(tmp_path / "g.db")
    store = SQLiteStore(path)
    review_ids = [f"race-{index:02d}" for index in range(ROUNDS)]
    for index, review_id in enumerate(review_ids):
        store.create_review(ready(review_id, index))
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    workers = ["proc-a", "proc-b"]
    processes = [
        context.Process(target=claim_process, args=(path, worker, review_ids, start, results))
        for worker in workers
    ]
    for process in processes:
        process.start()
    outcomes = dict(results.get(timeout=120) for _ in workers)
    for process in processes:
        process.join(timeout=60)
    try:
        assert [p.exitcode for p in processes] == [0, 0]
        audit = store.list_audit(event="review_claimed")
        for index, review_id in enumerate(review_ids):
            pair = {worker: outcomes[worker][index] for worker in workers}
            assert sorted(pair.values()) == ["NotClaimable", "claimed"], (review_id, pair)
            [winner] = [worker for worker, outcome in pair.items() if outcome == "claimed"]
            got = store.get_review(review_id)
            assert got is not None
            assert got.execution is ExecutionStatus.CLAIMED
            assert got.claimed_by == winner
            claims = [e for e in audit if e.data["review"] == review_id]
            assert [e.actor for e in claims] == [winner]
        assert len(audit) == ROUNDS
    finally:
        store.close()


def race_threads(store: Store, review_id: str, count: int) -> dict[str, str]:
    """``count`` threads claim one review at once; each one's outcome, by worker."""
    start = threading.Barrier(count)
    outcomes: dict[str, str] = {}

    def claim(worker: str) -> None:
        start.wait()
        outcomes[worker] = try_claim(store, review_id, worker)

    threads = [threading.Thread(target=claim, args=(f"thread-{n}",)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_eight_threads_race_to_claim(tmp_path: Path, kind: str) -> None:
    """8 threads claiming the same ready review through one store: exactly one wins,
    the other 7 get `NotClaimable`; 5 times over, with fresh reviews."""
    store: Store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "g.db")
    try:
        for round_ in range(5):
            review_id = f"threads-{round_}"
            store.create_review(ready(review_id, round_))
            outcomes = race_threads(store, review_id, 8)
            assert len(outcomes) == 8
            winners = [worker for worker, outcome in outcomes.items() if outcome == "claimed"]
            assert len(winners) == 1, outcomes
            assert sorted(outcomes.values()) == ["NotClaimable"] * 7 + ["claimed"]
            got = store.get_review(review_id)
            assert got is not None
            assert got.claimed_by == winners[0]
            claims = [
                e for e in store.list_audit(event="review_claimed") if e.data["review"] == review_id
            ]
            assert [e.actor for e in claims] == winners
    finally:
        store.close()


# --- claiming ready actions in bulk ------------------------------------------------------


def test_claim_ready_takes_only_the_workers_actions_oldest_first(store: Store) -> None:
    """claim_ready claims ready approval reviews of the given actions, oldest first, up
    to the limit, and never a pending one, a sample, or another worker's action."""
    store.create_review(ready("r-3", 3))
    store.create_review(ready("r-1", 1))
    store.create_review(ready("r-2", 2, action="wire_money"))
    store.create_review(make_review("r-0", 0))  # pending: not claimable
    store.create_review(ready("r-4", 4, workflow="other"))
    claimed = store.claim_ready(
        "w1", at(10), dt.timedelta(minutes=5), [("lead-followup", "send_email")], 1
    )
    assert [r.id for r in claimed] == ["r-1"]
    assert claimed[0].execution is ExecutionStatus.CLAIMED
    assert claimed[0].claimed_by == "w1"
    assert store.get_review("r-1") == claimed[0]
    rest = store.claim_ready(
        "w2", at(10), dt.timedelta(minutes=5), [("lead-followup", "send_email")]
    )
    assert [r.id for r in rest] == ["r-3"]
    assert (
        store.claim_ready("w3", at(10), dt.timedelta(minutes=5), [("lead-followup", "send_email")])
        == []
    )
    assert store.get_review("r-2").execution is ExecutionStatus.READY  # type: ignore[union-attr]
    assert store.get_review("r-0").execution is ExecutionStatus.WAITING  # type: ignore[union-attr]


def test_claim_ready_from_many_threads_claims_each_once(store: Store) -> None:
    """Eight threads claiming one at a time share out every ready review, none twice."""
    import threading

    for index in range(24):
        store.create_review(ready(f"t-{index:02d}", index))
    taken: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while True:
            got = store.claim_ready(
                name, at(100), dt.timedelta(minutes=5), [("lead-followup", "send_email")], 1
            )
            if not got:
                return
            with lock:
                taken.extend(review.id for review in got)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == [f"t-{index:02d}" for index in range(24)]
