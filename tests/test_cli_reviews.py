"""`ada-governance reviews ...` and `ada-governance worker`, against a SQLite store."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pydantic import BaseModel

from ada_governance import (
    Governance,
    PendingAction,
    Workflow,
    current_run,
    governed_action,
    governed_workflow,
)
from ada_governance.cli import main
from ada_governance.testing import ManualClock


class Outreach(BaseModel):
    """The send action's payload."""

    to: str
    note: str = ""


WORKFLOW = Workflow(
    name="cli_outreach",
    actions=[{"name": "send", "risk": "requires_approval", "input_schema": Outreach}],
    review={"reviewers": ["sdr"]},
)
PAYLOAD = {"to": "ana@example.com", "note": "hello"}


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'governance.db'}"


@pytest.fixture
def governance(store_url: str) -> Iterator[Governance]:
    governance = Governance(store_url, development=True)
    yield governance
    governance.close()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def request(governance: Governance, workflow: Workflow = WORKFLOW, payload: Any = None) -> str:
    """Run the workflow once; it asks for its action (code not registered here)."""

    @governed_workflow(workflow, governance=governance)
    def follow_up() -> Any:
        return current_run().action("send", lambda data: None, payload or PAYLOAD)

    pending = follow_up()
    assert isinstance(pending, PendingAction)
    return pending.review_id


@pytest.fixture
def review_id(governance: Governance) -> str:
    return request(governance)


def cli(runner: CliRunner, store_url: str, *args: str) -> Result:
    """Invoke a `reviews` command on the test store."""
    return runner.invoke(main, ["reviews", *args, "--store", store_url])


