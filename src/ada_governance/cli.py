"""The ``ada-governance`` command."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import os
import signal
import sqlite3
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import structlog

from ._actions import worker_name
from ._version import __version__
from .exceptions import DeclarationError, InvalidPayload, UsageError
from .governance import Governance
from .readiness import Element, Readiness, readiness
from .registry import WorkflowRegistry, scan
from .reviews import (
    ExecutionStatus,
    NotAReviewer,
    PayloadChanged,
    Review,
    ReviewDecisionRefused,
    ReviewStatus,
)
from .storage import SQLiteStore, Store, StoreError, default_store_url, open_store

__all__ = ["main"]

_HEADERS = {
    Element.WORKFLOW: "workflow",
    Element.TRIGGER: "trigger",
    Element.OWNER: "owner",
    Element.SYSTEM_OF_RECORD: "record",
    Element.SOURCES: "sources",
    Element.OUTPUT_STANDARD: "output",
    Element.REVIEW: "review",
    Element.EXCEPTION_PATH: "exceptions",
    Element.MEASUREMENT: "metric",
    Element.STOP_RULE: "stop rule",
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ada-governance")
def main() -> None:
    """Govern AI workflows: check declarations, decide reviews, run approved actions."""
    # Audit events are logs: on the command line they go to stderr, so what a command
    # prints on stdout (tables, JSON) stays clean for pipes.
    if not structlog.is_configured():
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def _table(results: Sequence[tuple[Readiness, Path]]) -> str:
    header = ["workflow", "version"] + [_HEADERS[e] for e in Element if e is not Element.WORKFLOW]
    header.append("verdict")
    rows = [header]
    for result, _ in results:
        marks = ["yes" if result.elements[e] else "-" for e in Element if e is not Element.WORKFLOW]
        rows.append([result.workflow, result.version, *marks, result.verdict.value])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    for result, path in results:
        if result.blocking:
            missing = ", ".join(element.label for element in result.blocking)
            lines.append(
                f"{result.workflow} {result.version} ({path}): adoption mode; name its {missing}"
            )
    return "\n".join(lines)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="How to print the results.",
)
@click.option(
    "--require",
    type=click.Choice(["deployment"]),
    default=None,
    help="Also exit 1 when any workflow's verdict is not this.",
)
def check(paths: tuple[Path, ...], output_format: str, require: str | None) -> None:
    """Check workflow declarations: is each one a deployment, or still adoption mode?

    PATHS are declaration files (.yaml, .yml, .json; a .py file is run and its Workflow
    objects checked) and folders searched for declaration files. Exits 1 when any
    declaration is invalid, and with --require deployment when any is not ready.
    """
    found = scan(paths)
    errors = list(found.errors)
    try:
        registry = WorkflowRegistry(found.found)
        loaded = [(w, registry.path_of(w)) for w in registry.values()]
    except DeclarationError as duplicates:
        errors.append(duplicates)
        loaded = list(found.found)
    results = [(readiness(workflow), path or Path("?")) for workflow, path in loaded]
    if output_format == "json":
        payload = {
            "workflows": [{**r.to_dict(), "path": str(p)} for r, p in results],
            "errors": [
                {
                    "path": problem.path,
                    "message": problem.message,
                    "file": problem.source,
                    "line": problem.line,
                }
                for error in errors
                for problem in error.problems
            ],
        }
        click.echo(json.dumps(payload, indent=2))
    elif results:
        click.echo(_table(results))
    for error in errors:
        click.echo(str(error), err=True)
    not_ready = [r for r, _ in results if not r.deployed]
    if require == "deployment" and not_ready:
        names = ", ".join(f"{r.workflow} {r.version}" for r in not_ready)
        click.echo(f"not ready for deployment: {names}", err=True)
    if errors or (require == "deployment" and not_ready):
        sys.exit(1)
    if not results:
        click.echo("no workflow declarations found under: " + ", ".join(map(str, paths)), err=True)
        sys.exit(1)


# --- the review queue -------------------------------------------------------------------------

_STORE_HELP = (
    "The governance store URL (sqlite:////path/governance.db,"
    " postgresql://user@host:5432/database, memory://). "
    "Default: $ADA_GOVERNANCE_STORE, else the default store."
)
_REVIEWER_ENV = "ADA_GOVERNANCE_REVIEWER"
_STORE_ENV = "ADA_GOVERNANCE_STORE"
_ROLES_ENV = "ADA_GOVERNANCE_ROLES"

_F = TypeVar("_F", bound=Callable[..., Any])


def _store_option(fn: _F) -> _F:
    return click.option("--store", "store_url", metavar="URL", default=None, help=_STORE_HELP)(fn)


def _identity_options(fn: _F) -> _F:
    fn = click.option(
        "--role",
        "roles",
        multiple=True,
        metavar="ROLE",
        help=f"A role the reviewer holds (repeat for several). Default: ${_ROLES_ENV}, "
        "comma-separated.",
    )(fn)
    return click.option(
        "--reviewer",
        metavar="NAME",
        envvar=_REVIEWER_ENV,
        default=None,
        help=f"Who decides. Default: ${_REVIEWER_ENV}.",
    )(fn)


def _format_option(fn: _F) -> _F:
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="How to print.",
    )(fn)


class _Fail(Exception):
    """A one-line message for stderr, then exit 1."""


def _fail_message(error: BaseException) -> str:
    """What went wrong and what to do, on one line."""
    if isinstance(error, _Fail):
        text = str(error)
    elif isinstance(error, KeyError):
        what = error.args[0] if error.args else "no such review"
        text = f"{what}; list reviews with `ada-governance reviews list --status all`"
    elif isinstance(error, NotAReviewer):
        text = f"{error}; pass a role that may decide it with --role (or ${_ROLES_ENV})"
    elif isinstance(error, PayloadChanged):
        text = f"{error} (ada-governance reviews show {error.review_id})"
    elif isinstance(error, InvalidPayload):
        text = f"{error}; fix the --edit payload and try again"
    elif isinstance(error, StoreError):
        text = f"the store failed: {error}; check --store (or ${_STORE_ENV})"
    elif isinstance(error, ValueError):
        text = f"{error}; check --store (or ${_STORE_ENV})"
    else:
        text = str(error)
    return " ".join(text.split())


_EXPECTED_ERRORS = (
    _Fail,
    KeyError,
    ReviewDecisionRefused,
    InvalidPayload,
    UsageError,
    StoreError,
)


@contextlib.contextmanager
def _governance(store_url: str | None) -> Iterator[Governance]:
    """A governance on the store, closed afterwards; expected errors exit 1 with a line."""
    url = store_url or default_store_url()
    try:
        governance = Governance(url)
    except (ValueError, StoreError) as error:
        click.echo(f"error: {_fail_message(error)}", err=True)
        sys.exit(1)
    try:
        yield governance
    except _EXPECTED_ERRORS as error:
        click.echo(f"error: {_fail_message(error)}", err=True)
        sys.exit(1)
    finally:
        with contextlib.suppress(Exception):  # closing must not hide what happened
            governance.close()


def _identity(reviewer: str | None, roles: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The reviewer and their roles, from the options or the environment."""
    if not reviewer or not reviewer.strip():
        raise _Fail(f"say who you are with --reviewer NAME (or ${_REVIEWER_ENV})")
    held = tuple(role.strip() for role in roles if role.strip())
    if not held:
        held = tuple(
            role.strip() for role in os.environ.get(_ROLES_ENV, "").split(",") if role.strip()
        )
    if not held:
        raise _Fail(
            "say which roles you decide with: --role ROLE, repeated for several "
            f"(or ${_ROLES_ENV}=role1,role2)"
        )
    return reviewer.strip(), held


