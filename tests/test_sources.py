"""Approved sources: provenance of every read, unapproved and stale reads, required
sources, the provenance hash, and keeping personal data out of telemetry and the ledger.

Async code is driven with ``asyncio.run`` from sync tests (no pytest-asyncio).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import decimal
import gc
import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pydantic
import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ada_governance import (
    ExceptionPath,
    ExceptionRecord,
    Governance,
    MemoryStore,
    RequiredSourceNotRead,
    Run,
    RunRecord,
    RunStatus,
    Source,
    SourceData,
    SourceRead,
    SQLiteStore,
    StaleSourceError,
    UnapprovedSourceError,
    UsageError,
    Workflow,
    content_hash,
    current_run,
    governed_run,
    governed_workflow,
)
from ada_governance.testing import memory_governance

UTC = dt.timezone.utc

LEAD = {"id": "L-100", "company": "Acme", "score": 87}
"""What the CRM loader returns."""

CRM = Source(name="crm.lead", system="Salesforce", classification="confidential", key="id")

KINDS = [
    pytest.param("function", id="function"),
    pytest.param("coroutine", id="coroutine"),
    pytest.param("generator", id="generator"),
    pytest.param("async_generator", id="async_generator"),
    pytest.param("block", id="governed_run"),
    pytest.param("async_block", id="async_governed_run"),
]


class Boom(Exception):
    """The error governed bodies raise in these tests."""


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def gov() -> Governance:
    """A development governance on a fresh in-memory store."""
    return memory_governance()


@pytest.fixture(params=["memory", "sqlite"])
def stored_gov(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Governance]:
    """A development governance on each store, so provenance is seen after a round trip."""
    store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "g.db")
    governance = Governance(store, development=True)
    yield governance
    governance.close()


def workflow(*sources: Source, name: str = "intake", **fields: Any) -> Workflow:
    """A draft workflow started by ``lead`` events, approving ``sources``."""
    return Workflow(name=name, trigger={"event": "lead"}, sources=sources, **fields)


def routed(handled: list[ExceptionRecord], *sources: Source) -> Workflow:
    """Like `workflow`, with an exception path whose handler appends to ``handled``."""
    return workflow(*sources, exception_path=ExceptionPath(route_to="ops", handler=handled.append))


def run_as(kind: str, wf: Workflow, gov: Governance, body: Callable[[Run], Any]) -> Any:
    """Run ``body(run)`` as a governed ``kind``: what a caller gets (a stream's items)."""
    if kind == "block":
        with governed_run(wf, governance=gov) as run:
            return body(run)
    if kind == "async_block":

        async def block() -> Any:
            async with governed_run(wf, governance=gov) as run:
                return body(run)

        return asyncio.run(block())
    decorate = governed_workflow(wf, governance=gov)
    if kind == "function":
        return decorate(lambda: body(current_run()))()
    if kind == "coroutine":

        async def coroutine() -> Any:
            await asyncio.sleep(0)
            return body(current_run())

        return asyncio.run(decorate(coroutine)())
    if kind == "generator":

        def generator() -> Iterator[Any]:
            yield body(current_run())

        return list(decorate(generator)())

    async def async_generator() -> Any:
        await asyncio.sleep(0)
        yield body(current_run())

    async def drain() -> list[Any]:
        return [item async for item in decorate(async_generator)()]

    return asyncio.run(drain())


def only_row(gov: Governance) -> RunRecord:
    """The single ledger row the test produced."""
    rows = gov.runs()
    assert len(rows) == 1, rows
    return rows[0]


def event_names(gov: Governance) -> list[str]:
    """The audit event names, in the order they were appended."""
    return [event.event for event in gov.audit_events()]


def load_lead() -> dict[str, Any]:
    """A sync loader."""
    return dict(LEAD)


# --- reading a declared source -------------------------------------------------------------


def test_read_returns_the_data_and_leaves_its_provenance(stored_gov: Governance) -> None:
    """A read returns the loader's data and leaves a SourceRead on the run and its row."""
    seen: list[tuple[SourceRead, ...]] = []

    @governed_workflow(workflow(CRM), governance=stored_gov)
    def draft() -> Any:
        data = current_run().source("crm.lead", load_lead)
        seen.append(current_run().reads)
        return data

    before = dt.datetime.now(UTC)
    assert draft() == LEAD
    after = dt.datetime.now(UTC)
    (reads,) = seen
    (read,) = reads
    assert (read.source, read.system, read.classification) == (
        "crm.lead",
        "Salesforce",
        "confidential",
    )
    assert read.record_id == "L-100"
    assert read.sha256 == content_hash(LEAD)
    assert read.fetched_at.tzinfo is not None
    assert before <= read.fetched_at <= after
    assert read.as_of is None
    row = only_row(stored_gov)
    assert row.status is RunStatus.SUCCEEDED
    assert row.reads == [read]


@dataclasses.dataclass
class LeadRow:
    """A loader's result read by attribute rather than by key."""

    id: str


@pytest.mark.parametrize(
    ("key", "data", "record_id"),
    [
        pytest.param("id", {"id": "L-1"}, "L-1", id="text"),
        pytest.param("id", {"id": 42}, "42", id="number-as-text"),
        pytest.param("id", {"id": 0}, "0", id="falsy-number"),
        pytest.param("account.owner.id", {"account": {"owner": {"id": "U-7"}}}, "U-7", id="dotted"),
        pytest.param("id", LeadRow("L-2"), "L-2", id="attribute"),
        pytest.param("account.id", {"account": None}, None, id="dotted-through-none"),
        pytest.param("missing", {"id": "L-3"}, None, id="missing"),
        pytest.param(None, {"id": "L-4"}, None, id="no-key-declared"),
    ],
)
def test_record_id_comes_from_the_declared_key(
    gov: Governance, key: str | None, data: Any, record_id: str | None
) -> None:
    """The record id is the declared key's field (dotted for nested), as text, or None."""
    source = Source(name="crm.lead", system="Salesforce", key=key)

    @governed_workflow(workflow(source), governance=gov)
    def draft() -> Any:
        return current_run().source("crm.lead", lambda: data)

    assert draft() is data
    assert [read.record_id for read in only_row(gov).reads] == [record_id]


def test_source_data_names_the_record_and_its_age(gov: Governance) -> None:
    """A loader's SourceData gives the record id and as_of; the run gets only its data."""
    as_of = dt.datetime.now(UTC) - dt.timedelta(minutes=5)
    source = Source(name="crm.lead", system="Salesforce", key="id", freshness="1h")

    @governed_workflow(workflow(source), governance=gov)
    def draft() -> Any:
        return current_run().source("crm.lead", lambda: SourceData(LEAD, "R-9", as_of))

    assert draft() is LEAD
    (read,) = only_row(gov).reads
    assert read.record_id == "R-9"  # SourceData wins over the declared key ("L-100")
    assert read.as_of == as_of
    assert read.sha256 == content_hash(LEAD)


async def aload_lead() -> dict[str, Any]:
    """An async loader."""
    await asyncio.sleep(0)
    return dict(LEAD)


@pytest.mark.parametrize(
    "loader",
    [pytest.param(aload_lead, id="async-loader"), pytest.param(load_lead, id="sync-loader")],
)
def test_asource_reads_with_async_and_sync_loaders(
    gov: Governance, loader: Callable[[], Any]
) -> None:
    """``await run.asource`` awaits an async loader and calls a sync one, leaving a read."""

    @governed_workflow(workflow(CRM), governance=gov)
    async def draft() -> Any:
        return await current_run().asource("crm.lead", loader)

    assert asyncio.run(draft()) == LEAD
    assert [(r.source, r.record_id) for r in only_row(gov).reads] == [("crm.lead", "L-100")]


def test_sync_source_with_an_async_loader_is_a_usage_error(
    gov: Governance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run.source with an async loader raises UsageError, reads nothing and closes the coroutine."""
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    @governed_workflow(workflow(CRM), governance=gov)
    def draft() -> Any:
        return current_run().source("crm.lead", aload_lead)

    with pytest.raises(UsageError, match="asource"):
        draft()
    gc.collect()
    assert unraisable == []
    row = only_row(gov)
    assert row.error_type == "UsageError"
    assert row.reads == []


# --- unapproved sources --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_unapproved_source_fails_and_routes_the_run(gov: Governance, kind: str) -> None:
    """An undeclared source raises UnapprovedSourceError; the run fails, is counted and routed."""
    handled: list[ExceptionRecord] = []
    wf = routed(handled, CRM)

    with pytest.raises(UnapprovedSourceError) as caught:
        run_as(kind, wf, gov, lambda run: run.source("hr.salaries", load_lead))

    assert caught.value.source == "hr.salaries"
    assert caught.value.workflow == "intake"
    row = only_row(gov)
    assert row.status is RunStatus.FAILED
    assert row.error_type == "UnapprovedSourceError"
    assert row.reads == []
    assert caught.value.run_id == row.run_id
    (failed,) = gov.audit_events(event="run_failed")
    assert failed.data["error_type"] == "UnapprovedSourceError"
    assert len(gov.audit_events(event="exception_routed")) == 1
    assert [record.error for record in handled] == [caught.value]


@pytest.mark.parametrize(
    "nested", [pytest.param(False, id="separate"), pytest.param(True, id="nested")]
)
def test_source_declared_only_by_another_workflow_is_unapproved(
    gov: Governance, nested: bool
) -> None:
    """A source another workflow declares (even the enclosing run's) is unapproved here."""
    owner = workflow(CRM, name="owner")
    other = workflow(name="other")

    @governed_workflow(other, governance=gov)
    def peek() -> Any:
        return current_run().source("crm.lead", load_lead)

    @governed_workflow(owner, governance=gov)
    def outer() -> str:
        assert current_run().source("crm.lead", load_lead) == LEAD
        with pytest.raises(UnapprovedSourceError):
            peek()
        return "done"

    if nested:
        assert outer() == "done"
    else:
        with pytest.raises(UnapprovedSourceError):
            peek()
    (row,) = gov.runs("other")
    assert row.status is RunStatus.FAILED
    assert row.error_type == "UnapprovedSourceError"


@pytest.mark.parametrize("kind", KINDS)
def test_caught_unapproved_read_still_fails_the_run(gov: Governance, kind: str) -> None:
    """A body that catches UnapprovedSourceError still fails, audited as a policy violation."""
    handled: list[ExceptionRecord] = []

    def body(run: Run) -> str:
        with contextlib.suppress(UnapprovedSourceError):
            run.source("hr.salaries", load_lead)
        return "carried on"

    with pytest.raises(UnapprovedSourceError):
        run_as(kind, routed(handled, CRM), gov, body)

    row = only_row(gov)
    assert row.status is RunStatus.FAILED
    assert row.error_type == "UnapprovedSourceError"
    (violation,) = gov.audit_events(event="policy_violation")
    assert violation.data["error_type"] == "UnapprovedSourceError"
    assert "hr.salaries" in violation.data["message"]
    assert len(handled) == 1


# --- freshness -----------------------------------------------------------------------------

FRESH = Source(name="crm.lead", system="Salesforce", as_of="updated_at", freshness="1h")


def _iso_z(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _iso_offset(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda now: now - dt.timedelta(minutes=5), id="datetime"),
        pytest.param(lambda now: _iso_z(now - dt.timedelta(minutes=5)), id="iso-z"),
        pytest.param(lambda now: _iso_offset(now - dt.timedelta(minutes=5)), id="iso-offset"),
        pytest.param(lambda now: now + dt.timedelta(minutes=1), id="slightly-ahead"),
    ],
)
def test_data_within_freshness_is_read(gov: Governance, make: Callable[[dt.datetime], Any]) -> None:
    """Data whose as_of (datetime, ISO with Z or offset) is within freshness is read."""
    now = dt.datetime.now(UTC)
    data = {"id": "L-1", "updated_at": make(now)}

    @governed_workflow(workflow(FRESH), governance=gov)
    def draft() -> Any:
        return current_run().source("crm.lead", lambda: data)

    assert draft() is data
    (read,) = only_row(gov).reads
    assert read.as_of is not None
    assert abs(read.as_of - (now - dt.timedelta(minutes=5))) <= dt.timedelta(minutes=7)


@pytest.mark.parametrize(
    ("make", "known_age"),
    [
        pytest.param(lambda now: now - dt.timedelta(hours=2), True, id="old-datetime"),
        pytest.param(lambda now: _iso_z(now - dt.timedelta(hours=2)), True, id="old-iso-z"),
        pytest.param(
            lambda now: _iso_offset(now - dt.timedelta(hours=2)), True, id="old-iso-offset"
        ),
        pytest.param(lambda now: None, False, id="missing"),
        pytest.param(lambda now: "yesterday-ish", False, id="unparseable"),
        pytest.param(lambda now: now.replace(tzinfo=None), False, id="naive-datetime"),
        pytest.param(lambda now: 1767225600, False, id="epoch-number"),
    ],
)
def test_stale_or_ageless_data_is_refused(
    gov: Governance, make: Callable[[dt.datetime], Any], known_age: bool
) -> None:
    """Data older than freshness, or of unknown age, raises StaleSourceError; the run fails."""
    data = {"id": "L-1", "updated_at": make(dt.datetime.now(UTC))}
    returned: list[Any] = []

    @governed_workflow(workflow(FRESH), governance=gov)
    def draft() -> Any:
        returned.append(current_run().source("crm.lead", lambda: data))

    with pytest.raises(StaleSourceError) as caught:
        draft()

    assert returned == []
    assert caught.value.source == "crm.lead"
    if known_age:
        assert caught.value.age > dt.timedelta(hours=1)
    else:
        assert caught.value.age is None
    row = only_row(gov)
    assert row.status is RunStatus.FAILED
    assert row.error_type == "StaleSourceError"
    assert [read.source for read in row.reads] == ["crm.lead"]


def test_source_data_without_as_of_is_refused_when_freshness_is_declared(
    gov: Governance,
) -> None:
    """SourceData with no as_of, from a source with a freshness, is refused (fail closed)."""
    source = Source(name="crm.lead", system="Salesforce", freshness="1h")

    @governed_workflow(workflow(source), governance=gov)
    def draft() -> Any:
        return current_run().source("crm.lead", lambda: SourceData(LEAD, "R-1"))

    with pytest.raises(StaleSourceError):
        draft()
    assert only_row(gov).error_type == "StaleSourceError"


def test_source_data_with_naive_as_of_is_refused_as_stale(gov: Governance) -> None:
    """SourceData with a naive as_of is refused as stale, even if the body catches it."""
    source = Source(name="crm.lead", system="Salesforce", freshness="1h")
    naive = dt.datetime.now()

    @governed_workflow(workflow(source), governance=gov)
    def draft() -> Any:
        try:
            return current_run().source("crm.lead", lambda: SourceData(LEAD, "R-1", naive))
        except Exception:
            return "used anyway"

    with pytest.raises(StaleSourceError):
        draft()


# --- required sources ----------------------------------------------------------------------

REQUIRED = Source(name="crm.lead", system="Salesforce", key="id", required=True)
OPTIONAL = Source(name="crm.notes", system="Salesforce")


@pytest.mark.parametrize("kind", KINDS)
def test_run_that_skips_a_required_source_fails(gov: Governance, kind: str) -> None:
    """A run that never reads a required source fails with RequiredSourceNotRead naming it."""
    with pytest.raises(RequiredSourceNotRead, match=r"crm\.lead") as caught:
        run_as(kind, workflow(REQUIRED, OPTIONAL), gov, lambda run: run.source("crm.notes", dict))

    assert caught.value.sources == ("crm.lead",)
    row = only_row(gov)
    assert row.status is RunStatus.FAILED
    assert row.error_type == "RequiredSourceNotRead"


@pytest.mark.parametrize("kind", KINDS)
def test_run_that_reads_its_required_source_succeeds(gov: Governance, kind: str) -> None:
    """Reading the required source lets the run succeed."""
    run_as(kind, workflow(REQUIRED, OPTIONAL), gov, lambda run: run.source("crm.lead", load_lead))

    row = only_row(gov)
    assert row.status is RunStatus.SUCCEEDED
    assert [read.source for read in row.reads] == ["crm.lead"]


def test_required_source_whose_loader_failed_is_not_read(gov: Governance) -> None:
    """A read whose loader raised leaves no provenance, so it does not satisfy the rule."""

    def broken() -> Any:
        raise Boom("CRM is down")

    @governed_workflow(workflow(REQUIRED), governance=gov)
    def draft() -> str:
        with contextlib.suppress(Boom):
            current_run().source("crm.lead", broken)
        return "carried on"

    with pytest.raises(RequiredSourceNotRead):
        draft()


# --- the provenance hash -------------------------------------------------------------------


class Contact(pydantic.BaseModel):
    """A pydantic model a loader may return."""

    name: str
    seen: dt.datetime


@dataclasses.dataclass
class Owner:
    """A dataclass a loader may return."""

    id: str
    teams: frozenset[str]


AT = dt.datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
REF = "0b6f1c5e-9d3a-4c1e-8f2a-1d2e3f4a5b6c"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(
            {"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"d": 3, "c": 2}, "a": 1}, id="key-order"
        ),
        pytest.param({"at": AT}, {"at": AT.replace()}, id="datetime"),
        pytest.param({"day": AT.date()}, {"day": dt.date(2026, 3, 1)}, id="date"),
        pytest.param(decimal.Decimal("10.50"), decimal.Decimal("10.50"), id="decimal"),
        pytest.param(uuid.UUID(REF), uuid.UUID(REF.upper()), id="uuid"),
        pytest.param({"hot", "inbound", "emea"}, {"emea", "hot", "inbound"}, id="set"),
        pytest.param({1, 9}, {9, 1}, id="set-iterating-differently"),
        pytest.param(frozenset({3, 1, 2}), {2, 3, 1}, id="frozenset"),
        pytest.param(b"\x00\xff", bytearray(b"\x00\xff"), id="bytes"),
        pytest.param(Contact(name="Jo", seen=AT), Contact(name="Jo", seen=AT), id="pydantic"),
        pytest.param(
            Owner("U-1", frozenset({"ops", "sales"})),
            Owner("U-1", frozenset({"sales", "ops"})),
            id="dataclass",
        ),
    ],
)
def test_equal_data_hashes_the_same(first: Any, second: Any) -> None:
    """Equal data gives the same hash, whatever its key or set order."""
    assert content_hash(first) == content_hash(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param({"a": 1}, {"a": 2}, id="value"),
        pytest.param({"a": 1}, {"b": 1}, id="key"),
        pytest.param([1, 2], [2, 1], id="list-order"),
        pytest.param({"at": AT}, {"at": AT + dt.timedelta(seconds=1)}, id="datetime"),
        pytest.param(decimal.Decimal("10.50"), decimal.Decimal("10.51"), id="decimal"),
        pytest.param(uuid.UUID(REF), uuid.UUID(int=1), id="uuid"),
        pytest.param({"hot", "emea"}, {"hot", "apac"}, id="set"),
        pytest.param(b"\x00", b"\x01", id="bytes"),
        pytest.param(Contact(name="Jo", seen=AT), Contact(name="Al", seen=AT), id="pydantic"),
        pytest.param(
            Owner("U-1", frozenset({"ops"})), Owner("U-1", frozenset({"sales"})), id="dataclass"
        ),
    ],
)
def test_different_data_hashes_differently(first: Any, second: Any) -> None:
    """Different data gives different hashes."""
    assert content_hash(first) != content_hash(second)


