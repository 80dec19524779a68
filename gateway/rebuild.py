"""Rebuild the gateway's read models from scratch by replaying the event streams."""

from __future__ import annotations

import logging

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from gateway import read_models
from runtime import bus
from runtime.db import create_engine, session_factory
from runtime.service import ServiceDefinition, consumers_for
from runtime.settings import Settings

logger = logging.getLogger(__name__)


async def rebuild(settings: Settings) -> dict[str, int]:
    """Empty the read models and their inbox rows, then feed every event of each producer stream, in
    stream order, through the same consumer code the gateway runs (an ephemeral consumer per stream)."""
    engine = create_engine(settings.database_url, trace_sql=False)
    sessions = session_factory(engine)
    nc = await bus.connect(settings.nats_url, name="gateway-rebuild")
    js = nc.jetstream()
    applied: dict[str, int] = {}
    try:
        async with sessions() as session, session.begin():
            await read_models.reset(session)
        definition = ServiceDefinition(name=read_models.SCHEMA, subscriptions=read_models.SUBSCRIPTIONS)
        for consumer in consumers_for(definition, settings, sessions):
            consumer.bind(js)
            info = await js.stream_info(consumer.stream)
            last = info.state.last_seq
            psub = await js.pull_subscribe(
                "", stream=consumer.stream,
                config=ConsumerConfig(filter_subjects=consumer.subjects, deliver_policy=DeliverPolicy.ALL,
                                      ack_policy=AckPolicy.EXPLICIT, inactive_threshold=30.0,
                                      max_ack_pending=10000),
            )
            try:
                while True:
                    try:
                        msgs = await psub.fetch(500, timeout=2.0)
                    except TimeoutError:
                        break
                    await consumer.process(msgs)
                    if msgs[-1].metadata.sequence.stream >= last or msgs[-1].metadata.num_pending == 0:
                        break
            finally:
                await psub.unsubscribe()
            applied.update(consumer.applied_by)
    finally:
        await nc.close()
        await engine.dispose()
    return applied
