"""Pure ASGI middleware: security headers, request ids, the access log, API version headers,
no-store caching, trusted hosts, the HTTPS redirect, the body limit and the last-resort 500.

`main.py` lists them in order; each one is a small class that touches only what it must.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import cast

import sentry_sdk
from asgi_correlation_id import CorrelationIdMiddleware
from prometheus_fastapi_instrumentator.routing import get_route_name
from starlette.datastructures import URL, Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import problem_response, route_path, status_title, unhandled_error_response
from app.observability.logs import get_logger

logger = get_logger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
API_VERSION_HEADER = "X-API-Version"
API_VERSION_DEFAULTED_HEADER = "X-API-Version-Defaulted"
# Paths that probes and the metrics scraper reach by pod IP, so they answer whatever the
# Host header says, and over plain HTTP.
POD_IP_PATHS = frozenset({"/health", "/ready", "/metrics"})

# A caller's request id is kept when it is a plain token; anything else (too long, spaces,
# control characters that could forge log lines) is replaced by a fresh one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_VERSIONED_PATH = re.compile(r"^/api/(v\d+)(?:/|$)")
# RFC 9110 7.2 Host: a DNS name, an IPv4 address or a bracketed IPv6 literal, then an
# optional numeric port. Nothing else is compared against the allowlist.
_HOST_HEADER = re.compile(
    r"(?P<host>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"|\[[0-9a-f:.]+\])(?::\d{1,5})?"
)


async def send_problem(
    scope: Scope, receive: Receive, send: Send, *, status: int, code: str, detail: str
) -> None:
    """Answer from middleware, before any route runs, with the same problem+json body."""
    response = problem_response(
        scope["path"], status=status, code=code, title=status_title(status), detail=detail
    )
    await response(scope, receive, send)


_ROUTE_TEMPLATE = "app.route_template"


def route_template(scope: Scope) -> str | None:
    """The template of the route that serves the request (`/api/v1/posts/{post_id}`), or
    None when none matches. Matching every route is not free: the answer is kept in the
    request's scope, so the metrics and the access log resolve it once between them."""
    if _ROUTE_TEMPLATE not in scope:
        connection = HTTPConnection(scope)
        scope[_ROUTE_TEMPLATE] = get_route_name(connection, should_include_root_path=False)
    return cast(str | None, scope[_ROUTE_TEMPLATE])


def is_valid_request_id(value: str) -> bool:
    return _REQUEST_ID.fullmatch(value) is not None


def request_id_middleware(app: ASGIApp) -> CorrelationIdMiddleware:
    return CorrelationIdMiddleware(
        app, header_name=REQUEST_ID_HEADER, validator=is_valid_request_id
    )


access_logger = get_logger("app.access")


