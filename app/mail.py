"""Outgoing mail: SMTP when `SMTP_HOST` is set, otherwise the log (the embedded default)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol

import aiosmtplib

from app.observability.logs import get_logger
from app.settings import SmtpSettings

logger = get_logger(__name__)


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class LogMailer:
    """Writes that a message would be sent to the log: nothing leaves the machine.

    The recipient is masked (`j***@example.com`): addresses are personal data, and logs
    travel further than the database.
    """

    async def send(self, message: EmailMessage) -> None:
        logger.info("mail", to=mask_address(str(message["To"])), subject=message["Subject"])


def mask_address(address: str) -> str:
    local, at, domain = address.partition("@")
    return f"{local[:1]}***{at}{domain}"


class SmtpMailer:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        settings = self.settings
        password = settings.password.get_secret_value() if settings.password else None
        await aiosmtplib.send(
            message,
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=password,
            use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls",
            timeout=settings.timeout_seconds,
        )


def mailer_from_settings(settings: SmtpSettings) -> Mailer:
    return SmtpMailer(settings) if settings.host else LogMailer()


def compose(settings: SmtpSettings, *, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message
