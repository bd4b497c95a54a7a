"""ada_governance: AI deployed in a governed, measured workflow.

Declare a workflow (trigger, owner, system of record, approved sources, output standard,
actions and their risk boundary, review policy, exception path, metrics, stop rules) and
check whether it is a deployment or still adoption mode.
"""

from ._version import __version__
from .actions import Action, RiskBoundary
from .exceptions import DeclarationError, GovernanceError, Problem
from .measurement import Baseline, Direction, Metric
from .outputs import OnFail, OutputStandard
from .readiness import DEPLOYMENT_REQUIRES, Element, Readiness, Verdict, readiness
from .registry import WorkflowRegistry, load_workflows
from .review import FieldRule, OnTimeout, ReviewMode, ReviewPolicy
from .sources import Classification, Source
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
from .workflow import ExceptionPath, Owner, Stage, SystemOfRecord, Trigger, Workflow

__all__ = [
    "Action",
    "Baseline",
    "Budget",
    "BudgetUnit",
    "BudgetWindow",
    "Classification",
    "DEPLOYMENT_REQUIRES",
    "DeclarationError",
    "Direction",
    "Element",
    "ErrorRate",
    "ExceptionPath",
    "ExceptionVolume",
    "FieldRule",
    "GovernanceError",
    "KillSwitch",
    "Metric",
    "OnFail",
    "OnTimeout",
    "OutputStandard",
    "Owner",
    "Problem",
    "Readiness",
    "RejectionRate",
    "ReviewMode",
    "ReviewPolicy",
    "RiskBoundary",
    "RunCap",
    "SlaBreachRate",
    "Source",
    "Stage",
    "StopRule",
    "SystemOfRecord",
    "Trigger",
    "Verdict",
    "Workflow",
    "WorkflowRegistry",
    "__version__",
    "load_workflows",
    "readiness",
]
