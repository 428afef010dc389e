"""Access and refresh token primitives."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import jwt
import pytest

from app.domains.auth.tokens import (
    AccessClaims,
    InvalidAccessToken,
    decode_access_token,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
    signing_key,
)
from app.settings import AuthSettings
from tests.support import make_settings


def test_issued_tokens_carry_every_required_claim() -> None:
    settings = make_settings("sqlite://")
    now = datetime.now(UTC)
    session_id = uuid.uuid4()

    token = issue_access_token(settings, user_id=7, session_id=session_id, now=now)

    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header == {"alg": "HS256", "typ": "at+jwt"}
    assert set(claims) == {"iss", "aud", "sub", "sid", "iat", "exp", "jti"}
    assert claims["sub"] == "7"
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert decode_access_token(settings, token) == AccessClaims(7, session_id)


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_each_allowed_algorithm_gets_a_key_of_its_own_length(algorithm: str) -> None:
    settings = make_settings("sqlite://", auth={"jwt_algorithm": algorithm})
    token = issue_access_token(settings, user_id=1, session_id=uuid.uuid4(), now=datetime.now(UTC))

    assert len(signing_key(settings)) == int(algorithm[2:]) // 8
    assert decode_access_token(settings, token).user_id == 1


def test_tokens_do_not_survive_a_change_of_secret() -> None:
    token = issue_access_token(
        make_settings("sqlite://"), user_id=1, session_id=uuid.uuid4(), now=datetime.now(UTC)
    )

    with pytest.raises(InvalidAccessToken):
        decode_access_token(make_settings("sqlite://"), token)


def test_refresh_tokens_are_256_bit_and_stored_as_a_digest() -> None:
    tokens = {new_refresh_token() for _ in range(100)}

    assert len(tokens) == 100
    assert all(len(t) == 43 for t in tokens)  # 32 bytes in unpadded base64url
    token = tokens.pop()
    assert hash_refresh_token(token) == hash_refresh_token(token)
    assert len(hash_refresh_token(token)) == 64
    assert token not in hash_refresh_token(token)


def test_leeway_is_capped_at_thirty_seconds() -> None:
    with pytest.raises(ValueError, match="less than or equal to 30"):
        AuthSettings(_env_file=None, jwt_leeway_seconds=31)
