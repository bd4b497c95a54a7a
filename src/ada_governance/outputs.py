"""Output standards: what a workflow's output must satisfy before review or action."""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import Field

from ._declaration import Declaration, ImportedCallable, ImportedModel

__all__ = ["OnFail", "OutputStandard"]


class OnFail(str, Enum):
    """What happens when an output fails its standard."""

    RAISE = "raise"
    """Raise an error carrying every issue (the default)."""
    EXCEPTION_PATH = "exception_path"
    """Route the failure down the workflow's exception path."""
    REVIEW = "review"
    """Send the output to a person instead of discarding it (needs the review queue,
    which this version does not have yet: declaring it is a declaration error)."""
    RETRY = "retry"
    """Run the body again, up to ``max_attempts`` times, with the previous issues."""


class OutputStandard(Declaration):
    """The standard a workflow's output must meet.

    Attributes:
        schema_: A pydantic model the output must validate against; written ``schema``
            in files and keyword arguments (``OutputStandard(schema=FollowUp)``).
        validators: Callables that take the output and return a list of named issues
            (empty when the output is acceptable); import paths in files.
        mode: ``validate`` (the default) checks the output against the schema and
            returns it as the body returned it; ``coerce`` returns the schema's
            validated instance instead (a dict becomes the model).
        on_fail: What happens when the output fails.
        max_attempts: How many times the body may run in all when ``on_fail`` is
            ``retry``.
        description: The standard in words, for reviewers.
    """

    schema_: ImportedModel | None = Field(default=None, alias="schema")
    validators: tuple[ImportedCallable, ...] = ()
    mode: Literal["validate", "coerce"] = "validate"
    on_fail: OnFail = OnFail.RAISE
    max_attempts: int = Field(default=3, ge=1, le=20)
    description: str = ""
