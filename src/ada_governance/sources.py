"""Approved source data: the systems a workflow may read its context from."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from ._declaration import Declaration, Name, PositiveDuration
from .exceptions import StaleSourceError, UnapprovedSourceError
from .records import SourceRead

if TYPE_CHECKING:
    from .run import Run

__all__ = [
    "Classification",
    "Source",
    "SourceData",
    "approve_read",
    "complete_read",
    "content_hash",
]


class Classification(str, Enum):
    """How sensitive a source's data is; decides what may appear in telemetry."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    PERSONAL = "personal"


class Source(Declaration):
    """A source of context the workflow is approved to read.

    Attributes:
        name: The name code reads it by, unique within the workflow (``"crm.lead"``).
        system: The system that holds the data (``"Salesforce"``).
        classification: How sensitive the data is. Data from ``personal`` sources is
            never put on spans or log events raw.
        description: What the data is and why the workflow needs it.
        key: The field of the loaded data that holds its record id (dotted for nested
            fields), for provenance; a loader may instead return `SourceData`.
        as_of: The field of the loaded data that holds when the data was last true
            (a datetime or ISO 8601 text); needed to check ``freshness``.
        freshness: How old the data may be; older data is refused, and so is data
            whose age cannot be told (fail closed).
        required: Whether a run must read this source to succeed.
    """

    name: Name
    system: str
    classification: Classification = Classification.INTERNAL
    description: str = ""
    key: str | None = None
    as_of: str | None = None
    freshness: PositiveDuration | None = None
    required: bool = False


# --- reading sources in a run ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceData:
    """What a loader may return to say outright which record it read and how old it is.

    A loader that returns anything else has its record id and age taken from the fields
    the source declares (``key``, ``as_of``).

    Attributes:
        data: The data itself; this is what the run gets back.
        record_id: The record's id in its system.
        as_of: When the data was last true (timezone-aware).
    """

    data: Any
    record_id: str | None = None
    as_of: dt.datetime | None = None


def content_hash(data: Any) -> str:
    """The SHA-256 of data's canonical JSON form, the same in every process.

    Keys are written as text and sorted, separators fixed, and values JSON cannot hold
    are written the same way every time: datetimes and dates in ISO 8601, decimals and
    UUIDs as text, sets sorted, bytes in hex, pydantic models and dataclasses as their
    fields (with their sets sorted too).
    """
    text = json.dumps(_canonical(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(value: Any, depth: int = 0) -> Any:
    """Plain JSON data for ``value``, the same for equal values in any process."""
    if depth > 100:
        raise ValueError("data nested more than 100 deep cannot be hashed")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Enum):
        return _canonical(value.value, depth + 1)
    if hasattr(value, "model_dump") and callable(value.model_dump):
        # Python mode keeps sets as sets, so they are sorted below (JSON mode would
        # turn them into lists in hash-seed order).
        return _canonical(value.model_dump(), depth + 1)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _canonical(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {_key(key): _canonical(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item, depth + 1) for item in value]
    if isinstance(value, (set, frozenset)):
        items = [_canonical(item, depth + 1) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)  # Decimal, UUID, Path and the like: their text is their identity


def _key(key: Any) -> str:
    """A mapping key as text; keys of other types keep their type in the text, so
    ``1`` and ``"1"`` stay different keys."""
    if isinstance(key, str):
        return key
    canonical = _canonical(key)
    text = canonical if isinstance(canonical, str) else json.dumps(canonical, sort_keys=True)
    return f"{type(key).__name__}:{text}"


def _field(data: Any, path: str) -> Any:
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        else:
            current = getattr(current, part, None)
        if current is None:
            return None
    return current


def _as_time(value: Any) -> dt.datetime | None:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value
    return None


def _personal_values(data: Any, found: set[str], depth: int = 0) -> None:
    # Text and numbers long enough to identify someone; short values (a state code,
    # "yes") would redact everything that happens to contain them.
    if depth > 20:
        return
    if isinstance(data, str):
        if len(data) >= 4:
            found.add(data)
    elif isinstance(data, bool) or data is None:
        return
    elif isinstance(data, (int, float)):
        text = str(data)
        if len(text) >= 4:
            found.add(text)
    elif isinstance(data, Mapping):
        for item in data.values():
            _personal_values(item, found, depth + 1)
    elif isinstance(data, (list, tuple, set, frozenset)):
        for item in data:
            _personal_values(item, found, depth + 1)
    elif hasattr(data, "model_dump"):
        _personal_values(data.model_dump(), found, depth + 1)
    elif dataclasses.is_dataclass(data) and not isinstance(data, type):
        _personal_values(dataclasses.asdict(data), found, depth + 1)


def approve_read(run: Run, name: str) -> Source:
    """Return the declared source ``name`` for ``run``, or refuse the read.

    Raises:
        UnapprovedSourceError: The workflow does not declare the source. The violation
            stays on the run, so the run fails even if the code catches the error.
    """
    declared = run.workflow.source(name)
    if declared is None:
        approved = ", ".join(s.name for s in run.workflow.sources) or "none"
        error = UnapprovedSourceError(
            f"workflow {run.workflow.name!r} does not approve the source {name!r} "
            f"(approved: {approved}); declare it under 'sources' to read it",
            workflow=run.workflow.name,
            run_id=run.id,
            source=name,
        )
        run._violations.append(error)
        raise error
    return declared


def complete_read(run: Run, declared: Source, result: Any, fetched_at: dt.datetime) -> Any:
    """Record the provenance of a read, check its freshness, and return the data.

    Raises:
        StaleSourceError: The data is older than the source's freshness, or the source
            declares a freshness and the data's age cannot be told.
    """
    if isinstance(result, SourceData):
        data, record_id, as_of = result.data, result.record_id, result.as_of
    else:
        data = result
        record_id = None
        if declared.key is not None:
            key = _field(data, declared.key)
            record_id = None if key is None else str(key)
        as_of = _as_time(_field(data, declared.as_of)) if declared.as_of is not None else None
    if record_id is not None:
        record_id = str(record_id)
    if as_of is not None and (not isinstance(as_of, dt.datetime) or as_of.tzinfo is None):
        as_of = None  # a naive time says nothing across hosts: its age is unknown
    read = SourceRead(
        declared.name,
        declared.system,
        declared.classification.value,
        record_id,
        content_hash(data),
        fetched_at,
        as_of,
    )
    run._reads.append(read)
    if declared.classification is Classification.PERSONAL:
        found: set[str] = set()
        _personal_values(data, found)
        # Enclosing runs may return what this run read: they redact it too.
        holder: Run | None = run
        while holder is not None:
            holder._personal |= found
            holder = holder.parent
    if declared.freshness is not None:
        age = fetched_at - as_of if as_of is not None else None
        if age is None or age > declared.freshness:
            told = f"is {age} old" if age is not None else "has no time to tell its age by"
            error = StaleSourceError(
                f"data from {declared.name!r} {told}; the source accepts data up to "
                f"{declared.freshness} old",
                workflow=run.workflow.name,
                run_id=run.id,
                source=declared.name,
                age=age,
            )
            run._violations.append(error)
            raise error
    return data