def _when(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def _render_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _review_json(review: Review) -> dict[str, Any]:
    return {**review.to_dict(), "outcome": review.outcome, "edited": review.edited}


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)


def _summary(review: Review) -> str:
    """What happened to a review after a decision, in one line."""
    what = f"review {review.id} ({review.action} of {review.workflow})"
    if review.status is ReviewStatus.PENDING:
        count = len(review.approvals)
        return (
            f"{what}: {count} of {review.approvals_required} approvals; "
            "another reviewer must approve it"
        )
    line = f"{what}: {review.outcome}"
    execution = review.execution
    if execution is ExecutionStatus.READY:
        line += "; its action is ready for a worker (ada-governance worker --import MODULE)"
    elif execution is ExecutionStatus.SUCCEEDED:
        line += "; its action ran and succeeded"
    elif execution is ExecutionStatus.FAILED:
        line += f"; its action ran and failed: {review.error}"
    elif execution is not ExecutionStatus.WAITING:
        line += f"; its action is {execution.value}"
    return " ".join(line.split())


@main.group()
def reviews() -> None:
    """List, show and decide the reviews that hold actions for approval."""


@reviews.command("list")
@click.option("--workflow", metavar="NAME", default=None, help="Only this workflow's reviews.")
@click.option(
    "--status",
    type=click.Choice([*(status.value for status in ReviewStatus), "all"]),
    default="pending",
    show_default=True,
    help="Only reviews in this state.",
)
@click.option("--role", metavar="ROLE", default=None, help="Only reviews this role may decide.")
@_format_option
@_store_option
def list_reviews(
    workflow: str | None,
    status: str,
    role: str | None,
    output_format: str,
    store_url: str | None,
) -> None:
    """List reviews, oldest first (pending ones by default)."""
    with _governance(store_url) as governance:
        found = governance.reviews(workflow, status=None if status == "all" else status, role=role)
    if output_format == "json":
        click.echo(_dump([_review_json(review) for review in found]))
        return
    if not found:
        click.echo(f"no {'' if status == 'all' else status + ' '}reviews", err=True)
        return
    rows = [["id", "workflow", "action", "status", "execution", "roles", "deadline", "payload"]]
    rows += [
        [
            review.id,
            review.workflow,
            review.action,
            review.outcome,
            review.execution.value,
            ",".join(review.roles),
            _when(review.deadline),
            review.payload_sha256[:12],
        ]
        for review in found
    ]
    click.echo(_render_table(rows))


