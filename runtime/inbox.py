"""The idempotent inbox, and the consumer of one producer stream that feeds it.

One durable JetStream pull consumer per (consuming service, producer stream), named
`<consumer>__<STREAM>`, with `filter_subjects` = the event kinds the service handles: the events of one
aggregate therefore arrive in publish order. It is a FastStream batch pull subscriber with
`AckPolicy.MANUAL`; everything between the fetch and the ack is decided here, once, for every consumer:

- bounds: size and nesting depth are checked on the raw bytes before `json.loads` (`runtime.failures`);
- the effect and its inbox row (inbox key, event id) are written in one transaction; ack after commit;
- a batch is applied in one transaction; if it fails for a reason other than the database being
  unreachable, its messages are applied one by one, so only the culprit is parked, with its own reason;
- a permanent failure (invalid, not JSON, too large, too deep, NUL, a rule the handler rejects) is parked
  on the dead letters at once and terminated;
- a transient failure (database down, lock timeout, serialization failure) pauses the consumer: it keeps
  the messages (`in_progress`, so the server does not redeliver them), waits with a capped backoff until
  the database answers, and retries — without a delivery limit, in order; after `alert_after` seconds
  it logs an error and its health shows `waiting_long`;
- any other failure is retried `max_deliver` times with a backoff, then parked with the last error;
- stopping (SIGTERM) drains: the batch being applied finishes and is acked; a batch held on a failure,
  the batch fetched ahead and what the server delivered after the last fetch stopped reading are
  nak'ed, so another replica gets them at once rather than after `ack_wait`; nothing delivered is left
  unanswered (`_Fetcher.stop`, bounded by `DRAIN_SECONDS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, cached_property
from typing import Any, NamedTuple

import nats.errors
from faststream import AckPolicy, Context
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.subscriber.usecases import BatchPullStreamSubscriber
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.errors import NotFoundError, ServiceUnavailableError
from opentelemetry import trace
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, MetaData, PrimaryKeyConstraint, Table, Text, Uuid, func, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.base import Event
from runtime import bus, deadletter, telemetry
from runtime.db import NAMING_CONVENTION, session_driver
from runtime.errors import PermanentFailure
from runtime.failures import Failure, check_bounds, classify, describe

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
    # It must have the same effect as calling `handle` for each event in order. Consecutive events of
    # subscriptions sharing the same `handle_many` are applied in one call.
    handle_many: BatchHandler | None = None

    @property
    def subject(self) -> str:
        return self.models[0].subject

    @property
    def stream(self) -> str:
        return self.models[0].stream.name

    @cached_property  # read per event in a batch
    def inbox_key(self) -> str:
        """The name the inbox rows and dead letters of this subscription are kept under. (It was the
        name of the per-subject durable before one durable per stream; kept so no inbox is lost.)"""
        return f"{self.consumer}__{self.subject.replace('.', '_')}"

    @property
    def durable(self) -> str:
        return self.inbox_key


@dataclass
class ConsumerStats:
    applied: int = 0
    duplicates: int = 0
    redelivered: int = 0
    dead_lettered: int = 0
    retried: int = 0
    last_error: str | None = None
    # Since when the consumer has been paused on a transient failure (monotonic seconds), if it is.
    paused_since: float | None = None
    waiting_long: bool = False
    last_batch_at: float | None = None


# How long stopping waits for the batch being applied (and the fetch outstanding) before it cancels them.
DRAIN_SECONDS = 10.0
# How long past a fetch's own deadline the server may still deliver for its pull request: the request
# expires a fetch timeout after the server got it, the client stops reading a fetch timeout after it
# sent it; between the two lie the request's trip to the consumer's leader and the messages' trip back
# (long on a loaded machine). Stopping reads the subscription this long beyond its last deadline.
LATE_DELIVERY_SECONDS = 1.0


class _Draining(Exception):
    """The consumer is stopping while it holds messages it cannot apply now: they are nak'ed."""


async def _nak_all(msgs: Sequence[Msg]) -> int:
    """Hand messages back for redelivery now; those already acked, nak'ed or parked are skipped."""
    count = 0
    for m in msgs:
        try:
            await m.nak()
            count += 1
        except Exception:  # answered already (nats-py refuses a second answer), or NATS away
            pass
    return count


class SimulatedCrash(BaseException):
    """Raised by fault tests between commit and ack; BaseException so nothing swallows it."""


