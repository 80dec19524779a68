"""A process running one outbox relay and one inbox consumer on a scratch schema and stream, so fault
tests can SIGKILL it mid-stream. Usage: python -m tests.faults.worker DSN NATS_URL SCHEMA STREAM SUBJECT_PREFIX"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from sqlalchemy import text

from contracts import deadletters as dl
from contracts.base import StreamSpec
from runtime import bus
from runtime.db import create_engine, plain_dsn
from runtime.outbox import OutboxRelay
from runtime.testing import ping_event
from tests.backbone.helpers import consumer_for, counting_handler


async def main(dsn: str, nats_url: str, schema: str, stream: str, prefix: str) -> None:
    # The test reads this log to know when the worker has felt an outage (a lost broker, an unreachable database).
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    spec = StreamSpec(name=stream, subjects=(f"{prefix}.>",))
    engine = create_engine(dsn, trace_sql=False)
    nc = await bus.connect(nats_url, name="fault-worker")
    js = nc.jetstream()
    await bus.ensure_streams(js, [spec, dl.STREAM])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    relay = OutboxRelay(engine=engine, dsn=plain_dsn(dsn), schema=schema, js=js, batch=50, poll_seconds=0.5,
                        publish_timeout=1.0)
    async def pace(session) -> None:
        # A few ms of work per event keeps the stream flowing long enough to be killed mid-way.
        await session.execute(text("SELECT pg_sleep(0.004)"))

    consumer = consumer_for(js, engine, schema, (ping_event(spec),), handle=counting_handler(schema, before=pace),
                            batch=20, ack_wait=2.0, max_deliver=50)
    print("worker ready", flush=True)
    await asyncio.gather(relay.run(stop), consumer.run(stop))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
