"""The unique constraint, not the early check, is what keeps emails unique."""

from __future__ import annotations

import pytest

from app.db import Database
from app.domains.auth import service as auth_service
from app.domains.auth.errors import InvalidCurrentPassword
from app.domains.auth.passwords import PasswordHasher
from app.domains.auth.schemas import UserUpdate
from app.domains.users import service
from app.domains.users.errors import EmailTaken
from app.domains.users.models import User
from tests.factories import unique_email
from tests.support import make_settings


async def test_create_user_turns_a_lost_race_into_email_taken(database: Database) -> None:
    email = unique_email()
    async with database.sessionmaker() as session:
        await service.create_user(session, email=email, password_hash=None)

        # As if another request had passed the early check at the same moment.
        with pytest.raises(EmailTaken):
            await service.create_user(session, email=email, password_hash=None)

        first = await service.create_user(session, email=unique_email(), password_hash=None)
        assert first.id is not None  # the session is still usable after the lost race


async def test_a_password_changed_during_verification_is_not_overwritten(
    database: Database,
) -> None:
    """PATCH checks the current password, then locks the row: if another request changed the
    password in between, the stale check no longer counts."""
    hasher = PasswordHasher(make_settings("sqlite://").auth)
    async with database.sessionmaker() as session, database.sessionmaker() as other:
        user = await service.create_user(
            session, email=unique_email(), password_hash=await hasher.hash("old password")
        )
        await session.commit()
        (await other.get_one(User, user.id)).password_hash = await hasher.hash("changed")
        await other.commit()

        with pytest.raises(InvalidCurrentPassword):
            await auth_service.update_account(
                session,
                hasher,
                user,  # still holds the old hash, as a request that loaded it earlier would
                UserUpdate(password="new password", current_password="old password"),
            )
