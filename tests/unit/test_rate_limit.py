"""Rate-limit keys, policies and the store-outage bookkeeping."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest
from limits import RateLimitItem, parse
from pydantic import ValidationError
from redis.asyncio import Redis
from starlette.requests import Request

from app.rate_limit import (
    FAIL_CLOSED,
    POLICIES,
    Count,
    RateLimit,
    RateLimiter,
    RedisCounter,
    StoreUnavailable,
    client_address,
)
from app.settings import RateLimitSettings
from tests.support import counted_since, counters, log_events, make_settings


def _request(peer: str | None, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    scope: dict[str, Any] = {"type": "http", "headers": headers, "client": None}
    if peer:
        scope["client"] = (peer, 50000)
    return Request(scope)


@pytest.mark.parametrize(
    ("trusted", "hops", "forwarded", "expected"),
    [
        (False, 1, ["6.6.6.6"], "10.0.0.5"),  # never read unless trusted
        (True, 1, ["6.6.6.6, 203.0.113.9"], "203.0.113.9"),  # the proxy's own entry
        (True, 2, ["6.6.6.6, 203.0.113.9, 10.1.1.1"], "203.0.113.9"),  # two proxies
        (True, 1, ["6.6.6.6", "203.0.113.9"], "203.0.113.9"),  # split over header lines
        (True, 2, ["203.0.113.9"], "10.0.0.5"),  # fewer hops than proxies: the peer
        (True, 1, ["not-an-ip"], "10.0.0.5"),  # garbage is not trusted
        (True, 1, ["2001:db8::1"], "2001:db8::1"),
        (True, 1, [], "10.0.0.5"),
    ],
)
def test_client_address(trusted: bool, hops: int, forwarded: list[str], expected: str) -> None:
    settings = make_settings("sqlite://", trust_proxy_headers=trusted, trusted_proxy_count=hops)

    assert client_address(_request("10.0.0.5", *forwarded), settings) == expected


def test_a_request_without_a_peer_address() -> None:
    assert client_address(_request(None), make_settings("sqlite://")) == "unknown"


def test_unknown_policies_are_refused_at_import_time() -> None:
    with pytest.raises(ValueError, match="unknown rate-limit policy 'reads'"):
        RateLimit("reads")


def test_auth_classes_fail_closed_and_the_rest_open() -> None:
    assert {"login", "login_account", "register", "refresh", "oauth"} == FAIL_CLOSED
    assert set(POLICIES) - FAIL_CLOSED == {"read", "write"}


@pytest.mark.parametrize("value", ["ten per minute", "10/fortnight", "", "10/minute;100/hour"])
def test_unreadable_limits_are_refused_at_start_up(value: str) -> None:
    with pytest.raises(ValidationError):
        RateLimitSettings(_env_file=None, read=value)


def test_the_register_policy_reads_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT_REGISTER", "3/day")
    monkeypatch.setenv("REGISTER", "1/day")  # unprefixed: not ours

    assert RateLimitSettings(_env_file=None).limit_for("register") == "3/day"
    by_name = RateLimitSettings(_env_file=None, register_="5/day")  # type: ignore[call-arg]
    assert by_name.limit_for("register") == "5/day"  # (mypy sees only the variable's name)


class _FlakyCounter:
    """Stands in for the counter store: fails while `down` is set."""

    def __init__(self) -> None:
        self.down = True

    async def hit(self, limit: RateLimitItem, policy: str, key: str) -> Count:
        if self.down:
            raise ConnectionError("store unreachable")
        return Count(allowed=True, remaining=limit.amount - 1, reset_seconds=60)


async def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter(make_settings("sqlite://", rate_limit={"enabled": True}))
    store = _FlakyCounter()
    # Simulate the store going away under the read policy.
    limiter.policies["read"] = replace(limiter.policies["read"], counter=store)

    before = counters("rate_limit_decisions")
    with caplog.at_level(logging.WARNING, logger="app.rate_limit"):
        for _ in range(3):
            with pytest.raises(StoreUnavailable):
                await limiter.hit("read", "ip:1")
        store.down = False
        for _ in range(2):
            assert (await limiter.hit("read", "ip:1")).allowed

    messages = [event["event"] for event in log_events(caplog.records, "app.rate_limit")]
    assert len(messages) == 2
    assert "unavailable" in messages[0]
    assert "reachable again" in messages[1]
    assert counted_since(before, "rate_limit_decisions") == {
        "read:failed_open": 3,
        "read:allowed": 2,
    }
    await limiter.close()


@pytest.mark.parametrize(
    ("strategy", "keys"),
    [
        ("fixed-window", ["p:read:3/60s:ip:1"]),
        ("moving-window", ["p:read:3/60s:ip:1"]),
        ("sliding-window-counter", ["p:read:3/60s:ip:1:previous", "p:read:3/60s:ip:1:current"]),
    ],
)
async def test_a_redis_counter_makes_one_script_call(strategy: str, keys: list[str]) -> None:
    calls: list[tuple[list[str], list[int]]] = []

    async def script(keys: list[str], args: list[int]) -> list[int]:
        calls.append((keys, args))
        return [1, 2, 59_500]

    counter = RedisCounter(Redis(), strategy, "p")  # type: ignore[arg-type]  # a Literal
    counter.script = script  # type: ignore[assignment]  # no server: the call is what is tested

    count = await counter.hit(parse("3/minute"), "read", "ip:1")

    assert count == Count(allowed=True, remaining=2, reset_seconds=59.5)
    assert calls == [(keys, [3, 60_000])]
