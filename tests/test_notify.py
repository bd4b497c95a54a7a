"""Notifiers: structlog events and signed webhooks, against a local HTTP server only."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from structlog.testing import capture_logs

from ada_governance import (
    Governance,
    MemoryStore,
    PendingAction,
    Review,
    Workflow,
    current_run,
    governed_workflow,
)
from ada_governance.notify import (
    NotificationFailed,
    StructlogNotifier,
    WebhookNotifier,
    sign,
    verify_signature,
)
from ada_governance.testing import ManualClock

SECRET = "s3cret"
EMAIL = "ana.personal@example.com"  # stands for a value read from a personal source


def _workflow(name: str = "notify_outreach") -> Workflow:
    return Workflow(
        name=name,
        actions=[{"name": "send", "risk": "requires_approval"}],
        review={"reviewers": ["sdr"], "on_timeout": "escalate", "escalate_to": ["lead"]},
    )


def _request(governance: Governance, workflow: Workflow) -> PendingAction:
    @governed_workflow(workflow, governance=governance)
    def follow_up() -> Any:
        return current_run().action("send", lambda payload: None, {"to": EMAIL})

    pending = follow_up()
    assert isinstance(pending, PendingAction)
    return pending


@pytest.fixture
def review() -> Review:
    """A pending review whose payload holds a personal value."""
    governance = Governance(MemoryStore(), development=True)
    return _request(governance, _workflow()).review


# --- a local receiver -------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: records requests, answers as told."""

    url: str
    requests: list[Received] = field(default_factory=list)
    answers: deque[int] = field(default_factory=deque)
    """Statuses to answer, in order; 200 once they run out."""
    stall: deque[float] = field(default_factory=deque)
    """Seconds to stall before answering, in order; none once they run out."""
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests go straight to 127.0.0.1, never through a proxy from the environment."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    lock = threading.Lock()
    state: dict[str, Receiver] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            target = state["receiver"]
            with lock:
                target.requests.append(Received(self.path, dict(self.headers.items()), body))
                status = target.answers.popleft() if target.answers else 200
                stall = target.stall.popleft() if target.stall else 0.0
            if stall:
                target.release.wait(stall)
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that gave up (timeout test) is expected

    server = Server(("127.0.0.1", 0), Handler)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    state["receiver"] = Receiver(url=f"http://127.0.0.1:{port}/hooks/ada?token=t")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state["receiver"]
    finally:
        state["receiver"].release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- signatures -------------------------------------------------------------------------------


def test_sign_is_hmac_sha256_hex() -> None:
    """The header value is sha256= and the hex HMAC-SHA256 of the body."""
    import hashlib
    import hmac

    body = b'{"kind":"requested"}'
    assert sign(body, SECRET) == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("body", "header", "secret", "expected"),
    [
        pytest.param(b"{}", sign(b"{}", SECRET), SECRET, True, id="valid"),
        pytest.param(
            b"{}",
            sign(b"{}", SECRET).upper().replace("SHA256=", "sha256="),
            SECRET,
            True,
            id="upper-hex",
        ),
        pytest.param(b"{}", sign(b"{}", SECRET), "other", False, id="wrong-secret"),
        pytest.param(b"{ }", sign(b"{}", SECRET), SECRET, False, id="tampered-body"),
        pytest.param(b"{}", sign(b"{}", SECRET)[7:], SECRET, False, id="no-prefix"),
        pytest.param(b"{}", "", SECRET, False, id="empty-header"),
        pytest.param(b"{}", None, SECRET, False, id="no-header"),
        pytest.param(b"{}", "sha256=\u00e9\u00e9", SECRET, False, id="non-ascii"),
        pytest.param(b"{}", sign(b"{}", ""), "", False, id="empty-secret"),
    ],
)
def test_verify_signature(body: bytes, header: str | None, secret: str, expected: bool) -> None:
    assert verify_signature(body, header, secret) is expected


# --- the webhook ------------------------------------------------------------------------------


def test_posts_signed_json_with_review_facts_and_no_payload(
    receiver: Receiver, review: Review
) -> None:
    """One POST: the documented body and headers; the signature verifies with the secret
    and fails with another; the payload never leaves, only its hash."""
    clock = ManualClock(dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone.utc))
    notifier = WebhookNotifier(receiver.url, SECRET, clock=clock)
    notifier.notify("requested", review)

    assert len(receiver.requests) == 1
    sent = receiver.requests[0]
    assert sent.path == "/hooks/ada?token=t"
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["X-Ada-Event"] == "requested"
    assert verify_signature(sent.body, sent.headers["X-Ada-Signature"], SECRET)
    assert not verify_signature(sent.body, sent.headers["X-Ada-Signature"], "wrong")
    assert sent.body == notifier.body("requested", review)
    assert sent.json == {
        "kind": "requested",
        "sent_at": "2026-03-01T09:30:00+00:00",
        "review": {
            "id": review.id,
            "workflow": "notify_outreach",
            "action": "send",
            "status": "pending",
            "execution": "waiting",
            "roles": ["sdr"],
            "deadline": review.deadline.isoformat(),
            "payload_sha256": review.payload_sha256,
            "run_id": review.run_id,
            "outcome": "pending",
        },
    }
    assert EMAIL.encode() not in sent.body


