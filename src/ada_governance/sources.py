"""Approved source data: the systems a workflow may read its context from."""

from __future__ import annotations

from enum import Enum

from ._declaration import Declaration, Name, PositiveDuration

__all__ = ["Classification", "Source"]


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
