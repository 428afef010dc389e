"""Logging set-up: every line carries the id of the request that produced it."""

from __future__ import annotations

import logging

from asgi_correlation_id import CorrelationIdFilter

from app.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s [%(correlation_id)s] %(name)s: %(message)s"

# One handler for the process, added to the root logger once however many applications
# are built; handlers others installed (a test runner's, an APM agent's) stay.
_handler = logging.StreamHandler()
_handler.addFilter(CorrelationIdFilter(default_value="-"))
_handler.setFormatter(logging.Formatter(LOG_FORMAT))


def configure_logging(settings: Settings) -> None:
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
    root.setLevel(settings.log_level)