def _show_text(review: Review) -> str:
    lines = [
        f"review      {review.id} ({review.kind.value})",
        f"workflow    {review.workflow} (version {review.version})",
        f"action      {review.action}",
        f"run         {review.run_id}",
        f"requester   {review.requester}",
        f"status      {review.outcome}",
        f"roles       {', '.join(review.roles) or '-'}",
        f"approvals   {len(review.approvals)} of {review.approvals_required}",
        f"created     {_when(review.created_at)}",
        f"deadline    {_when(review.deadline)} (on timeout: {review.on_timeout})",
        f"sha256      {review.payload_sha256}",
        "payload:",
        textwrap.indent(_dump(review.payload), "  "),
    ]
    if review.edited:
        lines += ["original payload:", textwrap.indent(_dump(review.original_payload), "  ")]
        lines.append("diff:")
        for change in review.diff():
            name = change["field"] if change["field"] is not None else "(payload)"
            before = json.dumps(change["before"], default=str)
            after = json.dumps(change["after"], default=str)
            lines.append(f"  {name}: {before} -> {after}")
    lines.append("decisions:")
    if not review.decisions:
        lines.append("  none yet")
    for decision in review.decisions:
        roles = f" ({', '.join(decision.roles)})" if decision.roles else ""
        note = f": {decision.comment}" if decision.comment else ""
        edited = " [edited the payload]" if decision.edited else ""
        lines.append(
            f"  {_when(decision.at)} {decision.verdict} by {decision.reviewer}{roles}{edited}{note}"
        )
    lines.append(f"execution   {review.execution.value}")
    if review.claimed_by:
        lines.append(f"claimed by  {review.claimed_by} (lease until {_when(review.lease_until)})")
    if review.executed_at is not None:
        lines.append(f"executed    {_when(review.executed_at)}")
    if review.error is not None:
        lines.append(f"error       {review.error}")
    if review.result is not None:
        lines.append(f"result      {json.dumps(review.result, default=str)}")
    return "\n".join(lines)


@reviews.command("show")
@click.argument("review_id", metavar="ID")
@_format_option
@_store_option
def show_review(review_id: str, output_format: str, store_url: str | None) -> None:
    """Show one review: its payload (and what reviewers changed), decisions, execution."""
    with _governance(store_url) as governance:
        review = governance.review(review_id)
    if output_format == "json":
        click.echo(_dump({**_review_json(review), "diff": review.diff()}))
    else:
        click.echo(_show_text(review))


def _read_edit(value: str) -> Any:
    """The payload an --edit gives: JSON, or @FILE holding JSON (@- for stdin)."""
    if value.startswith("@"):
        name = value[1:]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except OSError as error:
            raise _Fail(f"cannot read the --edit file {name}: {error.strerror or error}") from None
        where = "stdin" if name == "-" else name
    else:
        text, where = value, "the --edit value"
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _Fail(
            f"{where} is not JSON ({error}); give the whole new payload as JSON or @FILE"
        ) from None


