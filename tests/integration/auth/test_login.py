"""Login: one answer for every failure, the same work for unknown accounts, rehash on login."""

from __future__ import annotations

import asyncio
import unicodedata
from collections import Counter

import httpx
import pytest
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import Database
from app.domains.users.models import User
from app.main import create_app
from tests.conftest import serve
from tests.factories import PASSWORD, login, make_account, make_user, unique_email
from tests.support import CHEAP_HASHING, assert_problem, make_settings


async def test_login_returns_a_token_pair(client: httpx.AsyncClient) -> None:
    user = await make_user(client)

    response = await login(client, user["email"].upper())

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    assert len(body["refresh_token"]) >= 43  # 256 bits, base64url
    assert response.headers["cache-control"] == "no-store"


async def test_wrong_password_and_unknown_email_look_the_same(
    client: httpx.AsyncClient,
) -> None:
    user = await make_user(client)

    wrong_password = await login(client, user["email"], "not the password")
    unknown_email = await login(client, unique_email(), "not the password")

    for response in (wrong_password, unknown_email):
        assert_problem(response, 401, "invalid_credentials")
        assert response.headers["www-authenticate"] == "Bearer"
    assert wrong_password.json() == unknown_email.json()


async def test_unknown_email_still_verifies_a_hash(
    client: httpx.AsyncClient, hashing_work: Counter[str]
) -> None:
    user = await make_user(client)
    await login(client, unique_email(), "warm-up")  # the first one also makes the dummy hash
    hashing_work.clear()

    await login(client, user["email"], "not the password")
    known = hashing_work.copy()
    hashing_work.clear()
    await login(client, unique_email(), "not the password")

    assert known["verify"] + known["verify_and_update"] == 1
    assert hashing_work["verify"] + hashing_work["verify_and_update"] == 1
    assert hashing_work["hash"] == known["hash"] == 0


async def test_an_account_without_a_password_cannot_log_in_with_one(
    client: httpx.AsyncClient, database: Database, hashing_work: Counter[str]
) -> None:
    account = await make_account(client)
    async with database.sessionmaker() as session:
        (await session.get_one(User, account.id)).password_hash = None
        await session.commit()
    await login(client, unique_email(), "warm-up")  # the first one also makes the dummy hash
    hashing_work.clear()

    response = await login(client, account.email)

    assert_problem(response, 401, "invalid_credentials")
    assert hashing_work["verify"] == 1


async def test_oversize_password_is_refused_before_hashing(
    client: httpx.AsyncClient, hashing_work: Counter[str]
) -> None:
    response = await login(client, unique_email(), "x" * 10_000)

    assert_problem(response, 422, "validation_failed")
    assert sum(hashing_work.values()) == 0


