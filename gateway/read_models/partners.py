"""Partners as the pipeline last described them (name, type, tier, owner, archived), from the
partner events. Every partner event carries the whole partner and its version, so an event that
arrives after a newer one changes nothing."""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, Index, Integer, String, Text, Uuid, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from contracts import pipeline as pc
from contracts.base import Event
from gateway.read_models import kpi_snapshots
from gateway.read_models.base import Base
from runtime.db import ArrayRows
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


_COLUMNS = ("id", "name", "type", "tier", "status", "owner", "archived", "version")
# A batch's partners in one statement (arrays, unnest), in id order; the newest version wins whatever the
# order the events arrive in.
_ROWS = ArrayRows(PartnerView.__table__, _COLUMNS, on_conflict=(
    "ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS if c != "id")
    + " WHERE pipeline_partner.version < EXCLUDED.version"))


def _row(event: Event) -> dict[str, object]:
    if isinstance(event, pc.PartnerCreatedV1):
        return dict(id=event.partner_id, name=event.name, type=event.type.value, tier=event.tier.value,
                    status=event.status.value, owner=event.owner, archived=False, version=event.version)
    assert isinstance(event, pc.PartnerUpdatedV1 | pc.PartnerArchivedV1 | pc.PartnerTierChangedV1
                      | pc.PartnerDeletedV1 | pc.PartnerRestoredV1)
    p = event.partner
    # A deleted partner is hidden wherever an archived one is (lists, search, ARR, counts), and more: the
    # pages that list deleted ones ask the pipeline. `archived` here means "not shown".
    return dict(id=p.id, name=p.name, type=p.type.value, tier=p.tier.value, status=p.status.value,
                owner=p.owner, archived=p.archived or p.deleted_at is not None, version=p.version)


async def on_partners(session: AsyncSession, events: list[Event]) -> None:
    """Apply a batch of partner events (created or changed: each carries the whole partner): the newest per
    partner, if newer than stored."""
    newest: dict[uuid.UUID, dict[str, object]] = {}
    for event in events:
        row = _row(event)
        key = row["id"]
        assert isinstance(key, uuid.UUID)
        if key not in newest or newest[key]["version"] < row["version"]:  # type: ignore[operator]
            newest[key] = row
    await _ROWS.insert(session, [newest[k] for k in sorted(newest)])
    # Partners' names, types, owners and archiving show in everyone's KPIs (ARR).
    await kpi_snapshots.changed(session, [kpi_snapshots.EVERYONE])


async def on_partner(session: AsyncSession, event: Event) -> None:
    await on_partners(session, [event])


SUBSCRIPTIONS: tuple[Subscription, ...] = tuple(
    Subscription(consumer="gateway", models=(model,), handle=on_partner, handle_many=on_partners)
    for model in (pc.PartnerCreatedV1, pc.PartnerUpdatedV1, pc.PartnerArchivedV1, pc.PartnerTierChangedV1,
                  pc.PartnerDeletedV1, pc.PartnerRestoredV1))
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
