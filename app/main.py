"""Application factory: lifespan, middleware in order, error handlers and routers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypedDict

from fastapi import APIRouter, FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from app import health, outbox
from app.db import Database
from app.domains import discover
from app.domains.auth.passwords import PasswordHasher
from app.draining import Draining
from app.errors import DatabaseUnavailable, install_error_handlers, install_problem_openapi
from app.mail import mailer_from_settings
from app.middleware import (
    AccessLogMiddleware,
    ApiVersionMiddleware,
    BodyLimitMiddleware,
    HttpsRedirectMiddleware,
    NoStoreMiddleware,
    SecurityHeadersMiddleware,
    TrustedHostMiddleware,
    UnhandledErrorMiddleware,
    request_id_middleware,
)
from app.observability.error_reporting import configure_error_reporting, flush_error_reports
from app.observability.logs import configure_logging
from app.observability.metrics import HttpMetricsMiddleware
from app.observability.tracing import instrument_app, traced_clients
from app.outbox import HandlerContext
from app.rate_limit import RateLimited, RateLimiter, RateLimiterUnavailable
from app.settings import Settings, get_settings
from app.spa import install_frontend

API_ROOT = "/api"
API_PREFIX = f"{API_ROOT}/v1"
# Responses that carry tokens or account data.
NO_STORE_PREFIXES = (f"{API_PREFIX}/login", f"{API_PREFIX}/auth/", f"{API_PREFIX}/users")


class State(TypedDict):
    """What the lifespan hands to every request as `request.state`."""

    database: Database
    rate_limiter: RateLimiter
    draining: Draining
    # One per application, so its limit on concurrent hashing holds across all requests;
    # made here, inside the event loop its limiter belongs to.
    password_hasher: PasswordHasher


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the ASGI application.

    `database` lets a caller (the test suite) supply the engine; the app then leaves its
    disposal to that caller.
    """
    settings = settings or get_settings()
    configure_logging(settings)
    configure_error_reporting(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[State]:
        db = database or Database.from_settings(settings.database)
        limiter = RateLimiter(settings)
        draining = Draining()
        try:
            with (
                traced_clients(settings.tracing, db.engine),
                draining.on_sigterm(settings.shutdown_drain_seconds),
            ):
                async with _embedded_relay(settings, db):  # stops before the database closes
                    yield {
                        "database": db,
                        "rate_limiter": limiter,
                        "draining": draining,
                        "password_hasher": PasswordHasher(settings.auth),
                    }
        finally:
            await limiter.close()
            if database is None:
                await db.dispose()
            flush_error_reports()

    # Outermost first: each entry wraps everything below it. With tracing on, the
    # OpenTelemetry middleware wraps them all.
    middleware = [
        *([Middleware(HttpMetricsMiddleware)] if settings.metrics.enabled else []),
        Middleware(SecurityHeadersMiddleware),
        Middleware(request_id_middleware),
        Middleware(AccessLogMiddleware),
        Middleware(
            ApiVersionMiddleware,
            versions=settings.api.versions,
            default=settings.api.default_version,
        ),
        Middleware(NoStoreMiddleware, path_prefixes=NO_STORE_PREFIXES),
        Middleware(TrustedHostMiddleware, allowed_hosts=settings.trusted_hosts),
        *([Middleware(HttpsRedirectMiddleware)] if settings.https_redirect else []),
        *_cors(settings),
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes),
        Middleware(UnhandledErrorMiddleware),
    ]
    docs: dict[str, Any] = (
        {"docs_url": "/docs", "openapi_url": "/openapi.json"}
        if settings.docs_enabled
        else {"docs_url": None, "openapi_url": None}
    )
    app = FastAPI(
        title=settings.project_name,
        version="1.0.0",
        lifespan=lifespan,
        middleware=middleware,
        redoc_url=None,
        # Operation ids are the endpoint names (`list_posts`): stable, and what the generated
        # frontend client calls its functions.
        generate_unique_id_function=lambda route: route.name,
        # Tracing is OTEL_EXPORTER_OTLP_ENDPOINT's (app/observability/tracing.py): FastAPI's
        # own telemetry would start on any tracer provider found in the process.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        **docs,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    if settings.metrics.enabled:
        app.include_router(health.metrics_router)
    app.include_router(api_router())
    install_problem_openapi(
        app,
        api_prefix=API_PREFIX,
        api_errors=(RateLimited, RateLimiterUnavailable, DatabaseUnavailable),
    )
    install_frontend(app, settings.frontend_dir, api_root=API_ROOT)
    instrument_app(settings.tracing, app)
    return app


def _cors(settings: Settings) -> list[Middleware]:
    """CORS only for the configured origins; without any, browsers keep the same-origin rule."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID", "X-API-Version"],
            expose_headers=["X-Request-ID", "X-API-Version", "RateLimit", "RateLimit-Policy"],
            # Requests authenticate with bearer tokens; the one cookie is the OAuth flow's
            # browser binding, which a frontend on another origin sets by calling
            # `.../link/start` with credentials.
            allow_credentials=True,
        )
    ]


@asynccontextmanager
async def _embedded_relay(settings: Settings, database: Database) -> AsyncIterator[None]:
    """Without Redis there is no worker process: relay outbox events from here."""
    if settings.redis.url or not settings.outbox.relay_enabled:
        yield
        return
    context = HandlerContext(settings=settings, mailer=mailer_from_settings(settings.smtp))
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.relay(database, context, stop), name="outbox-relay")
    try:
        yield
    finally:
        stop.set()
        await task


def api_router() -> APIRouter:
    """Every discovered domain's router, under the versioned prefix."""
    api = APIRouter(prefix=API_PREFIX)
    for domain in discover():
        if domain.router is not None:
            api.include_router(domain.router)
    return api
