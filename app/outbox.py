"""Transactional outbox: side effects are recorded as events in the same transaction as the
domain change that causes them, then claimed, handed to a handler and retried until done.

Lifecycle: `pending` (due at `available_at`) -> `queued` (claimed by a dispatcher, held until
`locked_until`) -> `completed`; a failing handler sends the event back to `pending` with
capped exponential backoff, and after `max_attempts` to `failed` (the dead letter), from
where an operator can replay it. A queued event whose job vanished (worker killed, Redis
flushed) is reaped back to `pending` once its lock expires. Handlers must be idempotent:
an event can be handed over more than once; `first_time()` records an effect per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sentry_sdk
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from sqlalchemy import JSON, ForeignKey, Index, String, Text, func, select, update
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


# The dispatcher hands a claimed event to this: an ARQ enqueue, or the in-process relay.
Enqueue = Callable[[int], Awaitable[None]]


async def reap(session: AsyncSession, settings: OutboxSettings, now: datetime) -> list[Settled]:
    """Queued events whose lock expired: their job vanished (worker killed, Redis flushed).

    They go back to pending, or to the dead letter once their attempts are used up (each
    attempt is counted when it starts, so a handler that hangs or kills its worker uses
    them up too). Rows a running handler holds are skipped, never waited for.
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


