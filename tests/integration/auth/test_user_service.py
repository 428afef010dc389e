"""The unique constraint, not the early check, is what keeps emails unique."""

from __future__ import annotations

import pytest

from app.db import Database
from app.domains.users import service
from app.domains.users.errors import EmailTaken
from tests.factories import unique_email


async def test_create_user_turns_a_lost_race_into_email_taken(database: Database) -> None:
    email = unique_email()
    async with database.sessionmaker() as session:
        await service.create_user(session, email=email, password_hash=None)

        # As if another request had passed the early check at the same moment.
        with pytest.raises(EmailTaken):
            await service.create_user(session, email=email, password_hash=None)

        first = await service.create_user(session, email=unique_email(), password_hash=None)
        assert first.id is not None  # the session is still usable after the lost race
