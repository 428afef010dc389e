"""The real server's log output: a JSON object per line, one access line per request carrying
its request id, and no password, token or key anywhere in it."""

from __future__ import annotations

import json
import secrets
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from redis import Redis

from app.db import MAX_ID
from tests.conftest import TEST_REDIS_URL
from tests.e2e.server import served
from tests.factories import bearer, unique_email
from tests.support import assert_problem

# Every secret is URL-safe base64, which JSON writes as is: searching the raw output for
# the value finds it however a line quoted it.
SECRET_NAMES = (
    "password",
    "wrong_password",
    "access_token",
    "refresh_token",
    "rotated_access_token",
    "rotated_refresh_token",
    "secret_key",
    "garbage_token",
    "garbage_authorization",
    "query_token",
)


@dataclass(frozen=True)
class Sent:
    """A request as the access line should describe it."""

    request_id: str
    method: str
    route: str
    status: int


@dataclass
class LoggedRun:
    """Everything the server wrote to stderr while serving one user's session."""

    text: str = ""
    lines: list[dict[str, Any]] = field(default_factory=list)
    not_json_objects: list[str] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    # A request id the server refused to take, and the one it chose instead.
    refused_id: str = ""
    replacement_id: str = ""


class Caller:
    """Sends requests with request ids of this run's own and remembers what each should log."""

    def __init__(self, http: httpx.Client, run: LoggedRun) -> None:
        self.http = http
        self.run = run
        self.prefix = f"logs-{uuid.uuid4().hex[:8]}"

    def send(
        self, method: str, url: str, *, route: str, status: int, **kwargs: Any
    ) -> httpx.Response:
        request_id = f"{self.prefix}-{len(self.run.sent)}"
        headers = {"X-Request-ID": request_id, **kwargs.pop("headers", {})}
        response = self.http.request(method, url, headers=headers, **kwargs)
        assert response.status_code == status, response.text
        assert response.headers["x-request-id"] == request_id
        self.run.sent.append(Sent(request_id, method, route, status))
        return response


def use_the_api(http: httpx.Client, run: LoggedRun) -> None:
    """Register, sign in, refresh, fail twice and sign out, as a client would."""
    caller = Caller(http, run)
    email, password = unique_email(), run.secrets["password"]
    caller.send(
        "POST",
        "/api/v1/users",
        route="/api/v1/users",
        status=201,
        json={"email": email, "password": password},
    )
    tokens = caller.send(
        "POST",
        "/api/v1/login",
        route="/api/v1/login",
        status=200,
        data={"username": email, "password": password},
    ).json()
    run.secrets |= {key: tokens[key] for key in ("access_token", "refresh_token")}
    caller.send(
        "GET",
        "/api/v1/users/me",
        route="/api/v1/users/me",
        status=200,
        headers=bearer(tokens["access_token"]),
    )
    missing = caller.send(
        "GET",
        f"/api/v1/posts/{MAX_ID}",
        route="/api/v1/posts/{post_id}",
        status=404,
        params={"token": run.secrets["query_token"]},
        headers=bearer(tokens["access_token"]),
    )
    assert_problem(missing, 404, "post_not_found")
    rotated = caller.send(
        "POST",
        "/api/v1/auth/refresh",
        route="/api/v1/auth/refresh",
        status=200,
        json={"refresh_token": tokens["refresh_token"]},
    ).json()
    run.secrets |= {
        "rotated_access_token": rotated["access_token"],
        "rotated_refresh_token": rotated["refresh_token"],
    }
    wrong = caller.send(
        "POST",
        "/api/v1/login",
        route="/api/v1/login",
        status=401,
        data={"username": email, "password": run.secrets["wrong_password"]},
    )
    assert_problem(wrong, 401, "invalid_credentials")
    garbage = caller.send(
        "GET",
        "/api/v1/users/me",
        route="/api/v1/users/me",
        status=401,
        headers={"Authorization": run.secrets["garbage_authorization"]},
    )
    assert_problem(garbage, 401, "invalid_token")
    caller.send(
        "POST",
        "/api/v1/auth/logout",
        route="/api/v1/auth/logout",
        status=204,
        json={"refresh_token": rotated["refresh_token"]},
    )
    # A request id that could not be trusted in a log line is replaced, not written.
    run.refused_id = f"{caller.prefix} two words"
    replaced = http.get("/api/v1/posts", headers={"X-Request-ID": run.refused_id})
    assert replaced.status_code == 200
    run.replacement_id = replaced.headers["x-request-id"]
    assert run.replacement_id != run.refused_id
    run.sent.append(Sent(run.replacement_id, "GET", "/api/v1/posts", 200))


