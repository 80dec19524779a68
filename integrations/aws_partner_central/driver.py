"""The AWS worker's driver: one instance at a time (a Postgres advisory lock) takes the waiting
requests — refreshes of one opportunity first, then passes — and runs them against AWS. Work AWS
cannot do now waits and is tried again after a growing pause; it is never dropped. Requests come
from the bus (the schedule's ticks, the gateway's refresh command) through `handlers.py`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.aws_partner_central.client import AwsRefused, AwsUnavailable, PartnerCentral, make_client
from integrations.aws_partner_central.inbound import Inbound
from integrations.aws_partner_central.invitations import Invitations
from integrations.aws_partner_central.models import SyncRequest
from integrations.aws_partner_central.outbound import HOLD_PAUSE, Held, Outbound
from integrations.aws_partner_central.repository import PASS_KEY, WORK_CHANNEL, SyncRepository
from integrations.aws_partner_central.settings import AwsSyncSettings, get_aws_settings
from integrations.aws_partner_central.sharing import Sharing
from runtime.db import plain_dsn
from runtime.outbox import wait_any
from runtime.service import RunningService

logger = logging.getLogger(__name__)

PASS_KINDS = ("incremental", "reconcile")
MAX_PAUSE = timedelta(minutes=30)


def pause_after(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min ... up to 30 min between tries of work AWS could not do."""
    return min(timedelta(seconds=30) * 2 ** min(attempts, 10), MAX_PAUSE)


@dataclass
class Driver:
    sessions: async_sessionmaker[AsyncSession]
    dsn: str
    settings: AwsSyncSettings
    inbound: Inbound
    outbound: Outbound
    invitations: Invitations
    sharing: Sharing
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    is_leader: bool = False

    def repo(self, session: AsyncSession) -> SyncRepository:
        return SyncRepository(session, self.settings.catalog)

    async def run(self, stop: asyncio.Event) -> None:
        """Run waiting work while this instance holds the lead; other instances wait for it."""
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn)
                while not stop.is_set() and not await conn.fetchval(
                        "SELECT pg_try_advisory_lock(hashtext('aws-sync-driver'))"):
                    await wait_any(None, stop, self.settings.poll_seconds * 5)
                if stop.is_set():
                    return
                self.is_leader = True
                await conn.add_listener(WORK_CHANNEL, lambda *_: self.wake.set())
                await self.first_start()
                while not stop.is_set():
                    self.wake.clear()
                    if not await self.run_next():
                        await wait_any(self.wake, stop, self.settings.poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database gone for a moment: take the lead again
                logger.warning("aws-sync driver: %s; again in 2 s", exc)
                await wait_any(None, stop, 2.0)
            finally:
                self.is_leader = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()

    async def first_start(self) -> None:
        async with self.sessions.begin() as session:
            cursor = await self.repo(session).cursor()
            if cursor is None or cursor.watermark is None:
                # A new installation pulls at once rather than at the first tick.
                await self.repo(session).request("incremental", PASS_KEY, "first start")

    async def run_next(self) -> bool:
        """Take one due request and do it; False when none is due."""
        async with self.sessions.begin() as session:
            request = await self.repo(session).next_request()
            if request is None:
                return False
            # A detached copy: the row lock ends with this transaction, the work runs outside it.
            taken = SyncRequest(kind=request.kind, key=request.key, reason=request.reason, attempts=request.attempts)
        try:
            if taken.kind == "refresh":
                await self.inbound.refresh(taken.key)
            elif taken.kind == "push":
                await self.outbound.push(taken.key)
            elif taken.kind == "invitations":
                await self.invitations.refresh()
            elif taken.kind == "decide":
                await self.invitations.decide(taken.key)
            elif taken.kind == "share":
                await self.sharing.push(uuid.UUID(taken.key))
            elif taken.kind in PASS_KINDS:
                await self.inbound.run_pass(taken.kind)
        except Held:
            async with self.sessions.begin() as session:
                await self.repo(session).later(taken, HOLD_PAUSE)
            return True
        except (AwsUnavailable, AwsRefused) as exc:
            delay = pause_after(taken.attempts)
            logger.warning("aws-sync %s %s: %s; tried again in %s", taken.kind, taken.key or "pass", exc, delay)
            async with self.sessions.begin() as session:
                await self.repo(session).later(taken, delay)
            return True
        async with self.sessions.begin() as session:
            await self.repo(session).done(taken)
        return True


def driver(aws: PartnerCentral | None = None,
           settings: AwsSyncSettings | None = None) -> Callable[[RunningService], Awaitable[None]]:
    """The driver as a worker task of the service (`ServiceDefinition.workers`); tests give `aws`."""

    async def aws_driver(running: RunningService) -> None:
        s = settings or get_aws_settings()
        client = aws or PartnerCentral(make_client(s), s.catalog)
        inbound = Inbound(running.sessions, client, page_size=s.page_size, overlap=timedelta(seconds=s.overlap_seconds))
        outbound = Outbound(running.sessions, client)
        invitations = Invitations(running.sessions, client, page_size=s.page_size)
        await Driver(running.sessions, plain_dsn(running.settings.database_url), s, inbound, outbound,
                     invitations, Sharing(running.sessions, client)).run(running.stop)

    return aws_driver
