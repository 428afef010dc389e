"""`/metrics` through the app: HTTP, auth, rate-limit and outbox metrics, parsed from a scrape.

Metrics belong to the process, so each test compares a scrape before and after what it does.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app import outbox
from app.db import Database, utcnow
from app.domains.auth.models import RefreshToken
from app.domains.auth.tokens import hash_refresh_token
from app.mail import LogMailer
from app.main import create_app
from app.observability import metrics
from app.outbox import HandlerContext, OutboxEvent, OutboxStatus
from tests.conftest import serve
from tests.factories import login, make_account, make_user, refresh
from tests.support import (
    ROOT,
    assert_problem,
    counted_since,
    counters,
    log_events,
    make_settings,
    unused_port,
)

POST_ROUTE = "/api/v1/posts/{post_id}"
BACKLOG_STATUSES = ("pending", "queued", "failed")


@outbox.handler("test.metrics.ok")
async def _ok(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    pass


@outbox.handler("test.metrics.broken")
async def _broken(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    raise RuntimeError("this handler always fails")


Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Scrape:
    """One parsed exposition: family types, and every sample's value by name and labels."""

    types: dict[str, str]
    samples: dict[tuple[str, Labels], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        families = list(text_string_to_metric_families(text))
        return cls(
            types={family.name: family.type for family in families},
            samples={
                (sample.name, frozenset(sample.labels.items())): sample.value
                for family in families
                for sample in family.samples
            },
        )

    def value(self, sample: str, **labels: str) -> float:
        """The sample with exactly these labels; 0 when the process has not made it yet."""
        return self.samples.get((sample, frozenset(labels.items())), 0.0)

    def label_values(self, sample: str, label: str) -> set[str]:
        return {
            dict(labels)[label]
            for name, labels in self.samples
            if name == sample and label in dict(labels)
        }

    def moved(self, before: Scrape, sample: str, **labels: str) -> float:
        return self.value(sample, **labels) - before.value(sample, **labels)

    def http(self) -> dict[tuple[str, Labels], float]:
        return {key: value for key, value in self.samples.items() if key[0].startswith("http_")}

    def backlog(self) -> dict[str, float]:
        return {status: self.value("outbox_events", status=status) for status in BACKLOG_STATUSES}


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return Scrape.parse(response.text)


@pytest.fixture
def outbox_app(private_engine: AsyncEngine) -> FastAPI:
    """An app on a database of the test's own, so the outbox table holds only its events."""
    url = private_engine.url.render_as_string(hide_password=False)
    return create_app(make_settings(url), database=Database(private_engine))


async def _record(engine: AsyncEngine, topic: str, **fields: Any) -> int:
    async with Database(engine).sessionmaker() as session:
        event = outbox.record(session, topic, {})
        for name, value in fields.items():
            setattr(event, name, value)
        await session.commit()
        return event.id


async def _set(engine: AsyncEngine, event_id: int, **fields: Any) -> None:
    async with Database(engine).sessionmaker() as session:
        await session.execute(update(OutboxEvent).where(OutboxEvent.id == event_id).values(fields))
        await session.commit()


# HTTP metrics


async def test_requests_are_counted_by_route_template_and_exact_status(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)

    missing_post = await client.get("/api/v1/posts/123")
    unknown = await client.get("/api/v1/no-such-thing/456")
    listing = await client.get("/api/v1/posts")
    after = await scrape(client)

    assert (missing_post.status_code, unknown.status_code, listing.status_code) == (404, 404, 200)
    total = "http_requests_total"
    assert after.moved(before, total, method="GET", handler=POST_ROUTE, status="404") == 1
    assert after.moved(before, total, method="GET", handler="/api/v1/posts", status="200") == 1
    assert after.moved(before, total, method="GET", handler="none", status="404") == 1
    handlers = after.label_values(total, "handler")
    assert {"/api/v1/posts/123", "/api/v1/no-such-thing/456"}.isdisjoint(handlers)
    assert "4xx" not in after.label_values(total, "status")


async def test_scrapes_are_not_counted(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    after = await scrape(client)  # the first scrape has finished, and would be counted now

    assert "/metrics" not in after.label_values("http_requests_total", "handler")
    assert "/metrics" not in after.label_values("http_requests_inprogress", "handler")
    assert after.http() == before.http()


async def test_latency_histogram_and_in_progress_gauge_for_a_route(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)

    await client.get("/api/v1/posts/123")
    after = await scrape(client)

    assert after.types["http_request_duration_seconds"] == "histogram"
    assert after.types["http_requests_inprogress"] == "gauge"
    route = {"method": "GET", "handler": POST_ROUTE}
    assert after.moved(before, "http_request_duration_seconds_count", **route) == 1
    assert after.moved(before, "http_request_duration_seconds_bucket", **route, le="+Inf") == 1
    assert after.moved(before, "http_request_duration_seconds_sum", **route) > 0
    assert ("http_requests_inprogress", frozenset(route.items())) in after.samples
    assert after.value("http_requests_inprogress", **route) == 0  # none left running


async def test_metrics_are_prometheus_text_and_answer_any_host(
    database_url: str, database: Database
) -> None:
    settings = make_settings(database_url, trusted_hosts=["api.example.com"])
    async with serve(create_app(settings, database=database)) as client:
        pod_ip = {"Host": "10.1.2.3:8000"}
        response = await client.get("/metrics", headers=pod_ip)
        api = await client.get("/api/v1/posts", headers=pod_ip)

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert "http_requests" in Scrape.parse(response.text).types
    assert_problem(api, 400, "invalid_host")  # the allowlist is on; /metrics is exempt


async def test_disabled_metrics_have_no_route_and_count_nothing(
    database_url: str, database: Database
) -> None:
    settings = make_settings(database_url, metrics={"enabled": False})
    before = counters("http_requests")
    async with serve(create_app(settings, database=database)) as client:
        response = await client.get("/metrics")
        missing_post = await client.get("/api/v1/posts/123")

    assert_problem(response, 404, "not_found")
    assert missing_post.status_code == 404
    assert counted_since(before, "http_requests") == {}


async def test_methods_outside_http_are_answered_but_not_counted(
    client: httpx.AsyncClient,
) -> None:
    before = counters("http_requests")
    responses = [await client.request(method, "/api/v1/posts") for method in ("FOO1", "FOO2")]

    assert [r.status_code for r in responses] == [405, 405]
    assert counted_since(before, "http_requests") == {}  # no series per invented method


async def test_a_metrics_token_is_required_when_set(database_url: str, database: Database) -> None:
    settings = make_settings(database_url, metrics={"token": "scrape-token-123"})
    async with serve(create_app(settings, database=database)) as client:
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        basic = await client.get("/metrics", headers={"Authorization": "Basic scrape-token-123"})
        right = await client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})

    for refused in (anonymous, wrong, basic):
        assert_problem(refused, 401, "metrics_token_required")
        assert refused.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200
    assert right.headers["content-type"].startswith("text/plain")


