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
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import route_path
from app.settings import TracingSettings

# Probes and scrapes arrive every few seconds and say nothing about the service's work.
UNTRACED_PATHS = frozenset({"/health", "/ready", "/metrics"})


def tracer_provider(settings: TracingSettings, endpoint: str) -> TracerProvider:
    """The process's provider: the one already installed, or one exporting to `endpoint`."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.service_name}))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def instrument_app(settings: TracingSettings, app: FastAPI) -> None:
    """Trace the application's requests (a span per request, named by its route)."""
    if settings.exporter_otlp_endpoint:
        provider = tracer_provider(settings, settings.exporter_otlp_endpoint)
        # Outermost of the application's middleware, inside the OpenTelemetry one.
        app.add_middleware(UntracedPathsMiddleware)
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=provider,
            excluded_urls=",".join(f"{path}$" for path in UNTRACED_PATHS),
        )


class UntracedPathsMiddleware:
    """Probes and scrapes make no spans at all: not the request's, nor their queries'."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and route_path(scope) in UNTRACED_PATHS:
            with suppress_instrumentation():
                await self.app(scope, receive, send)
            return
        await self.app(scope, receive, send)


@contextmanager
def traced_clients(settings: TracingSettings, engine: AsyncEngine) -> Iterator[None]:
    """While open, queries on `engine`, Redis commands and httpx requests make spans.

    On closing, buffered spans are exported: a server stopped by a signal exits without
    running `atexit` handlers.
    """
    if not settings.exporter_otlp_endpoint:
        yield
        return
    provider = tracer_provider(settings, settings.exporter_otlp_endpoint)
    sql, redis, http = SQLAlchemyInstrumentor(), RedisInstrumentor(), HTTPXClientInstrumentor()
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
    propagate.inject(carrier)
    return carrier


def links_to(carrier: Mapping[str, str] | None) -> list[trace.Link]:
    """A link to the span a stored context names: work done later on behalf of a request."""
    span = trace.get_current_span(propagate.extract(carrier or {})).get_span_context()
    return [trace.Link(span)] if span.is_valid else []