@pytest.mark.parametrize(
    ("data", "canonical"),
    [
        pytest.param({"b": None, "a": [1, "é"]}, '{"a":[1,"é"],"b":null}', id="sorted-compact"),
        pytest.param({"at": AT}, '{"at":"2026-03-01T09:30:00+00:00"}', id="datetime"),
        pytest.param({"day": AT.date()}, '{"day":"2026-03-01"}', id="date"),
        pytest.param(decimal.Decimal("10.50"), '"10.50"', id="decimal"),
        pytest.param(uuid.UUID(REF), f'"{REF}"', id="uuid"),
        pytest.param({"b", "a"}, '["a","b"]', id="set"),
        pytest.param(b"\x00\xff", '"00ff"', id="bytes"),
        pytest.param(
            Owner("U-1", frozenset({"ops"})), '{"id":"U-1","teams":["ops"]}', id="dataclass"
        ),
        pytest.param(
            Contact(name="Jo", seen=AT),
            '{"name":"Jo","seen":"2026-03-01T09:30:00+00:00"}',
            id="pydantic",
        ),
    ],
)
def test_hash_is_sha256_of_canonical_json(data: Any, canonical: str) -> None:
    """The hash is the SHA-256 of sorted compact JSON, with fixed forms for non-JSON values."""
    assert content_hash(data) == hashlib.sha256(canonical.encode()).hexdigest()


