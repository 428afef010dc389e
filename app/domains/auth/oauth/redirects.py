"""Where a finished flow may send the browser: only to the configured frontend origins, so
the sign-in can never be turned into an open redirect (RFC 9700 4.11.2)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.domains.auth.oauth.errors import RedirectNotAllowed
from app.settings import OAuthSettings

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> str | None:
    """`scheme://host[:port]` of an absolute http(s) URL, in normal form; None for anything
    else: a relative or scheme-relative URL, credentials before the host, a backslash, a
    control character or space (which browsers strip or reinterpret), a bad port."""
    if "\\" in url or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


def allowed_origins(settings: OAuthSettings) -> set[str]:
    candidates = [*settings.allowed_redirect_origins, settings.frontend_callback_url or ""]
    return {found for candidate in candidates if (found := origin(candidate))}


def redirect_target(requested: str | None, settings: OAuthSettings) -> str | None:
    """Where the flow ends: the requested URL if its origin is allowed, else the frontend
    callback URL; None when neither is set (the callback then answers with JSON)."""
    if requested is None:
        return settings.frontend_callback_url
    if origin(requested) not in allowed_origins(settings):
        raise RedirectNotAllowed
    return requested


def with_query(url: str, **params: str) -> str:
    """`url` with `params` in its query, replacing any of the same names."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*kept, *params.items()])))
