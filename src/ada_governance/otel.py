"""Quick-start OpenTelemetry for an application that has no setup of its own.

The governed runtime emits spans and metrics through the OpenTelemetry API, to whatever
providers the application set up. An application with none can call `setup_telemetry`
once at start-up::

    from ada_governance.otel import setup_telemetry

    telemetry = setup_telemetry(service_name="lead-followups")
    ...  # governed runs
    telemetry.shutdown()

It builds an SDK `TracerProvider` that batches spans to an OTLP/HTTP exporter and a
`MeterProvider` that periodically exports metrics to another, and makes them the global
providers. Everything else is read from the standard ``OTEL_*`` environment variables:
``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4318``) and the rest of the
exporter settings by the exporters themselves, ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES`` for the resource, ``OTEL_METRIC_EXPORT_INTERVAL`` by the
metric reader, and ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (``otlp``, the
default, ``console`` or ``none``) to choose or skip an exporter.

It needs the SDK and the exporter: ``pip install 'ada-governance[otel]'``; serving
metrics to Prometheus (``prometheus_port=``) also needs
``pip install 'ada-governance[prometheus]'``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from opentelemetry import metrics as otel_metrics
from opentelemetry import trace as otel_trace

try:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        MetricExporter,
        MetricReader,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )
except ImportError as error:  # pragma: no cover - exercised by a test that hides the SDK
    raise ImportError(
        "ada_governance.otel needs the OpenTelemetry SDK and its OTLP/HTTP exporter, "
        f"which are not installed ({error}): pip install 'ada-governance[otel]'"
    ) from error

__all__ = ["TelemetrySetup", "setup_telemetry"]

logger = structlog.get_logger("ada_governance.otel")

_NONE = "none"
_OTLP = "otlp"
_CONSOLE = "console"
_SUPPORTED = (_OTLP, _CONSOLE, _NONE)
_EXIT_TIMEOUT = 5.0


class TelemetrySetup:
    """The providers `setup_telemetry` built, and how to flush and shut them down.

    Attributes:
        tracer_provider: The SDK tracer provider, or ``None`` when traces were not set up
            (``traces=False`` or ``OTEL_TRACES_EXPORTER=none``).
        meter_provider: The SDK meter provider, or ``None`` when metrics were not set up
            (``metrics=False``, or ``OTEL_METRICS_EXPORTER=none`` without Prometheus).
        prometheus_url: Where Prometheus can scrape the metrics, or ``None``.

    `force_flush` and `shutdown` never raise and never take longer than their timeout:
    an exporter that cannot reach its endpoint is left behind in a daemon thread, and a
    warning says so. `shutdown` also runs, once, when the interpreter exits.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        *,
        prometheus_server: Any = None,
        prometheus_url: str | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.prometheus_url = prometheus_url
        self._prometheus_server = prometheus_server
        self._lock = threading.Lock()
        self._shut_down = False
        atexit.register(self._at_exit)

    def __repr__(self) -> str:
        return (
            f"<TelemetrySetup traces={self.tracer_provider is not None} "
            f"metrics={self.meter_provider is not None} prometheus={self.prometheus_url!r}>"
        )

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export what the providers hold now; ``True`` if all of it went within ``timeout``."""
        if self._shut_down:
            return False
        millis = _millis(timeout)
        calls: list[tuple[str, Callable[[], object]]] = []
        if self.tracer_provider is not None:
            calls.append(("traces", _bind(self.tracer_provider.force_flush, millis)))
        if self.meter_provider is not None:
            calls.append(("metrics", _bind(self.meter_provider.force_flush, millis)))
        results = _run_bounded("force_flush", calls, timeout)
        return all(results.get(name) is True for name, _ in calls)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Flush and shut down the providers (and stop the Prometheus server), once.

        Returns within ``timeout`` seconds whatever the exporters do, and never raises.
        """
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        atexit.unregister(self._at_exit)
        calls: list[tuple[str, Callable[[], object]]] = []
        if self.tracer_provider is not None:
            calls.append(("traces", self.tracer_provider.shutdown))
        meter_provider = self.meter_provider
        server = self._prometheus_server
        if meter_provider is not None or server is not None:
            # One thread for both, in order: the final collection runs before the
            # Prometheus endpoint goes away.
            calls.append(("metrics", _bind(_shutdown_metrics, meter_provider, server, timeout)))
        _run_bounded("shutdown", calls, timeout)

    def _at_exit(self) -> None:
        self.shutdown(_EXIT_TIMEOUT)


