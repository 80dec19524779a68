"""One computation of a kept KPI snapshot at a time per scope (gateway.read_models.kpi_snapshots.Computations):
requests arriving while one runs wait for it instead of computing the same figures again, and none gets
figures computed before it arrived unless they are still current."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.read_models.kpi_snapshots import Computations


class Figures:
    """Computes "<scope>#<n>" for the n-th computation, when released."""

    def __init__(self) -> None:
        self.computed = 0
        self.rechecked = 0
        self.release = asyncio.Event()
        self.kept: str | None = None  # the snapshot last computed
        self.current = True  # whether the recheck finds it current (nothing changed since it was computed)
        self.fail: Exception | None = None

    def compute(self, scope: str):
        async def run() -> str:
            self.computed += 1
            n = self.computed
            await self.release.wait()
            if self.fail is not None:
                raise self.fail
            self.kept = f"{scope}#{n}"
            return self.kept
        return run

    async def recheck(self) -> str | None:
        self.rechecked += 1
        return self.kept if self.current else None


async def _started(computations: Computations, scope: str) -> None:
    while not computations.running(scope):
        await asyncio.sleep(0)


async def test_requests_that_arrived_before_it_started_share_one_computation():
    computations, figures = Computations(), Figures()
    arrived = time.monotonic()
    waiters = [asyncio.ensure_future(computations.computed("owner:a", arrived, figures.compute("owner:a"),
                                                           figures.recheck)) for _ in range(16)]
    await _started(computations, "owner:a")
    figures.release.set()
    assert await asyncio.gather(*waiters) == ["owner:a#1"] * 16
    assert (figures.computed, figures.rechecked) == (1, 0)
    assert not computations.running("owner:a")


async def test_requests_arriving_during_a_computation_recheck_and_recompute_at_most_once():
    computations, figures = Computations(), Figures()
    first = asyncio.ensure_future(computations.computed("department", time.monotonic(), figures.compute("department"),
                                                        figures.recheck))
    await _started(computations, "department")
    await asyncio.sleep(0.01)
    later = time.monotonic()  # after the computation started: it may have read the generations too early

    # The snapshot it kept is still current: the later requests take it (a statement each, no computation).
    current = [asyncio.ensure_future(computations.computed("department", later, figures.compute("department"),
                                                           figures.recheck)) for _ in range(8)]
    figures.release.set()
    assert await first == "department#1"
    assert await asyncio.gather(*current) == ["department#1"] * 8
    assert (figures.computed, figures.rechecked) == (1, 8)

    # Changed since (what it kept is not current): one computation more for all of them, not one each.
    figures.release.clear()
    figures.current = False
    first = asyncio.ensure_future(computations.computed("department", time.monotonic(), figures.compute("department"),
                                                        figures.recheck))
    await _started(computations, "department")
    await asyncio.sleep(0.01)
    later = time.monotonic()
    stale = [asyncio.ensure_future(computations.computed("department", later, figures.compute("department"),
                                                         figures.recheck)) for _ in range(8)]
    await asyncio.sleep(0.01)
    figures.release.set()
    assert await first == "department#2"
    assert await asyncio.gather(*stale) == ["department#3"] * 8
    assert (figures.computed, figures.rechecked) == (3, 16)


async def test_a_failure_reaches_every_waiter_and_the_next_request_computes_again():
    computations, figures = Computations(), Figures()
    figures.fail = RuntimeError("the database went away")
    arrived = time.monotonic()
    waiters = [asyncio.ensure_future(computations.computed("owner:b", arrived, figures.compute("owner:b"),
                                                           figures.recheck)) for _ in range(4)]
    await _started(computations, "owner:b")
    figures.release.set()
    for outcome in await asyncio.gather(*waiters, return_exceptions=True):
        assert isinstance(outcome, RuntimeError)
    assert not computations.running("owner:b")
    figures.fail = None
    assert await computations.computed("owner:b", time.monotonic(), figures.compute("owner:b"),
                                       figures.recheck) == "owner:b#2"


async def test_a_waiter_that_goes_away_leaves_the_computation_to_the_others():
    computations, figures = Computations(), Figures()
    arrived = time.monotonic()
    gone = asyncio.ensure_future(computations.computed("owner:c", arrived, figures.compute("owner:c"),
                                                       figures.recheck))
    await _started(computations, "owner:c")
    staying = asyncio.ensure_future(computations.computed("owner:c", arrived, figures.compute("owner:c"),
                                                          figures.recheck))
    await asyncio.sleep(0)
    gone.cancel()  # the client that started it disconnected
    with pytest.raises(asyncio.CancelledError):
        await gone
    figures.release.set()
    assert await staying == "owner:c#1"
    assert figures.computed == 1


async def test_scopes_are_computed_independently():
    computations, figures = Computations(), Figures()
    arrived = time.monotonic()
    a = asyncio.ensure_future(computations.computed("owner:a", arrived, figures.compute("owner:a"), figures.recheck))
    b = asyncio.ensure_future(computations.computed("owner:b", arrived, figures.compute("owner:b"), figures.recheck))
    await _started(computations, "owner:a")
    await _started(computations, "owner:b")
    figures.release.set()
    assert await asyncio.gather(a, b) == ["owner:a#1", "owner:b#2"]
    assert (figures.computed, figures.rechecked) == (2, 0)
