"""Notifiers: tell people and systems about the review queue.

Give them to a `Governance` (``Governance(..., notifiers=[...])``); each is told when a
review is ``requested``, ``escalated``, ``expired`` or ``decided``. A notifier that raises
is logged and ignored, so a broken webhook never blocks a decision.

- `StructlogNotifier` logs each event as a structlog event ``review_<kind>``.
- `WebhookNotifier` POSTs each event as signed JSON to a URL; receivers check the
  signature with `verify_signature`.

Neither ever sends or logs a review's payload (it may hold values read from personal
sources): only its SHA-256 hash, which the reviewer approves and the action runs with.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import structlog
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from . import audit
from .clock import Clock, SystemClock
from .exceptions import GovernanceError
from .reviews import Review

__all__ = [
    "NotificationFailed",
    "StructlogNotifier",
    "WebhookNotifier",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Ada-Signature"
"""The header that carries the body's HMAC-SHA256 signature: ``sha256=<hex>``."""
EVENT_HEADER = "X-Ada-Event"
"""The header that carries the event's kind: ``requested``, ``decided``..."""

_PREFIX = "sha256="
_LEVELS = {"escalated": "warning", "expired": "warning"}


def _review_facts(review: Review) -> dict[str, Any]:
    """What a notification says about a review: never its payload, only the hash."""
    return {
        "id": review.id,
        "workflow": review.workflow,
        "action": review.action,
        "status": review.status.value,
        "execution": review.execution.value,
        "roles": list(review.roles),
        "deadline": review.deadline.isoformat(),
        "payload_sha256": review.payload_sha256,
        "run_id": review.run_id,
        "outcome": review.outcome,
    }


class StructlogNotifier:
    """Log each review event as a structlog event ``review_<kind>``.

    The event is bound with the workflow, review id, action, status and roles (and
    carries the run id, execution, deadline, outcome and payload hash); the payload
    itself is never logged. Escalations and expiries are warnings, the rest info.

    Args:
        logger: The structlog logger to use; ``structlog.get_logger("ada_governance")``
            by default.
    """

    def __init__(self, logger: Any = None) -> None:
        self._logger = logger

    def __repr__(self) -> str:
        return "<StructlogNotifier>"

    def notify(self, kind: str, review: Review) -> None:
        """Log ``review_<kind>`` for ``review``.

        Args:
            kind: ``requested``, ``escalated``, ``expired`` or ``decided``.
            review: The review as it now stands.
        """
        logger = (
            self._logger if self._logger is not None else structlog.get_logger("ada_governance")
        )
        bound = logger.bind(
            workflow=review.workflow,
            review_id=review.id,
            action=review.action,
            status=review.status.value,
            roles=list(review.roles),
        )
        getattr(bound, _LEVELS.get(kind, "info"))(
            f"review_{kind}",
            run_id=review.run_id,
            execution=review.execution.value,
            deadline=review.deadline.isoformat(),
            outcome=review.outcome,
            payload_sha256=review.payload_sha256,
        )


