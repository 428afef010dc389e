"""Posts and votes on them: /posts, /posts/{post_id} and /posts/{post_id}/vote."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.db import MAX_ID, DbSession
from app.domains.auth.dependencies import OPTIONAL_BEARER, CurrentUser, OptionalUser
from app.domains.auth.errors import InvalidToken, NotAuthenticated
from app.domains.posts import service
from app.domains.posts.dependencies import OwnedPost, PostId, VisiblePost
from app.domains.posts.errors import NotPostOwner, PostNotFound
from app.domains.posts.schemas import NO_NUL, PostCreate, PostPage, PostRead, PostUpdate
from app.errors import problem_responses
from app.rate_limit import RateLimit

router = APIRouter(prefix="/posts", tags=["posts"])
_signed_in = problem_responses(NotAuthenticated, InvalidToken)
_visible = _signed_in | problem_responses(PostNotFound)
_owned = _visible | problem_responses(NotPostOwner)


@router.get(
    "",
    response_model=PostPage,
    responses=problem_responses(InvalidToken),
    dependencies=[RateLimit("read")],
    openapi_extra=OPTIONAL_BEARER,
)
async def list_posts(
    session: DbSession,
    viewer: OptionalUser,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    search: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=NO_NUL,
            description="Case-insensitive text in title or content.",
        ),
    ] = None,
) -> PostPage:
    return await service.list_posts(session, viewer, search=search, limit=limit, offset=offset)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PostRead,
    responses=_signed_in,
    dependencies=[RateLimit("write")],
)
async def create_post(body: PostCreate, user: CurrentUser, session: DbSession) -> PostRead:
    return await service.create_post(session, user, body)


@router.get(
    "/{post_id}",
    response_model=PostRead,
    responses=problem_responses(InvalidToken, PostNotFound),
    dependencies=[RateLimit("read")],
    openapi_extra=OPTIONAL_BEARER,
)
async def read_post(post_id: PostId, session: DbSession, viewer: OptionalUser) -> PostRead:
    return await service.read_post(session, post_id, viewer)


@router.patch(
    "/{post_id}", response_model=PostRead, responses=_owned, dependencies=[RateLimit("write")]
)
async def update_post(
    body: PostUpdate, user: CurrentUser, post: OwnedPost, session: DbSession
) -> PostRead:
    return await service.update_post(session, post, body, user)


@router.delete(
    "/{post_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_owned,
    dependencies=[RateLimit("write")],
)
async def delete_post(post: OwnedPost, session: DbSession) -> None:
    await service.delete_post(session, post)


@router.put(
    "/{post_id}/vote",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_visible,
    dependencies=[RateLimit("write")],
)
async def cast_vote(user: CurrentUser, post: VisiblePost, session: DbSession) -> None:
    await service.vote(session, post, user)


@router.delete(
    "/{post_id}/vote",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_visible,
    dependencies=[RateLimit("write")],
)
async def withdraw_vote(user: CurrentUser, post: VisiblePost, session: DbSession) -> None:
    await service.unvote(session, post, user)