@dataclass(frozen=True)
class _Route:
    """How a subject's messages are read: its subscription, its models by schema_version, and the model
    a body can be validated with straight from its JSON (one version, `from_delivery` not overridden),
    recognised by `mark` (`"schema_version":<n>` as model_dump_json writes it)."""

    sub: Subscription
    by_version: dict[int, type[Event]]
    direct: type[Event] | None
    mark: bytes

    @classmethod
    def of(cls, sub: Subscription) -> _Route:
        by_version = {m.model_fields["schema_version"].default: m for m in sub.models}
        (version, model), *others = by_version.items()
        plain = model.from_delivery.__func__ is Event.from_delivery.__func__  # type: ignore[attr-defined]
        direct = model if not others and plain and isinstance(version, int) else None
        return cls(sub, by_version, direct, b'"schema_version":%d' % version if direct else b"")


@cache
def _claim(schema: str) -> str:
    """Claim a batch in the inbox in one round trip: `$1` the inbox keys, `$2` the event ids, in batch order.
    Returns the positions (from 1, in order) of the events not seen before, or NULL if there are none;
    an event twice in the batch is claimed by its first position (the rows are inserted in batch order,
    and ON CONFLICT DO NOTHING skips the second). Positions rather than the claimed rows: one array to
    decode instead of a row and a UUID per event."""
    return (
        "WITH batch AS (SELECT * FROM unnest($1::text[], $2::uuid[]) WITH ORDINALITY AS b(consumer, event_id, n)), "
        f'claimed AS (INSERT INTO "{schema}".inbox (consumer, event_id) SELECT consumer, event_id FROM batch '
        "ORDER BY n ON CONFLICT DO NOTHING RETURNING consumer, event_id) "
        "SELECT array_agg(n ORDER BY n) FROM (SELECT min(batch.n) AS n FROM claimed JOIN batch "
        "USING (consumer, event_id) GROUP BY consumer, event_id) AS fresh")


def _deliveries(msg: Msg) -> int:
    """How many times the server has delivered the message, from its reply subject
    (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`) without
    nats-py's parse of all of its metadata; the longer form (with a domain) is left to nats-py."""
    tokens = msg.reply.split(".") if msg.reply else ()
    if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK":
        return int(tokens[4])
    return msg.metadata.num_delivered


class _Item(NamedTuple):  # a tuple: made per message
    msg: Msg
    sub: Subscription
    event: Event