def _expected_sha(governance: Governance, review_id: str, given: str | None) -> str | None:
    """The full hash the reviewer vouches for; a prefix of 12 or more hex digits will do."""
    if given is None:
        return None
    given = given.strip().lower()
    if len(given) < 12:
        raise _Fail(
            "--expect-sha needs the payload's SHA-256 (at least its first 12 hex digits), "
            "as `ada-governance reviews show` prints it"
        )
    current = governance.review(review_id).payload_sha256
    return current if len(given) < len(current) and current.startswith(given) else given


@reviews.command("approve")
@click.argument("review_id", metavar="ID")
@click.option(
    "--edit",
    metavar="JSON_OR_@FILE",
    default=None,
    help="Approve this payload instead: the whole new payload as JSON, or @FILE (@- for stdin).",
)
@click.option("--comment", metavar="TEXT", default=None, help="Why, or what you changed.")
@click.option(
    "--expect-sha",
    metavar="SHA",
    default=None,
    help="The payload hash you looked at; refused if the payload has changed since.",
)
@_identity_options
@_store_option
def approve_review(
    review_id: str,
    edit: str | None,
    comment: str | None,
    expect_sha: str | None,
    reviewer: str | None,
    roles: tuple[str, ...],
    store_url: str | None,
) -> None:
    """Approve a review (optionally editing its payload). Its action then runs here if
    this process has its code, else a worker runs it."""
    with _governance(store_url) as governance:
        who, held = _identity(reviewer, roles)
        edits = _read_edit(edit) if edit is not None else None
        expected = _expected_sha(governance, review_id, expect_sha)
        review = governance.approve(
            review_id, who, roles=held, edits=edits, comment=comment, expected_sha256=expected
        )
    click.echo(_summary(review))


@reviews.command("reject")
@click.argument("review_id", metavar="ID")
@click.option("--reason", metavar="TEXT", required=True, help="Why, so the requester can act.")
@_identity_options
@_store_option
def reject_review(
    review_id: str,
    reason: str,
    reviewer: str | None,
    roles: tuple[str, ...],
    store_url: str | None,
) -> None:
    """Reject a review with a reason; its action never runs."""
    with _governance(store_url) as governance:
        who, held = _identity(reviewer, roles)
        review = governance.reject(review_id, who, reason=reason, roles=held)
    click.echo(_summary(review))


@reviews.command("judge")
@click.argument("review_id", metavar="ID")
@click.option(
    "--correct/--incorrect",
    "correct",
    default=None,
    help="Whether the autonomous action was right (one of them is required).",
)
@click.option("--comment", metavar="TEXT", default=None, help="Why.")
@_identity_options
@_store_option
def judge_review(
    review_id: str,
    correct: bool | None,
    comment: str | None,
    reviewer: str | None,
    roles: tuple[str, ...],
    store_url: str | None,
) -> None:
    """Judge an autonomous action sampled for review after the fact."""
    if correct is None:
        raise click.UsageError("say whether the action was right: --correct or --incorrect")
    with _governance(store_url) as governance:
        who, held = _identity(reviewer, roles)
        review = governance.judge(review_id, who, correct=correct, comment=comment, roles=held)
    verdict = "correct" if correct else "incorrect"
    click.echo(f"review {review.id} ({review.action} of {review.workflow}): judged {verdict}")


# --- the worker -------------------------------------------------------------------------------