class NotificationFailed(GovernanceError):
    """A webhook did not accept a notification.

    Attributes:
        kind: The event's kind.
        review_id: The review it was about.
        attempts: How many times it was sent.
        status: The last HTTP status answered, or ``None`` when none was (connection
            refused, timed out).
    """

    def __init__(
        self, message: str, *, kind: str, review_id: str, attempts: int, status: int | None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.review_id = review_id
        self.attempts = attempts
        self.status = status


class _Transient(Exception):
    """A failure worth another attempt: no connection, a timeout, a 5xx answer."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _Refused(Exception):
    """A failure another attempt will not fix: a 4xx answer, or a redirect."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Follow no redirect: urllib would turn the POST into a GET without its body."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _close(answer: urllib.error.HTTPError) -> None:
    with contextlib.suppress(Exception):  # an error answer may have no body to close
        answer.close()


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body``: ``sha256=`` and the hex HMAC-SHA256.

    Args:
        body: The raw request body, exactly as sent.
        secret: The secret shared with the receiver.

    Returns:
        ``sha256=<hex digest>``.
    """
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return _PREFIX + digest


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Check a webhook's ``X-Ada-Signature`` header against its raw body.

    For receivers: compute the signature over the body bytes as received (before
    parsing the JSON) and compare in constant time.

    Args:
        body: The raw request body.
        header: The ``X-Ada-Signature`` header's value (``sha256=<hex>``).
        secret: The secret shared with the sender.

    Returns:
        Whether the body was signed with ``secret``; ``False`` for a missing or
        malformed header.
    """
    if not header or not secret:
        return False
    given = header.strip()
    if not given.lower().startswith(_PREFIX):
        return False
    expected = sign(body, secret)[len(_PREFIX) :]
    return hmac.compare_digest(
        expected.encode("ascii"), given[len(_PREFIX) :].lower().encode("utf-8", "replace")
    )


class WebhookNotifier:
    """POST each review event to a URL as signed JSON.

    The body is ``{"kind": ..., "review": {...}, "sent_at": ...}``, where ``review``
    holds the review's id, workflow, action, status, execution, roles, deadline,
    payload hash, run id and outcome; never its payload. Headers:
    ``Content-Type: application/json``, ``X-Ada-Event: <kind>`` and
    ``X-Ada-Signature: sha256=<hex HMAC-SHA256 of the raw body with the secret>``
    (check it with `verify_signature`).

    A connection error, a timeout or a 5xx answer is retried, waiting ``wait`` seconds,
    then twice that, and so on (at most 30 s between tries); a 4xx answer or a redirect
    is not. Redirects are not followed. Proxies set in the environment
    (``https_proxy``, ``no_proxy``) are used.

    Args:
        url: Where to POST: an ``http://`` or ``https://`` URL.
        secret: The secret shared with the receiver, to sign each body.
        timeout: Seconds to wait for each attempt's connection and answer.
        attempts: How many times to try in all (at least 1).
        wait: Seconds to wait before the second try; doubled before each next one.
        clock: Where ``sent_at`` comes from; the system clock by default.

    Raises:
        ValueError: The URL is not http(s), the secret is empty, or a number is out of
            range.
    """

    max_wait = 30.0
    """The longest wait between two tries, in seconds."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        wait: float = 0.5,
        clock: Clock | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"a webhook URL must be http:// or https://, not {url!r}")
        if not secret:
            raise ValueError("a webhook needs a secret to sign its bodies with")
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        if timeout <= 0 or wait < 0:
            raise ValueError("timeout must be positive and wait not negative")
        self.url = url
        self.timeout = timeout
        self.attempts = attempts
        self.wait = wait
        self._secret = secret
        self._clock: Clock = clock or SystemClock()
        # Where it posts, for messages and logs: the path may carry a token.
        self._where = f"{parts.scheme}://{parts.netloc}"
        self._opener = urllib.request.build_opener(_NoRedirects())

    def __repr__(self) -> str:
        return f"<WebhookNotifier {self._where}>"

    def body(self, kind: str, review: Review) -> bytes:
        """The JSON body sent for ``review``, exactly as it is signed.

        Args:
            kind: ``requested``, ``escalated``, ``expired`` or ``decided``.
            review: The review as it now stands.

        Returns:
            UTF-8 JSON, keys sorted, without spaces.
        """
        message = {
            "kind": kind,
            "review": _review_facts(review),
            "sent_at": self._clock.now().isoformat(),
        }
        return json.dumps(message, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def notify(self, kind: str, review: Review) -> None:
        """POST the event, retrying transient failures.

        Args:
            kind: ``requested``, ``escalated``, ``expired`` or ``decided``.
            review: The review as it now stands.

        Raises:
            NotificationFailed: The receiver answered 4xx or redirected (at once), or
                every attempt failed to connect, timed out or got a 5xx answer.
        """
        body = self.body(kind, review)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ada-governance-webhook",
            EVENT_HEADER: kind,
            SIGNATURE_HEADER: sign(body, self._secret),
        }
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.wait, max=max(self.max_wait, self.wait)),
            retry=retry_if_exception_type(_Transient),
            before_sleep=self._log_retry(kind, review),
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._post(body, headers)
        except _Refused as refused:
            raise NotificationFailed(
                f"the webhook at {self._where} refused the {kind} event of review "
                f"{review.id}: {refused}; check its URL and secret (not retried)",
                kind=kind,
                review_id=review.id,
                attempts=1,
                status=refused.status,
            ) from None
        except RetryError as exhausted:
            last = exhausted.last_attempt.exception()
            status = last.status if isinstance(last, _Transient) else None
            raise NotificationFailed(
                f"the webhook at {self._where} did not take the {kind} event of review "
                f"{review.id} after {self.attempts} attempt(s): {last}; check that the "
                "receiver is up",
                kind=kind,
                review_id=review.id,
                attempts=self.attempts,
                status=status,
            ) from None

    def _post(self, body: bytes, headers: dict[str, str]) -> None:
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as answer:
            status = f"HTTP {answer.code} {answer.reason}"
            _close(answer)
            if answer.code >= 500:
                raise _Transient(status, answer.code) from None
            raise _Refused(status, answer.code) from None
        except (OSError, http.client.HTTPException) as error:
            # URLError (refused, unreachable, DNS), timeouts, dropped connections.
            cause = getattr(error, "reason", None) or error
            raise _Transient(f"{type(error).__name__}: {cause}") from None

    def _log_retry(self, kind: str, review: Review) -> Callable[[RetryCallState], None]:
        def log(state: RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome is not None else None
            audit.logger.info(
                "webhook_retrying",
                webhook=self._where,
                kind=kind,
                review_id=review.id,
                attempt=state.attempt_number,
                error=str(failure),
            )

        return log