class InboxConsumer:
    """The inbox consumer of one producer stream for one consuming service."""

    def __init__(
        self,
        subs: Sequence[Subscription] | Subscription,
        *,
        sessions: async_sessionmaker[AsyncSession],
        schema: str,
        js: JetStreamContext | None = None,
        max_deliver: int = 8,
        ack_wait: float = 30.0,
        backoff: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0, 30.0, 60.0),
        retry_cap: float = 5.0,
        alert_after: float = 60.0,
        batch: int = 256,
        fetch_timeout: float = 1.0,
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
        before_ack: Callable[[list[Msg]], Awaitable[None]] | None = None,
    ) -> None:
        self.subs = (subs,) if isinstance(subs, Subscription) else tuple(subs)
        if not self.subs or len({(s.consumer, s.stream) for s in self.subs}) != 1:
            raise ValueError("an InboxConsumer takes the subscriptions of one consumer to one stream")
        self.consumer = self.subs[0].consumer
        self.stream = self.subs[0].stream
        self._routes: dict[str, _Route] = {}
        for sub in self.subs:
            if sub.subject in self._routes:
                raise ValueError(f"two subscriptions of {self.consumer} to {sub.subject}")
            self._routes[sub.subject] = _Route.of(sub)
        self.sessions = sessions
        self.schema = schema
        self.js = js
        self.max_deliver = max_deliver
        self.ack_wait = ack_wait
        self.backoff = backoff or (1.0,)
        self.retry_cap = retry_cap
        self.alert_after = alert_after
        self.batch = batch
        self.fetch_timeout = fetch_timeout
        self.deliver_policy = deliver_policy
        self.before_ack = before_ack
        self.stats = ConsumerStats()
        self.applied_by: dict[str, int] = {s.inbox_key: 0 for s in self.subs}
        self.max_payload: int | None = None
        self.subscriber: BatchPullStreamSubscriber | None = None
        self._claim = _claim(schema)

    # ------------------------------------------------------------------------------ the durable
    @property
    def durable(self) -> str:
        return f"{self.consumer}__{self.stream}"

    @property
    def subjects(self) -> list[str]:
        return sorted(self._routes)

    def config(self, *, start_seq: int | None = None) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            name=self.durable,
            filter_subjects=self.subjects,
            ack_policy=JsAckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start_seq else self.deliver_policy,
            opt_start_seq=start_seq,
            # No delivery limit on the server: transient failures are waited out in the consumer, and
            # the consumer itself parks what keeps failing for another reason.
            max_deliver=-1,
            ack_wait=self.ack_wait,
            max_ack_pending=max(self.batch * 4, 1024),
        )

    async def ensure(self, js: JetStreamContext) -> None:
        """Create the durable, or bring its subjects up to date; replace the per-subject durables of
        earlier versions, starting where the least advanced of them stood (the inbox absorbs what the
        others had already applied)."""
        self.bind(js)
        try:
            info: ConsumerInfo | None = await js.consumer_info(self.stream, self.durable)
        except NotFoundError:
            info = None
        legacy: list[ConsumerInfo] = []
        for sub in self.subs:
            try:
                legacy.append(await js.consumer_info(self.stream, sub.inbox_key))
            except NotFoundError:
                pass
        if info is None:
            start = min((old.ack_floor.stream_seq if old.ack_floor else 0) or 0 for old in legacy) + 1 \
                if legacy else None
            await js.add_consumer(self.stream, self.config(start_seq=start))
            if legacy:
                logger.info("%s: replaced %s, starting at stream seq %s", self.durable,
                            ", ".join(old.name for old in legacy), start)
        else:
            current = info.config.filter_subjects or ([info.config.filter_subject] if info.config.filter_subject
                                                      else [])
            if sorted(current) != self.subjects or info.config.max_deliver not in (-1, None) \
                    or info.config.ack_wait != self.ack_wait:
                config = self.config()
                config.deliver_policy = info.config.deliver_policy
                config.opt_start_seq = info.config.opt_start_seq
                await js.add_consumer(self.stream, config)  # create-or-update: same name, new filters
        for old in legacy:
            await js.delete_consumer(self.stream, old.name)

    def bind(self, js: JetStreamContext) -> None:
        """The JetStream context dead letters are published with (and the server's max payload)."""
        self.js = js
        self.max_payload = js._nc.max_payload or None

    def attach(self, broker: NatsBroker) -> BatchPullStreamSubscriber:
        """Register this consumer as a batch pull subscriber of the process's broker (call `ensure`
        before the broker starts: the subscriber binds to the durable)."""
        subscriber = broker.subscriber(
            stream=JStream(self.stream, declare=False),
            durable=self.durable,
            config=self.config(),
            pull_sub=PullSub(batch_size=self.batch, timeout=self.fetch_timeout, batch=True),
            ack_policy=AckPolicy.MANUAL,
            decoder=bus.raw_body,
            title=f"{self.durable}:consume",
            description=f"{self.consumer} consumes {', '.join(self.subjects)} from {self.stream}",
        )
        subscriber.__class__ = _Fetcher  # see _Fetcher: a different fetch loop that hands batches to `process`
        subscriber.apply = self.process  # type: ignore[attr-defined]

        async def on_batch(message: Any = Context("message")) -> None:
            # What FastStream itself delivers (its test client); the fetch loop calls `process` directly.
            await self.process(message.raw_message)

        subscriber(on_batch)
        self.subscriber = subscriber
        return subscriber

    def abandon_on_stop(self) -> None:
        """Stop without handing back what is in flight (for when the bus goes away too, see _Fetcher)."""
        if isinstance(self.subscriber, _Fetcher):
            self.subscriber.hand_back = False

    def alive(self) -> bool:
        """The fetch task is running (not finished, not failed)."""
        s = self.subscriber
        return bool(s is not None and s.running and s.tasks and not any(t.done() for t in s.tasks))

    def failure(self) -> BaseException | None:
        s = self.subscriber
        for t in (s.tasks if s is not None else ()):
            if t.done() and not t.cancelled() and t.exception() is not None:
                return t.exception()
        return None

    async def run(self, stop: asyncio.Event, *, url: str | None = None) -> None:
        """Run this consumer alone on a broker of its own until `stop` (tests, tools). Raises what
        killed its fetch task, if it died."""
        assert url or self.js is not None, "give the NATS url or a JetStream context"
        b = bus.broker(url or bus.url_of(self.js._nc), name=self.durable)  # type: ignore[union-attr]
        self.attach(b)
        nc = await bus.connect_broker(b)
        await self.ensure(nc.jetstream())
        await b.start()
        try:
            while not stop.is_set():
                if (exc := self.failure()) is not None:
                    raise exc
                await asyncio.sleep(0.1)
        finally:
            await b.stop()

    # ----------------------------------------------------------------------------- a batch
    def draining(self) -> bool:
        """The consumer is being stopped: what it cannot apply now goes back to the server."""
        return self.subscriber is not None and not self.subscriber.running

    async def process(self, msgs: list[Msg]) -> None:
        """Everything that happens to a fetched batch; every exception is handled per message."""
        try:
            await self._process(msgs)
        except _Draining:
            handed_back = await _nak_all(msgs)
            logger.info("%s: stopping; %d held message(s) nak'ed for redelivery", self.durable, handed_back)

    async def _process(self, msgs: list[Msg]) -> None:
        self.stats.last_batch_at = time.monotonic()
        # Redelivered without an ack or nak means a consumer stopped while holding them (a crash, a kill,
        # a restart): take them one by one, so a message that kills the process is found. Processed in
        # order, every message before it gets acked, so it heads the next redelivered batch; once it has
        # come back more than max_deliver times it is parked instead of killing the process again.
        deliveries = [_deliveries(m) for m in msgs]
        isolate = any(d > 1 for d in deliveries)
        if msgs and deliveries[0] > max(self.max_deliver, 2):
            head, msgs = msgs[0], msgs[1:]
            await self._park(head, self._key_of(head), f"redelivered {head.metadata.num_delivered} times without "
                             "an acknowledgement: the consumer kept stopping while handling it")
        items: list[_Item] = []
        self.stats.redelivered += sum(1 for d in deliveries[len(deliveries) - len(msgs):] if d > 1)
        for msg in msgs:
            try:
                sub, event = self.parse(msg)
            except Exception as exc:
                reason = str(exc) if isinstance(exc, PermanentFailure) else f"cannot be read: {describe(exc)}"
                await self._park(msg, self._key_of(msg), reason)
                continue
            items.append(_Item(msg, sub, event))
        if len(items) > 1 and not isolate:
            attempt = 0
            while True:
                try:
                    await self._commit(items)
                except Exception as exc:
                    if classify(exc) is Failure.TRANSIENT:
                        attempt += 1
                        await self._wait_out([i.msg for i in items], exc, attempt)
                        continue
                    logger.debug("%s: batch failed (%s), applying its messages one by one",
                                 self.durable, describe(exc))
                    break
                await self._ack(items)
                return
        for item in items:
            await self._process_one(item)

    def _key_of(self, msg: Msg) -> str:
        route = self._routes.get(msg.subject)
        return route.sub.inbox_key if route else self.durable

    def parse(self, msg: Msg) -> tuple[Subscription, Event]:
        route = self._routes.get(msg.subject)
        if route is None:
            raise PermanentFailure(f"{self.durable} has no handler for {msg.subject}")
        sub, by_version = route.sub, route.by_version
        data = msg.data or b""
        check_bounds(data)
        if route.direct is not None and (route.mark + b"," in data or route.mark + b"}" in data):
            # The body as our producers write it, for a subject with one version: pydantic reads the JSON
            # itself, several times faster than json.loads and then validating the dict. Anything it
            # refuses goes the long way below, which says why as it always has.
            try:
                return sub, route.direct.model_validate_json(data)
            except Exception:
                pass
        try:
            raw = json.loads(data)
        except RecursionError as exc:
            raise PermanentFailure("body nested too deep to decode") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise PermanentFailure(f"body is not JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise PermanentFailure("body is not a JSON object")
        version = raw.get("schema_version")
        model = by_version.get(version) if isinstance(version, int) else None
        if model is None:
            raise PermanentFailure(
                f"unknown schema_version {version!r} on {msg.subject}; "
                f"{sub.inbox_key} knows {sorted(by_version)}"
            )
        try:
            return sub, model.model_validate(model.from_delivery(raw, _stored_at(msg)))
        except ValidationError as exc:
            raise PermanentFailure(f"invalid {model.__name__}: {_summarise(exc)}") from exc

    async def _commit(self, items: list[_Item]) -> None:
        async with self.sessions() as session, session.begin():
            await self._apply(session, items)

    async def _apply(self, session: AsyncSession, items: list[_Item]) -> None:
        """Claim the events in the inbox and apply those not seen before, in order, in the caller's
        transaction."""
        # On the session's driver connection, in its transaction: through SQLAlchemy the claim and the
        # rows it returned were half of a batch's transaction in CPU (docs/benchmarks.md, issue 8 backbone10).
        conn = await session_driver(session)
        claimed: list[int] | None = await conn.fetchval(
            self._claim, [i.sub.inbox_key for i in items], [i.event.event_id for i in items])
        fresh = [items[n - 1] for n in claimed or ()]
        duplicates = len(items) - len(fresh)
        # Runs of consecutive events with the same batch handler go in one call; order is kept.
        start = 0
        while start < len(fresh):
            many = fresh[start].sub.handle_many
            end = start + 1
            if many is not None:
                while end < len(fresh) and fresh[end].sub.handle_many is many:
                    end += 1
                await self._traced_many(session, many, fresh[start:end])
            else:
                await self._traced_one(session, fresh[start])
            start = end
        # Counted once the handlers have run (a failed transaction is retried and counted then).
        self.stats.duplicates += duplicates
        self.stats.applied += len(fresh)
        for item in fresh:
            self.applied_by[item.sub.inbox_key] += 1

    async def _traced_many(self, session: AsyncSession, many: BatchHandler, run: list[_Item]) -> None:
        first = run[0].msg
        with _tracer.start_as_current_span(
            f"consume {first.subject}", context=telemetry.extract_context(first.headers),
            kind=trace.SpanKind.CONSUMER,
            links=[trace.Link(c) for c in (_span_context(i.msg) for i in run[1:64]) if c.is_valid],
        ) as span:
            span.set_attribute("messaging.consumer.group.name", self.durable)
            span.set_attribute("messaging.batch.message_count", len(run))
            await many(session, [i.event for i in run])

    async def _traced_one(self, session: AsyncSession, item: _Item) -> None:
        with _tracer.start_as_current_span(
            f"consume {item.msg.subject}", context=telemetry.extract_context(item.msg.headers),
            kind=trace.SpanKind.CONSUMER,
        ) as span:
            span.set_attribute("messaging.consumer.group.name", self.durable)
            span.set_attribute("messaging.message.id", str(item.event.event_id))
            await item.sub.handle(session, item.event)

    async def _process_one(self, item: _Item) -> None:
        msg = item.msg
        failures = 0
        transient = 0
        while True:
            try:
                await self._commit([item])
            except Exception as exc:
                kind = classify(exc)
                if kind is Failure.PERMANENT:
                    await self._park(msg, item.sub.inbox_key, f"rejected by {item.sub.inbox_key}: {describe(exc)}",
                                     deliveries=msg.metadata.num_delivered + failures)
                    return
                if kind is Failure.TRANSIENT:
                    transient += 1
                    await self._wait_out([msg], exc, transient)
                    continue
                failures += 1
                self.stats.last_error = describe(exc)
                tries = msg.metadata.num_delivered - 1 + failures
                if tries >= self.max_deliver:
                    await self._park(msg, item.sub.inbox_key, f"failed {tries} times; last error: {describe(exc)}",
                                     deliveries=tries)
                    return
                delay = self.backoff[min(failures - 1, len(self.backoff) - 1)]
                self.stats.retried += 1
                logger.warning("%s: event %s failed (try %d of %d), retrying in %.1fs: %s", self.durable,
                               item.event.event_id, tries, self.max_deliver, delay, describe(exc))
                if self.draining():
                    raise _Draining from exc
                await self._hold([msg], delay)
                continue
            await self._ack([item])
            return

    # ------------------------------------------------------------------------- waiting it out
    async def _wait_out(self, msgs: list[Msg], exc: BaseException, attempt: int) -> None:
        """A transient failure: keep the messages and wait, with a capped backoff, until the database
        answers again. Nothing is nak'ed, so no delivery is spent and the order is kept."""
        st = self.stats
        st.retried += 1
        st.last_error = describe(exc)
        if st.paused_since is None:
            st.paused_since = time.monotonic()
            logger.warning("%s: paused on a transient failure, retrying until it clears: %s", self.durable,
                           st.last_error)
        delay = min(self.retry_cap, 0.2 * 2 ** min(attempt - 1, 10))
        while True:
            if self.draining():
                raise _Draining
            await self._hold(msgs, delay)
            waited = time.monotonic() - st.paused_since
            if waited >= self.alert_after and not st.waiting_long:
                st.waiting_long = True
                logger.error("%s: has waited %.0fs for the database (%s); %d event(s) held, none lost",
                             self.durable, waited, st.last_error, len(msgs))
            if await self._database_answers():
                return
            delay = min(self.retry_cap, delay * 2)

    async def _hold(self, msgs: list[Msg], seconds: float) -> None:
        """Sleep, telling the server now and then that the messages are still being worked on."""
        deadline = time.monotonic() + seconds
        tick = min(max(self.ack_wait / 3, 0.1), 0.5)  # short enough to notice a stop within a tick
        last_progress = time.monotonic()
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, tick))
            if self.draining():
                raise _Draining
            if time.monotonic() - last_progress < max(self.ack_wait / 3, 0.1):
                continue
            last_progress = time.monotonic()
            ahead = self.subscriber.ahead if isinstance(self.subscriber, _Fetcher) else []
            for m in (*msgs, *ahead):
                try:
                    await m.in_progress()
                except Exception:  # NATS away: the server redelivers later; the inbox absorbs it
                    break

    async def _database_answers(self) -> bool:
        try:
            async with self.sessions() as session:
                await asyncio.wait_for(session.execute(text("SELECT 1")), timeout=5)
            return True
        except Exception:
            return False

    # ------------------------------------------------------------------------ ack and park
    def _resumed(self) -> None:
        st = self.stats
        if st.paused_since is not None:
            logger.warning("%s: resumed after %.1fs", self.durable, time.monotonic() - st.paused_since)
            st.paused_since = None
            st.waiting_long = False

    async def _ack(self, items: list[_Item]) -> None:
        self._resumed()
        msgs = [i.msg for i in items]
        if self.before_ack is not None:
            await self.before_ack(msgs)
        try:
            await bus.ack_all(msgs)  # one write for the batch
        except Exception as exc:  # the effect is committed; a redelivery finds the inbox row
            logger.warning("%s: ack failed (%s); the redelivery will be skipped by the inbox", self.durable,
                           exc.__class__.__name__)

    async def _park(self, msg: Msg, key: str, reason: str, *, deliveries: int | None = None) -> None:
        assert self.js is not None, "ensure() sets the JetStream context"
        try:
            await deadletter.park(self.js, msg, consumer=key, reason=reason, deliveries=deliveries,
                                  max_payload=self.max_payload)
        except Exception as exc:
            # Never drop a message we could not park: let it come back and try again.
            logger.error("%s: could not dead-letter message: %r", self.durable, exc)
            try:
                await msg.nak(delay=2.0)
            except Exception:
                pass
            return
        self.stats.dead_lettered += 1
        self._resumed()
        logger.warning("%s: dead-lettered %s seq %d: %s", key, msg.subject, msg.metadata.sequence.stream,
                       reason[:500])
        try:
            await msg.term()
        except Exception:  # parked already (one letter per stream seq): a redelivery parks it again, deduped
            pass


