"""Access tokens (short-lived JWTs) and refresh tokens (opaque random strings).

Follows RFC 8725 (JWT BCP) and RFC 9068's explicit typing: one allowlisted HMAC algorithm,
every claim required, `iss` and `aud` compared exactly, and a `typ` header that no other
kind of token carries.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from starlette.requests import Request

from app.settings import Settings

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - the RFC 9068 media type, not a secret
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp", "jti", "sid")
# Header parameters we issue. Anything else (`jwk`, `jku`, `x5u`, `kid`, `crit`, ...) is a
# token we did not make: RFC 8725 3.10 and 2.6.
ALLOWED_HEADER_KEYS = frozenset({"alg", "typ"})
REFRESH_TOKEN_BYTES = 32  # 256 bits from the CSPRNG
_DIGESTS = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}


class InvalidAccessToken(Exception):
    """The bearer token is missing a piece, tampered with, expired or of the wrong kind."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    session_id: uuid.UUID


def signing_key(settings: Settings) -> bytes:
    """A key derived for access tokens alone, as long as the algorithm's hash (RFC 7518 3.2).

    The same SECRET_KEY can then key other things without a token of one kind ever
    verifying as another.
    """
    secret = settings.secret_key.get_secret_value().encode()
    return hmac.new(secret, b"access-token", _DIGESTS[settings.auth.jwt_algorithm]).digest()


def issue_access_token(
    settings: Settings, *, user_id: int, session_id: uuid.UUID, now: datetime
) -> str:
    auth = settings.auth
    claims = {
        "iss": auth.jwt_issuer,
        "aud": auth.jwt_audience,
        "sub": str(user_id),
        "sid": str(session_id),
        "iat": now,
        "exp": now + timedelta(minutes=auth.access_token_minutes),
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(
        claims,
        signing_key(settings),
        algorithm=auth.jwt_algorithm,
        headers={"typ": ACCESS_TOKEN_TYPE},
    )


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    auth = settings.auth
    try:
        header = jwt.get_unverified_header(token)
        if set(header) - ALLOWED_HEADER_KEYS or header.get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidAccessToken("unexpected token header")
        claims = jwt.decode(
            token,
            signing_key(settings),
            algorithms=[auth.jwt_algorithm],
            audience=auth.jwt_audience,
            issuer=auth.jwt_issuer,
            leeway=auth.jwt_leeway_seconds,
            options={"require": list(REQUIRED_CLAIMS), "strict_aud": True},
        )
        return AccessClaims(user_id=int(claims["sub"]), session_id=uuid.UUID(claims["sid"]))
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidAccessToken(str(exc)) from exc


_REQUEST_CLAIMS = "access_claims"


def request_claims(request: Request, settings: Settings, token: str) -> AccessClaims:
    """`decode_access_token`, decoded once per request: the rate limiter keys a request by
    its token's user, and the identity dependency then needs the same claims."""
    cached: tuple[str, AccessClaims] | None = getattr(request.state, _REQUEST_CLAIMS, None)
    if cached is not None and cached[0] == token:
        return cached[1]
    claims = decode_access_token(settings, token)
    setattr(request.state, _REQUEST_CLAIMS, (token, claims))
    return claims


def new_refresh_token() -> str:
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def hash_refresh_token(token: str) -> str:
    """What the database stores. The token is 256 random bits, so a plain SHA-256 is enough:
    there is nothing to brute-force, and lookups stay a single indexed equality."""
    return hashlib.sha256(token.encode()).hexdigest()
