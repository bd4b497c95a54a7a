"""Stop rules: the conditions under which a workflow stops itself, fail closed."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from ._declaration import Declaration, PositiveDuration

__all__ = [
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

    Attributes:
        limit: The most that may be spent in one window, in ``unit``.
        unit: ``usd`` (model cost) or ``tokens`` (input plus output tokens).
        window: ``hour``, ``day`` or ``month``, in UTC.
    """

    kind: Literal["budget"] = "budget"
    limit: float = Field(gt=0, allow_inf_nan=False)
    unit: BudgetUnit = BudgetUnit.USD
    window: BudgetWindow = BudgetWindow.DAY


class RunCap(_Rule):
    """Stop after a number of runs within a sliding window (a pilot's scope).

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