class _Fetcher(BatchPullStreamSubscriber):
    """FastStream's batch pull subscriber with a different fetch loop.

    FastStream's loop (faststream/nats/subscriber/usecases/stream_pull_subscriber.py,
    `BatchPullStreamSubscriber._consume_pull`) keeps fetching until the batch is full or the timeout has
    passed, so a single event waits up to the whole timeout; it fetches only after the previous batch
    is handled; and its task is restarted by FastStream's supervisor when it dies. Here:

    - each fetch is handed on at once (nats-py returns what is there);
    - the next batch is fetched while the current one is applied: a fetch is a round trip to NATS and
      then one wake-up per message, and a batch's transaction is a dozen round trips to Postgres; on
      a busy machine each of those waits for a CPU, so doing them one after the other made the
      consumer wait for most of its time (bench.event_latency, docs/benchmarks.md). Order is kept:
      batches are applied one at a time, in the order they were fetched, and only one fetch is ever
      outstanding. The batch fetched ahead is held like the current one while the consumer waits out
      a transient failure (`ahead`, `InboxConsumer._hold`), so it is not redelivered meanwhile;
    - NATS being away is waited out, and the task is not restarted: a dead consumer task is seen by
      the service's watchdog, which exits the process so its supervisor starts a fresh one;
    - a batch goes straight to `InboxConsumer.process` (`apply`), not through FastStream's `consume`:
      its dependency injection resolved the handler's `Context("message")` in a worker thread, a
      thread hand-off per batch, and with its middleware stack cost ~14 % of the consumer's CPU
      (docs/benchmarks.md, issue 8 backbone10). Nothing of it is needed: `process` answers every
      message itself, no middleware is configured beyond FastStream's logging, and stopping drains
      through `stop` below rather than FastStream's handler lock."""

    __slots__ = ()
    # The messages of the batch fetched ahead, once it is in (set per instance by `_consume_pull`).
    ahead: list[Msg] = []
    # When the last fetch stops reading (monotonic): its pull request may be served a little beyond.
    read_until: float = 0.0
    died: bool = False
    # False when the bus goes away with this process (a test's private NATS server): what is in flight is
    # abandoned at once instead of handed back, which waits out the last fetch and its late deliveries.
    hand_back: bool = True
    # The fetch outstanding, if any (set per instance by `_start_fetch`).
    fetching: asyncio.Future[list[Msg]] | None = None
    # InboxConsumer.process, set by `attach`.
    apply: Callable[[list[Msg]], Awaitable[None]]

    async def _create_subscription(self) -> None:
        if self.subscription:
            return
        # FastStream passes nats-py the fixed prefix `_INBOX.`; without it nats-py uses the
        # connection's own (runtime/bus.inbox_prefix), the only inbox this NATS user may subscribe to.
        options = {k: v for k, v in self.extra_options.items() if k != "inbox_prefix"}
        self.subscription = await self.jetstream.pull_subscribe(
            subject=self.subject.broker_address, config=self.config, **options)
        self.add_task(self._consume_pull, restart_on_failure=False)

    async def _fetch(self) -> list[Msg]:
        assert self.subscription
        self.read_until = time.monotonic() + self.pull_sub.timeout
        try:
            messages = await _pull(self.subscription, self.pull_sub.batch_size, self.pull_sub.timeout)
        except (nats.errors.TimeoutError, TimeoutError):
            return []
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError,
                nats.errors.NoRespondersError, ServiceUnavailableError) as exc:
            logger.info("%s: waiting for NATS (%s)", self.config.durable_name, exc.__class__.__name__)
            await asyncio.sleep(0.5)
            return []
        self.ahead = messages
        return messages

    def _start_fetch(self) -> asyncio.Future[list[Msg]]:
        self.fetching = asyncio.ensure_future(self._fetch())
        return self.fetching

    async def _consume_pull(self) -> None:
        next_batch: asyncio.Future[list[Msg]] | None = None
        try:
            while self.running:
                if next_batch is None:
                    next_batch = self._start_fetch()
                messages = await next_batch
                next_batch = None
                self.ahead = []
                if not messages:
                    continue
                if not self.running:  # fetched while stopping: back to the server, for another replica
                    await _nak_all(messages)
                    break
                next_batch = self._start_fetch()
                try:
                    await self.apply(messages)
                except Exception:  # process() answers every message itself; this would be a bug in it
                    logger.exception("%s: a batch was not processed; it is redelivered after ack_wait",
                                     self.config.durable_name)
        finally:
            # Ended while running: the task died (see below), not a stop.
            self.died = self.running
            if next_batch is not None and (self.running or not self.hand_back):
                # Dying (a crash while applying, not a stop): what was fetched ahead is left to ack_wait. A nak
                # here would hand it straight back to the next process, counting a delivery each time the
                # process dies, so an innocent neighbour would reach max_deliver and be parked instead of
                # the message that kills the process. A stop that abandons what it holds (hand_back False:
                # the bus goes away too) leaves it likewise, without waiting for the fetch.
                next_batch.cancel()
                with contextlib.suppress(BaseException):
                    await next_batch
            elif next_batch is not None:
                # Stopping: the fetch outstanding ends within its timeout; what it brought is nak'ed, so it
                # is redelivered at once instead of after ack_wait.
                try:
                    fetched = await asyncio.wait_for(asyncio.shield(next_batch), self.pull_sub.timeout + 2)
                except BaseException:
                    next_batch.cancel()
                    fetched = []
                if fetched:
                    logger.info("%s: stopping; %d message(s) fetched ahead nak'ed for redelivery",
                                self.config.durable_name, await _nak_all(fetched))
            self.ahead = []

    async def stop(self) -> None:
        """Drain, then stop as FastStream does: no new fetch; the batch being applied is finished
        (acked, or nak'ed if it is held on a failure) and the batch fetched ahead is nak'ed, all within
        DRAIN_SECONDS; then what the server delivered after the last fetch stopped reading is nak'ed
        (`_hand_back_late`); only then is the subscription removed (FastStream would cancel the fetch
        loop and leave what it holds to time out)."""
        self.running = False
        if not self.hand_back and self.fetching is not None:
            self.fetching.cancel()  # the batch being applied is still finished and acked
        for task in list(self.tasks):
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(task), DRAIN_SECONDS)
        # A dead loop leaves what it had to ack_wait, as it leaves its batch fetched ahead.
        if not self.died and self.hand_back:
            with contextlib.suppress(Exception):
                await self._hand_back_late()
        await super().stop()

    async def _hand_back_late(self) -> None:
        """Nak what the server delivered for a pull request after its fetch had returned.

        nats-py's fetch sends a pull request for a whole batch that the server keeps for the fetch's
        timeout, and returns at its own deadline (or once the server says there is nothing more); what
        the server sends for that request meanwhile waits in the subscription's queue
        (`Subscription._pending_queue`) for the next fetch to take first. A stopping consumer makes no
        next fetch, and removing the subscription drops the queue: each of those messages, delivered
        and unanswered, would wait out `ack_wait` before another replica got it. So the queue is read
        until the last request can no longer be served (LATE_DELIVERY_SECONDS past the last fetch's
        deadline) and everything in it is nak'ed. Status messages (the server ending a request) are
        dropped, as fetch drops them."""
        if self.subscription is None:
            return
        sub = self.subscription._sub  # nats-py's own subscription of the pull requests' replies
        late: list[Msg] = []
        while True:
            left = self.read_until + LATE_DELIVERY_SECONDS - time.monotonic()
            try:
                # At least a moment, so what is queued already is read (a zero timeout reads nothing).
                msg = await sub.next_msg(timeout=max(left, 0.01))
            except nats.errors.TimeoutError:
                break
            if not JetStreamContext.is_status_msg(msg):
                late.append(msg)
        if late:
            logger.info("%s: stopping; %d message(s) delivered after the last fetch nak'ed for redelivery",
                        self.config.durable_name, await _nak_all(late))