PAYLOAD = """
import dataclasses, datetime, decimal, uuid
import pydantic

class Contact(pydantic.BaseModel):
    name: str
    seen: datetime.datetime

@dataclasses.dataclass
class Owner:
    id: str
    teams: frozenset

payload = {
    "tags": {"hot", "inbound", "enterprise", "emea", "q3", "renewal", "smb", "partner"},
    "when": datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.timezone.utc),
    "day": datetime.date(2026, 3, 1),
    "amount": decimal.Decimal("1234.50"),
    "ref": uuid.UUID("0b6f1c5e-9d3a-4c1e-8f2a-1d2e3f4a5b6c"),
    "blob": b"\\x00\\x01\\xfe",
    "contact": Contact(name="Jo", seen=datetime.datetime(2026, 2, 1, tzinfo=datetime.timezone.utc)),
    "owner": Owner("U-1", frozenset({"sales", "ops", "support", "finance"})),
    "nested": {"z": 1, "a": [3, 2, 1]},
}
"""


@pytest.mark.parametrize("seed", [pytest.param("0", id="seed-0"), pytest.param("1", id="seed-1")])
def test_same_data_hashes_the_same_in_another_process(seed: str) -> None:
    """The same data gives the same hash in a process with another string-hash seed."""
    namespace: dict[str, Any] = {"__name__": "provenance_payload"}
    exec(compile(PAYLOAD, "<payload>", "exec", dont_inherit=True), namespace)
    here = content_hash(namespace["payload"])
    script = PAYLOAD + "\nfrom ada_governance import content_hash\nprint(content_hash(payload))\n"
    there = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "PYTHONHASHSEED": seed},
    ).stdout.strip()
    assert there == here


