"""Routes that exist only in tests, to drive the cross-cutting machinery from the outside."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, FastAPI, HTTPException, Path
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text

from app.db import MAX_ID, Database, DbSession
from app.domains.auth.dependencies import OptionalUser
from app.errors import ProblemError, problem_responses
from app.main import create_app
from app.settings import Settings

router = APIRouter(prefix="/api/v1/probe")


class Teapot(ProblemError):
    status = 418
    code = "teapot"
    title = "I'm a teapot"
    detail = "This endpoint brews tea."


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    secret: str | None = None


@router.get("/problem", responses=problem_responses(Teapot))
async def raise_problem() -> None:
    raise Teapot(headers={"X-Brew": "green"}, extensions={"temperature": 80})


@router.get("/http/{status}")
async def raise_http(status: int) -> None:
    raise HTTPException(status_code=status)


@router.get("/crash")
async def crash() -> None:
    raise RuntimeError("secret internals: password=hunter2")


@router.get("/whoami")
async def who_am_i(user: OptionalUser) -> dict[str, int | None]:
    return {"user_id": user.id if user else None}


@router.get("/items/{item_id}")
async def get_item(item_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> dict[str, int]:
    return {"id": item_id}


@router.post("/notes", status_code=201)
async def create_note(note: Note) -> Note:
    return note


@router.post("/rows/{value}", status_code=201)
async def insert_row(value: int, session: DbSession) -> dict[str, int]:
    await session.execute(text("INSERT INTO probe_rows (value) VALUES (:v)"), {"v": value})
    return {"value": value}


@router.post("/dangling-vote")
async def insert_dangling_vote(session: DbSession) -> None:
    # A vote for a post that does not exist: what a lost race with a deletion looks like.
    await session.execute(
        text("INSERT INTO votes (user_id, post_id, created_at) VALUES (0, 0, '2030-01-01')")
    )


@router.post("/rows/{value}/then-fail")
async def insert_row_then_fail(value: int, session: DbSession) -> None:
    await session.execute(text("INSERT INTO probe_rows (value) VALUES (:v)"), {"v": value})
    raise Teapot


def _with_probes(settings: Settings, database: Database) -> FastAPI:
    app = create_app(settings, database=database)
    app.include_router(router)
    return app


@pytest.fixture(scope="session")
def shared_probe_app(default_settings: Settings, _run_database: Database) -> FastAPI:
    return _with_probes(default_settings, _run_database)


@pytest.fixture
def app(
    settings: Settings,
    database: Database,
    default_settings: Settings,
    shared_probe_app: FastAPI,
) -> FastAPI:
    """The real application with the probe routes added (overrides the root `app`); shared
    by the run with the default settings, as the root `app` is."""
    if settings is default_settings:
        return shared_probe_app
    return _with_probes(settings, database)