async def _pull(psub: JetStreamContext.PullSubscription, batch: int, timeout: float) -> list[Msg]:
    """`psub.fetch(batch, timeout)`, the same requests and the same answer, at a fraction of the CPU.

    nats-py's batch fetch (nats/js/client.py, `PullSubscription._fetch_n`) takes every message with
    `Subscription.next_msg`, which makes a task, a uuid4 and an `asyncio.wait_for` timer per message:
    a tenth of the backbone's CPU (docs/benchmarks.md, issue 8 backbone). The server delivers a batch in
    bursts that the connection's reader queues at once, so here a message already queued is taken
    without waiting and only an empty queue is waited on. The protocol is nats-py's: what is queued from
    an earlier request first (status messages dropped), then a `no_wait` request for the rest (with
    `expires` when nothing was queued: the server keeps that one until a message comes, then ends it),
    then, if a status came before any message, one more such request for the time left. Unlike
    nats-py's, that one is `no_wait` too: every request sent here ends once it has delivered."""
    sub = psub._sub
    if sub._conn.is_closed:
        raise nats.errors.ConnectionClosedError
    queue = sub._pending_queue
    start = time.monotonic()
    msgs: list[Msg] = []
    while not queue.empty():
        msg = _take(sub)
        if not JetStreamContext.is_status_msg(msg):  # statuses left over are meant for earlier requests
            msgs.append(msg)
    needed = batch - len(msgs)
    if needed <= 0:
        return msgs
    request: dict[str, Any] = {"batch": needed, "no_wait": True}
    if not msgs:
        request["expires"] = int(timeout * 1_000_000_000) - 100_000
    await sub._conn.publish(psub._nms, json.dumps(request).encode(), psub._deliver)
    await asyncio.sleep(0)
    try:
        msg = await _next(sub, timeout)
    except TimeoutError:
        if msgs:
            return msgs
        raise
    status = JetStreamContext.is_status_msg(msg)
    if status != _HEARTBEAT and JetStreamContext._is_processable_msg(status, msg):
        msgs.append(msg)
        needed -= 1
        needed = await _take_rest(sub, msgs, needed, start + timeout)
    if msgs:
        return msgs
    # A status came before any message: the end of the request above, or of an earlier one. An idle
    # fetch stops reading at its deadline a moment before the server expires its request, so that
    # request's 408 often arrives during the next fetch, the request above still alive. Ask again for the
    # time left, one-shot as above (`no_wait` with `expires`: ended by the server once it has delivered).
    # A request lingering for the whole batch (nats-py's) would outlive this fetch beside the one above,
    # take a later message and keep the fetch that reads it waiting for its end, up to a whole fetch
    # timeout: the idle outliers of 400-900 ms in bench.event_latency (docs/benchmarks.md, latency10).
    left = timeout - (time.monotonic() - start)
    expires = int(left * 1_000_000_000) - 100_000
    if expires <= 0:
        raise TimeoutError
    await sub._conn.publish(psub._nms, json.dumps({"batch": needed, "expires": expires, "no_wait": True}).encode(),
                            psub._deliver)
    await asyncio.sleep(0)
    while True:
        try:
            msg = await _next(sub, timeout - (time.monotonic() - start))
        except TimeoutError:
            if msgs:
                break
            raise
        status = JetStreamContext.is_status_msg(msg)
        if status == _HEARTBEAT:
            continue
        if status:  # the request ended (no messages, timed out) or was cut short
            break
        msgs.append(msg)
        needed -= 1
        if needed == 0:
            return msgs
        break
    await _take_rest(sub, msgs, needed, start + timeout)
    return msgs


