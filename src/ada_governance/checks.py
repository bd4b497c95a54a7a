"""Pre-checks: conditions the workflow verifies before preparing anything.

The seed's speed-to-lead workflow checks source data, urgency, consent and owner
availability before it drafts a reply. A check is a callable run before the body, with
the same arguments and with the run current (so it may read approved sources); it
returns ``None`` or ``True`` to pass, or a reason (text, or ``False``) to refuse the run.
"""

from __future__ import annotations

from typing import Any

from ._declaration import Declaration, ImportedCallable, Name

__all__ = ["Check", "check_reason"]


class Check(Declaration):
    """A pre-check that must pass before the body runs.

    Attributes:
        name: The check's name, unique within the workflow (``"consent"``).
        fn: The callable (sync or async) given the governed call's arguments; an import
            path in files. It returns ``None`` or ``True`` to pass, and a reason (text)
            or ``False`` to refuse the run.
        description: What the check verifies.
    """

    name: Name
    fn: ImportedCallable
    description: str = ""


def check_reason(result: Any) -> str | None:
    """Read a check's result: ``None`` when it passed, else the reason it failed."""
    if result is None or result is True:
        return None
    if result is False:
        return "the check returned False"
    if isinstance(result, str):
        return result or "the check failed without a reason"
    return f"the check returned {result!r}; return None to pass or a reason to refuse"
