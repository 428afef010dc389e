"""Transactional outbox: side effects are recorded as events in the same transaction as the
domain change that causes them, then claimed, handed to a handler and retried until done.

Lifecycle: `pending` (due at `available_at`) -> `queued` (claimed by a dispatcher, held until
`locked_until`) -> `completed`; a failing handler sends the event back to `pending` with
capped exponential backoff, and after `max_attempts` to `failed` (the dead letter), from
where an operator can replay it. A queued event whose job vanished (worker killed, Redis
flushed) is reaped back to `pending` once its lock expires. Handlers must be idempotent:
an event can be handed over more than once; `first_time()` records an effect per event.

Processing works on batches. A dispatcher pass (`dispatch`) claims due events and hands
each batch to one job (an ARQ job in the worker, a direct call in the embedded relay), which
calls `process`:

1. Start: one statement locks the batch's rows that are still `queued` (SKIP LOCKED), counts
   an attempt of each and renews its lock, and commits before any handler runs. An attempt
   that never returns (a hang, a killed worker) has therefore counted towards the dead
   letter, and an event another job holds, or one already finished, is left alone.
2. Run: the handlers run one after another in a transaction that locks those rows again,
   each handler in a savepoint (a failure rolls back its work only) and cut off after half
   the job timeout. The outcomes (completed; retry after a backoff; dead letter) are written
   in that transaction, which commits once it has run handlers for
   `COMMIT_INTERVAL_SECONDS`, or at the end; the next one goes on with the rest. Outcomes
   are reported (metrics, logs, Sentry) after their commit.
3. Stop: no handler starts after the first half of the job timeout, after `stop` is set
   (the relay shutting down) or once the job is cancelled (shutdown, the job timeout; a
   cancellation also cuts off the running handler, as an interrupted attempt). The
   outcomes so far commit, and the events no handler ran for go back to `pending` at once,
   their attempt uncounted.

First attempts share a batch; an event attempted before is claimed as a batch of its own,
so that if its handler kills the worker, it costs no other event an attempt again.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sentry_sdk
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from sqlalchemy import JSON, ForeignKey, Index, String, Text, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.db import NEVER_REUSE_IDS, Base, BigIntId, Database, str_enum, utcnow
from app.mail import Mailer
from app.observability.logs import get_logger
from app.observability.metrics import OUTBOX_PROCESSED
from app.observability.tracing import current_context, links_to
from app.settings import OutboxSettings, Settings

logger = get_logger(__name__)
_tracer = trace.get_tracer(__name__)


class OutboxStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    COMPLETED = "completed"
    FAILED = "failed"


class OutboxEvent(Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_status_available_at", "status", "available_at"),
        Index("ix_outbox_events_status_locked_until", "status", "locked_until"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON().with_variant(JSONB(), "postgresql"))
    status: Mapped[OutboxStatus] = mapped_column(
        str_enum(OutboxStatus, length=16), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # The W3C trace context of the request that recorded the event (`traceparent`), so the
    # span that handles it links back to that request; empty when nothing was traced.
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSON)


def record(session: AsyncSession, topic: str, payload: dict[str, Any]) -> OutboxEvent:
    """Add an event to the session's transaction: it commits or rolls back with the change.

    Payloads are stored in clear and read by workers: ids and public facts only, never
    secrets, tokens or password hashes.
    """
    event = OutboxEvent(topic=topic, payload=payload, trace_context=current_context() or None)
    session.add(event)
    return event


class OutboxEffect(Base):
    """An effect a handler has applied for an event, so a second run can skip it."""

    __tablename__ = "outbox_effects"

    event_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("outbox_events.id", ondelete="CASCADE"), primary_key=True
    )
    effect: Mapped[str] = mapped_column(String(100), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What a handler may use besides its session and event."""

    settings: Settings
    mailer: Mailer


Handler = Callable[[AsyncSession, OutboxEvent, HandlerContext], Awaitable[None]]
_HANDLERS: dict[str, Handler] = {}


def handler(topic: str) -> Callable[[Handler], Handler]:
    """Register the handler of `topic` (in a domain's `tasks.py`). One handler a topic."""

    def register(function: Handler) -> Handler:
        if _HANDLERS.setdefault(topic, function) is not function:
            raise ValueError(f"{topic!r} already has a handler")
        return function

    return register


