"""Logging: structlog over the standard library, so our lines and every library's (uvicorn,
SQLAlchemy, ARQ) go through one handler and one format: a JSON object per line in
production, aligned text at a terminal.

Every line carries the id of the request that produced it and, while a trace is recorded,
the trace and span ids. Values under sensitive keys, bearer tokens, JWTs and
`password=...` fragments are masked on every line, whoever wrote it.
"""

from __future__ import annotations

import functools
import logging
import re

import structlog
from asgi_correlation_id.context import correlation_id
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from app.settings import Settings

REDACTED = "[redacted]"
_SENSITIVE_WORDS = (
    r"pass(?:word|wd|phrase)?|token|secret|authorization|cookie|dsn|credentials?"
    r"|api[_-]?key|private[_-]?key"
)
# A key holding one of those words between separators, camelCase included: `refresh_token`,
# `Set-Cookie`, `X-Api-Key`, `accessToken`, `password_hash`; not `passed` or `bypass`.
_SENSITIVE_KEY = re.compile(rf"(?:^|[_-])(?:{_SENSITIVE_WORDS})(?:$|[_-])", re.I)
_WORD_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SENSITIVE_TEXT = re.compile(
    r"(?i)\b(?:bearer|basic|digest)\s+[\w.~+/=-]+"  # an Authorization header's credentials
    r"|\beyJ[\w-]+\.[\w-]+\.[\w-]*"  # a JWT
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"  # user:password@ in a URL
    # `password=...`, `refresh_token: ...`, `"client_secret": "..."`, `'api_key': '...'`
    rf"|\b(\w*(?:{_SENSITIVE_WORDS})\w*)(['\"]?\s*[=:]\s*)"
    r"(?:\"[^\"]*\"|'[^']*'|(?:(?:bearer|basic|digest)\s+)?[^\s,;}]+)"
)


@functools.lru_cache(maxsize=1024)  # the same few keys come back on every line
def _sensitive_key(key: object) -> bool:
    return bool(_SENSITIVE_KEY.search(_WORD_BOUNDARY.sub("_", str(key))))


def _mask(match: re.Match[str]) -> str:
    return f"{match[1]}{match[2]}{REDACTED}" if match[1] else REDACTED


def masked(value: object) -> object:
    """`value` with secrets masked: under sensitive keys, and inside text, at any depth."""
    if isinstance(value, str):
        return _SENSITIVE_TEXT.sub(_mask, value)
    if isinstance(value, dict):
        return {
            key: REDACTED if _sensitive_key(key) else masked(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(masked(item) for item in value)
    return value


# Fields the logging setup itself writes (below), which hold nothing a caller chose.
_OWN_FIELDS = frozenset({"timestamp", "level", "logger", "trace_id", "span_id"})


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    return {key: _masked_field(key, value) for key, value in event_dict.items()}


def _masked_field(key: str, value: object) -> object:
    if key in _OWN_FIELDS:
        return value
    return REDACTED if _sensitive_key(key) else masked(value)


def redact_exception(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Masks the traceback text `format_exc_info` adds; the rest of the line is masked already."""
    if "exception" in event_dict:
        event_dict["exception"] = masked(event_dict["exception"])
    return event_dict


def _add_request_id(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    request_id = correlation_id.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def _add_trace_ids(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        event_dict["trace_id"] = trace.format_trace_id(span.trace_id)
        event_dict["span_id"] = trace.format_span_id(span.span_id)
    return event_dict


# Run for our lines and, through the formatter, for lines logged with the standard library.
_CONTEXT: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.PositionalArgumentsFormatter(),
    _add_request_id,
    _add_trace_ids,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
structlog.configure(
    # Masked here as well as in the formatter, so handlers besides ours (Sentry's
    # breadcrumbs, a test's capture) never see the secrets either.
    processors=[*_CONTEXT, redact, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)

# One handler for the process, added to the root logger once however many applications
# are built; handlers others installed (a test runner's, an APM agent's) stay.
_handler = logging.StreamHandler()


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A logger for a module: `get_logger(__name__).info("event_name", key=value)`."""
    return structlog.stdlib.get_logger(name)


def configure_logging(settings: Settings) -> None:
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if settings.json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    _handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            # Other libraries' lines are masked here; ours were masked as they were logged.
            foreign_pre_chain=[*_CONTEXT, redact],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_exception,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
    root.setLevel(settings.log_level)
    # At DEBUG, aiosqlite logs every statement with its parameters (password hashes), and
    # Authlib the PKCE verifier of each OAuth flow.
    for chatty in ("aiosqlite", "authlib"):
        logging.getLogger(chatty).setLevel(max(root.level, logging.INFO))
    _adopt_uvicorn_loggers()


def _adopt_uvicorn_loggers() -> None:
    """Uvicorn's lines go through our handler; its access line gives way to ours."""
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
