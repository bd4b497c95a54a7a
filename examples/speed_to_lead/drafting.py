"""A deterministic, local stand-in for the model call that drafts a follow-up.

The example runs with no network and no API key, so this function plays the model: it
writes the same draft for the same lead every time, and reports token counts and a cost
the way a real client's usage would, so the ledger has real numbers to add up.
"""

from __future__ import annotations

from typing import Any

MODEL = "local-drafter-1"
PROVIDER = "example"
USD_PER_1K_TOKENS = 1.5  # priced like a large model with a long prompt


def draft_follow_up(
    lead: dict[str, Any], slot: str, issues: tuple[Any, ...] = ()
) -> tuple[dict[str, Any], int, int, float]:
    """Draft a follow-up for ``lead``; return the draft, input and output tokens, and cost.

    Like a model given an old template, it leaves a placeholder in the first draft for a
    lead marked ``template: legacy``; told of the issue (``issues``), it fixes it, as a
    model asked again with the validator's findings would.
    """
    first_name = lead["name"].split()[0]
    prompt = f"Write a short follow-up to {first_name} about {lead['interest']}; offer {slot}."
    if issues:
        prompt += " Fix: " + ", ".join(str(issue) for issue in issues)
    greeting = "{first_name}" if lead.get("template") == "legacy" and not issues else first_name
    body = (
        f"Hi {greeting}, thanks for your interest in {lead['interest']}. "
        f"Would {slot} work for a 20-minute call to walk through it together?"
    )
    draft = {
        "lead_id": lead["id"],
        "to": lead["email"],
        "subject": f"Your {lead['interest']} enquiry",
        "body": body,
        "proposed_slot": slot,
    }
    input_tokens, output_tokens = len(prompt.split()), len(body.split())
    cost = round((input_tokens + output_tokens) / 1000 * USD_PER_1K_TOKENS, 6)
    return draft, input_tokens, output_tokens, cost
