"""The lifecycle commands: ``pause``, ``resume``, ``retire``, ``stage set``, ``decide`` and
``history``, added to the ``ada-governance`` group by `register`."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

import click

from . import lifecycle
from .exceptions import DeclarationError, GovernanceError
from .governance import Governance
from .records import WorkflowState
from .registry import load_workflows
from .storage import StoreError, default_store_url
from .workflow import Workflow

__all__ = ["register"]

_STORE_ENV = "ADA_GOVERNANCE_STORE"
_STORE_HELP = (
    "The governance store URL (sqlite:////path/governance.db, memory://). "
    f"Default: ${_STORE_ENV}, else the default store."
)

_F = TypeVar("_F", bound=Callable[..., Any])


class _Fail(Exception):
    """A one-line message for stderr, then exit 1."""


def _one_line(error: BaseException) -> str:
    if isinstance(error, DeclarationError):
        text = f"{error.summary}: " + "; ".join(str(problem) for problem in error.problems)
    elif isinstance(error, StoreError):
        text = f"the store failed: {error}; check --store (or ${_STORE_ENV})"
    elif isinstance(error, ValueError):
        text = f"{error}; check --store (or ${_STORE_ENV})"
    else:
        text = str(error)
    return " ".join(text.split())


def _exit(error: BaseException) -> NoReturn:
    click.echo(f"error: {_one_line(error)}", err=True)
    sys.exit(1)


@contextlib.contextmanager
def _governance(store_url: str | None) -> Iterator[Governance]:
    """A governance on the store, closed afterwards; expected errors exit 1 with a line."""
    try:
        governance = Governance(store_url or default_store_url())
    except (ValueError, GovernanceError) as error:
        _exit(error)
    try:
        yield governance
    except (_Fail, GovernanceError) as error:
        _exit(error)
    finally:
        with contextlib.suppress(Exception):  # closing must not hide what happened
            governance.close()


def _store_option(fn: _F) -> _F:
    return click.option("--store", "store_url", metavar="URL", default=None, help=_STORE_HELP)(fn)


def _who_and_why(fn: _F) -> _F:
    # Not click's required=True: a missing option is one line on stderr and exit 1,
    # like every other error of these commands.
    fn = click.option("--reason", metavar="TEXT", default=None, help="Why (required).")(fn)
    return click.option("--actor", metavar="NAME", default=None, help="Who (required).")(fn)


def _required(actor: str | None, reason: str | None) -> tuple[str, str]:
    if actor is None or not actor.strip():
        raise _Fail("say who is doing it with --actor NAME")
    if reason is None or not reason.strip():
        raise _Fail("say why with --reason TEXT")
    return actor.strip(), reason.strip()


def _when(value: dt.datetime) -> str:
    return value.isoformat(timespec="seconds")


def _changed(name: str, state: WorkflowState) -> str:
    return (
        f"{name} is now {state.stage.value} "
        f"({state.actor}, {_when(state.changed_at)}: {state.reason})"
    )


def _version_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """Order versions as people do: ``2`` before ``10``, ``1.2`` before ``1.10``."""
    parts = (part for part in re.split(r"(\d+)", version) if part)
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in parts)


def _declared(paths: tuple[Path, ...], name: str) -> Workflow:
    """The latest declared version of ``name`` under ``paths``."""
    if not paths:
        raise _Fail(
            f"say where {name} is declared with --workflows PATH (a file or a folder), "
            "to check its readiness and declared stage"
        )
    versions = load_workflows(*paths).versions(name)
    if not versions:
        where = ", ".join(map(str, paths))
        raise _Fail(f"no workflow {name!r} is declared under {where}")
    return max(versions, key=lambda workflow: _version_key(workflow.version))


# --- pause, resume, retire ------------------------------------------------------------------


@click.command("pause")
@click.argument("name")
@_who_and_why
@_store_option
def pause_command(name: str, actor: str | None, reason: str | None, store_url: str | None) -> None:
    """Pause workflow NAME: every process sharing the store refuses its calls until it is
    resumed."""
    with _governance(store_url) as governance:
        who, why = _required(actor, reason)
        state = lifecycle.pause(governance, name, actor=who, reason=why)
    click.echo(_changed(name, state))


@click.command("resume")
@click.argument("name")
@_who_and_why
@click.option(
    "--workflows",
    "paths",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Where NAME is declared; needed only when the history does not say which stage "
    "it was paused from (then it returns to its declared stage).",
)
@_store_option
def resume_command(
    name: str,
    actor: str | None,
    reason: str | None,
    paths: tuple[Path, ...],
    store_url: str | None,
) -> None:
    """Resume workflow NAME, back to the stage it was paused from."""
    with _governance(store_url) as governance:
        who, why = _required(actor, reason)
        target: Workflow | str = _declared(paths, name) if paths else name
        state = lifecycle.resume(governance, target, actor=who, reason=why)
    click.echo(_changed(name, state))


@click.command("retire")
@click.argument("name")
@_who_and_why
@_store_option
def retire_command(name: str, actor: str | None, reason: str | None, store_url: str | None) -> None:
    """Retire workflow NAME for good: it refuses every call and never changes stage again."""
    with _governance(store_url) as governance:
        who, why = _required(actor, reason)
        state = lifecycle.retire(governance, name, actor=who, reason=why)
    click.echo(_changed(name, state))


# --- stage set ----------------------------------------------------------------------------------


@click.group("stage")
def stage_group() -> None:
    """Change a workflow's stage under the lifecycle rules."""


