"""Who is calling: `CurrentUser`, `OptionalUser`, `CurrentIdentity`, and the password hasher."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from app.db import DbSession, utcnow
from app.domains.auth import repository
from app.domains.auth.errors import InvalidToken, NotAuthenticated
from app.domains.auth.passwords import PasswordHasher
from app.domains.auth.service import Identity
from app.domains.auth.tokens import InvalidAccessToken, request_claims
from app.domains.users.models import User
from app.settings import AppSettings

# Declares the scheme in OpenAPI ("Authorize" in /docs); errors are raised below, as problems.
_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/login", auto_error=False)


async def _optional_identity(
    request: Request,
    token: Annotated[str | None, Depends(_bearer)],
    session: DbSession,
    settings: AppSettings,
) -> Identity | None:
    if not token:  # no Authorization header, another scheme, or "Bearer" with nothing after
        return None
    try:
        claims = request_claims(request, settings, token)
    except InvalidAccessToken as exc:
        raise InvalidToken from exc
    user = await repository.active_user_in_session(
        session, user_id=claims.user_id, session_id=claims.session_id, now=utcnow()
    )
    if user is None:  # deleted, disabled, or the session was revoked
        raise InvalidToken
    return Identity(user=user, session_id=claims.session_id)


async def _identity(
    identity: Annotated[Identity | None, Depends(_optional_identity)],
) -> Identity:
    if identity is None:
        raise NotAuthenticated
    return identity


async def _current_user(identity: Annotated[Identity, Depends(_identity)]) -> User:
    return identity.user


async def _optional_user(
    identity: Annotated[Identity | None, Depends(_optional_identity)],
) -> User | None:
    return identity.user if identity else None


async def _password_hasher(request: Request) -> PasswordHasher:
    # The application's one hasher, made by its lifespan (see `app.main.State`).
    return cast(PasswordHasher, request.state.password_hasher)


CurrentIdentity = Annotated[Identity, Depends(_identity)]
CurrentUser = Annotated[User, Depends(_current_user)]
# Anonymous when no token is sent; a token that is sent must still be valid (401 otherwise).
OptionalUser = Annotated[User | None, Depends(_optional_user)]
# `openapi_extra` of the routes that take an `OptionalUser`. FastAPI documents the bearer scheme
# as required; OpenAPI says "optional" with an empty requirement among the alternatives, which
# FastAPI appends to the scheme's: `[{"OAuth2PasswordBearer": []}, {}]`.
OPTIONAL_BEARER: dict[str, Any] = {"security": [{}]}
Hasher = Annotated[PasswordHasher, Depends(_password_hasher)]
