"""End to end: the speed-to-lead example's metrics, scraped as Prometheus would.

Runs the example with ``--metrics-port`` on a free port of 127.0.0.1, waits for it to say
the metrics are ready, scrapes them, and stops it the two ways it supports: the end of
its standard input, and SIGTERM.
"""

from __future__ import annotations

import importlib.util
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from _e2e import clean_environment, example_command, free_ports, http_get, unavailable

from ada_governance import SQLiteStore

READY_TIMEOUT = 60.0
WORKFLOW = {"gen_ai_workflow_name": "speed_to_lead"}


@pytest.fixture
def exporter() -> None:
    """The Prometheus exporter is installed (it is in the dev extra)."""
    for module in ("opentelemetry.exporter.prometheus", "prometheus_client"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed: pip install -e '.[dev]'")


def _lines(stream: IO[str], into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


@pytest.fixture
def serving_example(exporter: None, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The example serving metrics on a free port, once it has printed that they are ready."""
    (port,) = free_ports(1)
    store = tmp_path / "ledger.db"
    process = subprocess.Popen(
        example_command("--metrics-port", str(port)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=clean_environment(ADA_GOVERNANCE_STORE=f"sqlite:///{store}"),
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    expected = f"metrics ready on http://127.0.0.1:{port}/metrics"
    output: list[str] = []
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while expected not in output:
            remaining = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                pytest.fail(f"no {expected!r} within {READY_TIMEOUT:.0f} s:\n{''.join(output)}")
            if line is None:
                pytest.fail(f"the example exited ({process.wait()}) early:\n{''.join(output)}")
            output.append(line.rstrip("\n"))
        ledger = SQLiteStore(store)
        try:
            rows = ledger.list_runs("speed_to_lead")
        finally:
            ledger.close()
        yield {
            "process": process,
            "url": f"http://127.0.0.1:{port}/metrics",
            "ledger": rows,
            "output": output,
        }
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=15)
        reader.join(timeout=5)
        if process.stdin is not None:
            process.stdin.close()
        process.stdout.close()


def scrape(url: str) -> dict[str, Any]:
    """The metric families at ``url``, by name (counters without their ``_total``)."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = http_get(url)
    assert status == 200, body[:500]
    return {family.name: family for family in text_string_to_metric_families(body.decode())}


def value(family: Any, sample: str, **labels: str) -> float:
    """The sum of ``family``'s samples named ``sample`` whose labels include ``labels``."""
    matching = [
        s.value
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert matching, f"no {sample} with {labels} in {family.samples}"
    return float(sum(matching))


def test_example_serves_its_metrics(serving_example: dict[str, Any]) -> None:
    """Run counts by status, exceptions, refusals, durations and token usage."""
    families = scrape(serving_example["url"])
    ledger = serving_example["ledger"]
    statuses = [row.status.value for row in ledger]
    assert statuses == ["pending_review", "pending_review", "failed", "refused", "pending_review"]

    runs = families["ada_runs"]
    assert runs.type == "counter"
    assert value(runs, "ada_runs_total", ada_run_status="pending_review", **WORKFLOW) == 3
    assert value(runs, "ada_runs_total", ada_run_status="failed", **WORKFLOW) == 1
    assert value(runs, "ada_runs_total", ada_run_status="refused", **WORKFLOW) == 1

    exceptions = families["ada_exceptions"]
    assert exceptions.type == "counter"
    assert value(exceptions, "ada_exceptions_total", error_type="ValidationError", **WORKFLOW) == 1
    refusals = families["ada_refusals"]
    assert refusals.type == "counter"
    assert value(refusals, "ada_refusals_total", ada_refusal_reason="check", **WORKFLOW) == 1

    # Durations of the runs that ran (a refused run never started its body).
    duration = families["gen_ai_invoke_workflow_duration_seconds"]
    assert duration.type == "histogram"
    name = "gen_ai_invoke_workflow_duration_seconds_count"
    assert value(duration, name, gen_ai_operation_name="invoke_workflow", **WORKFLOW) == 4
    assert value(duration, name, error_type="ValidationError", **WORKFLOW) == 1

    tokens = families["gen_ai_client_token_usage"]
    assert tokens.type == "histogram"
    calls = sum(row.model_calls for row in ledger)
    assert calls >= 3
    chat = {"gen_ai_operation_name": "chat", "gen_ai_request_model": "local-drafter-1"}
    for token_type, used in (
        ("input", sum(row.input_tokens for row in ledger)),
        ("output", sum(row.output_tokens for row in ledger)),
    ):
        labels = {"gen_ai_token_type": token_type, **chat, **WORKFLOW}
        assert value(tokens, "gen_ai_client_token_usage_count", **labels) == calls
        assert value(tokens, "gen_ai_client_token_usage_sum", **labels) == used

    # Cycle time is recorded for runs that reached their outcome; these wait for review.
    assert "ada_run_cycle_time_seconds" not in families

    decisions = families["ada_review_decisions"]
    assert decisions.type == "counter"
    approved = value(decisions, "ada_review_decisions_total", ada_review_decision="approve")
    assert approved == 2
    assert value(decisions, "ada_review_decisions_total", ada_review_decision="reject") == 1

    target = families["target_info"]
    assert value(target, "target_info", service_name="speed_to_lead") == 1

    process = serving_example["process"]
    process.stdin.close()  # end of input: the example stops serving and exits 0
    assert process.wait(timeout=15) == 0


def test_example_stops_on_sigterm(serving_example: dict[str, Any]) -> None:
    """SIGTERM also stops the example cleanly, with exit status 0."""
    assert scrape(serving_example["url"])["ada_runs"].type == "counter"
    process = serving_example["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
