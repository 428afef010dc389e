"""Forged, tampered and misused access tokens: every one is a 401 problem (RFC 8725)."""

from __future__ import annotations

import base64
import json
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from app.domains.auth.tokens import ACCESS_TOKEN_TYPE, signing_key
from app.settings import Settings
from tests.factories import Account, bearer, make_account
from tests.support import assert_problem

Forge = Callable[[Settings, Account], str]


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(settings: Settings, account: Account, **changes: Any) -> dict[str, Any]:
    """Claims exactly like a real token of `account`'s session, with `changes` applied."""
    real = jwt.decode(account.tokens["access_token"], options={"verify_signature": False})
    now = datetime.now(UTC)
    claims = real | {"iat": now, "exp": now + timedelta(minutes=5)} | changes
    return {k: v for k, v in claims.items() if v is not None}


def _sign(
    settings: Settings,
    claims: dict[str, Any],
    *,
    key: bytes | None = None,
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
) -> str:
    return jwt.encode(
        claims,
        key or signing_key(settings),
        algorithm=algorithm,
        headers={"typ": ACCESS_TOKEN_TYPE, **(headers or {})},
    )


def _quietly(sign: Callable[[], str]) -> str:
    """Sign despite PyJWT's key-length warning: the attacker does not care."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sign()


def _alg_none(settings: Settings, account: Account) -> str:
    header = {"alg": "none", "typ": ACCESS_TOKEN_TYPE}
    return f"{_b64(header)}.{_b64(_claims(settings, account, iat=1, exp=2**40))}."


def _tampered_subject(settings: Settings, account: Account) -> str:
    header, _, signature = account.tokens["access_token"].split(".")
    payload = _claims(settings, account, sub=str(account.id + 1))
    payload["iat"], payload["exp"] = 1, 2**40
    return f"{header}.{_b64(payload)}.{signature}"


def _rs256_signed(settings: Settings, account: Account) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(
        _claims(settings, account), key, algorithm="RS256", headers={"typ": ACCESS_TOKEN_TYPE}
    )


FORGERIES: dict[str, Forge] = {
    "alg none": _alg_none,
    "other HMAC alg, same key": lambda s, a: _quietly(
        lambda: _sign(s, _claims(s, a), algorithm="HS512")
    ),
    "asymmetric alg": _rs256_signed,
    "tampered payload": _tampered_subject,
    "wrong secret": lambda s, a: _sign(s, _claims(s, a), key=b"k" * 32),
    "raw secret without derivation": lambda s, a: _sign(
        s, _claims(s, a), key=s.secret_key.get_secret_value().encode()
    ),
    "wrong issuer": lambda s, a: _sign(s, _claims(s, a, iss="someone-else")),
    "issuer prefix": lambda s, a: _sign(s, _claims(s, a, iss=s.auth.jwt_issuer[:-1])),
    "issuer extension": lambda s, a: _sign(s, _claims(s, a, iss=s.auth.jwt_issuer + "-evil")),
    "wrong audience": lambda s, a: _sign(s, _claims(s, a, aud="another-api")),
    "audience list": lambda s, a: _sign(s, _claims(s, a, aud=[s.auth.jwt_audience, "x"])),
    "expired beyond leeway": lambda s, a: _sign(
        s, _claims(s, a, exp=datetime.now(UTC) - timedelta(seconds=60))
    ),
    "not yet valid": lambda s, a: _sign(
        s, _claims(s, a, nbf=datetime.now(UTC) + timedelta(minutes=5))
    ),
    "issued in the future": lambda s, a: _sign(
        s, _claims(s, a, iat=datetime.now(UTC) + timedelta(minutes=5))
    ),
    "missing exp": lambda s, a: _sign(s, _claims(s, a, exp=None)),
    "missing jti": lambda s, a: _sign(s, _claims(s, a, jti=None)),
    "missing session": lambda s, a: _sign(s, _claims(s, a, sid=None)),
    "non-numeric subject": lambda s, a: _sign(s, _claims(s, a, sub="admin")),
    "unknown session": lambda s, a: _sign(s, _claims(s, a, sid=str(uuid.uuid4()))),
    "another user's subject": lambda s, a: _sign(s, _claims(s, a, sub=str(a.id + 10_000))),
    "generic JWT typ": lambda s, a: jwt.encode(
        _claims(s, a), signing_key(s), algorithm="HS256", headers={"typ": "JWT"}
    ),
    "kid header": lambda s, a: _sign(s, _claims(s, a), headers={"kid": "../../dev/null"}),
    "jku header": lambda s, a: _sign(s, _claims(s, a), headers={"jku": "https://evil/jwks"}),
    "jwk header": lambda s, a: _sign(s, _claims(s, a), headers={"jwk": {"kty": "oct"}}),
    "x5u header": lambda s, a: _sign(s, _claims(s, a), headers={"x5u": "https://evil/cert"}),
    "crit header": lambda s, a: _sign(s, _claims(s, a), headers={"crit": ["exp"]}),
    "refresh token as bearer": lambda s, a: a.refresh_token,
    "garbage": lambda s, a: "not.a.jwt",
    "empty segments": lambda s, a: "..",
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
async def test_forged_access_tokens_are_refused(
    client: httpx.AsyncClient, app: FastAPI, forge: Forge
) -> None:
    account = await make_account(client)
    token = forge(app.state.settings, account)

    response = await client.get("/api/v1/users/me", headers=bearer(token))

    assert_problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_a_token_built_like_ours_is_accepted(client: httpx.AsyncClient, app: FastAPI) -> None:
    """The forgery corpus is only meaningful if its unforged baseline passes."""
    settings = app.state.settings
    account = await make_account(client)

    response = await client.get(
        "/api/v1/users/me", headers=bearer(_sign(settings, _claims(settings, account)))
    )

    assert response.status_code == 200


async def test_clock_skew_within_the_leeway_is_tolerated(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    settings = app.state.settings
    account = await make_account(client)
    just_expired = _claims(settings, account, exp=datetime.now(UTC) - timedelta(seconds=3))

    response = await client.get("/api/v1/users/me", headers=bearer(_sign(settings, just_expired)))

    assert response.status_code == 200


@pytest.mark.parametrize(
    "authorization", ["", "Bearer", "Basic dXNlcjpwYXNz", "Token abc", "Bearer  "]
)
async def test_missing_or_non_bearer_credentials_are_401(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.get("/api/v1/users/me", headers={"Authorization": authorization})

    assert_problem(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"] == "Bearer"
