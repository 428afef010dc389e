"""Public representations of a user."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    TypeAdapter,
    ValidationError,
)

from app.domains.users.models import EMAIL_MAX_LENGTH

# Addresses are compared and stored lower-cased: `Ann@Example.com` and `ann@example.com`
# are one account.
Email = Annotated[EmailStr, Field(max_length=EMAIL_MAX_LENGTH), AfterValidator(str.lower)]


_EMAIL = TypeAdapter(Email)


def normalize_email(raw: str) -> str:
    """The stored form of an address as typed at login, exactly as registration stores it.

    Input that is not a valid address is only trimmed and lower-cased; it matches nothing.
    """
    try:
        return _EMAIL.validate_python(raw)
    except ValidationError:
        return raw.strip().lower()


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    email_verified: bool
    created_at: datetime
