"""Actions and the review queue at run time: requesting, deciding, claiming, running.

The rules live in `reviews` (pure transitions) and `review.ReviewPolicy`; this module
drives them against a store, once for sync and async code: each operation is written as
steps (generators) that `_engine.drive` and `_engine.adrive` answer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from . import audit
from ._declaration import import_object, import_path_of
from ._engine import WORKFLOWS
from ._limits import check_review_rules
from ._ops import _CALL, _CALL_IN_RUN, _NO_KWARGS, _STORE, Steps, _describe, _new_id
from .actions import Action, RiskBoundary
from .checks import check_reason
from .exceptions import ActionForbidden, CheckFailed, InvalidPayload, UsageError
from .records import AuditEvent
from .review import FieldRule, ReviewMode, ReviewPolicy
from .reviews import (
    ExecutionStatus,
    NotClaimable,
    PayloadChanged,
    Review,
    ReviewKind,
    ReviewNotPending,
    ReviewStatus,
    payload_hash,
    sampled,
)

if TYPE_CHECKING:
    from .governance import Governance
    from .run import Run

__all__ = ["PendingAction", "register_action", "registered_action"]

_REGISTRY: dict[tuple[str, str], tuple[Callable[..., Any], str]] = {}
_JSON = TypeAdapter(Any)
DEFAULT_LEASE = dt.timedelta(minutes=5)
_TERMINAL = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.UNKNOWN,
        ExecutionStatus.SKIPPED,
    }
)


def register_action(workflow: str, action: str, fn: Callable[..., Any], call: str) -> None:
    """Make ``fn`` the code behind ``action`` of ``workflow`` in this process, so approved
    actions can run here (in the approving process, or a worker)."""
    _REGISTRY[(workflow, action)] = (fn, call)


OUTPUT_ACTION = "output"
"""The action of a review that holds an output which failed its standard (``on_fail:
review``): approving it releases the output, as approved or edited."""


def _release_output(payload: Any) -> Any:
    return payload


def registered_action(workflow: str, action: str) -> tuple[Callable[..., Any], str] | None:
    """The code registered for ``action`` of ``workflow`` in this process, if any."""
    if action == OUTPUT_ACTION:
        return (_release_output, "payload")
    return _REGISTRY.get((workflow, action))


def hold_output(
    governance: Governance, run: Run, output: Any, issues: list[Any]
) -> Steps[PendingAction]:
    """Send an output that failed its standard to a person (``on_fail: review``)."""
    workflow = run.workflow
    standard = workflow.output_standard
    data = to_json(output, workflow=workflow.name, action=OUTPUT_ACTION)
    declared = Action(
        name=OUTPUT_ACTION,
        risk=RiskBoundary.REQUIRES_APPROVAL,
        input_schema=standard.schema_ if standard is not None else None,
    )
    now = governance.clock.now()
    review = _new_review(run, declared, data, f"run:{run.id}", now, ReviewKind.APPROVAL, "payload")
    review = dataclasses.replace(
        review, policy={**review.policy, "issues": [str(issue) for issue in issues]}
    )
    event = AuditEvent(
        now,
        audit.REVIEW_REQUESTED,
        workflow.name,
        run.id,
        data={
            "review_id": review.id,
            "action": OUTPUT_ACTION,
            "issues": [str(issue) for issue in issues],
        },
    )
    yield (_STORE, "create_review", (review, (event,)), _NO_KWARGS)
    run._pending.append(review.id)
    if run._telemetry is not None:
        run._telemetry.review_requested(run, review)
    governance._notify("requested", review)
    return PendingAction(review.id, OUTPUT_ACTION, workflow.name, governance)


def worker_name() -> str:
    """This process's name as a claimant: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def to_json(payload: Any, *, workflow: str, action: str) -> Any:
    """The payload as JSON data, since the action may run in another process.

    Raises:
        UsageError: The payload cannot be written as JSON.
    """
    try:
        return _JSON.dump_python(payload, mode="json")
    except Exception as error:
        raise UsageError(
            f"the payload of action {action!r} of {workflow!r} must be JSON data (dicts, "
            f"lists, text, numbers, pydantic models): {_describe(error)}"
        ) from error


