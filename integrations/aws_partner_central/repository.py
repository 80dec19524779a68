"""All SQL of the AWS sync's schema. Nothing here commits: the caller's transaction does."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from integrations.aws_partner_central.models import Cursor, SyncedOpportunity, SyncProblem, SyncRequest, SyncRun

PASS_KEY = ""
# NOTIFY channel the driver listens on: work was asked for.
WORK_CHANNEL = "aws_sync_work"


class SyncRepository:
    def __init__(self, session: AsyncSession, catalog: str) -> None:
        self.session = session
        self.catalog = catalog

    # ------------------------------------------------------------------------------------ cursor

    async def cursor(self) -> Cursor | None:
        return await self.session.get(Cursor, self.catalog)

    async def advance(self, watermark: datetime | None = None, *, reconcile_due_at: datetime | None = None) -> None:
        """Move the watermark forward (never back) and/or note when a reconciliation was asked for."""
        values: dict[str, object] = {"catalog": self.catalog, "watermark": watermark,
                                     "reconcile_due_at": reconcile_due_at}
        stmt = insert(Cursor).values(**values)
        sets: dict[str, object] = {"updated_at": func.now()}
        if watermark is not None:
            sets["watermark"] = func.greatest(Cursor.watermark, stmt.excluded.watermark)
        if reconcile_due_at is not None:
            sets["reconcile_due_at"] = stmt.excluded.reconcile_due_at
        await self.session.execute(stmt.on_conflict_do_update(index_elements=[Cursor.catalog], set_=sets))

    # --------------------------------------------------------------------------------- versions

    async def versions(self, ids: list[str]) -> dict[str, datetime]:
        if not ids:
            return {}
        rows = await self.session.execute(
            select(SyncedOpportunity.opportunity_id, SyncedOpportunity.last_modified)
            .where(SyncedOpportunity.catalog == self.catalog, SyncedOpportunity.opportunity_id.in_(ids)))
        return {r.opportunity_id: r.last_modified for r in rows}

    async def record_version(self, opportunity_id: str, last_modified: datetime, event_id: uuid.UUID,
                             review_status: str | None) -> bool:
        """Record a version as published unless an equal or newer one was; True when it is new (the
        caller then stages its event in the same transaction)."""
        stmt = insert(SyncedOpportunity).values(
            catalog=self.catalog, opportunity_id=opportunity_id, last_modified=last_modified, event_id=event_id,
            review_status=review_status)
        stmt = stmt.on_conflict_do_update(
            index_elements=[SyncedOpportunity.catalog, SyncedOpportunity.opportunity_id],
            set_={"last_modified": stmt.excluded.last_modified, "event_id": stmt.excluded.event_id,
                  "review_status": stmt.excluded.review_status, "published_at": func.now()},
            where=SyncedOpportunity.last_modified < stmt.excluded.last_modified,
        ).returning(SyncedOpportunity.opportunity_id)
        return (await self.session.execute(stmt)).first() is not None

    # --------------------------------------------------------------------------------- problems

    async def record_problem(self, opportunity_id: str, last_modified: datetime | None, reason: str) -> None:
        stmt = insert(SyncProblem).values(catalog=self.catalog, opportunity_id=opportunity_id[:40],
                                          last_modified=last_modified, reason=reason[:2000])
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[SyncProblem.catalog, SyncProblem.opportunity_id],
            set_={"reason": stmt.excluded.reason, "last_modified": stmt.excluded.last_modified, "at": func.now()}))

    async def clear_problem(self, opportunity_id: str) -> None:
        await self.session.execute(delete(SyncProblem).where(
            SyncProblem.catalog == self.catalog, SyncProblem.opportunity_id == opportunity_id))

    async def problems(self, limit: int = 50) -> list[SyncProblem]:
        return list(await self.session.scalars(
            select(SyncProblem).where(SyncProblem.catalog == self.catalog)
            .order_by(SyncProblem.at.desc()).limit(limit)))

    # --------------------------------------------------------------------------------- requests

    async def request(self, kind: str, key: str, reason: str) -> bool:
        """Ask for work; True when it was not waiting already."""
        stmt = insert(SyncRequest).values(kind=kind, key=key, reason=reason[:200]).on_conflict_do_nothing()
        return bool((await self.session.execute(stmt.returning(SyncRequest.kind))).first())

    async def wake_driver(self) -> None:
        # Delivered when the transaction commits: the driver then looks for work at once.
        await self.session.execute(text("SELECT pg_notify(:ch, '')"), {"ch": WORK_CHANNEL})

    async def next_request(self) -> SyncRequest | None:
        """The next due request: refreshes of one record before whole passes (they are what a person is
        waiting for), oldest first."""
        return await self.session.scalar(
            select(SyncRequest).where(SyncRequest.not_before <= func.now())
            .order_by(text("kind = 'refresh' DESC"), SyncRequest.requested_at).limit(1)
            .with_for_update(skip_locked=True))

    async def done(self, request: SyncRequest) -> None:
        await self.session.execute(delete(SyncRequest).where(
            SyncRequest.kind == request.kind, SyncRequest.key == request.key))

    async def later(self, request: SyncRequest, delay: timedelta) -> None:
        await self.session.execute(
            update(SyncRequest).where(SyncRequest.kind == request.kind, SyncRequest.key == request.key)
            .values(attempts=SyncRequest.attempts + 1, not_before=func.now() + delay))

    async def pending(self, kind: str) -> int:
        return int(await self.session.scalar(
            select(func.count()).select_from(SyncRequest).where(SyncRequest.kind == kind)) or 0)

    # ------------------------------------------------------------------------------------- runs

    async def start_run(self, kind: str) -> int:
        run = SyncRun(catalog=self.catalog, kind=kind)
        self.session.add(run)
        await self.session.flush()
        return run.id

    async def finish_run(self, run_id: int, *, ok: bool, seen: int, published: int, unchanged: int, failed: int,
                         error: str | None) -> None:
        await self.session.execute(update(SyncRun).where(SyncRun.id == run_id).values(
            finished_at=func.now(), ok=ok, seen=seen, published=published, unchanged=unchanged, failed=failed,
            error=error[:2000] if error else None))

    async def runs(self, limit: int = 20) -> list[SyncRun]:
        return list(await self.session.scalars(
            select(SyncRun).where(SyncRun.catalog == self.catalog).order_by(SyncRun.id.desc()).limit(limit)))

    async def last_success(self) -> datetime | None:
        return await self.session.scalar(
            select(func.max(SyncRun.finished_at)).where(SyncRun.catalog == self.catalog, SyncRun.ok.is_(True),
                                                        SyncRun.kind != "refresh"))

    async def published_since(self, since: datetime) -> int:
        return int(await self.session.scalar(
            select(func.count()).select_from(SyncedOpportunity)
            .where(SyncedOpportunity.catalog == self.catalog, SyncedOpportunity.published_at >= since)) or 0)
