"""Helpers shared by the end-to-end tests and their fixtures (see ``conftest.py``)."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "speed_to_lead" / "main.py"
PHOENIX_VARIABLE = "ADA_GOVERNANCE_PHOENIX"
REQUIRE_VARIABLE = "ADA_GOVERNANCE_REQUIRE_E2E"


def e2e_required() -> bool:
    """Whether an end-to-end test that cannot run fails (CI) rather than skips."""
    return os.environ.get(REQUIRE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it where end-to-end tests are required."""
    if e2e_required():
        pytest.fail(f"{reason} ({REQUIRE_VARIABLE} is set, so this fails instead of skipping)")
    pytest.skip(reason)


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 (held open together while chosen)."""
    with contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without OpenTelemetry or Phoenix settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "PHOENIX_", "ADA_GOVERNANCE_"))
    }
    env.update(extra)
    return env


def example_command(*flags: str) -> list[str]:
    """The command that runs the speed-to-lead example with ``flags``."""
    return [sys.executable, str(EXAMPLE), *flags]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url`` (on 127.0.0.1 only); return the status and body."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"end-to-end tests talk to 127.0.0.1 only, not {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), bytes(error.read())