def _validated(declared: Action, payload: Any, *, workflow: str, run_id: str | None) -> Any:
    """The payload validated against the action's input schema (the model instance)."""
    schema = declared.input_schema
    if schema is None:
        return payload
    try:
        return schema.model_validate(payload)
    except ValidationError as error:
        problems = tuple(
            f"{'.'.join(map(str, item['loc'])) or 'payload'}: {item['msg']}"
            for item in error.errors(include_url=False)
        )
        raise InvalidPayload(
            f"the payload of action {declared.name!r} fails {schema.__name__}: "
            + "; ".join(problems),
            workflow=workflow,
            run_id=run_id,
            action=declared.name,
            errors=problems,
        ) from None


def needs_review(policy: ReviewPolicy | None, run_id: str, action: str, payload: Any) -> bool:
    """Whether a ``requires_approval`` action is held for a person, per the policy's mode.

    ``always`` holds every one; ``sampled`` holds a share chosen from the run id, so the
    decision can be reproduced; ``conditional`` holds those whose payload meets the
    condition. A workflow with such an action always has a policy (declarations check).
    """
    if policy is None or policy.mode is ReviewMode.ALWAYS:
        return True
    if policy.mode is ReviewMode.SAMPLED:
        return sampled(run_id, policy.sample_rate or 1.0, salt=action)
    condition = policy.condition
    if isinstance(condition, FieldRule):
        return condition.matches(payload)
    return bool(condition(payload)) if condition is not None else True


def _policy_snapshot(policy: ReviewPolicy | None, declared: Action) -> dict[str, Any]:
    data = policy.model_dump(mode="json", exclude={"condition"}) if policy is not None else {}
    data["timeout_seconds"] = policy.timeout.total_seconds() if policy is not None else 86400.0
    schema_path = None
    if declared.input_schema is not None:
        try:
            schema_path = import_path_of(declared.input_schema)
        except ValueError:
            schema_path = None  # a local class: only this process can check edits
    data["input_schema"] = schema_path
    data["has_input_schema"] = declared.input_schema is not None
    data["has_checks"] = bool(declared.checks)
    return data


def _new_review(
    run: Run,
    declared: Action,
    data: Any,
    requester: str,
    now: dt.datetime,
    kind: ReviewKind,
    call: str,
) -> Review:
    workflow = run.workflow
    policy = workflow.review
    span = run._span
    context = span.get_span_context() if span is not None else None
    valid = context is not None and context.is_valid
    digest = payload_hash(data)
    return Review(
        id=_new_id(),
        kind=kind,
        workflow=workflow.name,
        version=workflow.version,
        run_id=run.id,
        action=declared.name,
        requester=requester,
        payload=data,
        payload_sha256=digest,
        original_payload=data,
        roles=policy.reviewers if policy is not None else (),
        approvals_required=policy.approvals_required if policy is not None else 1,
        requester_may_approve=policy.requester_may_approve if policy is not None else False,
        on_timeout=policy.on_timeout.value if policy is not None else "reject",
        escalate_to=policy.escalate_to if policy is not None else (),
        created_at=now,
        deadline=now + (policy.timeout if policy is not None else dt.timedelta(hours=24)),
        call=call,
        idempotent=declared.idempotent,
        trace_id=f"{context.trace_id:032x}" if valid and context is not None else None,
        span_id=f"{context.span_id:016x}" if valid and context is not None else None,
        policy=_policy_snapshot(policy, declared),
    )


