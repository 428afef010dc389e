"""Error reports to Sentry when `SENTRY_DSN` is set: errors only, and no personal data."""

from __future__ import annotations

import sentry_sdk
from sentry_sdk.integrations.logging import LoggingIntegration

from app.settings import Settings


def configure_error_reporting(settings: Settings) -> None:
    if settings.sentry.dsn is None:
        return
    sentry_sdk.init(
        dsn=settings.sentry.dsn.get_secret_value(),
        environment=settings.sentry.environment or settings.environment.value,
        release=settings.sentry.release,
        # No performance traces (OpenTelemetry does that); errors only.
        traces_sample_rate=None,
        # No user, client address, cookies or Authorization header...
        send_default_pii=False,
        # ...and neither the request body nor the frames' local variables, which hold the
        # passwords and tokens being handled.
        max_request_body_size="never",
        include_local_variables=False,
        # Reports come from the unhandled-error middleware; log lines become breadcrumbs.
        integrations=[LoggingIntegration(event_level=None)],
    )
