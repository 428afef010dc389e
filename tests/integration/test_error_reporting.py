"""Sentry error reports, sent to a stand-in for Sentry's ingest over real loopback HTTP."""

from __future__ import annotations

import gzip
import importlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sqlalchemy.ext.asyncio import AsyncEngine

from app import outbox
from app.db import Database
from app.mail import LogMailer
from app.main import create_app
from app.observability.error_reporting import configure_error_reporting
from app.outbox import HandlerContext
from app.settings import Settings
from tests import probe_routes
from tests.conftest import serve
from tests.support import assert_problem, make_settings

ENVELOPE_PATH = "/api/1/envelope/"
TOKEN = "tok-7c41e9b2-only-in-this-test"
COOKIE_VALUE = "ck-5d0a93f1-only-in-this-test"


class Ingest(ThreadingHTTPServer):
    """Keeps every request POSTed to it: (path, Content-Encoding, body as sent)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _IngestHandler)
        self.received: list[tuple[str, str | None, bytes]] = []

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server_address[1]}/1"

    def payloads(self) -> list[bytes]:
        """The envelopes received, decompressed as their Content-Encoding says."""
        assert {path for path, _, _ in self.received} <= {ENVELOPE_PATH}
        return [_decode(encoding, body) for _, encoding, body in self.received]


class _IngestHandler(BaseHTTPRequestHandler):
    server: Ingest

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        # Kept before answering: once the client has its answer, the envelope is here.
        self.server.received.append((self.path, self.headers.get("Content-Encoding"), body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no line per request
        pass


def _decode(encoding: str | None, body: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "br":  # what the SDK sends when the optional brotli package is installed
        data: bytes = importlib.import_module("brotli").decompress(body)
        return data
    assert encoding in (None, "identity"), encoding
    return body


@pytest.fixture(autouse=True)
def _sentry_off_afterwards() -> Iterator[None]:
    """Sentry is off again for the rest of the suite, whatever the test turned on.

    Not `sentry_sdk.init()` without a DSN: that reads `SENTRY_DSN` from the environment.
    """
    yield
    sentry_sdk.get_client().close()  # flushes what is queued, then stops its thread
    sentry_sdk.get_global_scope().set_client(None)


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    server = Ingest()
    thread = threading.Thread(target=server.serve_forever, name="sentry-ingest", daemon=True)
    thread.start()
    yield server
    sentry_sdk.get_client().close()  # nothing still in flight to this port once it closes
    server.shutdown()
    thread.join()
    server.server_close()


async def _crash(settings: Settings, database: Database) -> None:
    app = create_app(settings, database=database)
    app.include_router(probe_routes.router)
    async with serve(app) as client:
        response = await client.get(
            "/api/v1/probe/crash",
            headers={"Authorization": f"Bearer {TOKEN}", "Cookie": f"session={COOKIE_VALUE}"},
        )
    assert_problem(response, 500, "internal_error")


async def test_an_unhandled_error_is_reported_once_without_credentials(
    ingest: Ingest, database_url: str, database: Database
) -> None:
    settings = make_settings(database_url, sentry={"dsn": ingest.dsn, "release": "test-release"})

    await _crash(settings, database)
    sentry_sdk.flush()

    payloads = ingest.payloads()
    items = [item for payload in payloads for item in Envelope.deserialize(payload).items]
    events = [json.loads(item.get_bytes()) for item in items if item.type == "event"]
    assert len(events) == 1, events  # not once per layer that saw the exception
    [event] = events
    assert [value["type"] for value in event["exception"]["values"]] == ["RuntimeError"]
    assert event["level"] == "error"
    assert event["environment"] == "test"
    assert event["release"] == "test-release"
    # The report knows which request failed, and that it carried credentials, but not
    # their values (nowhere in the payload, below).
    request = event["request"]
    assert request["url"] == "http://testserver/api/v1/probe/crash"
    assert {"authorization", "cookie"} <= request["headers"].keys()
    assert "cookies" not in request
    frames = [f for v in event["exception"]["values"] for f in v["stacktrace"]["frames"]]
    assert frames
    assert all("vars" not in frame for frame in frames)  # locals hold the request's headers
    for payload in payloads:
        assert TOKEN.encode() not in payload
        assert COOKIE_VALUE.encode() not in payload
        assert b"hunter2" not in payload  # the exception's own message is masked too


async def test_without_a_dsn_sentry_stays_off(database_url: str, database: Database) -> None:
    before = sentry_sdk.get_global_scope().client
    settings = make_settings(database_url)

    configure_error_reporting(settings)
    await _crash(settings, database)

    assert sentry_sdk.get_global_scope().client is before  # init() was never called
    assert not sentry_sdk.get_client().is_active()
    assert sentry_sdk.capture_exception(RuntimeError("not sent")) is None  # no event made


async def test_an_outbox_event_that_fails_for_good_is_reported(
    ingest: Ingest, private_engine: AsyncEngine
) -> None:
    settings = make_settings(
        private_engine.url.render_as_string(hide_password=False), sentry={"dsn": ingest.dsn}
    )
    configure_error_reporting(settings)
    database = Database(private_engine)
    async with database.sessionmaker() as session:
        event = outbox.record(session, "test.sentry.no-handler", {"n": 1})
        await session.commit()
    await outbox.dispatch(database, settings.outbox, _no_queue)
    # No handler for the topic: a permanent failure, straight to the dead letter.
    await outbox.process(database, [event.id], HandlerContext(settings, LogMailer()))
    sentry_sdk.flush()

    items = [item for p in ingest.payloads() for item in Envelope.deserialize(p).items]
    [report] = [json.loads(item.get_bytes()) for item in items if item.type == "event"]
    assert report["level"] == "error"
    assert report["message"] == "outbox event test.sentry.no-handler failed for good"
    assert report["tags"]["outbox.topic"] == "test.sentry.no-handler"
    assert report["extra"]["event_id"] == event.id


async def _no_queue(event_ids: list[int]) -> None:
    """Dispatching only claims here; the test processes the event itself."""
