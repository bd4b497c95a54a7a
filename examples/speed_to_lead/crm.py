"""A stand-in for the CRM and calendar the workflow reads from: in memory, so the example
runs anywhere. In a real deployment these functions call the systems' APIs."""

from __future__ import annotations

import datetime as dt
from typing import Any

LEADS: dict[str, dict[str, Any]] = {
    "L-1041": {
        "id": "L-1041",
        "name": "Priya Raman",
        "email": "priya@acme.test",
        "interest": "pricing",
        "consent": True,
    },
    "L-1042": {
        "id": "L-1042",
        "name": "Tom Becker",
        "email": "tom@globex.test",
        "interest": "demo",
        "consent": True,
        "template": "legacy",
    },
    "L-1043": {
        "id": "L-1043",
        "name": "Ana Ortiz",
        "email": "ana(at)initech",
        "interest": "onboarding",
        "consent": True,
    },
    "L-1044": {
        "id": "L-1044",
        "name": "Sam Lee",
        "email": "sam@umbrella.test",
        "interest": "pricing",
        "consent": False,
    },
    "L-1045": {
        "id": "L-1045",
        "name": "Kim Park",
        "email": "kim@hooli.test",
        "interest": "security",
        "consent": True,
    },
}


def get_lead(lead_id: str) -> dict[str, Any]:
    """Fetch a lead record from the CRM."""
    return dict(LEADS[lead_id])


def get_availability(owner: str) -> dict[str, Any]:
    """Fetch the owner's open slots, with the time the calendar last synced."""
    return {
        "owner": owner,
        "slots": ["Thursday 10:00", "Friday 14:30"],
        "synced_at": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
