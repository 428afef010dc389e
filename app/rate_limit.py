"""Rate limiting: route classes, keys and headers. The counting algorithms are the `limits`
library's: its own code in the embedded mode's memory store, and in Redis one Lua script per
algorithm (`app/rate_limit_lua.py`) that counts and reports in a single round trip.

Every API route declares its class in one place, `dependencies=[RateLimit("read")]`. Reads
and writes are counted under `user:{id}` when the request carries a valid access token, else
under `ip:{address}`; the sign-in and sign-up classes always by address. Responses carry
`RateLimit-Policy` and `RateLimit` (IETF httpapi RateLimit header fields draft); a refused
request gets 429 `rate_limited` with `Retry-After`. If the counter store fails, the auth
classes fail closed (503) and reads and writes fail open, each logged once per outage and
counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Protocol

from fastapi import Depends, Request, Response
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.aio.strategies import (
    RateLimiter as Strategy,
)
from redis.asyncio import BlockingConnectionPool, Redis

from app import rate_limit_lua
from app.domains.auth.tokens import InvalidAccessToken, request_claims
from app.domains.users.schemas import normalize_email
from app.errors import ProblemError, carry_header
from app.observability.logs import get_logger
from app.observability.metrics import RATE_LIMIT_DECISIONS
from app.settings import Settings
from app.settings import Strategy as StrategyName

logger = get_logger(__name__)

# Classes whose routes would hand an attacker unmetered guesses if the limiter were down.
FAIL_CLOSED: Final = frozenset({"login", "login_account", "register", "refresh", "oauth"})
POLICIES: Final = ("login", "login_account", "register", "refresh", "oauth", "read", "write")
_STRATEGIES: Final[dict[StrategyName, type[Strategy]]] = {
    "fixed-window": FixedWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
    "moving-window": MovingWindowRateLimiter,
}


class RateLimited(ProblemError):
    status = 429
    code = "rate_limited"
    title = "Too Many Requests"
    detail = "Too many requests of this kind; wait before trying again."


class StoreUnavailable(Exception):
    """The counter store did not answer in time; the policy says whether to fail closed."""

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy.name)
        self.policy = policy


class RateLimiterUnavailable(ProblemError):
    status = 503
    code = "rate_limiter_unavailable"
    title = "Service Unavailable"
    detail = "This action is paused while its abuse protection is unavailable."
    default_headers: ClassVar[dict[str, str]] = {"Retry-After": "5"}


@dataclass(frozen=True, slots=True)
class Count:
    """A counted request: whether it fits, how many remain, and in how many seconds the
    window frees one up."""

    allowed: bool
    remaining: int
    reset_seconds: float


class Counter(Protocol):
    """Counts a request under `limit` for `key` and reports on the window, atomically."""

    async def hit(self, limit: RateLimitItem, policy: str, key: str) -> Count: ...


class MemoryCounter:
    """The embedded mode's counters: a `limits` strategy over its in-process store."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy

    async def hit(self, limit: RateLimitItem, policy: str, key: str) -> Count:
        # The decision is `hit`'s own, and atomic. The window read after it may already count
        # a concurrent request (rarely, in process), which only shifts the headers by one.
        allowed = await self.strategy.hit(limit, policy, key)
        stats = await self.strategy.get_window_stats(limit, policy, key)
        return Count(allowed, stats.remaining, stats.reset_time - time.time())