class PendingAction:
    """An action waiting for approval: a handle, never a made-up result.

    Attributes:
        review_id: The review that holds it.
        action: The action's name.
        workflow: The workflow's name.
    """

    def __init__(self, review_id: str, action: str, workflow: str, governance: Governance) -> None:
        self.review_id = review_id
        self.action = action
        self.workflow = workflow
        self._governance = governance

    def __repr__(self) -> str:
        return f"<PendingAction {self.action} review={self.review_id}>"

    @property
    def review(self) -> Review:
        """The review as it stands now, read from the store."""
        review = self._governance.store.get_review(self.review_id)
        if review is None:
            raise KeyError(self.review_id)
        return review

    @property
    def status(self) -> ExecutionStatus:
        """Where the action stands now: waiting, ready, claimed, succeeded..."""
        return self.review.execution

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> Any:
        """Wait until the action has run, failed, or will never run; return the review.

        In async code, ``await handle.wait(timeout)``; in sync code it blocks. The
        review's ``execution`` says what happened and ``result`` holds what the action
        returned.

        Raises:
            TimeoutError: It is still undecided or unfinished after ``timeout`` seconds.
        """
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._wait_blocking(timeout, poll)
        return self._wait_async(timeout, poll)

    def _wait_blocking(self, timeout: float | None, poll: float) -> Review:
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            review = self.review
            if is_terminal(review):
                return review
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"review {self.review_id} ({self.action}) is {review.status.value}, its "
                    f"action {review.execution.value}, after {timeout} s"
                )
            time.sleep(poll)

    async def _wait_async(self, timeout: float | None, poll: float) -> Review:
        import asyncio
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            review = await self._governance.store.aget_review(self.review_id)
            if review is None:
                raise KeyError(self.review_id)
            if is_terminal(review):
                return review
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"review {self.review_id} ({self.action}) is {review.status.value}, its "
                    f"action {review.execution.value}, after {timeout} s"
                )
            await asyncio.sleep(poll)


def request(
    governance: Governance,
    run: Run,
    name: str,
    fn: Callable[..., Any],
    payload: Any,
    *,
    call: str,
    requester: str | None,
) -> Steps[Any]:
    """Do, queue or refuse an action inside ``run``, as its risk boundary says.

    Returns the action's result (done now) or a `PendingAction` (held for review).
    """
    workflow = run.workflow
    declared = workflow.action(name)
    now = governance.clock.now()
    if declared is None or declared.risk is RiskBoundary.MANUAL_ONLY:
        why = (
            "is not declared by the workflow"
            if declared is None
            else "is manual only: a person does it outside the workflow"
        )
        error = ActionForbidden(
            f"action {name!r} {why}", workflow=workflow.name, run_id=run.id, action=name
        )
        run._violations.append(error)
        raise error
    data = to_json(payload, workflow=workflow.name, action=name)
    value = _validated(declared, payload, workflow=workflow.name, run_id=run.id)
    if declared.input_schema is not None and not isinstance(payload, BaseModel):
        # A dict payload is handed to the action as the schema's instance.
        payload = value if call == "payload" else payload
    for check in declared.checks:
        try:
            reason = check_reason((yield (_CALL_IN_RUN, (check.fn, run), (payload,), _NO_KWARGS)))
        except Exception as exc:
            reason = f"the check raised {_describe(exc)}"
        if reason is not None:
            raise CheckFailed(
                f"check {check.name!r} refused action {name!r}: {reason}",
                workflow=workflow.name,
                run_id=run.id,
                check=check.name,
                why=reason,
            )
    who = requester or f"run:{run.id}"
    if declared.risk is RiskBoundary.REQUIRES_APPROVAL and needs_review(
        workflow.review, run.id, name, data
    ):
        review = _new_review(run, declared, data, who, now, ReviewKind.APPROVAL, call)
        event = AuditEvent(
            now,
            audit.REVIEW_REQUESTED,
            workflow.name,
            run.id,
            actor=who,
            data={"review_id": review.id, "action": name, "payload_sha256": review.payload_sha256},
        )
        yield (_STORE, "create_review", (review, (event,)), _NO_KWARGS)
        run._pending.append(review.id)
        if run._telemetry is not None:
            run._telemetry.review_requested(run, review)
        governance._notify("requested", review)
        return PendingAction(review.id, name, workflow.name, governance)
    args, kwargs = ((payload,), _NO_KWARGS) if call == "payload" else ((), payload)
    telemetry = run._telemetry
    span = telemetry.start_child(run, f"execute_tool {name}", tool=name) if telemetry else None
    try:
        result = yield (_CALL_IN_RUN, (fn, run), args, kwargs)
    except BaseException as error:
        if telemetry is not None:
            telemetry.end_child(span, error)
        raise
    finally:
        run._side_effects += 1  # it ran, or began to: a retry must not run it again
    if telemetry is not None:
        telemetry.end_child(span, None)
    run._kept_events.append(
        AuditEvent(
            governance.clock.now(),
            audit.ACTION_EXECUTED,
            workflow.name,
            run.id,
            data={"action": name, "payload_sha256": payload_hash(data), "approval": "none"},
        )
    )
    policy = workflow.review
    if (
        policy is not None
        and policy.quality_sample_rate is not None
        and sampled(run.id, policy.quality_sample_rate, salt=f"quality:{name}")
    ):
        sample = _new_review(run, declared, data, who, now, ReviewKind.SAMPLE, call)
        sample = Review.from_dict(
            {
                **sample.to_dict(),
                "execution": ExecutionStatus.SUCCEEDED.value,
                "result": _safe_json(result),
                "executed_at": now.isoformat(),
            }
        )
        event = AuditEvent(
            now,
            audit.REVIEW_REQUESTED,
            workflow.name,
            run.id,
            actor=who,
            data={"review_id": sample.id, "action": name, "kind": "sample"},
        )
        yield (_STORE, "create_review", (sample, (event,)), _NO_KWARGS)
        governance._notify("requested", sample)
    return result


