"""A service process run by `runtime.service.main`, whose one consumer task dies on an event with key
"die" (a BaseException, as a bug in the runtime would raise): fault tests check that the process then
exits non-zero, so its supervisor restarts it. DATABASE_URL and NATS_URL come from the environment.
WORKER_SLOW_MS makes every event take that long (a batch is then in flight when SIGTERM comes);
WORKER_FAIL_KEY makes events of that key fail (retried with a backoff: held) in this process.
Usage: python -m tests.faults.service_worker SCHEMA STREAM SUBJECT_PREFIX"""

from __future__ import annotations

import os
import sys

from sqlalchemy import text

from contracts.base import StreamSpec
from runtime import service
from runtime.inbox import SimulatedCrash, Subscription
from runtime.testing import ping_event
from tests.backbone.helpers import counting_handler


def main(schema: str, stream: str, prefix: str) -> None:
    ping = ping_event(StreamSpec(name=stream, subjects=(f"{prefix}.>",)))
    count = counting_handler(schema)
    slow = float(os.environ.get("WORKER_SLOW_MS", "0")) / 1000
    fail_key = os.environ.get("WORKER_FAIL_KEY")

    async def handle(session, event) -> None:  # type: ignore[no-untyped-def]
        if event.key == "die":
            raise SimulatedCrash("the consumer task dies")
        if event.key == fail_key:
            raise RuntimeError("this process cannot apply it")
        if slow:
            await session.execute(text("SELECT pg_sleep(:s)"), {"s": slow})
        await count(session, event)

    service.main(service.ServiceDefinition(
        name=schema, subscriptions=(Subscription(consumer=schema, models=(ping,), handle=handle),)))


if __name__ == "__main__":
    main(*sys.argv[1:4])