async def _take_rest(sub: Any, msgs: list[Msg], needed: int, deadline: float) -> int:
    """Append to `msgs` the rest of what the current pull request brings, until it ends, `needed` more have
    come or the deadline (monotonic) passes; returns how many are still needed."""
    while needed > 0:
        try:
            msg = await _next(sub, deadline - time.monotonic())
        except TimeoutError:
            break
        status = JetStreamContext.is_status_msg(msg)
        if status in _END_OF_REQUEST:
            break
        if status != _HEARTBEAT and JetStreamContext._is_processable_msg(status, msg):
            needed -= 1
            msgs.append(msg)
    return needed


_HEARTBEAT = "100"
_END_OF_REQUEST = ("404", "408")


async def _next(sub: Any, timeout: float) -> Msg:
    """The subscription's next message: at once if it is queued, else waiting up to `timeout`."""
    queue: asyncio.Queue[Msg] = sub._pending_queue
    if not queue.empty():
        return _take(sub)
    if timeout <= 0:
        raise TimeoutError
    msg = await asyncio.wait_for(queue.get(), timeout)
    sub._pending_size -= len(msg.data)
    queue.task_done()
    return msg


def _take(sub: Any) -> Msg:
    msg: Msg = sub._pending_queue.get_nowait()
    sub._pending_size -= len(msg.data)
    sub._pending_queue.task_done()
    return msg


def _stored_at(msg: Msg) -> datetime | None:
    try:
        return msg.metadata.timestamp
    except Exception:  # not a JetStream message (tests feeding the parser directly)
        return None


def _span_context(msg: Msg) -> trace.SpanContext:
    return trace.get_current_span(telemetry.extract_context(msg.headers)).get_span_context()


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