def _safe_json(value: Any) -> Any:
    try:
        return _JSON.dump_python(value, mode="json")
    except Exception:
        return repr(value)


# --- deciding ---------------------------------------------------------------------------------


def decided_events(kind: str, actor: str) -> Callable[[Review, Review], list[AuditEvent]]:
    """The audit events for a review that changed from ``before`` to ``after``."""

    def events(before: Review, after: Review) -> list[AuditEvent]:
        decision = after.decisions[-1] if after.decisions else None
        data: dict[str, Any] = {
            "review_id": after.id,
            "action": after.action,
            "status": after.status.value,
            "payload_sha256": after.payload_sha256,
        }
        if decision is not None:
            data.update(verdict=decision.verdict, edited=decision.edited, comment=decision.comment)
        if after.edited and not before.edited:
            data["diff"] = after.diff()
        at = decision.at if decision is not None else after.created_at
        return [AuditEvent(at, kind, after.workflow, after.run_id, actor=actor, data=data)]

    return events


def validate_edit(review: Review, edits: Any) -> Any:
    """A reviewer's edited payload, as JSON data, checked as the action's own payload
    would be: against its input schema and its checks.

    The declaration is used when this process governs the workflow; otherwise the
    schema's import path. An edit that cannot be checked here (a schema that cannot be
    imported, checks that only the app's process has) is refused rather than let through.

    Raises:
        InvalidPayload: The edit fails the schema, or cannot be checked here.
        CheckFailed: One of the action's checks refuses the edited payload.
    """
    data = to_json(edits, workflow=review.workflow, action=review.action)
    known = WORKFLOWS.get(review.workflow)
    declared = known.action(review.action) if known is not None else None
    if known is not None and review.action == OUTPUT_ACTION:
        standard = known.output_standard
        declared = Action(
            name=OUTPUT_ACTION,
            risk=RiskBoundary.REQUIRES_APPROVAL,
            input_schema=standard.schema_ if standard is not None else None,
        )

    def cannot(why: str) -> InvalidPayload:
        return InvalidPayload(
            f"cannot check the edit of review {review.id} here: {why}; approve it from the "
            "app that governs the workflow, or without edits",
            workflow=review.workflow,
            run_id=review.run_id,
            action=review.action,
            errors=(why,),
        )

    if declared is None:
        schema_path = review.policy.get("input_schema")
        if review.policy.get("has_checks"):
            raise cannot("the action's checks are not known in this process")
        if schema_path:
            try:
                schema = import_object(schema_path)
            except ValueError as error:
                raise cannot(str(error)) from None
            declared = Action(name=review.action, risk="requires_approval", input_schema=schema)
        elif review.policy.get("has_input_schema"):
            raise cannot("the action's input schema has no import path")
        else:
            return data
    value = _validated(declared, data, workflow=review.workflow, run_id=review.run_id)
    for check in declared.checks:
        try:
            result = check.fn(value if review.call == "payload" else data)
            reason = (
                check_reason(result)
                if not inspect.isawaitable(result)
                else ("the check is async; decide with the async API")
            )
        except Exception as exc:
            reason = f"the check raised {_describe(exc)}"
        if reason is not None:
            raise CheckFailed(
                f"check {check.name!r} refused the edited payload of review {review.id}: {reason}",
                workflow=review.workflow,
                run_id=review.run_id,
                check=check.name,
                why=reason,
            )
    return data


