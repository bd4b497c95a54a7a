"""The adoption-vs-deployment check: which elements of a deployment a workflow names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .workflow import Workflow

__all__ = ["DEPLOYMENT_REQUIRES", "Element", "Readiness", "Verdict", "readiness"]


class Element(str, Enum):
    """An element of a deployed workflow, from the seed's list."""

    WORKFLOW = "workflow"
    TRIGGER = "trigger"
    OWNER = "owner"
    SYSTEM_OF_RECORD = "system_of_record"
    SOURCES = "sources"
    OUTPUT_STANDARD = "output_standard"
    REVIEW = "review"
    EXCEPTION_PATH = "exception_path"
    MEASUREMENT = "measurement"
    STOP_RULE = "stop_rule"

    @property
    def label(self) -> str:
        """The element as a person says it (``"business owner"``)."""
        return _LABELS[self]


_LABELS = {
    Element.WORKFLOW: "named workflow",
    Element.TRIGGER: "trigger",
    Element.OWNER: "business owner",
    Element.SYSTEM_OF_RECORD: "system of record",
    Element.SOURCES: "approved source data",
    Element.OUTPUT_STANDARD: "output standard",
    Element.REVIEW: "human review rule",
    Element.EXCEPTION_PATH: "exception handling",
    Element.MEASUREMENT: "measurement with a baseline",
    Element.STOP_RULE: "stop rule",
}

_NAMED: dict[Element, Callable[[Workflow], bool]] = {
    Element.WORKFLOW: lambda w: bool(w.name),
    Element.TRIGGER: lambda w: w.trigger is not None,
    Element.OWNER: lambda w: w.owner is not None,
    Element.SYSTEM_OF_RECORD: lambda w: w.system_of_record is not None,
    Element.SOURCES: lambda w: bool(w.sources),
    Element.OUTPUT_STANDARD: lambda w: w.output_standard is not None,
    Element.REVIEW: lambda w: w.review is not None,
    Element.EXCEPTION_PATH: lambda w: w.exception_path is not None,
    Element.MEASUREMENT: lambda w: any(m.baseline is not None for m in w.metrics),
    Element.STOP_RULE: lambda w: bool(w.stop_rules),
}

DEPLOYMENT_REQUIRES: tuple[Element, ...] = (
    Element.WORKFLOW,
    Element.TRIGGER,
    Element.SYSTEM_OF_RECORD,
    Element.REVIEW,
    Element.MEASUREMENT,
    Element.OWNER,
)
"""The elements without which a workflow is still adoption mode: the seed's "if the
company cannot name the workflow, trigger, system of record, review point, and metric",
and the business owner who answers for it."""


class Verdict(str, Enum):
    """Whether a workflow is deployed or still people using AI informally."""

    DEPLOYMENT = "deployment"
    ADOPTION = "adoption"


@dataclass(frozen=True)
class Readiness:
    """Which elements a workflow names, and the verdict.

    Attributes:
        workflow: The workflow's name.
        version: Its version.
        elements: Each element, and whether the declaration names it.
        verdict: ``deployment`` only when every element in ``DEPLOYMENT_REQUIRES`` is
            named; otherwise ``adoption``.
        missing: Every element not named, in the seed's order.
        blocking: The missing elements that keep the verdict at ``adoption``.
    """

    workflow: str
    version: str
    elements: Mapping[Element, bool]
    verdict: Verdict
    missing: tuple[Element, ...]
    blocking: tuple[Element, ...]

    @property
    def deployed(self) -> bool:
        """Whether the verdict is ``deployment``."""
        return self.verdict is Verdict.DEPLOYMENT

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data."""
        return {
            "workflow": self.workflow,
            "version": self.version,
            "verdict": self.verdict.value,
            "elements": {element.value: named for element, named in self.elements.items()},
            "missing": [element.value for element in self.missing],
            "blocking": [element.value for element in self.blocking],
        }


def readiness(workflow: Workflow) -> Readiness:
    """Say which elements of a deployment ``workflow`` names, and whether it is deployed.

    Args:
        workflow: The declaration to check.

    Returns:
        The elements, the verdict, and what is missing.
    """
    elements = {element: _NAMED[element](workflow) for element in Element}
    missing = tuple(element for element, named in elements.items() if not named)
    blocking = tuple(element for element in DEPLOYMENT_REQUIRES if not elements[element])
    return Readiness(
        workflow=workflow.name,
        version=workflow.version,
        elements=elements,
        verdict=Verdict.ADOPTION if blocking else Verdict.DEPLOYMENT,
        missing=missing,
        blocking=blocking,
    )
