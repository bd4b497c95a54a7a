"""For the PostgreSQL tests: functions run in spawned processes (importable by name), and
a TCP proxy that can take the database away and bring it back."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import threading
import time
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

from ada_governance import (
    Governance,
    RunRefused,
    TriggerEvent,
    Workflow,
    current_run,
    governed_action,
    governed_workflow,
)
from ada_governance.records import AuditEvent, Reservation, RunRecord, RunStatus
from ada_governance.reviews import Review
from ada_governance.storage import open_store

UTC = dt.timezone.utc
BUDGET_WORKFLOW = "shared-budget"
BUDGET_RULE = "budget:usd:day"
WINDOW_START = dt.datetime(2025, 1, 1, tzinfo=UTC)
PAUSABLE = Workflow(name="pausable", trigger={"event": "job"})
ACTION = "deliver"
LEASE = dt.timedelta(minutes=5)


def report(results: Any, worker: str, work: Any, *args: Any) -> None:
    """Run ``work(*args)`` and put ``(worker, result)`` (or the error's text) on ``results``."""
    try:
        results.put((worker, work(*args)))
    except BaseException as error:
        results.put((worker, f"error: {type(error).__name__}: {error}"))
        raise


# --- migrations ----------------------------------------------------------------------------


def open_fresh(url: str, start: Barrier) -> str:
    """Open the store at the same moment as the other processes: its first call migrates."""
    store = open_store(url)
    try:
        start.wait(timeout=60)
        assert store.get_state("anything") is None
        return "ok"
    finally:
        store.close()


# --- one budget ----------------------------------------------------------------------------


def reserve_until_refused(
    url: str, worker: int, start: Barrier, amount: float, limit: float
) -> list[str]:
    """Reserve ``amount`` of the shared budget until refused; record a run for each share
    held, and settle it. Returns the run ids recorded."""
    store = open_store(url)
    recorded: list[str] = []
    try:
        start.wait(timeout=60)
        for index in range(10_000):
            run_id = f"w{worker}-{index:05d}"
            now = dt.datetime.now(UTC)
            reservation = Reservation(
                f"res-{run_id}", BUDGET_WORKFLOW, BUDGET_RULE, amount, now, run_id
            )
            if not store.reserve(reservation, limit, WINDOW_START):
                break
            record = RunRecord(
                run_id,
                BUDGET_WORKFLOW,
                "1",
                RunStatus.SUCCEEDED,
                f"trigger-{run_id}",
                "job",
                now,
                now,
                dt.datetime.now(UTC),
                cost=amount,
            )
            event = AuditEvent(now, "run_succeeded", BUDGET_WORKFLOW, run_id, data={"cost": amount})
            store.record_run(record, [event])
            store.settle(reservation.id, amount)
            recorded.append(run_id)
        return recorded
    finally:
        store.close()


def budget_workflow(name: str, limit: float, per_run: float) -> Workflow:
    """A workflow whose one stop rule is a daily USD budget."""
    return Workflow(
        name=name,
        trigger={"event": "job"},
        stop_rules=[{"kind": "budget", "limit": limit, "per_run": per_run}],
    )


def spend_until_refused(
    url: str, name: str, limit: float, per_run: float, start: Barrier
) -> dict[str, Any]:
    """Governed calls that each spend ``per_run`` of the workflow's budget, until one is
    refused: the ids of the runs that ran, and of the one refused, with its reason."""
    governance = Governance(url, development=True)

    @governed_workflow(budget_workflow(name, limit, per_run), governance=governance)
    def spend() -> str:
        run = current_run()
        run.record_model_call("model", cost=per_run)
        return run.id

    succeeded: list[str] = []
    try:
        start.wait(timeout=60)
        while True:
            try:
                succeeded.append(spend())
            except RunRefused as refusal:
                return {
                    "succeeded": succeeded,
                    "refused": refusal.run_id,
                    "reason": type(refusal).__name__,
                    "backlog": governance.backlog,
                }
    finally:
        governance.close()


# --- claiming ------------------------------------------------------------------------------


def claim_event(before: Review, after: Review) -> list[AuditEvent]:
    return [
        AuditEvent(
            dt.datetime.now(UTC),
            "review_claimed",
            after.workflow,
            after.run_id,
            after.claimed_by,
            {"review": after.id},
        )
    ]


def try_claim(store: Any, review_id: str, worker: str) -> str:
    """Claim a review's action for ``worker``: ``claimed``, or the error's class name."""
    try:
        store.update_review(
            review_id, lambda r: r.claim(worker, dt.datetime.now(UTC), LEASE), claim_event
        )
    except Exception as error:  # reported to the test, which expects NotClaimable
        return type(error).__name__
    return "claimed"


def claim_in_rounds(url: str, worker: str, review_ids: list[str], start: Barrier) -> list[str]:
    """Race the other processes for each review, all starting each round together."""
    store = open_store(url)
    try:
        outcomes = []
        for review_id in review_ids:
            start.wait(timeout=60)
            outcomes.append(try_claim(store, review_id, worker))
        return outcomes
    finally:
        store.close()


def outbox_workflow(name: str) -> Workflow:
    """A workflow whose one action, ``deliver``, needs an ``ops`` approval."""
    return Workflow(
        name=name,
        trigger={"event": "job"},
        actions=[{"name": ACTION, "risk": "requires_approval"}],
        review={"reviewers": ["ops"]},
    )


def register_outbox(name: str, outbox: Path) -> Any:
    """Register ``deliver`` of workflow ``name``: it appends a line to ``outbox``."""

    @governed_action(outbox_workflow(name), ACTION)
    def deliver(line: str) -> str:
        time.sleep(0.005)  # widen the window in which another worker could claim it too
        with outbox.open("a", encoding="utf-8") as file:
            file.write(f"{line} {os.getpid()}\n")
        return line

    return deliver


def run_actions_worker(url: str, name: str, outbox: str, start: Barrier) -> int:
    """Register ``deliver`` here, wait for the other workers, then run approved actions."""
    governance = Governance(url, development=True)
    register_outbox(name, Path(outbox))
    try:
        start.wait(timeout=60)
        return len(governance.run_actions(worker=f"worker-{os.getpid()}"))
    finally:
        governance.close()


# --- the kill switch -----------------------------------------------------------------------


def call_pausable(governance: Governance) -> str:
    @governed_workflow(PAUSABLE, governance=governance)
    def work(event: TriggerEvent) -> str:
        return "ran"

    try:
        return work(TriggerEvent.now("job"))
    except Exception as error:
        return type(error).__name__


def before_and_after_pause(url: str, ready: Barrier, paused: Event) -> tuple[str, str]:
    """One governed call, then (once told the workflow is paused) another, on one
    long-lived governance: what each call did."""
    governance = Governance(url, development=True)
    try:
        before = call_pausable(governance)
        ready.wait(timeout=60)
        if not paused.wait(timeout=60):
            return before, "never told of the pause"
        return before, call_pausable(governance)
    finally:
        governance.close()


# --- taking the database away ----------------------------------------------------------------


class Proxy:
    """A TCP proxy on 127.0.0.1 to the database: `down` refuses new connections and cuts
    every open one, as a stopped server does; `up` serves again on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self.port = 0
        self.up()

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = list(self._sockets), set()
        if listener is not None:
            # shutdown wakes the thread blocked in accept(); close frees the port.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._sockets.update((client, server))
            threading.Thread(target=self._serve, args=(client, server), daemon=True).start()

    def _serve(self, client: socket.socket, server: socket.socket) -> None:
        back = threading.Thread(target=self._pump, args=(server, client), daemon=True)
        back.start()
        self._pump(client, server)
        back.join()
        with self._lock:
            self._sockets.difference_update((client, server))
        client.close()
        server.close()

    def close(self) -> None:
        """Stop serving and cut every connection."""
        self.down()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