def roles_for(governance: Governance, reviewer: str, roles: Any) -> tuple[str, ...]:
    """The roles ``reviewer`` decides with: from the governance's directory if it has
    one, else as the caller asserts them."""
    directory = governance.reviewer_roles
    if directory is not None:
        found = directory(reviewer) if callable(directory) else directory.get(reviewer, ())
        return (found,) if isinstance(found, str) else tuple(found)
    if roles is None:
        raise UsageError(
            "say which roles the reviewer holds (roles=...), or give the governance a "
            "reviewer directory (Governance(reviewer_roles=...))"
        )
    return (roles,) if isinstance(roles, str) else tuple(roles)


# --- running approved actions ----------------------------------------------------------------


def execute(
    governance: Governance,
    review: Review,
    fn: Callable[..., Any],
    worker: str,
    lease: dt.timedelta,
    *,
    asynchronous: bool,
) -> Steps[Review | None]:
    """Claim an approved action and run it exactly once; return the finished review, or
    ``None`` when it could not be claimed (another process has it, or it is not ready),
    its workflow is paused, or its code is async and this is sync code (it stays ready
    for an async caller)."""
    if not asynchronous and inspect.iscoroutinefunction(fn):
        return None
    state = yield (_STORE, "get_state", (review.workflow,), _NO_KWARGS)
    if state is not None and effective_stage_is_stopped(state.stage):
        return None
    now = governance.clock.now()
    try:
        claimed = yield (
            _STORE,
            "update_review",
            (review.id, lambda r: r.claim(worker, now, lease), None),
            _NO_KWARGS,
        )
    except NotClaimable:
        return None
    return (yield from run_claimed(governance, claimed, fn, worker))


def run_claimed(
    governance: Governance, claimed: Review, fn: Callable[..., Any], worker: str
) -> Steps[Review]:
    """Run an action ``worker`` has claimed, once, and record how it went."""
    telemetry = governance.telemetry
    span = telemetry.start_action(claimed)
    error: str | None = None
    result: Any = None
    if not claimed.approved_payload:
        # The stored payload is not the one the approvals were given for: never run it.
        error = _describe(
            PayloadChanged(
                f"the payload of review {claimed.id} is not the one its reviewers approved",
                review_id=claimed.id,
            )
        )
    else:
        payload = claimed.payload
        schema_path = claimed.policy.get("input_schema")
        try:
            if schema_path and claimed.call == "payload":
                payload = import_object(schema_path).model_validate(payload)
            args, kwargs = ((payload,), _NO_KWARGS) if claimed.call == "payload" else ((), payload)
            result = _safe_json((yield (_CALL, fn, args, kwargs)))
        except Exception as exc:
            error = _describe(exc)
    finished_at = governance.clock.now()
    kind = audit.ACTION_FAILED if error is not None else audit.ACTION_EXECUTED
    try:
        finished: Review = yield (
            _STORE,
            "update_review",
            (
                claimed.id,
                lambda r: r.finish(worker, finished_at, result=result, error=error),
                decided_events(kind, worker),
            ),
            _NO_KWARGS,
        )
    except NotClaimable:
        # The lease lapsed while the action ran and another process settled it (as
        # unknown): leave that, and record what actually happened for whoever resolves it.
        late = AuditEvent(
            finished_at,
            audit.ACTION_FINISHED_LATE,
            claimed.workflow,
            claimed.run_id,
            actor=worker,
            data={
                "review_id": claimed.id,
                "action": claimed.action,
                "error": error,
                "result": result,
            },
        )
        yield (_STORE, "append_audit", (late,), _NO_KWARGS)
        finished = yield from _get(claimed.id)
    telemetry.end_action(span, finished)
    return finished


def effective_stage_is_stopped(stage: Any) -> bool:
    """Whether a stored stage stops pending actions from running (paused, retired)."""
    return getattr(stage, "value", stage) in ("paused", "retired")


