"""Operator commands: `python -m app.cli outbox list --status failed`, `outbox replay ...`,
and `openapi`, the API's OpenAPI document, from which the frontend's client is generated."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from app import outbox
from app.db import Database
from app.outbox import OutboxStatus
from app.settings import Settings, get_settings


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m app.cli", description=__doc__)
    commands = root.add_subparsers(dest="group", required=True)
    events = commands.add_parser("outbox", help="inspect and replay outbox events")
    actions = events.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="list events with a status")
    listing.add_argument("--status", choices=[s.value for s in OutboxStatus], default="failed")
    listing.add_argument("--limit", type=int, default=100)
    replaying = actions.add_parser("replay", help="send failed events back to pending")
    which = replaying.add_mutually_exclusive_group(required=True)
    which.add_argument("ids", nargs="*", type=int, default=[], help="event ids")
    which.add_argument("--all-failed", action="store_true", help="every failed event")
    commands.add_parser("openapi", help="print the OpenAPI document (frontend/openapi.json)")
    return root


async def run(arguments: argparse.Namespace, settings: Settings) -> list[str]:
    """Carry out one command; returns the lines to print."""
    database = Database.from_settings(settings.database)
    try:
        async with database.sessionmaker() as session:
            if arguments.action == "list":
                events = await outbox.events_with_status(
                    session, OutboxStatus(arguments.status), arguments.limit
                )
                return [
                    f"{e.id}\t{e.topic}\tattempts={e.attempts}\t{e.last_error or ''}"
                    for e in events
                ]
            replayed = await outbox.replay(session, None if arguments.all_failed else arguments.ids)
            await session.commit()
            return [f"replayed {len(replayed)}: {' '.join(map(str, replayed))}".rstrip(": ")]
    finally:
        await database.dispose()


def openapi_document(settings: Settings) -> str:
    """The OpenAPI document as `frontend/openapi.json` holds it."""
    # Imported here: building the application imports every domain and library, which
    # the outbox commands do not need.
    from app.main import create_app

    return json.dumps(create_app(settings).openapi(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    if arguments.group == "openapi":
        # The document of the service as shipped: a developer's .env must not change it.
        sys.stdout.write(openapi_document(Settings(_env_file=None, environment="test")))
        return 0
    for line in asyncio.run(run(arguments, get_settings())):
        sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