async def test_with_a_shared_directory_a_scrape_adds_up_every_process(
    database_url: str, database: Database, tmp_path: Path
) -> None:
    # What `python -m app --workers N` sets up: each process writes its values to the
    # directory, and a scrape of any of them reads them all.
    environment = {**os.environ, metrics.MULTIPROCESS_DIR_VARIABLE: str(tmp_path)}
    one_login = "from app.observability import metrics; metrics.LOGINS.labels('success').inc()"
    for _ in range(2):
        await anyio.run_process([sys.executable, "-c", one_login], env=environment, cwd=ROOT)
    settings = make_settings(database_url, metrics={"multiprocess_dir": str(tmp_path)})

    async with serve(create_app(settings, database=database)) as client:
        shared = await scrape(client)

    assert shared.value("auth_logins_total", result="success") == 2
    assert "http_requests" not in shared.types  # this process wrote nothing to the directory


# Auth metrics


async def test_each_password_login_counts_once_by_result(client: httpx.AsyncClient) -> None:
    user = await make_user(client)
    before = await scrape(client)

    success = await login(client, user["email"])
    failure = await login(client, user["email"], "not the password")
    after = await scrape(client)

    assert success.status_code == 200
    assert_problem(failure, 401, "invalid_credentials")
    assert after.moved(before, "auth_logins_total", result="success") == 1
    assert after.moved(before, "auth_logins_total", result="failure") == 1


async def test_refresh_reuse_counts_only_after_the_grace_window(
    client: httpx.AsyncClient, database: Database
) -> None:
    account = await make_account(client)
    assert (await refresh(client, account.refresh_token)).status_code == 200
    before = await scrape(client)

    within_grace = await refresh(client, account.refresh_token)
    middle = await scrape(client)
    async with database.sessionmaker() as session:  # as if rotated a minute ago
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == hash_refresh_token(account.refresh_token))
            .values(revoked_at=utcnow() - timedelta(seconds=60))
        )
        await session.commit()
    reused = await refresh(client, account.refresh_token)
    after = await scrape(client)

    assert_problem(within_grace, 401, "refresh_token_superseded")
    assert middle.moved(before, "auth_refresh_token_reuse_total") == 0
    assert_problem(reused, 401, "refresh_token_reused")
    assert after.moved(middle, "auth_refresh_token_reuse_total") == 1


# Rate-limit metrics


@pytest.mark.usefixtures("still_rate_limit_clock")
async def test_rate_limit_decisions_by_policy_and_decision(
    database_url: str, database: Database
) -> None:
    settings = make_settings(database_url, rate_limit={"enabled": True, "read": "2/minute"})
    async with serve(create_app(settings, database=database)) as client:
        before = await scrape(client)
        statuses = [(await client.get("/api/v1/posts")).status_code for _ in range(3)]
        after = await scrape(client)

    assert statuses == [200, 200, 429]
    decisions = "rate_limit_decisions_total"
    assert after.moved(before, decisions, policy="read", decision="allowed") == 2
    assert after.moved(before, decisions, policy="read", decision="refused") == 1


