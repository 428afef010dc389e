"""Rate limiting over HTTP, on the memory store and on real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from limits.aio import storage as limits_storage
from limits.aio import strategies as limits_strategies
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import Database, utcnow
from app.domains.auth.tokens import issue_access_token
from app.main import create_app
from app.rate_limit import RateLimiter
from tests import probe_routes
from tests.conftest import TEST_REDIS_URL, serve
from tests.support import (
    assert_problem,
    counted_since,
    counters,
    log_events,
    make_settings,
    unused_port,
)

BACKENDS = [
    "memory",
    pytest.param(
        "redis", marks=pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")
    ),
]
Limited = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(params=BACKENDS)
async def limited(
    request: pytest.FixtureRequest, engine: AsyncEngine, still_rate_limit_clock: None
) -> AsyncIterator[Limited]:
    """Builds clients of an app with rate limiting on, under a key prefix of this test's own,
    and a memory store whose clock stands still unless the test moves it.

    Its keys are deleted afterwards; nothing else in Redis is touched.
    """
    prefix = f"test-{uuid.uuid4().hex}"
    redis_url = TEST_REDIS_URL if request.param == "redis" else None

    @asynccontextmanager
    async def build(
        *, redis_url: str | None = redis_url, **settings: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        policies = {"key_prefix": prefix, "enabled": True} | settings.pop("rate_limit", {})
        app_settings = make_settings(
            engine.url.render_as_string(hide_password=False),
            redis={"url": redis_url},
            rate_limit=policies,
            **settings,
        )
        app = create_app(app_settings, database=Database(engine))
        app.include_router(probe_routes.router)
        async with serve(app) as client:
            client.app_settings = app_settings  # type: ignore[attr-defined]
            yield client

    yield build
    if redis_url:
        async with Redis.from_url(redis_url) as redis:
            keys = [key async for key in redis.scan_iter(f"{prefix}*")]
            if keys:
                await redis.delete(*keys)


async def test_200_concurrent_requests_against_10_admit_exactly_10(limited: Limited) -> None:
    # A generous timeout: this is about atomicity, and 200 requests share one event loop here.
    before = counters("rate_limit_decisions")
    async with limited(rate_limit={"read": "10/minute", "timeout_seconds": 10}) as client:
        responses = await asyncio.gather(*(client.get("/api/v1/posts") for _ in range(200)))
    decisions = counted_since(before, "rate_limit_decisions")

    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10
    assert statuses.count(429) == 190
    assert decisions == {"read:allowed": 10, "read:refused": 190}  # none failed open


async def test_headers_on_success_and_the_429_problem(limited: Limited) -> None:
    async with limited(rate_limit={"read": "3/minute"}) as client:
        responses = [await client.get("/api/v1/posts") for _ in range(4)]

    first, refused = responses[0], responses[-1]
    assert first.headers["ratelimit-policy"] == '"read";q=3;w=60'
    remaining, reset = first.headers["ratelimit"].removeprefix('"read";').split(";")
    assert remaining == "r=2"
    assert 0 <= int(reset.removeprefix("t=")) <= 60
    assert [r.headers["ratelimit"].split(";")[1] for r in responses[:3]] == ["r=2", "r=1", "r=0"]
    body = assert_problem(refused, 429, "rate_limited")
    assert body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-policy"] == '"read";q=3;w=60'
    assert refused.headers["ratelimit"].startswith('"read";r=0;t=')


@pytest.mark.parametrize("limited", ["memory"], indirect=True)  # Redis expires its own keys
async def test_a_window_resets(limited: Limited, monkeypatch: pytest.MonkeyPatch) -> None:
    offset = 0.0
    clock = SimpleNamespace(time=lambda: time.time() + offset)
    for module in (limits_storage.memory, limits_strategies):
        monkeypatch.setattr(module, "time", clock)
    monkeypatch.setattr("app.rate_limit.time", clock)
    async with limited(rate_limit={"read": "2/minute", "strategy": "fixed-window"}) as client:
        assert [(await client.get("/api/v1/posts")).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        offset = 61.0  # a minute later
        assert (await client.get("/api/v1/posts")).status_code == 200


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")
@pytest.mark.parametrize("limited", ["redis"], indirect=True)
@pytest.mark.parametrize("strategy", ["fixed-window", "sliding-window-counter", "moving-window"])
async def test_every_redis_key_expires_within_its_window(limited: Limited, strategy: str) -> None:
    assert TEST_REDIS_URL
    async with limited(rate_limit={"read": "5/minute", "strategy": strategy}) as client:
        for _ in range(3):
            await client.get("/api/v1/posts")
        prefix = client.app_settings.rate_limit.key_prefix  # type: ignore[attr-defined]
        async with Redis.from_url(TEST_REDIS_URL) as redis:
            ttls = [await redis.pttl(key) async for key in redis.scan_iter(f"{prefix}*")]

    assert ttls
    assert all(0 < ttl <= 2 * 60_000 for ttl in ttls)  # a sliding window keeps the last one too


async def test_forged_forwarded_for_changes_nothing_without_trusted_proxies(
    limited: Limited,
) -> None:
    async with limited(rate_limit={"read": "2/minute"}) as client:
        statuses = [
            (
                await client.get("/api/v1/posts", headers={"X-Forwarded-For": f"10.0.0.{i}"})
            ).status_code
            for i in range(3)
        ]

    assert statuses == [200, 200, 429]


async def test_only_the_trusted_hop_counts_behind_a_proxy(limited: Limited) -> None:
    async with limited(
        rate_limit={"read": "2/minute"}, trust_proxy_headers=True, trusted_proxy_count=1
    ) as client:

        async def from_(chain: str) -> int:
            response = await client.get("/api/v1/posts", headers={"X-Forwarded-For": chain})
            return response.status_code

        # The client controls everything left of the last hop; only that hop is the key.
        same_client = [
            await from_(f"{forged}, 203.0.113.7") for forged in ("1.1.1.1", "2.2.2.2", "x")
        ]
        other_client = await from_("1.1.1.1, 203.0.113.8")

    assert same_client == [200, 200, 429]
    assert other_client == 200


async def test_one_token_from_many_addresses_shares_one_bucket(limited: Limited) -> None:
    async with limited(rate_limit={"read": "2/minute"}, trust_proxy_headers=True) as client:
        settings = client.app_settings  # type: ignore[attr-defined]
        token = issue_access_token(settings, user_id=424242, session_id=uuid.uuid4(), now=utcnow())
        statuses = [
            (
                await client.get(
                    "/api/v1/posts",
                    headers={
                        "Authorization": f"Bearer {token}",
                        "X-Forwarded-For": f"198.51.100.{i}",
                    },
                )
            ).status_code
            for i in range(3)
        ]

    # The session is not real, so the route refuses the token, but only after it was counted.
    assert statuses == [401, 401, 429]


async def test_an_invalid_token_is_counted_by_address(limited: Limited) -> None:
    async with limited(rate_limit={"read": "2/minute"}) as client:
        statuses = [
            (
                await client.get("/api/v1/posts", headers={"Authorization": f"Bearer forged{i}"})
            ).status_code
            for i in range(3)
        ]

    assert statuses == [401, 401, 429]


async def test_tokens_do_not_buy_fresh_login_buckets(limited: Limited) -> None:
    async with limited(rate_limit={"login": "2/minute"}) as client:
        settings = client.app_settings  # type: ignore[attr-defined]
        statuses = []
        for user_id in (1, 2, 3):  # a different account's (validly signed) token each time
            token = issue_access_token(
                settings, user_id=user_id, session_id=uuid.uuid4(), now=utcnow()
            )
            response = await client.post(
                "/api/v1/login",
                data={"username": f"u{user_id}@example.com", "password": "guess"},
                headers={"Authorization": f"Bearer {token}"},
            )
            statuses.append(response.status_code)

    assert statuses == [401, 401, 429]


async def test_login_is_limited_per_account_across_addresses(limited: Limited) -> None:
    async with limited(
        rate_limit={"login": "100/minute", "login_account": "3/minute"}, trust_proxy_headers=True
    ) as client:

        async def attempt(email: str, address: str) -> httpx.Response:
            return await client.post(
                "/api/v1/login",
                data={"username": email, "password": "guess"},
                headers={"X-Forwarded-For": address},
            )

        target = [await attempt("victim@example.com", f"192.0.2.{i}") for i in range(4)]
        spelled_differently = await attempt("  VICTIM@example.COM", "192.0.2.99")
        other = await attempt("someone-else@example.com", "192.0.2.1")

    assert [r.status_code for r in target] == [401, 401, 401, 429]
    assert target[0].headers.get_list("ratelimit-policy") == [
        '"login";q=100;w=60',
        '"login_account";q=3;w=60',
    ]
    assert_problem(spelled_differently, 429, "rate_limited")
    assert other.status_code == 401


async def test_an_incomplete_login_form_is_not_counted_per_account(limited: Limited) -> None:
    async with limited(rate_limit={"login_account": "1/minute"}) as client:
        responses = [await client.post("/api/v1/login", data={"password": "x"}) for _ in range(3)]

    assert [r.status_code for r in responses] == [422, 422, 422]


@pytest.mark.parametrize("limited", ["memory"], indirect=True)  # it brings its own Redis URL
async def test_with_redis_down_auth_fails_closed_and_reads_pass(
    limited: Limited, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"redis://127.0.0.1:{unused_port()}/0"
    before = counters("rate_limit_decisions")
    async with limited(redis_url=down) as client:
        async with asyncio.timeout(10):
            logins = [
                await client.post("/api/v1/login", data={"username": "a@b.co", "password": "x"})
                for _ in range(2)
            ]
            reads = [await client.get("/api/v1/posts") for _ in range(2)]
    decisions = counted_since(before, "rate_limit_decisions")

    for response in logins:
        assert_problem(response, 503, "rate_limiter_unavailable")
        assert response.headers["retry-after"] == "5"
    assert [r.status_code for r in reads] == [200, 200]
    assert "ratelimit" not in reads[0].headers
    assert decisions == {"login:failed_closed": 2, "read:failed_open": 2}
    warnings = log_events(caplog.records, "app.rate_limit")
    assert len(warnings) == 1  # once per outage, not once per request
    assert "unavailable" in warnings[0]["event"]


async def test_disabled_rate_limiting_counts_nothing(limited: Limited) -> None:
    async with limited(rate_limit={"enabled": False, "read": "1/minute"}) as client:
        responses = [await client.get("/api/v1/posts") for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert "ratelimit" not in responses[0].headers


STRATEGIES = ["fixed-window", "sliding-window-counter", "moving-window"]


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")
@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_redis_counts_as_the_memory_store_does_in_one_round_trip(
    strategy: str, monkeypatch: pytest.MonkeyPatch, still_rate_limit_clock: None
) -> None:
    assert TEST_REDIS_URL
    prefix = f"test-{uuid.uuid4().hex}"
    policies = {"enabled": True, "read": "3/minute", "strategy": strategy, "key_prefix": prefix}
    sent: list[object] = []
    send: Callable[..., Awaitable[Any]] = Redis.execute_command

    async def counted(self: Redis, *args: Any, **options: Any) -> Any:
        sent.append(args[0])
        return await send(self, *args, **options)

    decisions = {}
    for store in ("memory", "redis"):
        settings = make_settings(
            "sqlite://",
            redis={"url": TEST_REDIS_URL if store == "redis" else None},
            rate_limit=policies,
        )
        limiter = RateLimiter(settings)
        await limiter.hit("read", "ip:other")  # Redis learns the script on first use
        monkeypatch.setattr(Redis, "execute_command", counted)
        decisions[store] = [await limiter.hit("read", "ip:1") for _ in range(5)]
        monkeypatch.setattr(Redis, "execute_command", send)
        await limiter.close()

    memory, redis = decisions["memory"], decisions["redis"]
    assert [(d.allowed, d.remaining) for d in redis] == [(d.allowed, d.remaining) for d in memory]
    assert [d.allowed for d in redis] == [True, True, True, False, False]
    assert all(0 < d.reset_seconds <= 60 for d in redis)
    assert sent == ["EVALSHA"] * 5  # one round trip a check
    async with Redis.from_url(TEST_REDIS_URL) as client:
        keys = [key async for key in client.scan_iter(f"{prefix}*")]
        if keys:
            await client.delete(*keys)


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")
async def test_a_redis_sliding_window_weighs_the_window_before_it() -> None:
    assert TEST_REDIS_URL
    prefix = f"test-{uuid.uuid4().hex}"
    settings = make_settings(
        "sqlite://",
        redis={"url": TEST_REDIS_URL},
        rate_limit={"enabled": True, "read": "2/minute", "key_prefix": prefix},
    )
    limiter = RateLimiter(settings)
    assert [(await limiter.hit("read", "ip:1")).allowed for _ in range(3)] == [True, True, False]
    async with Redis.from_url(TEST_REDIS_URL) as client:
        (current,) = [key async for key in client.scan_iter(f"{prefix}*:current")]
        # 80 s on: the window of those two requests ended 20 s ago, and the sliding window
        # still covers two thirds of it: 2 * 2/3 requests count, rounded down to 1.
        await client.pexpire(current, 40_000)
        after = [await limiter.hit("read", "ip:1") for _ in range(2)]
        keys = [key async for key in client.scan_iter(f"{prefix}*")]
        await client.delete(*keys)
    await limiter.close()

    assert [(d.allowed, d.remaining) for d in after] == [(True, 0), (False, 0)]