@stage_group.command("set")
@click.argument("name")
@click.argument("stage", metavar="STAGE")
@_who_and_why
@click.option(
    "--workflows",
    "paths",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Declaration files or folders where NAME is declared (required; repeat for "
    "several). The latest version is used.",
)
@_store_option
def set_stage_command(
    name: str,
    stage: str,
    actor: str | None,
    reason: str | None,
    paths: tuple[Path, ...],
    store_url: str | None,
) -> None:
    """Move workflow NAME to STAGE (draft, pilot, production, paused or retired), if the
    lifecycle rules allow it.

    draft goes to pilot once its declaration names every element of a deployment; pilot
    goes to production after a recorded decision to scale; production goes back to
    pilot; any stage may be paused or retired; a paused workflow resumes to the stage it
    was paused from; a retired one stays retired.
    """
    with _governance(store_url) as governance:
        who, why = _required(actor, reason)
        workflow = _declared(paths, name)
        state = lifecycle.change_stage(governance, workflow, stage, actor=who, reason=why)
    click.echo(_changed(name, state))


# --- decide ---------------------------------------------------------------------------------------


def _figures(values: tuple[str, ...]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise _Fail(
                f"give each --figure as NAME=VALUE, such as meetings_booked=31; got {value!r}"
            )
        try:
            figures[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            figures[key.strip()] = text
    return figures


@click.command("decide")
@click.argument("name")
@click.argument("decision", metavar="DECISION")
@_who_and_why
@click.option(
    "--figure",
    "figures",
    multiple=True,
    metavar="NAME=VALUE",
    help="A figure the decision rests on (repeat for several); numbers are kept as numbers.",
)
@_store_option
def decide(
    name: str,
    decision: str,
    actor: str | None,
    reason: str | None,
    figures: tuple[str, ...],
    store_url: str | None,
) -> None:
    """Record a pilot decision for workflow NAME: scale, revise, pause or stop.

    A decision to scale lets `stage set NAME production` through while it is the latest
    decision. Acting on pause or stop is `pause NAME` or `retire NAME`.
    """
    with _governance(store_url) as governance:
        who, why = _required(actor, reason)
        recorded = lifecycle.record_decision(
            governance,
            name,
            cast(lifecycle.DecisionKind, decision),  # record_decision refuses any other
            actor=who,
            reason=why,
            figures=_figures(figures),
        )
    click.echo(
        f"recorded {recorded.decision} for {name} ({recorded.actor}, {_when(recorded.at)}: "
        f"{recorded.reason})"
    )


# --- history --------------------------------------------------------------------------------------


def _history_table(changes: list[lifecycle.StageChange]) -> str:
    rows = [["at", "from", "to", "actor", "reason"]]
    rows.extend(
        [
            _when(change.at),
            change.from_.value if change.from_ is not None else "-",
            change.to.value,
            change.actor,
            change.reason,
        ]
        for change in changes
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


@click.command("history")
@click.argument("name")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="How to print.",
)
@_store_option
def history_command(name: str, output_format: str, store_url: str | None) -> None:
    """List every stage change of workflow NAME: when, from, to, who and why."""
    with _governance(store_url) as governance:
        changes = lifecycle.history(governance, name)
    if output_format == "json":
        click.echo(json.dumps([change.to_dict() for change in changes], indent=2))
    elif changes:
        click.echo(_history_table(changes))
    else:
        click.echo(f"no stage changes recorded for {name}")


def register(main: click.Group) -> None:
    """Add the lifecycle commands to ``main``."""
    for command in (
        pause_command,
        resume_command,
        retire_command,
        stage_group,
        decide,
        history_command,
    ):
        main.add_command(command)
