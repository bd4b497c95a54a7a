"""ada_governance: AI deployed in a governed, measured workflow.

Declare a workflow (trigger, owner, system of record, approved sources, output standard,
actions and their risk boundary, review policy, exception path, metrics, stop rules),
check whether it is a deployment or still adoption mode, and govern every call of the
code that runs it with `governed_workflow` or `governed_run`.
"""

from ._version import __version__
from .actions import Action, RiskBoundary
from .checks import Check
from .clock import Clock, SystemClock
from .exceptions import (
    CheckFailed,
    DeclarationError,
    GovernanceError,
    GovernanceUnavailable,
    NoActiveRun,
    OutputRejected,
    PolicyViolation,
    Problem,
    RequiredSourceNotRead,
    RunRefused,
    StaleSourceError,
    TriggerRefused,
    UnapprovedSourceError,
    UsageError,
    WorkflowNotRunnable,
    WorkflowPaused,
    WorkflowRetired,
)
from .governance import Governance, configure, get_governance
from .measurement import Baseline, Direction, Metric
from .outputs import OnFail, OutputIssue, OutputStandard
from .readiness import DEPLOYMENT_REQUIRES, Element, Readiness, Verdict, readiness
from .records import (
    AuditEvent,
    RunRecord,
    RunStatus,
    SourceRead,
    TriggerEvent,
    WorkflowState,
)
from .registry import WorkflowRegistry, load_workflows
from .retry import RetryPolicy
from .review import FieldRule, OnTimeout, ReviewMode, ReviewPolicy
from .run import ExceptionRecord, ModelCall, Run, current_run, with_current_context
from .runtime import GovernedRun, governed_run, governed_workflow
from .sources import Classification, Source, SourceData, content_hash
from .stops import (
    Budget,
    BudgetUnit,
    BudgetWindow,
    ErrorRate,
    ExceptionVolume,
    KillSwitch,
    RejectionRate,
    RunCap,
    SlaBreachRate,
    StopRule,
)
from .storage import MemoryStore, SQLiteStore, Store, StoreError, open_store
from .workflow import ExceptionPath, Owner, Stage, SystemOfRecord, Trigger, Workflow

__all__ = [
    "Action",
    "AuditEvent",
    "Baseline",
    "Budget",
    "BudgetUnit",
    "BudgetWindow",
    "Check",
    "CheckFailed",
    "Classification",
    "Clock",
    "DEPLOYMENT_REQUIRES",
    "DeclarationError",
    "Direction",
    "Element",
    "ErrorRate",
    "ExceptionPath",
    "ExceptionRecord",
    "ExceptionVolume",
    "FieldRule",
    "Governance",
    "GovernanceError",
    "GovernanceUnavailable",
    "GovernedRun",
    "KillSwitch",
    "MemoryStore",
    "Metric",
    "ModelCall",
    "NoActiveRun",
    "OnFail",
    "OnTimeout",
    "OutputIssue",
    "OutputRejected",
    "OutputStandard",
    "Owner",
    "PolicyViolation",
    "Problem",
    "Readiness",
    "RejectionRate",
    "RequiredSourceNotRead",
    "RetryPolicy",
    "ReviewMode",
    "ReviewPolicy",
    "RiskBoundary",
    "Run",
    "RunCap",
    "RunRecord",
    "RunRefused",
    "RunStatus",
    "SQLiteStore",
    "SlaBreachRate",
    "Source",
    "SourceData",
    "SourceRead",
    "Stage",
    "StaleSourceError",
    "StopRule",
    "Store",
    "StoreError",
    "SystemClock",
    "SystemOfRecord",
    "Trigger",
    "TriggerEvent",
    "TriggerRefused",
    "UnapprovedSourceError",
    "UsageError",
    "Verdict",
    "Workflow",
    "WorkflowNotRunnable",
    "WorkflowPaused",
    "WorkflowRegistry",
    "WorkflowRetired",
    "WorkflowState",
    "__version__",
    "configure",
    "content_hash",
    "current_run",
    "get_governance",
    "governed_run",
    "governed_workflow",
    "load_workflows",
    "open_store",
    "readiness",
    "with_current_context",
]