class RedisCounter:
    """Counters in Redis, one Lua script call per request (see `app.rate_limit_lua`).

    `limits`' own Redis store needs two round trips for the same answer (`hit`, then
    `get_window_stats`), and was the largest single cost of reading a post (bench/).
    """

    _SCRIPTS: ClassVar[dict[StrategyName, str]] = {
        "fixed-window": rate_limit_lua.FIXED_WINDOW,
        "sliding-window-counter": rate_limit_lua.SLIDING_WINDOW_COUNTER,
        "moving-window": rate_limit_lua.MOVING_WINDOW,
    }

    def __init__(self, redis: Redis, strategy: StrategyName, key_prefix: str) -> None:
        self.script = redis.register_script(self._SCRIPTS[strategy])
        self.windows = 2 if strategy == "sliding-window-counter" else 1
        self.key_prefix = key_prefix

    async def hit(self, limit: RateLimitItem, policy: str, key: str) -> Count:
        # The limit is part of the key, so a changed limit starts counting afresh.
        bucket = f"{self.key_prefix}:{policy}:{limit.amount}/{limit.get_expiry()}s:{key}"
        keys = [f"{bucket}:previous", f"{bucket}:current"] if self.windows == 2 else [bucket]
        window_ms = limit.get_expiry() * 1000
        allowed, remaining, reset_ms = await self.script(keys, [limit.amount, window_ms])
        return Count(bool(allowed), int(remaining), int(reset_ms) / 1000)


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    limit: RateLimitItem
    fail_closed: bool
    counter: Counter

    @property
    def header(self) -> str:
        # RateLimit-Policy item: quota `q` per window `w` seconds.
        return f'"{self.name}";q={self.limit.amount};w={self.limit.get_expiry()}'


@dataclass(frozen=True, slots=True)
class Decision:
    policy: Policy
    allowed: bool
    remaining: int
    reset_seconds: int

    @property
    def header(self) -> str:
        # RateLimit item: `r` requests remain, the window resets in `t` seconds.
        return f'"{self.policy.name}";r={self.remaining};t={self.reset_seconds}'


class RateLimiter:
    """The counters of one application instance, in Redis or (embedded mode) in memory."""

    def __init__(self, settings: Settings) -> None:
        config = settings.rate_limit
        self.enabled = config.enabled
        self.timeout = config.timeout_seconds
        self._pool: BlockingConnectionPool | None = None
        counter = self._counters(settings)
        # The auth classes (which also fail closed) count exactly; the rest cheaply.
        auth, other = counter(config.auth_strategy), counter(config.strategy)
        self.policies = {
            name: Policy(
                name,
                parse(config.limit_for(name)),
                fail_closed=name in FAIL_CLOSED,
                counter=auth if name in FAIL_CLOSED else other,
            )
            for name in POLICIES
        }
        self._failing = False

    def _counters(self, settings: Settings) -> Callable[[StrategyName], Counter]:
        """How a strategy's counter is made: in Redis when there is one, else in memory."""
        config = settings.rate_limit
        if not settings.redis.url:
            storage = MemoryStorage()
            return lambda strategy: MemoryCounter(_STRATEGIES[strategy](storage))
        # A bounded pool that makes a burst queue for a connection (within the timeout)
        # rather than fail: a fail-open class would otherwise admit the burst unmetered.
        self._pool = BlockingConnectionPool.from_url(
            settings.redis.url,
            max_connections=config.max_connections,
            timeout=config.timeout_seconds,
            socket_timeout=config.timeout_seconds,
            socket_connect_timeout=config.timeout_seconds,
        )
        redis = Redis(connection_pool=self._pool)
        return lambda strategy: RedisCounter(redis, strategy, config.key_prefix)

    async def hit(self, policy_name: str, key: str) -> Decision:
        """Count one request. Raises `StoreUnavailable` when the store does not answer."""
        policy = self.policies[policy_name]
        try:
            async with asyncio.timeout(self.timeout):
                count = await policy.counter.hit(policy.limit, policy.name, key)
        except Exception as exc:
            self._storage_failed(exc)
            outcome = "failed_closed" if policy.fail_closed else "failed_open"
            RATE_LIMIT_DECISIONS.labels(policy.name, outcome).inc()
            raise StoreUnavailable(policy) from exc
        self._storage_answered()
        RATE_LIMIT_DECISIONS.labels(policy.name, "allowed" if count.allowed else "refused").inc()
        return Decision(
            policy, count.allowed, count.remaining, max(0, math.ceil(count.reset_seconds))
        )

    def _storage_failed(self, exc: Exception) -> None:
        if not self._failing:  # once per outage, not once per request
            logger.warning(
                "rate-limit store unavailable: auth routes refuse, reads and writes pass",
                error=type(exc).__name__,
            )
        self._failing = True

    def _storage_answered(self) -> None:
        if self._failing:
            logger.warning("rate-limit store reachable again")
        self._failing = False

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()


