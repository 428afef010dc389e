"""Races between requests on one post end in a clean answer, never a 500 (real commits)."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.outbox import OutboxEvent
from tests.factories import make_account, make_post

ROUNDS = 8


async def test_a_vote_racing_the_posts_deletion(committed_client: httpx.AsyncClient) -> None:
    author, voter = await make_account(committed_client), await make_account(committed_client)
    for _ in range(ROUNDS):
        post = await make_post(committed_client, author)
        path = f"/api/v1/posts/{post['id']}"

        vote, delete = await asyncio.gather(
            committed_client.put(f"{path}/vote", headers=voter.headers),
            committed_client.delete(path, headers=author.headers),
        )

        assert delete.status_code == 204
        assert vote.status_code in {204, 404}, vote.text


async def test_an_edit_racing_the_posts_deletion(committed_client: httpx.AsyncClient) -> None:
    author = await make_account(committed_client)
    for _ in range(ROUNDS):
        post = await make_post(committed_client, author)
        path = f"/api/v1/posts/{post['id']}"

        edit, delete = await asyncio.gather(
            committed_client.patch(path, json={"title": "edited"}, headers=author.headers),
            committed_client.delete(path, headers=author.headers),
        )

        assert delete.status_code == 204
        assert edit.status_code in {200, 404}, edit.text


async def test_concurrent_deletions_delete_once(
    committed_client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    author = await make_account(committed_client)
    post = await make_post(committed_client, author)
    path = f"/api/v1/posts/{post['id']}"

    responses = await asyncio.gather(
        *(committed_client.delete(path, headers=author.headers) for _ in range(4))
    )

    assert sorted(r.status_code for r in responses) == [204, 404, 404, 404]
    async with engine.connect() as connection:
        events = (
            await connection.execute(
                select(OutboxEvent.payload).where(OutboxEvent.topic == "post.deleted")
            )
        ).scalars()
        assert [e for e in events if e["post_id"] == post["id"]] == [
            {"post_id": post["id"], "owner_id": author.id}
        ]
