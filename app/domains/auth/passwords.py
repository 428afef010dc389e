"""Password hashing: argon2id for new hashes, bcrypt still accepted for legacy ones.

Hashing is deliberately slow and memory-hard, so it runs in worker threads behind a
capacity limit: a login flood queues for the limiter instead of stalling the event loop or
allocating unbounded memory (OWASP Password Storage Cheat Sheet).
"""

from __future__ import annotations

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


class LegacyBcryptHasher(BcryptHasher):
    """Verifies bcrypt hashes made by systems that truncated passwords at 72 bytes.

    bcrypt >= 5 refuses longer inputs; truncating here reproduces how the stored hash was
    made. A successful login then rehashes with argon2id over the full password.
    """

    def verify(self, password: str | bytes, hash: str | bytes) -> bool:
        raw = password.encode() if isinstance(password, str) else password
        return super().verify(raw[:BCRYPT_MAX_BYTES], hash)


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
        self._dummy_hash = self._hash.hash("an unguessable placeholder password")

    async def hash(self, password: str) -> str:
        return await run_sync(self._hash.hash, password, limiter=self._limiter)

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """Whether `password` matches, and a new hash when the stored one is outdated.

        A missing or unrecognised hash is checked against a dummy hash, so an attacker sees
        the same work and the same answer as for a wrong password.
        """
        if password_hash is None or not self._recognises(password_hash):
            await run_sync(self._hash.verify, password, self._dummy_hash, limiter=self._limiter)
            return False, None
        return await run_sync(
            self._hash.verify_and_update, password, password_hash, limiter=self._limiter
        )

    def _recognises(self, password_hash: str) -> bool:
        return any(hasher.identify(password_hash) for hasher in self._hash.hashers)
