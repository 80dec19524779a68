"""Publishing to a test's private NATS and waiting until a service has taken in everything published:
shared by the service test packages."""

from __future__ import annotations

import uuid

from nats.aio.client import Client as NATS

from contracts.base import Event
from runtime import deadletter
from runtime.bus_auth import subject_matches
from runtime.inbox import InboxConsumer
from runtime.service import RunningService
from runtime.testing import eventually

# (server, stream, subject, sequence) of everything the tests published, so `settled` knows what must have
# been seen (each test module has a NATS server of its own).
_published: list[tuple[str, str, str, int]] = []


def _server(nc: NATS) -> str:
    # The server's own id, not its address: a later module's private server may get a port an earlier one
    # had, and that server's higher stream sequences then looked unseen for ever (a full run timed out on it).
    url = f"{nc.connected_url.hostname}:{nc.connected_url.port}" if nc.connected_url else ""
    return str(nc._server_info.get("server_id") or url)


def inbox_key(consumer: InboxConsumer, model: type[Event]) -> str:
    """The name the consumer's subscription to `model` keeps its inbox rows and dead letters under."""
    return next(s.inbox_key for s in consumer.subs if s.subject == model.subject)


async def publish(nc: NATS, event: Event, *, data: bytes | None = None, msg_id: str | None = None,
                  subject: str | None = None) -> None:
    subject = subject or event.subject
    ack = await nc.jetstream().publish(subject, data if data is not None else event.model_dump_json().encode(),
                                       headers={"Nats-Msg-Id": msg_id or str(event.event_id)})
    _published.append((_server(nc), ack.stream, subject, ack.seq))


async def settled(nc: NATS, service: RunningService) -> None:
    """Every consumer of the service has processed and acknowledged everything published so far.

    A consumer's pending count alone is not enough: the server counts a new message for its consumers
    after it has acknowledged the publish, so just after `publish` a consumer can show nothing pending
    for a message it has not seen yet. It must also have delivered the last message published for it."""
    js, here = nc.jetstream(), _server(nc)

    async def caught_up() -> bool:
        behind = 0
        for consumer in service.consumers:
            info = await js.consumer_info(consumer.stream, consumer.durable)
            filters = info.config.filter_subjects or [info.config.filter_subject or ">"]
            last = max((seq for server, stream, subject, seq in _published
                        if server == here and stream == consumer.stream
                        and any(subject_matches(f, subject) for f in filters)),
                       default=0)
            behind += info.num_pending + info.num_ack_pending + (info.delivered.stream_seq < last)
        return behind == 0

    await eventually(caught_up, "the service to take in everything published")


async def all_parked(nc: NATS, service: RunningService, event: Event, bodies: list[bytes]) -> None:
    """Publishes each body as `event`'s subject and asserts that every one is parked as a dead letter with
    a reason while the consumer goes on, and that none of them was applied."""
    js = nc.jetstream()
    consumer = service.consumer_of(event.subject)
    key = inbox_key(consumer, type(event))
    before = len(await deadletter.list_all(js, consumer=key))
    applied = consumer.stats.applied
    for body in bodies:
        await publish(nc, event, data=body, msg_id=str(uuid.uuid4()))
    await settled(nc, service)
    letters = (await deadletter.list_all(js, consumer=key))[before:]
    assert len(letters) == len(bodies), [x.reason for x in letters]
    assert all(x.reason and x.subject == event.subject for x in letters)
    assert consumer.stats.applied == applied


def bus_goes_too(*running: RunningService) -> None:
    """Mark services (or a gateway's `app.state.running`) whose NATS server stops with them, a test
    module's or package's own: stopping them abandons what their consumers hold instead of handing it
    back to the bus, which waits out each consumer's last fetch and its late deliveries (a second or two
    per service, most of a module's teardown). Not for a service stopped while its bus lives on."""
    for r in running:
        r.hand_back = False