def is_terminal(review: Review) -> bool:
    """Whether the review's action has run, failed, or will never run."""
    return review.execution in _TERMINAL


# --- the queue's operations, as steps --------------------------------------------------------


def _get(review_id: str) -> Steps[Review]:
    review = yield (_STORE, "get_review", (review_id,), _NO_KWARGS)
    if review is None:
        raise KeyError(f"no review {review_id!r} in this store")
    return review  # type: ignore[no-any-return]


def _run_here(
    governance: Governance, review: Review, worker: str, asynchronous: bool
) -> Steps[Review]:
    """Run an approved action now if this process has its code; else leave it ready."""
    found = registered_action(review.workflow, review.action)
    if review.execution is not ExecutionStatus.READY or found is None:
        return review
    finished = yield from execute(
        governance, review, found[0], worker, DEFAULT_LEASE, asynchronous=asynchronous
    )
    return finished if finished is not None else review


def approve(
    governance: Governance,
    review_id: str,
    reviewer: str,
    roles: tuple[str, ...],
    *,
    edits: Any,
    comment: str | None,
    expected_sha256: str | None,
    asynchronous: bool = False,
) -> Steps[Review]:
    """Approve a review (with edits); once approved, run the action here if registered."""
    before = yield from _get(review_id)
    data = validate_edit(before, edits) if edits is not None else None
    now = governance.clock.now()
    after: Review = yield (
        _STORE,
        "update_review",
        (
            review_id,
            lambda r: r.approve(
                reviewer, roles, now, edits=data, comment=comment, expected_sha256=expected_sha256
            ),
            decided_events(audit.REVIEW_DECIDED, reviewer),
        ),
        _NO_KWARGS,
    )
    governance.telemetry.review_decided(after)
    governance._notify("decided", after)
    return (yield from _run_here(governance, after, worker_name(), asynchronous))


def reject(
    governance: Governance, review_id: str, reviewer: str, roles: tuple[str, ...], reason: str
) -> Steps[Review]:
    """Reject a review: its action never runs."""
    now = governance.clock.now()
    after: Review = yield (
        _STORE,
        "update_review",
        (
            review_id,
            lambda r: r.reject(reviewer, roles, now, reason=reason),
            decided_events(audit.REVIEW_DECIDED, reviewer),
        ),
        _NO_KWARGS,
    )
    governance.telemetry.review_decided(after)
    governance._notify("decided", after)
    declared = WORKFLOWS.get(after.workflow)
    if declared is not None:
        yield from check_review_rules(governance, declared, now)
    return after


def judge(
    governance: Governance,
    review_id: str,
    reviewer: str,
    roles: tuple[str, ...],
    correct: bool,
    comment: str | None,
) -> Steps[Review]:
    """Record a verdict on an autonomous action sampled for review after the fact."""
    now = governance.clock.now()
    after: Review = yield (
        _STORE,
        "update_review",
        (
            review_id,
            lambda r: r.judge(reviewer, roles, now, correct=correct, comment=comment),
            decided_events(audit.REVIEW_DECIDED, reviewer),
        ),
        _NO_KWARGS,
    )
    governance.telemetry.review_decided(after)
    governance._notify("decided", after)
    return after


def expire_overdue(governance: Governance, now: dt.datetime) -> Steps[list[Review]]:
    """Apply every overdue review's ``on_timeout``: escalate, reject, or pause."""
    from .records import WorkflowState
    from .workflow import Stage

    pending: list[Review] = yield (
        _STORE,
        "list_reviews",
        (),
        {"status": ReviewStatus.PENDING},
    )
    changed = []
    for review in pending:
        if review.deadline > now:
            continue
        timeout = dt.timedelta(seconds=float(review.policy.get("timeout_seconds", 86400.0)))
        try:
            after: Review = yield (
                _STORE,
                "update_review",
                (review.id, lambda r, t=timeout: r.expire(now, t), _timeout_events(now)),
                _NO_KWARGS,
            )
        except (NotClaimable, ReviewNotPending):
            continue  # decided meanwhile, by someone else
        changed.append(after)
        escalated = after.status is ReviewStatus.PENDING
        governance._notify("escalated" if escalated else "expired", after)
        if not escalated:
            governance.telemetry.review_decided(after)
        if (
            not escalated
            and after.on_timeout == "pause_workflow"
            and after.kind is ReviewKind.APPROVAL
        ):
            current = yield (_STORE, "get_state", (after.workflow,), _NO_KWARGS)
            if current is not None and current.stage in (Stage.PAUSED, Stage.RETIRED):
                continue  # already stopped: a timeout never un-retires a workflow
            reason = f"review {after.id} ({after.action}) was not decided by its deadline"
            state = WorkflowState(after.workflow, Stage.PAUSED, now, "review-timeout", reason)
            event = AuditEvent(
                now,
                audit.STAGE_CHANGED,
                after.workflow,
                actor="review-timeout",
                data={"stage": "paused", "reason": reason},
            )
            yield (_STORE, "set_state", (state, event), _NO_KWARGS)
            audit.log_event(event)
    return changed