async def claim(session: AsyncSession, settings: OutboxSettings, now: datetime) -> list[int]:
    """Mark due events `queued`, oldest first, and return their ids.

    `SKIP LOCKED` lets dispatchers run side by side on PostgreSQL without taking the same
    event; SQLite runs one write transaction at a time anyway.
    """
    due = (
        (
            await session.execute(
                select(OutboxEvent.id)
                .where(OutboxEvent.status == OutboxStatus.PENDING, OutboxEvent.available_at <= now)
                .order_by(OutboxEvent.id)
                .limit(settings.batch_size)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    if due:
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id.in_(due))
            .values(
                status=OutboxStatus.QUEUED,
                locked_until=now + timedelta(seconds=settings.visibility_timeout_seconds),
            )
        )
    return list(due)


async def dispatch(
    database: Database,
    settings: OutboxSettings,
    enqueue: Enqueue,
    *,
    stop: asyncio.Event | None = None,
) -> int:
    """One dispatcher pass: reap expired locks, then claim and hand over due events batch
    by batch until a batch comes back short (or `max_batches_per_pass` were taken), so a
    backlog drains in one pass instead of one batch per interval."""
    handed = 0
    for batch in range(settings.max_batches_per_pass):
        async with database.sessionmaker() as session:
            now = utcnow()
            reaped = await reap(session, settings, now) if batch == 0 else []
            claimed = await claim(session, settings, now)
            await session.commit()
        for settled in reaped:
            settled.report()
        for event_id in claimed:
            await enqueue(event_id)
        handed += len(claimed)
        if len(claimed) < settings.batch_size or (stop is not None and stop.is_set()):
            break
    return handed


async def process(database: Database, event_id: int, context: HandlerContext) -> None:
    """Run a queued event's handler; complete it, or schedule its retry.

    First, in a transaction of its own, the attempt is counted and the lock renewed, so an
    attempt that never returns (a hang, a killed worker) still counts towards the dead
    letter. Then the handler runs, in a savepoint, and the outcome commits with its work.
    Anything but a `queued` event is left alone: a stale job for an event already done, or
    one waiting out its backoff, does nothing.
    """
    settings = context.settings.outbox
    with _tracer.start_as_current_span(
        "outbox event", kind=trace.SpanKind.CONSUMER, attributes={"outbox.event_id": event_id}
    ) as span:
        async with database.sessionmaker() as session:
            event = await _lock_queued(session, event_id)
            if event is None:
                return
            event.attempts += 1
            event.locked_until = utcnow() + timedelta(seconds=settings.visibility_timeout_seconds)
            await session.commit()
        span.update_name(f"outbox {event.topic}")
        span.set_attribute("outbox.attempt", event.attempts)
        for link in links_to(event.trace_context):
            span.add_link(link.context)
        await _run_handler(database, event_id, context)


async def _run_handler(database: Database, event_id: int, context: HandlerContext) -> None:
    settings = context.settings.outbox
    async with database.sessionmaker() as session:
        event = await _lock_queued(session, event_id)
        if event is None:  # pragma: no cover - only when another job took it in between
            return
        run = _HANDLERS.get(event.topic)
        try:
            if run is None:
                raise LookupError(f"no handler is registered for topic {event.topic!r}")
            async with session.begin_nested():  # a failed handler leaves nothing behind
                await run(session, event, context)
        except Exception as exc:
            span = trace.get_current_span()
            span.set_status(StatusCode.ERROR)
            span.set_attribute("error.type", type(exc).__name__)
            settled = _fail(event, f"{type(exc).__name__}: {exc}", settings, permanent=run is None)
        else:
            event.status, event.processed_at, event.locked_until = (
                OutboxStatus.COMPLETED,
                utcnow(),
                None,
            )
            settled = Settled(event.id, event.topic, event.attempts, OutboxStatus.COMPLETED)
        await session.commit()
    settled.report()


async def _lock_queued(session: AsyncSession, event_id: int) -> OutboxEvent | None:
    return await session.scalar(
        select(OutboxEvent)
        .where(OutboxEvent.id == event_id, OutboxEvent.status == OutboxStatus.QUEUED)
        .with_for_update(skip_locked=True)  # another worker has it in hand: leave it
        .execution_options(populate_existing=True)
    )


def _fail(event: OutboxEvent, error: str, settings: OutboxSettings, *, permanent: bool) -> Settled:
    """Back to pending after a backoff, or to the dead letter. The attempt is already counted."""
    event.last_error = error[:2000]
    event.locked_until = None
    if permanent or event.attempts >= settings.max_attempts:
        event.status = OutboxStatus.FAILED
    else:
        backoff = min(settings.retry_cap_seconds, settings.retry_base_seconds * 2**event.attempts)
        jitter = random.uniform(0.5, 1.0)  # noqa: S311 - spreads retries, not a secret
        event.status = OutboxStatus.PENDING
        event.available_at = utcnow() + timedelta(seconds=backoff * jitter)
    return Settled(event.id, event.topic, event.attempts, event.status, error)


@dataclass(frozen=True, slots=True)
class Settled:
    """What became of an event's attempt: told to metrics, logs and error reports once it
    is committed, so a rolled-back outcome is never counted."""

    event_id: int
    topic: str
    attempts: int
    status: OutboxStatus
    error: str | None = None

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

    It goes through the same claim and process steps as the ARQ worker, handing each event
    straight to `process` instead of to a queue.
    """
    settings = context.settings.outbox

    async def handle_now(event_id: int) -> None:
        if stop.is_set():  # shutting down mid-pass: the rest go back at once
            await release(database, event_id, settings)
            return
        try:
            async with asyncio.timeout(settings.job_timeout_seconds):  # as the worker's jobs
                await process(database, event_id, context)
        except TimeoutError:
            await release(database, event_id, settings)

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


async def release(database: Database, event_id: int, settings: OutboxSettings) -> None:
    """Hand back an event whose job was interrupted (worker shutdown, job timeout): it is
    retried after its backoff, or dead-lettered if that was its last attempt."""
    async with database.sessionmaker() as session:
        event = await session.scalar(
            select(OutboxEvent)
            .where(OutboxEvent.id == event_id, OutboxEvent.status == OutboxStatus.QUEUED)
            .with_for_update()
        )
        if event is None:
            return
        settled = _fail(event, "interrupted before it finished", settings, permanent=False)
        await session.commit()
    settled.report()


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
