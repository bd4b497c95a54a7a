"""Shared fixtures: every test starts with no process-wide governance and a store URL
that points into its own temporary folder, never the user's state folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ada_governance.testing import reset_governance


@pytest.fixture(autouse=True)
def _isolated_governance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Reset the default governance around each test; default store in tmp_path."""
    monkeypatch.setenv("ADA_GOVERNANCE_STORE", f"sqlite:///{tmp_path / 'default.db'}")
    reset_governance()
    yield
    reset_governance()
