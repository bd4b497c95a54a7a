"""The ``ada-governance`` command."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from ._version import __version__
from .exceptions import DeclarationError
from .readiness import Element, Readiness, readiness
from .registry import WorkflowRegistry, scan

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
    """Govern AI workflows: check declarations, and (soon) run, review and report on them."""


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
