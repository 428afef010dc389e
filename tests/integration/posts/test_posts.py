"""Posts: creation, reading, partial update, deletion, ownership and visibility."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from app.db import MAX_ID, Database
from app.domains.votes.models import Vote
from app.outbox import OutboxEvent
from tests.factories import make_account, make_post
from tests.support import assert_problem


async def _events(database: Database, topic: str) -> list[dict[str, object]]:
    async with database.sessionmaker() as session:
        rows = await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == topic))
        return [event.payload for event in rows]


async def test_create_post(client: httpx.AsyncClient, database: Database) -> None:
    author = await make_account(client)

    response = await client.post(
        "/api/v1/posts",
        json={"title": "Hello", "content": "First post"},
        headers=author.headers,
    )

    assert response.status_code == 201
    post = response.json()
    assert set(post) == {
        "id",
        "owner_id",
        "title",
        "content",
        "published",
        "created_at",
        "updated_at",
        "votes",
        "voted",
    }
    assert post["owner_id"] == author.id
    assert post["published"] is True
    assert (post["votes"], post["voted"]) == (0, False)
    assert author.email not in response.text
    assert {"post_id": post["id"], "owner_id": author.id} in await _events(database, "post.created")


async def test_creating_needs_a_signed_in_user(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/posts", json={"title": "t", "content": "c"})

    assert_problem(response, 401, "not_authenticated")


@pytest.mark.parametrize(
    "body",
    [
        {"title": "", "content": "c"},
        {"title": "t" * 201, "content": "c"},
        {"title": "t", "content": ""},
        {"title": "t", "content": "c" * 10_001},
        {"title": "t"},
        {"title": "t", "content": "c", "owner_id": 1},
        {"title": "t", "content": "c", "votes": 100},
        {"title": "t", "content": "c", "published": "maybe"},
        {"title": "nul\x00byte", "content": "c"},
        {"title": "t", "content": "nul\x00byte"},
    ],
)
async def test_invalid_posts_are_422(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    author = await make_account(client)

    response = await client.post("/api/v1/posts", json=body, headers=author.headers)

    assert_problem(response, 422, "validation_failed")


async def test_longest_fields_are_accepted(client: httpx.AsyncClient) -> None:
    author = await make_account(client)

    post = await make_post(client, author, title="t" * 200, content="c" * 10_000)

    assert len(post["title"]) == 200


async def test_read_post_anonymously(client: httpx.AsyncClient) -> None:
    post = await make_post(client, await make_account(client))

    response = await client.get(f"/api/v1/posts/{post['id']}")

    assert response.status_code == 200
    assert response.json()["voted"] is None  # unknown for an anonymous caller
    assert response.json()["id"] == post["id"]


@pytest.mark.parametrize("post_id", ["0", "-1", "abc", "1.5", str(MAX_ID + 1), str(2**70)])
async def test_invalid_post_ids_are_422(client: httpx.AsyncClient, post_id: str) -> None:
    assert_problem(await client.get(f"/api/v1/posts/{post_id}"), 422, "validation_failed")


async def test_unknown_post_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"/api/v1/posts/{MAX_ID}"), 404, "post_not_found")


async def test_a_draft_exists_only_for_its_owner(client: httpx.AsyncClient) -> None:
    author, other = await make_account(client), await make_account(client)
    draft = await make_post(client, author, published=False)
    path = f"/api/v1/posts/{draft['id']}"

    assert (await client.get(path, headers=author.headers)).status_code == 200
    for headers in ({}, other.headers):
        assert_problem(await client.get(path, headers=headers), 404, "post_not_found")
    for method, suffix, body in [
        ("PATCH", "", {"title": "x"}),
        ("DELETE", "", None),
        ("PUT", "/vote", None),
        ("DELETE", "/vote", None),
    ]:
        response = await client.request(method, path + suffix, json=body, headers=other.headers)
        assert_problem(response, 404, "post_not_found")


async def test_partial_update_changes_only_what_is_sent(
    client: httpx.AsyncClient, database: Database
) -> None:
    author = await make_account(client)
    post = await make_post(client, author, title="Before", content="Kept")

    response = await client.patch(
        f"/api/v1/posts/{post['id']}", json={"title": "After"}, headers=author.headers
    )

    assert response.status_code == 200
    updated = response.json()
    assert (updated["title"], updated["content"]) == ("After", "Kept")
    assert updated["updated_at"] >= post["updated_at"]
    assert {"post_id": post["id"], "fields": ["title"]} in await _events(database, "post.updated")


async def test_an_update_that_changes_nothing_records_nothing(
    client: httpx.AsyncClient, database: Database
) -> None:
    author = await make_account(client)
    post = await make_post(client, author, title="Same")

    response = await client.patch(
        f"/api/v1/posts/{post['id']}", json={"title": "Same"}, headers=author.headers
    )

    assert response.status_code == 200
    assert response.json()["updated_at"] == post["updated_at"]
    assert all(e["post_id"] != post["id"] for e in await _events(database, "post.updated"))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": None}, "title"),
        ({"content": None}, "content"),
        ({"published": None}, "published"),
        ({"title": ""}, "title"),
        ({"owner_id": 2}, "owner_id"),
        ({"id": 5}, "id"),
    ],
)
async def test_invalid_updates_are_422_at_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    author = await make_account(client)
    post = await make_post(client, author)

    response = await client.patch(f"/api/v1/posts/{post['id']}", json=body, headers=author.headers)

    problem = assert_problem(response, 422, "validation_failed")
    assert problem["errors"][0]["loc"] == ["body", field]


async def test_unpublishing_hides_a_post_from_everyone_else(client: httpx.AsyncClient) -> None:
    author, reader = await make_account(client), await make_account(client)
    post = await make_post(client, author)
    path = f"/api/v1/posts/{post['id']}"

    await client.patch(path, json={"published": False}, headers=author.headers)

    assert_problem(await client.get(path, headers=reader.headers), 404, "post_not_found")
    assert (await client.get(path, headers=author.headers)).json()["published"] is False


async def test_only_the_owner_may_edit_or_delete(client: httpx.AsyncClient) -> None:
    author, other = await make_account(client), await make_account(client)
    post = await make_post(client, author)
    path = f"/api/v1/posts/{post['id']}"

    patch = await client.patch(path, json={"title": "mine now"}, headers=other.headers)
    delete = await client.delete(path, headers=other.headers)

    assert_problem(patch, 403, "not_post_owner")
    assert_problem(delete, 403, "not_post_owner")
    assert (await client.get(path)).json()["title"] == post["title"]


async def test_anonymous_edits_are_401_before_anything_about_the_post(
    client: httpx.AsyncClient,
) -> None:
    draft = await make_post(client, await make_account(client), published=False)

    response = await client.patch(f"/api/v1/posts/{draft['id']}", json={"title": "x"})

    assert_problem(response, 401, "not_authenticated")


async def test_delete_post_removes_it_and_its_votes(
    client: httpx.AsyncClient, database: Database
) -> None:
    author, voter = await make_account(client), await make_account(client)
    post = await make_post(client, author)
    await client.put(f"/api/v1/posts/{post['id']}/vote", headers=voter.headers)

    response = await client.delete(f"/api/v1/posts/{post['id']}", headers=author.headers)

    assert response.status_code == 204
    assert_problem(await client.get(f"/api/v1/posts/{post['id']}"), 404, "post_not_found")
    assert await _vote_rows(database, post["id"]) == 0
    assert {"post_id": post["id"], "owner_id": author.id} in await _events(database, "post.deleted")


async def _vote_rows(database: Database, post_id: int) -> int:
    async with database.sessionmaker() as session:
        return await session.scalar(select(func.count()).where(Vote.post_id == post_id)) or 0


async def test_deleting_a_user_removes_their_posts_and_votes(
    client: httpx.AsyncClient, database: Database
) -> None:
    leaving, staying = await make_account(client), await make_account(client)
    theirs = await make_post(client, leaving)
    kept = await make_post(client, staying)
    await client.put(f"/api/v1/posts/{kept['id']}/vote", headers=leaving.headers)
    await client.put(f"/api/v1/posts/{theirs['id']}/vote", headers=staying.headers)

    assert (await client.delete("/api/v1/users/me", headers=leaving.headers)).status_code == 204

    assert_problem(await client.get(f"/api/v1/posts/{theirs['id']}"), 404, "post_not_found")
    assert (await client.get(f"/api/v1/posts/{kept['id']}")).json()["votes"] == 0
    assert await _vote_rows(database, theirs["id"]) == 0


async def test_a_deleted_posts_id_is_never_given_to_another(client: httpx.AsyncClient) -> None:
    author = await make_account(client)
    first = await make_post(client, author)
    await client.delete(f"/api/v1/posts/{first['id']}", headers=author.headers)

    second = await make_post(client, author)

    assert second["id"] > first["id"]


async def test_deleting_an_account_records_user_deleted(
    client: httpx.AsyncClient, database: Database
) -> None:
    leaving = await make_account(client)

    await client.delete("/api/v1/users/me", headers=leaving.headers)

    assert {"user_id": leaving.id} in await _events(database, "user.deleted")
