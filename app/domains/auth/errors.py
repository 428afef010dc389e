"""Problems the auth domain reports. 401s carry `WWW-Authenticate` (RFC 6750 3)."""

from __future__ import annotations

from typing import ClassVar

from app.errors import ProblemError

_BEARER = {"WWW-Authenticate": "Bearer"}
_BEARER_INVALID = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class InvalidCredentials(ProblemError):
    status = 401
    code = "invalid_credentials"
    title = "Unauthorized"
    detail = "The email or password is wrong."
    default_headers: ClassVar[dict[str, str]] = _BEARER


class NotAuthenticated(ProblemError):
    status = 401
    code = "not_authenticated"
    title = "Unauthorized"
    detail = "This endpoint needs a bearer access token."
    default_headers: ClassVar[dict[str, str]] = _BEARER


class InvalidToken(ProblemError):
    status = 401
    code = "invalid_token"
    title = "Unauthorized"
    detail = "The access token is invalid, expired or revoked."
    default_headers: ClassVar[dict[str, str]] = _BEARER_INVALID


class InvalidRefreshToken(ProblemError):
    status = 401
    code = "invalid_refresh_token"
    title = "Unauthorized"
    detail = "The refresh token is invalid, expired or revoked."


class RefreshTokenSuperseded(ProblemError):
    status = 401
    code = "refresh_token_superseded"
    title = "Unauthorized"
    detail = "This refresh token was just rotated by another request; use the newest token."


class RefreshTokenReused(ProblemError):
    status = 401
    code = "refresh_token_reused"
    title = "Unauthorized"
    detail = "This refresh token was already used. The session has been ended for safety."
    # The family is revoked in this request's transaction; keep that write (RFC 9700 4.14.2).
    commit = True


class InvalidCurrentPassword(ProblemError):
    status = 403
    code = "invalid_current_password"
    title = "Forbidden"
    detail = "The current password is wrong."


class SessionNotFound(ProblemError):
    status = 404
    code = "session_not_found"
    title = "Not Found"
    detail = "No active session with this id belongs to you."
