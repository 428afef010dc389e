"""The post named in the path, loaded once, authorised and locked for the change to come:
`VisiblePost` (any signed-in caller who can see it, e.g. to vote) and `OwnedPost` (its
author, to edit or delete it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from app.db import MAX_ID, DbSession
from app.domains.auth.dependencies import CurrentUser
from app.domains.posts import repository
from app.domains.posts.errors import NotPostOwner, PostNotFound
from app.domains.posts.models import Post
from app.domains.posts.repository import Lock

PostId = Annotated[int, Path(ge=1, le=MAX_ID, description="The post's id.")]


# `user` comes first in each so an anonymous caller gets 401 before anything about the post.
async def _visible_post(user: CurrentUser, post_id: PostId, session: DbSession) -> Post:
    post = await repository.get_visible(session, post_id, user.id, lock=Lock.KEY_SHARE)
    if post is None:  # missing, or someone else's draft: the same answer for both
        raise PostNotFound
    return post


async def _owned_post(user: CurrentUser, post_id: PostId, session: DbSession) -> Post:
    post = await repository.get_visible(session, post_id, user.id, lock=Lock.UPDATE)
    if post is None:
        raise PostNotFound
    if post.owner_id != user.id:
        raise NotPostOwner
    return post


VisiblePost = Annotated[Post, Depends(_visible_post)]
OwnedPost = Annotated[Post, Depends(_owned_post)]
