"""The welcome email: through a real SMTP server on loopback, sent once per event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app import outbox
from app.db import Database, utcnow
from app.domains.users import service as users_service
from app.domains.users.tasks import send_welcome_email
from app.mail import LogMailer, SmtpMailer, compose, mailer_from_settings
from app.main import create_app
from app.outbox import HandlerContext, OutboxEvent, OutboxStatus
from app.settings import SmtpSettings
from tests.conftest import serve
from tests.factories import PASSWORD, unique_email
from tests.support import log_events, make_settings, unused_port


@dataclass
class Inbox:
    port: int
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]

    @property
    def settings(self) -> SmtpSettings:
        return SmtpSettings(
            _env_file=None, host="127.0.0.1", port=self.port, security="none", sender="app@test"
        )


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A real SMTP server (aiosmtpd) on a loopback port, keeping what it receives."""
    mailbox = Inbox(port=unused_port())
    server = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    server.start()
    yield mailbox
    server.stop()


def _context(inbox: Inbox) -> HandlerContext:
    settings = make_settings("sqlite://").model_copy(update={"smtp": inbox.settings})
    return HandlerContext(settings=settings, mailer=SmtpMailer(inbox.settings))


async def test_smtp_mailer_delivers_to_a_real_server(inbox: Inbox) -> None:
    message = compose(inbox.settings, to="ann@example.com", subject="Hello", body="Hi Ann")

    await SmtpMailer(inbox.settings).send(message)

    (received,) = inbox.to("ann@example.com")
    assert (received["From"], received["Subject"]) == ("app@test", "Hello")
    assert str(received.get_payload()).strip() == "Hi Ann"


async def test_user_created_sends_one_welcome_email_however_often_it_runs(
    database: Database, inbox: Inbox
) -> None:
    email = unique_email()
    context = _context(inbox)
    async with database.sessionmaker() as session:
        user = await users_service.create_user(session, email=email, password_hash=None)
        await session.commit()
        event = await session.scalar(
            select(OutboxEvent).where(OutboxEvent.payload["user_id"].as_integer() == user.id)
        )
    assert event is not None

    for _ in range(2):  # a duplicate delivery runs the handler again
        async with database.sessionmaker() as session:
            fresh = await session.get_one(OutboxEvent, event.id)
            await send_welcome_email(session, fresh, context)
            await session.commit()

    (welcome,) = inbox.to(email)
    assert welcome["Subject"] == "Welcome to FastAPI Starter"


async def test_no_mail_for_an_account_deleted_before_its_event_ran(
    database: Database, inbox: Inbox
) -> None:
    email = unique_email()
    async with database.sessionmaker() as session:
        user = await users_service.create_user(session, email=email, password_hash=None)
        await session.flush()
        event = outbox.record(session, "user.created", {"user_id": user.id})
        await users_service.delete_user(session, user)
        event.status = OutboxStatus.QUEUED  # as the dispatcher leaves it
        await session.commit()

    await outbox.process(database, [event.id], _context(inbox))

    assert inbox.to(email) == []
    async with database.sessionmaker() as session:
        done = await session.get_one(OutboxEvent, event.id)
    assert done.status is OutboxStatus.COMPLETED


async def test_without_smtp_settings_mail_goes_to_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mailer = mailer_from_settings(SmtpSettings(_env_file=None))
    settings = SmtpSettings(_env_file=None)

    with caplog.at_level(logging.INFO, logger="app.mail"):
        await mailer.send(compose(settings, to="bo@example.com", subject="Hi", body="x"))

    assert isinstance(mailer, LogMailer)
    (mail,) = log_events(caplog.records, "app.mail")
    assert mail["to"] == "b***@example.com"
    assert mail["subject"] == "Hi"
    assert "bo@example.com" not in caplog.text


async def test_the_embedded_relay_delivers_without_redis(
    private_engine: AsyncEngine, inbox: Inbox
) -> None:
    engine = private_engine  # the relay handles every due event: only this test's are here
    settings = make_settings(
        engine.url.render_as_string(hide_password=False),
        outbox={"relay_enabled": True, "dispatch_interval_seconds": 1},
    ).model_copy(update={"smtp": inbox.settings})
    email = unique_email()

    async with serve(create_app(settings, database=Database(engine))) as client:
        created = await client.post("/api/v1/users", json={"email": email, "password": PASSWORD})
        assert created.status_code == 201
        deadline = utcnow().timestamp() + 15
        while not inbox.to(email):  # poll with a deadline: the relay works in the background
            assert utcnow().timestamp() < deadline, "the relay never sent the welcome email"
            await asyncio.sleep(0.05)
    # Leaving the block ran the lifespan's shutdown: the relay task has stopped.
    assert len(inbox.to(email)) == 1
