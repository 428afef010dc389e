"""The outbox lifecycle: record, claim, process in batches, retry, dead letter, reap, hand
back and replay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app import outbox
from app.db import Database, utcnow
from app.domains.users import service as users_service
from app.domains.users.models import User
from app.mail import LogMailer
from app.outbox import HandlerContext, OutboxEffect, OutboxEvent, OutboxStatus
from tests.factories import unique_email
from tests.support import counted_since, counters, make_settings, unused_port

CALLS: list[int] = []


@outbox.handler("test.ok")
async def _ok(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    CALLS.append(event.id)


@outbox.handler("test.broken")
async def _broken(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    raise RuntimeError("this handler always fails")


@outbox.handler("test.bad_sql")
async def _bad_sql(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    await session.execute(text("SELECT * FROM no_such_table"))


RELAY_STOP = asyncio.Event()


@outbox.handler("test.stops_relay")
async def _stops_relay(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    RELAY_STOP.set()  # as a shutdown arriving while the relay works through a batch


@outbox.handler("test.hangs")
async def _hangs(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    HANGING[-1].set()
    await asyncio.Event().wait()


HANGING: list[asyncio.Event] = []  # set by a hanging handler once it runs; one a test


@outbox.handler("test.effect")
async def _effect(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    assert await outbox.first_time(session, event, "effect")


@outbox.handler("test.effect_then_fails")
async def _effect_then_fails(
    session: AsyncSession, event: OutboxEvent, context: HandlerContext
) -> None:
    assert await outbox.first_time(session, event, "effect")
    raise RuntimeError("failed after its effect")


JOBS: list[asyncio.Task[None]] = []


@outbox.handler("test.cancels_its_job")
async def _cancels_its_job(
    session: AsyncSession, event: OutboxEvent, context: HandlerContext
) -> None:
    # The cancellation lands once this handler has returned, while the job records it.
    asyncio.get_running_loop().call_soon(JOBS[-1].cancel)


OBSERVED: list[Database] = []
SEEN: list[dict[int, OutboxStatus]] = []


@outbox.handler("test.observes")
async def _observes(session: AsyncSession, event: OutboxEvent, context: HandlerContext) -> None:
    """What a reader outside the job sees of this topic's events while this handler runs."""
    async with OBSERVED[-1].reader() as outside:
        rows = await outside.execute(
            select(OutboxEvent.id, OutboxEvent.status).where(OutboxEvent.topic == event.topic)
        )
        SEEN.append(dict(rows.all()))


@pytest.fixture(autouse=True)
def _calls() -> Iterator[None]:
    CALLS.clear()
    HANGING.append(asyncio.Event())
    yield
    CALLS.clear()


def _context(**outbox_settings: Any) -> HandlerContext:
    settings = make_settings("sqlite://", outbox=outbox_settings)
    return HandlerContext(settings=settings, mailer=LogMailer())


async def _record(database: Database, topic: str, count: int = 1, **fields: Any) -> list[int]:
    async with database.sessionmaker() as session:
        events = [outbox.record(session, topic, {"n": i}) for i in range(count)]
        for event in events:
            for name, value in fields.items():
                setattr(event, name, value)
        await session.commit()
        return [event.id for event in events]


async def _queued(database: Database, topic: str, count: int = 1, **fields: Any) -> list[int]:
    """Events as a dispatcher leaves them: claimed, waiting for their job."""
    return await _record(database, topic, count, status=OutboxStatus.QUEUED, **fields)


async def _effects(database: Database, event_ids: list[int]) -> set[int]:
    async with database.sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxEffect.event_id).where(OutboxEffect.event_id.in_(event_ids))
        )
        return set(rows)


async def _event(database: Database, event_id: int) -> OutboxEvent:
    async with database.sessionmaker() as session:
        return await session.get_one(OutboxEvent, event_id, populate_existing=True)


async def _drain(database: Database, context: HandlerContext) -> list[int]:
    """Claim everything due and process it at once: the embedded relay's pass."""
    handed: list[int] = []

    async def handle(event_ids: list[int]) -> None:
        handed.extend(event_ids)
        await outbox.process(database, event_ids, context)

    await outbox.dispatch(database, context.settings.outbox, handle)
    return handed


async def test_a_write_and_its_event_commit_or_roll_back_together(database: Database) -> None:
    email = unique_email()
    async with database.sessionmaker() as session:
        user = await users_service.create_user(session, email=email, password_hash=None)
        user_id = user.id
        await session.rollback()

    async with database.sessionmaker() as session:
        assert await session.get(User, user_id) is None
        events = (await session.scalars(select(OutboxEvent.payload))).all()
    assert {"user_id": user_id} not in events


