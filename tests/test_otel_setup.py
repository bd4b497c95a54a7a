"""The quick-start OpenTelemetry helper, ``ada_governance.otel``.

Nothing here reaches beyond 127.0.0.1: exporters point at a closed local port, and the
Prometheus endpoint listens on loopback.
"""

from __future__ import annotations

import builtins
import importlib
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from structlog.testing import capture_logs

from ada_governance.otel import TelemetrySetup, setup_telemetry

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "speed_to_lead"


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def _otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTEL_* settings from outside; any OTLP export goes to a closed local port."""
    for key in list(os.environ):
        if key.startswith("OTEL_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with this environment plus ``env``."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, **env},
    )


# --- importing without the SDK -------------------------------------------------------------


def test_import_without_the_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the SDK or the exporter, importing the module says what to install."""
    real_import = builtins.__import__

    def without_sdk(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter")):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "ada_governance.otel")
    monkeypatch.setattr(builtins, "__import__", without_sdk)
    with pytest.raises(ImportError, match=r"pip install 'ada-governance\[otel\]'") as raised:
        importlib.import_module("ada_governance.otel")
    assert isinstance(raised.value.__cause__, ModuleNotFoundError)


def test_the_example_without_flags_does_not_import_the_helper() -> None:
    """The README's command needs only the base install: no flag, no SDK import."""
    result = run_python(
        f"""
        import runpy, sys
        sys.path.insert(0, {str(EXAMPLE)!r})
        sys.argv = ["main.py"]
        runpy.run_path({str(EXAMPLE / "main.py")!r}, run_name="__main__")
        loaded = sorted(m for m in sys.modules if m == "ada_governance.otel"
                        or m.startswith(("opentelemetry.sdk", "opentelemetry.exporter")))
        print("loaded:", loaded)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "loaded: []" in result.stdout


# --- configuration from the environment ------------------------------------------------


def test_service_name_comes_from_the_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SERVICE_NAME beats the argument; OTEL_RESOURCE_ATTRIBUTES are kept."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    setup = setup_telemetry(service_name="from-code", set_global=False)
    try:
        assert setup.tracer_provider is not None
        attributes = setup.tracer_provider.resource.attributes
        assert attributes["service.name"] == "from-env"
        assert attributes["deployment.environment"] == "test"
    finally:
        setup.shutdown(timeout=2.0)


def test_service_name_argument_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no service name in the environment, the argument names the service."""
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=sales")
    setup = setup_telemetry(service_name="from-code", set_global=False)
    try:
        assert setup.tracer_provider is not None
        attributes = setup.tracer_provider.resource.attributes
        assert attributes["service.name"] == "from-code"
        assert attributes["team"] == "sales"
    finally:
        setup.shutdown(timeout=2.0)


def test_resource_attributes_can_name_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """service.name in OTEL_RESOURCE_ATTRIBUTES also beats the argument."""
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes")
    setup = setup_telemetry(service_name="from-code", set_global=False)
    try:
        assert setup.tracer_provider is not None
        assert setup.tracer_provider.resource.attributes["service.name"] == "from-attributes"
    finally:
        setup.shutdown(timeout=2.0)


@pytest.mark.parametrize("variable", ["OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"])
def test_exporter_none_skips_that_signal(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    """OTEL_TRACES_EXPORTER=none or OTEL_METRICS_EXPORTER=none builds no such provider."""
    monkeypatch.setenv(variable, "none")
    setup = setup_telemetry(set_global=False)
    try:
        skipped = variable == "OTEL_TRACES_EXPORTER"
        assert (setup.tracer_provider is None) is skipped
        assert (setup.meter_provider is None) is not skipped
    finally:
        setup.shutdown(timeout=2.0)


def test_arguments_turn_signals_off() -> None:
    """traces=False and metrics=False build nothing, and flushing nothing succeeds."""
    setup = setup_telemetry(traces=False, metrics=False, set_global=False)
    assert setup.tracer_provider is None
    assert setup.meter_provider is None
    assert setup.force_flush(timeout=1.0) is True
    setup.shutdown(timeout=1.0)
    assert setup.force_flush(timeout=1.0) is False


def test_unsupported_exporter_is_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exporter name the helper cannot build is logged and left out."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    with capture_logs() as logs:
        setup = setup_telemetry(metrics=False, set_global=False)
    setup.shutdown(timeout=1.0)
    assert setup.tracer_provider is None
    assert any(log["event"] == "unsupported_exporter" for log in logs)


# --- global providers ----------------------------------------------------------------------


def test_set_global_false_leaves_the_global_providers_alone() -> None:
    """set_global=False builds providers for explicit use and touches no global."""
    tracer_provider, meter_provider = trace.get_tracer_provider(), metrics.get_meter_provider()
    setup = setup_telemetry(set_global=False)
    try:
        assert setup.tracer_provider is not None
        assert setup.meter_provider is not None
        assert trace.get_tracer_provider() is tracer_provider
        assert metrics.get_meter_provider() is meter_provider
    finally:
        setup.shutdown(timeout=2.0)
    assert trace.get_tracer_provider() is tracer_provider
    assert metrics.get_meter_provider() is meter_provider


def test_set_global_installs_the_providers() -> None:
    """By default the providers become the global ones (checked in a fresh process)."""
    result = run_python(
        """
        from opentelemetry import metrics, trace
        from ada_governance.otel import setup_telemetry
        setup = setup_telemetry(service_name="global-check")
        print(trace.get_tracer_provider() is setup.tracer_provider,
              metrics.get_meter_provider() is setup.meter_provider)
        setup.shutdown(timeout=2.0)
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed_port()}",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


# --- shutdown and flush never hang or raise -------------------------------------------------


def test_shutdown_with_an_unreachable_endpoint_returns_within_its_timeout() -> None:
    """The SDK retries a refused export for ~13 s; shutdown(timeout=1) returns in ~1 s."""
    result = run_python(
        """
        import time
        from ada_governance.otel import setup_telemetry
        setup = setup_telemetry(service_name="unreachable", set_global=False)
        with setup.tracer_provider.get_tracer("test").start_as_current_span("work"):
            pass
        setup.meter_provider.get_meter("test").create_counter("work").add(1)
        start = time.monotonic()
        setup.shutdown(timeout=1.0)
        print(f"elapsed {time.monotonic() - start:.3f}", flush=True)
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{closed_port()}",
    )
    assert result.returncode == 0, result.stderr
    elapsed = float(result.stdout.split("elapsed")[-1])
    assert elapsed < 2.0, result.stdout
    assert "telemetry_timeout" in result.stdout + result.stderr


class _Blocking:
    """A stand-in provider whose calls block until released, or raise."""

    def __init__(self, release: threading.Event, error: Exception | None = None) -> None:
        self.release = release
        self.error = error

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        if self.error is not None:
            raise self.error
        return self.release.wait(60)

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        self.force_flush(timeout_millis)


def test_force_flush_and_shutdown_are_bounded_and_never_raise() -> None:
    """A provider that hangs or raises makes flush return False, and shutdown return."""
    release = threading.Event()
    setup = TelemetrySetup(
        _Blocking(release),  # type: ignore[arg-type]
        _Blocking(release, RuntimeError("exporter broke")),  # type: ignore[arg-type]
    )
    try:
        with capture_logs() as logs:
            start = time.monotonic()
            assert setup.force_flush(timeout=0.3) is False
            setup.shutdown(timeout=0.3)
            elapsed = time.monotonic() - start
        assert elapsed < 1.5
        events = [log["event"] for log in logs]
        assert events.count("telemetry_timeout") == 2
        assert events.count("telemetry_error") == 2
        setup.shutdown(timeout=0.3)  # a second shutdown does nothing
    finally:
        release.set()


# --- Prometheus ----------------------------------------------------------------------------


def test_prometheus_endpoint_serves_the_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """prometheus_port serves metrics on loopback; port 0 picks a free port."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "scraped")
    setup = setup_telemetry(traces=False, otlp=False, set_global=False, prometheus_port=0)
    try:
        assert setup.tracer_provider is None
        assert setup.meter_provider is not None
        assert setup.prometheus_url is not None
        assert setup.prometheus_url.startswith("http://127.0.0.1:")
        counter = setup.meter_provider.get_meter("test").create_counter("test.calls", unit="1")
        counter.add(2, {"kind": "unit"})
        with urllib.request.urlopen(setup.prometheus_url, timeout=5) as response:
            body = response.read().decode()
        assert 'test_calls_total{kind="unit"' in body
        assert 'service_name="scraped"' in body
    finally:
        setup.shutdown(timeout=2.0)
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(setup.prometheus_url, timeout=2)