def setup_telemetry(
    *,
    service_name: str | None = None,
    traces: bool = True,
    metrics: bool = True,
    set_global: bool = True,
    prometheus_port: int | None = None,
    prometheus_host: str = "127.0.0.1",
    otlp: bool = True,
) -> TelemetrySetup:
    """Build OpenTelemetry SDK providers that export over OTLP/HTTP, from ``OTEL_*``.

    Args:
        service_name: The ``service.name`` of the resource when neither
            ``OTEL_SERVICE_NAME`` nor ``OTEL_RESOURCE_ATTRIBUTES`` names one (the
            environment wins, so a deployment can rename the service).
        traces: Whether to build a tracer provider.
        metrics: Whether to build a meter provider.
        set_global: Whether to make the providers the global ones, which the governed
            runtime uses unless given providers explicitly. OpenTelemetry lets the global
            providers be set once per process: a second attempt logs a warning and leaves
            the first in place.
        prometheus_port: Also serve the metrics for Prometheus to scrape, at
            ``http://{prometheus_host}:{prometheus_port}/metrics`` (``0``: any free port;
            see `TelemetrySetup.prometheus_url`). Needs ``ada-governance[prometheus]``;
            ignored with ``metrics=False``.
        prometheus_host: The address the Prometheus endpoint listens on; loopback by
            default, so nothing outside the machine can read it.
        otlp: Whether to export at all (over OTLP, or to the console, as
            ``OTEL_*_EXPORTER`` say); ``False`` builds no tracer provider, and a meter
            provider only to serve Prometheus.

    Returns:
        The providers, with `TelemetrySetup.shutdown` to call before the process exits.

    Raises:
        ImportError: ``prometheus_port`` was given without the Prometheus exporter.
        OSError: The Prometheus endpoint could not listen on that address.
    """
    span_exporters = _span_exporters() if traces and otlp else []
    metric_exporters = _metric_exporters() if metrics and otlp else []
    resource = _resource(service_name)

    server: Any = None
    prometheus_url: str | None = None
    readers: list[MetricReader] = []
    if metrics and prometheus_port is not None:
        server, prometheus_url, reader = _start_prometheus(prometheus_host, prometheus_port)
        readers.append(reader)
    try:
        readers.extend(PeriodicExportingMetricReader(exporter) for exporter in metric_exporters)
        tracer_provider: TracerProvider | None = None
        if span_exporters:
            tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
            for span_exporter in span_exporters:
                tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        meter_provider: MeterProvider | None = None
        if readers:
            meter_provider = MeterProvider(
                metric_readers=readers, resource=resource, shutdown_on_exit=False
            )
    except BaseException:
        if server is not None:  # do not leave the endpoint listening for nothing
            server.shutdown()
            server.server_close()
        raise

    if set_global:
        if tracer_provider is not None:
            otel_trace.set_tracer_provider(tracer_provider)
            if otel_trace.get_tracer_provider() is not tracer_provider:
                _warn("global_tracer_provider_kept", "a global tracer provider was already set")
        if meter_provider is not None:
            otel_metrics.set_meter_provider(meter_provider)
            if otel_metrics.get_meter_provider() is not meter_provider:
                _warn("global_meter_provider_kept", "a global meter provider was already set")
    return TelemetrySetup(
        tracer_provider,
        meter_provider,
        prometheus_server=server,
        prometheus_url=prometheus_url,
    )


# --- configuration from the environment ------------------------------------------------


def _resource(service_name: str | None) -> Resource:
    """The SDK's resource from the environment, with ``service_name`` as a fallback."""
    resource = Resource.create()
    if service_name and SERVICE_NAME not in OTELResourceDetector().detect().attributes:
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    return resource


