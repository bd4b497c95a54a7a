"""Loading folders of workflow declarations into a registry."""

from __future__ import annotations

import runpy
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._files import FORMATS, imports_beside
from .exceptions import DeclarationError, Problem
from .workflow import Workflow

__all__ = ["WorkflowRegistry", "load_workflows"]


class WorkflowRegistry(Mapping[tuple[str, str], Workflow]):
    """Workflows by ``(name, version)``, each with the file it was declared in.

    ``registry["speed_to_lead", "1"]`` is that declaration; ``registry.versions(name)``
    lists every version of one workflow.
    """

    def __init__(self, workflows: Iterable[tuple[Workflow, Path | None]] = ()) -> None:
        """Build a registry.

        Args:
            workflows: Each workflow with the file it came from (``None`` for Python).

        Raises:
            DeclarationError: Two declarations share a name and a version; the error
                names both files.
        """
        self._workflows: dict[tuple[str, str], Workflow] = {}
        self._paths: dict[tuple[str, str], Path | None] = {}
        problems = []
        for workflow, path in workflows:
            if workflow.key in self._workflows:
                problems.append(_duplicate(workflow, self._paths[workflow.key], path))
                continue
            self._workflows[workflow.key] = workflow
            self._paths[workflow.key] = path
        if problems:
            raise DeclarationError(problems, summary="duplicate workflow declarations")

    def __getitem__(self, key: tuple[str, str]) -> Workflow:
        return self._workflows[key]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._workflows)

    def __len__(self) -> int:
        return len(self._workflows)

    def versions(self, name: str) -> tuple[Workflow, ...]:
        """Return every declared version of the workflow called ``name``."""
        return tuple(w for (n, _), w in self._workflows.items() if n == name)

    def path_of(self, workflow: Workflow) -> Path | None:
        """Return the file ``workflow`` was declared in, or ``None`` if not from a file."""
        return self._paths.get(workflow.key)


def _duplicate(workflow: Workflow, first: Path | None, second: Path | None) -> Problem:
    where = " and ".join(str(path) if path else "Python code" for path in (first, second))
    return Problem(
        ("name",),
        f"workflow {workflow.name!r} version {workflow.version!r} is declared twice: "
        f"{where}; give one a new version or remove it",
        str(second) if second else None,
    )


@dataclass
class _Scan:
    found: list[tuple[Workflow, Path]] = field(default_factory=list)
    errors: list[DeclarationError] = field(default_factory=list)


def _declaration_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(
            candidate
            for candidate in path.rglob("*")
            if candidate.is_file()
            and candidate.suffix.lower() in FORMATS
            and not any(part.startswith(".") for part in candidate.relative_to(path).parts)
        )
    return [path]


def _from_python(path: Path) -> list[Workflow]:
    try:
        with imports_beside(path):
            namespace = runpy.run_path(str(path))
    except Exception as error:  # the file is the user's code: report, don't crash
        raise DeclarationError(
            [Problem((), f"running the file failed: {type(error).__name__}: {error}", str(path))]
        ) from error
    found: dict[int, Workflow] = {}
    for value in namespace.values():
        if isinstance(value, Workflow):
            found.setdefault(id(value), value)
    if not found:
        raise DeclarationError(
            [Problem((), "the file defines no Workflow at module level", str(path))]
        )
    return list(found.values())


def scan(paths: Iterable[str | Path]) -> _Scan:
    """Load every declaration under ``paths``, keeping going past invalid ones.

    Folders are searched recursively for ``.yaml``, ``.yml`` and ``.json`` files (hidden
    folders are skipped). A ``.py`` file named directly is run, and the ``Workflow``
    objects it defines at module level are collected.
    """
    result = _Scan()
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            result.errors.append(
                DeclarationError([Problem((), "no such file or folder", str(root))])
            )
            continue
        for path in _declaration_files(root):
            try:
                if path.suffix.lower() == ".py":
                    result.found.extend((workflow, path) for workflow in _from_python(path))
                else:
                    result.found.append((Workflow.from_file(path), path))
            except DeclarationError as error:
                result.errors.append(error)
    return result


def load_workflows(*paths: str | Path) -> WorkflowRegistry:
    """Load files and folders of workflow declarations into a registry.

    Args:
        *paths: Declaration files (``.yaml``, ``.yml``, ``.json``, or ``.py`` run for
            the workflows it defines) and folders searched recursively for the first three.

    Returns:
        The registry of every workflow found.

    Raises:
        DeclarationError: Any file is invalid, or two declarations share a name and
            version; lists every problem in every file at once.
    """
    result = scan(paths)
    problems = [problem for error in result.errors for problem in error.problems]
    try:
        registry = WorkflowRegistry(result.found)
    except DeclarationError as error:
        problems.extend(error.problems)
    if problems:
        raise DeclarationError(problems, summary="invalid workflow declarations")
    return registry
