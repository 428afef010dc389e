"""SQL for posts.

Reads are SQLAlchemy Core statements over the tables, built once per shape (signed in or
not, searching or not) with bound parameters, and selected straight into the response
shape: building a statement and executing it through the ORM cost more than the query on
the hottest paths (bench/REPORT.md). Writes load and change ORM objects.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, Select, String, bindparam, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.domains.posts.models import Post
from app.domains.votes import repository as votes

posts = Post.__table__
# The query's own parameter names.
_VIEWER, _POST, _PATTERN, _LIMIT, _OFFSET = "viewer_id", "post_id", "pattern", "limit", "offset"
_LIKE_ESCAPE = "/"


def _visible(signed_in: bool) -> ColumnElement[bool]:
    """Published posts, plus the viewer's own drafts. Everything else does not exist."""
    if not signed_in:
        return posts.c.published.is_(True)
    return or_(posts.c.published.is_(True), posts.c.owner_id == bindparam(_VIEWER))


def _view_columns(signed_in: bool) -> tuple[Any, ...]:
    """The columns of `PostRead`: the post, its vote count and whether the viewer voted."""
    voted = votes.cast_by(posts.c.id, bindparam(_VIEWER)) if signed_in else null()
    return (*posts.c, votes.count_for(posts.c.id).label("votes"), voted.label("voted"))


@functools.cache
def _page_query(signed_in: bool, searching: bool) -> Select[Any]:
    """Newest first; `id` breaks ties so pages never overlap or skip a post.

    The page's ids are chosen first and the vote columns computed for those rows only, so
    a deep offset skips rows without counting votes for each of them.
    """
    page_ids = select(posts.c.id).where(_visible(signed_in))
    if searching:
        pattern = bindparam(_PATTERN, type_=String)
        page_ids = page_ids.where(
            or_(
                posts.c.title.ilike(pattern, escape=_LIKE_ESCAPE),
                posts.c.content.ilike(pattern, escape=_LIKE_ESCAPE),
            )
        )
    newest_first = (posts.c.created_at.desc(), posts.c.id.desc())
    chosen = (
        page_ids.order_by(*newest_first)
        .limit(bindparam(_LIMIT))
        .offset(bindparam(_OFFSET))
        .subquery()
    )
    return (
        select(*_view_columns(signed_in))
        .join(chosen, chosen.c.id == posts.c.id)
        .order_by(*newest_first)
    )


@functools.cache
def _view_query(signed_in: bool) -> Select[Any]:
    return select(*_view_columns(signed_in)).where(
        posts.c.id == bindparam(_POST), _visible(signed_in)
    )


def _contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its `%`, `_` and escape character literal."""
    for special in (_LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, _LIKE_ESCAPE + special)
    return f"%{text}%"


async def page(
    session: AsyncSession, *, viewer_id: int | None, search: str | None, limit: int, offset: int
) -> tuple[Sequence[RowMapping], bool]:
    """Up to `limit` posts from `offset` on, and whether more follow them.

    Case-insensitive `search` in title or content. One row beyond the page is fetched to
    tell whether there is a next page, rather than counting every match.
    """
    query = _page_query(viewer_id is not None, bool(search))
    parameters: dict[str, object] = {_VIEWER: viewer_id, _LIMIT: limit + 1, _OFFSET: offset}
    if search:
        parameters[_PATTERN] = _contains(search)
    rows = (await session.execute(query, parameters)).mappings().all()
    return rows[:limit], len(rows) > limit


async def view(session: AsyncSession, post_id: int, viewer_id: int | None) -> RowMapping | None:
    """The post as `viewer_id` sees it, or None when it does not exist for them."""
    query = _view_query(viewer_id is not None)
    result = await session.execute(query, {_POST: post_id, _VIEWER: viewer_id})
    row: RowMapping | None = result.mappings().one_or_none()
    return row


class Lock(StrEnum):
    """How a loaded post is held until the transaction ends (PostgreSQL row locks)."""

    KEY_SHARE = "key_share"  # it cannot be deleted meanwhile: enough to add a vote to it
    UPDATE = "update"  # nobody else may change or delete it: for edits and deletion


async def get_visible(
    session: AsyncSession, post_id: int, viewer_id: int, *, lock: Lock
) -> Post | None:
    """The post, if the signed-in `viewer_id` may see it, locked as asked.

    A request that lost a race with a deletion then finds nothing (404) instead of failing
    on a foreign key or a vanished row.
    """
    return await session.scalar(_locked_query(lock), {_POST: post_id, _VIEWER: viewer_id})


@functools.cache
def _locked_query(lock: Lock) -> Select[Post]:
    query = select(Post).where(Post.id == bindparam(_POST), _visible(signed_in=True))
    if lock is Lock.KEY_SHARE:
        query = query.with_for_update(read=True, key_share=True)
    else:
        query = query.with_for_update()
    return query.execution_options(populate_existing=True)


async def add(session: AsyncSession, post: Post) -> Post:
    session.add(post)
    await session.flush()
    return post


async def remove(session: AsyncSession, post: Post) -> None:
    # The database cascades the delete to the post's votes.
    await session.delete(post)
    await session.flush()
