"""The workflow declaration: everything that makes AI use a deployment, as data.

A `Workflow` names its trigger, owner, system of record, approved sources, output
standard, actions and their risk boundary, review policy, exception path, metrics and
stop rules. It is immutable, loads from Python, YAML or JSON, and dumps back the same.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_core import PydanticSerializationError

from ._declaration import (
    CrossFieldProblems,
    Declaration,
    ImportedCallable,
    Loc,
    Name,
    declaration_problems,
    enum_text,
    field_of,
)
from ._files import Format, format_for, imports_beside, parse_text, write_text
from .actions import Action, RiskBoundary
from .checks import Check
from .exceptions import DeclarationError, Problem
from .measurement import Metric
from .outputs import OnFail, OutputStandard
from .retry import RetryPolicy
from .review import ReviewPolicy
from .sources import Source
from .stops import StopRule

__all__ = [
    "ExceptionPath",
    "Owner",
    "Stage",
    "SystemOfRecord",
    "Trigger",
    "Workflow",
]


class Stage(str, Enum):
    """Where a workflow stands in its lifecycle."""

    DRAFT = "draft"
    """Being built; runs only where governance is configured for development."""
    PILOT = "pilot"
    """Running on a limited scope to measure it against its baseline."""
    PRODUCTION = "production"
    """Running for real, after a recorded decision to scale."""
    PAUSED = "paused"
    """Stopped by a person or a stop rule; refuses calls until resumed."""
    RETIRED = "retired"
    """Stopped for good; refuses calls."""


class Owner(Declaration):
    """The business owner who answers for the workflow.

    Attributes:
        name: Who they are.
        contact: How to reach them (an email address, a channel).
    """

    name: str = Field(min_length=1)
    contact: str = ""


class Trigger(Declaration):
    """The event types that start the workflow.

    Written ``Trigger(events=["form_fill", "missed_call"])``, or with one event type as
    ``Trigger(event="form_fill")``.

    Attributes:
        events: The event types that may start a run; any other type is refused.
        description: What the event is, in business terms.
    """

    events: tuple[str, ...] = Field(min_length=1)
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _one_event(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "event" in data:
            data = dict(data)
            event = data.pop("event")
            if "events" in data:
                raise ValueError("write either 'event' or 'events', not both")
            if not isinstance(event, str) or not event.strip():
                raise CrossFieldProblems(
                    [(("event",), f"name one event type, such as form_fill; got {event!r}")]
                )
            data["events"] = [event]
        return data

    def _cross_field_problems(self) -> Iterable[tuple[Loc, str]]:
        for index, event in enumerate(self.events):
            if not event.strip():
                yield ("events", index), "an event type cannot be empty"
        for event, count in Counter(self.events).items():
            if count > 1:
                yield ("events",), f"event type {event!r} is listed {count} times"


class SystemOfRecord(Declaration):
    """The system where the workflow's outcomes are recorded (a CRM, a ticket system).

    A plain string is accepted as the name: ``system_of_record: Salesforce``.

    Attributes:
        name: The system's name.
        description: What is recorded there.
    """

    name: str = Field(min_length=1)
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


class ExceptionPath(Declaration):
    """Where failures go: who is told, and what code handles them.

    By default the original exception is re-raised to the caller after it is recorded
    and routed; a ``fallback`` turns it into a value returned instead.

    Attributes:
        route_to: The team, role or queue that takes the workflow's exceptions.
        handler: A callable given each `ExceptionRecord` (sync or async); an import
            path in files. If it fails, that is recorded and the original error still
            propagates.
        fallback: A callable given the `ExceptionRecord` whose return value the
            governed function returns instead of raising (functions and coroutine
            functions only; streams always re-raise). Recorded as a fallback.
    """

    route_to: str = Field(min_length=1)
    handler: ImportedCallable | None = None
    fallback: ImportedCallable | None = None


_DEPLOYED_STAGES = ("pilot", "production")


def _workflow_rules(data: Any) -> Iterable[tuple[Loc, str]]:
    """The rules across a workflow's fields, read from raw data or a validated workflow."""
    for field in ("sources", "actions", "metrics"):
        items = field_of(data, field) or ()
        if isinstance(items, (str, Mapping)):
            continue  # not a list: field validation reports it
        first_at: dict[Any, int] = {}
        for index, item in enumerate(items):
            name = field_of(item, "name")
            if not isinstance(name, str):
                continue
            if name in first_at:
                yield (
                    (field, index, "name"),
                    f"duplicate name {name!r} (also {field}[{first_at[name]}])",
                )
            else:
                first_at[name] = index
    if field_of(data, "review") is None:
        for index, action in enumerate(field_of(data, "actions") or ()):
            if enum_text(field_of(action, "risk")) == RiskBoundary.REQUIRES_APPROVAL.value:
                yield (
                    ("actions", index, "risk"),
                    f"action {field_of(action, 'name')!r} requires approval, so the workflow "
                    "needs a review policy: add 'review' with at least one reviewer role",
                )
    standard = field_of(data, "output_standard")
    if (
        standard is not None
        and enum_text(field_of(standard, "on_fail")) == OnFail.REVIEW.value
        and field_of(data, "review") is None
    ):
        yield (
            ("output_standard", "on_fail"),
            "'review' sends failed outputs to a person, so the workflow needs a review "
            "policy: add 'review' with at least one reviewer role, or choose another on_fail",
        )
    checks = field_of(data, "checks") or ()
    if not isinstance(checks, (str, Mapping)):
        first_check: dict[Any, int] = {}
        for index, check in enumerate(checks):
            name = field_of(check, "name")
            if isinstance(name, str):
                if name in first_check:
                    yield (
                        ("checks", index, "name"),
                        f"duplicate name {name!r} (also checks[{first_check[name]}])",
                    )
                else:
                    first_check[name] = index
    stage = enum_text(field_of(data, "stage"))
    if stage in _DEPLOYED_STAGES:
        needed = f"a workflow in {stage} must name"
        if field_of(data, "owner") is None:
            yield ("owner",), f"{needed} its business owner"
        if field_of(data, "trigger") is None:
            yield ("trigger",), f"{needed} the event that triggers it"
        if field_of(data, "system_of_record") is None:
            yield ("system_of_record",), f"{needed} its system of record"
        metrics = field_of(data, "metrics") or ()
        if not any(field_of(metric, "baseline") is not None for metric in metrics):
            yield ("metrics",), f"{needed} at least one metric with a baseline"
        if not field_of(data, "stop_rules"):
            yield ("stop_rules",), f"{needed} at least one stop rule"


