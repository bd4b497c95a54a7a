"""Output standards: what a workflow's output must satisfy before review or action."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from ._declaration import Declaration, ImportedCallable, ImportedModel

__all__ = ["OnFail", "OutputIssue", "OutputStandard", "check_schema", "validator_issues"]


class OnFail(str, Enum):
    """What happens when an output fails its standard."""

    RAISE = "raise"
    """Raise an error carrying every issue (the default)."""
    EXCEPTION_PATH = "exception_path"
    """Route the failure down the workflow's exception path."""
    REVIEW = "review"
    """Send the output to a person instead of discarding it: the call returns a
    `PendingAction`, and the output as approved (or edited) is its result. Needs a
    review policy."""
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


# --- checking an output ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputIssue:
    """One way an output fails its standard.

    Attributes:
        name: A short, stable name (``placeholder_left_in_body``, ``schema.to``).
        message: What is wrong, for the person or model fixing it.
    """

    name: str
    message: str = ""

    def __str__(self) -> str:
        return f"{self.name}: {self.message}" if self.message else self.name


def check_schema(standard: OutputStandard, output: Any) -> tuple[Any, list[OutputIssue]]:
    """Validate ``output`` against the standard's schema.

    Text is read as JSON (a model's streamed answer); anything else is validated as a
    Python object.

    Returns:
        The validated instance (or the output itself when there is no schema), and the
        issues, one per schema error, named ``schema.<field path>``.
    """
    schema = standard.schema_
    if schema is None:
        return output, []
    try:
        if isinstance(output, (str, bytes, bytearray)):
            return schema.model_validate_json(output), []
        if isinstance(output, BaseModel):
            # An instance may have been changed after it was built; check its fields
            # again rather than trust it.
            return schema.model_validate(output.model_dump()), []
        return schema.model_validate(output), []
    except ValidationError as error:
        issues = [
            OutputIssue(
                "schema." + ".".join(str(part) for part in item["loc"])
                if item["loc"]
                else "schema",
                str(item["msg"]),
            )
            for item in error.errors(include_url=False)
        ]
        return output, issues


def validator_issues(validator: Any, result: Any) -> list[OutputIssue]:
    """Read what a validator returned: a list of issue names, `OutputIssue`s or pairs."""
    if result is None:
        return []
    if isinstance(result, (str, OutputIssue)):
        result = [result]
    issues = []
    for item in result:
        if isinstance(item, OutputIssue):
            issues.append(item)
        elif isinstance(item, str):
            issues.append(OutputIssue(item))
        elif isinstance(item, tuple) and len(item) == 2:
            issues.append(OutputIssue(str(item[0]), str(item[1])))
        else:
            name = getattr(validator, "__name__", "validator")
            issues.append(OutputIssue(f"{name}.bad_result", f"returned {item!r}"))
    return issues
