"""Log lines: secrets are masked whoever logs them, and the format follows the settings."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from asgi_correlation_id.context import correlation_id
from opentelemetry import trace

from app.observability import logs
from app.observability.logs import REDACTED, configure_logging, get_logger, masked, redact
from app.settings import DatabaseSettings, Settings
from tests.support import make_settings

URL = "sqlite+aiosqlite:///unused.db"  # nothing here connects


def redacted(**event: Any) -> dict[str, Any]:
    return dict(redact(None, "info", event))


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "new_password",
        "access_token",
        "refresh_token",
        "Authorization",
        "cookie",
        "client_secret",
        "api_key",
        "dsn",
    ],
)
def test_a_value_under_a_sensitive_key_is_replaced(key: str) -> None:
    assert redacted(**{key: "hunter2", "user_id": 7}) == {key: REDACTED, "user_id": 7}


@pytest.mark.parametrize("value", [None, 12345, b"raw", ["a", "list"]])
def test_a_sensitive_key_is_replaced_whatever_its_value_type(value: object) -> None:
    assert redacted(password=value) == {"password": REDACTED}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "sent Authorization: Bearer abc.def to upstream",
            f"sent Authorization: {REDACTED} to upstream",
        ),
        (
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl was rejected",
            f"token {REDACTED} was rejected",
        ),
        ("login with password=hunter2 failed", f"login with password={REDACTED} failed"),
        ("got token: xyz from cache", f"got token: {REDACTED} from cache"),
        ("PASSWD = hunter2 (env)", f"PASSWD = {REDACTED} (env)"),
        ("secret:s3cr3t", f"secret:{REDACTED}"),
        ("refresh_token=abc kept", f"refresh_token={REDACTED} kept"),
        ("new_password=hunter2", f"new_password={REDACTED}"),
        ("client_secret: s3 and api_key=k1", f"client_secret: {REDACTED} and api_key={REDACTED}"),
        (
            '{"password": "hunter2", "email": "a@b.co"}',
            f'{{"password": {REDACTED}, "email": "a@b.co"}}',
        ),
        ("passed the bypass", "passed the bypass"),
        ("{'refresh_token': 'r3fr3sh', 'n': 1}", f"{{'refresh_token': {REDACTED}, 'n': 1}}"),
        ("Authorization: Basic dXNlcjpwYXNz ok", f"Authorization: {REDACTED} ok"),
        ("postgresql://app:pw@db:5432/app", f"postgresql://{REDACTED}@db:5432/app"),
        (
            "refreshToken=abc and X-Api-Key: k1",
            f"refreshToken={REDACTED} and X-Api-Key: {REDACTED}",
        ),
    ],
)
def test_secrets_inside_text_are_masked_and_the_rest_is_kept(text: str, expected: str) -> None:
    assert redacted(event=text, detail=text) == {"event": expected, "detail": expected}


def test_harmless_keys_and_values_are_untouched() -> None:
    event = {
        "event": "request",
        "method": "POST",
        "route": "/api/v1/login",
        "status": 401,
        "duration_ms": 1.5,
        "email": "bo@example.com",
        "note": "a password is required; tokens expire after 15 minutes",
    }

    assert redacted(**event) == event


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the process's log handler back as it was after a test reconfigures it."""
    root = logging.getLogger()
    formatter, level, attached = logs._handler.formatter, root.level, logs._handler in root.handlers
    yield
    logs._handler.setFormatter(formatter)
    root.setLevel(level)
    if not attached:
        root.removeHandler(logs._handler)


def capture(logger_name: str, settings: Settings) -> io.StringIO:
    """Configure logging as the app does and return a stream that receives `logger_name`'s
    lines through the app handler's own formatter."""
    configure_logging(settings)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs._handler.formatter)
    logging.getLogger(logger_name).addHandler(handler)
    return stream


@pytest.fixture
def captured(restore_logging: None) -> Iterator[tuple[str, io.StringIO]]:
    """A JSON-configured capture of a library's logger (one the app does not own)."""
    name = "somelib"
    stream = capture(name, make_settings(URL, log_format="json"))
    yield name, stream
    logging.getLogger(name).handlers.clear()


def test_a_library_line_is_json_with_its_secret_masked(captured: tuple[str, io.StringIO]) -> None:
    name, stream = captured

    logging.getLogger(name).warning("login with password=%s", "hunter2")

    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == f"login with password={REDACTED}"
    assert (record["level"], record["logger"]) == ("warning", name)
    assert "timestamp" in record
    assert "hunter2" not in line


