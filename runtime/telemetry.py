"""OpenTelemetry tracing and JSON logs that carry the trace id.

The exporter follows the standard variables: OTEL_TRACES_EXPORTER=console|otlp|none (default
none) and OTEL_SERVICE_NAME. Spans are always created so trace ids reach logs and message headers
even when nothing is exported; when nothing is recorded (`spans_recorded()` false), the per-request and
per-statement instrumentation is left out too: the gateway's HTTP requests get `TraceContext` instead of
OpenTelemetry's ASGI instrumentation, and engines are not instrumented (runtime/db.py).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

_configured = False
# Key names that must never be written to a log line, whatever their value.
_SECRET_WORDS = ("password", "secret", "token", "authorization", "cookie")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        span = trace.get_current_span().get_span_context()
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        extra = getattr(record, "fields", None)
        if isinstance(extra, Mapping):
            entry.update(redact(extra))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def redact(fields: Mapping[str, object]) -> dict[str, object]:
    return {
        k: ("[redacted]" if any(w in k.lower() for w in _SECRET_WORDS) else v) for k, v in fields.items()
    }


def setup(service_name: str, *, level: str = "INFO", fmt: str = "json") -> None:
    global _configured
    if _configured:
        return
    _configured = True
    handler = logging.StreamHandler(sys.stdout)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # alembic.runtime.plugins: one INFO line per autogenerate plugin (alembic 1.17+) when a migration env loads.
    for noisy in ("nats", "asyncio", "uvicorn.access", "sqlalchemy.engine", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    setup_tracing(service_name)


_tracing = False


def spans_recorded() -> bool:
    """Whether this process records spans: an exporter is configured (OTEL_TRACES_EXPORTER other than
    none) or a sampler chosen (OTEL_TRACES_SAMPLER). Otherwise the tracer provider samples nothing."""
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    return exporter != "none" or bool(os.environ.get("OTEL_TRACES_SAMPLER"))


def setup_tracing(service_name: str) -> None:
    global _tracing
    if _tracing:
        return
    _tracing = True
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service_name)})
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    # Nothing is exported: spans need not be recorded. Unrecorded spans still carry the trace id, so it
    # still reaches logs and message headers, at a fraction of the cost.
    sampler = None if spans_recorded() else ALWAYS_OFF
    provider = TracerProvider(resource=resource, sampler=sampler)
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:  # pragma: no cover - optional package
            logging.getLogger(__name__).warning(
                "OTEL_TRACES_EXPORTER=otlp but opentelemetry-exporter-otlp is not installed"
            )
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


class TraceContext:
    """Each HTTP request in a span of its own that continues the caller's `traceparent`, and nothing
    else: what OpenTelemetry's ASGI instrumentation gives when spans are not recorded (its trace id
    in the request's logs and in the headers of the messages the request sends), without the rest of
    its work per request (a span per message sent or received, the request's attributes, the route
    matched a second time for the span's name: about a fifth of a kept KPI read's CPU,
    docs/benchmarks.md). A pure ASGI middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tracer = trace.get_tracer(__name__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
                   if name in (b"traceparent", b"tracestate")}
        parent = extract_context(carrier) if carrier else None
        with self.tracer.start_as_current_span(scope["method"], context=parent, kind=SpanKind.SERVER):
            await self.app(scope, receive, send)


def inject_headers(headers: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """The current trace context as message headers."""
    carrier: dict[str, str] = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    return propagate.extract(dict(headers or {}))


def current_trace_id() -> str | None:
    span = trace.get_current_span().get_span_context()
    return format(span.trace_id, "032x") if span.is_valid else None


def log(logger: logging.Logger, level: int, msg: str, **fields: object) -> None:
    logger.log(level, msg, extra={"fields": fields})
