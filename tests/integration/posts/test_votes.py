"""Votes: idempotent casting and withdrawing, counts and `voted` on every post."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from app.db import Database
from app.outbox import OutboxEvent
from tests.factories import make_account, make_post
from tests.support import assert_problem


async def _topics(database: Database, post_id: int) -> list[str]:
    """The vote events recorded for one post, oldest first."""
    async with database.sessionmaker() as session:
        events = await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.topic.startswith("vote."))
            .order_by(OutboxEvent.id)
        )
        return [e.topic for e in events if e.payload["post_id"] == post_id]


async def test_voting_is_idempotent_and_counted(
    client: httpx.AsyncClient, database: Database
) -> None:
    author = await make_account(client)
    voter, other = await make_account(client), await make_account(client)
    post = await make_post(client, author)
    path = f"/api/v1/posts/{post['id']}"

    first = await client.put(f"{path}/vote", headers=voter.headers)
    second = await client.put(f"{path}/vote", headers=voter.headers)
    await client.put(f"{path}/vote", headers=other.headers)

    assert (first.status_code, second.status_code) == (204, 204)
    seen_by_voter = (await client.get(path, headers=voter.headers)).json()
    seen_by_author = (await client.get(path, headers=author.headers)).json()
    assert (seen_by_voter["votes"], seen_by_voter["voted"]) == (2, True)
    assert (seen_by_author["votes"], seen_by_author["voted"]) == (2, False)
    assert await _topics(database, post["id"]) == [
        "vote.cast",
        "vote.cast",
    ]  # the repeat changed nothing


async def test_withdrawing_is_idempotent(client: httpx.AsyncClient, database: Database) -> None:
    author, voter = await make_account(client), await make_account(client)
    post = await make_post(client, author)
    path = f"/api/v1/posts/{post['id']}"
    await client.put(f"{path}/vote", headers=voter.headers)

    first = await client.delete(f"{path}/vote", headers=voter.headers)
    second = await client.delete(f"{path}/vote", headers=voter.headers)

    assert (first.status_code, second.status_code) == (204, 204)
    body = (await client.get(path, headers=voter.headers)).json()
    assert (body["votes"], body["voted"]) == (0, False)
    assert await _topics(database, post["id"]) == ["vote.cast", "vote.removed"]


async def test_voting_needs_a_signed_in_user_and_a_visible_post(
    client: httpx.AsyncClient,
) -> None:
    voter = await make_account(client)

    anonymous = await client.put("/api/v1/posts/1/vote")
    missing = await client.put("/api/v1/posts/999999999/vote", headers=voter.headers)
    withdraw_missing = await client.delete("/api/v1/posts/999999999/vote", headers=voter.headers)

    assert_problem(anonymous, 401, "not_authenticated")
    assert_problem(missing, 404, "post_not_found")
    assert_problem(withdraw_missing, 404, "post_not_found")


async def test_an_author_may_vote_on_their_own_draft(client: httpx.AsyncClient) -> None:
    author = await make_account(client)
    draft = await make_post(client, author, published=False)

    response = await client.put(f"/api/v1/posts/{draft['id']}/vote", headers=author.headers)

    assert response.status_code == 204
    seen = (await client.get(f"/api/v1/posts/{draft['id']}", headers=author.headers)).json()
    assert (seen["votes"], seen["voted"]) == (1, True)
