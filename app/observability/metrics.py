"""Prometheus metrics: HTTP metrics from prometheus-fastapi-instrumentator and our own.

Metrics belong to the process, not to an application instance, so each is created once
here, however many applications a process builds (the test suite builds hundreds).

With several server processes (`uvicorn --workers N`), `PROMETHEUS_MULTIPROC_DIR` names a
directory the processes share: each writes its values there and a scrape of any one of
them adds up all of them (`python -m app` sets it up when it starts several workers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_fastapi_instrumentator import metrics as http_metrics
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.middleware import route_template
from app.settings import MetricsSettings

# prometheus_client reads this at import to keep values in files (MetricsSettings too).
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# RFC 9110's methods and PATCH; any other is not counted.
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Requests by method, route template and status; request and response sizes; latency.
_HTTP = http_metrics.default(
    latency_lowr_buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_IN_PROGRESS = Gauge(
    "http_requests_inprogress",
    "HTTP requests being served, by method and route template.",
    ["method", "handler"],
    multiprocess_mode="livesum",
)

RATE_LIMIT_DECISIONS = Counter(
    "rate_limit_decisions",
    "Rate-limit checks by policy and decision: allowed, refused, failed_open, failed_closed.",
    ["policy", "decision"],
)
LOGINS = Counter("auth_logins", "Password sign-ins by result: success, failure.", ["result"])
OAUTH_CALLBACKS = Counter(
    "auth_oauth_callbacks",
    "Returns from an OAuth provider, by provider and result: signed_in, signed_up, linked, "
    "or the problem's error_code.",
    ["provider", "result"],
)
REFRESH_TOKEN_REUSE = Counter(
    "auth_refresh_token_reuse",
    "Spent refresh tokens presented after the grace window; each ends a session.",
)
OUTBOX_PROCESSED = Counter(
    "outbox_events_processed",
    "Outbox handler runs by topic and result: completed, retried, failed (dead letter).",
    ["topic", "result"],
)
# The outbox backlog gauges are read from the database when the API is scraped, so they
# live beside that scrape (app/health.py) and the worker's port does not show them.


class HttpMetricsMiddleware(PrometheusInstrumentatorMiddleware):
    """The instrumentator's ASGI middleware, over the process-wide metrics above.

    Its own constructor creates the in-progress gauge on every call, which a second
    application in the process would collide with; it gets ours instead.
    """

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(
            app,
            should_group_status_codes=False,
            excluded_handlers=["^/metrics$"],
            instrumentations=[_HTTP] if _HTTP else [],
        )
        self.should_instrument_requests_inprogress = True
        self.inprogress = HTTP_IN_PROGRESS
        self.inprogress_labels = True

    def _get_handler(self, request: Request) -> tuple[str, bool]:
        # The same resolution as the access log's, made once per request.
        template = route_template(request.scope)
        return (template, True) if template else (request.url.path, False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in HTTP_METHODS:
            # The method is a label, and clients choose it: `FOO1`, `FOO2`... would each
            # add series. The application still answers (405).
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _registry(settings: MetricsSettings) -> CollectorRegistry:
    """This process's metrics, or in multi-process mode those of every process."""
    if settings.multiprocess_dir is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=settings.multiprocess_dir)  # type: ignore[no-untyped-call]  # untyped upstream
    return registry


def exposition(settings: MetricsSettings) -> bytes:
    return generate_latest(_registry(settings))


@contextmanager
def metrics_server(settings: MetricsSettings) -> Iterator[None]:
    """While open, serve the metrics on a port of their own (the worker has no HTTP server)."""
    server, thread = start_http_server(
        settings.worker_port, addr=settings.worker_host, registry=_registry(settings)
    )
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
