"""The operator commands: list failed events and replay them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy.ext.asyncio import AsyncEngine

from app import cli, outbox
from app.db import Database
from app.outbox import OutboxEvent, OutboxStatus
from app.settings import get_settings
from tests.support import ROOT, alembic_config, make_settings


async def _failed(engine: AsyncEngine, count: int) -> list[int]:
    async with Database(engine).sessionmaker() as session:
        events = [outbox.record(session, "test.cli", {"n": i}) for i in range(count)]
        for event in events:
            event.status, event.attempts, event.last_error = OutboxStatus.FAILED, 8, "boom"
        await session.commit()
        return [event.id for event in events]


async def _run(engine: AsyncEngine, *argv: str) -> list[str]:
    settings = make_settings(engine.url.render_as_string(hide_password=False))
    return await cli.run(cli.parser().parse_args(argv), settings)


async def _status(engine: AsyncEngine, event_id: int) -> OutboxStatus:
    async with Database(engine).sessionmaker() as session:
        return (await session.get_one(OutboxEvent, event_id)).status


async def test_list_failed_events(private_engine: AsyncEngine) -> None:
    first, second = await _failed(private_engine, 2)

    lines = await _run(private_engine, "outbox", "list", "--status", "failed")

    assert lines == [
        f"{first}\ttest.cli\tattempts=8\tboom",
        f"{second}\ttest.cli\tattempts=8\tboom",
    ]
    assert await _run(private_engine, "outbox", "list", "--status", "completed") == []


async def test_replay_one_event_then_all(private_engine: AsyncEngine) -> None:
    first, second, third = await _failed(private_engine, 3)

    assert await _run(private_engine, "outbox", "replay", str(first)) == [f"replayed 1: {first}"]
    assert await _status(private_engine, first) is OutboxStatus.PENDING
    assert await _run(private_engine, "outbox", "replay", "--all-failed") == [
        f"replayed 2: {second} {third}"
    ]
    assert await _run(private_engine, "outbox", "replay", "--all-failed") == ["replayed 0"]


def test_python_dash_m_app_cli(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    command.upgrade(alembic_config(url), "head")
    env = os.environ | {"ENVIRONMENT": "test", "DATABASE_URL": url}

    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "outbox", "list", "--status", "failed"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=False,
    )

    assert (done.returncode, done.stdout) == (0, b"")


def test_the_command_line_entry_point(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    command.upgrade(alembic_config(url), "head")
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        assert cli.main(["outbox", "replay", "--all-failed"]) == 0
        with pytest.raises(SystemExit) as usage:
            cli.main(["outbox"])
    finally:
        get_settings.cache_clear()

    assert usage.value.code == 2
    output = capsys.readouterr()
    assert output.out == "replayed 0\n"
    assert "replay" in output.err
