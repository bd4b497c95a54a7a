"""Human review rules: who reviews, when, and what happens if nobody does."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from ._declaration import Declaration, ImportedCallable, Loc, PositiveDuration, import_object

__all__ = ["FieldRule", "OnTimeout", "ReviewMode", "ReviewPolicy"]


class ReviewMode(str, Enum):
    """When an output goes to a person."""

    ALWAYS = "always"
    SAMPLED = "sampled"
    CONDITIONAL = "conditional"


class OnTimeout(str, Enum):
    """What happens when nobody decides a review before its timeout."""

    REJECT = "reject"
    ESCALATE = "escalate"
    PAUSE_WORKFLOW = "pause_workflow"


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
    "in": lambda left, right: left in right,
    "not_in": lambda left, right: left not in right,
}


class FieldRule(Declaration):
    """A review condition written as data: ``field`` ``op`` ``value``.

    ``FieldRule(field="amount", op="gt", value=500)`` sends an output to review when its
    ``amount`` is over 500. ``field`` may be dotted to reach into nested values.

    Attributes:
        field: The output's field (attribute or key), dotted for nested values.
        op: One of ``eq``, ``ne``, ``gt``, ``ge``, ``lt``, ``le``, ``in``, ``not_in``.
        value: What the field is compared with.
    """

    field: str = Field(min_length=1)
    op: Literal["eq", "ne", "gt", "ge", "lt", "le", "in", "not_in"]
    value: Any

    def matches(self, output: Any) -> bool:
        """Return whether ``output`` meets the rule.

        Args:
            output: A mapping or an object with attributes.

        Returns:
            The comparison's result; ``False`` when the field is missing or the values
            cannot be compared, so a malformed output is never silently approved by it.
        """
        current = output
        for part in self.field.split("."):
            if isinstance(current, Mapping):
                if part not in current:
                    return False
                current = current[part]
            elif hasattr(current, part):
                current = getattr(current, part)
            else:
                return False
        try:
            return bool(_OPERATORS[self.op](current, self.value))
        except TypeError:
            return False


def _condition(value: Any) -> Any:
    if isinstance(value, Mapping):
        return FieldRule.model_validate(value)
    if isinstance(value, str):
        return import_object(value)
    return value


ReviewCondition = Annotated[FieldRule | ImportedCallable, BeforeValidator(_condition)]


class ReviewPolicy(Declaration):
    """Who reviews a workflow's output and actions, and what happens when they don't.

    Attributes:
        reviewers: Roles whose members may decide a review; at least one.
        mode: ``always``; ``sampled`` at ``sample_rate``; or ``conditional`` on
            ``condition``.
        sample_rate: The share of runs reviewed in ``sampled`` mode, in (0, 1].
        condition: In ``conditional`` mode, a `FieldRule` or a callable that takes
            the output and returns whether it needs review.
        timeout: How long a review may wait for a decision (default 24 hours).
        on_timeout: What happens then: ``reject``, ``escalate`` or ``pause_workflow``.
        escalate_to: Roles a review escalates to when ``on_timeout`` is ``escalate``.
        approvals_required: How many distinct reviewers must approve.
        requester_may_approve: Whether whoever requested an action may approve it.
        quality_sample_rate: The share of autonomous actions also queued for review
            after the fact (they run at once; the reviewer's verdict feeds review
            accuracy), in (0, 1]; none if unset.
    """

    reviewers: tuple[str, ...]
    mode: ReviewMode = ReviewMode.ALWAYS
    sample_rate: float | None = Field(default=None, gt=0, le=1)
    condition: ReviewCondition | None = None
    timeout: PositiveDuration = timedelta(hours=24)
    on_timeout: OnTimeout = OnTimeout.REJECT
    escalate_to: tuple[str, ...] = ()
    approvals_required: int = Field(default=1, ge=1, le=10)
    requester_may_approve: bool = False
    quality_sample_rate: float | None = Field(default=None, gt=0, le=1)

    def _cross_field_problems(self) -> Iterable[tuple[Loc, str]]:
        if not self.reviewers or any(not role.strip() for role in self.reviewers):
            yield ("reviewers",), "name at least one reviewer role"
        if self.mode is ReviewMode.SAMPLED and self.sample_rate is None:
            yield ("sample_rate",), "required when mode is 'sampled'"
        if self.mode is not ReviewMode.SAMPLED and self.sample_rate is not None:
            yield ("sample_rate",), "only used when mode is 'sampled'; remove it or set mode"
        if self.mode is ReviewMode.CONDITIONAL and self.condition is None:
            yield ("condition",), "required when mode is 'conditional'"
        if self.mode is not ReviewMode.CONDITIONAL and self.condition is not None:
            yield ("condition",), "only used when mode is 'conditional'; remove it or set mode"
        if self.on_timeout is OnTimeout.ESCALATE and not self.escalate_to:
            yield ("escalate_to",), "name the roles to escalate to when on_timeout is 'escalate'"