@pytest.fixture(scope="module")
def run(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoggedRun]:
    """One user's session against a server logging JSON, and all it wrote once stopped."""
    run = LoggedRun(
        secrets={
            "password": secrets.token_urlsafe(24),
            "wrong_password": secrets.token_urlsafe(24),
            "secret_key": secrets.token_urlsafe(36),  # 48 characters
            "garbage_token": secrets.token_urlsafe(32),
            "query_token": secrets.token_urlsafe(24),
        }
    )
    run.secrets["garbage_authorization"] = f"Bearer {run.secrets['garbage_token']}"
    assert len(run.secrets["secret_key"]) == 48
    env = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "OUTBOX_RELAY_ENABLED": "false",
        "RATE_LIMIT_KEY_PREFIX": f"e2e-logs-{uuid.uuid4().hex}",
        "LOG_FORMAT": "json",
        "SECRET_KEY": run.secrets["secret_key"],
    }
    if TEST_REDIS_URL:
        env["REDIS_URL"] = TEST_REDIS_URL
    # A file rather than a pipe: nothing reads while the server runs, and a full pipe
    # would block its writes.
    path = tmp_path_factory.mktemp("logs") / "stderr.log"
    with path.open("wb") as stderr, served(env, stderr=stderr) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            use_the_api(http, run)
        # Stopped before reading, so every line of the process is in the file.
        assert server.stop() == -signal.SIGTERM
    run.text = path.read_text(encoding="utf-8")
    for raw in run.text.splitlines():
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            line = None
        if isinstance(line, dict):
            run.lines.append(line)
        else:
            run.not_json_objects.append(raw)
    yield run
    if TEST_REDIS_URL:
        with Redis.from_url(TEST_REDIS_URL) as redis:
            keys = list(redis.scan_iter(f"{env['RATE_LIMIT_KEY_PREFIX']}*"))
            if keys:
                redis.delete(*keys)


def access_lines(run: LoggedRun) -> list[dict[str, Any]]:
    return [line for line in run.lines if line["logger"] == "app.access"]


def test_every_line_of_the_process_is_a_json_object(run: LoggedRun) -> None:
    assert run.not_json_objects == []
    assert len(run.lines) > len(run.sent)
    for line in run.lines:
        assert {"event", "level", "logger", "timestamp"} <= line.keys(), line


def test_the_servers_own_lines_go_through_the_same_format(run: LoggedRun) -> None:
    uvicorn = [line["event"] for line in run.lines if line["logger"] == "uvicorn.error"]

    assert "Application startup complete." in uvicorn
    assert "Application shutdown complete." in uvicorn
    assert not [line for line in run.lines if line["logger"] == "uvicorn.access"]


def test_each_request_has_one_access_line_with_its_template_status_and_duration(
    run: LoggedRun,
) -> None:
    lines = access_lines(run)

    assert Counter(line.get("request_id") for line in lines) == Counter(
        sent.request_id for sent in run.sent
    )
    by_id = {line["request_id"]: line for line in lines}
    for sent in run.sent:
        line = by_id[sent.request_id]
        assert (line["event"], line["level"]) == ("request", "info")
        assert (line["method"], line["route"], line["status"]) == (
            sent.method,
            sent.route,
            sent.status,
        )
        assert type(line["duration_ms"]) in (int, float)
        assert line["duration_ms"] >= 0


def test_a_request_id_appears_only_on_its_own_requests_lines(run: LoggedRun) -> None:
    ours = {sent.request_id for sent in run.sent}
    tagged = [line for line in run.lines if "request_id" in line]

    # Lines outside a request (start-up, shutdown) carry none, and no id outlives its request.
    assert {line["request_id"] for line in tagged} == ours
    assert run.replacement_id in ours
    assert run.refused_id not in run.text


def test_the_query_string_is_never_logged(run: LoggedRun) -> None:
    assert not [line for line in access_lines(run) if "?" in line["route"]]
    assert f"?token={run.secrets['query_token']}" not in run.text


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_no_secret_appears_anywhere_in_the_output(run: LoggedRun, name: str) -> None:
    value = run.secrets[name]

    assert len(value) >= 20  # long and random: absent means never written
    assert value not in run.text
