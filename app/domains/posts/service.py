"""Post rules: visibility, ownership, and an outbox event for every change."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.domains.posts import repository
from app.domains.posts.errors import PostNotFound
from app.domains.posts.models import Post
from app.domains.posts.schemas import PostCreate, PostPage, PostRead, PostUpdate
from app.domains.users.models import User
from app.domains.votes import service as votes


def _viewer_id(viewer: User | None) -> int | None:
    return viewer.id if viewer else None


async def list_posts(
    session: AsyncSession, viewer: User | None, *, search: str | None, limit: int, offset: int
) -> PostPage:
    rows, more = await repository.page(
        session, viewer_id=_viewer_id(viewer), search=search, limit=limit, offset=offset
    )
    items = [PostRead.model_validate(row) for row in rows]
    next_offset = offset + limit if more else None
    return PostPage(items=items, limit=limit, offset=offset, next_offset=next_offset)


async def read_post(session: AsyncSession, post_id: int, viewer: User | None) -> PostRead:
    row = await repository.view(session, post_id, _viewer_id(viewer))
    if row is None:
        raise PostNotFound
    return PostRead.model_validate(row)


async def create_post(session: AsyncSession, owner: User, data: PostCreate) -> PostRead:
    post = await repository.add(session, Post(owner_id=owner.id, **data.model_dump()))
    outbox.record(session, "post.created", {"post_id": post.id, "owner_id": owner.id})
    # Nobody can have voted for it yet: the answer needs no query.
    columns = {column.key: getattr(post, column.key) for column in Post.__table__.columns}
    return PostRead.model_validate(columns | {"votes": 0, "voted": False})


async def update_post(
    session: AsyncSession, post: Post, changes: PostUpdate, editor: User
) -> PostRead:
    changed = {
        field: value
        for field, value in changes.model_dump(exclude_unset=True).items()
        if getattr(post, field) != value
    }
    if changed:
        for field, value in changed.items():
            setattr(post, field, value)
        await session.flush()
        outbox.record(session, "post.updated", {"post_id": post.id, "fields": sorted(changed)})
    return await read_post(session, post.id, editor)


async def delete_post(session: AsyncSession, post: Post) -> None:
    await repository.remove(session, post)
    outbox.record(session, "post.deleted", {"post_id": post.id, "owner_id": post.owner_id})


async def vote(session: AsyncSession, post: Post, voter: User) -> None:
    await votes.cast(session, user_id=voter.id, post_id=post.id)


async def unvote(session: AsyncSession, post: Post, voter: User) -> None:
    await votes.withdraw(session, user_id=voter.id, post_id=post.id)