async def test_claims_due_events_oldest_first_in_batches(database: Database) -> None:
    context = _context(batch_size=2, max_batches_per_pass=1)
    later = await _record(database, "test.ok", available_at=utcnow() + timedelta(hours=1))
    due = await _record(database, "test.ok", 3)

    first = await _drain(database, context)
    second = await _drain(database, context)

    assert [i for i in first + second if i in due] == due
    assert len(first) == 2
    assert (await _event(database, later[0])).status is OutboxStatus.PENDING
    assert CALLS[-3:] == due


async def test_a_pass_drains_a_backlog_batch_by_batch(database: Database) -> None:
    due = await _record(database, "test.ok", 5)

    capped = await _drain(database, _context(batch_size=2, max_batches_per_pass=2))
    rest = await _drain(database, _context(batch_size=2))

    assert (capped, rest) == (due[:4], due[4:])


async def test_a_claim_marks_events_queued_until_the_visibility_timeout(
    database: Database,
) -> None:
    (event_id,) = await _record(database, "test.ok")
    before = utcnow()
    handed: list[int] = []

    async def keep(event_ids: list[int]) -> None:
        handed.extend(event_ids)

    settings = _context(visibility_timeout_seconds=30, job_timeout_seconds=20).settings.outbox
    await outbox.dispatch(database, settings, keep)

    event = await _event(database, event_id)
    assert event_id in handed
    assert event.status is OutboxStatus.QUEUED
    assert event.locked_until is not None
    assert timedelta(seconds=29) <= event.locked_until - before <= timedelta(seconds=31)


async def test_a_completed_event_is_not_run_again(database: Database) -> None:
    (event_id,) = await _record(database, "test.ok")
    context = _context()

    await _drain(database, context)
    await outbox.process(database, [event_id], context)  # a duplicate delivery

    event = await _event(database, event_id)
    assert event.status is OutboxStatus.COMPLETED
    assert event.processed_at is not None
    assert CALLS.count(event_id) == 1


