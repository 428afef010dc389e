"""The OAuth endpoints' request and response bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.domains.auth.schemas import OpaqueToken


class ProviderRead(BaseModel):
    name: str
    display_name: str


class ProviderList(BaseModel):
    providers: list[ProviderRead]


class AuthorizationUrl(BaseModel):
    """Where the frontend sends the browser to link a provider."""

    authorization_url: str


class OAuthAccountRead(BaseModel):
    """A provider identity linked to the caller's account."""

    model_config = ConfigDict(from_attributes=True)

    provider: str
    email: str | None
    created_at: datetime
    last_login_at: datetime | None


class ExchangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: OpaqueToken
