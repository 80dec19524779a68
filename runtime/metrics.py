"""Prometheus metrics from prometheus_client, one registry per process: the standard process metrics
(CPU, memory, open files, start time; Python's GC and version), every consumer's counters and lag,
and whatever the process adds (the gateway: HTTP requests).

Each process answers its own scrape (the gateway at /metrics, a service on METRICS_PORT), so a scrape
asks nothing of other processes; the only bus calls are the process's own consumers' lag, refreshed
before the registry is written out when the last refresh is older than a few seconds. `up` per target,
Prometheus's own, says whether a process answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS

    from runtime.inbox import InboxConsumer

logger = logging.getLogger(__name__)

# Counters kept by each consumer (runtime.inbox.ConsumerStats), exported under partnerops_consumer_<name>_total.
CONSUMER_COUNTERS = {
    "applied": "Events applied (effect committed) since the process started.",
    "duplicates": "Deliveries skipped because the inbox had already applied the event.",
    "redelivered": "Deliveries that were redeliveries of a message seen before.",
    "retried": "Transient failures retried (database or bus unavailable).",
    "dead_lettered": "Messages parked on the dead letters.",
}


def new_registry() -> CollectorRegistry:
    """A registry with the standard process, platform and garbage-collector metrics."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


class ConsumerCollector(Collector):
    """Every consumer's counters and lag, read at scrape time. The lag is JetStream's (one consumer_info a
    consumer), kept for LAG_MAX_AGE seconds: scrapes closer together than that, or at the same moment,
    ask the bus nothing more."""

    LAG_MAX_AGE = 5.0

    def __init__(self, service: str, consumers: Callable[[], Sequence[InboxConsumer]]) -> None:
        self.service = service
        self.consumers = consumers
        self.lag: dict[str, tuple[int | None, int | None]] = {}
        # When the lag was last asked of JetStream (monotonic), and how many times it was.
        self.lag_at: float | None = None
        self.lag_asked = 0
        self._refreshing = asyncio.Lock()

    async def refresh(self, nc: NATS | None, timeout: float = 0.5) -> None:
        """Each consumer's pending and unacknowledged messages, asked of JetStream at once, bounded;
        unless they were asked less than LAG_MAX_AGE seconds ago."""
        async def one(c: InboxConsumer) -> None:
            pending: tuple[int | None, int | None] = (None, None)
            with contextlib.suppress(Exception):
                if nc is not None and nc.is_connected:
                    info = await nc.jetstream().consumer_info(c.stream, c.durable, timeout=timeout)
                    pending = (info.num_pending, info.num_ack_pending)
            self.lag[c.durable] = pending

        async with self._refreshing:
            if self.lag_at is not None and time.monotonic() - self.lag_at < self.LAG_MAX_AGE:
                return
            await asyncio.gather(*(one(c) for c in self.consumers()))
            self.lag_at = time.monotonic()
            self.lag_asked += 1

    def collect(self) -> Iterator[Metric]:
        labels = ["service", "consumer"]
        counters = {key: CounterMetricFamily(f"partnerops_consumer_{key}", text, labels=labels)
                    for key, text in CONSUMER_COUNTERS.items()}
        pending = GaugeMetricFamily("partnerops_consumer_pending",
                                    "Messages not yet delivered to the consumer (its lag).", labels=labels)
        ack_pending = GaugeMetricFamily("partnerops_consumer_ack_pending",
                                        "Messages delivered and not yet acknowledged.", labels=labels)
        alive = GaugeMetricFamily("partnerops_consumer_alive", "1 while the consumer's task runs.", labels=labels)
        for c in self.consumers():
            values = [self.service, c.durable]
            for key, family in counters.items():
                family.add_metric(values, getattr(c.stats, key))
            alive.add_metric(values, 1 if c.alive() else 0)
            waiting, unacked = self.lag.get(c.durable, (None, None))
            if waiting is not None:
                pending.add_metric(values, waiting)
            if unacked is not None:
                ack_pending.add_metric(values, unacked)
        yield from counters.values()
        yield from (pending, ack_pending, alive)


class ProcessMetrics:
    """The registry of one process and what must happen before it is written out."""

    def __init__(self, service: str, consumers: Callable[[], Sequence[InboxConsumer]] = tuple,
                 nc: Callable[[], NATS | None] = lambda: None) -> None:
        self.registry = new_registry()
        self.consumers = ConsumerCollector(service, consumers)
        self.registry.register(self.consumers)
        self._nc = nc

    async def exposition(self) -> bytes:
        await self.consumers.refresh(self._nc())
        return generate_latest(self.registry)


async def serve(metrics: ProcessMetrics, host: str, port: int) -> asyncio.Server:
    """A minimal HTTP endpoint for a process without a web server of its own: GET /metrics."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            method, path = _request_line(request)
            if method != "GET" or path.split("?", 1)[0] != "/metrics":
                _respond(writer, "404 Not Found", b"GET /metrics\n", "text/plain")
            else:
                _respond(writer, "200 OK", await metrics.exposition(), CONTENT_TYPE_LATEST)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    # SO_REUSEPORT: in a rolling restart the new process starts while the one it replaces still drains
    # (runtime.supervisor, Child.replace); both hold the replica's port a moment, each answering for itself.
    server = await asyncio.start_server(answer, host, port, reuse_port=True)
    logger.info("metrics on http://%s:%s/metrics", host, port)
    return server


def _request_line(request: bytes) -> tuple[str, str]:
    parts = request.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    return (parts[0], parts[1]) if len(parts) >= 2 else ("", "")


def _respond(writer: asyncio.StreamWriter, status: str, body: bytes, content_type: str) -> None:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    writer.write(head.encode("latin-1") + body)


def metric_names(text: str) -> Iterable[str]:
    """The metric names in an exposition (for tests and checks)."""
    for line in text.splitlines():
        if line and not line.startswith("#"):
            yield line.split("{", 1)[0].split(" ", 1)[0]
