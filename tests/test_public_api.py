"""The public API: what `ada_governance` exports."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import ada_governance


def test_all_is_sorted_and_unique() -> None:
    """`__all__` is sorted and lists each name once."""
    assert list(ada_governance.__all__) == sorted(set(ada_governance.__all__))


def test_all_matches_what_the_package_imports() -> None:
    """Every name imported into `__init__` is in `__all__`, and every name in it exists."""
    tree = ast.parse(Path(inspect.getfile(ada_governance)).read_text())
    imported = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == set(ada_governance.__all__)
    for name in ada_governance.__all__:
        assert hasattr(ada_governance, name), name


def test_package_ships_py_typed() -> None:
    """The package marks itself as typed for type checkers."""
    assert (Path(inspect.getfile(ada_governance)).parent / "py.typed").exists()