def client_address(request: Request, settings: Settings) -> str:
    """The caller's IP address, as far as this deployment can know it.

    With `TRUST_PROXY_HEADERS`, X-Forwarded-For is read from the right: each trusted proxy
    appends the address it saw, so the entry `trusted_proxy_count` from the end is the one
    the outermost trusted proxy vouches for. Entries to its left are whatever the client
    sent and are never used.
    """
    peer = request.client.host if request.client else "unknown"
    if not settings.trust_proxy_headers:
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",")]
    hops = [h for h in hops if h]
    if len(hops) < settings.trusted_proxy_count:
        return peer
    candidate = hops[-settings.trusted_proxy_count]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:  # a misconfigured hop count or a broken proxy: do not trust it
        return peer


KeyFunction = Callable[[Request], Awaitable[str | None]]


async def caller_key(request: Request) -> str:
    """`user:{id}` for a caller with a valid access token, else `ip:{address}`.

    One token used from many addresses shares one bucket. Only the signature and claims are
    checked here; an invalid token is counted by address and refused later by the route.
    """
    settings: Settings = request.app.state.settings
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            return f"user:{request_claims(request, settings, token.strip()).user_id}"
        except InvalidAccessToken:
            pass
    return await address_key(request)


async def address_key(request: Request) -> str:
    """`ip:{address}`, whatever credentials the request carries.

    The classes that guard sign-in and sign-up count by address: keyed by user, an attacker
    could attach a different account's token to each attempt and get a fresh bucket each
    time.
    """
    settings: Settings = request.app.state.settings
    return f"ip:{client_address(request, settings)}"


async def login_account_key(request: Request) -> str | None:
    """The account a login form names, hashed so no address is stored in the counter store."""
    form = await request.form()
    username = form.get("username")
    if not isinstance(username, str) or not username:
        return None  # the form is incomplete: validation answers 422
    digest = hashlib.sha256(normalize_email(username).encode()).hexdigest()[:32]
    return f"account:{digest}"


class PolicyCheck:
    """The dependency `RateLimit()` builds: counts the request under one policy."""

    def __init__(self, policy: str, key: KeyFunction) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown rate-limit policy {policy!r}; known: {', '.join(POLICIES)}")
        self.policy = policy
        self.key = key

    async def __call__(self, request: Request, response: Response) -> None:
        limiter: RateLimiter = request.state.rate_limiter
        if not limiter.enabled:
            return
        bucket = await self.key(request)
        if bucket is None:
            return
        try:
            decision = await limiter.hit(self.policy, bucket)
        except StoreUnavailable as exc:
            if exc.policy.fail_closed:
                raise RateLimiterUnavailable from exc
            return  # reads and writes go on unmetered rather than fail
        headers = {"RateLimit-Policy": decision.policy.header, "RateLimit": decision.header}
        if not decision.allowed:
            retry_after = str(max(1, decision.reset_seconds))
            raise RateLimited(headers=headers | {"Retry-After": retry_after})
        for name, value in headers.items():
            response.headers.append(name, value)
            carry_header(request, name, value)


def RateLimit(policy: str, *, key: KeyFunction | None = None) -> Any:
    """`dependencies=[RateLimit("read")]`: the route's rate-limit class, in one visible place.

    By default the auth classes count by address (`address_key`) and reads and writes by
    caller (`caller_key`).
    """
    default = address_key if policy in FAIL_CLOSED else caller_key
    return Depends(PolicyCheck(policy, key or default))