def failed_with(result: Result, *fragments: str) -> None:
    """The command exited 1 with one line on stderr naming each fragment."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


# --- list and show ----------------------------------------------------------------------------


def test_list_shows_the_pending_review(runner: CliRunner, store_url: str, review_id: str) -> None:
    result = cli(runner, store_url, "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "id",
        "workflow",
        "action",
        "status",
        "execution",
        "roles",
        "deadline",
        "payload",
    ]
    [row] = lines[2:]
    assert row.split()[:6] == [review_id, "cli_outreach", "send", "pending", "waiting", "sdr"]


def test_list_filters(
    runner: CliRunner, store_url: str, governance: Governance, review_id: str
) -> None:
    """--workflow, --role and --status narrow the list; --status all lists decided ones."""
    assert cli(runner, store_url, "list", "--workflow", "other").stdout == ""
    assert "no pending reviews" in cli(runner, store_url, "list", "--workflow", "other").stderr
    assert review_id in cli(runner, store_url, "list", "--role", "sdr").stdout
    assert review_id not in cli(runner, store_url, "list", "--role", "lead").stdout
    governance.reject(review_id, "dana", reason="wrong person", roles=["sdr"])
    assert review_id not in cli(runner, store_url, "list").stdout
    assert review_id in cli(runner, store_url, "list", "--status", "rejected").stdout
    assert review_id in cli(runner, store_url, "list", "--status", "all").stdout
    bad = cli(runner, store_url, "list", "--status", "done")
    assert bad.exit_code == 2


def test_list_json_parses(runner: CliRunner, store_url: str, review_id: str) -> None:
    result = cli(runner, store_url, "list", "--format", "json")
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)
    assert entry["id"] == review_id
    assert entry["status"] == "pending"
    assert entry["outcome"] == "pending"
    assert entry["payload"] == PAYLOAD
    empty = cli(runner, store_url, "list", "--format", "json", "--status", "expired")
    assert json.loads(empty.stdout) == []


def test_show_prints_the_payload(
    runner: CliRunner, store_url: str, governance: Governance, review_id: str
) -> None:
    result = cli(runner, store_url, "show", review_id)
    assert result.exit_code == 0, result.output
    review = governance.review(review_id)
    assert f"review      {review_id}" in result.stdout
    assert '"to": "ana@example.com"' in result.stdout
    assert review.payload_sha256 in result.stdout
    assert "none yet" in result.stdout
    assert "diff:" not in result.stdout


def test_show_json_parses(runner: CliRunner, store_url: str, review_id: str) -> None:
    result = cli(runner, store_url, "show", review_id, "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["id"] == review_id
    assert data["payload"] == PAYLOAD
    assert data["diff"] == []
    assert data["edited"] is False


def test_show_unknown_review(runner: CliRunner, store_url: str, review_id: str) -> None:
    failed_with(cli(runner, store_url, "show", "nope"), "no review 'nope'", "reviews list")


# --- approve ----------------------------------------------------------------------------------


def test_approve(runner: CliRunner, store_url: str, governance: Governance, review_id: str) -> None:
    """Approved by a reviewer holding the role; nothing here runs the action: ready."""
    result = cli(
        runner, store_url, "approve", review_id, "--reviewer", "dana", "--role", "sdr",
        "--comment", "fine",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "approved unchanged" in result.stdout
    assert "ready for a worker" in result.stdout
    review = governance.review(review_id)
    assert review.status.value == "approved"
    assert review.execution.value == "ready"
    [decision] = review.decisions
    assert (decision.reviewer, decision.roles, decision.comment) == ("dana", ("sdr",), "fine")


def test_approve_runs_the_action_registered_here(
    runner: CliRunner, store_url: str, governance: Governance
) -> None:
    """With the action's code registered in this process, approving runs it, once."""
    workflow = Workflow(
        name="cli_registered",
        actions=[{"name": "send", "risk": "requires_approval"}],
        review={"reviewers": ["sdr"]},
    )
    sent: list[str] = []

    @governed_action(workflow, "send")
    def send(to: str) -> str:
        sent.append(to)
        return f"sent to {to}"

    @governed_workflow(workflow, governance=governance)
    def follow_up() -> Any:
        return send(to="bo@example.com")

    pending = follow_up()
    assert sent == []
    result = cli(
        runner, store_url, "approve", pending.review_id, "--reviewer", "dana", "--role", "sdr"
    )
    assert result.exit_code == 0, result.output
    assert "its action ran and succeeded" in result.stdout
    assert sent == ["bo@example.com"]
    review = governance.review(pending.review_id)
    assert review.execution.value == "succeeded"
    assert review.result == "sent to bo@example.com"
    shown = cli(runner, store_url, "show", pending.review_id)
    assert 'result      "sent to bo@example.com"' in shown.stdout


def test_approve_without_a_role_fails(
    runner: CliRunner, store_url: str, governance: Governance, review_id: str
) -> None:
    failed_with(
        cli(runner, store_url, "approve", review_id, "--reviewer", "dana"),
        "--role",
        "ADA_GOVERNANCE_ROLES",
    )
    assert governance.review(review_id).status.value == "pending"


