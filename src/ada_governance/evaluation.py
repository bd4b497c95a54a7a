"""What to do with a workflow next: ``scale``, ``revise``, ``pause`` or ``stop``.

`evaluate` applies `decide`'s rules to a `report` for the period, the period's stop-rule
trips and the workflow's current stage, and gives the recommendation with the figures
behind each reason. `decide` does no I/O, so the rules can be checked on plain results.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .governance import Governance
from .records import AuditEvent
from .report import (
    STOP_RULE_TRIPPED,
    MetricResult,
    Report,
    _events,
    _jsonable,
    report,
)
from .workflow import Stage, Workflow

__all__ = ["Evaluation", "Reason", "Recommendation", "decide", "evaluate"]


class Recommendation(str, Enum):
    """What to do with the workflow next."""

    SCALE = "scale"
    """Every target is met and no metric is worse than its baseline."""
    REVISE = "revise"
    """Not failing, not proven: change the workflow and measure again."""
    PAUSE = "pause"
    """A stop rule tripped in the period, or the workflow is paused."""
    STOP = "stop"
    """A metric is past its threshold, or most metrics are worse than their baselines."""


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason for a recommendation, with the figures behind it."""

    message: str
    """What was found, in words a person can act on."""
    figures: tuple[str, ...]
    """The figures (or audit events and state) it rests on."""

    def to_dict(self) -> dict[str, Any]:
        """The reason as JSON-ready data."""
        return {"message": self.message, "figures": list(self.figures)}


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A recommendation for a workflow, its reasons and the report behind it."""

    workflow: str
    """The workflow's name."""
    recommendation: Recommendation
    """``scale``, ``revise``, ``pause`` or ``stop``."""
    reasons: tuple[Reason, ...]
    """Why, each naming its figures."""
    not_measured: tuple[str, ...]
    """The declared metrics without a ``figure``: not part of the decision."""
    report: Report
    """The report the recommendation was made from."""

    def to_dict(self) -> dict[str, Any]:
        """The evaluation as JSON-ready data."""
        data: dict[str, Any] = _jsonable(self)
        return data


def _num(value: float | None) -> str:
    return "no data" if value is None else f"{value:g}"


def _describe(result: MetricResult) -> str:
    text = f"{result.name} ({result.figure}) is {_num(result.value)} {result.unit}"
    if result.baseline is not None:
        text += f", baseline {_num(result.baseline)} ({result.baseline_source})"
    return text


def decide(
    report: Report, *, trips: Sequence[AuditEvent] = (), paused: bool = False
) -> tuple[Recommendation, tuple[Reason, ...]]:
    """Apply the evaluation rules to a report (no I/O). The first rule that holds wins.

    1. ``pause``: a stop rule tripped in the period (``trips``), or the workflow is paused.
    2. ``stop``: any metric is past its threshold, or more than half of the metrics that
       can be compared with a baseline are worse than it.
    3. ``scale``: at least one metric met its target or held or beat its baseline, every
       metric with a target meets it, and none is worse than its baseline.
    4. ``revise``: anything else.

    Args:
        report: The period's report.
        trips: The ``stop_rule_tripped`` audit events of the period.
        paused: Whether the workflow is paused now.

    Returns:
        The recommendation and its reasons.
    """
    if trips or paused:
        reasons = [_trip_reason(event) for event in trips]
        if paused:
            reasons.append(Reason("the workflow is paused", ("stage",)))
        return Recommendation.PAUSE, tuple(reasons)

    metrics = report.metrics
    failing = [m for m in metrics if m.failing]
    compared = [m for m in metrics if m.worse is not None]
    worse = [m for m in compared if m.worse]
    if failing or (compared and 2 * len(worse) > len(compared)):
        reasons = [
            Reason(
                f"{_describe(m)}: past its threshold {_num(m.threshold)} "
                f"(it should {m.direction.value})",
                (m.figure,),
            )
            for m in failing
        ]
        if compared and 2 * len(worse) > len(compared):
            reasons.append(
                Reason(
                    f"{len(worse)} of {len(compared)} metrics compared with a baseline are "
                    "worse than it: " + "; ".join(_describe(m) for m in worse),
                    tuple(m.figure for m in worse),
                )
            )
        return Recommendation.STOP, tuple(reasons)

    targeted = [m for m in metrics if m.target is not None]
    missed = [m for m in targeted if not m.met_target]
    evidence = [m for m in metrics if m.met_target or m.worse is False]
    if evidence and not missed and not worse:
        return Recommendation.SCALE, tuple(
            Reason(_describe(m) + _verdict(m), (m.figure,)) for m in evidence
        )

    reasons = [
        Reason(f"{_describe(m)}: misses its target {_num(m.target)}", (m.figure,)) for m in missed
    ]
    reasons += [Reason(f"{_describe(m)}: worse than its baseline", (m.figure,)) for m in worse]
    if not evidence:
        reasons.append(
            Reason(
                "no metric met a target or held its baseline: nothing shows the workflow "
                "works yet; declare figures, targets and baselines and measure again",
                tuple(m.figure for m in metrics),
            )
        )
    return Recommendation.REVISE, tuple(reasons)


def _verdict(result: MetricResult) -> str:
    parts = []
    if result.met_target:
        parts.append(f"meets its target {_num(result.target)}")
    if result.change_pct is not None and result.worse is False:
        parts.append(f"{result.change_pct:+.1f}% against its baseline")
    elif result.improved:
        parts.append("better than its baseline")
    elif result.worse is False:
        parts.append("holds its baseline")
    return ": " + ", ".join(parts) if parts else ""


def _trip_reason(event: AuditEvent) -> Reason:
    data = event.data
    rule = str(data.get("rule") or event.actor or "?")
    text = f"stop rule {rule} tripped at {event.at.isoformat()}"
    if data.get("message"):
        text += f": {data['message']}"
    elif isinstance(data.get("figure"), (int, float)) and data.get("threshold") is not None:
        text += f": {data['figure']:g} against a threshold of {data['threshold']}"
    return Reason(text, (STOP_RULE_TRIPPED, f"stop_rule:{rule}"))


def evaluate(
    governance: Governance,
    workflow: Workflow,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Evaluation:
    """Recommend whether to scale, revise, pause or stop a workflow, from its report.

    The rules are `decide`'s, applied to `report` for the period, the period's
    ``stop_rule_tripped`` audit events, and the workflow's current stage (stored, else
    declared).

    Args:
        governance: Where the ledger, reviews and audit log are.
        workflow: The workflow's declaration.
        since: The start of the period (timezone-aware).
        until: The end of the period.

    Returns:
        The recommendation, its reasons and the report.

    Raises:
        UsageError: A naive or empty period.
    """
    measured = report(governance, workflow, since, until)
    trips = _events(governance, workflow, since, until, event=STOP_RULE_TRIPPED)
    state = governance.state(workflow)
    stage = state.stage if state is not None else workflow.stage
    recommendation, reasons = decide(measured, trips=trips, paused=stage is Stage.PAUSED)
    return Evaluation(
        workflow=workflow.name,
        recommendation=recommendation,
        reasons=reasons,
        not_measured=measured.not_measured,
        report=measured,
    )