class Tagged(pydantic.BaseModel):
    """A pydantic model with a set field."""

    tags: set[int]


def test_pydantic_set_fields_hash_the_same_in_any_order() -> None:
    """A pydantic model's set field is hashed sorted, like a bare set."""
    assert content_hash({1, 9}) == content_hash({9, 1})
    assert content_hash(Tagged(tags={1, 9})) == content_hash(Tagged(tags={9, 1}))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({uuid.UUID(REF): {"score": 1}}, id="uuid-keys"),
        pytest.param({dt.date(2026, 3, 1): 4}, id="date-keys"),
        pytest.param({1: "one", "two": 2}, id="mixed-keys"),
    ],
)
def test_mappings_with_non_text_keys_hash(data: dict[Any, Any]) -> None:
    """Data keyed by UUIDs, dates or mixed keys hashes, the same every time."""
    assert content_hash(data) == content_hash(dict(data))


# --- personal sources ----------------------------------------------------------------------

PERSON = {"id": "lead-42", "email": "jane.doe@example.com", "name": "Jane Doe", "phone": 5551234567}
RAW = ["jane.doe@example.com", "Jane Doe", "5551234567"]
PERSONAL = Source(name="crm.contact", system="HubSpot", classification="personal", key="id")


class Traced(NamedTuple):
    """A governance that captures content, and the spans it made."""

    gov: Governance
    exporter: InMemorySpanExporter


