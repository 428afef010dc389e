"""The post named in the path, loaded once and authorised: `VisiblePost`, `OwnedPost`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from app.db import MAX_ID, DbSession
from app.domains.auth.dependencies import CurrentUser, OptionalUser
from app.domains.posts import repository
from app.domains.posts.errors import NotPostOwner, PostNotFound
from app.domains.posts.models import Post

PostId = Annotated[int, Path(ge=1, le=MAX_ID, description="The post's id.")]


async def _visible_post(post_id: PostId, session: DbSession, viewer: OptionalUser) -> Post:
    post = await repository.get_visible(session, post_id, viewer.id if viewer else None)
    if post is None:  # missing, or someone else's draft: the same answer for both
        raise PostNotFound
    return post


# `user` comes first so an anonymous caller gets 401 before anything about the post.
async def _owned_post(user: CurrentUser, post: Annotated[Post, Depends(_visible_post)]) -> Post:
    if post.owner_id != user.id:
        raise NotPostOwner
    return post


VisiblePost = Annotated[Post, Depends(_visible_post)]
OwnedPost = Annotated[Post, Depends(_owned_post)]
