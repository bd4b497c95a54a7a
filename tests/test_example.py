"""The speed-to-lead example."""

from __future__ import annotations

import json
import os
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


def test_main_example_runs(tmp_path: Path) -> None:
    """The README's main example runs from another folder and prints the ledger it wrote."""
    store = tmp_path / "example.db"
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "main.py")],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        env={
            **os.environ,
            "ADA_GOVERNANCE_STORE": f"sqlite:///{store}",
            "SPEED_TO_LEAD_OUTBOX": str(tmp_path / "outbox.jsonl"),
        },
    )
    assert result.returncode == 0, result.stderr
    assert "Python and YAML declarations are equal: True" in result.stdout
    assert "informal_followups 1: adoption" in result.stdout
    assert "speed_to_lead 1: deployment" in result.stdout
    assert "L-1043: failed with ValidationError; routed to the SDR lead" in result.stdout
    assert "L-1044: refused by the consent check" in result.stdout
    assert "[exception path] speed_to_lead run" in result.stdout

    from ada_governance import RunStatus, SQLiteStore

    rows = SQLiteStore(store).list_runs("speed_to_lead")
    assert [row.status for row in rows] == [
        RunStatus.PENDING_REVIEW,
        RunStatus.PENDING_REVIEW,
        RunStatus.FAILED,
        RunStatus.REFUSED,
        RunStatus.PENDING_REVIEW,
    ]
    assert [row.trigger_id for row in rows] == [
        "form-1041",
        "call-7731",
        "form-1043",
        "form-1044",
        "call-7732",
    ]
    assert [row.attempts for row in rows] == [1, 2, 1, 1, 1]  # L-1042's first draft retried
    assert [row.model_calls for row in rows] == [1, 2, 1, 0, 1]
    assert rows[3].refusal_reason == "check"
    for row in (rows[0], rows[1], rows[2], rows[4]):
        assert {read.source for read in row.reads} == {"crm.lead", "calendar.availability"}

    # The SDR approved one email, edited one and rejected one; the retried attempt's
    # request was withdrawn. Each approved email was sent exactly once.
    reviews = SQLiteStore(store).list_reviews("speed_to_lead")
    assert sorted(review.outcome for review in reviews) == [
        "approved unchanged",
        "approved with edits",
        "rejected",
        "withdrawn",
    ]
    outbox = [json.loads(line) for line in (tmp_path / "outbox.jsonl").read_text().splitlines()]
    assert [email["lead_id"] for email in outbox] == ["L-1041", "L-1042"]
    assert outbox[1]["subject"] == "Your demo: two times that work"
    assert "Review queue before the SDR:" in result.stdout
    assert "Review queue after the SDR:" in result.stdout

    # The pilot: a measured baseline, a budget trip that pauses the workflow, the owner's
    # resume, the report against the baseline, the recommendation and the decision.
    assert "8 leads handled by hand, measured as the baseline" in result.stdout
    assert "StopRuleTripped: workflow 'speed_to_lead' refused the run and paused: budget" in (
        result.stdout
    )
    assert "day 2: the owner resumes it" in result.stdout
    assert "Report: 21 AI runs finished; baseline of 8 runs measured" in result.stdout
    assert "response_time: 220 s vs baseline 14400 (declared), -98%; target 300: met" in (
        result.stdout
    )
    assert "Recommendation: pause" in result.stdout
    assert "Owner's decision: revise" in result.stdout
    for row in rows:
        assert f"{row.run_id[-8:]:10} {row.trigger_type:12} {row.status.value:10}" in result.stdout