class AccessLogMiddleware:
    """One line per request once it is answered: method, route template, status, duration.

    The route template (`/api/v1/posts/{post_id}`), not the path, so lines group by
    endpoint; the query string, which may carry anything, is never logged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])  # an HTTPStatus renders as its name in text
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            access_logger.info(
                "request",
                method=scope["method"],
                route=route_template(scope),
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )


class ApiVersionMiddleware:
    """Tells every response which API version answered it.

    The version comes from the path (`/api/v1/...`), else from a supported `X-API-Version`
    request header; otherwise the default answers and `X-API-Version-Defaulted` says so.
    """

    def __init__(self, app: ASGIApp, *, versions: Iterable[str], default: str) -> None:
        self.app = app
        self.versions = frozenset(versions)
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        version, defaulted = self._resolve(scope)

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers[API_VERSION_HEADER] = version
                if defaulted:
                    headers[API_VERSION_DEFAULTED_HEADER] = "true"
            await send(message)

        await self.app(scope, receive, send_with_version)

    def _resolve(self, scope: Scope) -> tuple[str, bool]:
        match = _VERSIONED_PATH.match(route_path(scope))
        if match and match.group(1) in self.versions:
            return match.group(1), False
        requested = Headers(scope=scope).get(API_VERSION_HEADER)
        if requested in self.versions:
            return requested, False
        return self.default, True


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every response under the given paths, errors included,
    so tokens and account data never rest in a browser or proxy cache (RFC 9111 5.2.2.5)."""

    def __init__(self, app: ASGIApp, *, path_prefixes: Iterable[str]) -> None:
        self.app = app
        self.path_prefixes = tuple(path_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not route_path(scope).startswith(self.path_prefixes):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Cache-Control"] = "no-store"
                headers["Pragma"] = "no-cache"  # HTTP/1.0 caches
            await send(message)

        await self.app(scope, receive, send_no_store)


class TrustedHostMiddleware:
    """Refuses requests whose Host header is not served here (Host header injection).

    An empty allowlist allows every host; production refuses to start that way.
    Entries may be exact names or `*.example.com` wildcards.
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        hosts = [h.lower() for h in allowed_hosts]
        self.allow_any = not hosts or "*" in hosts
        self.exact = frozenset(h for h in hosts if not h.startswith("*."))
        self.suffixes = tuple(h[1:] for h in hosts if h.startswith("*."))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.allow_any
            or route_path(scope) in POD_IP_PATHS
            or self._is_allowed(Headers(scope=scope).get("host", ""))
        ):
            await self.app(scope, receive, send)
            return
        await send_problem(
            scope,
            receive,
            send,
            status=400,
            code="invalid_host",
            detail="The Host header names a host this service does not serve.",
        )

    def _is_allowed(self, host_header: str) -> bool:
        match = _HOST_HEADER.fullmatch(host_header.lower())
        if match is None:  # userinfo, paths, spaces or a non-numeric port: not a host
            return False
        host = match.group("host")
        return host in self.exact or host.endswith(self.suffixes)


# OWASP HTTP Headers Cheat Sheet. The API answers JSON only: nothing may load or frame it.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The interactive docs load Swagger UI from its CDN and start it with an inline script.
DOCS_CSP = (
    "default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "connect-src 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs",)
HSTS = "max-age=63072000; includeSubDomains"


class SecurityHeadersMiddleware:
    """Browser hardening headers on every response, errors included (it wraps everything).

    HSTS is sent only over HTTPS, where it means something (RFC 6797 7.2).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if route_path(scope).startswith(DOCS_PATHS) else API_CSP
        https = scope.get("scheme") == "https"

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                # A response that brings its own policy keeps it (the frontend's, app/spa.py).
                headers.setdefault("Content-Security-Policy", csp)
                if https:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_hardened)


class HttpsRedirectMiddleware:
    """Sends plain-HTTP requests to HTTPS: GET and HEAD are redirected (308), anything else
    is refused with a 400 problem, so a credential sent over HTTP is never replayed to the
    HTTPS URL by a client following a 307/308. Probes answer over HTTP (pod IP checks).

    Behind a TLS-terminating proxy, uvicorn's `--proxy-headers` (on by default for trusted
    addresses, see FORWARDED_ALLOW_IPS) sets the scheme from `X-Forwarded-Proto`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "http":
            await self.app(scope, receive, send)
            return
        if route_path(scope) in POD_IP_PATHS:
            await self.app(scope, receive, send)
            return
        if scope["method"] in {"GET", "HEAD"}:
            url = URL(scope=scope).replace(scheme="https", port=None)
            await RedirectResponse(str(url), status_code=308)(scope, receive, send)
            return
        await send_problem(
            scope,
            receive,
            send,
            status=400,
            code="https_required",
            detail="This service accepts this request over HTTPS only.",
        )


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes` with a 413 problem, never reading them whole.

    A declared Content-Length over the limit is answered before any byte is read. A body
    without one (chunked) is counted as it streams; the read that passes the limit raises
    a 413 HTTPException, which FastAPI lets through to the problem handlers.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await send_problem(
                scope, receive, send, status=413, code="content_too_large", detail=self.detail
            )
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(status_code=413, detail=self.detail)
            return message

        await self.app(scope, counting_receive, send)

    @property
    def detail(self) -> str:
        return f"The request body is larger than {self.max_bytes} bytes."


class UnhandledErrorMiddleware:
    """Turns an exception nothing else handled into the generic 500 problem.

    It sits inside the request-id and version middleware, so the 500 carries their headers
    and the log line carries the request id. The traceback goes to the log, never the body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if response_started:
                # Too late for a problem body: the error goes on to the outermost handler,
                # which logs and reports it, and the server closes the connection.
                raise
            logger.exception("unhandled error", method=scope["method"], path=scope["path"])
            sentry_sdk.capture_exception(exc)
            await unhandled_error_response(scope["path"])(scope, receive, send)
