"""A database of the benchmark's own, with realistic data: users, posts and votes.

Ids are predictable because the database is new: users 1..USERS (`user{n}@bench.example`,
all with `PASSWORD`), posts 1..POSTS, newest last, every `DRAFT_EVERY`th one a draft.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from alembic import command
from argon2 import PasswordHasher
from sqlalchemy import create_engine, insert
from sqlalchemy.engine import make_url

from app.db import utcnow
from app.domains.posts.models import Post
from app.domains.users.models import User
from app.domains.votes.models import Vote
from app.settings import AuthSettings
from tests.support import alembic_config, create_postgres_database, drop_postgres_database

USERS = 1_000
POSTS = 10_000
VOTES = 50_000
DRAFT_EVERY = 20
PASSWORD = "bench-password-1234"  # noqa: S105 - the seeded accounts' shared password
# Words of titles and contents; the search scenario looks for them.
WORDS = (
    *("async", "database", "latency", "index", "queue", "token", "session", "vote", "post"),
    *("cache", "window", "worker", "deploy", "metric", "trace", "schema", "migration"),
    *("replica", "backup", "tenant", "request", "response"),
)


def email(user_id: int) -> str:
    return f"user{user_id}@bench.example"


def is_published(post_id: int) -> bool:
    return post_id % DRAFT_EVERY != 0


@contextmanager
def own_database(server_url: str) -> Iterator[str]:
    """A new database on the server at `server_url`, migrated to head, dropped afterwards."""
    url = create_postgres_database(server_url, prefix="bench")
    try:
        command.upgrade(alembic_config(url), "head")
        yield url
    finally:
        drop_postgres_database(url, server_url)


def seed(url: str, *, rng: random.Random) -> None:
    """USERS users, POSTS posts over the last 30 days and VOTES votes on published posts."""
    # One hash for every account, with the production cost: logins verify at full price.
    auth = AuthSettings(_env_file=None)
    password_hash = PasswordHasher(
        time_cost=auth.argon2_time_cost,
        memory_cost=auth.argon2_memory_kib,
        parallelism=auth.argon2_parallelism,
    ).hash(PASSWORD)
    now = utcnow()
    users = [
        {"email": email(n), "password_hash": password_hash, "email_verified": True}
        for n in range(1, USERS + 1)
    ]
    posts = []
    for n in range(1, POSTS + 1):
        created = now - timedelta(seconds=(POSTS - n) * 259)  # 30 days, newest last
        posts.append(
            {
                "owner_id": rng.randint(1, USERS),
                "title": " ".join(rng.choices(WORDS, k=rng.randint(3, 8))).capitalize(),
                "content": " ".join(rng.choices(WORDS, k=rng.randint(30, 120))),
                "published": is_published(n),
                "created_at": created,
                "updated_at": created,
            }
        )
    published = [n for n in range(1, POSTS + 1) if is_published(n)]
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < VOTES:
        pairs.add((rng.randint(1, USERS), rng.choice(published)))
    votes = [{"user_id": user, "post_id": post} for user, post in sorted(pairs)]
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.begin() as connection:
            connection.execute(insert(User), users)
            connection.execute(insert(Post), posts)
            connection.execute(insert(Vote), votes)
        # As autovacuum would leave them: statistics for the planner, and a visibility map
        # that lets the vote counts be read from the index alone.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    finally:
        engine.dispose()
