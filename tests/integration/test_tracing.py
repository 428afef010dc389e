"""OpenTelemetry traces: request, SQL and Redis spans, outbox links, and what stays untraced."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind
from redis.asyncio import Redis
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app import outbox
from app.db import Database, utcnow
from app.mail import LogMailer
from app.main import create_app
from app.observability.tracing import SAMPLER, ScrubbingExporter
from app.outbox import HandlerContext, OutboxEvent, OutboxStatus
from app.settings import Settings
from tests.conftest import TEST_REDIS_URL, serve
from tests.factories import make_account, make_post
from tests.identity_provider import IdentityProvider
from tests.oauth_browser import GENERIC, oauth_settings
from tests.support import forget_queue, log_events, make_settings

# Set, so the app instruments; never reached, since the provider installed below is kept.
TRACED = {"exporter_otlp_endpoint": "http://127.0.0.1:9/unused"}
SQL = "opentelemetry.instrumentation.sqlalchemy"
REDIS = "opentelemetry.instrumentation.redis"
HTTP = "opentelemetry.instrumentation.httpx"  # httpx2's instrumentation is in the same package


@pytest.fixture(scope="module")
def _exporter() -> Iterator[InMemorySpanExporter]:
    """Every span this process finishes, while this module runs.

    The global tracer provider can be set once per process: install an SDK provider only
    when there is none yet, else add to the one already there.
    """
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(sampler=SAMPLER)  # the application's own sampling
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    # What the application's OTLP exporter would send.
    provider.add_span_processor(SimpleSpanProcessor(ScrubbingExporter(exporter)))
    yield exporter
    # The processor cannot be removed: a stopped exporter keeps nothing for later modules.
    exporter.clear()
    exporter.shutdown()


@pytest.fixture(autouse=True)
def spans(_exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    _exporter.clear()
    yield _exporter
    _exporter.clear()


def _url(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
async def traced_settings(private_engine: AsyncEngine) -> AsyncIterator[Settings]:
    """Tracing on. With `TEST_REDIS_URL`, rate limiting counts in Redis too, under a key
    prefix of this test's own whose keys are deleted afterwards."""
    prefix = f"trace-test-{uuid.uuid4().hex}"
    redis = (
        {"redis": {"url": TEST_REDIS_URL}, "rate_limit": {"enabled": True, "key_prefix": prefix}}
        if TEST_REDIS_URL
        else {}
    )
    yield make_settings(_url(private_engine), tracing=TRACED, **redis)
    if TEST_REDIS_URL:
        async with Redis.from_url(TEST_REDIS_URL) as client:
            await forget_queue(client, prefix)


@pytest.fixture
def traced_app(
    traced_settings: Settings, private_engine: AsyncEngine, spans: InMemorySpanExporter
) -> FastAPI:
    # A database of its own: instrumenting the shared engine would trace every later test.
    return create_app(traced_settings, database=Database(private_engine))


