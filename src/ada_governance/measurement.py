"""Metrics: the operating results a deployed workflow is measured by."""

from __future__ import annotations

import datetime as dt
from enum import Enum

from pydantic import Field

from ._declaration import Declaration, Name

__all__ = ["Baseline", "Direction", "Metric"]


class Direction(str, Enum):
    """Which way a metric should move for the workflow to count as better."""

    INCREASE = "increase"
    DECREASE = "decrease"


class Baseline(Declaration):
    """The figure a metric had before the workflow changed the process.

    Attributes:
        value: The measured figure, in the metric's unit.
        sample_size: How many cases it was measured on.
        measured_at: When it was measured.
        note: How it was measured.
    """

    value: float = Field(allow_inf_nan=False)
    sample_size: int = Field(ge=1)
    measured_at: dt.date
    note: str = ""


class Metric(Declaration):
    """An operating metric the workflow is tracked by, against its baseline.

    Attributes:
        name: The metric's name, unique within the workflow (``"response_time"``).
        unit: Its unit (``"s"``, ``"%"``, ``"meetings"``).
        direction: Whether higher or lower is better.
        baseline: The figure before the workflow; needed to leave draft.
        target: The figure the workflow aims for.
        description: What is measured and how.
    """

    name: Name
    unit: str = Field(min_length=1)
    direction: Direction
    baseline: Baseline | None = None
    target: float | None = Field(default=None, allow_inf_nan=False)
    description: str = ""
