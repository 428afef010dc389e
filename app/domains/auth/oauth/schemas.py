"""The OAuth endpoints' request and response bodies."""

from __future__ import annotations

from pydantic import BaseModel


class ProviderRead(BaseModel):
    name: str
    display_name: str


class ProviderList(BaseModel):
    providers: list[ProviderRead]
