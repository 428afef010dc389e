"""Fixtures: one migrated database per run, one rolled-back transaction per test.

With `TEST_DATABASE_URL` (PostgreSQL) each run creates its own database and drops it at the
end; without it, the run uses a temporary SQLite file. Either way Alembic builds the schema.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import hypothesis
import pytest
from alembic import command
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from limits.aio import storage as limits_storage
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.db import Database, create_engine
from app.domains.users.models import User
from app.main import create_app
from app.settings import DatabaseSettings, Settings
from tests.identity_provider import IdentityProvider, serving
from tests.oauth_browser import register_clients
from tests.support import (
    alembic_config,
    create_postgres_database,
    delete_accounts,
    drop_postgres_database,
    make_settings,
)

# Hypothesis fails an example that runs longer than its deadline (200 ms): a timing
# assertion, which a busy CI machine trips now and then. Examples are judged on results only.
hypothesis.settings.register_profile("suite", deadline=None)
hypothesis.settings.load_profile("suite")

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
CATEGORIES = ("unit", "integration", "e2e", "security", "contract", "property")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the category of the folder it lives in."""
    for item in items:
        category = Path(item.path).relative_to(Path(__file__).parent).parts[0]
        if category in CATEGORIES:
            item.add_marker(getattr(pytest.mark, category))


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The run's own database, migrated once to head."""
    if TEST_DATABASE_URL:
        url = create_postgres_database(TEST_DATABASE_URL)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    try:
        command.upgrade(alembic_config(url), "head")
        yield url
    finally:
        if TEST_DATABASE_URL:
            drop_postgres_database(url, TEST_DATABASE_URL)


@pytest.fixture
async def private_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a database of this test's own, migrated to head and dropped afterwards:
    for code that acts on every row of a table, such as the outbox dispatcher."""
    if TEST_DATABASE_URL:
        url = create_postgres_database(TEST_DATABASE_URL)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'private.db'}"
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
        engine = create_engine(DatabaseSettings(_env_file=None, url=url))
        yield engine
        await engine.dispose()
    finally:
        if TEST_DATABASE_URL:
            drop_postgres_database(url, TEST_DATABASE_URL)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(DatabaseSettings(_env_file=None, url=database_url))
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def _run_database(engine: AsyncEngine) -> Database:
    """The one `Database` of the run's shared app; `database` rebinds it for each test."""
    return Database(engine)


@pytest.fixture
async def database(engine: AsyncEngine, _run_database: Database) -> AsyncIterator[Database]:
    """A `Database` whose sessions join one outer transaction that is rolled back afterwards.

    Request code commits as usual; each commit releases a savepoint inside the outer
    transaction, so the real commit path runs and nothing outlives the test.
    """
    async with engine.connect() as connection:
        transaction = await connection.begin()
        _run_database.sessionmaker = async_sessionmaker(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        yield _run_database
        await transaction.rollback()


@pytest.fixture
def still_rate_limit_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stops the clock of the in-memory rate-limit store at the test's start.

    Its sliding windows begin on the minute of the wall clock, so requests that straddled one
    would rightly be admitted again as the previous window's weight shrinks. (A Redis window
    begins at its first hit.)
    """
    now = time.time()
    monkeypatch.setattr(limits_storage.memory, "time", SimpleNamespace(time=lambda: now))


@pytest.fixture
def black_hole_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word: a hung dependency."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture(scope="session")
def provider_server() -> Iterator[IdentityProvider]:
    """The loopback OAuth / OpenID Connect provider, one per run."""
    with serving(IdentityProvider()) as provider:
        yield provider


@pytest.fixture
def identity_provider(provider_server: IdentityProvider) -> IdentityProvider:
    """The provider as new, with the in-process app registered under every provider name."""
    provider_server.reset()
    register_clients(provider_server, "http://testserver")
    return provider_server


@pytest.fixture(scope="session")
def default_settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def settings(default_settings: Settings) -> Settings:
    """The test's settings; a folder or test that needs others overrides this fixture."""
    return default_settings


@pytest.fixture(scope="session")
def _shared_app(default_settings: Settings, _run_database: Database) -> FastAPI:
    return create_app(default_settings, database=_run_database)


@pytest.fixture
def app(
    settings: Settings, database: Database, default_settings: Settings, _shared_app: FastAPI
) -> FastAPI:
    """The application for `settings`. With the default settings, one app serves the whole
    run (its lifespan still starts and stops with each test's client): FastAPI builds each
    route's dependencies per app, which would otherwise be most of a test's time."""
    if settings is default_settings:
        return _shared_app
    return create_app(settings, database=database)


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client for `app` in this process, with its lifespan running."""
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(app) as client:
        yield client


@pytest.fixture
async def committed_client(
    settings: Settings, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests really commit, for tests of concurrency between transactions.

    Its data outlives the request, so the fixture deletes every account the test created
    (their sessions and events go with them).
    """
    database = Database(engine)
    async with serve(create_app(settings, database=database)) as client:
        created: list[int] = []
        client.event_hooks["response"].append(_track_created_users(created))
        yield client
    await delete_accounts(engine, User.id.in_(created))


def _track_created_users(created: list[int]) -> Callable[[httpx.Response], Awaitable[None]]:
    async def track(response: httpx.Response) -> None:
        if response.request.url.path == "/api/v1/users" and response.status_code == 201:
            await response.aread()
            created.append(response.json()["id"])

    return track