def test_a_library_traceback_stays_on_one_json_line_masked(
    captured: tuple[str, io.StringIO],
) -> None:
    name, stream = captured

    try:
        raise ValueError("rejected token=t0k3n")
    except ValueError:
        logging.getLogger(name).exception("upstream call failed")

    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == "upstream call failed"
    assert record["exception"].startswith("Traceback (most recent call last):")
    assert record["exception"].endswith(f"ValueError: rejected token={REDACTED}")
    assert "t0k3n" not in line


def test_a_line_carries_the_request_id_and_the_active_span(
    captured: tuple[str, io.StringIO],
) -> None:
    name, stream = captured
    span = trace.NonRecordingSpan(trace.SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=False))

    reset = correlation_id.set("req-42")
    try:
        with trace.use_span(span):
            logging.getLogger(name).warning("inside a request")
    finally:
        correlation_id.reset(reset)
    logging.getLogger(name).warning("outside any request")

    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["request_id"] == "req-42"
    assert inside["trace_id"] == f"{0xABC:032x}"
    assert inside["span_id"] == f"{0xDEF:016x}"
    assert not {"request_id", "trace_id", "span_id"} & outside.keys()


def test_the_console_format_renders_a_readable_masked_traceback(restore_logging: None) -> None:
    name = "tests.unit.console"
    stream = capture(name, make_settings(URL))

    try:
        raise ValueError("bad password=hunter2")
    except ValueError:
        get_logger(name).exception("login failed", password="hunter2", user_id=7)
    logging.getLogger(name).handlers.clear()

    text = stream.getvalue()
    first, *traceback = text.splitlines()
    assert "[error" in first
    assert "login failed" in first
    assert f"password={REDACTED}" in first
    assert "user_id=7" in first
    assert traceback[0] == "Traceback (most recent call last):"
    assert traceback[-1] == f"ValueError: bad password={REDACTED}"
    assert "hunter2" not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, False),  # ENVIRONMENT=test: aligned text for a terminal
        ({"environment": "local", "secret_key": "k" * 48}, False),
        ({"log_format": "json"}, True),
        ({"log_format": "console"}, False),
    ],
)
def test_json_logs_outside_production_only_when_asked(
    overrides: dict[str, Any], expected: bool
) -> None:
    assert make_settings(URL, **overrides).json_logs is expected


@pytest.mark.parametrize(("log_format", "expected"), [(None, True), ("console", False)])
def test_production_logs_json_unless_told_otherwise(log_format: str | None, expected: bool) -> None:
    settings = Settings(
        _env_file=None,
        environment="production",
        log_format=log_format,
        secret_key="k" * 48,
        trusted_hosts=["api.example.com"],
        database=DatabaseSettings(_env_file=None, url="postgresql+psycopg://app@db.internal/app"),
    )

    assert settings.json_logs is expected


def test_log_format_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")

    assert make_settings(URL).json_logs is True


def test_nested_values_are_masked_at_any_depth() -> None:
    event = {"headers": {"Authorization": "Bearer abc"}, "args": ("password=hunter2", 3)}
    assert masked(event) == {
        "headers": {"Authorization": REDACTED},
        "args": (f"password={REDACTED}", 3),
    }


def test_camel_case_and_dashed_keys_are_recognised() -> None:
    event = {"accessToken": "a", "X-Api-Key": "b", "private_key": "c", "user_id": 1}
    assert masked(event) == {
        "accessToken": REDACTED,
        "X-Api-Key": REDACTED,
        "private_key": REDACTED,
        "user_id": 1,
    }


def test_harmless_keys_that_merely_contain_a_secret_word_are_kept() -> None:
    assert masked({"passed": True, "bypass": "x", "tokens_left": 3}) == {
        "passed": True,
        "bypass": "x",
        "tokens_left": 3,
    }


@pytest.mark.parametrize("chatty", ["aiosqlite", "authlib"])
def test_libraries_that_log_secrets_at_debug_stay_at_info(
    restore_logging: None, chatty: str
) -> None:
    """aiosqlite logs statement parameters at DEBUG, Authlib each flow's PKCE verifier."""
    configure_logging(make_settings(URL, log_level="DEBUG"))

    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger(chatty).getEffectiveLevel() == logging.INFO
