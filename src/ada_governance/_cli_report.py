"""The ``ada-governance report`` and ``ada-governance evaluate`` commands."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from .evaluation import Evaluation, evaluate
from .exceptions import DeclarationError, UsageError
from .governance import Governance
from .registry import load_workflows
from .report import MetricResult, Report, report
from .storage import StoreError, default_store_url
from .workflow import Workflow

__all__ = ["register"]

_F = TypeVar("_F", bound=Callable[..., Any])


class _Fail(Exception):
    """A one-line message for stderr, then exit 1."""


def _options(fn: _F) -> _F:
    """The options ``report`` and ``evaluate`` share."""
    for option in reversed(
        (
            click.argument("name"),
            click.option(
                "--workflows",
                "workflows_path",
                required=True,
                type=click.Path(path_type=Path),
                metavar="PATH",
                help="The declaration file or folder the workflow is declared in.",
            ),
            click.option(
                "--version",
                "version",
                default=None,
                metavar="VERSION",
                help="Which declared version's metrics to measure, when several are declared.",
            ),
            click.option(
                "--since",
                default=None,
                metavar="ISO",
                help="Start of the period (ISO 8601; UTC when no offset is given).",
            ),
            click.option(
                "--until",
                default=None,
                metavar="ISO",
                help="End of the period, excluded (ISO 8601; UTC when no offset is given).",
            ),
            click.option(
                "--format",
                "output_format",
                type=click.Choice(["table", "json"]),
                default="table",
                show_default=True,
                help="How to print.",
            ),
            click.option(
                "--store",
                "store_url",
                metavar="URL",
                default=None,
                help="The governance store URL (sqlite:////path/governance.db). "
                "Default: $ADA_GOVERNANCE_STORE, else the default store.",
            ),
        )
    ):
        fn = option(fn)
    return fn


def _time(name: str, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _Fail(
            f"--{name} {value!r} is not an ISO 8601 time; write it like 2026-01-31 or "
            "2026-01-31T09:00:00+00:00"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.timezone.utc)


def _workflow(path: Path, name: str, version: str | None) -> Workflow:
    registry = load_workflows(path)
    versions = registry.versions(name)
    if version is not None:
        versions = tuple(w for w in versions if w.version == version)
    if len(versions) == 1:
        return versions[0]
    if not versions:
        known = ", ".join(sorted({n for n, _ in registry})) or "none"
        what = f"{name!r} version {version!r}" if version is not None else repr(name)
        raise _Fail(f"no workflow {what} is declared in {path} (declared: {known})")
    listed = ", ".join(w.version for w in versions)
    raise _Fail(f"{name!r} is declared in several versions ({listed}); choose one with --version")


@contextlib.contextmanager
def _failing_cleanly() -> Iterator[None]:
    try:
        yield
    except (_Fail, DeclarationError, UsageError, StoreError) as error:
        text = " ".join(str(error).split())
        if isinstance(error, StoreError):
            text = f"the store failed: {text}; check --store (or $ADA_GOVERNANCE_STORE)"
        click.echo(f"error: {text}", err=True)
        sys.exit(1)


@contextlib.contextmanager
def _governance(store_url: str | None) -> Iterator[Governance]:
    url = store_url or default_store_url()
    try:
        governance = Governance(url)
    except ValueError as error:  # a malformed or unknown store URL
        raise _Fail(f"{error}; check --store (or $ADA_GOVERNANCE_STORE)") from None
    try:
        yield governance
    finally:
        with contextlib.suppress(Exception):  # closing must not hide what happened
            governance.close()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def _period(since: dt.datetime | None, until: dt.datetime | None) -> str:
    start = since.isoformat() if since is not None else "the first record"
    end = until.isoformat() if until is not None else "the last record"
    return f"from {start} to {end}"


def _figure_rows(data: dict[str, Any], prefix: str = "") -> list[list[str]]:
    rows: list[list[str]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows.extend(_figure_rows(value, f"{prefix}{key}."))
        elif isinstance(value, list):
            rows.append([f"{prefix}{key}", ", ".join(map(str, value)) or "-"])
        else:
            rows.append([f"{prefix}{key}", _cell(value)])
    return rows


def _metric_rows(results: tuple[MetricResult, ...]) -> list[list[str]]:
    rows = [
        [
            "metric",
            "figure",
            "value",
            "baseline",
            "source",
            "change %",
            "target",
            "improved",
            "target met",
            "failing",
        ]
    ]
    for m in results:
        change = f"{m.change_pct:+.1f}" if m.change_pct is not None else "-"
        rows.append(
            [
                m.name,
                m.figure,
                _cell(m.value),
                _cell(m.baseline),
                _cell(m.baseline_source),
                change,
                _cell(m.target),
                _cell(m.improved),
                _cell(m.met_target),
                _cell(m.failing),
            ]
        )
    return rows


def _report_text(result: Report) -> str:
    lines = [f"{result.workflow} {result.version}: {_period(result.since, result.until)}", ""]
    figures = result.figures.to_dict()
    adoption = figures.pop("adoption")
    note = adoption.pop("note")
    lines += _table([["deployment figure", "value"], *_figure_rows(figures)])
    lines += ["", *_table([["adoption indicator (usage)", "value"], *_figure_rows(adoption)])]
    lines.append(f"note: {note}")
    if result.metrics:
        lines += ["", *_table(_metric_rows(result.metrics))]
    if result.not_measured:
        lines += ["", "not measured (no figure declared): " + ", ".join(result.not_measured)]
    base = result.baseline
    if base.sample_size:
        lines += [
            "",
            f"measured baseline: {base.sample_size} runs received "
            f"{_period(base.first_received_at, base.last_received_at)}",
        ]
    else:
        lines += ["", "measured baseline: no runs recorded in baseline mode"]
    return "\n".join(lines)


def _evaluation_text(result: Evaluation) -> str:
    lines = [
        f"{result.workflow} {result.report.version}: {result.recommendation.value} "
        f"({_period(result.report.since, result.report.until)})",
    ]
    lines += [f"- {r.message} [{', '.join(r.figures)}]" for r in result.reasons]
    if result.report.metrics:
        lines += ["", *_table(_metric_rows(result.report.metrics))]
    if result.not_measured:
        lines += ["", "not measured (no figure declared): " + ", ".join(result.not_measured)]
    return "\n".join(lines)


def register(main: click.Group) -> None:
    """Add the ``report`` and ``evaluate`` commands to the ``ada-governance`` group."""

    @main.command("report")
    @_options
    def report_command(
        name: str,
        workflows_path: Path,
        version: str | None,
        since: str | None,
        until: str | None,
        output_format: str,
        store_url: str | None,
    ) -> None:
        """Print a workflow's figures for a period and its metrics against their baselines.

        NAME is the workflow's name, declared under --workflows PATH.
        """
        with _failing_cleanly():
            workflow = _workflow(workflows_path, name, version)
            start, end = _time("since", since), _time("until", until)
            with _governance(store_url) as governance:
                result = report(governance, workflow, start, end)
            if output_format == "json":
                click.echo(json.dumps(result.to_dict(), indent=2))
            else:
                click.echo(_report_text(result))

    @main.command("evaluate")
    @_options
    def evaluate_command(
        name: str,
        workflows_path: Path,
        version: str | None,
        since: str | None,
        until: str | None,
        output_format: str,
        store_url: str | None,
    ) -> None:
        """Recommend whether to scale, revise, pause or stop a workflow, with the reasons.

        NAME is the workflow's name, declared under --workflows PATH.
        """
        with _failing_cleanly():
            workflow = _workflow(workflows_path, name, version)
            start, end = _time("since", since), _time("until", until)
            with _governance(store_url) as governance:
                result = evaluate(governance, workflow, start, end)
            if output_format == "json":
                click.echo(json.dumps(result.to_dict(), indent=2))
            else:
                click.echo(_evaluation_text(result))
