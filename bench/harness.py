"""What every benchmark needs: servers of its own (or the given ones), timing, progress logging."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from runtime.embedded import EmbeddedNats, EmbeddedPostgres
from runtime.testing import test_servers


@dataclass
class Servers:
    admin_url: str
    nats_url: str
    how: str


@contextlib.contextmanager
def servers(data_dir: Path) -> Iterator[Servers]:
    """Existing servers from TEST_DATABASE_URL / TEST_NATS_URL (through the test harness), otherwise an
    embedded NATS and Postgres of our own, with their data removed afterwards."""
    if os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_NATS_URL"):
        with test_servers(data_dir) as s:
            yield Servers(admin_url=s.admin_url, nats_url=s.nats_url, how=s.how)
        return
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    nats = pg = None
    try:
        nats = EmbeddedNats(store_dir=data_dir / "nats").start()
        pg = EmbeddedPostgres(base_dir=data_dir / "postgres").start()
        yield Servers(admin_url=pg.url(), nats_url=nats.url, how="embedded")
    finally:
        if nats is not None:
            nats.stop()
        if pg is not None:
            pg.stop(mode="immediate")
        shutil.rmtree(data_dir, ignore_errors=True)


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def rate(n: float, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


@dataclass
class Phase:
    name: str
    count: int
    seconds: float
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return rate(self.count, self.seconds)

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "seconds": round(self.seconds, 3), "per_second": round(self.per_second, 1),
                "note": self.note, **self.extra}


async def wait_until(progress: Callable[[], Awaitable[int]], target: int, what: str, *,
                     interval: float = 0.05, stall: float = 60.0, report_every: float = 5.0) -> float:
    """Poll `progress` until it reaches `target`; returns the monotonic time it did. Fails on a stall."""
    last_value, last_change, last_report = -1, time.monotonic(), time.monotonic()
    while True:
        value = await progress()
        now = time.monotonic()
        if value >= target:
            return now
        if value != last_value:
            last_value, last_change = value, now
        elif now - last_change > stall:
            raise RuntimeError(f"{what}: stuck at {value} of {target} for {stall:.0f}s")
        if now - last_report > report_every:
            log(f"  {what}: {value} / {target}")
            last_report = now
        await asyncio.sleep(interval)
