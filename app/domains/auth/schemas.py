"""Request and response bodies of the auth endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.domains.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from app.domains.users.schemas import Email

# A new password: the policy is length only (NIST SP 800-63B 3.1.1.2), no composition rules.
NewPassword = Annotated[
    str, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
]
# A password being checked: any length up to the maximum, so oversize input never reaches
# the hasher.
GivenPassword = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
OpaqueToken = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserCreate(_Body):
    email: Email
    password: NewPassword


class UserUpdate(_Body):
    email: Email | None = None
    password: NewPassword | None = None
    current_password: GivenPassword | None = None

    @model_validator(mode="after")
    def _credentials_need_current_password(self) -> UserUpdate:
        if (self.email is not None or self.password is not None) and not self.current_password:
            raise ValueError("changing the email or password needs current_password")
        return self


class LoginForm(BaseModel):
    """The OAuth2 password grant form (RFC 6749 4.3.2); `username` is the email."""

    model_config = ConfigDict(extra="ignore")  # clients also send scope, client_id, ...

    grant_type: Literal["password"] | None = None
    # No control characters: they can be no one's address (and PostgreSQL refuses NUL).
    username: Annotated[
        str, StringConstraints(min_length=1, max_length=320, pattern=r"^[^\x00-\x1f\x7f]*$")
    ]
    password: GivenPassword


class RefreshRequest(_Body):
    refresh_token: OpaqueToken


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the RFC 6750 scheme name
    expires_in: int = Field(description="Seconds until the access token expires.")


class SessionRead(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    user_agent: str | None
    current: bool = Field(description="Whether this is the session of the calling token.")