@pytest.fixture
async def traced(traced_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(traced_app) as client:
        yield client


def _span_id(context: SpanContext | None) -> int | None:
    return context.span_id if context is not None else None


def _ancestors(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    """The span's parent, its parent's parent and so on, as far as they were recorded."""
    by_id = {_span_id(s.context): s for s in spans}
    chain: list[ReadableSpan] = []
    parent = by_id.get(_span_id(span.parent)) if span.parent is not None else None
    while parent is not None:
        chain.append(parent)
        parent = by_id.get(_span_id(parent.parent)) if parent.parent is not None else None
    return chain


def _from(scope: str, spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [
        s
        for s in spans
        if s.instrumentation_scope is not None and s.instrumentation_scope.name == scope
    ]


def _only(kind: SpanKind, spans: Sequence[ReadableSpan]) -> ReadableSpan:
    [span] = [s for s in spans if s.kind is kind]
    return span


def _trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    trace_id: int = span.context.trace_id
    return trace_id


def _assert_under(
    children: list[ReadableSpan], root: ReadableSpan, spans: Sequence[ReadableSpan]
) -> None:
    assert children
    for child in children:
        assert _trace_id(child) == _trace_id(root)
        assert root in _ancestors(child, spans), child.name


async def test_a_request_makes_a_server_span_named_by_its_route_with_sql_children(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    for path, route, status in [
        ("/api/v1/posts", "/api/v1/posts", 200),
        ("/api/v1/posts/424242", "/api/v1/posts/{post_id}", 404),
    ]:
        spans.clear()
        response = await traced.get(path)
        assert response.status_code == status, response.text

        finished = spans.get_finished_spans()
        server = _only(SpanKind.SERVER, finished)
        # The template, never the raw path: one span name per route, whatever the ids.
        assert server.name == f"GET {route}"
        assert server.attributes is not None
        assert server.attributes["http.route"] == route
        assert server.parent is None
        _assert_under(_from(SQL, finished), server, finished)
        if TEST_REDIS_URL:  # the rate limiter counts the request in Redis
            _assert_under(_from(REDIS, finished), server, finished)


async def test_the_access_line_carries_the_ids_of_the_request_span(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    response = await traced.get("/api/v1/posts")
    assert response.status_code == 200

    server = _only(SpanKind.SERVER, spans.get_finished_spans())
    assert server.context is not None
    [access] = log_events(caplog.records, "app.access")
    assert access["trace_id"] == f"{server.context.trace_id:032x}"
    assert access["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
async def test_probes_and_scrapes_make_no_spans(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter, path: str
) -> None:
    response = await traced.get(path)

    assert response.status_code == 200, response.text
    assert [s.name for s in spans.get_finished_spans()] == []


async def test_an_outbox_event_is_processed_in_a_consumer_span_linked_to_its_request(
    traced: httpx.AsyncClient,
    traced_settings: Settings,
    private_engine: AsyncEngine,
    spans: InMemorySpanExporter,
) -> None:
    author = await make_account(traced)
    spans.clear()
    # A caller's baggage is theirs: it is not stored with the event.
    response = await traced.post(
        "/api/v1/posts",
        json={"title": "A title", "content": "Some content"},
        headers=author.headers | {"baggage": "email=alice%40example.com"},
    )
    assert response.status_code == 201
    post = response.json()
    request = _only(SpanKind.SERVER, spans.get_finished_spans())
    assert request.name == "POST /api/v1/posts"
    assert request.context is not None

    database = Database(private_engine)
    async with database.sessionmaker() as session:
        event = await session.scalar(
            select(OutboxEvent).where(
                OutboxEvent.topic == "post.created",
                OutboxEvent.payload["post_id"].as_integer() == post["id"],
            )
        )
        assert event is not None
        assert event.trace_context is not None
        assert set(event.trace_context) == {"traceparent"}
        # record() ran inside the request's server span: that span is the one stored.
        version, trace_id, span_id, _flags = event.trace_context["traceparent"].split("-")
        assert (version, trace_id, span_id) == (
            "00",
            f"{request.context.trace_id:032x}",
            f"{request.context.span_id:016x}",
        )
        claimed = await outbox.claim(session, traced_settings.outbox, utcnow())
        await session.commit()
    assert event.id in claimed[0]  # the batch of first attempts

    spans.clear()
    context = HandlerContext(settings=traced_settings, mailer=LogMailer())
    await outbox.process(database, [event.id], context)

    finished = spans.get_finished_spans()
    consumer = _only(SpanKind.CONSUMER, finished)
    assert consumer.name == "outbox post.created"
    # Work done later on the request's behalf: a trace of its own, linked, not parented.
    assert consumer.parent is None
    assert _trace_id(consumer) != request.context.trace_id
    [link] = consumer.links
    assert link.context.trace_id == request.context.trace_id
    assert link.context.span_id == request.context.span_id
    assert consumer.attributes is not None
    assert consumer.attributes["outbox.event_id"] == event.id
    assert consumer.attributes["outbox.attempt"] == 1
    # The batch's own bookkeeping starts no trace, as the dispatcher's does not: the queries
    # recorded are the handler's, under that span (this handler runs none).
    assert all(consumer in _ancestors(query, finished) for query in _from(SQL, finished))
    async with database.sessionmaker() as session:
        done = await session.get_one(OutboxEvent, event.id)
        assert done.status is OutboxStatus.COMPLETED


async def test_a_call_to_an_oauth_provider_makes_a_client_span_under_the_request(
    private_engine: AsyncEngine, identity_provider: IdentityProvider, spans: InMemorySpanExporter
) -> None:
    settings = make_settings(
        _url(private_engine), tracing=TRACED, oauth=oauth_settings(identity_provider)
    )
    async with serve(create_app(settings, database=Database(private_engine))) as client:
        response = await client.get(f"/api/v1/auth/oauth/{GENERIC}/start")

    assert response.status_code == 302, response.text
    finished = spans.get_finished_spans()
    server = _only(SpanKind.SERVER, finished)
    # The first start fetches the discovery document.
    discovery = _only(SpanKind.CLIENT, _from(HTTP, finished))
    assert discovery.attributes is not None
    assert str(discovery.attributes["http.url"]).endswith("/.well-known/openid-configuration")
    _assert_under([discovery], server, finished)


async def test_without_an_endpoint_nothing_is_traced_and_events_carry_no_context(
    client: httpx.AsyncClient, database: Database, spans: InMemorySpanExporter
) -> None:
    author = await make_account(client)
    post = await make_post(client, author)
    listed = await client.get("/api/v1/posts")

    assert listed.status_code == 200
    assert [s.name for s in spans.get_finished_spans()] == []
    async with database.sessionmaker() as session:
        contexts = (
            await session.scalars(
                select(OutboxEvent.trace_context).where(
                    OutboxEvent.topic == "post.created",
                    OutboxEvent.payload["post_id"].as_integer() == post["id"],
                )
            )
        ).all()
    assert contexts == [None]


async def test_the_engine_and_clients_are_uninstrumented_when_the_app_stops(
    traced_app: FastAPI, private_engine: AsyncEngine, spans: InMemorySpanExporter
) -> None:
    async def query() -> list[ReadableSpan]:
        spans.clear()
        with trace.get_tracer(__name__).start_as_current_span("work"):
            async with private_engine.connect() as connection:
                assert await connection.scalar(text("SELECT 1")) == 1
        return _from(SQL, spans.get_finished_spans())

    async with serve(traced_app):
        assert await query()  # while it runs, any query on its engine is traced
        assert RedisInstrumentor().is_instrumented_by_opentelemetry
        assert HTTPX2ClientInstrumentor().is_instrumented_by_opentelemetry

    assert await query() == []
    assert [span.name for span in spans.get_finished_spans()] == ["work"]
    assert not RedisInstrumentor().is_instrumented_by_opentelemetry
    assert not HTTPX2ClientInstrumentor().is_instrumented_by_opentelemetry


async def test_a_query_outside_any_request_or_event_starts_no_trace(
    traced_app: FastAPI, private_engine: AsyncEngine, spans: InMemorySpanExporter
) -> None:
    async with serve(traced_app), private_engine.connect() as connection:  # a poll, say
        assert await connection.scalar(text("SELECT 1")) == 1

    assert spans.get_finished_spans() == ()


async def test_exported_spans_carry_no_error_text(
    traced_app: FastAPI, private_engine: AsyncEngine, spans: InMemorySpanExporter
) -> None:
    async with serve(traced_app):
        with trace.get_tracer(__name__).start_as_current_span("work"):
            async with private_engine.connect() as connection:
                with pytest.raises(DBAPIError):
                    await connection.execute(text("SELECT secret_column_abc FROM users"))

    [failed] = [s for s in _from(SQL, spans.get_finished_spans()) if not s.status.is_ok]
    assert failed.status.description is None  # the driver's message would quote the SQL
    for event in failed.events:
        assert set(event.attributes or {}) <= {"exception.type"}
    assert all("secret_column_abc" not in str(event.attributes) for event in failed.events)


async def test_exported_urls_carry_no_query_string(
    traced: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    response = await traced.get("/api/v1/posts", params={"search": "one-time-code-abc"})

    assert response.status_code == 200
    server = _only(SpanKind.SERVER, spans.get_finished_spans())
    assert server.attributes is not None
    assert "one-time-code-abc" not in str(dict(server.attributes))
    assert any(str(value).endswith("/api/v1/posts") for value in server.attributes.values())


async def test_a_failed_handler_run_is_an_error_span(
    traced_app: FastAPI,
    traced_settings: Settings,
    private_engine: AsyncEngine,
    spans: InMemorySpanExporter,
) -> None:
    database = Database(private_engine)
    async with serve(traced_app):
        async with database.sessionmaker() as session:
            event = outbox.record(session, "test.trace.no-handler", {"n": 1})
            await session.commit()
            await outbox.claim(session, traced_settings.outbox, utcnow())
            await session.commit()
        spans.clear()
        await outbox.process(database, [event.id], HandlerContext(traced_settings, LogMailer()))

    consumer = _only(SpanKind.CONSUMER, spans.get_finished_spans())
    assert consumer.name == "outbox test.trace.no-handler"
    assert not consumer.status.is_ok
    assert consumer.attributes is not None
    assert consumer.attributes["error.type"] == "LookupError"  # the kind, not the text
