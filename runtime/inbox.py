"""The idempotent inbox and the durable pull consumer that feeds it.

Each message's effect and its inbox row (consumer, event id) are written in one transaction; the
message is acked only after commit. A transient failure is nak'ed with a delay and redelivered; a
message that can never succeed (not JSON, unknown schema version, invalid fields, a rule the
handler rejects) is parked on the dead-letter stream with the reason and terminated.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import trace
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, MetaData, PrimaryKeyConstraint, Table, Text, Uuid, func, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.base import Event
from runtime import deadletter, telemetry
from runtime.db import NAMING_CONVENTION
from runtime.errors import Invalid, PermanentFailure

logger = logging.getLogger(__name__)
_tracer = telemetry.tracer(__name__)

Handler = Callable[[AsyncSession, Event], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, list[Event]], Awaitable[None]]


@cache
def inbox_table(schema: str) -> Table:
    md = MetaData(schema=schema, naming_convention=NAMING_CONVENTION)
    return Table(
        "inbox",
        md,
        Column("consumer", Text, nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
    )


@dataclass(frozen=True)
class Subscription:
    """A consuming service's interest in one event subject (all known versions of it)."""

    consumer: str
    models: tuple[type[Event], ...]
    handle: Handler
    # Optional: apply a whole batch of new events at once (one statement instead of one per event).
    # It must have the same effect as calling `handle` for each event in order.
    handle_many: BatchHandler | None = None

    @property
    def subject(self) -> str:
        return self.models[0].subject

    @property
    def stream(self) -> str:
        return self.models[0].stream.name

    @property
    def durable(self) -> str:
        return f"{self.consumer}__{self.subject.replace('.', '_')}"


@dataclass
class ConsumerStats:
    applied: int = 0
    duplicates: int = 0
    redelivered: int = 0
    dead_lettered: int = 0
    naked: int = 0
    last_error: str | None = None


class SimulatedCrash(BaseException):
    """Raised by fault tests between commit and ack; BaseException so nothing swallows it."""


