"""Partners as the pipeline last described them (name, type, tier, owner, archived), from the
partner events. Every partner event carries the whole partner and its version, so an event that
arrives after a newer one changes nothing."""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, Index, Integer, String, Text, Uuid, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from contracts import pipeline as pc
from contracts.base import Event
from gateway.read_models import kpi_snapshots
from gateway.read_models.base import Base
from runtime.inbox import Subscription


class PartnerView(Base):
    __tablename__ = "pipeline_partner"
    __table_args__ = (
        Index("pipeline_partner_owner_idx", "owner"),
        Index("pipeline_partner_name_search_idx", func.to_tsvector(text("'simple'::regconfig"), text("name")),
              postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    tier: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str | None] = mapped_column(Text)
    archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    version: Mapped[int] = mapped_column(Integer)


async def _upsert(session: AsyncSession, values: dict[str, object]) -> None:
    stmt = insert(PartnerView).values(**values)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[PartnerView.id],
        set_={k: stmt.excluded[k] for k in values if k != "id"},
        where=PartnerView.version < stmt.excluded.version,
    ))
    # Partners' names, types, owners and archiving show in everyone's KPIs (ARR).
    await kpi_snapshots.changed(session, [kpi_snapshots.EVERYONE])


async def on_partner_created(session: AsyncSession, event: Event) -> None:
    assert isinstance(event, pc.PartnerCreatedV1)
    await _upsert(session, dict(id=event.partner_id, name=event.name, type=event.type.value, tier=event.tier.value,
                                status=event.status.value, owner=event.owner, archived=False, version=event.version))


async def on_partner_changed(session: AsyncSession, event: Event) -> None:
    assert isinstance(event, pc.PartnerUpdatedV1 | pc.PartnerArchivedV1 | pc.PartnerTierChangedV1
                      | pc.PartnerDeletedV1 | pc.PartnerRestoredV1)
    p = event.partner
    # A deleted partner is hidden wherever an archived one is (lists, search, ARR, counts), and more: the
    # pages that list deleted ones ask the pipeline. `archived` here means "not shown".
    await _upsert(session, dict(id=p.id, name=p.name, type=p.type.value, tier=p.tier.value, status=p.status.value,
                                owner=p.owner, archived=p.archived or p.deleted_at is not None, version=p.version))


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription(consumer="gateway", models=(pc.PartnerCreatedV1,), handle=on_partner_created),
    Subscription(consumer="gateway", models=(pc.PartnerUpdatedV1,), handle=on_partner_changed),
    Subscription(consumer="gateway", models=(pc.PartnerArchivedV1,), handle=on_partner_changed),
    Subscription(consumer="gateway", models=(pc.PartnerTierChangedV1,), handle=on_partner_changed),
    Subscription(consumer="gateway", models=(pc.PartnerDeletedV1,), handle=on_partner_changed),
    Subscription(consumer="gateway", models=(pc.PartnerRestoredV1,), handle=on_partner_changed),
)
READ_MODEL_TABLES = (PartnerView.__table__,)


async def partner_counts(session: AsyncSession) -> dict[str, int]:
    """Partners not archived, by type (every type present, zero when none)."""
    rows = await session.execute(select(PartnerView.type, func.count()).where(PartnerView.archived.is_(False))
                                 .group_by(PartnerView.type))
    counts = {t.value: 0 for t in pc.PartnerType}
    counts.update({t: int(n) for t, n in rows.tuples()})
    return counts


async def tier_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(PartnerView.tier, func.count()).where(PartnerView.archived.is_(False))
                                 .group_by(PartnerView.tier))
    counts = {t.value: 0 for t in pc.PartnerTier}
    counts.update({t: int(n) for t, n in rows.tuples()})
    return counts