def _import_modules(modules: Sequence[str]) -> None:
    """Import the modules whose `governed_action` registrations the worker runs."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:
            raise _Fail(
                f"cannot import {name}: {type(error).__name__}: {error}; give a module "
                "importable from the current directory (or on PYTHONPATH)"
            ) from None


def _worker_line(review: Review) -> str:
    what = f"review {review.id} ({review.action} of {review.workflow})"
    execution = review.execution
    if execution is ExecutionStatus.SUCCEEDED:
        return f"ran {what}: succeeded"
    if execution is ExecutionStatus.FAILED:
        return " ".join(f"ran {what}: failed: {review.error}".split())
    if execution is ExecutionStatus.UNKNOWN:
        return (
            f"settled {what}: unknown; its claim by {review.claimed_by} lapsed, find out "
            "whether it ran"
        )
    if review.status is ReviewStatus.PENDING:
        return f"escalated {what} to {', '.join(review.roles)}"
    if review.status is ReviewStatus.EXPIRED:
        return f"expired {what} (on timeout: {review.on_timeout})"
    return f"settled {what}: {review.outcome}, {execution.value}"


@main.command()
@click.option(
    "--import",
    "modules",
    multiple=True,
    metavar="MODULE",
    help="A module whose governed_action functions this worker runs (repeat for several).",
)
@click.option("--once", is_flag=True, help="Do one round, then exit.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.0, min_open=True),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Seconds between rounds.",
)
@click.option(
    "--lease",
    type=click.FloatRange(min=0.0, min_open=True),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="How long a claimed action may run before another worker settles it.",
)
@_store_option
def worker(
    modules: tuple[str, ...],
    once: bool,
    interval: float,
    lease: float,
    store_url: str | None,
) -> None:
    """Run approved actions and apply review deadlines, until stopped.

    Each round expires or escalates overdue reviews, then claims and runs (exactly once)
    every approved action whose code the imported modules register, printing a line
    for each. Stops after one round with --once, or on SIGTERM or Ctrl-C.
    """
    stop = threading.Event()
    previous: Any = None
    with _governance(store_url) as governance:
        _import_modules(modules)
        if not once:
            previous = _on_sigterm(stop)
        click.echo(
            f"worker {worker_name()} on {governance.store.url}"
            + (f", running actions of {', '.join(modules)}" if modules else ", no --import"),
            err=True,
        )
        try:
            while True:
                try:
                    _round(governance, dt.timedelta(seconds=lease))
                except StoreError as error:
                    if once:
                        raise
                    click.echo(f"error: {_fail_message(error)}; trying again", err=True)
                if once or stop.wait(interval):
                    break
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    if not once:
        click.echo("worker stopped", err=True)


def _round(governance: Governance, lease: dt.timedelta) -> None:
    for review in governance.expire_overdue():
        click.echo(_worker_line(review))
    for review in governance.run_actions(lease=lease):
        click.echo(_worker_line(review))


def _on_sigterm(stop: threading.Event) -> Any:
    """Make SIGTERM end the loop after the current round; return the old handler."""

    def handle(signum: int, frame: Any) -> None:
        stop.set()

    try:
        return signal.signal(signal.SIGTERM, handle)
    except ValueError:  # not the main thread: only Ctrl-C or --once stop it
        return None


# --- the store -------------------------------------------------------------------------------


@main.group()
def store() -> None:
    """Manage the governance store."""


@store.command("migrate")
@_store_option
def migrate_store(store_url: str | None) -> None:
    """Create the store's schema, or bring it to this version's, and say which it is.

    Stores also migrate on first use (PostgreSQL under a lock, so hosts starting together
    migrate once); run this before rolling out a new version to many hosts to do it at a
    time of your choosing. Exits 1 when the store cannot be reached, or when its schema
    was written by a newer ada-governance (upgrade this one).
    """
    url = store_url or default_store_url()
    try:
        opened = open_store(url)
    except (ValueError, StoreError) as error:
        click.echo(f"error: {_fail_message(error)}", err=True)
        sys.exit(1)
    try:
        found, now = _migrate(opened)
    except StoreError as error:
        click.echo(f"error: {_fail_message(error)}", err=True)
        sys.exit(1)
    finally:
        with contextlib.suppress(Exception):  # closing must not hide what happened
            opened.close()
    if now is None:
        click.echo(f"{opened.url} keeps nothing between processes: no schema to migrate")
    elif found == now:
        click.echo(f"{opened.url}: schema version {now}, up to date")
    elif found == 0:
        click.echo(f"{opened.url}: created schema version {now}")
    else:
        click.echo(f"{opened.url}: migrated schema version {found} to {now}")


def _migrate(opened: Store) -> tuple[int, int | None]:
    """Migrate ``opened``; return the schema version found and the version now (``None``
    for a store without a schema)."""
    migrate = getattr(opened, "migrate", None)
    if callable(migrate):
        found, now = migrate()
        return int(found), int(now)
    if isinstance(opened, SQLiteStore):
        from .storage.sqlite import SCHEMA_VERSION

        found = _sqlite_schema_version(opened.path)
        opened.list_runs(limit=0)  # the first call creates or migrates the schema
        return found, SCHEMA_VERSION
    return 0, None


def _sqlite_schema_version(path: Path) -> int:
    """The schema version of a SQLite file as it is now (0 if none), read-only."""
    if not path.exists():
        return 0
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return 0
    try:
        row = connection.execute("SELECT max(version) FROM ada_schema").fetchone()
    except sqlite3.Error:
        return 0
    finally:
        connection.close()
    return int(row[0] or 0) if row else 0


def _register_commands() -> None:
    # The lifecycle and measurement commands live beside the modules they drive.
    from ._cli_lifecycle import register as register_lifecycle
    from ._cli_report import register as register_report

    register_lifecycle(main)
    register_report(main)


_register_commands()
