"""The telemetry names in ``ada_governance._semconv`` against the installed
``opentelemetry-semantic-conventions`` and against the telemetry documentation.

The GenAI conventions are still in development and keep moving, so the library pins its
names; these tests say when the pinned names and the package's constants part ways. A
constant the installed package does not have (any more) is skipped, naming it.
"""

from __future__ import annotations

import importlib
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from ada_governance import _semconv as sc

GEN_AI = "opentelemetry.semconv._incubating.attributes.gen_ai_attributes"
GEN_AI_METRICS = "opentelemetry.semconv._incubating.metrics.gen_ai_metrics"
ERROR = "opentelemetry.semconv.attributes.error_attributes"

# Our constant -> where the semantic-conventions package keeps it. Several places for one
# name are alternatives, tried in order (the package has renamed some enum members).
UPSTREAM: dict[str, tuple[tuple[str, str], ...]] = {
    "GEN_AI_OPERATION_NAME": ((GEN_AI, "GEN_AI_OPERATION_NAME"),),
    "GEN_AI_WORKFLOW_NAME": ((GEN_AI, "GEN_AI_WORKFLOW_NAME"),),
    "GEN_AI_PROVIDER_NAME": ((GEN_AI, "GEN_AI_PROVIDER_NAME"),),
    "GEN_AI_REQUEST_MODEL": ((GEN_AI, "GEN_AI_REQUEST_MODEL"),),
    "GEN_AI_USAGE_INPUT_TOKENS": ((GEN_AI, "GEN_AI_USAGE_INPUT_TOKENS"),),
    "GEN_AI_USAGE_OUTPUT_TOKENS": ((GEN_AI, "GEN_AI_USAGE_OUTPUT_TOKENS"),),
    "GEN_AI_TOKEN_TYPE": ((GEN_AI, "GEN_AI_TOKEN_TYPE"),),
    "GEN_AI_INPUT_MESSAGES": ((GEN_AI, "GEN_AI_INPUT_MESSAGES"),),
    "GEN_AI_OUTPUT_MESSAGES": ((GEN_AI, "GEN_AI_OUTPUT_MESSAGES"),),
    "GEN_AI_TOOL_NAME": ((GEN_AI, "GEN_AI_TOOL_NAME"),),
    "ERROR_TYPE": ((ERROR, "ERROR_TYPE"),),
    "OPERATION_INVOKE_WORKFLOW": ((GEN_AI, "GenAiOperationNameValues.INVOKE_WORKFLOW"),),
    "OPERATION_CHAT": ((GEN_AI, "GenAiOperationNameValues.CHAT"),),
    "OPERATION_EXECUTE_TOOL": ((GEN_AI, "GenAiOperationNameValues.EXECUTE_TOOL"),),
    "TOKEN_TYPE_INPUT": ((GEN_AI, "GenAiTokenTypeValues.INPUT"),),
    # Older releases call the "output" member COMPLETION.
    "TOKEN_TYPE_OUTPUT": (
        (GEN_AI, "GenAiTokenTypeValues.OUTPUT"),
        (GEN_AI, "GenAiTokenTypeValues.COMPLETION"),
    ),
    "METRIC_CLIENT_TOKEN_USAGE": ((GEN_AI_METRICS, "GEN_AI_CLIENT_TOKEN_USAGE"),),
    "METRIC_INVOKE_WORKFLOW_DURATION": ((GEN_AI_METRICS, "GEN_AI_INVOKE_WORKFLOW_DURATION"),),
}

DOC = Path(__file__).resolve().parent.parent / "docs" / "telemetry.md"


def upstream(places: tuple[tuple[str, str], ...]) -> Any:
    """The first of ``places`` the installed package has, as a plain value; else skip."""
    for module_name, path in places:
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError:
            continue
        for part in path.split("."):
            found = getattr(found, part, None)
            if found is None:
                break
        if found is not None:
            return found.value if isinstance(found, Enum) else found
    missing = " or ".join(f"{module}.{path}" for module, path in places)
    pytest.skip(f"the installed opentelemetry-semantic-conventions has no {missing}")


def semconv_strings() -> dict[str, str]:
    """Every telemetry name in ``_semconv``: its text constants, by constant name."""
    return {
        name: value
        for name, value in vars(sc).items()
        if name.isupper() and not name.startswith("_") and isinstance(value, str)
    }


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_pinned_genai_name_matches_the_semantic_conventions(name: str) -> None:
    """Each pinned GenAI name equals the installed semantic-conventions constant."""
    assert getattr(sc, name) == upstream(UPSTREAM[name])


def test_every_genai_name_is_compared_with_the_semantic_conventions() -> None:
    """Every GenAI and standard name in ``_semconv`` is in the comparison table."""
    ours = {
        name
        for name, value in semconv_strings().items()
        if value.startswith("gen_ai.")
        or name.startswith(("GEN_AI_", "OPERATION_", "TOKEN_TYPE_"))
        or name == "ERROR_TYPE"
    }
    assert ours <= set(UPSTREAM), sorted(ours - set(UPSTREAM))
    assert set(UPSTREAM) <= set(semconv_strings()), sorted(set(UPSTREAM) - set(semconv_strings()))


def test_governance_names_are_namespaced_under_ada() -> None:
    """Every name of ours (not from the conventions) is under the ``ada.`` namespace."""
    ours = {name: value for name, value in semconv_strings().items() if name not in UPSTREAM}
    assert ours
    assert {name: value for name, value in ours.items() if not value.startswith("ada.")} == {}


@pytest.mark.skipif(
    not DOC.exists(),
    reason="docs/telemetry.md is not written yet; this test runs once it exists",
)
def test_every_name_is_documented() -> None:
    """Every telemetry name in ``_semconv`` appears in docs/telemetry.md."""
    text = DOC.read_text(encoding="utf-8")
    missing = {name: value for name, value in semconv_strings().items() if value not in text}
    assert missing == {}
