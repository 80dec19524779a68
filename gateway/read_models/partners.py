"""Partner counts by type, from pipeline.partner.created."""

from __future__ import annotations

from sqlalchemy import Integer, String, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from contracts import pipeline as pc
from contracts.base import Event
from gateway.read_models.base import Base
from runtime.inbox import Subscription


class PartnerCount(Base):
    __tablename__ = "partner_count"

    type: Mapped[str] = mapped_column(String(20), primary_key=True)
    partners: Mapped[int] = mapped_column(Integer, default=0)


async def on_partner_created(session: AsyncSession, event: Event) -> None:
    assert isinstance(event, pc.PartnerCreatedV1)
    stmt = insert(PartnerCount).values(type=event.type.value, partners=1)
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[PartnerCount.type],
                                   set_={"partners": PartnerCount.partners + 1})
    )


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription(consumer="gateway", models=(pc.PartnerCreatedV1,), handle=on_partner_created),
)
READ_MODEL_TABLES = (PartnerCount.__table__,)


async def partner_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(PartnerCount.type, PartnerCount.partners))
    counts = {t.value: 0 for t in pc.PartnerType}
    counts.update({r.type: r.partners for r in rows})
    return counts
