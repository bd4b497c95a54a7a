"""Every telemetry name ada_governance emits, in one place.

The GenAI conventions are still marked development and have moved out of the core
semantic-conventions package into their own repository, where names keep changing (the
``invoke_workflow`` span is being folded into ``invoke_agent``). We pin the names here;
a test compares them with the constants of the installed
``opentelemetry-semantic-conventions`` where that package still has them.
"""

from __future__ import annotations

from typing import Final

# --- GenAI attributes ---------------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
ERROR_TYPE: Final = "error.type"

# gen_ai.operation.name values
OPERATION_INVOKE_WORKFLOW: Final = "invoke_workflow"
OPERATION_CHAT: Final = "chat"
OPERATION_EXECUTE_TOOL: Final = "execute_tool"

# gen_ai.token.type values
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"

# --- GenAI metrics --------------------------------------------------------------------------
METRIC_INVOKE_WORKFLOW_DURATION: Final = "gen_ai.invoke_workflow.duration"
METRIC_CLIENT_TOKEN_USAGE: Final = "gen_ai.client.token.usage"

# The spec's advisory buckets for GenAI durations (seconds) and token counts.
DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TOKEN_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)

# --- governance attributes (ours) -----------------------------------------------------------
ADA_WORKFLOW_VERSION: Final = "ada.workflow.version"
ADA_WORKFLOW_STAGE: Final = "ada.workflow.stage"
ADA_OWNER: Final = "ada.owner"
ADA_TRIGGER_EVENT: Final = "ada.trigger.event"
ADA_TRIGGER_ID: Final = "ada.trigger.id"
ADA_RUN_ID: Final = "ada.run.id"
ADA_RUN_PARENT_ID: Final = "ada.run.parent_id"
ADA_RUN_STATUS: Final = "ada.run.status"
ADA_SYSTEM_OF_RECORD: Final = "ada.system_of_record"
ADA_OUTCOME_PREFIX: Final = "ada.outcome."
ADA_OUTCOME_REF: Final = "ada.outcome.ref"
ADA_REFUSAL_REASON: Final = "ada.refusal.reason"
ADA_UNGOVERNED: Final = "ada.run.ungoverned"
ADA_FALLBACK_USED: Final = "ada.run.fallback_used"
ADA_ROUTE_TO: Final = "ada.exception.route_to"
ADA_COST_USD: Final = "ada.cost.usd"
ADA_OUTPUT: Final = "ada.output"
ADA_OUTPUT_VALID: Final = "ada.output.valid"
ADA_OUTPUT_ISSUES: Final = "ada.output.issues"

ADA_SOURCE_NAME: Final = "ada.source.name"
ADA_SOURCE_SYSTEM: Final = "ada.source.system"
ADA_SOURCE_CLASSIFICATION: Final = "ada.source.classification"
ADA_SOURCE_RECORD_ID: Final = "ada.source.record_id"
ADA_SOURCE_SHA256: Final = "ada.source.sha256"
ADA_SOURCE_FETCHED_AT: Final = "ada.source.fetched_at"
ADA_ATTEMPT: Final = "ada.attempt"
ADA_ATTEMPTS: Final = "ada.run.attempts"
ADA_CHECK_NAME: Final = "ada.check.name"
ADA_REVIEW_ID: Final = "ada.review.id"
ADA_REVIEW_ROLES: Final = "ada.review.roles"
ADA_REVIEW_DECISION: Final = "ada.review.decision"
ADA_REVIEW_EDITED: Final = "ada.review.edited"
ADA_REVIEWER: Final = "ada.reviewer"
ADA_REVIEW_STATUS: Final = "ada.review.status"
ADA_ACTION_STATUS: Final = "ada.action.status"
ADA_STOP_RULE: Final = "ada.stop_rule"
ADA_FIGURE: Final = "ada.figure"

# span events
EVENT_EXCEPTION_ROUTED: Final = "ada.exception_routed"
EVENT_SOURCE_READ: Final = "ada.source.read"
EVENT_ATTEMPT_FAILED: Final = "ada.attempt_failed"
EVENT_REVIEW_REQUESTED: Final = "ada.review.requested"
EVENT_REVIEW_DECIDED: Final = "ada.review.decided"

# --- governance metrics (ours) --------------------------------------------------------------
METRIC_CYCLE_TIME: Final = "ada.run.cycle_time"
METRIC_RUNS: Final = "ada.runs"
METRIC_EXCEPTIONS: Final = "ada.exceptions"
METRIC_REFUSALS: Final = "ada.refusals"
METRIC_REVIEW_LATENCY: Final = "ada.review.latency"
METRIC_REVIEW_DECISIONS: Final = "ada.review.decisions"
METRIC_STOP_RULE_TRIPS: Final = "ada.stop_rule.trips"
METRIC_WORKFLOW_FIGURE: Final = "ada.workflow.figure"

# Cycle time runs from minutes to days: seconds, doubling from one second to about 12 days.
CYCLE_TIME_BUCKETS: Final = tuple(float(2**n) for n in range(21))
