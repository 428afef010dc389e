"""OpenTelemetry traces: requests, SQL, Redis and outgoing HTTP, exported over OTLP/HTTP.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set; then the process gets one tracer provider
and each application instruments its engine and clients while it runs. Spans already
started elsewhere in the process (a test's own provider, an agent's) are kept: the
provider is installed only when none is.

A trace starts with a request or an outbox event. A query, Redis command or HTTP call made
outside both (a probe's ping, the dispatcher's poll, ARQ's queue bookkeeping) is not
recorded: every second, it would bury the traces that matter.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.status import Status
from opentelemetry.util.types import Attributes
from sqlalchemy.ext.asyncio import AsyncEngine

from app.middleware import POD_IP_PATHS
from app.settings import TracingSettings

# Only the W3C trace context travels in outbox events: never the caller's baggage.
_TRACE_CONTEXT = TraceContextTextMapPropagator()


class _NoLoneClientSpans(Sampler):
    """Drops a client span (SQL, Redis, HTTP) that would start a trace of its own."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "NoLoneClientSpans"


# Spans inside a sampled trace are kept; new traces start only at requests and events.
SAMPLER = ParentBased(root=_NoLoneClientSpans())


class ScrubbingExporter(SpanExporter):
    """Exports spans without error text: a driver's message can quote the data it refused
    (`Key (email)=(alice@example.com) already exists`). The status code and the exception's
    type stay; the message, and the traceback that repeats it, are for the error report.

    URLs are exported without their query string, which the access log leaves out too: it
    can carry a one-time code (the OAuth callbacks, the frontend's `/auth/callback`), a
    flow's `state` or a provider's `appsecret_proof`."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([_scrubbed(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


# Attributes holding a whole URL or target (old and current semantic conventions), and the
# one holding the query alone.
_URL_ATTRIBUTES = frozenset({"http.url", "http.target", "url.full"})
_QUERY_ATTRIBUTE = "url.query"


def _scrubbed(span: ReadableSpan) -> ReadableSpan:
    events = [
        Event(event.name, {"exception.type": (event.attributes or {}).get("exception.type", "")})
        if event.name == "exception"
        else event
        for event in span.events
    ]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes={
            key: str(value).partition("?")[0] if key in _URL_ATTRIBUTES else value
            for key, value in (span.attributes or {}).items()
            if key != _QUERY_ATTRIBUTE
        },
        events=events,
        links=span.links,
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def tracer_provider(settings: TracingSettings, endpoint: str) -> TracerProvider:
    """The process's provider: the one already installed, or one exporting to `endpoint`."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(
        sampler=SAMPLER, resource=Resource.create({SERVICE_NAME: settings.service_name})
    )
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(ScrubbingExporter(exporter)))
    trace.set_tracer_provider(provider)
    return provider


def instrument_app(settings: TracingSettings, app: FastAPI) -> None:
    """Trace the application's requests (a span per request, named by its route)."""
    if settings.exporter_otlp_endpoint:
        provider = tracer_provider(settings, settings.exporter_otlp_endpoint)
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=provider,
            # Probes and scrapes say nothing about the service's work (regexes on the URL).
            excluded_urls=",".join(f"{path}$" for path in POD_IP_PATHS),
        )


@contextmanager
def traced_clients(settings: TracingSettings, engine: AsyncEngine) -> Iterator[None]:
    """While open, queries on `engine`, Redis commands and outgoing HTTP requests (httpx2,
    the client Authlib uses to call OAuth providers) make spans.

    On closing, buffered spans are exported: a server stopped by a signal exits without
    running `atexit` handlers.
    """
    if not settings.exporter_otlp_endpoint:
        yield
        return
    provider = tracer_provider(settings, settings.exporter_otlp_endpoint)
    sql, redis, http = SQLAlchemyInstrumentor(), RedisInstrumentor(), HTTPX2ClientInstrumentor()
    # The instrumentation declares SQLAlchemy < 2.1; its engine events work with 2.1 (the
    # tests show the query spans), so its version check is skipped.
    sql.instrument(engine=engine.sync_engine, tracer_provider=provider, skip_dep_check=True)
    redis.instrument(tracer_provider=provider)
    http.instrument(tracer_provider=provider)
    try:
        yield
    finally:
        for instrumentor in (sql, redis, http):
            instrumentor.uninstrument()
        provider.force_flush()


def current_context() -> dict[str, str]:
    """The current trace context as W3C `traceparent` headers; empty outside a trace."""
    carrier: dict[str, str] = {}
    _TRACE_CONTEXT.inject(carrier)
    return carrier


def links_to(carrier: Mapping[str, str] | None) -> list[trace.Link]:
    """A link to the span a stored context names: work done later on behalf of a request."""
    span = trace.get_current_span(_TRACE_CONTEXT.extract(carrier or {})).get_span_context()
    return [trace.Link(span)] if span.is_valid else []
