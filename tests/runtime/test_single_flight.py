"""runtime.single_flight: one run per key at a time, shared by whoever asks meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from runtime.single_flight import SingleFlight


async def test_callers_meanwhile_share_one_run_and_the_next_caller_starts_another() -> None:
    started = 0
    release = asyncio.Event()

    async def work() -> int:
        nonlocal started
        started += 1
        await release.wait()
        return started

    flights: SingleFlight[str, int] = SingleFlight()
    first, second = flights.flight("k", work), flights.flight("k", work)
    assert first is second and flights.running("k")
    release.set()
    assert await first.result() == 1 and await second.result() == 1
    await asyncio.sleep(0)  # the done callback runs on the next turn of the loop
    assert not flights.running("k")
    assert await flights.flight("k", work).result() == 2


async def test_keys_run_independently() -> None:
    gate = asyncio.Event()

    async def held() -> str:
        await gate.wait()
        return "held"

    async def quick() -> str:
        return "quick"

    flights: SingleFlight[str, str] = SingleFlight()
    slow = flights.flight("a", held)
    assert await flights.flight("b", quick).result() == "quick"
    assert not slow.task.done()
    gate.set()
    assert await slow.result() == "held"


async def test_a_failure_reaches_the_waiters_and_on_failure_and_is_forgotten() -> None:
    seen: list[tuple[str, str]] = []

    async def broken() -> None:
        raise RuntimeError("no database")

    flights: SingleFlight[str, None] = SingleFlight(on_failure=lambda k, e: seen.append((k, str(e))))
    flight = flights.flight("people", broken)
    with pytest.raises(RuntimeError, match="no database"):
        await flight.result()
    await asyncio.sleep(0)
    assert seen == [("people", "no database")]
    assert not flights.running("people")


async def test_a_waiter_that_goes_away_leaves_the_run_to_the_others() -> None:
    gate = asyncio.Event()

    async def work() -> str:
        await gate.wait()
        return "done"

    flights: SingleFlight[str, str] = SingleFlight()
    flight = flights.flight("k", work)
    impatient = asyncio.create_task(flight.result())
    await asyncio.sleep(0)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    gate.set()
    assert await flight.result() == "done"
