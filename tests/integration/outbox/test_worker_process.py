"""The worker as an operator runs it (`python -m worker`): killed mid-handler, every event
still completes and its effect is applied once; SIGTERM shuts it down cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import Database, utcnow
from app.domains.users import service as users_service
from app.outbox import OutboxEffect, OutboxEvent, OutboxStatus
from tests.conftest import TEST_REDIS_URL
from tests.support import ROOT, forget_queue, unused_port

pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TEST_REDIS_URL")


class StallingInbox:
    """An SMTP server whose first delivery hangs mid-DATA until released, then is refused."""

    def __init__(self) -> None:
        self.port = unused_port()
        self.messages: list[Message] = []
        self.first_data = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.first_data.is_set():
            self.first_data.set()
            await asyncio.to_thread(self.release.wait, 30)
            return "451 Try again later"  # the sender is gone by now anyway
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted"


@pytest.fixture
def inbox() -> Iterator[StallingInbox]:
    mailbox = StallingInbox()
    server = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    server.start()
    yield mailbox
    mailbox.release.set()
    server.stop()


def _start_worker(engine: AsyncEngine, inbox: StallingInbox, queue: str) -> subprocess.Popen[bytes]:
    assert TEST_REDIS_URL
    env = os.environ | {
        "ENVIRONMENT": "test",
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "REDIS_URL": TEST_REDIS_URL,
        "OUTBOX_QUEUE_NAME": queue,
        "OUTBOX_VISIBILITY_TIMEOUT_SECONDS": "3",
        "OUTBOX_JOB_TIMEOUT_SECONDS": "2",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(inbox.port),
        "SMTP_SECURITY": "none",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "worker"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
    )


async def _wait(condition: Any, what: str, seconds: float = 30) -> None:
    deadline = utcnow().timestamp() + seconds
    while not await condition():
        assert utcnow().timestamp() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_a_worker_killed_mid_handler_loses_nothing_and_sends_once(
    private_engine: AsyncEngine, inbox: StallingInbox
) -> None:
    database = Database(private_engine)
    email = f"killed-{uuid.uuid4().hex[:8]}@example.com"
    async with database.sessionmaker() as session:
        user = await users_service.create_user(session, email=email, password_hash=None)
        await session.commit()
    queue = f"test-outbox-{uuid.uuid4().hex}"

    async def status() -> OutboxStatus | None:
        async with database.sessionmaker() as session:
            return await session.scalar(
                select(OutboxEvent.status).where(OutboxEvent.topic == "user.created")
            )

    first = _start_worker(private_engine, inbox, queue)
    try:
        await _wait(lambda: asyncio.to_thread(inbox.first_data.wait, 0.1), "the first delivery")
        first.send_signal(signal.SIGKILL)  # mid-handler: the mail is half sent
        first.wait(timeout=10)
    finally:
        first.kill()
    inbox.release.set()
    assert await status() is OutboxStatus.QUEUED  # nothing committed by the dead worker

    second = _start_worker(private_engine, inbox, queue)
    try:

        async def completed() -> bool:
            return await status() is OutboxStatus.COMPLETED

        await _wait(completed, "the event to complete after the lock expired")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0  # a clean shutdown
    finally:
        second.kill()

    async with Redis.from_url(TEST_REDIS_URL or "") as redis:
        await forget_queue(redis, queue)
    assert [m["To"] for m in inbox.messages] == [email]
    async with database.sessionmaker() as session:
        effects = await session.scalar(select(func.count()).select_from(OutboxEffect))
    assert effects == 1
    assert user.id
