"""Password hashing: parameters, legacy hashes and the concurrency cap."""

from __future__ import annotations

import os
import threading
from typing import Any

import anyio
import pytest
from anyio.to_thread import run_sync
from pwdlib.hashers.bcrypt import BcryptHasher

from app.domains.auth.passwords import HASHING_NICENESS, PasswordHasher
from app.settings import AuthSettings

PASSWORD = "correct horse battery staple"


def _settings(**overrides: Any) -> AuthSettings:
    values = {"argon2_time_cost": 1, "argon2_memory_kib": 64} | overrides
    return AuthSettings(_env_file=None, **values)


def test_defaults_meet_the_owasp_argon2id_minimum() -> None:
    settings = AuthSettings(_env_file=None)

    assert settings.argon2_memory_kib >= 19 * 1024
    assert settings.argon2_time_cost >= 2
    assert settings.argon2_parallelism >= 1


async def test_hashes_are_argon2id_with_the_configured_cost() -> None:
    hasher = PasswordHasher(_settings(argon2_time_cost=3, argon2_memory_kib=128))

    hashed = await hasher.hash(PASSWORD)

    assert hashed.startswith("$argon2id$v=19$m=128,t=3,p=1$")
    assert await hasher.verify(PASSWORD, hashed) == (True, None)
    assert await hasher.verify("wrong password", hashed) == (False, None)


async def test_a_hash_with_older_parameters_is_upgraded() -> None:
    old = await PasswordHasher(_settings(argon2_memory_kib=64)).hash(PASSWORD)

    valid, upgraded = await PasswordHasher(_settings(argon2_memory_kib=128)).verify(PASSWORD, old)

    assert valid
    assert upgraded is not None
    assert "m=128" in upgraded


async def test_bcrypt_is_verified_then_replaced() -> None:
    legacy = BcryptHasher(rounds=4).hash(PASSWORD)

    valid, upgraded = await PasswordHasher(_settings()).verify(PASSWORD, legacy)

    assert valid
    assert upgraded is not None
    assert upgraded.startswith("$argon2id$")


@pytest.mark.parametrize("stored", [None, "", "plaintext-password", "$1$md5crypt$hash"])
async def test_missing_or_unknown_hashes_never_verify(stored: str | None) -> None:
    assert await PasswordHasher(_settings()).verify(PASSWORD, stored) == (False, None)


async def test_no_more_than_the_configured_number_of_hashes_run_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hasher = PasswordHasher(_settings(password_hash_concurrency=2))
    lock, release, two_running = threading.Lock(), threading.Event(), threading.Event()
    running, peak = 0, 0

    def slow_hash(password: str) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if running == 2:
                two_running.set()
        release.wait(timeout=10)
        with lock:
            running -= 1
        return password

    monkeypatch.setattr(hasher._hash, "hash", slow_hash)  # the limiter under test is real
    async with anyio.create_task_group() as tasks:
        for _ in range(6):
            tasks.start_soon(hasher.hash, PASSWORD)
        assert await run_sync(two_running.wait, 10)
        release.set()

    assert peak == 2


async def test_hashing_threads_yield_the_cpu_to_the_event_loop() -> None:
    hasher = PasswordHasher(_settings())

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert await hasher._run(niceness) >= HASHING_NICENESS  # the event loop's thread: 0
