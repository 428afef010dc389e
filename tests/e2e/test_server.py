"""The real server process over real HTTP: start-up, probes, errors and headers."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator

import httpx
import pytest
from redis import Redis

from tests.conftest import TEST_REDIS_URL
from tests.e2e.server import served
from tests.factories import PASSWORD, bearer, unique_email
from tests.support import assert_problem


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[str]:
    """The API in a subprocess of its own, shared by this module's tests."""
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "RATE_LIMIT_LOGIN_ACCOUNT": "5/minute",
        # The relay would handle every due event of the shared run database; the outbox
        # has tests of its own, on databases of their own.
        "OUTBOX_RELAY_ENABLED": "false",
        "RATE_LIMIT_KEY_PREFIX": f"e2e-{uuid.uuid4().hex}",
    }
    if TEST_REDIS_URL:  # the production shape: counters in Redis
        env["REDIS_URL"] = TEST_REDIS_URL
    with served(env) as running:
        yield running.url
        assert running.stop() == -signal.SIGTERM
    if TEST_REDIS_URL:  # the counters it left (they would expire on their own anyway)
        with Redis.from_url(TEST_REDIS_URL) as redis:
            keys = list(redis.scan_iter(f"{env['RATE_LIMIT_KEY_PREFIX']}*"))
            if keys:
                redis.delete(*keys)


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


def test_health_and_ready_answer(http: httpx.Client) -> None:
    health, ready = http.get("/health"), http.get("/ready")

    assert health.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


def test_unknown_path_is_a_problem_with_request_id_and_version(http: httpx.Client) -> None:
    response = http.get("/api/v1/does-not-exist", headers={"X-Request-ID": "e2e-1"})

    assert_problem(response, 404, "not_found")
    assert response.headers["x-request-id"] == "e2e-1"
    assert response.headers["x-api-version"] == "v1"
    assert "x-api-version-defaulted" not in response.headers


def test_unversioned_probe_is_flagged_as_defaulted(http: httpx.Client) -> None:
    response = http.get("/health")

    assert response.headers["x-api-version"] == "v1"
    assert response.headers["x-api-version-defaulted"] == "true"


def test_docs_are_served(http: httpx.Client) -> None:
    assert http.get("/docs").status_code == 200


def test_malformed_json_body_is_a_400_problem(http: httpx.Client) -> None:
    response = http.post(
        "/api/v1/users", content=b'{"email": ', headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 400, "malformed_json")


def test_register_login_refresh_logout(http: httpx.Client) -> None:
    email = unique_email()
    created = http.post("/api/v1/users", json={"email": email, "password": PASSWORD})
    assert created.status_code == 201

    login = http.post("/api/v1/login", data={"username": email, "password": PASSWORD})
    assert login.status_code == 200
    assert login.headers["cache-control"] == "no-store"
    tokens = login.json()
    me = http.get("/api/v1/users/me", headers=bearer(tokens["access_token"]))
    assert me.json()["email"] == email

    rotated = http.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    new_tokens = rotated.json()

    logout = http.post("/api/v1/auth/logout", json={"refresh_token": new_tokens["refresh_token"]})
    assert logout.status_code == 204
    after = http.get("/api/v1/users/me", headers=bearer(new_tokens["access_token"]))
    assert_problem(after, 401, "invalid_token")
    again = http.post("/api/v1/auth/refresh", json={"refresh_token": new_tokens["refresh_token"]})
    assert_problem(again, 401, "invalid_refresh_token")


def test_posts_and_votes_over_http(http: httpx.Client) -> None:
    email = unique_email()
    http.post("/api/v1/users", json={"email": email, "password": PASSWORD})
    tokens = http.post("/api/v1/login", data={"username": email, "password": PASSWORD}).json()
    auth = bearer(tokens["access_token"])
    marker = email.split("@")[0]

    created = http.post(
        "/api/v1/posts", json={"title": f"{marker} 100% real", "content": "body"}, headers=auth
    )
    assert created.status_code == 201
    post_id = created.json()["id"]
    assert http.put(f"/api/v1/posts/{post_id}/vote", headers=auth).status_code == 204

    page = http.get("/api/v1/posts", params={"search": f"{marker} 100%"}, headers=auth).json()
    assert (len(page["items"]), page["next_offset"]) == (1, None)
    assert (page["items"][0]["votes"], page["items"][0]["voted"]) == (1, True)

    assert http.delete(f"/api/v1/posts/{post_id}", headers=auth).status_code == 204
    assert_problem(http.get(f"/api/v1/posts/{post_id}"), 404, "post_not_found")


def test_rate_limits_over_http(http: httpx.Client) -> None:
    email = unique_email()
    attempts = [
        http.post("/api/v1/login", data={"username": email, "password": "guess"}) for _ in range(6)
    ]

    assert [r.status_code for r in attempts] == [401] * 5 + [429]
    assert_problem(attempts[-1], 429, "rate_limited")
    assert int(attempts[-1].headers["retry-after"]) >= 1
    read = http.get("/api/v1/posts")
    assert read.headers["ratelimit-policy"] == '"read";q=300;w=60'