async def test_failures_back_off_then_end_in_the_dead_letter(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    (event_id,) = await _record(database, "test.broken")
    context = _context(max_attempts=3, retry_base_seconds=10, retry_cap_seconds=100)
    monkeypatch.setattr("app.outbox.random.uniform", lambda low, high: 0.75)  # fixed jitter

    before = utcnow()
    await _drain(database, context)
    first = await _event(database, event_id)
    assert (first.status, first.attempts) == (OutboxStatus.PENDING, 1)
    # After attempt 1: min(100, 10 * 2**1) * 0.75 = 15 s.
    assert timedelta(seconds=15) <= first.available_at - before <= timedelta(seconds=16)
    assert first.last_error == "RuntimeError: this handler always fails"
    await _make_due(database, event_id)
    await _drain(database, context)
    # After attempt 2: min(100, 10 * 2**2) * 0.75 = 30 s.
    second = await _event(database, event_id)
    assert timedelta(seconds=29) <= second.available_at - utcnow() <= timedelta(seconds=30)

    await _make_due(database, event_id)
    await _drain(database, context)

    final = await _event(database, event_id)
    assert (final.status, final.attempts) == (OutboxStatus.FAILED, 3)


async def _make_due(database: Database, event_id: int) -> None:
    async with database.sessionmaker() as session:
        (await session.get_one(OutboxEvent, event_id)).available_at = utcnow()
        await session.commit()


async def test_an_unknown_topic_fails_at_once(database: Database) -> None:
    (event_id,) = await _record(database, f"test.nobody-handles-{uuid.uuid4().hex}")

    await _drain(database, _context(max_attempts=5))

    event = await _event(database, event_id)
    assert (event.status, event.attempts) == (OutboxStatus.FAILED, 1)
    assert event.last_error is not None
    assert "no handler is registered" in event.last_error


async def test_a_handler_database_error_is_retried(database: Database) -> None:
    (event_id,) = await _record(database, "test.bad_sql")

    await _drain(database, _context())

    event = await _event(database, event_id)
    assert (event.status, event.attempts) == (OutboxStatus.PENDING, 1)
    assert event.last_error is not None
    assert "ProgrammingError" in event.last_error or "OperationalError" in event.last_error


async def test_a_poison_event_fails_while_a_hundred_others_complete(database: Database) -> None:
    ok = await _record(database, "test.ok", 100)
    (poison,) = await _record(database, "test.broken")
    context = _context(max_attempts=3, retry_base_seconds=0.001, retry_cap_seconds=0.002)

    deadline = utcnow() + timedelta(seconds=20)
    while (await _event(database, poison)).status is not OutboxStatus.FAILED:
        assert utcnow() < deadline, "the poison event never reached the dead letter"
        await _drain(database, context)

    assert (await _event(database, poison)).attempts == 3
    assert sorted(set(CALLS) & set(ok)) == ok


async def test_first_attempts_are_claimed_as_one_batch_and_retries_alone(
    database: Database,
) -> None:
    first = await _record(database, "test.ok", 3)
    retries = await _record(database, "test.ok", 2, attempts=1)
    batches: list[list[int]] = []

    async def keep(event_ids: list[int]) -> None:
        batches.append(event_ids)

    assert await outbox.dispatch(database, _context().settings.outbox, keep) == 5

    assert batches == [first, *([i] for i in retries)]


async def test_a_batch_counts_its_attempts_and_completes_together(database: Database) -> None:
    ids = await _queued(database, "test.effect", 3)

    await outbox.process(database, ids, _context())

    for event_id in ids:
        event = await _event(database, event_id)
        assert (event.status, event.attempts, event.locked_until) == (
            OutboxStatus.COMPLETED,
            1,
            None,
        )
        assert event.processed_at is not None
    assert await _effects(database, ids) == set(ids)


async def test_a_failing_handler_leaves_nothing_behind_and_costs_its_neighbours_nothing(
    database: Database,
) -> None:
    before, after = await _queued(database, "test.effect", 2)
    (failing,) = await _queued(database, "test.effect_then_fails")
    (bad_sql,) = await _queued(database, "test.bad_sql")  # aborts the statement it runs in
    batch = sorted([before, failing, bad_sql, after])

    await outbox.process(database, batch, _context())

    for event_id in (before, after):
        assert (await _event(database, event_id)).status is OutboxStatus.COMPLETED
    for event_id in (failing, bad_sql):
        event = await _event(database, event_id)
        assert (event.status, event.attempts) == (OutboxStatus.PENDING, 1)
    assert (await _event(database, failing)).last_error == "RuntimeError: failed after its effect"
    # The failed handler's effect was rolled back with its savepoint; the others' committed.
    assert await _effects(database, batch) == {before, after}


async def test_a_hanging_handler_costs_its_neighbours_only_time(database: Database) -> None:
    """Cut off after half the job timeout; no handler starts after that first half, so the
    events behind it go back, due at once and with their attempts as they were."""
    (before,) = await _queued(database, "test.ok")
    (hanging,) = await _queued(database, "test.hangs")
    (behind,) = await _queued(database, "test.ok")
    context = _context(job_timeout_seconds=2, visibility_timeout_seconds=5)

    await outbox.process(database, [before, hanging, behind], context)

    assert (await _event(database, before)).status is OutboxStatus.COMPLETED
    cut_off = await _event(database, hanging)
    assert (cut_off.status, cut_off.attempts) == (OutboxStatus.PENDING, 1)
    assert cut_off.last_error == "timed out after 1 s"
    handed_back = await _event(database, behind)
    assert (handed_back.status, handed_back.attempts) == (OutboxStatus.PENDING, 0)
    assert (handed_back.last_error, handed_back.locked_until) == (None, None)
    assert behind not in CALLS
    await _drain(database, context)
    assert (await _event(database, behind)).status is OutboxStatus.COMPLETED


async def test_a_cancelled_job_keeps_what_finished_and_hands_back_the_rest(
    database: Database,
) -> None:
    """Shutdown or the worker's job timeout: the handler running is interrupted, the
    outcomes before it commit, and the events behind it go back at once."""
    (finished,) = await _queued(database, "test.effect")
    (running,) = await _queued(database, "test.hangs")
    (behind,) = await _queued(database, "test.ok")
    job = asyncio.create_task(outbox.process(database, [finished, running, behind], _context()))
    await asyncio.wait_for(HANGING[-1].wait(), timeout=10)

    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job

    assert (await _event(database, finished)).status is OutboxStatus.COMPLETED
    assert await _effects(database, [finished]) == {finished}
    interrupted = await _event(database, running)
    assert (interrupted.status, interrupted.attempts) == (OutboxStatus.PENDING, 1)
    assert interrupted.last_error == "interrupted before it finished"
    handed_back = await _event(database, behind)
    assert (handed_back.status, handed_back.attempts) == (OutboxStatus.PENDING, 0)
    assert behind not in CALLS


async def test_a_job_cancelled_between_handlers_hands_back_the_rest(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each handler's outcome commits on its own: the cancellation lands during that commit.
    monkeypatch.setattr("app.outbox.COMMIT_INTERVAL_SECONDS", 0)
    (cancels,) = await _queued(database, "test.cancels_its_job")
    behind = await _queued(database, "test.ok", 2)
    JOBS.append(asyncio.create_task(outbox.process(database, [cancels, *behind], _context())))

    with pytest.raises(asyncio.CancelledError):
        await JOBS[-1]

    assert (await _event(database, cancels)).status is OutboxStatus.COMPLETED
    for event_id in behind:
        event = await _event(database, event_id)
        assert (event.status, event.attempts, event.last_error) == (OutboxStatus.PENDING, 0, None)


async def test_an_interrupted_last_attempt_is_dead_lettered(database: Database) -> None:
    (event_id,) = await _queued(database, "test.hangs", attempts=2)
    job = asyncio.create_task(outbox.process(database, [event_id], _context(max_attempts=3)))
    await asyncio.wait_for(HANGING[-1].wait(), timeout=10)

    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job

    event = await _event(database, event_id)
    assert (event.status, event.attempts) == (OutboxStatus.FAILED, 3)


async def test_fast_handlers_share_a_commit(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.outbox.COMMIT_INTERVAL_SECONDS", 60)  # however slow the machine
    first, second = await _queued(database, "test.observes", 2)
    OBSERVED.append(database)
    SEEN.clear()

    await outbox.process(database, [first, second], _context())

    # While the second handler ran, the first one's outcome was not committed yet.
    assert [seen[first] for seen in SEEN] == [OutboxStatus.QUEUED, OutboxStatus.QUEUED]


async def test_outcomes_commit_once_the_commit_interval_is_up(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.outbox.COMMIT_INTERVAL_SECONDS", 0)  # each handler is slow
    first, second = await _queued(database, "test.observes", 2)
    OBSERVED.append(database)
    SEEN.clear()

    await outbox.process(database, [first, second], _context())

    assert [seen[first] for seen in SEEN] == [OutboxStatus.QUEUED, OutboxStatus.COMPLETED]
    assert (await _event(database, second)).status is OutboxStatus.COMPLETED


async def test_a_batch_handed_to_two_jobs_at_once_runs_once(database: Database) -> None:
    """A batch dispatched again (reaped, claimed anew) while its first job still runs."""
    ids = await _queued(database, "test.ok", 20)

    await asyncio.gather(
        outbox.process(database, ids, _context()), outbox.process(database, ids, _context())
    )

    assert sorted(i for i in CALLS if i in ids) == ids
    for event_id in ids:
        assert (await _event(database, event_id)).status is OutboxStatus.COMPLETED


async def test_the_reaper_requeues_events_whose_job_vanished(database: Database) -> None:
    (event_id,) = await _record(
        database,
        "test.ok",
        status=OutboxStatus.QUEUED,
        locked_until=utcnow() - timedelta(seconds=1),
    )
    before = counters("outbox_events_processed")

    handed = await _drain(database, _context())

    assert event_id in handed
    assert (await _event(database, event_id)).status is OutboxStatus.COMPLETED
    # The lost attempt counts as a retry, then the event completes.
    assert counted_since(before, "outbox_events_processed") == {
        "test.ok:retried": 1,
        "test.ok:completed": 1,
    }


async def test_replay_sends_failed_events_back_and_they_complete(database: Database) -> None:
    (event_id,) = await _record(
        database, "test.ok", status=OutboxStatus.FAILED, attempts=8, last_error="earlier"
    )

    async with database.sessionmaker() as session:
        assert await outbox.replay(session, [event_id]) == [event_id]
        await session.commit()
    replayed = await _event(database, event_id)
    await _drain(database, _context())

    assert (replayed.status, replayed.attempts) == (OutboxStatus.PENDING, 0)
    assert (await _event(database, event_id)).status is OutboxStatus.COMPLETED


async def test_release_hands_back_queued_events_at_once(database: Database) -> None:
    (event_id,) = await _record(
        database,
        "test.ok",
        status=OutboxStatus.QUEUED,
        attempts=2,
        locked_until=utcnow() + timedelta(hours=1),
    )

    await outbox.release(database, [event_id])

    event = await _event(database, event_id)
    assert (event.status, event.attempts, event.locked_until) == (OutboxStatus.PENDING, 2, None)
    assert event.available_at <= utcnow()
    assert event.last_error is None


async def test_release_leaves_an_event_that_is_not_queued_alone(database: Database) -> None:
    (event_id,) = await _record(database, "test.ok", status=OutboxStatus.FAILED)

    await outbox.release(database, [event_id])

    assert (await _event(database, event_id)).status is OutboxStatus.FAILED


async def test_the_relay_cuts_off_a_hanging_handler(database: Database) -> None:
    (event_id,) = await _record(database, "test.hangs")
    stop = asyncio.Event()
    context = _context(job_timeout_seconds=1, visibility_timeout_seconds=5)
    relay = asyncio.create_task(outbox.relay(database, context, stop))

    deadline = utcnow() + timedelta(seconds=10)
    while (await _event(database, event_id)).last_error is None:
        assert utcnow() < deadline, "the hanging handler was never cut off"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(relay, timeout=10)

    event = await _event(database, event_id)
    assert (event.status, event.attempts) == (OutboxStatus.PENDING, 1)
    assert event.last_error == "timed out after 0.5 s"  # half the job timeout


async def test_a_relay_stopped_mid_pass_hands_back_the_rest(database: Database) -> None:
    first, *batch = await _record(database, "test.stops_relay") + await _record(
        database, "test.ok", 3
    )
    retries = await _record(database, "test.ok", 2, attempts=1)  # a batch of its own each
    RELAY_STOP.clear()

    await asyncio.wait_for(outbox.relay(database, _context(), RELAY_STOP), timeout=10)

    assert (await _event(database, first)).status is OutboxStatus.COMPLETED
    # The rest of the batch in hand, and the batches of the pass not started yet, are due
    # again at once with their attempts as they were.
    for event_id, attempts in [(i, 0) for i in batch] + [(i, 1) for i in retries]:
        event = await _event(database, event_id)
        assert (event.status, event.attempts, event.last_error) == (
            OutboxStatus.PENDING,
            attempts,
            None,
        )
    assert not set(batch + retries) & set(CALLS)


async def test_the_reaper_dead_letters_events_whose_attempts_ran_out(database: Database) -> None:
    (event_id,) = await _record(
        database,
        "test.ok",
        status=OutboxStatus.QUEUED,
        attempts=3,
        locked_until=utcnow() - timedelta(seconds=1),
    )
    before = counters("outbox_events_processed")

    await _drain(database, _context(max_attempts=3))

    assert counted_since(before, "outbox_events_processed") == {"test.ok:failed": 1}

    event = await _event(database, event_id)
    assert event.status is OutboxStatus.FAILED
    assert event.last_error is not None
    assert "never finished" in event.last_error
    assert event_id not in CALLS


async def test_a_stale_job_for_a_pending_event_does_nothing(database: Database) -> None:
    (event_id,) = await _record(database, "test.ok", available_at=utcnow() + timedelta(hours=1))

    await outbox.process(database, [event_id], _context())  # e.g. a job left from a retry

    event = await _event(database, event_id)
    assert (event.status, event.attempts) == (OutboxStatus.PENDING, 0)
    assert event_id not in CALLS


def test_a_topic_has_one_handler() -> None:
    with pytest.raises(ValueError, match=r"'test\.ok' already has a handler"):
        outbox.handler("test.ok")(_broken)


async def test_the_relay_survives_a_failing_pass(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = Database.from_settings(
        make_settings(f"postgresql+psycopg://postgres@127.0.0.1:{unused_port()}/db").database
    )
    broken, passes = unreachable.sessionmaker, 0

    def counted() -> Any:
        nonlocal passes
        passes += 1
        return broken()

    unreachable.sessionmaker = counted  # type: ignore[assignment]  # observe each pass
    stop = asyncio.Event()
    relay = asyncio.create_task(outbox.relay(unreachable, _context(), stop))

    deadline = utcnow() + timedelta(seconds=10)
    while passes < 2:  # two failing passes, one log line
        assert utcnow() < deadline, "the relay stopped trying"
        await asyncio.sleep(0.05)
    unreachable.sessionmaker = database.sessionmaker  # the database comes back
    while "outbox relay passes succeed again" not in caplog.text:
        assert utcnow() < deadline, "the relay never noticed the database was back"
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(relay, timeout=10)  # it stops when asked
    await unreachable.dispose()
    assert caplog.text.count("outbox relay pass failed") == 1  # once per outage
