"""Paging through the post list: pages never overlap, together they are the visible set,
and `total` counts it, whatever the page size and whoever is looking."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.db import Database, utcnow
from app.domains.posts.models import Post
from tests.factories import Account, make_account

POSTS = 37


@pytest.fixture
async def world(client: httpx.AsyncClient, database: Database) -> dict[str, Any]:
    """Two authors with published posts and drafts, several sharing a timestamp."""
    alice, bob = await make_account(client), await make_account(client)
    marker = f"p{uuid.uuid4().hex[:10]}"
    start = utcnow()
    async with database.sessionmaker() as session:
        for i in range(POSTS):
            session.add(
                Post(
                    owner_id=(alice, bob)[i % 2].id,
                    title=f"{marker} {i}",
                    content="x",
                    published=i % 5 != 0,  # every fifth post is a draft
                    created_at=start - timedelta(seconds=i // 3),  # groups of equal times
                )
            )
        await session.commit()
    async with database.sessionmaker() as session:
        posts = (await session.scalars(select(Post).where(Post.title.startswith(marker)))).all()
    # The documented order, stated independently: newest first, the larger id first on ties.
    ranked = sorted(posts, key=lambda p: (p.created_at, p.id), reverse=True)
    order = {post.id: rank for rank, post in enumerate(ranked)}
    return {"alice": alice, "bob": bob, "marker": marker, "order": order}


async def _all_pages(
    client: httpx.AsyncClient, marker: str, limit: int, viewer: Account | None
) -> list[list[int]]:
    """Every page, following `next_offset` from the first until it is null."""
    headers = viewer.headers if viewer else {}
    pages: list[list[int]] = []
    offset: int | None = 0
    while offset is not None:
        response = await client.get(
            "/api/v1/posts",
            params={"search": marker, "limit": limit, "offset": offset},
            headers=headers,
        )
        body = response.json()
        pages.append([item["id"] for item in body["items"]])
        assert body["next_offset"] in (None, offset + limit)
        offset = body["next_offset"]
    return pages


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(limit=st.integers(min_value=1, max_value=100), who=st.sampled_from(["alice", "bob", None]))
async def test_pages_partition_the_visible_posts(
    client: httpx.AsyncClient,
    database: Database,
    world: dict[str, Any],
    limit: int,
    who: str | None,
) -> None:
    viewer: Account | None = world[who] if who else None
    pages = await _all_pages(client, world["marker"], limit, viewer)
    seen = [post_id for page in pages for post_id in page]
    expected = await _visible_ids(database, world["marker"], viewer)
    order = world["order"]

    assert len(seen) == len(set(seen))  # no post on two pages
    assert seen == sorted(seen, key=lambda post_id: order[post_id])  # newest first, then id
    assert set(seen) == expected  # together, exactly the visible posts
    assert all(len(page) == limit for page in pages[:-1])  # only the last page is short
    assert pages[-1] or len(pages) == 1  # the last page is empty only when all are


async def _visible_ids(database: Database, marker: str, viewer: Account | None) -> set[int]:
    """The visibility rule, restated independently of the code under test."""
    async with database.sessionmaker() as session:
        posts = (await session.scalars(select(Post).where(Post.title.startswith(marker)))).all()
    return {p.id for p in posts if p.published or (viewer is not None and p.owner_id == viewer.id)}