def _timeout_events(now: dt.datetime) -> Callable[[Review, Review], list[AuditEvent]]:
    def events(before: Review, after: Review) -> list[AuditEvent]:
        kind = (
            audit.REVIEW_ESCALATED if after.status is ReviewStatus.PENDING else audit.REVIEW_EXPIRED
        )
        data = {
            "review_id": after.id,
            "action": after.action,
            "roles": list(after.roles),
            "deadline": after.deadline.isoformat(),
            "on_timeout": after.on_timeout,
        }
        return [AuditEvent(now, kind, after.workflow, after.run_id, actor="deadline", data=data)]

    return events


def run_actions(
    governance: Governance,
    worker: str,
    lease: dt.timedelta,
    limit: int | None,
    asynchronous: bool = False,
) -> Steps[list[Review]]:
    """Settle lapsed claims, then claim and run every ready action whose code is
    registered in this process. Returns the reviews this call finished or settled."""
    now = governance.clock.now()
    done: list[Review] = []
    claimed: list[Review] = yield (
        _STORE,
        "list_reviews",
        (),
        {"execution": ExecutionStatus.CLAIMED},
    )
    for review in claimed:
        if review.lease_until is None or review.lease_until > now:
            continue
        try:
            settled: Review = yield (
                _STORE,
                "update_review",
                (review.id, lambda r: r.recover(now), _recovery_events(now)),
                _NO_KWARGS,
            )
        except NotClaimable:
            continue
        if settled.execution is ExecutionStatus.UNKNOWN:
            done.append(settled)
    # The actions this process can run: registered code (sync only, unless async), and
    # held outputs of the workflows it governs; none of a paused or retired workflow.
    runnable: list[tuple[str, str]] = []
    code: dict[tuple[str, str], Callable[..., Any]] = {}
    known = [*_REGISTRY, *((name, OUTPUT_ACTION) for name in WORKFLOWS)]
    states: dict[str, Any] = {}
    for key in known:
        found = registered_action(*key)
        if found is None or (not asynchronous and inspect.iscoroutinefunction(found[0])):
            continue
        if key[0] not in states:
            states[key[0]] = yield (_STORE, "get_state", (key[0],), _NO_KWARGS)
        state = states[key[0]]
        if state is not None and effective_stage_is_stopped(state.stage):
            continue
        runnable.append(key)
        code[key] = found[0]
    if not runnable:
        return done
    room = None if limit is None else max(0, limit - len(done))
    taken: list[Review] = yield (
        _STORE,
        "claim_ready",
        (worker, governance.clock.now(), lease, runnable, room),
        _NO_KWARGS,
    )
    for review in taken:
        finished = yield from run_claimed(
            governance, review, code[(review.workflow, review.action)], worker
        )
        done.append(finished)
    return done


def _recovery_events(now: dt.datetime) -> Callable[[Review, Review], list[AuditEvent]]:
    def events(before: Review, after: Review) -> list[AuditEvent]:
        if after.execution is not ExecutionStatus.UNKNOWN:
            return []
        data = {
            "review_id": after.id,
            "action": after.action,
            "claimed_by": before.claimed_by,
            "note": "the claim lapsed before the action said how it went; it may or may "
            "not have run, and will not run again by itself",
        }
        return [AuditEvent(now, audit.ACTION_UNKNOWN, after.workflow, after.run_id, data=data)]

    return events
