"""The notifications service writes to people the gateway knows: this sends it the gateway's directory
(id, email, name, role, active, time zone) when the gateway starts, when someone is added or changed,
and on the hourly housekeeping tick, so a change missed while notifications was down is caught up.

The whole list each time (a few hundred rows): the receiver replaces its copy, so nothing can drift."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import select

from contracts import notifications as n
from gateway.models import User
from runtime.commands import send
from runtime.service import RunningService

logger = logging.getLogger(__name__)

_changed: asyncio.Event | None = None


def _event() -> asyncio.Event:
    global _changed
    if _changed is None:
        _changed = asyncio.Event()
    return _changed


def changed() -> None:
    """Someone was added or changed (or the hourly tick came): send the directory soon."""
    _event().set()


# Not a request: the gateway process itself sends its directory, so the actor names it (no input involved).
SELF = "system:gateway-directory"


async def push(running: RunningService, actor: str = SELF) -> n.PeopleSynced:
    async with running.sessions() as session:
        # The team only: partner users get no alerts or digests (notifications knows team roles).
        users = list(await session.scalars(select(User).where(User.role != "partner").order_by(User.email)))
    people = [n.Member(user_id=str(u.id), email=u.email, name=u.name, role=n.Role(u.role), active=u.active,
                       time_zone=u.time_zone) for u in users]
    return await send(running.nc, n.SyncPeople(people=people, actor=actor), timeout=10)  # type: ignore[no-any-return]


async def directory_pusher(running: RunningService) -> None:
    """The gateway's worker: sends the directory whenever `changed()` was called (and once at start),
    retrying with a growing pause while the notifications service does not answer."""
    event = _event()
    event.set()
    pause = 2.0
    while not running.stop.is_set():
        waiter = asyncio.ensure_future(event.wait())
        stopper = asyncio.ensure_future(running.stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()
        if running.stop.is_set():
            return
        event.clear()
        try:
            synced = await push(running)
            pause = 2.0
            logger.info("directory sent to notifications: %d people", synced.people)
        except Exception as exc:  # notifications not (yet) answering: try again later
            logger.info("directory not sent to notifications (%s); trying again in %.0fs", exc, pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running.stop.wait(), timeout=pause)
            pause = min(pause * 2, 300.0)
            event.set()
