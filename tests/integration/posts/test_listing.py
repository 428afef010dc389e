"""The post list: paging, ordering, visibility, literal search and a constant query count."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import MAX_ID, Database, utcnow
from app.domains.posts.models import Post
from app.domains.votes.models import Vote
from tests.factories import Account, make_account
from tests.support import assert_problem


async def insert_posts(
    database: Database,
    owner: Account,
    count: int,
    *,
    marker: str,
    published: bool = True,
    created_at: datetime | None = None,
) -> list[int]:
    """`count` posts titled with `marker`, oldest first, all at `created_at` when given."""
    now = utcnow()
    rows = [
        {
            "owner_id": owner.id,
            "title": f"{marker} #{i}",
            "content": "body",
            "published": published,
            "created_at": created_at or now - timedelta(seconds=count - i),
            "updated_at": now,
        }
        for i in range(count)
    ]
    async with database.sessionmaker() as session:
        ids = list(await session.scalars(insert(Post).returning(Post.id), rows))
        await session.commit()
    return ids


async def _list(client: httpx.AsyncClient, account: Account | None = None, **params: Any) -> Any:
    headers = account.headers if account else {}
    response = await client.get("/api/v1/posts", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _marker() -> str:
    return f"m{uuid.uuid4().hex[:10]}"


async def test_defaults_and_page_shape(client: httpx.AsyncClient, database: Database) -> None:
    author = await make_account(client)
    marker = _marker()
    ids = await insert_posts(database, author, 25, marker=marker)

    page = await _list(client, search=marker)

    assert (page["limit"], page["offset"], page["next_offset"]) == (20, 0, 20)
    assert [item["id"] for item in page["items"]] == ids[::-1][:20]  # newest first
    last = await _list(client, search=marker, offset=20)
    assert (len(last["items"]), last["next_offset"]) == (5, None)
    assert all(item["owner_id"] == author.id for item in page["items"])
    assert author.email not in str(page)


async def test_equal_timestamps_are_ordered_by_id(
    client: httpx.AsyncClient, database: Database
) -> None:
    author = await make_account(client)
    marker = _marker()
    ids = await insert_posts(database, author, 6, marker=marker, created_at=utcnow())

    first = await _list(client, search=marker, limit=4)
    second = await _list(client, search=marker, limit=4, offset=4)

    assert [i["id"] for i in first["items"] + second["items"]] == sorted(ids, reverse=True)


async def test_drafts_are_listed_only_for_their_owner(
    client: httpx.AsyncClient, database: Database
) -> None:
    author, reader = await make_account(client), await make_account(client)
    marker = _marker()
    await insert_posts(database, author, 3, marker=marker)
    await insert_posts(database, author, 2, marker=marker, published=False)

    own = await _list(client, author, search=marker)
    assert len(own["items"]) == 5
    assert sorted(item["published"] for item in own["items"]) == [False, False, True, True, True]
    for viewer in (reader, None):
        page = await _list(client, viewer, search=marker)
        assert len(page["items"]) == 3
        assert all(item["published"] for item in page["items"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**70}, "offset"),
        ({"search": "x" * 201}, "search"),
        ({"search": "nul\x00byte"}, "search"),
    ],
)
async def test_out_of_range_paging_is_422(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/api/v1/posts", params=params)

    body = assert_problem(response, 422, "validation_failed")
    assert body["errors"][0]["loc"] == ["query", field]


async def test_extreme_but_valid_paging(client: httpx.AsyncClient) -> None:
    page = await _list(client, limit=100, offset=MAX_ID)

    assert page["items"] == []


async def test_search_is_case_insensitive_in_title_and_content(
    client: httpx.AsyncClient, database: Database
) -> None:
    author = await make_account(client)
    marker = _marker()
    async with database.sessionmaker() as session:
        for title, content in [
            (f"{marker} Crème BRÛLÉE", "dessert"),
            (f"{marker} plain", "a recipe for crème brûlée"),
            (f"{marker} other", "nothing here"),
        ]:
            session.add(Post(owner_id=author.id, title=title, content=content))
        await session.commit()

    page = await _list(client, search="CRÈME brûlée", limit=100)

    titles = sorted(i["title"] for i in page["items"] if i["title"].startswith(marker))
    assert titles == [f"{marker} Crème BRÛLÉE", f"{marker} plain"]


@pytest.mark.parametrize("wildcard", ["%", "_", "\\", "/", "%_", "[a]"])
async def test_search_matches_wildcards_literally(
    client: httpx.AsyncClient, database: Database, wildcard: str
) -> None:
    author = await make_account(client)
    marker = _marker()
    async with database.sessionmaker() as session:
        session.add(Post(owner_id=author.id, title=f"{marker} 50{wildcard}off", content="x"))
        session.add(Post(owner_id=author.id, title=f"{marker} 50 pct off", content="x"))
        session.add(Post(owner_id=author.id, title=f"{marker} 50Xoff", content="x"))
        await session.commit()

    page = await _list(client, search=f"{marker} 50{wildcard}off")

    assert [i["title"] for i in page["items"]] == [f"{marker} 50{wildcard}off"]
    assert page["next_offset"] is None


async def test_each_item_carries_votes_and_the_callers_vote(
    client: httpx.AsyncClient, database: Database
) -> None:
    author, voter = await make_account(client), await make_account(client)
    marker = _marker()
    liked, other = await insert_posts(database, author, 2, marker=marker)
    await client.put(f"/api/v1/posts/{liked}/vote", headers=voter.headers)
    await client.put(f"/api/v1/posts/{liked}/vote", headers=author.headers)

    as_voter = {i["id"]: i for i in (await _list(client, voter, search=marker))["items"]}
    anonymous = {i["id"]: i for i in (await _list(client, search=marker))["items"]}

    assert (as_voter[liked]["votes"], as_voter[liked]["voted"]) == (2, True)
    assert (as_voter[other]["votes"], as_voter[other]["voted"]) == (0, False)
    assert (anonymous[liked]["votes"], anonymous[liked]["voted"]) == (2, None)


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_a_page_costs_the_same_statements_for_1_and_100_items(
    client: httpx.AsyncClient, database: Database, engine: AsyncEngine
) -> None:
    reader = await make_account(client)
    one, hundred = _marker(), _marker()
    author = await make_account(client)
    await insert_posts(database, author, 1, marker=one)
    post_ids = await insert_posts(database, author, 100, marker=hundred)
    async with database.sessionmaker() as session:
        await session.execute(
            insert(Vote), [{"user_id": reader.id, "post_id": pid} for pid in post_ids[::2]]
        )
        await session.commit()

    with count_statements(engine) as for_one:
        small = await _list(client, reader, search=one, limit=100)
    with count_statements(engine) as for_hundred:
        large = await _list(client, reader, search=hundred, limit=100)

    assert (len(small["items"]), len(large["items"])) == (1, 100)
    assert sum(i["voted"] for i in large["items"]) == 50
    assert len(for_one) == len(for_hundred)
    # The caller's identity, and the page with its vote columns.
    assert len([s for s in for_hundred if s.lstrip().upper().startswith("SELECT")]) == 2