def test_5xx_is_retried_until_it_succeeds(receiver: Receiver, review: Review) -> None:
    """500, 500, then 200: three requests, each signed, and no error."""
    receiver.answers.extend([500, 503])
    WebhookNotifier(receiver.url, SECRET, wait=0.01).notify("decided", review)
    assert len(receiver.requests) == 3
    assert all(
        verify_signature(r.body, r.headers["X-Ada-Signature"], SECRET) for r in receiver.requests
    )


def test_5xx_on_every_attempt_raises(receiver: Receiver, review: Review) -> None:
    """A receiver that answers 500 every time: `attempts` requests, then a clear error."""
    receiver.answers.extend([500] * 5)
    notifier = WebhookNotifier(receiver.url, SECRET, attempts=4, wait=0.01)
    with pytest.raises(NotificationFailed, match="after 4 attempt") as caught:
        notifier.notify("decided", review)
    assert len(receiver.requests) == 4
    assert caught.value.status == 500
    assert caught.value.attempts == 4
    assert caught.value.review_id == review.id
    assert "token" not in str(caught.value)  # the URL's secret query is not echoed


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_4xx_is_not_retried(receiver: Receiver, review: Review, status: int) -> None:
    """A 4xx answer is final: one request, and an error naming the status."""
    receiver.answers.append(status)
    notifier = WebhookNotifier(receiver.url, SECRET, wait=0.01)
    with pytest.raises(NotificationFailed, match=f"refused .* HTTP {status}") as caught:
        notifier.notify("requested", review)
    assert len(receiver.requests) == 1
    assert caught.value.status == status
    assert caught.value.attempts == 1


def test_redirect_is_not_followed(receiver: Receiver, review: Review) -> None:
    """A redirect would turn the POST into a body-less GET: it is refused instead."""
    receiver.answers.append(302)
    with pytest.raises(NotificationFailed, match="HTTP 302"):
        WebhookNotifier(receiver.url, SECRET, wait=0.01).notify("requested", review)
    assert len(receiver.requests) == 1


def test_timeout_is_retried(receiver: Receiver, review: Review) -> None:
    """An answer slower than the timeout counts as a failed attempt and is tried again."""
    receiver.stall.append(5.0)
    WebhookNotifier(receiver.url, SECRET, timeout=0.3, wait=0.01).notify("requested", review)
    assert len(receiver.requests) == 2


def test_closed_port_raises_after_every_attempt_quickly(review: Review) -> None:
    """Nobody listening: it tries `attempts` times with exponential waits, then raises."""
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    notifier = WebhookNotifier(url, SECRET, attempts=3, wait=0.05, timeout=1.0)
    started = time.monotonic()
    with capture_logs() as logs, pytest.raises(NotificationFailed) as caught:
        notifier.notify("requested", review)
    elapsed = time.monotonic() - started
    assert 0.05 + 0.1 <= elapsed < 3.0  # waited 0.05 then 0.1 between the three tries
    assert caught.value.attempts == 3
    assert caught.value.status is None
    assert "after 3 attempt" in str(caught.value)
    assert "receiver is up" in str(caught.value)
    retries = [e for e in logs if e["event"] == "webhook_retrying"]
    assert [e["attempt"] for e in retries] == [1, 2]


@pytest.mark.parametrize(
    ("url", "secret", "options"),
    [
        pytest.param("file:///etc/passwd", SECRET, {}, id="file-url"),
        pytest.param("ftp://127.0.0.1/x", SECRET, {}, id="ftp-url"),
        pytest.param("http://", SECRET, {}, id="no-host"),
        pytest.param("http://127.0.0.1/x", "", {}, id="no-secret"),
        pytest.param("http://127.0.0.1/x", SECRET, {"attempts": 0}, id="no-attempts"),
        pytest.param("http://127.0.0.1/x", SECRET, {"timeout": 0}, id="no-timeout"),
        pytest.param("http://127.0.0.1/x", SECRET, {"wait": -1}, id="negative-wait"),
    ],
)
def test_bad_configuration_is_refused(url: str, secret: str, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"webhook|must"):
        WebhookNotifier(url, secret, **options)


def test_repr_hides_the_path() -> None:
    """The path and query may carry a token: only scheme and host are shown."""
    notifier = WebhookNotifier("https://hooks.example.invalid/T0/B1/secret", SECRET)
    assert repr(notifier) == "<WebhookNotifier https://hooks.example.invalid>"


# --- with a governance ------------------------------------------------------------------------


