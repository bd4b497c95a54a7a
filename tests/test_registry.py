"""Loading folders of declarations."""

from __future__ import annotations

from pathlib import Path

import pytest

from ada_governance import DeclarationError, Workflow, WorkflowRegistry, load_workflows


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_loads_yaml_yml_and_json_recursively(tmp_path: Path) -> None:
    """Every declaration file under a folder, at any depth, is loaded."""
    write(tmp_path / "a.yaml", "name: a\n")
    write(tmp_path / "nested" / "b.yml", "name: b\n")
    write(tmp_path / "nested" / "deeper" / "c.json", '{"name": "c", "version": "2"}')
    write(tmp_path / "notes.txt", "not a declaration")
    registry = load_workflows(tmp_path)
    assert set(registry) == {("a", "1"), ("b", "1"), ("c", "2")}
    assert registry["c", "2"].name == "c"
    assert registry.path_of(registry["b", "1"]) == tmp_path / "nested" / "b.yml"


def test_hidden_folders_are_skipped(tmp_path: Path) -> None:
    """Declarations under hidden folders such as .git are not loaded."""
    write(tmp_path / ".hidden" / "x.yaml", "name: x\n")
    write(tmp_path / "y.yaml", "name: y\n")
    assert set(load_workflows(tmp_path)) == {("y", "1")}


def test_duplicate_name_and_version_names_both_files(tmp_path: Path) -> None:
    """Two declarations with one name and version are an error naming both files."""
    first = write(tmp_path / "one.yaml", "name: same\nversion: '3'\n")
    second = write(tmp_path / "two.json", '{"name": "same", "version": "3"}')
    with pytest.raises(DeclarationError) as caught:
        load_workflows(tmp_path)
    message = str(caught.value)
    assert str(first) in message
    assert str(second) in message
    assert "declared twice" in message


def test_same_name_different_versions_coexist(tmp_path: Path) -> None:
    """Versions of one workflow are separate declarations."""
    write(tmp_path / "v1.yaml", "name: w\nversion: 1\n")
    write(tmp_path / "v2.yaml", "name: w\nversion: 2\n")
    registry = load_workflows(tmp_path)
    assert {w.version for w in registry.versions("w")} == {"1", "2"}


def test_every_invalid_file_is_reported_at_once(tmp_path: Path) -> None:
    """Problems in several files come in one error, each naming its file."""
    write(tmp_path / "bad1.yaml", "name: a\nreview: {reviewers: []}\n")
    write(tmp_path / "bad2.yaml", "name: b\nstage: nowhere\n")
    write(tmp_path / "good.yaml", "name: c\n")
    with pytest.raises(DeclarationError) as caught:
        load_workflows(tmp_path)
    sources = {problem.source for problem in caught.value.problems}
    assert sources == {str(tmp_path / "bad1.yaml"), str(tmp_path / "bad2.yaml")}


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    """A path that does not exist is reported, not silently ignored."""
    with pytest.raises(DeclarationError, match="no such file"):
        load_workflows(tmp_path / "absent")


def test_python_file_named_directly_is_run_for_its_workflows(tmp_path: Path) -> None:
    """A .py file given by name contributes the Workflow objects it defines."""
    write(tmp_path / "helper_mod_for_registry.py", "EVENTS = ['form_fill']\n")
    write(
        tmp_path / "decl.py",
        "from helper_mod_for_registry import EVENTS\n"
        "from ada_governance import Workflow\n"
        "W = Workflow(name='from_python', trigger={'events': EVENTS})\n"
        "ALIAS = W\n",
    )
    registry = load_workflows(tmp_path / "decl.py")
    assert list(registry) == [("from_python", "1")]
    assert registry["from_python", "1"].trigger is not None


def test_python_files_in_folders_are_not_run(tmp_path: Path) -> None:
    """Scanning a folder never executes the Python files in it."""
    write(tmp_path / "boom.py", "raise SystemExit('must not run')\n")
    write(tmp_path / "a.yaml", "name: a\n")
    assert set(load_workflows(tmp_path)) == {("a", "1")}


def test_python_file_without_workflows_is_an_error(tmp_path: Path) -> None:
    """A .py file that defines no Workflow is reported."""
    write(tmp_path / "empty.py", "X = 1\n")
    with pytest.raises(DeclarationError, match="defines no Workflow"):
        load_workflows(tmp_path / "empty.py")


def test_python_file_that_fails_is_reported(tmp_path: Path) -> None:
    """A .py declaration file that raises is reported with the error."""
    write(tmp_path / "bad.py", "raise RuntimeError('broken import')\n")
    with pytest.raises(DeclarationError, match="broken import"):
        load_workflows(tmp_path / "bad.py")


def test_registry_rejects_duplicates_from_python() -> None:
    """The registry refuses two equal keys even without files."""
    with pytest.raises(DeclarationError, match="Python code"):
        WorkflowRegistry([(Workflow(name="x"), None), (Workflow(name="x"), None)])
