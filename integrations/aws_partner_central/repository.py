"""All SQL of the AWS sync's schema. Nothing here commits: the caller's transaction does."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from integrations.aws_partner_central.models import (
    Cursor,
    Invitation,
    OutboundEdit,
    Share,
    SyncedOpportunity,
    SyncProblem,
    SyncRequest,
    SyncRun,
)

PASS_KEY = ""
# Outbound edits not sent yet: to send, or held while ACE has the record locked.
WAITING = ("queued", "held")
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
                             review_status: str | None, fields: dict[str, Any] | None = None) -> bool:
        """Record a version as published unless an equal or newer one was; True when it is new (the
        caller then stages its event in the same transaction)."""
        stmt = insert(SyncedOpportunity).values(
            catalog=self.catalog, opportunity_id=opportunity_id, last_modified=last_modified, event_id=event_id,
            review_status=review_status, fields=fields)
        stmt = stmt.on_conflict_do_update(
            index_elements=[SyncedOpportunity.catalog, SyncedOpportunity.opportunity_id],
            set_={"last_modified": stmt.excluded.last_modified, "event_id": stmt.excluded.event_id,
                  "review_status": stmt.excluded.review_status, "fields": stmt.excluded.fields,
                  "published_at": func.now()},
            where=SyncedOpportunity.last_modified < stmt.excluded.last_modified,
        ).returning(SyncedOpportunity.opportunity_id)
        return (await self.session.execute(stmt)).first() is not None

    async def published(self, opportunity_id: str) -> tuple[dict[str, Any] | None, datetime] | None:
        """The fields and last-modified time of the version last published, if any."""
        row = (await self.session.execute(
            select(SyncedOpportunity.fields, SyncedOpportunity.last_modified).where(
                SyncedOpportunity.catalog == self.catalog, SyncedOpportunity.opportunity_id == opportunity_id))).first()
        return (row.fields, row.last_modified) if row else None

    # ------------------------------------------------------------------------------ outbound edits

    async def queue_edit(self, opportunity_id: str, deal_id: uuid.UUID, fields: dict[str, Any],
                         base: dict[str, Any], edited_at: datetime) -> None:
        """The newest wanted values of a deal; a later edit merges into one still waiting (keeping what
        the deal held when each field was first edited)."""
        waiting = await self.edit(opportunity_id, lock=True)
        if waiting is not None and waiting.status in WAITING:
            waiting.fields = {**waiting.fields, **fields}
            waiting.base = {**base, **waiting.base}
            waiting.edited_at = max(waiting.edited_at, edited_at)
            waiting.status, waiting.reason, waiting.updated_at = "queued", None, func.now()
            return
        stmt = insert(OutboundEdit).values(catalog=self.catalog, opportunity_id=opportunity_id, deal_id=deal_id,
                                           fields=fields, base=base, edited_at=edited_at, status="queued")
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[OutboundEdit.catalog, OutboundEdit.opportunity_id],
            set_={"deal_id": stmt.excluded.deal_id, "fields": stmt.excluded.fields, "base": stmt.excluded.base,
                  "edited_at": stmt.excluded.edited_at, "status": "queued", "reason": None, "updated_at": func.now(),
                  "sent_at": None}))

    async def edit(self, opportunity_id: str, *, lock: bool = False) -> OutboundEdit | None:
        query = select(OutboundEdit).where(OutboundEdit.catalog == self.catalog,
                                           OutboundEdit.opportunity_id == opportunity_id)
        return await self.session.scalar(query.with_for_update() if lock else query)

    async def set_edit(self, opportunity_id: str, status: str, reason: str | None = None, *,
                       sent: bool = False) -> None:
        values: dict[str, Any] = {"status": status, "reason": reason[:2000] if reason else None,
                                  "updated_at": func.now()}
        if sent:
            values["sent_at"] = func.now()
        await self.session.execute(update(OutboundEdit).where(
            OutboundEdit.catalog == self.catalog, OutboundEdit.opportunity_id == opportunity_id).values(**values))

    async def waiting_edits(self) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(OutboundEdit).where(
            OutboundEdit.catalog == self.catalog, OutboundEdit.status.in_(WAITING))) or 0)

    async def sent_since(self, since: datetime) -> int:
        return int(await self.session.scalar(select(func.count()).select_from(OutboundEdit).where(
            OutboundEdit.catalog == self.catalog, OutboundEdit.sent_at >= since)) or 0)

    async def edits(self, limit: int = 50) -> list[OutboundEdit]:
        return list(await self.session.scalars(
            select(OutboundEdit).where(OutboundEdit.catalog == self.catalog)
            .order_by(OutboundEdit.updated_at.desc()).limit(limit)))

    # ---------------------------------------------------------------------------------- invitations

    async def upsert_invitation(self, invitation_id: str, **values: Any) -> None:
        stmt = insert(Invitation).values(catalog=self.catalog, invitation_id=invitation_id, **values)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[Invitation.catalog, Invitation.invitation_id],
            set_={**{k: getattr(stmt.excluded, k) for k in values}, "seen_at": func.now()}))

    async def invitation(self, invitation_id: str, *, lock: bool = False) -> Invitation | None:
        query = select(Invitation).where(Invitation.catalog == self.catalog,
                                         Invitation.invitation_id == invitation_id)
        return await self.session.scalar(query.with_for_update() if lock else query)

    async def invitations(self, limit: int = 50) -> list[Invitation]:
        # Those waiting for an answer first, then the newest.
        return list(await self.session.scalars(
            select(Invitation).where(Invitation.catalog == self.catalog)
            .order_by(text("status = 'PENDING' DESC"), Invitation.invited_at.desc().nulls_last()).limit(limit)))

    # --------------------------------------------------------------------------------------- shares

    async def share(self, deal_id: uuid.UUID, *, lock: bool = False) -> Share | None:
        query = select(Share).where(Share.catalog == self.catalog, Share.deal_id == deal_id)
        return await self.session.scalar(query.with_for_update() if lock else query)

    async def add_share(self, share: Share) -> None:
        self.session.add(share)
        await self.session.flush()

    async def shared_deal(self, opportunity_id: str) -> uuid.UUID | None:
        """Our deal an ACE opportunity was created from, if it was shared from PartnerOps."""
        return await self.session.scalar(select(Share.deal_id).where(
            Share.catalog == self.catalog, Share.opportunity_id == opportunity_id))

    async def set_share(self, deal_id: uuid.UUID, **values: Any) -> None:
        if isinstance(values.get("error"), str):
            values["error"] = values["error"][:2000]
        await self.session.execute(update(Share).where(Share.catalog == self.catalog, Share.deal_id == deal_id)
                                   .values(**values, updated_at=func.now()))

    async def shares(self, limit: int = 50) -> list[Share]:
        return list(await self.session.scalars(
            select(Share).where(Share.catalog == self.catalog).order_by(Share.requested_at.desc()).limit(limit)))

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

    async def due_now(self, kind: str, key: str) -> None:
        """A waiting request is due at once (something it waits for may have changed)."""
        await self.session.execute(update(SyncRequest).where(SyncRequest.kind == kind, SyncRequest.key == key)
                                   .values(not_before=func.now()))

    async def wake_driver(self) -> None:
        # Delivered when the transaction commits: the driver then looks for work at once.
        await self.session.execute(text("SELECT pg_notify(:ch, '')"), {"ch": WORK_CHANNEL})

    async def next_request(self) -> SyncRequest | None:
        """The next due request: refreshes of one record, then edits going out, then whole passes (the
        first two are what a person is waiting for), oldest first."""
        return await self.session.scalar(
            select(SyncRequest).where(SyncRequest.not_before <= func.now())
            .order_by(text("CASE kind WHEN 'refresh' THEN 0 WHEN 'push' THEN 1 WHEN 'decide' THEN 1 "
                           "WHEN 'share' THEN 1 ELSE 2 END"),
                      SyncRequest.requested_at)
            .limit(1)
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
