"""Stop rules: the conditions under which a workflow stops itself, fail closed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from ._declaration import Declaration, PositiveDuration, format_duration

if TYPE_CHECKING:
    from .records import RunRecord
    from .reviews import Review

LIMIT_TOLERANCE = 1e-9
"""Sums of decimal amounts in binary floats (0.1 + 0.1 + 0.1) may pass a limit by a
rounding error; limits are compared with this much room, relative to the limit."""


def passes_limit(held: float, amount: float, limit: float) -> bool:
    """Whether holding ``amount`` more on top of ``held`` would pass ``limit`` (beyond a
    rounding error)."""
    return held + amount > limit + LIMIT_TOLERANCE * max(1.0, abs(limit))


__all__ = [
    "LIMIT_TOLERANCE",
    "passes_limit",
    "Budget",
    "BudgetUnit",
    "BudgetWindow",
    "ErrorRate",
    "ExceptionVolume",
    "KillSwitch",
    "RejectionRate",
    "RunCap",
    "SlaBreachRate",
    "StopRule",
    "Trip",
    "limit_trip",
    "reservation_rule",
    "review_trip",
    "run_trip",
    "window_start",
]


class BudgetWindow(str, Enum):
    """The calendar window a budget resets on (UTC)."""

    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


class BudgetUnit(str, Enum):
    """What a budget counts."""

    USD = "usd"
    TOKENS = "tokens"


class _Rule(Declaration):
    kind: str

    @model_serializer(mode="wrap")
    def _kind_first(self, handler: SerializerFunctionWrapHandler) -> Any:
        # `kind` tells the rules apart, so it is written even where it is the default.
        data = handler(self)
        return {"kind": self.kind, **data} if isinstance(data, dict) else data


class KillSwitch(_Rule):
    """A person may stop the workflow at once (``ada-governance pause``).

    Attributes:
        description: Who pulls it and when.
    """

    kind: Literal["kill_switch"] = "kill_switch"
    description: str = ""


class Budget(_Rule):
    """Stop when spend in a calendar window would pass a limit.

    Before each run, its ``per_run`` maximum is reserved against the limit; when the run
    ends, the reservation is settled to what it recorded (`Run.record_model_call`). A
    run whose reservation would take the window's total past ``limit`` is refused and
    the rule trips, so concurrent runs, in any number of processes, never overspend.

    Attributes:
        limit: The most that may be spent in one window, in ``unit``.
        per_run: The most one run may spend: what is reserved before it starts.
        unit: ``usd`` (model cost) or ``tokens`` (input plus output tokens).
        window: ``hour``, ``day`` or ``month``, in UTC.
    """

    kind: Literal["budget"] = "budget"
    limit: float = Field(gt=0, allow_inf_nan=False)
    per_run: float = Field(gt=0, allow_inf_nan=False)
    unit: BudgetUnit = BudgetUnit.USD
    window: BudgetWindow = BudgetWindow.DAY


class RunCap(_Rule):
    """Stop after a number of runs within a sliding window (a pilot's scope).

    Each run takes a place before it starts; the run that would be one too many is
    refused and the rule trips.

    Attributes:
        max_runs: The most runs allowed within ``window``.
        window: The sliding window, such as ``"7d"``.
    """

    kind: Literal["run_cap"] = "run_cap"
    max_runs: int = Field(ge=1)
    window: PositiveDuration


class ErrorRate(_Rule):
    """Stop when the share of failed runs within a window passes a rate.

    Attributes:
        max_rate: The highest acceptable share of failed runs, in (0, 1].
        window: The sliding window the share is computed over.
        min_sample: How many runs the window must hold before the rule can trip.
    """

    kind: Literal["error_rate"] = "error_rate"
    max_rate: float = Field(gt=0, le=1)
    window: PositiveDuration = timedelta(hours=1)
    min_sample: int = Field(default=20, ge=1)


class ExceptionVolume(_Rule):
    """Stop when more exceptions than allowed are routed within a window.

    Attributes:
        max_count: The most exceptions allowed within ``window``.
        window: The sliding window.
    """

    kind: Literal["exception_volume"] = "exception_volume"
    max_count: int = Field(ge=1)
    window: PositiveDuration = timedelta(hours=1)


class RejectionRate(_Rule):
    """Stop when reviewers reject too large a share of reviews within a window.

    Attributes:
        max_rate: The highest acceptable share of rejected reviews, in (0, 1].
        window: The sliding window.
        min_sample: How many decided reviews the window must hold before it can trip.
    """

    kind: Literal["rejection_rate"] = "rejection_rate"
    max_rate: float = Field(gt=0, le=1)
    window: PositiveDuration = timedelta(days=1)
    min_sample: int = Field(default=10, ge=1)


class SlaBreachRate(_Rule):
    """Stop when too many runs take longer than the SLA, trigger to outcome.

    Attributes:
        sla: The longest acceptable cycle time.
        max_rate: The highest acceptable share of runs over the SLA, in (0, 1].
        window: The sliding window.
        min_sample: How many finished runs the window must hold before it can trip.
    """

    kind: Literal["sla_breach_rate"] = "sla_breach_rate"
    sla: PositiveDuration
    max_rate: float = Field(gt=0, le=1)
    window: PositiveDuration = timedelta(days=1)
    min_sample: int = Field(default=20, ge=1)


StopRule = Annotated[
    KillSwitch | Budget | RunCap | ErrorRate | ExceptionVolume | RejectionRate | SlaBreachRate,
    Field(discriminator="kind"),
]
"""Any stop rule, told apart by its ``kind``."""


# --- deciding whether a rule trips (pure) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trip:
    """A stop rule that tripped, with the figure that tripped it.

    Attributes:
        rule: The rule's kind (``budget``, ``error_rate``...).
        figure: The figure that crossed the threshold.
        threshold: The rule's threshold.
        sample: How many runs (or reviews) the figure is over.
        message: What happened, for people.
    """

    rule: str
    figure: float
    threshold: float
    sample: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The trip as JSON-ready data."""
        return {
            "rule": self.rule,
            "figure": self.figure,
            "threshold": self.threshold,
            "sample": self.sample,
            "message": self.message,
        }


FINISHED = frozenset({"succeeded", "failed", "pending_review"})
"""Run statuses that count as finished runs for rates (refused and cancelled runs do not)."""


def window_start(window: BudgetWindow, now: dt.datetime) -> dt.datetime:
    """The start (UTC) of the calendar window ``now`` falls in."""
    now = now.astimezone(dt.timezone.utc)
    if window is BudgetWindow.HOUR:
        return now.replace(minute=0, second=0, microsecond=0)
    if window is BudgetWindow.DAY:
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def reservation_rule(rule: Budget | RunCap) -> str:
    """The key a rule's reservations are kept under."""
    if isinstance(rule, Budget):
        return f"budget:{rule.unit.value}:{rule.window.value}"
    return f"run_cap:{int(rule.window.total_seconds())}s"


def limit_trip(rule: Budget | RunCap, held: float) -> Trip:
    """The trip of a budget or run cap a run's reservation would have passed."""
    if isinstance(rule, Budget):
        unit = "USD" if rule.unit is BudgetUnit.USD else "tokens"
        return Trip(
            "budget",
            held + rule.per_run,
            rule.limit,
            0,
            f"budget: {held:g} {unit} already held this {rule.window.value}, and a run "
            f"reserves {rule.per_run:g} more, past the limit of {rule.limit:g}",
        )
    return Trip(
        "run_cap",
        held + 1,
        float(rule.max_runs),
        int(held),
        f"run cap: {held:g} runs in the last {format_duration(rule.window)}; "
        f"one more would pass {rule.max_runs}",
    )


def run_trip(
    rule: ErrorRate | ExceptionVolume | SlaBreachRate, runs: Sequence[RunRecord], now: dt.datetime
) -> Trip | None:
    """Whether a rule over the ledger trips, given the runs started in its window.

    Error rate: failed runs / finished runs, when there are at least ``min_sample``
    finished runs, trips when it is over ``max_rate``. Exception volume: failed runs,
    trips when over ``max_count``. SLA breach rate: finished runs whose cycle time
    (trigger received to end) is over ``sla`` / finished runs, with at least
    ``min_sample``, trips when over ``max_rate``.
    """
    since = now - rule.window
    recent = [r for r in runs if r.started_at >= since and r.status.value in FINISHED]
    failed = sum(1 for r in recent if r.status.value == "failed")
    if isinstance(rule, ExceptionVolume):
        if failed > rule.max_count:
            return Trip(
                "exception_volume",
                float(failed),
                float(rule.max_count),
                len(recent),
                f"exception volume: {failed} failed runs in the last "
                f"{format_duration(rule.window)}, over {rule.max_count}",
            )
        return None
    n = len(recent)
    if n < rule.min_sample or n == 0:
        return None
    if isinstance(rule, ErrorRate):
        rate = failed / n
        if rate > rule.max_rate:
            return Trip(
                "error_rate",
                rate,
                rule.max_rate,
                n,
                f"error rate: {failed} of {n} runs failed in the last "
                f"{format_duration(rule.window)} ({rate:.1%}), over {rule.max_rate:.1%}",
            )
        return None
    breaches = sum(1 for r in recent if r.ended_at - r.received_at > rule.sla)
    rate = breaches / n
    if rate > rule.max_rate:
        return Trip(
            "sla_breach_rate",
            rate,
            rule.max_rate,
            n,
            f"SLA breach rate: {breaches} of {n} runs took longer than "
            f"{format_duration(rule.sla)} in the last {format_duration(rule.window)} "
            f"({rate:.1%}), over {rule.max_rate:.1%}",
        )
    return None


def review_trip(rule: RejectionRate, reviews: Sequence[Review], now: dt.datetime) -> Trip | None:
    """Whether the rejection rate trips: rejected / decided approval reviews (approved or
    rejected) decided in the window, with at least ``min_sample``, over ``max_rate``."""
    since = now - rule.window
    decided = [
        r
        for r in reviews
        if r.kind.value == "approval"
        and r.status.value in ("approved", "rejected")
        and r.decisions
        and r.decisions[-1].at >= since
    ]
    n = len(decided)
    if n < rule.min_sample or n == 0:
        return None
    rejected = sum(1 for r in decided if r.status.value == "rejected")
    rate = rejected / n
    if rate > rule.max_rate:
        return Trip(
            "rejection_rate",
            rate,
            rule.max_rate,
            n,
            f"rejection rate: reviewers rejected {rejected} of {n} in the last "
            f"{format_duration(rule.window)} ({rate:.1%}), over {rule.max_rate:.1%}",
        )
    return None
