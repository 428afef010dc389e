"""The Redis side of rate limiting: one Lua script per counting strategy.

Each script counts a request and reports on its window in the same call, so a check costs
one round trip. They follow the algorithms of the `limits` library, which counts in the
embedded mode's memory store, and return the same three numbers: `{allowed (1 or 0),
remaining, milliseconds until the window frees a request}`. ARGV is `{limit, window in
milliseconds}`; the scripts read Redis's own clock, so every instance of the service
counts on the same one.
"""

from __future__ import annotations

from typing import Final

# One counter per window, starting with its first request: the simplest and cheapest.
FIXED_WINDOW: Final = """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local count = redis.call('INCR', KEYS[1])
if count == 1 then
    redis.call('PEXPIRE', KEYS[1], window)
end
local reset = redis.call('PTTL', KEYS[1])
if count > limit then
    return {0, 0, reset}
end
return {1, limit - count, reset}
"""

# KEYS: the previous and the current window's counters. The current counter lives for two
# windows; once its first window is over it becomes the previous one, whose count then
# weighs in proportion to the part of it that the sliding window still covers.
SLIDING_WINDOW_COUNTER: Final = """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local current_ttl = redis.call('PTTL', KEYS[2])
if current_ttl > 0 and current_ttl < window then
    redis.call('RENAME', KEYS[2], KEYS[1])
    redis.call('SET', KEYS[2], 0, 'PX', current_ttl + window)
end
local previous = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous_ttl = math.max(redis.call('PTTL', KEYS[1]), 0)
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local weighted = math.floor(previous * previous_ttl / window) + current
local allowed = weighted < limit
if allowed then
    if redis.call('EXISTS', KEYS[2]) == 1 then
        current = redis.call('INCR', KEYS[2])
    else
        current = 1
        redis.call('SET', KEYS[2], 1, 'PX', window * 2)
    end
    weighted = weighted + 1
end
-- A request frees up when the previous window's weight drops by one, or when the current
-- window's count moves into the previous window (its counter then has one window to live).
local reset = window
if previous > 0 then
    reset = math.min(reset, previous_ttl % (window / previous))
end
if current > 0 then
    reset = math.min(reset, redis.call('PTTL', KEYS[2]) - window)
end
return {allowed and 1 or 0, math.max(limit - weighted, 0), math.floor(reset)}
"""

# KEYS: a list of request times in milliseconds, newest first, holding only those still in
# the window (at most `limit`). Exact: never more than `limit` requests in any window.
MOVING_WINDOW: Final = """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local since = now - window
-- How many of the newest entries are still in the window (binary search: newest first).
local low, high = 0, math.min(redis.call('LLEN', KEYS[1]), limit)
while low < high do
    local middle = math.floor((low + high + 1) / 2)
    if tonumber(redis.call('LINDEX', KEYS[1], middle - 1)) > since then
        low = middle
    else
        high = middle - 1
    end
end
local live = low
local allowed = live < limit
if allowed then
    redis.call('LPUSH', KEYS[1], now)
    live = live + 1
end
redis.call('LTRIM', KEYS[1], 0, live - 1)
redis.call('PEXPIRE', KEYS[1], window)
-- A request frees up when the oldest entry in the window leaves it.
local oldest = tonumber(redis.call('LINDEX', KEYS[1], live - 1))
return {allowed and 1 or 0, limit - live, oldest + window - now}
"""
