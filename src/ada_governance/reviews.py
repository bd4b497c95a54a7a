"""The review queue's records and rules: pure data and pure transitions, no I/O.

A review holds an action that may not run until people with authority approve it (or an
autonomous action sampled for review after the fact). Every change to a review is a pure
function from the review as stored to the review as it should be stored next, raising a
typed error when the change is not allowed; the store applies it in one transaction, so
two processes can never both decide, or both claim, the same review.

States of a review::

    pending ──approve (enough approvals)──▶ approved
       │  ├──approve (more needed)──▶ pending
       │  ├──reject──▶ rejected
       │  ├──the requesting attempt is retried──▶ withdrawn
       │  └──deadline──▶ escalated (pending, new roles and deadline) | expired

States of the action behind it (``execution``)::

    waiting ──approved──▶ ready ──claim──▶ claimed ──done──▶ succeeded | failed
       │                                      └──lease expires──▶ unknown
       └──rejected / expired / withdrawn──▶ skipped  (an idempotent action: ready again)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .exceptions import GovernanceError, UsageError

__all__ = [
    "AlreadyDecided",
    "Decision",
    "ExecutionStatus",
    "NotAReviewer",
    "NotClaimable",
    "PayloadChanged",
    "Review",
    "ReviewDecisionRefused",
    "ReviewKind",
    "ReviewNotPending",
    "ReviewStatus",
    "SelfApprovalForbidden",
    "payload_hash",
    "sampled",
]


class ReviewStatus(str, Enum):
    """Where a review stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    """The run that requested it discarded the attempt (a rejected output it retried)."""