@pytest.fixture
def traced() -> Iterator[Traced]:
    """A development governance capturing content into an in-memory span exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Traced(
        Governance(MemoryStore(), development=True, tracer_provider=provider, capture_content=True),
        exporter,
    )
    provider.shutdown()


def span_texts(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> list[str]:
    """Every attribute and event value, name and status description on ``spans``."""
    texts: list[str] = []
    for span in spans:
        texts.append(span.name)
        texts.extend(str(value) for value in (span.attributes or {}).values())
        texts.append(span.status.description or "")
        for event in span.events:
            texts.append(event.name)
            texts.extend(str(value) for value in (event.attributes or {}).values())
    return texts


def use_person(run: Run, lead: dict[str, Any]) -> dict[str, Any]:
    """Put the personal values into a model call and the output, as a drafting body does."""
    run.record_model_call(
        "gpt-4o-mini",
        "openai",
        12,
        30,
        prompt=f"Write to {lead['name']} <{lead['email']}>",
        completion={"text": f"Hi {lead['name']}, we will call {lead['phone']}"},
    )
    return {"to": lead["email"], "body": f"Dear {lead['name']},\nthanks"}


async def aload_person() -> dict[str, Any]:
    """An async loader of a personal record."""
    await asyncio.sleep(0)
    return dict(PERSON)


@pytest.mark.parametrize("kind", [pytest.param("function"), pytest.param("coroutine")])
def test_personal_values_never_reach_spans_raw(traced: Traced, kind: str) -> None:
    """Personal source values never appear raw in span attributes or events, even captured."""
    wf = workflow(PERSONAL)
    if kind == "function":

        @governed_workflow(wf, governance=traced.gov)
        def draft() -> dict[str, Any]:
            run = current_run()
            return use_person(run, run.source("crm.contact", lambda: dict(PERSON)))

        output = draft()
    else:

        @governed_workflow(wf, governance=traced.gov)
        async def adraft() -> dict[str, Any]:
            run = current_run()
            return use_person(run, await run.asource("crm.contact", aload_person))

        output = asyncio.run(adraft())

    assert output["to"] == "jane.doe@example.com"  # the caller still gets the real data
    spans = traced.exporter.get_finished_spans()
    assert {span.name for span in spans} >= {
        "invoke_workflow intake",
        "read_source crm.contact",
        "chat gpt-4o-mini",
    }
    texts = span_texts(spans)
    assert any("[personal:" in text for text in texts)  # content was captured, redacted
    for raw in RAW:
        assert not [text for text in texts if raw in text], raw


def test_personal_values_read_in_a_nested_run_never_reach_spans_raw(traced: Traced) -> None:
    """Personal values a nested run read and returned are redacted on the outer run too."""

    @governed_workflow(workflow(PERSONAL, name="lookup"), governance=traced.gov)
    def lookup() -> dict[str, Any]:
        return dict(current_run().source("crm.contact", lambda: dict(PERSON)))

    @governed_workflow(workflow(name="reply"), governance=traced.gov)
    def reply() -> dict[str, Any]:
        lead = lookup()
        return {"to": lead["email"], "body": f"Dear {lead['name']}"}

    reply()
    texts = span_texts(traced.exporter.get_finished_spans())
    for raw in RAW:
        assert not [text for text in texts if raw in text], raw


def test_failed_run_keeps_provenance_not_personal_data(stored_gov: Governance) -> None:
    """A failed run's row, audit and logs keep a personal read's hash and id, never its data."""

    @governed_workflow(workflow(PERSONAL), governance=stored_gov)
    def send() -> None:
        current_run().source("crm.contact", lambda: dict(PERSON))
        raise Boom("the mail provider refused the message")

    with structlog.testing.capture_logs() as logs, pytest.raises(Boom):
        send()

    row = only_row(stored_gov)
    assert row.status is RunStatus.FAILED
    (read,) = row.reads
    assert (read.record_id, read.sha256, read.classification) == (
        "lead-42",
        content_hash(PERSON),
        "personal",
    )
    assert [log["event"] for log in logs if log["event"] == "run_failed"] == ["run_failed"]
    kept = repr(row) + repr(stored_gov.audit_events()) + repr(logs)
    for raw in RAW:
        assert raw not in kept, raw