def test_governance_posts_requested_then_decided(receiver: Receiver) -> None:
    """A governed run asks for an approval (requested), a reviewer approves (decided)."""
    notifier = WebhookNotifier(receiver.url, SECRET, wait=0.01)
    governance = Governance(MemoryStore(), development=True, notifiers=[notifier])
    workflow = Workflow(
        name="notify_e2e",
        actions=[{"name": "send", "risk": "requires_approval"}],
        review={"reviewers": ["sdr"]},
    )

    @governed_workflow(workflow, governance=governance)
    def follow_up() -> Any:
        return current_run().action("send", lambda payload: None, {"to": EMAIL})

    pending = follow_up()
    assert [r.headers["X-Ada-Event"] for r in receiver.requests] == ["requested"]
    governance.approve(pending.review_id, "dana", roles=["sdr"])

    kinds = [r.json["kind"] for r in receiver.requests]
    assert kinds == ["requested", "decided"]
    assert [r.headers["X-Ada-Event"] for r in receiver.requests] == kinds
    requested, decided = (r.json["review"] for r in receiver.requests)
    assert requested["id"] == decided["id"] == pending.review_id
    assert (requested["status"], decided["status"]) == ("pending", "approved")
    assert decided["outcome"] == "approved unchanged"
    assert decided["execution"] == "ready"
    for sent in receiver.requests:
        assert verify_signature(sent.body, sent.headers["X-Ada-Signature"], SECRET)
        assert EMAIL.encode() not in sent.body


def test_governance_ignores_a_failing_webhook(review: Review) -> None:
    """A webhook that cannot be reached is logged; the approval still stands."""
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    governance = Governance(
        MemoryStore(),
        development=True,
        notifiers=[WebhookNotifier(url, SECRET, attempts=2, wait=0.01, timeout=1.0)],
    )
    with capture_logs() as logs:
        pending = _request(governance, _workflow("notify_failing"))
        approved = governance.approve(pending.review_id, "dana", roles=["sdr"])
    assert approved.status.value == "approved"
    failures = [e for e in logs if e["event"] == "notifier_failed"]
    assert len(failures) == 2  # requested, decided
    assert all(e["notifier"] == "WebhookNotifier" for e in failures)


# --- structlog --------------------------------------------------------------------------------


def test_structlog_notifier_logs_bound_events_without_the_payload() -> None:
    """requested, decided: events review_<kind> with workflow, id, action, status, roles
    and the payload hash; the payload itself is never logged."""
    governance = Governance(MemoryStore(), development=True, notifiers=[StructlogNotifier()])
    with capture_logs() as logs:
        pending = _request(governance, _workflow("notify_logged"))
        governance.approve(pending.review_id, "dana", roles=["sdr"], comment="fine")
    events = [e for e in logs if e["event"].startswith("review_") and "review_id" in e]
    notified = [e for e in events if "outcome" in e]
    assert [e["event"] for e in notified] == ["review_requested", "review_decided"]
    requested, decided = notified
    review = governance.review(pending.review_id)
    for entry in notified:
        assert entry["workflow"] == "notify_logged"
        assert entry["review_id"] == review.id
        assert entry["action"] == "send"
        assert entry["roles"] == ["sdr"]
        assert entry["run_id"] == review.run_id
        assert entry["payload_sha256"] == review.payload_sha256
        assert entry["log_level"] == "info"
    assert (requested["status"], decided["status"]) == ("pending", "approved")
    assert decided["outcome"] == "approved unchanged"
    assert EMAIL not in repr(logs)


def test_structlog_notifier_warns_on_escalation(review: Review) -> None:
    """An escalation (or expiry) is a warning."""
    clock = ManualClock()
    governance = Governance(
        MemoryStore(), development=True, clock=clock, notifiers=[StructlogNotifier()]
    )
    pending = _request(governance, _workflow("notify_escalated"))
    clock.advance(dt.timedelta(days=2))
    with capture_logs() as logs:
        governance.expire_overdue()
    [entry] = [e for e in logs if e["event"] == "review_escalated" and "outcome" in e]
    assert entry["log_level"] == "warning"
    assert entry["review_id"] == pending.review_id
    assert entry["roles"] == ["lead"]
    assert entry["status"] == "pending"


def test_structlog_notifier_uses_the_logger_given() -> None:
    """A logger given to it is the one it logs to."""
    seen: list[tuple[str, dict[str, Any]]] = []

    class Logger:
        def __init__(self, bound: dict[str, Any] | None = None) -> None:
            self.bound = bound or {}

        def bind(self, **values: Any) -> Logger:
            return Logger({**self.bound, **values})

        def info(self, event: str, **values: Any) -> None:
            seen.append((event, {**self.bound, **values}))

    governance = Governance(MemoryStore(), development=True)
    review = _request(governance, _workflow("notify_custom")).review
    StructlogNotifier(Logger()).notify("requested", review)
    [(event, values)] = seen
    assert event == "review_requested"
    assert values["review_id"] == review.id
    assert "payload" not in values