@pytest.mark.parametrize(
    "form",
    [
        {"username": "a@example.com"},
        {"password": PASSWORD},
        {"username": "a@example.com", "password": PASSWORD, "grant_type": "client_credentials"},
    ],
)
async def test_incomplete_or_foreign_grant_forms_are_422(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    assert_problem(await client.post("/api/v1/login", data=form), 422, "validation_failed")


async def test_oauth2_clients_may_send_the_grant_type_and_scope(
    client: httpx.AsyncClient,
) -> None:
    user = await make_user(client)

    response = await client.post(
        "/api/v1/login",
        data={
            "grant_type": "password",
            "username": user["email"],
            "password": PASSWORD,
            "scope": "",
            "client_id": "swagger",
        },
    )

    assert response.status_code == 200


async def _stored_hash(database: Database, user_id: int) -> str:
    async with database.sessionmaker() as session:
        stored = (await session.get_one(User, user_id)).password_hash
    assert stored is not None
    return stored


async def _set_hash(database: Database, user_id: int, password_hash: str) -> None:
    async with database.sessionmaker() as session:
        (await session.get_one(User, user_id)).password_hash = password_hash
        await session.commit()


async def test_outdated_argon2_parameters_are_upgraded_on_login(
    client: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(client)
    weaker = Argon2Hasher(time_cost=1, memory_cost=32, parallelism=1).hash(PASSWORD)
    await _set_hash(database, user["id"], weaker)

    assert (await login(client, user["email"])).status_code == 200

    upgraded = await _stored_hash(database, user["id"])
    assert upgraded != weaker
    assert (
        f"m={CHEAP_HASHING['argon2_memory_kib']},t={CHEAP_HASHING['argon2_time_cost']}" in upgraded
    )


async def test_legacy_bcrypt_hashes_verify_and_become_argon2id(
    client: httpx.AsyncClient, database: Database
) -> None:
    user = await make_user(client)
    await _set_hash(database, user["id"], BcryptHasher(rounds=4).hash(PASSWORD))

    assert (await login(client, user["email"])).status_code == 200

    assert (await _stored_hash(database, user["id"])).startswith("$argon2id$")
    assert (await login(client, user["email"])).status_code == 200


async def test_legacy_bcrypt_truncated_long_passwords_still_log_in(
    client: httpx.AsyncClient, database: Database
) -> None:
    long_password = "long passphrase " * 6  # 96 bytes; legacy bcrypt kept the first 72
    user = await make_user(client, password=long_password)
    legacy = BcryptHasher(rounds=4).hash(long_password.encode()[:72])
    await _set_hash(database, user["id"], legacy)

    assert (await login(client, user["email"], long_password)).status_code == 200

    # Rehashed with argon2id over the whole password: the 72-byte prefix no longer works.
    assert (await login(client, user["email"], long_password[:72])).status_code == 401


async def test_a_failed_login_against_a_legacy_hash_does_the_full_work(
    client: httpx.AsyncClient, database: Database, hashing_work: Counter[str]
) -> None:
    user = await make_user(client)
    await _set_hash(database, user["id"], BcryptHasher(rounds=4).hash(PASSWORD))
    await login(client, unique_email(), "warm-up")
    hashing_work.clear()

    assert (await login(client, user["email"], "wrong password")).status_code == 401

    # The cheap bcrypt check, then the dummy argon2id one: as slow as any other failure.
    assert hashing_work["verify_and_update"] == 1
    assert hashing_work["verify"] == 1


@pytest.mark.parametrize("username", ["a\x00b@example.com", "line\nbreak@example.com"])
async def test_control_characters_in_the_username_are_422(
    client: httpx.AsyncClient, username: str
) -> None:
    response = await login(client, username)

    assert_problem(response, 422, "validation_failed")


@pytest.mark.parametrize(
    "typed",
    [
        "Someone <{local}@example.com>",  # a display name around the address
        "{local}@EXAMPLE.com",
    ],
)
async def test_login_normalises_the_address_as_registration_did(
    client: httpx.AsyncClient, typed: str
) -> None:
    local = f"user{unique_email()[5:17]}"
    await make_user(client, email=typed.format(local=local))

    response = await login(client, typed.format(local=local))

    assert response.status_code == 200


async def test_a_username_that_is_no_address_is_just_wrong(client: httpx.AsyncClient) -> None:
    assert_problem(await login(client, "admin"), 401, "invalid_credentials")


async def test_unicode_addresses_match_in_any_normal_form(client: httpx.AsyncClient) -> None:
    composed = f"jos\u00e9.{unique_email()[5:17]}@example.com"  # é as one code point
    decomposed = unicodedata.normalize("NFD", composed)  # e + combining accent
    await make_user(client, email=decomposed)

    assert (await login(client, composed)).status_code == 200
    assert (await login(client, decomposed)).status_code == 200


async def test_queued_logins_do_not_hold_database_connections(engine: AsyncEngine) -> None:
    """A burst of logins waits for hashing slots without starving other requests.

    20 hashes of ~60 ms queue for one slot: about 1.2 s, longer than the 1 s pool timeout.
    Were the queue held on database connections, the pool of 2 would run dry.
    """
    tight = make_settings(
        engine.url.render_as_string(hide_password=False),
        database={"pool_size": 2, "max_overflow": 0, "pool_timeout_seconds": 1},
        auth={"password_hash_concurrency": 1, "argon2_memory_kib": 32768, "argon2_time_cost": 3},
    )
    app = create_app(tight)
    async with serve(app) as client:
        account = await make_account(client)
        try:
            burst = [login(client, account.email, "wrong password") for _ in range(20)]
            responses = await asyncio.gather(
                *burst, client.get("/api/v1/users/me", headers=account.headers)
            )
        finally:
            await client.delete("/api/v1/users/me", headers=account.headers)

    assert [r.status_code for r in responses[:-1]] == [401] * 20
    assert responses[-1].status_code == 200
