"""`ada-governance pause|resume|retire|stage set|decide|history`, against a SQLite store.

The commands are registered on a fresh click group, as `ada_governance.cli` registers them
on ``main``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from ada_governance import Governance, Workflow, WorkflowPaused, governed_workflow
from ada_governance._cli_lifecycle import register
from ada_governance.lifecycle import decisions, history

Invoke = Callable[..., Result]
"""Runs a registered command on the test store: ``cli("pause", "lead", ...)``."""

READY_YAML = """\
name: lead
version: "{version}"
owner: {{name: Dana}}
trigger: {{event: form_fill}}
system_of_record: CRM
review: {{reviewers: [sdr]}}
metrics:
  - name: response_time
    unit: s
    direction: decrease
    baseline: {{value: 600, sample_size: 40, measured_at: 2026-01-01}}
stop_rules:
  - kind: kill_switch
"""

UNREADY_YAML = """\
name: lead
version: "{version}"
trigger: {{event: form_fill}}
"""


@pytest.fixture
def group() -> click.Group:
    group = click.Group()
    register(group)
    return group


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'governance.db'}"


@pytest.fixture
def governance(store_url: str) -> Iterator[Governance]:
    governance = Governance(store_url, development=True)
    yield governance
    governance.close()


@pytest.fixture
def declared(tmp_path: Path) -> Path:
    """A folder declaring lead version 9 (adoption mode) and version 10 (ready)."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "lead_v9.yaml").write_text(UNREADY_YAML.format(version="9"), encoding="utf-8")
    (folder / "lead_v10.yaml").write_text(READY_YAML.format(version="10"), encoding="utf-8")
    return folder


@pytest.fixture
def cli(group: click.Group, store_url: str) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(group, [*args, "--store", store_url])

    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.stderr)
    return result.stdout


def said(result: Result) -> str:
    """The command's own last line (structlog's default setup prints audit events first)."""
    return ok(result).strip().splitlines()[-1]


