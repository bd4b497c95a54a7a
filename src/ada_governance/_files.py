"""Reading and writing declaration files: YAML and JSON, with line numbers for errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal

import yaml

from ._declaration import Loc
from .exceptions import DeclarationError, Problem

__all__ = ["FORMATS", "Format", "format_for", "imports_beside", "parse_text", "write_text"]

Format = Literal["yaml", "json"]
FORMATS: dict[str, Format] = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}

LineOf = Callable[[Loc], "int | None"]


def format_for(path: Path) -> Format:
    """Return the declaration format a file's suffix names.

    Raises:
        DeclarationError: The suffix is not ``.yaml``, ``.yml`` or ``.json``.
    """
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise DeclarationError(
            [Problem((), "declaration files end in .yaml, .yml or .json", str(path))]
        ) from None


def _yaml_line_finder(root: yaml.Node | None) -> LineOf:
    def line_of(loc: Loc) -> int | None:
        node = root
        line = node.start_mark.line + 1 if node is not None else None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if key_node.value == str(part):
                        line = key_node.start_mark.line + 1
                        node = value_node
                        break
                else:
                    return line  # a missing key: point at the mapping that lacks it
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if not 0 <= part < len(node.value):
                    return line
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line

    return line_of


def parse_text(text: str, fmt: Format, source: str | None) -> tuple[Any, LineOf | None]:
    """Parse declaration text, returning the data and a way to find a location's line.

    Args:
        text: The file's contents.
        fmt: ``yaml`` or ``json``.
        source: The file name, for error messages.

    Returns:
        The parsed data, and for YAML a function from a location to its 1-based line.

    Raises:
        DeclarationError: The text is not well-formed YAML or JSON.
    """
    if fmt == "json":
        try:
            return json.loads(text), None
        except json.JSONDecodeError as error:
            raise DeclarationError(
                [Problem((), f"not valid JSON: {error.msg}", source, error.lineno)]
            ) from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(error, "problem", None) or str(error)
        raise DeclarationError([Problem((), f"not valid YAML: {reason}", source, line)]) from None
    return data, _yaml_line_finder(root)


def write_text(data: Any, fmt: Format) -> str:
    """Write declaration data as YAML or JSON text."""
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    # Non-ASCII characters are escaped: PyYAML writes some (NEL, U+0085) raw where its own
    # reader folds them into line breaks, so raw Unicode would not load back equal.
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=False)


@contextmanager
def imports_beside(path: Path) -> Iterator[None]:
    """Let import paths in a declaration file name modules in the file's own folder.

    The folder is put first on ``sys.path`` while the file is loaded, as Python does for
    a script, and taken off again afterwards.
    """
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with suppress(ValueError):  # the loaded code removed it itself
            sys.path.remove(folder)
