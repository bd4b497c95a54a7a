"""The adoption-vs-deployment check."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ada_governance import (
    DEPLOYMENT_REQUIRES,
    Element,
    Verdict,
    Workflow,
    readiness,
)

FULL: dict[str, Any] = {
    "name": "full",
    "owner": {"name": "Dana"},
    "trigger": {"events": ["form_fill"]},
    "system_of_record": "CRM",
    "sources": [{"name": "crm.lead", "system": "CRM"}],
    "output_standard": {"on_fail": "raise"},
    "review": {"reviewers": ["sdr"]},
    "exception_path": {"route_to": "sdr_lead"},
    "metrics": [
        {
            "name": "response_time",
            "unit": "s",
            "direction": "decrease",
            "baseline": {"value": 10, "sample_size": 5, "measured_at": dt.date(2026, 1, 1)},
        }
    ],
    "stop_rules": [{"kind": "kill_switch"}],
}

ELEMENT_FIELD = {
    Element.TRIGGER: "trigger",
    Element.OWNER: "owner",
    Element.SYSTEM_OF_RECORD: "system_of_record",
    Element.SOURCES: "sources",
    Element.OUTPUT_STANDARD: "output_standard",
    Element.REVIEW: "review",
    Element.EXCEPTION_PATH: "exception_path",
    Element.MEASUREMENT: "metrics",
    Element.STOP_RULE: "stop_rules",
}


def test_fully_declared_workflow_is_deployment() -> None:
    """A workflow naming every element is a deployment with nothing missing."""
    result = readiness(Workflow(**FULL))
    assert result.verdict is Verdict.DEPLOYMENT
    assert result.deployed
    assert all(result.elements.values())
    assert result.missing == ()
    assert result.blocking == ()


def test_bare_workflow_is_adoption_listing_what_is_missing() -> None:
    """A workflow with only a name is adoption mode and lists every missing element."""
    result = readiness(Workflow(name="bare"))
    assert result.verdict is Verdict.ADOPTION
    assert result.elements[Element.WORKFLOW] is True
    assert set(result.missing) == set(Element) - {Element.WORKFLOW}
    assert result.blocking == tuple(e for e in DEPLOYMENT_REQUIRES if e is not Element.WORKFLOW)


def test_deployment_requires_the_seeds_elements() -> None:
    """The verdict needs workflow, trigger, system of record, review, metric and owner."""
    assert set(DEPLOYMENT_REQUIRES) == {
        Element.WORKFLOW,
        Element.TRIGGER,
        Element.SYSTEM_OF_RECORD,
        Element.REVIEW,
        Element.MEASUREMENT,
        Element.OWNER,
    }


@pytest.mark.parametrize("element", list(ELEMENT_FIELD), ids=lambda e: e.value)
def test_each_element_is_detected_and_only_required_ones_block(element: Element) -> None:
    """Removing one element marks exactly it missing; the verdict drops only if it is required."""
    data = {key: value for key, value in FULL.items() if key != ELEMENT_FIELD[element]}
    result = readiness(Workflow(**data))
    assert result.missing == (element,)
    assert result.elements[element] is False
    expected = Verdict.ADOPTION if element in DEPLOYMENT_REQUIRES else Verdict.DEPLOYMENT
    assert result.verdict is expected
    assert result.blocking == ((element,) if element in DEPLOYMENT_REQUIRES else ())


def test_metric_without_baseline_is_not_measurement() -> None:
    """A metric counts as measurement only when it has a baseline."""
    data = dict(FULL, metrics=[{"name": "m", "unit": "s", "direction": "decrease"}])
    result = readiness(Workflow(**data))
    assert result.elements[Element.MEASUREMENT] is False
    assert result.verdict is Verdict.ADOPTION
    assert result.blocking == (Element.MEASUREMENT,)


def test_to_dict_is_json_ready() -> None:
    """The result serialises to plain data naming elements by value."""
    data = readiness(Workflow(name="bare", trigger={"event": "x"})).to_dict()
    assert data["verdict"] == "adoption"
    assert data["elements"]["trigger"] is True
    assert "owner" in data["missing"]
    assert "sources" not in data["blocking"]


def test_every_element_has_a_label() -> None:
    """Each element has the wording a person would use."""
    assert Element.OWNER.label == "business owner"
    assert len({element.label for element in Element}) == len(Element)
