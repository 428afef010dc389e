"""The caller's sessions: one per refresh-token family."""

from __future__ import annotations

import uuid

import httpx

from tests.factories import bearer, login, make_account, refresh
from tests.support import assert_problem


async def test_sessions_lists_each_live_family_once(client: httpx.AsyncClient) -> None:
    account = await make_account(client)
    phone = (await login(client, account.email, user_agent="phone")).json()
    await refresh(client, phone["refresh_token"], user_agent="phone")  # still one session
    ended = (await login(client, account.email, user_agent="old tablet")).json()
    await client.post("/api/v1/auth/logout", json={"refresh_token": ended["refresh_token"]})

    response = await client.get("/api/v1/auth/sessions", headers=account.headers)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    sessions = response.json()
    assert sorted(s["user_agent"] for s in sessions) == ["phone", "pytest"]
    assert [s["current"] for s in sessions if s["user_agent"] == "pytest"] == [True]
    assert [s["current"] for s in sessions if s["user_agent"] == "phone"] == [False]
    assert all(s["created_at"] <= s["last_used_at"] for s in sessions)


async def test_ending_a_session_signs_that_device_out(client: httpx.AsyncClient) -> None:
    account = await make_account(client)
    phone = (await login(client, account.email, user_agent="phone")).json()
    sessions = (await client.get("/api/v1/auth/sessions", headers=account.headers)).json()
    (phone_session,) = [s["id"] for s in sessions if s["user_agent"] == "phone"]

    response = await client.delete(
        f"/api/v1/auth/sessions/{phone_session}", headers=account.headers
    )

    assert response.status_code == 204
    assert_problem(await refresh(client, phone["refresh_token"]), 401, "invalid_refresh_token")
    me = await client.get("/api/v1/users/me", headers=bearer(phone["access_token"]))
    assert_problem(me, 401, "invalid_token")
    assert (await client.get("/api/v1/users/me", headers=account.headers)).status_code == 200
    again = await client.delete(f"/api/v1/auth/sessions/{phone_session}", headers=account.headers)
    assert_problem(again, 404, "session_not_found")


async def test_another_users_session_is_not_found(client: httpx.AsyncClient) -> None:
    mine, theirs = await make_account(client), await make_account(client)
    (their_session,) = (await client.get("/api/v1/auth/sessions", headers=theirs.headers)).json()

    response = await client.delete(
        f"/api/v1/auth/sessions/{their_session['id']}", headers=mine.headers
    )

    assert_problem(response, 404, "session_not_found")
    assert (await refresh(client, theirs.refresh_token)).status_code == 200


async def test_unknown_or_malformed_session_ids(client: httpx.AsyncClient) -> None:
    account = await make_account(client)

    unknown = await client.delete(f"/api/v1/auth/sessions/{uuid.uuid4()}", headers=account.headers)
    malformed = await client.delete("/api/v1/auth/sessions/not-a-uuid", headers=account.headers)

    assert_problem(unknown, 404, "session_not_found")
    assert_problem(malformed, 422, "validation_failed")