def handled_topics() -> frozenset[str]:
    return frozenset(_HANDLERS)


async def first_time(session: AsyncSession, event: OutboxEvent, effect: str) -> bool:
    """Record that `effect` is applied for `event`; False when an earlier run already did.

    The record commits with the event's completion: a run that crashes before that leaves
    no record, and the effect is applied again (at least once, never twice once done).
    """
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(OutboxEffect)
        .values(event_id=event.id, effect=effect, applied_at=utcnow())
        .on_conflict_do_nothing()
        .returning(OutboxEffect.event_id)
    )
    return await session.scalar(statement) is not None


# The dispatcher hands each claimed batch (event ids) to this: an ARQ enqueue in the worker,
# `process` itself in the embedded relay.
Enqueue = Callable[[list[int]], Awaitable[None]]


async def reap(session: AsyncSession, settings: OutboxSettings, now: datetime) -> list[Settled]:
    """Queued events whose lock expired: their job vanished (worker killed, Redis flushed).

    They go back to pending, or to the dead letter once their attempts are used up (each
    attempt is counted when it starts, so a handler that hangs or kills its worker uses
    them up too). Rows a running job holds are skipped, never waited for.
    """
    expired = (
        select(OutboxEvent.id)
        .where(OutboxEvent.status == OutboxStatus.QUEUED, OutboxEvent.locked_until < now)
        .with_for_update(skip_locked=True)
    )
    exhausted = OutboxEvent.attempts >= settings.max_attempts
    failed = await session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(expired.scalar_subquery()), exhausted)
        .values(status=OutboxStatus.FAILED, locked_until=None, last_error=_LOST)
        .returning(OutboxEvent.id, OutboxEvent.topic, OutboxEvent.attempts)
    )
    requeued = await session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id.in_(expired.scalar_subquery()), ~exhausted)
        .values(status=OutboxStatus.PENDING, locked_until=None)
        .returning(OutboxEvent.id, OutboxEvent.topic, OutboxEvent.attempts)
    )
    return [
        Settled(event_id, topic, attempts, status, _LOST)
        for status, rows in ((OutboxStatus.FAILED, failed), (OutboxStatus.PENDING, requeued))
        for event_id, topic, attempts in rows
    ]


_LOST = "its job never finished (worker stopped, timed out, or the queue lost it)"
_INTERRUPTED = "interrupted before it finished"


