"""Errors raised by ada_governance.

Every error derives from `GovernanceError`. Misuse by the developer (a bad declaration, a
call made in the wrong place) is a separate branch from refusals at run time, so an app
can tell "fix your code" from "the workflow said no"::

    GovernanceError
    ├── DeclarationError          a declaration is invalid; lists every problem at once
    ├── UsageError                the library was called in a way that cannot work
    │   └── NoActiveRun           current_run() outside a governed run
    ├── RunRefused                governance refused to start a run; it was recorded
    │   ├── WorkflowNotRunnable   a draft workflow outside development mode
    │   ├── WorkflowPaused        the stored stage is paused (kill switch, stop rule)
    │   ├── WorkflowRetired       the stored stage is retired
    │   ├── TriggerRefused        the trigger event is not one the workflow declares
    │   ├── CheckFailed           a pre-check refused the run
    │   ├── StopRuleTripped       a budget or run cap would be passed; the workflow paused
    │   └── GovernanceUnavailable the store cannot say whether the run may start
    ├── PolicyViolation           the governed code broke the declaration during a run
    │   ├── UnapprovedSourceError read a source the workflow does not declare
    │   ├── StaleSourceError      data older than the source's freshness, or of unknown age
    │   ├── RequiredSourceNotRead the run ended without reading a required source
    │   ├── OutputRejected        the output failed its standard; carries every issue
    │   ├── ActionForbidden       a manual-only or undeclared action, or one outside its run
    │   └── InvalidPayload        an action's payload (or a reviewer's edit) fails its schema
    ├── ReviewDecisionRefused     a decision or claim on a review was refused (reviews)
    ├── StageChangeRefused        a stage change off the lifecycle's path (lifecycle)
    └── StoreError                a store could not do what it was asked (storage.base)

Each error carries the data a caller needs and a message a person can act on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ActionForbidden",
    "CheckFailed",
    "DeclarationError",
    "GovernanceError",
    "GovernanceUnavailable",
    "InvalidPayload",
    "NoActiveRun",
    "OutputRejected",
    "PolicyViolation",
    "Problem",
    "RequiredSourceNotRead",
    "RunRefused",
    "StaleSourceError",
    "StopRuleTripped",
    "TriggerRefused",
    "UnapprovedSourceError",
    "UsageError",
    "WorkflowNotRunnable",
    "WorkflowPaused",
    "WorkflowRetired",
]


class GovernanceError(Exception):
    """Base class of every error raised by ada_governance."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a declaration.

    Attributes:
        loc: Where the problem is, as keys and list indices from the top of the
            declaration, such as ``("review", "timeout")``; empty for the whole.
        message: What is wrong, phrased so a person can fix it.
        source: The file the declaration came from, if any.
        line: The 1-based line of the offending key in that file, when known.
    """

    loc: tuple[str | int, ...]
    message: str
    source: str | None = None
    line: int | None = None

    @property
    def path(self) -> str:
        """The location as a dotted path, such as ``sources[1].name``."""
        text = ""
        for part in self.loc:
            if isinstance(part, int):
                text += f"[{part}]"
            else:
                text += f".{part}" if text else part
        return text

    def __str__(self) -> str:
        where = ""
        if self.source is not None:
            where = f"{self.source}:{self.line}: " if self.line else f"{self.source}: "
        subject = f"{self.path}: " if self.path else ""
        return f"{where}{subject}{self.message}"


class DeclarationError(GovernanceError):
    """A workflow declaration is invalid.

    Raised once per declaration (or per folder of declarations) with every problem found,
    so a developer can fix them all in one pass.

    Attributes:
        problems: Every problem found, in the order they were found.
    """

    def __init__(self, problems: Iterable[Problem], *, summary: str | None = None) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("DeclarationError needs at least one problem")
        self.summary = summary or "invalid workflow declaration"
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"{self.summary} ({count} {noun}):"]
        lines.extend(f"  {problem}" for problem in self.problems)
        return "\n".join(lines)

    def with_source(
        self,
        source: str,
        line_of: Callable[[tuple[str | int, ...]], int | None] | None = None,
    ) -> DeclarationError:
        """Return a copy whose problems name ``source`` and, where known, their line.

        Args:
            source: The file name to attach to problems that do not name one yet.
            line_of: Maps a problem's ``loc`` to its line in ``source``.

        Returns:
            A new error with the same summary.
        """
        updated = [
            Problem(
                problem.loc,
                problem.message,
                problem.source or source,
                problem.line
                if problem.line is not None or line_of is None
                else line_of(problem.loc),
            )
            for problem in self.problems
        ]
        return DeclarationError(updated, summary=self.summary)


class UsageError(GovernanceError):
    """The library was called in a way that cannot work; the message says how to fix it."""


class NoActiveRun(UsageError):
    """``current_run()`` was called where no governed run is active."""


class RunRefused(GovernanceError):
    """Governance refused to start a run. The refusal is recorded in the ledger.

    Attributes:
        workflow: The workflow's name.
        run_id: The id the refused run was recorded under.
        reason: A short, stable reason code (``paused``, ``retired``, ``draft``,
            ``trigger``, ``store_unavailable``).
    """

    reason = "refused"

    def __init__(self, message: str, *, workflow: str, run_id: str | None = None) -> None:
        super().__init__(message)
        self.workflow = workflow
        self.run_id = run_id


class WorkflowNotRunnable(RunRefused):
    """The workflow is a draft and governance is not configured for development."""

    reason = "draft"


class WorkflowPaused(RunRefused):
    """The workflow is paused (by a person or a stop rule) and refuses new runs."""

    reason = "paused"


class WorkflowRetired(RunRefused):
    """The workflow is retired and refuses every run."""

    reason = "retired"


class TriggerRefused(RunRefused):
    """The trigger event is missing or of a type the workflow does not declare."""

    reason = "trigger"


class GovernanceUnavailable(RunRefused):
    """The store could not say whether the run may start, so it was refused (fail closed).

    The refusal cannot be written to the store that is down; it is logged, and written
    to the ledger once the store answers again.
    """

    reason = "store_unavailable"


class CheckFailed(RunRefused):
    """A pre-check refused the run.

    Attributes:
        check: The check's name.
        why: The reason the check gave.
    """

    reason = "check"

    def __init__(
        self, message: str, *, workflow: str, run_id: str | None = None, check: str, why: str
    ) -> None:
        super().__init__(message, workflow=workflow, run_id=run_id)
        self.check = check
        self.why = why


class PolicyViolation(GovernanceError):
    """The governed code broke its declaration during a run; the run fails.

    Attributes:
        workflow: The workflow's name.
        run_id: The run's id.
    """

    def __init__(self, message: str, *, workflow: str, run_id: str | None) -> None:
        super().__init__(message)
        self.workflow = workflow
        self.run_id = run_id


class UnapprovedSourceError(PolicyViolation):
    """The run read a source its workflow does not declare.

    Attributes:
        source: The source's name.
    """

    def __init__(self, message: str, *, workflow: str, run_id: str, source: str) -> None:
        super().__init__(message, workflow=workflow, run_id=run_id)
        self.source = source


class StaleSourceError(PolicyViolation):
    """The data read is older than the source's declared freshness, or its age is unknown.

    Attributes:
        source: The source's name.
        age: How old the data was, if known.
    """

    def __init__(
        self, message: str, *, workflow: str, run_id: str, source: str, age: Any = None
    ) -> None:
        super().__init__(message, workflow=workflow, run_id=run_id)
        self.source = source
        self.age = age


class RequiredSourceNotRead(PolicyViolation):
    """The run ended without reading a source the workflow declares as required.

    Attributes:
        sources: The required sources not read.
    """

    def __init__(
        self, message: str, *, workflow: str, run_id: str, sources: tuple[str, ...]
    ) -> None:
        super().__init__(message, workflow=workflow, run_id=run_id)
        self.sources = sources


class OutputRejected(PolicyViolation):
    """The output failed its standard.

    Attributes:
        issues: Every issue found, each an `OutputIssue` (name and message).
        attempts: How many times the body ran before the output was rejected.
    """

    def __init__(
        self,
        message: str,
        *,
        workflow: str,
        run_id: str,
        issues: tuple[Any, ...],
        attempts: int = 1,
    ) -> None:
        super().__init__(message, workflow=workflow, run_id=run_id)
        self.issues = issues
        self.attempts = attempts


class ActionForbidden(PolicyViolation):
    """The action may not be done here: it is ``manual_only``, not declared by the
    workflow, or called outside a run of its workflow.

    Attributes:
        action: The action's name.
    """

    def __init__(self, message: str, *, workflow: str, run_id: str | None, action: str) -> None:
        super().__init__(message, workflow=workflow, run_id=run_id)
        self.action = action


class InvalidPayload(PolicyViolation):
    """An action's payload, or a reviewer's edit of it, fails the action's input schema.

    Attributes:
        action: The action's name.
        errors: What is wrong, one line each.
    """

    def __init__(
        self,
        message: str,
        *,
        workflow: str,
        run_id: str | None,
        action: str,
        errors: tuple[str, ...],
    ) -> None:
        super().__init__(message, workflow=workflow, run_id=run_id)
        self.action = action
        self.errors = errors


class StopRuleTripped(RunRefused):
    """A budget or run cap would have been passed by this run: it was refused, and the
    rule tripped, pausing the workflow (fail closed).

    Attributes:
        rule: The rule's kind (``budget``, ``run_cap``).
        figure: The figure that would have crossed the threshold.
        threshold: The rule's threshold.
    """

    reason = "stop_rule"

    def __init__(
        self,
        message: str,
        *,
        workflow: str,
        run_id: str | None = None,
        rule: str,
        figure: float,
        threshold: float,
    ) -> None:
        super().__init__(message, workflow=workflow, run_id=run_id)
        self.rule = rule
        self.figure = figure
        self.threshold = threshold
