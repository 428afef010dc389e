"""OpenTelemetry traces: requests, SQL, Redis and outgoing HTTP, exported over OTLP/HTTP.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set; then the process gets one tracer provider
and each application instruments its engine and clients while it runs. Spans already
started elsewhere in the process (a test's own provider, an agent's) are kept: the
provider is installed only when none is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy.ext.asyncio import AsyncEngine

from app.settings import TracingSettings

# Probes and scrapes arrive every few seconds and say nothing about the service's work.
UNTRACED_PATHS = "/health,/ready,/metrics"


def install_tracer_provider(settings: TracingSettings, endpoint: str) -> None:
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.service_name}))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # flushed and shut down when the process exits


def instrument_app(settings: TracingSettings, app: FastAPI) -> None:
    """Trace the application's requests (a span per request, named by its route)."""
    if settings.exporter_otlp_endpoint:
        install_tracer_provider(settings, settings.exporter_otlp_endpoint)
        FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_PATHS)


@contextmanager
def traced_clients(settings: TracingSettings, engine: AsyncEngine) -> Iterator[None]:
    """While open, queries on `engine`, Redis commands and httpx requests make spans."""
    if not settings.exporter_otlp_endpoint:
        yield
        return
    install_tracer_provider(settings, settings.exporter_otlp_endpoint)
    sql, redis, http = SQLAlchemyInstrumentor(), RedisInstrumentor(), HTTPXClientInstrumentor()
    sql.instrument(engine=engine.sync_engine)
    redis.instrument()
    http.instrument()
    try:
        yield
    finally:
        for instrumentor in (sql, redis, http):
            instrumentor.uninstrument()


def current_context() -> dict[str, str]:
    """The current trace context as W3C `traceparent` headers; empty outside a trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def links_to(carrier: Mapping[str, str] | None) -> list[trace.Link]:
    """A link to the span a stored context names: work done later on behalf of a request."""
    span = trace.get_current_span(propagate.extract(carrier or {})).get_span_context()
    return [trace.Link(span)] if span.is_valid else []
