"""The speed-to-lead workflow's output standard and exception handler.

Declarations name these by import path (``followup:FollowUp``); the declaration file's
folder is on ``sys.path`` while it loads, so this module sits beside it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class FollowUp(BaseModel):
    """A drafted follow-up to a new lead, ready for an SDR to review."""

    lead_id: str
    to: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    subject: str = Field(min_length=3, max_length=120)
    body: str = Field(min_length=20)
    proposed_slot: str | None = None


def no_placeholders(draft: Any) -> list[str]:
    """Reject drafts that still hold template placeholders such as ``{first_name}``."""
    body = getattr(draft, "body", "")
    return ["placeholder_left_in_body"] if "{" in body or "[NAME]" in body else []


def offers_a_slot(draft: Any) -> list[str]:
    """A follow-up to a high-intent lead should offer a meeting slot."""
    return [] if getattr(draft, "proposed_slot", None) else ["no_meeting_slot_offered"]


def has_consent(event: Any, lead_id: str) -> str | None:
    """Pre-check: the lead agreed to be contacted. Reads the CRM through the run."""
    from crm import get_lead

    from ada_governance import current_run

    lead = current_run().source("crm.lead", get_lead, lead_id)
    return None if lead.get("consent") else "the lead has not consented to be contacted"


def route_to_sdr_lead(record: Any) -> None:
    """Exception handler: the SDR team lead picks up failed follow-ups by hand."""
    print(
        f"  [exception path] {record.workflow} run {record.run_id[:8]} failed with "
        f"{record.error_type}; {record.route_to} notified"
    )