@dataclass
class InboxConsumer:
    sub: Subscription
    js: JetStreamContext
    sessions: async_sessionmaker[AsyncSession]
    schema: str
    max_deliver: int = 8
    ack_wait: float = 30.0
    backoff: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0, 30.0, 60.0)
    batch: int = 256
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL
    stats: ConsumerStats = field(default_factory=ConsumerStats)
    # Fault tests set this to run code after the commit and before the ack.
    before_ack: Callable[[list[Msg]], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        self._by_version = {m.model_fields["schema_version"].default: m for m in self.sub.models}
        # Plain text so the statement is compiled once; claims a whole batch in one round trip.
        self._claim = text(
            f'INSERT INTO "{self.schema}".inbox (consumer, event_id) '
            "SELECT :consumer, unnest(CAST(:ids AS uuid[])) ON CONFLICT DO NOTHING RETURNING event_id"
        )

    @property
    def durable(self) -> str:
        return self.sub.durable

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            filter_subject=self.sub.subject,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=self.deliver_policy,
            max_deliver=self.max_deliver,
            ack_wait=self.ack_wait,
            max_ack_pending=max(self.batch * 4, 1024),
        )

    async def ensure(self) -> None:
        try:
            await self.js.consumer_info(self.sub.stream, self.durable)
        except NotFoundError:
            await self.js.add_consumer(self.sub.stream, self.config())

    async def run(self, stop: asyncio.Event) -> None:
        await self.ensure()
        psub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.sub.stream)
        advisory = await self.js._nc.subscribe(
            f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.sub.stream}.{self.durable}",
            cb=self._on_max_deliveries,
        )
        try:
            while not stop.is_set():
                try:
                    msgs = await psub.fetch(self.batch, timeout=1.0)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError,
                        nats.errors.NoRespondersError) as exc:
                    logger.info("%s: waiting for NATS (%s)", self.durable, exc.__class__.__name__)
                    await asyncio.sleep(0.5)
                    continue
                await self.process(msgs)
        finally:
            await advisory.unsubscribe()
            await psub.unsubscribe()

    async def process(self, msgs: list[Msg]) -> None:
        parsed: list[tuple[Msg, Event]] = []
        for msg in msgs:
            if msg.metadata.num_delivered > 1:
                self.stats.redelivered += 1
            try:
                parsed.append((msg, self.parse(msg)))
            except PermanentFailure as exc:
                await self._give_up(msg, str(exc))
        if len(parsed) > 1:
            # The fast path: the whole batch in one transaction; any failure retries one by one.
            try:
                async with self.sessions() as session, session.begin():
                    await self._apply(session, parsed)
            except Exception:
                logger.debug("%s: batch failed, retrying its messages one by one", self.durable)
            else:
                await self._ack([m for m, _ in parsed])
                return
        for msg, event in parsed:
            await self._process_one(msg, event)

    def parse(self, msg: Msg) -> Event:
        try:
            raw = json.loads(msg.data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PermanentFailure(f"body is not JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise PermanentFailure("body is not a JSON object")
        version = raw.get("schema_version")
        model = self._by_version.get(version) if isinstance(version, int) else None
        if model is None:
            raise PermanentFailure(
                f"unknown schema_version {version!r} on {msg.subject}; "
                f"{self.durable} knows {sorted(self._by_version)}"
            )
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise PermanentFailure(f"invalid {model.__name__}: {_summarise(exc)}") from exc

    async def _apply(self, session: AsyncSession, items: list[tuple[Msg, Event]]) -> None:
        """Claim the events in the inbox and apply those not seen before, in the caller's transaction."""
        new_ids = set((await session.execute(
            self._claim, {"consumer": self.durable, "ids": [event.event_id for _, event in items]}
        )).scalars())
        fresh: list[tuple[Msg, Event]] = []
        for msg, event in items:
            if event.event_id in new_ids:
                new_ids.discard(event.event_id)  # the same event twice in one batch applies once
                fresh.append((msg, event))
        self.stats.duplicates += len(items) - len(fresh)
        if not fresh:
            return
        if self.sub.handle_many is not None:
            first = fresh[0][0]
            with _tracer.start_as_current_span(
                f"consume {first.subject}", context=telemetry.extract_context(first.headers),
                kind=trace.SpanKind.CONSUMER,
                links=[trace.Link(_span_context(m)) for m, _ in fresh[1:64] if _span_context(m).is_valid],
            ) as span:
                span.set_attribute("messaging.consumer.group.name", self.durable)
                span.set_attribute("messaging.batch.message_count", len(fresh))
                await self.sub.handle_many(session, [event for _, event in fresh])
        else:
            for msg, event in fresh:
                with _tracer.start_as_current_span(
                    f"consume {msg.subject}", context=telemetry.extract_context(msg.headers),
                    kind=trace.SpanKind.CONSUMER,
                ) as span:
                    span.set_attribute("messaging.consumer.group.name", self.durable)
                    span.set_attribute("messaging.message.id", str(event.event_id))
                    await self.sub.handle(session, event)
        self.stats.applied += len(fresh)

    async def _process_one(self, msg: Msg, event: Event) -> None:
        try:
            async with self.sessions() as session, session.begin():
                await self._apply(session, [(msg, event)])
        except (PermanentFailure, Invalid, ValidationError) as exc:
            await self._give_up(msg, f"rejected by {self.durable}: {exc}")
            return
        except Exception as exc:
            self.stats.last_error = repr(exc)
            delivered = msg.metadata.num_delivered
            if delivered >= self.max_deliver:
                await self._give_up(msg, f"failed {delivered} times; last error: {exc!r}")
            else:
                delay = self.backoff[min(delivered - 1, len(self.backoff) - 1)] if self.backoff else 1.0
                logger.warning(
                    "%s: event %s failed (delivery %d of %d), retrying in %.1fs: %r",
                    self.durable, event.event_id, delivered, self.max_deliver, delay, exc,
                )
                self.stats.naked += 1
                await msg.nak(delay=delay)
            return
        await self._ack([msg])

    async def _ack(self, msgs: list[Msg]) -> None:
        if self.before_ack is not None:
            await self.before_ack(msgs)
        await asyncio.gather(*(m.ack() for m in msgs))

    async def _give_up(self, msg: Msg, reason: str) -> None:
        try:
            await deadletter.park(self.js, msg, consumer=self.durable, reason=reason)
        except Exception as exc:
            # Never drop a message we could not park: let it come back and try again.
            logger.error("%s: could not dead-letter message: %r", self.durable, exc)
            await msg.nak(delay=2.0)
            return
        self.stats.dead_lettered += 1
        logger.warning("%s: dead-lettered %s seq %d: %s", self.durable, msg.subject,
                       msg.metadata.sequence.stream, reason)
        await msg.term()

    async def _on_max_deliveries(self, advisory: Msg) -> None:
        """A message redelivered max_deliver times without an ack or nak (the consumer kept
        crashing on it) is dropped by the server; park it so it is not lost."""
        try:
            info = json.loads(advisory.data)
            seq = int(info["stream_seq"])
            raw = await self.js.get_msg(self.sub.stream, seq=seq)
            await deadletter.park_raw(
                self.js, consumer=self.durable, subject=raw.subject or self.sub.subject,
                stream=self.sub.stream, seq=seq, data=raw.data or b"", headers=raw.headers,
                reason="reached max deliveries without an acknowledgement",
                deliveries=int(info.get("deliveries", self.max_deliver)),
            )
            self.stats.dead_lettered += 1
        except Exception as exc:  # pragma: no cover - logged, the message is still in the stream
            logger.error("%s: could not park message after max deliveries: %r", self.durable, exc)


def _span_context(msg: Msg) -> trace.SpanContext:
    return trace.get_current_span(telemetry.extract_context(msg.headers)).get_span_context()


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
