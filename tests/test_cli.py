"""The `ada-governance` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ada_governance.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

READY = """\
name: ready
owner: {name: Dana}
trigger: {event: form_fill}
system_of_record: CRM
review: {reviewers: [sdr]}
metrics:
  - {name: t, unit: s, direction: decrease,
     baseline: {value: 1, sample_size: 1, measured_at: 2026-01-01}}
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_examples_print_a_row_per_workflow_and_pass(runner: CliRunner) -> None:
    """`check examples/` prints the table with both verdicts and exits 0."""
    result = runner.invoke(main, ["check", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["workflow", "version"]
    assert lines[0].split()[-1] == "verdict"
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    assert rows["speed_to_lead"][-1] == "deployment"
    assert rows["informal_followups"][-1] == "adoption"
    assert "adoption mode; name its trigger" in result.stdout


def test_require_deployment_fails_on_adoption(runner: CliRunner) -> None:
    """With --require deployment, an adoption-mode workflow makes the command exit 1."""
    result = runner.invoke(main, ["check", str(EXAMPLES), "--require", "deployment"])
    assert result.exit_code == 1
    assert "not ready for deployment: informal_followups 1" in result.stderr


def test_require_deployment_passes_when_all_ready(runner: CliRunner, tmp_path: Path) -> None:
    """With --require deployment and only ready workflows, the command exits 0."""
    (tmp_path / "ready.yaml").write_text(READY)
    result = runner.invoke(main, ["check", str(tmp_path), "--require", "deployment"])
    assert result.exit_code == 0, result.output


def test_invalid_declaration_exits_1_with_errors_on_stderr(
    runner: CliRunner, tmp_path: Path
) -> None:
    """An invalid file makes the command exit 1; its problems go to stderr with file and line."""
    (tmp_path / "ready.yaml").write_text(READY)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nreview:\n  reviewers: [sdr]\n  timeout: 0\n")
    result = runner.invoke(main, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{bad}:4: review.timeout: must be positive" in result.stderr
    assert "bad" not in result.stdout.split()
    assert "ready" in result.stdout


def test_json_format(runner: CliRunner, tmp_path: Path) -> None:
    """--format json prints each workflow's elements and verdict, and the errors."""
    (tmp_path / "ready.yaml").write_text(READY)
    (tmp_path / "bad.yaml").write_text("name: 1bad\n")
    result = runner.invoke(main, ["check", str(tmp_path), "--format", "json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    (workflow,) = payload["workflows"]
    assert workflow["workflow"] == "ready"
    assert workflow["verdict"] == "deployment"
    assert workflow["elements"]["stop_rule"] is False
    assert workflow["path"] == str(tmp_path / "ready.yaml")
    (error,) = payload["errors"]
    assert error["path"] == "name"
    assert error["line"] == 1


def test_duplicates_exit_1(runner: CliRunner, tmp_path: Path) -> None:
    """Two declarations of one name and version make the command exit 1."""
    (tmp_path / "a.yaml").write_text("name: same\n")
    (tmp_path / "b.yaml").write_text("name: same\n")
    result = runner.invoke(main, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert "declared twice" in result.stderr


def test_nothing_found_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    """A folder with no declarations is an error, not a silent pass."""
    result = runner.invoke(main, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert "no workflow declarations found" in result.stderr


def test_python_declaration_checked_when_named(runner: CliRunner) -> None:
    """The example's Python declaration file is checked when named directly."""
    result = runner.invoke(main, ["check", str(EXAMPLES / "speed_to_lead" / "workflow.py")])
    assert result.exit_code == 0, result.output
    assert "speed_to_lead" in result.stdout
    assert "deployment" in result.stdout


def test_installed_entry_point_runs() -> None:
    """The `ada-governance` console script is installed and answers --version."""
    result = subprocess.run(
        [sys.executable, "-m", "ada_governance", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ada-governance" in result.stdout