def failed_with(result: Result, *fragments: str) -> None:
    """The command exited 1 with one line on stderr naming each fragment."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_the_whole_path_from_draft_to_retired(
    cli: Invoke, declared: Path, governance: Governance
) -> None:
    """stage set, decide, pause, resume, retire, each printing the new stage, then history."""
    run = cli
    who = ("--actor", "dana", "--reason")
    out = said(
        run(
            "stage", "set", "lead", "pilot", *who, "pilot on SDR team", "--workflows", str(declared)
        )
    )
    assert out.startswith("lead is now pilot (dana, ")
    assert out.rstrip().endswith(": pilot on SDR team)")
    out = said(
        run(
            "decide",
            "lead",
            "scale",
            "--actor",
            "vp",
            "--reason",
            "meets baseline",
            "--figure",
            "response_time_p50=48",
            "--figure",
            "note=good week",
        )
    )
    assert out.startswith("recorded scale for lead (vp, ")
    [decision] = decisions(governance, "lead")
    assert decision.figures == {"response_time_p50": 48, "note": "good week"}
    ok(run("stage", "set", "lead", "production", *who, "scaling", "--workflows", str(declared)))
    assert "lead is now paused" in ok(run("pause", "lead", "--actor", "ops", "--reason", "outage"))
    assert "lead is now production" in ok(
        run("resume", "lead", "--actor", "ops", "--reason", "back")
    )
    assert "lead is now retired" in ok(run("retire", "lead", *who, "replaced"))

    table = ok(run("history", "lead")).splitlines()
    assert table[0].split() == ["at", "from", "to", "actor", "reason"]
    assert [line.split()[1:4] for line in table[2:]] == [
        ["-", "pilot", "dana"],
        ["pilot", "production", "dana"],
        ["production", "paused", "ops"],
        ["paused", "production", "ops"],
        ["production", "retired", "dana"],
    ]
    assert table[2].endswith("pilot on SDR team")
    rows = json.loads(ok(run("history", "lead", "--format", "json")))
    assert rows == [change.to_dict() for change in history(governance, "lead")]
    assert rows[0]["from"] is None
    assert rows[1] == {**rows[1], "from": "pilot", "to": "production", "reason": "scaling"}


def test_stage_set_uses_the_latest_version(cli: Invoke, declared: Path) -> None:
    """Of versions 9 (adoption mode) and 10 (ready), stage set checks 10, the latest."""
    result = cli(
        "stage",
        "set",
        "lead",
        "pilot",
        "--actor",
        "d",
        "--reason",
        "r",
        "--workflows",
        str(declared),
    )
    assert said(result).startswith("lead is now pilot")


def test_stage_set_refuses_adoption_mode(cli: Invoke, tmp_path: Path) -> None:
    """A draft that is still adoption mode is not promoted; the error names what is missing."""
    path = tmp_path / "lead.yaml"
    path.write_text(UNREADY_YAML.format(version="1"), encoding="utf-8")
    result = cli(
        "stage", "set", "lead", "pilot", "--actor", "d", "--reason", "r", "--workflows", str(path)
    )
    failed_with(result, "cannot move from draft to pilot", "business owner", "system of record")


def test_stage_set_refuses_production_without_a_scale_decision(
    cli: Invoke, declared: Path, governance: Governance
) -> None:
    """pilot to production is refused until a scale decision is the latest one."""
    where = ("--workflows", str(declared))
    ok(cli("stage", "set", "lead", "pilot", "--actor", "d", "--reason", "r", *where))
    result = cli("stage", "set", "lead", "production", "--actor", "d", "--reason", "r", *where)
    failed_with(result, "no pilot decision to scale", "ada-governance decide lead scale")
    ok(cli("decide", "lead", "scale", "--actor", "vp", "--reason", "ok"))
    ok(cli("decide", "lead", "revise", "--actor", "vp", "--reason", "errors up"))
    result = cli("stage", "set", "lead", "production", "--actor", "d", "--reason", "r", *where)
    failed_with(result, "latest pilot decision is 'revise'")
    state = governance.state("lead")
    assert state is not None
    assert state.stage.value == "pilot"


def test_pause_refuses_calls_through_the_store(cli: Invoke, governance: Governance) -> None:
    """A pause from the command line refuses the next governed call sharing the store."""
    workflow = Workflow(name="lead")

    @governed_workflow(workflow, governance=governance)
    def work() -> str:
        return "ran"

    assert work() == "ran"
    ok(cli("pause", "lead", "--actor", "ops", "--reason", "bad sends"))
    with pytest.raises(WorkflowPaused, match="bad sends"):
        work()


def test_resume_without_history_needs_the_declaration(cli: Invoke, tmp_path: Path) -> None:
    """When the pause was the first change, resume needs --workflows for the declared stage."""
    path = tmp_path / "lead.yaml"
    path.write_text(
        READY_YAML.format(version="1").replace("name: lead", "name: lead\nstage: pilot")
    )
    ok(cli("pause", "lead", "--actor", "ops", "--reason", "outage"))
    failed_with(cli("resume", "lead", "--actor", "ops", "--reason", "back"), "--workflows")
    out = said(
        cli("resume", "lead", "--actor", "ops", "--reason", "back", "--workflows", str(path))
    )
    assert out.startswith("lead is now pilot")


def test_retired_is_final_on_the_command_line(cli: Invoke, declared: Path) -> None:
    """After retire, every command that would change the stage fails with one line."""
    ok(cli("retire", "lead", "--actor", "d", "--reason", "gone"))
    failed_with(cli("pause", "lead", "--actor", "d", "--reason", "r"), "retirement is final")
    failed_with(cli("retire", "lead", "--actor", "d", "--reason", "r"), "already in retired")
    failed_with(cli("resume", "lead", "--actor", "d", "--reason", "r"), "not paused")
    result = cli(
        "stage",
        "set",
        "lead",
        "pilot",
        "--actor",
        "d",
        "--reason",
        "r",
        "--workflows",
        str(declared),
    )
    failed_with(result, "retirement is final")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(("pause", "lead", "--reason", "r"), "--actor NAME", id="pause no actor"),
        pytest.param(("retire", "lead", "--actor", "d"), "--reason TEXT", id="retire no reason"),
        pytest.param(("resume", "lead", "--actor", " ", "--reason", "r"), "--actor", id="blank"),
        pytest.param(("decide", "lead", "scale", "--actor", "d"), "--reason", id="decide"),
        pytest.param(
            ("stage", "set", "lead", "pilot", "--actor", "d", "--reason", "r"),
            "--workflows PATH",
            id="stage set no workflows",
        ),
        pytest.param(
            ("decide", "lead", "scale", "--actor", "d", "--reason", "r", "--figure", "48"),
            "NAME=VALUE",
            id="figure without a name",
        ),
    ],
)
def test_missing_options_fail_with_one_line(
    cli: Invoke, args: tuple[str, ...], fragment: str, governance: Governance
) -> None:
    """A missing actor, reason, declaration or a malformed figure: one line, exit 1."""
    failed_with(cli(*args), fragment)
    assert governance.audit_events() == []


def test_unknown_stage_or_decision_fails_with_one_line(cli: Invoke, declared: Path) -> None:
    """A stage or a decision that does not exist is one line naming the choices, exit 1."""
    where = ("--workflows", str(declared))
    result = cli("stage", "set", "lead", "live", "--actor", "d", "--reason", "r", *where)
    failed_with(result, "'live' is not a stage", "draft, pilot, production, paused, retired")
    result = cli("decide", "lead", "ship", "--actor", "d", "--reason", "r")
    failed_with(result, "'ship' is not a pilot decision", "scale, revise, pause, stop")


def test_stage_set_reports_declaration_problems(cli: Invoke, tmp_path: Path) -> None:
    """An unknown workflow, or an invalid declaration file, fails with one line."""
    good = tmp_path / "other.yaml"
    good.write_text("name: other\n", encoding="utf-8")
    args = ("stage", "set", "lead", "pilot", "--actor", "d", "--reason", "r", "--workflows")
    failed_with(cli(*args, str(good)), "no workflow 'lead' is declared under")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: lead\nstage: pilot\n", encoding="utf-8")
    failed_with(cli(*args, str(bad)), "bad.yaml", "business owner")
    failed_with(cli(*args, str(tmp_path / "missing")), "no such file or folder")


def test_history_of_a_workflow_never_changed(cli: Invoke) -> None:
    """history says there is nothing, and --format json prints an empty list."""
    assert ok(cli("history", "lead")).strip() == "no stage changes recorded for lead"
    assert json.loads(ok(cli("history", "lead", "--format", "json"))) == []


def test_store_defaults_to_the_environment(group: click.Group, tmp_path: Path) -> None:
    """Without --store, the commands use $ADA_GOVERNANCE_STORE."""
    url = f"sqlite:///{tmp_path / 'from_env.db'}"
    result = CliRunner().invoke(
        group,
        ["pause", "lead", "--actor", "ops", "--reason", "outage"],
        env={"ADA_GOVERNANCE_STORE": url},
    )
    ok(result)
    governance = Governance(url)
    try:
        state = governance.state("lead")
        assert state is not None
        assert state.stage.value == "paused"
    finally:
        governance.close()


def test_a_bad_store_url_fails_with_one_line(group: click.Group) -> None:
    """An unsupported store URL is one line on stderr and exit 1."""
    result = CliRunner().invoke(
        group, ["history", "lead", "--store", "mysql://nowhere"], catch_exceptions=False
    )
    failed_with(result, "unsupported store URL", "--store")


def test_commands_show_in_help(group: click.Group) -> None:
    """register adds every lifecycle command to the group."""
    assert set(group.commands) == {"pause", "resume", "retire", "stage", "decide", "history"}
    stage = group.commands["stage"]
    assert isinstance(stage, click.Group)
    assert set(stage.commands) == {"set"}
