"""Compare the rate-limit strategies: how far each lets a burst exceed the limit, and what
one check (hit + window stats, as `app.rate_limit` does) costs against local Redis.

    .venv/bin/python -m bench.rate_limit_strategies [redis://127.0.0.1:6379/0]

Accuracy runs on the memory store with a simulated clock: a client sends as fast as it is
allowed, and we record the most requests admitted in any window-long span. Cost runs
against the given Redis (default 127.0.0.1) under a throwaway key prefix it deletes.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from types import SimpleNamespace

from limits import parse
from limits.aio import storage as limits_storage
from limits.aio import strategies as limits_strategies
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    SlidingWindowCounterRateLimiter,
)
from redis.asyncio import Redis

STRATEGIES = {
    "fixed-window": FixedWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
    "moving-window": MovingWindowRateLimiter,
}
LIMIT = parse("10/minute")
CHECKS = 2000


def _set_clock(clock: object) -> None:
    """Point the memory store's and the strategies' `time.time()` at `clock`."""
    for module in (limits_storage.memory, limits_strategies):
        setattr(module, "time", clock)  # noqa: B010 - the attribute is a module, not ours


async def worst_burst(strategy: type, attempts_at: list[float]) -> int:
    """Most admissions in any 60 s span when a client tries at the given seconds."""
    now = 1_000_000.0
    clock = SimpleNamespace(time=lambda: now)
    _set_clock(clock)
    limiter = strategy(MemoryStorage())
    admitted: list[float] = []
    for offset in attempts_at:
        now = 1_000_000.0 + offset
        if await limiter.hit(LIMIT, "bench", "client"):
            admitted.append(offset)
    _set_clock(time)
    return max(sum(1 for t in admitted if start <= t < start + 60) for start in admitted)


# A steady client trying every half second for five minutes.
STEADY = [i * 0.5 for i in range(600)]
# A client that opens a window, waits for its last second, then bursts across the edge.
EDGE = [0.0] + [59.0 + i * 0.05 for i in range(20)] + [60.5 + i * 0.05 for i in range(20)]


async def check_cost(strategy: type, redis_url: str) -> tuple[float, float]:
    prefix = f"bench-{uuid.uuid4().hex}"
    storage = RedisStorage(f"async+{redis_url}", implementation="redispy", key_prefix=prefix)
    limiter = strategy(storage)
    big = parse("1000000/minute")
    timings = []
    for i in range(CHECKS):
        started = time.perf_counter()
        await limiter.hit(big, "bench", f"k{i % 50}")
        await limiter.get_window_stats(big, "bench", f"k{i % 50}")
        timings.append((time.perf_counter() - started) * 1e6)
    async with Redis.from_url(redis_url) as redis:
        keys = [key async for key in redis.scan_iter(f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.99)]


async def main() -> None:
    redis_url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0"
    print(f"limit {LIMIT}; {CHECKS} checks per strategy against {redis_url}\n")
    print("Most requests admitted in any 60 s span (the limit is 10), and the cost of a check.\n")
    print("| strategy | steady client | edge burst | check p50 (µs) | check p99 (µs) |")
    print("|---|---|---|---|---|")
    for name, strategy in STRATEGIES.items():
        steady = await worst_burst(strategy, STEADY)
        edge = await worst_burst(strategy, EDGE)
        p50, p99 = await check_cost(strategy, redis_url)
        print(f"| {name} | {steady} | {edge} | {p50:.0f} | {p99:.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
