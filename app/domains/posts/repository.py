"""SQL for posts. Reads select columns straight into the response shape, one query a page."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.posts.models import Post
from app.domains.votes import repository as votes


def _visible_to(viewer_id: int | None) -> ColumnElement[bool]:
    """Published posts, plus the viewer's own drafts. Everything else does not exist."""
    if viewer_id is None:
        return Post.published.is_(True)
    return or_(Post.published.is_(True), Post.owner_id == viewer_id)


def _matching(search: str | None) -> list[ColumnElement[bool]]:
    if not search:
        return []
    # autoescape: `%`, `_` and the escape character in the search text match themselves.
    return [
        or_(
            Post.title.icontains(search, autoescape=True),
            Post.content.icontains(search, autoescape=True),
        )
    ]


def _view_columns(viewer_id: int | None) -> tuple[Any, ...]:
    return (
        *Post.__table__.columns,
        votes.count_for(Post.id).label("votes"),
        votes.cast_by(Post.id, viewer_id).label("voted"),
    )


async def page(
    session: AsyncSession, *, viewer_id: int | None, search: str | None, limit: int, offset: int
) -> Sequence[RowMapping]:
    """Newest first; `id` breaks ties so pages never overlap or skip a post.

    The page's ids are chosen first and the vote columns computed for those rows only, so
    a deep offset skips rows without counting votes for each of them.
    """
    page_ids = (
        select(Post.id)
        .where(_visible_to(viewer_id), *_matching(search))
        .order_by(Post.created_at.desc(), Post.id.desc())
        .limit(limit)
        .offset(offset)
        .subquery()
    )
    query = (
        select(*_view_columns(viewer_id))
        .join(page_ids, page_ids.c.id == Post.id)
        .order_by(Post.created_at.desc(), Post.id.desc())
    )
    return (await session.execute(query)).mappings().all()


async def count(session: AsyncSession, *, viewer_id: int | None, search: str | None) -> int:
    query = select(func.count()).select_from(Post).where(_visible_to(viewer_id), *_matching(search))
    return await session.scalar(query) or 0


async def view(session: AsyncSession, post_id: int, viewer_id: int | None) -> RowMapping | None:
    """The post as `viewer_id` sees it, or None when it does not exist for them."""
    query = select(*_view_columns(viewer_id)).where(Post.id == post_id, _visible_to(viewer_id))
    return (await session.execute(query)).mappings().one_or_none()


class Lock(StrEnum):
    """How a loaded post is held until the transaction ends (PostgreSQL row locks)."""

    KEY_SHARE = "key_share"  # it cannot be deleted meanwhile: enough to add a vote to it
    UPDATE = "update"  # nobody else may change or delete it: for edits and deletion


async def get_visible(
    session: AsyncSession, post_id: int, viewer_id: int | None, *, lock: Lock
) -> Post | None:
    """The post, if `viewer_id` may see it, locked as asked.

    A request that lost a race with a deletion then finds nothing (404) instead of failing
    on a foreign key or a vanished row.
    """
    query = select(Post).where(Post.id == post_id, _visible_to(viewer_id))
    if lock is Lock.KEY_SHARE:
        query = query.with_for_update(read=True, key_share=True)
    else:
        query = query.with_for_update()
    return await session.scalar(query.execution_options(populate_existing=True))


async def add(session: AsyncSession, post: Post) -> Post:
    session.add(post)
    await session.flush()
    return post


async def remove(session: AsyncSession, post: Post) -> None:
    # The database cascades the delete to the post's votes.
    await session.delete(post)
    await session.flush()