class Workflow(Declaration):
    """A governed workflow, declared.

    Attributes:
        name: The workflow's name: letters, digits, ``_``, ``-`` and ``.``.
        version: The declaration's version; ``name`` and ``version`` identify it.
        description: What the workflow does.
        stage: The declared stage; the stored stage (changed by decisions) prevails at
            run time.
        owner: The business owner.
        trigger: The events that start a run.
        system_of_record: Where outcomes are recorded.
        sources: The approved source data.
        output_standard: What the output must meet.
        actions: What the workflow does in the world, each with its risk boundary.
        review: Who reviews, when, and what happens if nobody does.
        exception_path: Where failures go.
        metrics: The operating results the workflow is measured by.
        stop_rules: When the workflow stops itself.
        checks: Pre-checks run before the body; a failing one refuses the run.
        retry: How transient failures of the body (declared exception types) are
            retried.
        on_store_unavailable: ``refuse`` (the default: fail closed) or
            ``run_ungoverned``, which lets calls go ahead while the store cannot answer
            and records them when it is back.
    """

    name: Name
    version: str = Field(default="1", min_length=1, max_length=64)
    description: str = ""
    stage: Stage = Stage.DRAFT
    owner: Owner | None = None
    trigger: Trigger | None = None
    system_of_record: SystemOfRecord | None = None
    sources: tuple[Source, ...] = ()
    output_standard: OutputStandard | None = None
    actions: tuple[Action, ...] = ()
    review: ReviewPolicy | None = None
    exception_path: ExceptionPath | None = None
    metrics: tuple[Metric, ...] = ()
    stop_rules: tuple[StopRule, ...] = ()
    checks: tuple[Check, ...] = ()
    retry: RetryPolicy | None = None
    on_store_unavailable: Literal["refuse", "run_ungoverned"] = "refuse"

    @model_validator(mode="before")
    @classmethod
    def _version_as_text(cls, data: Any) -> Any:
        # `version: 2` in YAML is an int; a version is a label, so keep it as text.
        if isinstance(data, Mapping):
            version = data.get("version")
            if type(version) is int:
                data = {**data, "version": str(version)}
            elif type(version) is float:
                raise CrossFieldProblems(
                    [(("version",), f"write the version as text, in quotes: '{version}'")]
                )
        return data

    @property
    def key(self) -> tuple[str, str]:
        """``(name, version)``, which identifies the declaration."""
        return (self.name, self.version)

    def source(self, name: str) -> Source | None:
        """Return the approved source called ``name``, or ``None``."""
        return next((source for source in self.sources if source.name == name), None)

    def action(self, name: str) -> Action | None:
        """Return the declared action called ``name``, or ``None``."""
        return next((action for action in self.actions if action.name == name), None)

    def _cross_field_problems(self) -> Iterable[tuple[Loc, str]]:
        return _workflow_rules(self)

    @classmethod
    def _rules_on_raw_data(cls, data: Any) -> Iterable[tuple[Loc, str]]:
        return _workflow_rules(data) if isinstance(data, Mapping) else ()

    # --- loading ---------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> Workflow:
        """Load a workflow from plain data, as parsed from YAML or JSON.

        Args:
            data: The declaration.
            source: Where the data came from, named in errors.

        Returns:
            The workflow.

        Raises:
            DeclarationError: The declaration is invalid; lists every problem.
        """
        return cls._from_data(data, source=source, line_of=None)

    @classmethod
    def from_string(
        cls, text: str, format: Format = "yaml", *, source: str | None = None
    ) -> Workflow:
        """Load a workflow from YAML or JSON text.

        Args:
            text: The declaration.
            format: ``"yaml"`` (the default) or ``"json"``.
            source: Where the text came from, named in errors.

        Returns:
            The workflow.

        Raises:
            DeclarationError: The text is malformed or the declaration invalid; YAML
                problems name their line.
        """
        data, line_of = parse_text(text, format, source)
        return cls._from_data(data, source=source, line_of=line_of)

    @classmethod
    def from_file(cls, path: str | Path) -> Workflow:
        """Load a workflow from a ``.yaml``, ``.yml`` or ``.json`` file.

        Args:
            path: The file.

        Returns:
            The workflow.

        Raises:
            DeclarationError: The file is unreadable, malformed or invalid; every problem
                names the file, and for YAML the line of the offending key.

        Import paths in the file (``schema: followup:FollowUp``) may name modules in the
        file's own folder, as a script may import its neighbours.
        """
        path = Path(path)
        fmt = format_for(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise DeclarationError(
                [Problem((), f"cannot read the file: {error.strerror or error}", str(path))]
            ) from None
        with imports_beside(path):
            return cls.from_string(text, fmt, source=str(path))

    @classmethod
    def _from_data(cls, data: Any, *, source: str | None, line_of: Any) -> Workflow:
        if not isinstance(data, Mapping):
            kind = "nothing" if data is None else type(data).__name__
            raise DeclarationError(
                [
                    Problem(
                        (),
                        f"a workflow declaration is a mapping of fields, not {kind}",
                        source,
                        1 if source else None,
                    )
                ]
            )
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problems = declaration_problems(cls, error, data)
            raise DeclarationError(
                [
                    Problem(p.loc, p.message, source, line_of(p.loc) if line_of else None)
                    for p in problems
                ],
                summary=f"invalid workflow declaration {data.get('name', '')!s}".rstrip(),
            ) from None

    # --- dumping ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the declaration as plain data, the form YAML and JSON files hold.

        Returns:
            A dict that `from_dict` loads back to an equal workflow.

        Raises:
            DeclarationError: A schema, validator or handler cannot be named by an import
                path (a lambda or a local function), so it cannot be written.
        """
        try:
            return self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        except PydanticSerializationError as error:
            raise DeclarationError(
                [Problem((), f"cannot be written to a file: {error}")],
                summary=f"workflow {self.name} cannot be dumped",
            ) from None

    def to_string(self, format: Format = "yaml") -> str:
        """Return the declaration as YAML (the default) or JSON text."""
        return write_text(self.to_dict(), format)

    def dump(self, path: str | Path) -> None:
        """Write the declaration to a ``.yaml``, ``.yml`` or ``.json`` file."""
        path = Path(path)
        path.write_text(self.to_string(format_for(path)), encoding="utf-8")
