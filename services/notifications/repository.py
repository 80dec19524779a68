"""All SQL of the notifications service. Never commits: the command or message boundary does."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import deadlines as dl
from contracts import pipeline as p
from contracts import sync
from services.notifications.domain import Recipient
from services.notifications.models import (
    Alert,
    DeadlineCopy,
    Deal,
    EmailDelivery,
    Person,
    PipelineSettings,
    Preference,
    SyncHealthCopy,
)
from services.notifications.rules import DeadlineView, DealView, SyncView


class PeopleRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def replace_all(self, people: list[dict[str, Any]]) -> int:
        """Upsert everyone given; deactivate whoever is not in the list. Returns how many were deactivated."""
        if people:
            stmt = insert(Person).values(people)
            await self.session.execute(stmt.on_conflict_do_update(
                index_elements=[Person.user_id],
                set_={c: stmt.excluded[c] for c in ("email", "name", "role", "active", "time_zone")}
                | {"synced_at": func.now()}))
        ids = [p["user_id"] for p in people]
        result = await self.session.execute(
            update(Person).where(Person.active.is_(True), Person.user_id.not_in(ids) if ids else text("true"))
            .values(active=False, synced_at=func.now()))
        return result.rowcount or 0  # type: ignore[attr-defined]

    async def active(self) -> list[Recipient]:
        rows = await self.session.execute(
            select(Person.user_id, Person.email, Person.name, Person.role, Person.time_zone)
            .where(Person.active.is_(True)).order_by(Person.user_id))
        return [Recipient(*r) for r in rows]

    async def time_zone(self, user_id: str) -> str:
        return await self.session.scalar(select(Person.time_zone).where(Person.user_id == user_id)) or "UTC"


class PreferenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of(self, user_ids: list[str]) -> dict[str, Preference]:
        if not user_ids:
            return {}
        rows = await self.session.scalars(select(Preference).where(Preference.user_id.in_(user_ids)))
        return {r.user_id: r for r in rows}

    async def put(self, values: dict[str, Any]) -> None:
        stmt = insert(Preference).values(values)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[Preference.user_id],
            set_={c: stmt.excluded[c] for c in values if c != "user_id"} | {"updated_at": func.now()}))


_LOCK_DEALS = text(
    "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended('notifications.deal:' || id, 0) AS k "
    "FROM unnest(CAST(:ids AS text[])) AS id ORDER BY k) AS keys")


class PipelineCopyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_deals(self, ids: Sequence[uuid.UUID]) -> None:
        """Hold the copies of these opportunities (made or not yet) until commit, taken in one order: two
        replicas applying batches that share opportunities wait for each other instead of deadlocking."""
        if ids:
            await self.session.execute(_LOCK_DEALS, {"ids": [str(i) for i in sorted(set(ids))]})

    async def upsert_deal(self, o: p.Opportunity) -> None:
        values = {
            "id": o.id, "version": o.version, "name": o.name, "pipeline": o.pipeline, "stage": o.stage,
            "stage_name": o.stage_name, "outcome": p.copied_outcome(o), "amount": o.amount, "currency": o.currency,
            "owner": o.owner, "customer": o.customer, "stage_entered_at": o.stage_entered_at,
            "ace_status": o.ace.review_status.value if o.ace and o.ace.review_status else None,
            "ace_due": o.ace.action_due_date if o.ace else None, "updated_at": o.updated_at,
        }
        stmt = insert(Deal).values(values)
        # Newest version wins, so out-of-order and repeated snapshots are harmless.
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[Deal.id], set_={k: stmt.excluded[k] for k in values if k != "id"},
            where=Deal.version < stmt.excluded.version))

    async def open_deals(self) -> list[DealView]:
        rows = await self.session.execute(
            select(Deal.id, Deal.name, Deal.customer, Deal.stage, Deal.stage_name, Deal.amount, Deal.currency,
                   Deal.owner, Deal.stage_entered_at, Deal.ace_status, Deal.ace_due)
            .where(Deal.outcome == "open").order_by(Deal.stage_entered_at, Deal.id))
        return [DealView(str(r[0]), *r[1:]) for r in rows]

    async def upsert_deadline(self, d: dl.Deadline) -> None:
        values = {"key": d.key, "version": d.version, "kind": d.kind.value, "status": d.status.value, "title": d.title,
                  "due_date": d.due_date, "time_zone": d.time_zone, "link": d.link, "owner": d.owner,
                  "amount_at_stake": d.amount_at_stake, "currency": d.currency}
        stmt = insert(DeadlineCopy).values(values)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[DeadlineCopy.key], set_={k: stmt.excluded[k] for k in values if k != "key"},
            where=DeadlineCopy.version < stmt.excluded.version))

    async def open_deadlines(self) -> list[DeadlineView]:
        rows = await self.session.scalars(select(DeadlineCopy).where(DeadlineCopy.status == "open")
                                          .order_by(DeadlineCopy.due_date, DeadlineCopy.key))
        return [DeadlineView(key=r.key, kind=r.kind, title=r.title, due_date=r.due_date, time_zone=r.time_zone,
                             link=r.link, owner=r.owner, amount_at_stake=r.amount_at_stake, currency=r.currency)
                for r in rows]

    async def upsert_sync(self, e: sync.SyncRunFinishedV1) -> None:
        """The newest pass of a source wins; the newest success is kept whatever came after it."""
        values = {"source": e.source.value, "catalog": e.catalog, "last_run_at": e.finished_at, "last_ok": e.ok,
                  "last_success_at": e.last_success_at, "last_error": None if e.ok else e.error}
        stmt = insert(SyncHealthCopy).values(values)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[SyncHealthCopy.source, SyncHealthCopy.catalog],
            set_={"last_run_at": stmt.excluded.last_run_at, "last_ok": stmt.excluded.last_ok,
                  "last_error": stmt.excluded.last_error,
                  "last_success_at": func.greatest(SyncHealthCopy.last_success_at, stmt.excluded.last_success_at)},
            where=SyncHealthCopy.last_run_at < stmt.excluded.last_run_at))

    async def syncs(self) -> list[SyncView]:
        rows = await self.session.scalars(select(SyncHealthCopy).order_by(SyncHealthCopy.source,
                                                                          SyncHealthCopy.catalog))
        return [SyncView(source=r.source, catalog=r.catalog, last_run_at=r.last_run_at, last_ok=r.last_ok,
                         last_success_at=r.last_success_at, last_error=r.last_error) for r in rows]

    async def put_settings(self, version: int, settings: dict[str, Any]) -> None:
        stmt = insert(PipelineSettings).values(id=1, version=version, settings=settings)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[PipelineSettings.id], set_={"version": stmt.excluded.version,
                                                        "settings": stmt.excluded.settings},
            where=PipelineSettings.version < stmt.excluded.version))

    async def settings(self) -> dict[str, Any]:
        return await self.session.scalar(select(PipelineSettings.settings).where(PipelineSettings.id == 1)) or {}

    async def week(self, since: datetime) -> dict[str, Any]:
        """What the digest shows of the pipeline: deals won, moved and waiting on AWS since `since`."""
        won = (await self.session.execute(
            select(Deal.id, Deal.name, Deal.customer, Deal.amount, Deal.currency, Deal.pipeline)
            .where(Deal.outcome == "won", Deal.stage_entered_at >= since).order_by(Deal.amount.desc()).limit(20)
        )).all()
        moved = (await self.session.execute(
            select(Deal.stage_name, func.count(), Deal.currency, func.sum(Deal.amount))
            .where(Deal.outcome == "open", Deal.stage_entered_at >= since)
            .group_by(Deal.pipeline, Deal.stage, Deal.stage_name, Deal.currency)
            .order_by(func.sum(Deal.amount).desc()).limit(12))).all()
        ace = (await self.session.execute(
            select(Deal.id, Deal.name, Deal.customer, Deal.ace_status, Deal.ace_due)
            .where(Deal.outcome == "open", Deal.ace_status.is_not(None),
                   or_(Deal.ace_status == p.AceReviewStatus.action_required.value, Deal.updated_at >= since))
            .order_by(Deal.ace_due.asc().nulls_last(), Deal.name).limit(20))).all()
        return {"won": won, "moved": moved, "ace": ace}


class AlertRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def fired_within(self, rule: str, key: str, user_id: str, at: datetime, window: timedelta) -> bool:
        """Whether the same alert fired for the person within its window of `at`. Serialised per
        (rule, key, person) with a transaction lock, so two processes cannot both find none and both send."""
        await self.session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                                   {"k": f"notifications:{rule}:{key}:{user_id}"})
        found = await self.session.scalar(select(Alert.id).where(
            Alert.rule == rule, Alert.key == key, Alert.user_id == user_id,
            Alert.fired_at > at - window, Alert.fired_at < at + window).limit(1))
        return found is not None

    async def add(self, values: dict[str, Any]) -> uuid.UUID:
        alert_id = uuid.uuid4()
        await self.session.execute(insert(Alert).values(id=alert_id, **values))
        return alert_id

    async def feed(self, user_id: str, *, unread_only: bool, offset: int, limit: int) -> tuple[list[Alert], int, int]:
        where = [Alert.user_id == user_id]
        total = await self.session.scalar(select(func.count()).select_from(Alert).where(
            *where, Alert.read_at.is_(None) if unread_only else text("true"))) or 0
        unread = await self.session.scalar(select(func.count()).select_from(Alert).where(
            *where, Alert.read_at.is_(None))) or 0
        items: list[Alert] = []
        if limit:
            query = select(Alert).where(*where).order_by(Alert.created_at.desc(), Alert.id).offset(offset).limit(limit)
            if unread_only:
                query = query.where(Alert.read_at.is_(None))
            items = list(await self.session.scalars(query))
        return items, total, unread

    async def mark_read(self, user_id: str, ids: list[uuid.UUID] | None) -> int:
        stmt = update(Alert).where(Alert.user_id == user_id, Alert.read_at.is_(None)).values(read_at=func.now())
        if ids is not None:
            stmt = stmt.where(Alert.id.in_(ids))
        return (await self.session.execute(stmt)).rowcount or 0  # type: ignore[attr-defined]

    async def counts_since(self, since: datetime) -> list[tuple[str, int]]:
        rows = await self.session.execute(
            select(Alert.rule, func.count(func.distinct(Alert.key))).where(Alert.fired_at >= since)
            .group_by(Alert.rule).order_by(Alert.rule))
        return [(r[0], r[1]) for r in rows]


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, values: dict[str, Any]) -> bool:
        """Queue an email; False when one with the same dedupe key exists (a digest already decided)."""
        stmt = insert(EmailDelivery).values(id=uuid.uuid4(), **values)
        if values.get("dedupe_key") is not None:
            stmt = stmt.on_conflict_do_nothing(index_elements=[EmailDelivery.dedupe_key])
        result = await self.session.execute(stmt.returning(EmailDelivery.id))
        return result.first() is not None

    async def page(self, status: str | None, offset: int, limit: int) -> tuple[list[EmailDelivery], int]:
        where = [EmailDelivery.status == status] if status else []
        total = await self.session.scalar(select(func.count()).select_from(EmailDelivery).where(*where)) or 0
        rows = await self.session.scalars(select(EmailDelivery).where(*where)
                                          .order_by(EmailDelivery.created_at.desc(), EmailDelivery.id)
                                          .offset(offset).limit(limit))
        return list(rows), total

    async def get(self, delivery_id: uuid.UUID) -> EmailDelivery | None:
        return await self.session.get(EmailDelivery, delivery_id)

    async def claim_due(self, now: datetime) -> EmailDelivery | None:
        """The oldest email due now, locked so no other sender takes it until this transaction ends."""
        return await self.session.scalar(
            select(EmailDelivery).where(EmailDelivery.status == "pending",
                                        or_(EmailDelivery.next_attempt_at.is_(None),
                                            EmailDelivery.next_attempt_at <= now))
            .order_by(EmailDelivery.next_attempt_at.asc().nulls_first(), EmailDelivery.created_at)
            .limit(1).with_for_update(skip_locked=True))

    async def digest_sent(self, user_id: str, week: str) -> bool:
        return await self.session.scalar(select(EmailDelivery.id).where(and_(
            EmailDelivery.dedupe_key == f"digest:{user_id}:{week}"))) is not None