# Outbox metrics


async def test_backlog_gauges_read_the_database_at_scrape_time(
    outbox_app: FastAPI, private_engine: AsyncEngine
) -> None:
    an_hour_ago = utcnow() - timedelta(hours=1)
    await _record(private_engine, "test.metrics.ok", created_at=an_hour_ago)
    await _record(private_engine, "test.metrics.ok")
    await _record(private_engine, "test.metrics.ok", status=OutboxStatus.QUEUED)
    for _ in range(3):
        await _record(private_engine, "test.metrics.ok", status=OutboxStatus.FAILED)
    await _record(private_engine, "test.metrics.ok", status=OutboxStatus.COMPLETED)

    async with serve(outbox_app) as client:
        before_scrape = utcnow()
        result = await scrape(client)
        age_limit = (utcnow() - an_hour_ago).total_seconds()

    assert result.backlog() == {"pending": 2, "queued": 1, "failed": 3}
    assert result.types["outbox_oldest_pending_age_seconds"] == "gauge"
    age = result.value("outbox_oldest_pending_age_seconds")
    assert (before_scrape - an_hour_ago).total_seconds() <= age <= age_limit


async def test_the_age_is_zero_once_nothing_is_pending(
    outbox_app: FastAPI, private_engine: AsyncEngine
) -> None:
    old = await _record(private_engine, "test.metrics.ok", created_at=utcnow() - timedelta(hours=1))
    async with serve(outbox_app) as client:
        waiting = await scrape(client)
        await _set(private_engine, old, status=OutboxStatus.COMPLETED)
        done = await scrape(client)

    assert waiting.value("outbox_oldest_pending_age_seconds") >= 3600
    assert waiting.backlog()["pending"] == 1
    assert done.value("outbox_oldest_pending_age_seconds") == 0
    assert done.backlog() == {"pending": 0, "queued": 0, "failed": 0}


async def test_handler_runs_are_counted_by_topic_and_result(
    outbox_app: FastAPI, private_engine: AsyncEngine
) -> None:
    database = Database(private_engine)
    settings = make_settings("sqlite://", outbox={"max_attempts": 2})
    context = HandlerContext(settings=settings, mailer=LogMailer())

    async def drain() -> list[int]:
        handed: list[int] = []

        async def handle(event_ids: list[int]) -> None:
            handed.extend(event_ids)
            await outbox.process(database, event_ids, context)

        await outbox.dispatch(database, settings.outbox, handle)
        return handed

    ok = await _record(private_engine, "test.metrics.ok")
    broken = await _record(private_engine, "test.metrics.broken")
    async with serve(outbox_app) as client:
        before = await scrape(client)
        first = await drain()
        retried = await scrape(client)
        await _set(private_engine, broken, available_at=utcnow())  # its backoff is over
        second = await drain()
        after = await scrape(client)

    assert (first, second) == ([ok, broken], [broken])
    processed = "outbox_events_processed_total"
    assert retried.moved(before, processed, topic="test.metrics.ok", result="completed") == 1
    assert retried.moved(before, processed, topic="test.metrics.broken", result="retried") == 1
    assert retried.moved(before, processed, topic="test.metrics.broken", result="failed") == 0
    assert after.moved(retried, processed, topic="test.metrics.broken", result="failed") == 1
    assert after.moved(retried, processed, topic="test.metrics.broken", result="retried") == 0
    assert after.moved(retried, processed, topic="test.metrics.ok", result="completed") == 0
    assert after.backlog() == {"pending": 0, "queued": 0, "failed": 1}


async def test_metrics_answer_without_a_database_and_keep_the_last_backlog(
    outbox_app: FastAPI, private_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    await _record(private_engine, "test.metrics.ok")
    await _record(private_engine, "test.metrics.ok", status=OutboxStatus.FAILED)
    await _record(private_engine, "test.metrics.ok", status=OutboxStatus.FAILED)
    async with serve(outbox_app) as client:
        healthy = await scrape(client)
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{unused_port()}/db"

    with anyio.fail_after(10):
        async with serve(create_app(make_settings(dead))) as client:
            response = await client.get("/metrics")

    assert healthy.backlog() == {"pending": 1, "queued": 0, "failed": 2}
    assert response.status_code == 200, response.text
    outage = Scrape.parse(response.text)
    assert outage.backlog() == healthy.backlog()
    age = "outbox_oldest_pending_age_seconds"
    assert outage.value(age) == healthy.value(age)
    (warning,) = log_events(caplog.records, "app.health")
    assert warning["event"] == "outbox backlog not read for metrics"
