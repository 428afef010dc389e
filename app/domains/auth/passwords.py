"""Password hashing: argon2id for new hashes, bcrypt still accepted for legacy ones.

Hashing is deliberately slow and memory-hard, so it runs in worker threads behind a
capacity limit: a login flood queues for the limiter instead of stalling the event loop or
allocating unbounded memory (OWASP Password Storage Cheat Sheet).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

import anyio
from anyio.to_thread import run_sync
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from app.settings import AuthSettings

MIN_PASSWORD_LENGTH = 8
# Generous, and enforced by request validation before any hashing: argon2 does not truncate
# (unlike bcrypt at 72 bytes), but its cost grows with the input.
MAX_PASSWORD_LENGTH = 256
BCRYPT_MAX_BYTES = 72

_T = TypeVar("_T")
# Set while the current task holds a slot from `PasswordHasher.reserved()`.
_HOLDS_SLOT: ContextVar[bool] = ContextVar("holds_password_hash_slot", default=False)


class LegacyBcryptHasher(BcryptHasher):
    """Verifies bcrypt hashes made by systems that truncated passwords at 72 bytes.

    bcrypt >= 5 refuses longer inputs; truncating here reproduces how the stored hash was
    made. A successful login then rehashes with argon2id over the full password.
    """

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        raw = password.encode() if isinstance(password, str) else password
        return super().verify(raw[:BCRYPT_MAX_BYTES], hash)


# The niceness of a thread that hashes: seconds of argon2 work on every core would otherwise
# take the event loop's share of the CPU, and every other request would wait on logins.
HASHING_NICENESS = 10


def _yielding_to_the_event_loop(function: Callable[..., _T], *args: Any) -> _T:
    """Run `function` in this worker thread at a lower priority than the event loop's.

    Linux schedules threads, so the niceness is this thread's own. It stays with the pool
    thread, which may later run other blocking work: work that is off the event loop too.
    Where a thread id is not a scheduling target (not Linux), nothing changes.
    """
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)
    return function(*args)


class PasswordHasher:
    """Hash and verify passwords off the event loop, at most `concurrency` at a time."""

    def __init__(self, settings: AuthSettings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.argon2_time_cost,
                    memory_cost=settings.argon2_memory_kib,
                    parallelism=settings.argon2_parallelism,
                ),
                LegacyBcryptHasher(),
            )
        )
        self._limiter = anyio.CapacityLimiter(settings.password_hash_concurrency)
        self._dummy_hash: str | None = None  # made on first use, with the current parameters

    @asynccontextmanager
    async def reserved(self) -> AsyncIterator[None]:
        """Hold one hashing slot for a block of work.

        A request queues for its slot here, before it opens a database transaction, so a
        login flood waits without holding connections (or SQLite's write lock) that other
        requests need. Hashing inside the block uses the slot already held.
        """
        async with self._limiter:
            token = _HOLDS_SLOT.set(True)
            try:
                yield
            finally:
                _HOLDS_SLOT.reset(token)

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        limiter = None if _HOLDS_SLOT.get() else self._limiter
        return await run_sync(_yielding_to_the_event_loop, function, *args, limiter=limiter)

    async def hash(self, password: str) -> str:
        return await self._run(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """Whether `password` matches, and a new hash when the stored one is outdated.

        A missing or unrecognised hash is checked against a dummy hash, so an attacker sees
        the same work and the same answer as for a wrong password.
        """
        if password_hash is None or not self._recognises(password_hash):
            await self._verify_dummy(password)
            return False, None
        valid, updated = await self._run(self._hash.verify_and_update, password, password_hash)
        if not valid and self._is_outdated(password_hash):
            # A cheaper legacy hash fails faster than a current one would; top the work up so
            # timing does not tell accounts with old hashes apart.
            await self._verify_dummy(password)
        return valid, updated

    async def _verify_dummy(self, password: str) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash("an unguessable placeholder password")
        await self._run(self._hash.verify, password, self._dummy_hash)

    def _is_outdated(self, password_hash: str) -> bool:
        current = self._hash.current_hasher
        return not current.identify(password_hash) or current.check_needs_rehash(password_hash)

    def _recognises(self, password_hash: str) -> bool:
        return any(hasher.identify(password_hash) for hasher in self._hash.hashers)