async def claim(session: AsyncSession, settings: OutboxSettings, now: datetime) -> list[list[int]]:
    """Mark due events `queued`, oldest first, and return them as the batches to hand over.

    First attempts go together, in one batch. An event that was attempted before goes on its
    own: if its last attempt killed its worker, the next one then costs no other event an
    attempt. `SKIP LOCKED` lets dispatchers run side by side on PostgreSQL without taking
    the same event; SQLite runs one write transaction at a time anyway.
    """
    due = (
        await session.execute(
            select(OutboxEvent.id, OutboxEvent.attempts)
            .where(OutboxEvent.status == OutboxStatus.PENDING, OutboxEvent.available_at <= now)
            .order_by(OutboxEvent.id)
            .limit(settings.batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if due:
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_([event_id for event_id, _ in due]))
            .values(
                status=OutboxStatus.QUEUED,
                locked_until=now + timedelta(seconds=settings.visibility_timeout_seconds),
            )
        )
    first_attempts = [event_id for event_id, attempts in due if attempts == 0]
    retries = [[event_id] for event_id, attempts in due if attempts > 0]
    return ([first_attempts] if first_attempts else []) + retries


async def dispatch(
    database: Database,
    settings: OutboxSettings,
    enqueue: Enqueue,
    *,
    stop: asyncio.Event | None = None,
) -> int:
    """One dispatcher pass: reap expired locks, then claim due events, `batch_size` at a
    time, and hand them over, until a claim comes back short (or `max_batches_per_pass`
    were taken), so a backlog drains in one pass instead of one claim per interval.
    Returns the number of events claimed."""
    handed = 0
    for round_ in range(settings.max_batches_per_pass):
        async with database.sessionmaker() as session:
            now = utcnow()
            reaped = await reap(session, settings, now) if round_ == 0 else []
            batches = await claim(session, settings, now)
            await session.commit()
        for settled in reaped:
            settled.report()
        for batch in batches:
            await enqueue(batch)
        claimed = sum(map(len, batches))
        handed += claimed
        if claimed < settings.batch_size or (stop is not None and stop.is_set()):
            break
    return handed


# A transaction that runs handlers commits once it has run them for this long, and at the
# end of the batch: fast handlers share a commit, while a slow one commits on its own, so no
# transaction holds row locks (on SQLite, the write lock) or uncommitted effects for long.
COMMIT_INTERVAL_SECONDS = 0.1


async def process(
    database: Database,
    event_ids: Sequence[int],
    context: HandlerContext,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the handlers of a claimed batch, in the steps the module's docstring describes.

    Cancelled (shutdown, the job timeout), it cuts off the running handler, commits what
    finished and hands the rest back at once, then lets the cancellation through. Once
    `stop` is set, it starts no further handler and hands the rest back.
    """
    job = _Job(database, context, stop)
    running = asyncio.create_task(job.run(event_ids))
    try:
        await asyncio.shield(running)
    except asyncio.CancelledError:
        job.interrupt()
        await asyncio.shield(running)
        raise


class _Job:
    """One `process` call: the attempts it started, run in transactions of their own until
    every one has an outcome or the job stops."""

    def __init__(
        self, database: Database, context: HandlerContext, stop: asyncio.Event | None
    ) -> None:
        self.database = database
        self.context = context
        self.settings = context.settings.outbox
        self.stop = stop
        self.loop = asyncio.get_running_loop()
        # A handler may run for half the job timeout, and none starts after the first half,
        # so a job is done before the worker's job timeout would cut it off.
        self.handler_seconds = self.settings.job_timeout_seconds / 2
        self.last_start = self.loop.time() + self.handler_seconds
        self.interrupted = False
        self.handler_timeout: asyncio.Timeout | None = None

    def interrupt(self) -> None:
        """Cut off the handler running, if any, and start no other."""
        self.interrupted = True
        running = self.handler_timeout
        if running is not None and not running.expired():  # not cut off already
            running.reschedule(self.loop.time())

    def stopping(self) -> bool:
        return (
            self.interrupted
            or self.loop.time() >= self.last_start
            or (self.stop is not None and self.stop.is_set())
        )

    async def run(self, event_ids: Sequence[int]) -> None:
        events = await _start(self.database, event_ids, self.settings)
        while events:
            events = await self._run_some(events)

    async def _run_some(self, events: list[OutboxEvent]) -> list[OutboxEvent]:
        """Run handlers in one transaction until the commit interval is up or the job stops;
        commit their outcomes, and return the events still to run."""
        outcomes: list[Settled] = []
        async with self.database.sessionmaker() as session:
            held = await _hold(session, events)
            # An event not held is finished, or another job's now (its attempt moved on).
            left = deque(event for event in events if event.id in held)
            opened = self.loop.time()
            while left and not self.stopping():
                outcomes.append(await self._run_one(session, left.popleft()))
                if self.loop.time() - opened >= COMMIT_INTERVAL_SECONDS:
                    break
            stopped = self.stopping()
            await _record(session, outcomes, hand_back=list(left) if stopped else [])
            await session.commit()
        for outcome in outcomes:
            outcome.report()
        return [] if stopped else list(left)

    async def _run_one(self, session: AsyncSession, event: OutboxEvent) -> Settled:
        run = _HANDLERS.get(event.topic)
        cut_off = asyncio.timeout(None)  # set when the handler starts
        with _tracer.start_as_current_span(
            f"outbox {event.topic}",
            kind=trace.SpanKind.CONSUMER,
            attributes={"outbox.event_id": event.id, "outbox.attempt": event.attempts},
            links=links_to(event.trace_context),
        ) as span:
            try:
                if run is None:
                    raise LookupError(f"no handler is registered for topic {event.topic!r}")
                async with session.begin_nested():  # a failed handler leaves nothing behind
                    await self._call(run, session, event, cut_off)
            except Exception as exc:
                span.set_status(StatusCode.ERROR)
                span.set_attribute("error.type", type(exc).__name__)
                error = self._error(exc, cut_off)
                return _failed(event, error, self.settings, permanent=run is None)
        return Settled(event.id, event.topic, event.attempts, OutboxStatus.COMPLETED)

    async def _call(
        self, run: Handler, session: AsyncSession, event: OutboxEvent, cut_off: asyncio.Timeout
    ) -> None:
        """Run the handler under `cut_off`, which `interrupt` brings forward to now."""
        async with cut_off:
            self.handler_timeout = cut_off
            # Interrupted while the savepoint was being opened: cut off at once.
            cut_off.reschedule(self.loop.time() + (0 if self.interrupted else self.handler_seconds))
            try:
                await run(session, event, self.context)
            finally:
                self.handler_timeout = None

    def _error(self, exc: Exception, cut_off: asyncio.Timeout) -> str:
        if cut_off.expired():  # the job cut the handler off; not a timeout of its own
            if self.interrupted:
                return _INTERRUPTED
            return f"timed out after {self.handler_seconds:g} s"
        return f"{type(exc).__name__}: {exc}"


async def _start(
    database: Database, event_ids: Sequence[int], settings: OutboxSettings
) -> list[OutboxEvent]:
    """Count an attempt of each event that is still `queued` and renew its lock, in one
    statement committed before any handler runs: an attempt that never returns (a hang, a
    killed worker) still counts towards the dead letter. Anything else is left alone: an
    event another job holds, or one already finished or waiting out its backoff."""
    still_queued = (
        select(OutboxEvent.id)
        .where(OutboxEvent.id.in_(event_ids), OutboxEvent.status == OutboxStatus.QUEUED)
        .with_for_update(skip_locked=True)  # another job has it in hand: leave it
    )
    async with database.sessionmaker() as session:
        started = await session.scalars(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(still_queued.scalar_subquery()))
            .values(
                attempts=OutboxEvent.attempts + 1,
                locked_until=utcnow() + timedelta(seconds=settings.visibility_timeout_seconds),
            )
            .returning(OutboxEvent)
        )
        events = sorted(started, key=lambda event: event.id)
        await session.commit()
    return events


async def _hold(session: AsyncSession, events: Sequence[OutboxEvent]) -> set[int]:
    """Lock, for this transaction, the events that are still `queued` at the attempt this job
    started; their ids. An event whose attempt moved on belongs to another job (it was reaped
    and claimed again), which must find it unlocked: were it locked here, both jobs would skip
    it, and it would wait in `queued` for the reaper."""
    ids = await session.scalars(
        select(OutboxEvent.id)
        .where(
            tuple_(OutboxEvent.id, OutboxEvent.attempts).in_(
                [(event.id, event.attempts) for event in events]
            ),
            OutboxEvent.status == OutboxStatus.QUEUED,
        )
        .with_for_update(skip_locked=True)
    )
    return set(ids)


async def _record(
    session: AsyncSession, outcomes: Sequence[Settled], hand_back: Sequence[OutboxEvent]
) -> None:
    """Write the outcomes of handler runs, and hand back the events no handler ran for:
    pending at once, their attempt uncounted."""
    completed = [o.event_id for o in outcomes if o.status is OutboxStatus.COMPLETED]
    if completed:
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(completed))
            .values(status=OutboxStatus.COMPLETED, processed_at=utcnow(), locked_until=None)
        )
    for outcome in outcomes:
        if outcome.status is not OutboxStatus.COMPLETED:
            await session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id == outcome.event_id)
                .values(
                    status=outcome.status,
                    # A retry waits out its backoff; the dead letter keeps the time it had.
                    available_at=outcome.retry_at or OutboxEvent.available_at,
                    last_error=(outcome.error or "")[:2000],
                    locked_until=None,
                )
            )
    if hand_back:
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_([event.id for event in hand_back]))
            .values(
                status=OutboxStatus.PENDING,
                attempts=OutboxEvent.attempts - 1,
                locked_until=None,
            )
        )


def _failed(
    event: OutboxEvent, error: str, settings: OutboxSettings, *, permanent: bool
) -> Settled:
    """Back to pending after a backoff, or to the dead letter. The attempt is already counted."""
    if permanent or event.attempts >= settings.max_attempts:
        return Settled(event.id, event.topic, event.attempts, OutboxStatus.FAILED, error)
    backoff = min(settings.retry_cap_seconds, settings.retry_base_seconds * 2**event.attempts)
    jitter = random.uniform(0.5, 1.0)  # noqa: S311 - spreads retries, not a secret
    retry_at = utcnow() + timedelta(seconds=backoff * jitter)
    return Settled(event.id, event.topic, event.attempts, OutboxStatus.PENDING, error, retry_at)


@dataclass(frozen=True, slots=True)
class Settled:
    """What became of an event's attempt: told to metrics, logs and error reports once it
    is committed, so a rolled-back outcome is never counted."""

    event_id: int
    topic: str
    attempts: int
    status: OutboxStatus
    error: str | None = None
    retry_at: datetime | None = None  # when a retry is due

    def report(self) -> None:
        result = _RESULTS[self.status]
        OUTBOX_PROCESSED.labels(self.topic, result).inc()
        fields = {"event_id": self.event_id, "topic": self.topic, "attempts": self.attempts}
        if self.status is OutboxStatus.PENDING:
            logger.warning("outbox event failed, retrying", error=self.error, **fields)
        elif self.status is OutboxStatus.FAILED:
            logger.error("outbox event failed for good", error=self.error, **fields)
            # Ids and counts only: the error text can quote the data it failed on.
            sentry_sdk.capture_message(
                f"outbox event {self.topic} failed for good",
                level="error",
                tags={"outbox.topic": self.topic},
                extras=fields,
            )


_RESULTS = {
    OutboxStatus.COMPLETED: "completed",
    OutboxStatus.PENDING: "retried",
    OutboxStatus.FAILED: "failed",
}


async def relay(database: Database, context: HandlerContext, stop: asyncio.Event) -> None:
    """The embedded mode's worker: dispatch and handle events in this process until `stop`.

    It goes through the same claim and process steps as the ARQ worker, handing each batch
    straight to `process` instead of to a queue. Once `stop` is set, the batch in hand stops
    after its running handler, and the rest of the pass goes back at once (`release`).
    """
    settings = context.settings.outbox

    async def handle_now(event_ids: list[int]) -> None:
        if stop.is_set():
            await release(database, event_ids)
        else:
            await process(database, event_ids, context, stop=stop)

    failing = False
    while not stop.is_set():
        try:
            handled = await dispatch(database, settings, handle_now, stop=stop)
        except Exception:
            if not failing:  # once until a pass succeeds again, not every interval
                logger.exception("outbox relay pass failed, retrying")
            failing, handled = True, 0
        else:
            if failing:
                logger.warning("outbox relay passes succeed again")
            failing = False
        if not handled:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.dispatch_interval_seconds)


async def release(database: Database, event_ids: Sequence[int]) -> None:
    """Hand back claimed events that no job started (the relay stopping mid-pass): they are
    pending again at once, their attempts as they were."""
    async with database.sessionmaker() as session:
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(event_ids), OutboxEvent.status == OutboxStatus.QUEUED)
            .values(status=OutboxStatus.PENDING, locked_until=None)
        )
        await session.commit()


async def replay(session: AsyncSession, event_ids: Sequence[int] | None = None) -> list[int]:
    """Send failed events (all of them when `event_ids` is None) back to pending."""
    query = (
        update(OutboxEvent)
        .where(OutboxEvent.status == OutboxStatus.FAILED)
        .values(status=OutboxStatus.PENDING, attempts=0, available_at=utcnow())
        .returning(OutboxEvent.id)
    )
    if event_ids is not None:
        query = query.where(OutboxEvent.id.in_(event_ids))
    return sorted((await session.execute(query)).scalars())


async def events_with_status(
    session: AsyncSession, status: OutboxStatus, limit: int = 100
) -> Sequence[OutboxEvent]:
    query = select(OutboxEvent).where(OutboxEvent.status == status).order_by(OutboxEvent.id)
    return (await session.scalars(query.limit(limit))).all()


@dataclass(frozen=True, slots=True)
class Backlog:
    """Events not completed: how many in each such status, and when the oldest pending one
    was recorded."""

    counts: dict[OutboxStatus, int]
    oldest_pending_at: datetime | None


async def backlog(session: AsyncSession) -> Backlog:
    waiting = (OutboxStatus.PENDING, OutboxStatus.QUEUED, OutboxStatus.FAILED)
    rows = await session.execute(
        select(OutboxEvent.status, func.count())
        .where(OutboxEvent.status.in_(waiting))
        .group_by(OutboxEvent.status)
    )
    counts = dict.fromkeys(waiting, 0) | dict(rows.all())
    oldest = await session.scalar(
        select(func.min(OutboxEvent.created_at)).where(OutboxEvent.status == OutboxStatus.PENDING)
    )
    return Backlog(counts, oldest)
