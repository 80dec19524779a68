"""One run of a piece of work per key at a time in a process; whoever asks meanwhile shares it.

The gateway had this twice with slightly different rules (the people directory's reload and the KPI
snapshots' computations): each kept its own task table and its own clean-up. The rules that differ
(whether a result started before the caller arrived is good enough for it) stay with the callers;
starting, sharing and forgetting a run live here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Flight(Generic[T]):
    """A run under way (or just finished): when it started (time.monotonic()) and its task."""

    started: float
    task: asyncio.Task[T]

    async def result(self) -> T:
        # Shielded: a waiter that goes away (its client disconnected) leaves the others their result.
        return await asyncio.shield(self.task)


class SingleFlight(Generic[K, T]):
    """A table of the runs under way, by key. A run is forgotten when it ends, so the next caller for
    its key starts a new one. `on_failure` sees a run's exception (the waiters get it too); without
    it the exception is only retrieved, so the loop does not report it as never retrieved when
    nobody waited (a background run)."""

    def __init__(self, on_failure: Callable[[K, BaseException], None] | None = None) -> None:
        self._running: dict[K, Flight[T]] = {}
        self._on_failure = on_failure

    def running(self, key: K) -> bool:
        return key in self._running

    def flight(self, key: K, start: Callable[[], Awaitable[T]]) -> Flight[T]:
        """The key's run under way, or a new one started with `start()`."""
        flight = self._running.get(key)
        if flight is None:
            task: asyncio.Task[T] = asyncio.get_running_loop().create_task(_awaited(start))
            flight = self._running[key] = Flight(time.monotonic(), task)
            task.add_done_callback(lambda _t, k=key, f=flight: self._ended(k, f))
        return flight

    def _ended(self, key: K, flight: Flight[T]) -> None:
        if self._running.get(key) is flight:
            del self._running[key]
        if flight.task.cancelled():
            return
        error = flight.task.exception()  # retrieved: a failure reaches the waiters, not the loop's handler
        if error is not None and self._on_failure is not None:
            self._on_failure(key, error)


async def _awaited(start: Callable[[], Awaitable[T]]) -> T:
    return await start()
