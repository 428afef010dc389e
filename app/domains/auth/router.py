"""Account and session endpoints: /users, /login and /auth/* (OAuth's included)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Header, status

from app.db import DbSession
from app.domains.auth import service
from app.domains.auth.dependencies import CurrentIdentity, CurrentUser, Hasher
from app.domains.auth.errors import (
    InvalidCredentials,
    InvalidCurrentPassword,
    InvalidRefreshToken,
    InvalidToken,
    NotAuthenticated,
    RefreshTokenReused,
    RefreshTokenSuperseded,
    SessionNotFound,
)
from app.domains.auth.oauth.router import router as oauth_router
from app.domains.auth.schemas import (
    LoginForm,
    RefreshRequest,
    SessionRead,
    TokenPair,
    UserCreate,
    UserUpdate,
)
from app.domains.users import service as users_service
from app.domains.users.errors import EmailTaken
from app.domains.users.schemas import UserRead
from app.errors import problem_responses
from app.rate_limit import RateLimit, caller_key, login_account_key
from app.settings import AppSettings

router = APIRouter()
_authenticated = problem_responses(NotAuthenticated, InvalidToken)
UserAgent = Annotated[str | None, Header(include_in_schema=False)]


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    responses=problem_responses(EmailTaken),
    tags=["users"],
    dependencies=[RateLimit("register")],
)
async def create_user(body: UserCreate, session: DbSession, hasher: Hasher) -> UserRead:
    user = await service.register(session, hasher, email=body.email, password=body.password)
    return UserRead.model_validate(user)


@router.get(
    "/users/me",
    response_model=UserRead,
    responses=_authenticated,
    tags=["users"],
    dependencies=[RateLimit("read")],
)
async def read_current_user(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.patch(
    "/users/me",
    response_model=UserRead,
    responses=_authenticated | problem_responses(InvalidCurrentPassword, EmailTaken),
    tags=["users"],
    # It checks a password, so the login class; per account holder, who alone can call it.
    dependencies=[RateLimit("login", key=caller_key)],
)
async def update_current_user(
    body: UserUpdate, user: CurrentUser, session: DbSession, hasher: Hasher
) -> UserRead:
    return UserRead.model_validate(await service.update_account(session, hasher, user, body))


@router.delete(
    "/users/me",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_authenticated,
    tags=["users"],
    dependencies=[RateLimit("write")],
)
async def delete_current_user(user: CurrentUser, session: DbSession) -> None:
    await users_service.delete_user(session, user)


@router.post(
    "/login",
    response_model=TokenPair,
    responses=problem_responses(InvalidCredentials),
    tags=["auth"],
    dependencies=[RateLimit("login"), RateLimit("login_account", key=login_account_key)],
)
async def login(
    form: Annotated[LoginForm, Form()],
    session: DbSession,
    hasher: Hasher,
    settings: AppSettings,
    user_agent: UserAgent = None,
) -> TokenPair:
    return await service.login(
        session,
        hasher,
        settings,
        email=form.username,
        password=form.password,
        user_agent=user_agent,
    )


@router.post(
    "/auth/refresh",
    response_model=TokenPair,
    responses=problem_responses(InvalidRefreshToken, RefreshTokenSuperseded, RefreshTokenReused),
    tags=["auth"],
    dependencies=[RateLimit("refresh")],
)
async def refresh_tokens(
    body: RefreshRequest, session: DbSession, settings: AppSettings, user_agent: UserAgent = None
) -> TokenPair:
    return await service.refresh(
        session, settings, refresh_token=body.refresh_token, user_agent=user_agent
    )


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["auth"],
    dependencies=[RateLimit("refresh")],
)
async def logout(body: RefreshRequest, session: DbSession) -> None:
    await service.logout(session, refresh_token=body.refresh_token)


@router.post(
    "/auth/logout-all",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_authenticated,
    tags=["auth"],
    dependencies=[RateLimit("write")],
)
async def logout_all(user: CurrentUser, session: DbSession) -> None:
    await service.logout_all(session, user)


@router.get(
    "/auth/sessions",
    response_model=list[SessionRead],
    responses=_authenticated,
    tags=["auth"],
    dependencies=[RateLimit("read")],
)
async def list_sessions(identity: CurrentIdentity, session: DbSession) -> list[SessionRead]:
    return await service.list_sessions(session, identity)


@router.delete(
    "/auth/sessions/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_authenticated | problem_responses(SessionNotFound),
    tags=["auth"],
    dependencies=[RateLimit("write")],
)
async def end_session(session_id: uuid.UUID, user: CurrentUser, session: DbSession) -> None:
    await service.end_session(session, user, session_id)


router.include_router(oauth_router)