def test_approve_without_a_reviewer_fails(
    runner: CliRunner, store_url: str, review_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADA_GOVERNANCE_REVIEWER", raising=False)
    failed_with(
        cli(runner, store_url, "approve", review_id, "--role", "sdr"),
        "--reviewer",
        "ADA_GOVERNANCE_REVIEWER",
    )


def test_approve_with_a_role_that_may_not_decide(
    runner: CliRunner, store_url: str, review_id: str
) -> None:
    failed_with(
        cli(runner, store_url, "approve", review_id, "--reviewer", "eve", "--role", "intern"),
        "holds none of the roles",
        "--role",
    )


def test_approve_twice_is_refused(runner: CliRunner, store_url: str, review_id: str) -> None:
    args = ("approve", review_id, "--reviewer", "dana", "--role", "sdr")
    assert cli(runner, store_url, *args).exit_code == 0
    failed_with(cli(runner, store_url, *args), "only a pending review can be decided")


def test_approve_unknown_review(runner: CliRunner, store_url: str, review_id: str) -> None:
    failed_with(
        cli(runner, store_url, "approve", "nope", "--reviewer", "dana", "--role", "sdr"),
        "no review 'nope'",
    )


def test_approve_with_edit_changes_the_payload_and_show_prints_the_diff(
    runner: CliRunner, store_url: str, governance: Governance, review_id: str
) -> None:
    edit = json.dumps({"to": "bo@example.com", "note": "hello"})
    result = cli(
        runner, store_url, "approve", review_id, "--reviewer", "dana", "--role", "sdr",
        "--edit", edit, "--comment", "bo owns this account",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "approved with edits" in result.stdout
    review = governance.review(review_id)
    assert review.payload == {"to": "bo@example.com", "note": "hello"}
    assert review.original_payload == PAYLOAD

    shown = cli(runner, store_url, "show", review_id)
    assert shown.exit_code == 0, shown.output
    assert "original payload:" in shown.stdout
    assert 'to: "ana@example.com" -> "bo@example.com"' in shown.stdout
    assert "[edited the payload]: bo owns this account" in shown.stdout
    data = json.loads(cli(runner, store_url, "show", review_id, "--format", "json").stdout)
    assert data["diff"] == [{"field": "to", "before": "ana@example.com", "after": "bo@example.com"}]
    assert data["edited"] is True


def test_approve_with_edit_from_a_file(
    runner: CliRunner, store_url: str, governance: Governance, review_id: str, tmp_path: Path
) -> None:
    (tmp_path / "edit.json").write_text(json.dumps({"to": "cy@example.com"}))
    result = cli(
        runner, store_url, "approve", review_id, "--reviewer", "dana", "--role", "sdr",
        "--edit", f"@{tmp_path / 'edit.json'}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert governance.review(review_id).payload == {"to": "cy@example.com"}


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        pytest.param('{"note": "no recipient"}', ("fails Outreach", "to: Field required"),
                     id="fails-schema"),
        pytest.param('{"to": ', ("not JSON",), id="not-json"),
        pytest.param("@/nonexistent/edit.json", ("cannot read the --edit file",), id="no-file"),
    ],
)  # fmt: skip
def test_invalid_edit_fails(
    runner: CliRunner,
    store_url: str,
    governance: Governance,
    review_id: str,
    edit: str,
    fragments: tuple[str, ...],
) -> None:
    result = cli(
        runner, store_url, "approve", review_id, "--reviewer", "dana", "--role", "sdr",
        "--edit", edit,
    )  # fmt: skip
    failed_with(result, *fragments)
    review = governance.review(review_id)
    assert review.status.value == "pending"
    assert review.payload == PAYLOAD


def test_expect_sha(
    runner: CliRunner, store_url: str, governance: Governance, review_id: str
) -> None:
    """A hash other than the payload's is refused; the hash shown (or its first 12 hex
    digits, as `list` prints) is accepted."""
    digest = governance.review(review_id).payload_sha256
    base = ("approve", review_id, "--reviewer", "dana", "--role", "sdr", "--expect-sha")
    failed_with(cli(runner, store_url, *base, "0" * 64), "changed since it was shown")
    failed_with(cli(runner, store_url, *base, "abc"), "first 12 hex digits")
    failed_with(cli(runner, store_url, *base, "0" * 12), "changed since it was shown")
    assert governance.review(review_id).status.value == "pending"
    result = cli(runner, store_url, *base, digest[:12])
    assert result.exit_code == 0, result.output
    other = request(governance)
    result = cli(
        runner, store_url, "approve", other, "--reviewer", "dana", "--role", "sdr",
        "--expect-sha", governance.review(other).payload_sha256,
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_reviewer_and_roles_from_the_environment(
    runner: CliRunner,
    store_url: str,
    governance: Governance,
    review_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ADA_GOVERNANCE_REVIEWER and ADA_GOVERNANCE_ROLES (comma-separated) are used when
    --reviewer and --role are not given."""
    monkeypatch.setenv("ADA_GOVERNANCE_REVIEWER", "dana")
    monkeypatch.setenv("ADA_GOVERNANCE_ROLES", "ops, sdr")
    result = cli(runner, store_url, "approve", review_id)
    assert result.exit_code == 0, result.output
    [decision] = governance.review(review_id).decisions
    assert (decision.reviewer, decision.roles) == ("dana", ("sdr",))


def test_role_option_wins_over_the_environment(
    runner: CliRunner, store_url: str, review_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADA_GOVERNANCE_REVIEWER", "dana")
    monkeypatch.setenv("ADA_GOVERNANCE_ROLES", "sdr")
    failed_with(
        cli(runner, store_url, "approve", review_id, "--role", "ops"), "holds none of the roles"
    )


def test_store_from_the_environment(
    runner: CliRunner, store_url: str, review_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADA_GOVERNANCE_STORE", store_url)
    result = runner.invoke(main, ["reviews", "list"])
    assert result.exit_code == 0, result.output
    assert review_id in result.stdout


def test_bad_store_url(runner: CliRunner) -> None:
    result = runner.invoke(main, ["reviews", "list", "--store", "mongodb://db"])
    failed_with(result, "unsupported store URL", "--store")


# --- reject and judge -------------------------------------------------------------------------


def test_reject_needs_a_reason(runner: CliRunner, store_url: str, review_id: str) -> None:
    result = cli(runner, store_url, "reject", review_id, "--reviewer", "dana", "--role", "sdr")
    assert result.exit_code == 2
    assert "Missing option '--reason'" in result.stderr


def test_reject_with_a_blank_reason_fails(
    runner: CliRunner, store_url: str, review_id: str
) -> None:
    result = cli(
        runner, store_url, "reject", review_id, "--reviewer", "dana", "--role", "sdr",
        "--reason", " ",
    )  # fmt: skip
    failed_with(result, "needs a reason")


def test_reject(runner: CliRunner, store_url: str, governance: Governance, review_id: str) -> None:
    result = cli(
        runner, store_url, "reject", review_id, "--reviewer", "dana", "--role", "sdr",
        "--reason", "not a lead",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rejected" in result.stdout
    review = governance.review(review_id)
    assert review.status.value == "rejected"
    assert review.execution.value == "skipped"
    assert review.decisions[-1].comment == "not a lead"
    shown = cli(runner, store_url, "show", review_id)
    assert "reject by dana (sdr): not a lead" in shown.stdout


def test_judge_a_sampled_action(runner: CliRunner, store_url: str, governance: Governance) -> None:
    """An autonomous action sampled for review: judged correct or incorrect."""
    workflow = Workflow(
        name="cli_sampled",
        actions=[{"name": "tag", "risk": "autonomous"}],
        review={"reviewers": ["qa"], "quality_sample_rate": 1.0},
    )

    @governed_workflow(workflow, governance=governance)
    def tag() -> Any:
        return current_run().action("tag", lambda data: "tagged", {"lead": 1})

    assert tag() == "tagged"
    [sample] = governance.reviews("cli_sampled", status="pending")
    missing = cli(runner, store_url, "judge", sample.id, "--reviewer", "q", "--role", "qa")
    assert missing.exit_code == 2
    assert "--correct or --incorrect" in missing.stderr
    result = cli(
        runner, store_url, "judge", sample.id, "--incorrect", "--reviewer", "q", "--role", "qa",
        "--comment", "wrong tag",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "judged incorrect" in result.stdout
    judged = governance.review(sample.id)
    assert judged.decisions[-1].verdict == "incorrect"
    assert judged.status.value == "rejected"


# --- the worker -------------------------------------------------------------------------------

ACTIONS_MODULE = '''
"""An app's actions, as a worker imports them."""

from pathlib import Path

from ada_governance import Workflow, governed_action

WORKFLOW = Workflow(
    name="cli_worker",
    actions=[{"name": "send", "risk": "requires_approval"}],
    review={"reviewers": ["sdr"]},
)
SENT = Path(__file__).with_name("sent.txt")


@governed_action(WORKFLOW, "send")
def send(to: str, note: str = "") -> str:
    with SENT.open("a") as file:
        file.write(f"{to}: {note}\\n")
    return f"sent to {to}"
'''

REQUEST = """
import sys

from ada_governance import Governance, governed_workflow
import {module} as app

governance = Governance(sys.argv[1], development=True)


@governed_workflow(app.WORKFLOW, governance=governance)
def follow_up():
    return app.send(to="ana@example.com", note="hello")


print(follow_up().review_id)
governance.close()
"""


@pytest.fixture
def actions_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A module in tmp_path, on sys.path, that registers an action appending to a file."""
    name = f"cli_worker_actions_{os.getpid()}_{tmp_path.name}".replace("-", "_")
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(ACTIONS_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "path", list(sys.path))  # the worker may add the cwd
    yield name
    sys.modules.pop(name, None)


def request_elsewhere(tmp_path: Path, module: str, store_url: str) -> str:
    """The app asks for the action in its own process, as in production: this test's
    process has not imported the action's code yet, so approving here cannot run it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", REQUEST.format(module=module), store_url],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_worker_runs_an_approved_action_exactly_once(
    runner: CliRunner,
    store_url: str,
    governance: Governance,
    actions_module: str,
    tmp_path: Path,
) -> None:
    review_id = request_elsewhere(tmp_path, actions_module, store_url)
    assert actions_module not in sys.modules
    approved = cli(runner, store_url, "approve", review_id, "--reviewer", "dana", "--role", "sdr")
    assert approved.exit_code == 0, approved.output
    assert "ready for a worker" in approved.stdout
    sent = tmp_path / "sent.txt"
    assert not sent.exists()

    args = ["worker", "--once", "--import", actions_module, "--store", store_url]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [f"ran review {review_id} (send of cli_worker): succeeded"]
    assert sent.read_text() == "ana@example.com: hello\n"
    review = governance.review(review_id)
    assert review.execution.value == "succeeded"
    assert review.result == "sent to ana@example.com"

    second = runner.invoke(main, args)
    assert second.exit_code == 0, second.output
    assert second.stdout == ""
    assert sent.read_text() == "ana@example.com: hello\n"


def test_worker_expires_overdue_reviews(runner: CliRunner, store_url: str, tmp_path: Path) -> None:
    """A review past its deadline is expired by the worker's round, with a line."""
    clock = ManualClock(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    old = Governance(store_url, development=True, clock=clock)
    try:
        review_id = request(old)
    finally:
        old.close()
    result = runner.invoke(main, ["worker", "--once", "--store", store_url])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"expired review {review_id} (send of cli_outreach) (on timeout: reject)"
    ]
    listed = cli(runner, store_url, "list", "--status", "expired", "--format", "json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [review_id]


def test_worker_with_a_module_that_does_not_import(runner: CliRunner, store_url: str) -> None:
    result = runner.invoke(
        main, ["worker", "--once", "--import", "no_such_module_xyz", "--store", store_url]
    )
    failed_with(result, "cannot import no_such_module_xyz", "ModuleNotFoundError")


def test_worker_stops_on_sigterm(store_url: str, tmp_path: Path) -> None:
    """Looping, the worker ends its round and exits 0 on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ada_governance", "worker", "--interval", "0.1",
         "--store", store_url],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    watchdog = threading.Timer(30, process.kill)
    watchdog.start()
    try:
        assert process.stderr is not None
        started = process.stderr.readline()
        assert started.startswith("worker "), started
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "worker stopped" in stderr
    assert stdout == ""