def _choices(variable: str) -> list[str]:
    """The exporters an ``OTEL_*_EXPORTER`` variable names (``otlp`` when unset)."""
    names = [
        name.strip().lower() for name in os.environ.get(variable, _OTLP).split(",") if name.strip()
    ]
    if _NONE in names:
        return []
    chosen: list[str] = []
    for name in names or [_OTLP]:
        if name not in _SUPPORTED:
            _warn(
                "unsupported_exporter",
                f"{variable}={name!r} is not supported here (only otlp, console or none)",
            )
        elif name not in chosen:
            chosen.append(name)
    if _OTLP in chosen:
        _check_protocol(variable)
    return chosen


def _check_protocol(variable: str) -> None:
    signal = "TRACES" if "TRACES" in variable else "METRICS"
    protocol = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol.strip().lower() != "http/protobuf":
        _warn(
            "unsupported_otlp_protocol",
            f"OTLP protocol {protocol!r} is not supported here; exporting http/protobuf",
        )


def _span_exporters() -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    for name in _choices("OTEL_TRACES_EXPORTER"):
        exporters.append(OTLPSpanExporter() if name == _OTLP else ConsoleSpanExporter())
    return exporters


def _metric_exporters() -> list[MetricExporter]:
    exporters: list[MetricExporter] = []
    for name in _choices("OTEL_METRICS_EXPORTER"):
        exporters.append(OTLPMetricExporter() if name == _OTLP else ConsoleMetricExporter())
    return exporters


# --- Prometheus ------------------------------------------------------------------------------


def _start_prometheus(host: str, port: int) -> tuple[Any, str, MetricReader]:
    """Start the scrape endpoint on its own registry; return it, its URL and the reader."""
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError as error:
        raise ImportError(
            "serving metrics to Prometheus needs the OpenTelemetry Prometheus exporter "
            f"({error}): pip install 'ada-governance[prometheus]'"
        ) from error
    registry = CollectorRegistry(auto_describe=True)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    try:
        reader = PrometheusMetricReader(registry=registry)
    except TypeError:  # pragma: no cover - exporters before the registry argument
        server.shutdown()
        server.server_close()
        server, _thread = start_http_server(port, addr=host)
        reader = PrometheusMetricReader()
    bound_port = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    return server, f"http://{shown}:{bound_port}/metrics", reader


def _shutdown_metrics(meter_provider: MeterProvider | None, server: Any, timeout: float) -> None:
    try:
        if meter_provider is not None:
            meter_provider.shutdown(timeout_millis=_millis(timeout))
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


# --- bounded calls -----------------------------------------------------------------------


def _run_bounded(
    action: str, calls: Sequence[tuple[str, Callable[[], object]]], timeout: float
) -> dict[str, object]:
    """Run each call in a daemon thread; wait for all of them until ``timeout`` at most.

    Returns what each call that finished in time returned (an exception it raised is
    logged and left out). Never raises.
    """
    results: dict[str, object] = {}
    threads: list[tuple[str, threading.Thread]] = []
    deadline = time.monotonic() + max(timeout, 0.0)
    for name, call in calls:
        target = _bind(_call_into, action, name, call, results)
        thread = threading.Thread(target=target, name=f"ada-otel-{action}-{name}", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # the interpreter is shutting down: no new threads
            target()
            continue
        threads.append((name, thread))
    unfinished: list[str] = []
    for name, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            unfinished.append(name)
    if unfinished:
        _warn(
            "telemetry_timeout",
            f"{action} did not finish within {timeout} s; left running in the background",
            unfinished=unfinished,
        )
    return results


def _call_into(
    action: str, name: str, call: Callable[[], object], results: dict[str, object]
) -> None:
    try:
        results[name] = call()
    except Exception as error:
        _warn("telemetry_error", f"{action} of {name} failed: {type(error).__name__}: {error}")


def _bind(function: Callable[..., object], *args: Any) -> Callable[[], object]:
    def call() -> object:
        return function(*args)

    return call


def _millis(timeout: float) -> int:
    return max(int(timeout * 1000), 0)


def _warn(event: str, message: str, **extra: Any) -> None:
    """Log a warning; logging never raises into the caller."""
    with contextlib.suppress(Exception):
        logger.warning(event, message=message, **extra)