class ExecutionStatus(str, Enum):
    """Where the action behind a review stands."""

    WAITING = "waiting"
    """Not approved yet."""
    READY = "ready"
    """Approved, waiting for a process that can run it to claim it."""
    CLAIMED = "claimed"
    """A process holds it under a lease and is running it."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"
    """A process claimed it and its lease ran out before it said how it went; it may or
    may not have run. A person must find out: it is never run again by itself."""
    SKIPPED = "skipped"
    """Rejected or expired: it never runs."""


class ReviewKind(str, Enum):
    """Why a review exists."""

    APPROVAL = "approval"
    """An action that waits for approval before it runs."""
    SAMPLE = "sample"
    """An autonomous action that already ran, sampled for review after the fact."""


@dataclass(frozen=True, slots=True)
class Decision:
    """One reviewer's decision on a review.

    Attributes:
        reviewer: Who decided.
        roles: The roles they decided with.
        verdict: ``approve`` or ``reject`` (for a sample: ``correct`` or ``incorrect``),
            or ``escalate`` / ``expire`` when the deadline decided.
        at: When.
        comment: Their comment or, for a rejection, the reason.
        payload_sha256: The hash of the payload they decided on.
        edited: Whether they changed the payload.
    """

    reviewer: str
    roles: tuple[str, ...]
    verdict: str
    at: dt.datetime
    comment: str | None = None
    payload_sha256: str | None = None
    edited: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The decision as JSON-ready data."""
        return {
            "reviewer": self.reviewer,
            "roles": list(self.roles),
            "verdict": self.verdict,
            "at": self.at.isoformat(),
            "comment": self.comment,
            "payload_sha256": self.payload_sha256,
            "edited": self.edited,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        """Read back what `to_dict` wrote."""
        return cls(
            data["reviewer"],
            tuple(data["roles"]),
            data["verdict"],
            dt.datetime.fromisoformat(data["at"]),
            data.get("comment"),
            data.get("payload_sha256"),
            bool(data.get("edited", False)),
        )


def payload_hash(payload: Any) -> str:
    """The SHA-256 of a payload's canonical JSON (sorted keys, fixed separators)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sampled(key: str, rate: float, salt: str = "") -> bool:
    """Decide, reproducibly, whether ``key`` (a run id) falls in a sample of ``rate``.

    The same key, rate and salt always give the same answer, in any process, so a
    sampling decision can be checked later.
    """
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


@dataclass(frozen=True, slots=True)
class Review:
    """A review in the queue, and the action behind it.

    Attributes:
        id: The review's id.
        kind: ``approval`` or ``sample``.
        workflow: The workflow's name.
        version: The declaration's version in force when it was requested.
        run_id: The run that requested it.
        action: The action's name.
        requester: Who (or what) requested it.
        payload: The payload the action will run with (JSON data); a reviewer's edits
            replace it.
        payload_sha256: Its hash.
        original_payload: The payload as requested.
        roles: The reviewer roles that may decide it now (changed by escalation).
        approvals_required: How many distinct reviewers must approve.
        requester_may_approve: Whether the requester may be one of them.
        on_timeout: What the deadline does: ``reject``, ``escalate``, ``pause_workflow``.
        escalate_to: The roles an escalation hands it to.
        created_at: When it was requested.
        deadline: When it times out.
        status: Where the review stands.
        decisions: Every decision, in order.
        execution: Where the action stands.
        call: How the action takes its payload: ``payload`` (one argument) or
            ``kwargs`` (the payload's keys as keyword arguments).
        idempotent: Whether the action may safely run again after a lost lease.
        claimed_by: The process holding the action, while claimed.
        lease_until: When that hold lapses.
        executed_at: When the action finished.
        result: What the action returned (JSON data), if it succeeded.
        error: Why it failed, if it did.
        trace_id: The run span's trace id (hex), to link the action's span to it.
        span_id: The run span's span id (hex).
        policy: The review policy in force when it was requested, as data.
    """

    id: str
    kind: ReviewKind
    workflow: str
    version: str
    run_id: str
    action: str
    requester: str
    payload: Any
    payload_sha256: str
    original_payload: Any
    roles: tuple[str, ...]
    approvals_required: int
    requester_may_approve: bool
    on_timeout: str
    escalate_to: tuple[str, ...]
    created_at: dt.datetime
    deadline: dt.datetime
    status: ReviewStatus = ReviewStatus.PENDING
    decisions: tuple[Decision, ...] = ()
    execution: ExecutionStatus = ExecutionStatus.WAITING
    call: str = "payload"
    idempotent: bool = False
    claimed_by: str | None = None
    lease_until: dt.datetime | None = None
    executed_at: dt.datetime | None = None
    result: Any = None
    error: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    policy: dict[str, Any] = field(default_factory=dict)

    # --- facts derived from the decisions ---------------------------------------------

    @property
    def approvals(self) -> tuple[Decision, ...]:
        """The approvals of the payload as it now stands, one per reviewer."""
        seen: set[str] = set()
        found = []
        for d in self.decisions:
            current = d.verdict == "approve" and d.payload_sha256 == self.payload_sha256
            if current and d.reviewer not in seen:
                seen.add(d.reviewer)
                found.append(d)
        return tuple(found)

    @property
    def approved_payload(self) -> bool:
        """Whether the payload as it stands carries every approval it needs: what the
        action may run with. A payload changed in the store (with or without its hash)
        carries none."""
        digest = payload_hash(self.payload)
        approvers = {
            d.reviewer
            for d in self.decisions
            if d.verdict == "approve" and d.payload_sha256 == digest
        }
        return digest == self.payload_sha256 and len(approvers) >= self.approvals_required

    @property
    def edited(self) -> bool:
        """Whether a reviewer changed the payload."""
        return self.payload_sha256 != payload_hash(self.original_payload)

    @property
    def outcome(self) -> str:
        """``approved unchanged``, ``approved with edits``, ``rejected``, ``expired`` or
        ``pending``: separate facts for rework and review accuracy."""
        if self.status is ReviewStatus.APPROVED:
            return "approved with edits" if self.edited else "approved unchanged"
        return str(self.status.value)

    def diff(self) -> list[dict[str, Any]]:
        """What reviewers changed: one entry per changed top-level field (or the whole
        payload when it is not a mapping), with the value before and after."""
        before, after = self.original_payload, self.payload
        if before == after:
            return []
        if isinstance(before, dict) and isinstance(after, dict):
            return [
                {"field": key, "before": before.get(key), "after": after.get(key)}
                for key in sorted(set(before) | set(after))
                if before.get(key) != after.get(key)
            ]
        return [{"field": None, "before": before, "after": after}]

    # --- storing it -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The review as JSON-ready data, as stores keep it."""
        data: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if isinstance(value, Enum):
                value = value.value
            elif isinstance(value, dt.datetime):
                value = value.isoformat()
            elif item.name == "decisions":
                value = [decision.to_dict() for decision in value]
            elif isinstance(value, tuple):
                value = list(value)
            data[item.name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Review:
        """Read back what `to_dict` wrote."""

        def when(name: str) -> dt.datetime | None:
            value = data.get(name)
            return dt.datetime.fromisoformat(value) if value else None

        return cls(
            id=data["id"],
            kind=ReviewKind(data["kind"]),
            workflow=data["workflow"],
            version=data["version"],
            run_id=data["run_id"],
            action=data["action"],
            requester=data["requester"],
            payload=data["payload"],
            payload_sha256=data["payload_sha256"],
            original_payload=data["original_payload"],
            roles=tuple(data["roles"]),
            approvals_required=data["approvals_required"],
            requester_may_approve=data["requester_may_approve"],
            on_timeout=data["on_timeout"],
            escalate_to=tuple(data["escalate_to"]),
            created_at=dt.datetime.fromisoformat(data["created_at"]),
            deadline=dt.datetime.fromisoformat(data["deadline"]),
            status=ReviewStatus(data["status"]),
            decisions=tuple(Decision.from_dict(d) for d in data["decisions"]),
            execution=ExecutionStatus(data["execution"]),
            call=data["call"],
            idempotent=data["idempotent"],
            claimed_by=data.get("claimed_by"),
            lease_until=when("lease_until"),
            executed_at=when("executed_at"),
            result=data.get("result"),
            error=data.get("error"),
            trace_id=data.get("trace_id"),
            span_id=data.get("span_id"),
            policy=data.get("policy") or {},
        )

    # --- transitions (pure) -----------------------------------------------------------

    def _authorise(
        self, reviewer: str, roles: tuple[str, ...], kind: ReviewKind = ReviewKind.APPROVAL
    ) -> tuple[str, ...]:
        if self.kind is not kind:
            use = "judge" if self.kind is ReviewKind.SAMPLE else "approve or reject"
            raise ReviewDecisionRefused(
                f"review {self.id} is a{'' if self.kind is ReviewKind.SAMPLE else 'n'} "
                f"{self.kind.value} review: {use} it",
                review_id=self.id,
            )
        if self.status is not ReviewStatus.PENDING:
            raise ReviewNotPending(
                f"review {self.id} is {self.status.value}; only a pending review can be decided",
                review_id=self.id,
            )
        if not reviewer.strip() or reviewer != reviewer.strip():
            raise UsageError("a decision needs the reviewer's identity, without surrounding spaces")
        held = tuple(role for role in roles if role in self.roles)
        if not held:
            raise NotAReviewer(
                f"{reviewer} holds none of the roles that may decide review {self.id} "
                f"({', '.join(self.roles)}); they hold {', '.join(roles) or 'no role'}",
                review_id=self.id,
            )
        if reviewer in {d.reviewer for d in self.approvals}:
            raise AlreadyDecided(
                f"{reviewer} has already approved review {self.id}; another reviewer "
                "must give the next approval",
                review_id=self.id,
            )
        return held

    def _in_time(self, now: dt.datetime) -> None:
        if now >= self.deadline:
            raise ReviewNotPending(
                f"review {self.id} passed its deadline at {self.deadline.isoformat()}; its "
                f"on_timeout ({self.on_timeout}) decides it now (expire_overdue)",
                review_id=self.id,
            )

    def approve(
        self,
        reviewer: str,
        roles: tuple[str, ...],
        now: dt.datetime,
        *,
        edits: Any = None,
        comment: str | None = None,
        expected_sha256: str | None = None,
    ) -> Review:
        """This review with ``reviewer``'s approval (and edits) added.

        Raises:
            ReviewNotPending: It is already decided or expired.
            NotAReviewer: The reviewer holds none of the review's roles.
            SelfApprovalForbidden: The reviewer requested it and the policy forbids that.
            AlreadyDecided: The reviewer already approved it.
            PayloadChanged: ``expected_sha256`` (what the reviewer saw) is not the
                payload as it stands: someone edited it since.
        """
        held = self._authorise(reviewer, roles)
        self._in_time(now)
        if reviewer == self.requester and not self.requester_may_approve:
            raise SelfApprovalForbidden(
                f"{reviewer} requested review {self.id} and may not approve it; another "
                "reviewer must",
                review_id=self.id,
            )
        if expected_sha256 is not None and expected_sha256 != self.payload_sha256:
            raise PayloadChanged(
                f"the payload of review {self.id} changed since it was shown "
                f"(now {self.payload_sha256[:12]}, shown {expected_sha256[:12]}); look at it "
                "again before approving",
                review_id=self.id,
            )
        payload, digest, edited = self.payload, self.payload_sha256, False
        if edits is not None:
            payload, digest = edits, payload_hash(edits)
            edited = digest != self.payload_sha256
        decision = Decision(reviewer, held, "approve", now, comment, digest, edited)
        decisions = (*self.decisions, decision)
        # An edit is a new payload: only approvals of the payload as it now stands count,
        # one per person (an edit back to an earlier payload does not count anyone twice).
        approvers = {
            d.reviewer for d in decisions if d.verdict == "approve" and d.payload_sha256 == digest
        }
        done = len(approvers) >= self.approvals_required
        return dataclasses.replace(
            self,
            payload=payload,
            payload_sha256=digest,
            decisions=decisions,
            status=ReviewStatus.APPROVED if done else ReviewStatus.PENDING,
            execution=ExecutionStatus.READY if done else ExecutionStatus.WAITING,
        )

    def reject(
        self, reviewer: str, roles: tuple[str, ...], now: dt.datetime, *, reason: str
    ) -> Review:
        """This review rejected by ``reviewer``; the action will never run.

        Raises:
            UsageError: No reason was given.
            ReviewNotPending: It is already decided or expired.
            NotAReviewer: The reviewer holds none of the review's roles.
        """
        if not reason or not reason.strip():
            raise UsageError("a rejection needs a reason the requester can act on")
        held = self._authorise(reviewer, roles)
        self._in_time(now)
        decision = Decision(reviewer, held, "reject", now, reason, self.payload_sha256)
        return dataclasses.replace(
            self,
            decisions=(*self.decisions, decision),
            status=ReviewStatus.REJECTED,
            execution=ExecutionStatus.SKIPPED,
        )

    def judge(
        self,
        reviewer: str,
        roles: tuple[str, ...],
        now: dt.datetime,
        *,
        correct: bool,
        comment: str | None = None,
    ) -> Review:
        """A sampled review's verdict: was the autonomous action right?

        Raises:
            ReviewDecisionRefused: It is not a sampled review, or the reviewer may not
                decide it.
        """
        held = self._authorise(reviewer, roles, ReviewKind.SAMPLE)
        verdict = "correct" if correct else "incorrect"
        decision = Decision(reviewer, held, verdict, now, comment, self.payload_sha256)
        return dataclasses.replace(
            self,
            decisions=(*self.decisions, decision),
            status=ReviewStatus.APPROVED if correct else ReviewStatus.REJECTED,
        )

    def expire(self, now: dt.datetime, timeout: dt.timedelta) -> Review:
        """This review after its deadline passed at ``now``: escalated once to
        ``escalate_to`` with a new deadline, or expired (the action skipped).

        Raises:
            ReviewNotPending: It is not pending, or its deadline has not passed.
        """
        if self.status is not ReviewStatus.PENDING or now < self.deadline:
            raise ReviewNotPending(f"review {self.id} is not overdue", review_id=self.id)
        escalated = any(d.verdict == "escalate" for d in self.decisions)
        # A sample's action already ran: an unjudged sample just lapses, whatever the
        # policy says for approvals.
        if self.on_timeout == "escalate" and not escalated and self.kind is ReviewKind.APPROVAL:
            decision = Decision("deadline", (), "escalate", now, ", ".join(self.escalate_to))
            return dataclasses.replace(
                self,
                roles=self.escalate_to,
                deadline=now + timeout,
                decisions=(*self.decisions, decision),
            )
        decision = Decision("deadline", (), "expire", now, self.on_timeout)
        return dataclasses.replace(
            self,
            decisions=(*self.decisions, decision),
            status=ReviewStatus.EXPIRED,
            execution=(
                ExecutionStatus.SKIPPED if self.kind is ReviewKind.APPROVAL else self.execution
            ),
        )

    def withdraw(self, now: dt.datetime, reason: str) -> Review:
        """This review withdrawn by the run that requested it (the attempt that asked
        was discarded and retried); the action never runs.

        Raises:
            ReviewNotPending: It was decided already.
        """
        if self.status is not ReviewStatus.PENDING:
            raise ReviewNotPending(
                f"review {self.id} is {self.status.value}; only a pending review can be withdrawn",
                review_id=self.id,
            )
        decision = Decision("run", (), "withdraw", now, reason)
        return dataclasses.replace(
            self,
            decisions=(*self.decisions, decision),
            status=ReviewStatus.WITHDRAWN,
            execution=ExecutionStatus.SKIPPED,
        )

    def claim(self, worker: str, now: dt.datetime, lease: dt.timedelta) -> Review:
        """This review's action claimed by ``worker`` until ``now + lease``.

        Raises:
            NotClaimable: The action is not ready (not approved, already claimed,
                done, skipped or unknown).
        """
        if self.execution is not ExecutionStatus.READY or self.kind is not ReviewKind.APPROVAL:
            raise NotClaimable(
                f"the action of review {self.id} is {self.execution.value}, not ready",
                review_id=self.id,
            )
        return dataclasses.replace(
            self,
            execution=ExecutionStatus.CLAIMED,
            claimed_by=worker,
            lease_until=now + lease,
        )

    def finish(
        self, worker: str, now: dt.datetime, *, result: Any = None, error: str | None = None
    ) -> Review:
        """This review's action finished by ``worker``: succeeded, or failed with ``error``.

        Raises:
            NotClaimable: ``worker`` does not hold the claim (it lapsed, or another
                process took over).
        """
        if self.execution is not ExecutionStatus.CLAIMED or self.claimed_by != worker:
            raise NotClaimable(
                f"{worker} no longer holds the action of review {self.id} "
                f"(it is {self.execution.value})",
                review_id=self.id,
            )
        return dataclasses.replace(
            self,
            execution=ExecutionStatus.FAILED if error is not None else ExecutionStatus.SUCCEEDED,
            executed_at=now,
            result=result if error is None else None,
            error=error,
            lease_until=None,
        )

    def recover(self, now: dt.datetime) -> Review:
        """This review after its claim's lease lapsed: ready again if the action is
        idempotent, else unknown, for a person to resolve.

        Raises:
            NotClaimable: It is not claimed, or the lease has not lapsed.
        """
        if (
            self.execution is not ExecutionStatus.CLAIMED
            or self.lease_until is None
            or now < self.lease_until
        ):
            raise NotClaimable(f"review {self.id} holds no lapsed claim", review_id=self.id)
        return dataclasses.replace(
            self,
            execution=ExecutionStatus.READY if self.idempotent else ExecutionStatus.UNKNOWN,
            claimed_by=None if self.idempotent else self.claimed_by,
            lease_until=None,
        )


class ReviewDecisionRefused(GovernanceError):
    """A decision or claim on a review was refused. Nothing was changed.

    Attributes:
        review_id: The review.
    """

    def __init__(self, message: str, *, review_id: str) -> None:
        super().__init__(message)
        self.review_id = review_id


class ReviewNotPending(ReviewDecisionRefused):
    """The review is already decided, or has expired."""


class NotAReviewer(ReviewDecisionRefused):
    """The reviewer holds none of the roles that may decide the review."""


class SelfApprovalForbidden(ReviewDecisionRefused):
    """The requester tried to approve their own request, which the policy forbids."""


class AlreadyDecided(ReviewDecisionRefused):
    """The reviewer already approved; another reviewer must give the next approval."""


class PayloadChanged(ReviewDecisionRefused):
    """The payload changed since the reviewer saw it, or since it was approved."""


class NotClaimable(ReviewDecisionRefused):
    """The action is not ready to be claimed, or the claim is no longer held."""
