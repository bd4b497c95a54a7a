"""Metrics: the operating results a deployed workflow is measured by."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import Enum

from pydantic import Field, field_validator

from ._declaration import Declaration, Loc, Name

__all__ = ["FIGURES", "Baseline", "Direction", "Metric"]

FIGURES: tuple[str, ...] = (
    "runs",
    "cycle_time_p50",
    "cycle_time_p95",
    "sla_adherence",
    "rework_rate",
    "review_accuracy",
    "exception_rate",
    "refusal_rate",
    "cost_per_run",
    "tokens_per_run",
)
"""The figures `ada_governance.report` computes that a `Metric` may name as its
``figure``; ``outcome:<name>`` names a recorded outcome besides these."""

OUTCOME_PREFIX = "outcome:"


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
        figure: Which figure the report computes for this metric, from the ledger and
            the review queue; without one the metric is listed as not measured. One of
            ``runs``, ``cycle_time_p50``, ``cycle_time_p95`` (seconds), ``sla_adherence``,
            ``rework_rate``, ``review_accuracy``, ``exception_rate``, ``refusal_rate``
            (shares from 0 to 1), ``cost_per_run`` (USD), ``tokens_per_run``, or
            ``outcome:<name>``: the mean of the recorded outcome ``<name>`` per finished
            run (``outcome:meeting_booked``). Baseline, target and threshold are in the
            figure's unit.
        threshold: The level past which the metric counts as failing, whatever its
            baseline: above it for a metric that should decrease, below it for one
            that should increase. A failing metric makes `evaluate` recommend ``stop``.
            Needs a ``figure``.
    """

    name: Name
    unit: str = Field(min_length=1)
    direction: Direction
    baseline: Baseline | None = None
    target: float | None = Field(default=None, allow_inf_nan=False)
    description: str = ""
    figure: str | None = None
    threshold: float | None = Field(default=None, allow_inf_nan=False)

    @field_validator("figure")
    @classmethod
    def _known_figure(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value in FIGURES:
            return value
        if value.startswith(OUTCOME_PREFIX):
            outcome = value[len(OUTCOME_PREFIX) :]
            if outcome.strip() and outcome == outcome.strip():
                return value
            raise ValueError(
                f"{value!r} names no outcome; write 'outcome:<name>' with the outcome's "
                "name as the runs record it, such as 'outcome:meeting_booked'"
            )
        raise ValueError(
            f"{value!r} is not a figure the report computes; use one of "
            f"{', '.join(FIGURES)}, or 'outcome:<name>' for a recorded outcome"
        )

    def _cross_field_problems(self) -> Iterable[tuple[Loc, str]]:
        if self.threshold is not None and self.figure is None:
            yield (
                ("threshold",),
                "a threshold needs a figure to compare with; name the metric's 'figure'",
            )
