"""The email action: sending a follow-up, which an SDR must approve first.

Sending is a stand-in too: it appends the email to a local outbox file (one JSON line per
email), so the example can show that each approved email goes out exactly once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from workflow import SPEED_TO_LEAD

from ada_governance import governed_action


def outbox_path() -> Path:
    """Where sent emails go: ``$SPEED_TO_LEAD_OUTBOX``, else ``outbox.jsonl`` here."""
    return Path(os.environ.get("SPEED_TO_LEAD_OUTBOX", Path(__file__).with_name("outbox.jsonl")))


@governed_action(SPEED_TO_LEAD, "send_email")
def send_email(lead_id: str, to: str, subject: str, body: str) -> str:
    """Send a follow-up email (here: append it to the outbox file)."""
    with outbox_path().open("a", encoding="utf-8") as outbox:
        outbox.write(json.dumps({"lead_id": lead_id, "to": to, "subject": subject, "body": body}))
        outbox.write("\n")
    return f"sent to {to}"
