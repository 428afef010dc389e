"""Invariants of tokens and the password policy, over generated inputs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.db import MAX_ID
from app.domains.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from app.domains.auth.schemas import UserCreate
from app.domains.auth.tokens import AccessClaims, decode_access_token, issue_access_token
from tests.support import make_settings

SETTINGS = make_settings("sqlite://")


@given(user_id=st.integers(min_value=1, max_value=MAX_ID), session_id=st.uuids())
def test_access_tokens_round_trip(user_id: int, session_id: uuid.UUID) -> None:
    token = issue_access_token(
        SETTINGS, user_id=user_id, session_id=session_id, now=datetime.now(UTC)
    )

    assert decode_access_token(SETTINGS, token) == AccessClaims(user_id, session_id)


@given(password=st.text(max_size=MAX_PASSWORD_LENGTH + 20))
def test_password_policy_is_length_and_nothing_else(password: str) -> None:
    allowed = MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH
    try:
        UserCreate(email="someone@example.com", password=password)
    except ValidationError:
        accepted = False
    else:
        accepted = True

    assert accepted is allowed
