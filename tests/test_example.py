"""The speed-to-lead example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "speed_to_lead"


def test_python_and_yaml_declarations_are_equal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example declares the same workflow in Python and in YAML."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from workflow import SPEED_TO_LEAD  # type: ignore[import-not-found]

    from ada_governance import Workflow, readiness

    assert Workflow.from_file(EXAMPLE / "speed_to_lead.yaml") == SPEED_TO_LEAD
    assert readiness(SPEED_TO_LEAD).deployed


def test_main_example_runs() -> None:
    """The README's main example runs to completion from another folder."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "main.py")],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    assert "Python and YAML declarations are equal: True" in result.stdout
    assert "informal_followups 1: adoption" in result.stdout
    assert "speed_to_lead 1: deployment" in result.stdout
