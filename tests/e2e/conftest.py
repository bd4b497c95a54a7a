"""End-to-end fixtures: a real Phoenix server, free local ports, the example's command.

Phoenix lives in its own virtualenv outside the checkout, installed by ``.ci/phoenix.sh``::

    export ADA_GOVERNANCE_PHOENIX="$(bash .ci/phoenix.sh)"
    .venv/bin/python -m pytest tests/e2e

Without ``ADA_GOVERNANCE_PHOENIX`` the Phoenix tests skip, saying so; with
``ADA_GOVERNANCE_REQUIRE_E2E=1`` (as CI sets) they fail instead, as does any end-to-end
test that cannot run. Everything listens on and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _e2e import PHOENIX_VARIABLE, clean_environment, free_ports, http_get, unavailable

HEALTH_TIMEOUT = 60.0


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Phoenix server on 127.0.0.1 for this session; yields its base URL."""
    executable = os.environ.get(PHOENIX_VARIABLE, "").strip()
    if not executable:
        unavailable(
            f"Phoenix end-to-end tests need {PHOENIX_VARIABLE}: run `bash .ci/phoenix.sh` "
            f'and set {PHOENIX_VARIABLE}="$(bash .ci/phoenix.sh)" (the path it prints)'
        )
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        unavailable(
            f"{PHOENIX_VARIABLE}={executable} is not an executable file; run "
            f"`bash .ci/phoenix.sh` and set {PHOENIX_VARIABLE} to the path it prints"
        )
    http_port, grpc_port = free_ports(2)
    working_dir = tmp_path_factory.mktemp("phoenix")
    log_path = working_dir / "phoenix.log"
    env = clean_environment(
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(http_port),
        PHOENIX_GRPC_PORT=str(grpc_port),
        PHOENIX_WORKING_DIR=str(working_dir),
        # Nothing beyond this machine: no web fonts, pixels, downloads or assistants.
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
        PHOENIX_TELEMETRY_ENABLED="false",
    )
    base_url = f"http://127.0.0.1:{http_port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [executable, "serve"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=working_dir,
        )
    try:
        _wait_until_healthy(process, base_url, log_path)
        yield base_url
    finally:
        _stop(process)


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"phoenix serve exited with {process.returncode} before it was healthy:\n"
                f"{_log_tail(log_path)}"
            )
        try:
            status, _ = http_get(f"{base_url}/healthz", timeout=2.0)
        except OSError:
            status = 0
        if status == 200:
            return
        time.sleep(0.25)
    pytest.fail(
        f"phoenix serve was not healthy at {base_url}/healthz within {HEALTH_TIMEOUT:.0f} s:\n"
        f"{_log_tail(log_path)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server by its pid: terminate, wait, then kill."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)
