"""Error reports to Sentry when `SENTRY_DSN` is set: errors only, and no personal data."""

from __future__ import annotations

from typing import TypeVar, cast

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.types import Hint

from app.observability.logs import masked
from app.settings import Settings

T = TypeVar("T")


def configure_error_reporting(settings: Settings) -> None:
    if settings.sentry.dsn is None:
        return
    sentry_sdk.init(
        dsn=settings.sentry.dsn.get_secret_value(),
        environment=settings.sentry.environment or settings.environment.value,
        release=settings.sentry.release,
        # No performance traces (OpenTelemetry does that); errors only.
        traces_sample_rate=None,
        # Personal data stays out: `send_default_pii` keeps its default (off), so no user,
        # client address, cookies or Authorization header; and neither the request body nor
        # the frames' local variables, which hold the passwords and tokens being handled.
        max_request_body_size="never",
        include_local_variables=False,
        # Reports come from the unhandled-error middleware; log lines become breadcrumbs.
        integrations=[LoggingIntegration(event_level=None)],
        # What the logs mask, reports mask too (an exception's message, a library's line).
        before_send=_masked,
        before_breadcrumb=_masked,
    )


def _masked(item: T, _hint: Hint) -> T:
    return cast(T, masked(item))


def flush_error_reports() -> None:
    """Send what is queued now: a server stopped by a signal exits without `atexit`."""
    sentry_sdk.flush(timeout=2)
