"""All SQL about partners."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from contracts import pipeline as c
from runtime.db import ArrayRows
from services.pipeline.models import LedgerPartner, Opportunity, Partner

_TIER_RANK = case({t.value: i for i, t in enumerate(c.TIER_ORDER)}, value=Partner.tier)
_RANK = func.rank().over(order_by=Partner.score.desc())
_KNOWN = "pipeline.known_partners"
# One array parameter: the same statement text (compiled and prepared once) for any number of partners,
# where an IN list compiled a parameter per partner for each batch (~140 of them per ingested batch).
_LIVE_OF = text(f"SELECT id FROM {Partner.__table__.fullname} WHERE id = ANY(CAST(:ids AS uuid[])) "
                "AND deleted_at IS NULL")
# What a tier recomputation needs of each partner, locked in id order; and the revenues it writes, in one
# statement. An ingested batch recomputes the partners of its won deals (dozens): as ORM objects, loaded
# whole and flushed one UPDATE each, they cost more than the rest of the batch's writes (docs/benchmarks.md).
_TIER_STATES = text(f"SELECT id, tier, tier_auto, archived_at, trailing_revenue FROM {Partner.__table__.fullname} "
                    "WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR UPDATE")
_REVENUES = ArrayRows(Partner.__table__, ("id", "trailing_revenue"), key="id")
_WON_SINCE = text(
    f"SELECT partner_id, currency, sum(amount) FROM {Opportunity.__table__.fullname} "
    "WHERE partner_id = ANY(CAST(:ids AS uuid[])) AND outcome = :won AND closed_at >= :since "
    "GROUP BY partner_id, currency")


class PartnerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, partner: Partner) -> Partner:
        self.session.add(partner)
        await self.session.flush()
        await self.session.refresh(partner)
        return partner

    async def get(self, partner_id: uuid.UUID, *, for_update: bool = False) -> Partner | None:
        query = select(Partner).where(Partner.id == partner_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query.execution_options(populate_existing=True))

    async def existing(self, partner_ids: set[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these partners exist (remembered for the transaction: a batch asks again and again)."""
        known: set[uuid.UUID] = self.session.info.setdefault(_KNOWN, set())
        unknown = partner_ids - known
        if unknown:
            # A deleted partner takes no new deals (restore it first).
            known |= set(await self.session.scalars(_LIVE_OF, {"ids": sorted(unknown)}))
        return partner_ids & known

    async def get_many(self, partner_ids: list[uuid.UUID], *, for_update: bool = False) -> list[Partner]:
        query = select(Partner).where(Partner.id.in_(partner_ids)).order_by(Partner.id)
        if for_update:
            query = query.with_for_update()
        return list(await self.session.scalars(query.execution_options(populate_existing=True)))

    async def name_taken(self, name: str, *, other_than: uuid.UUID | None = None) -> bool:
        query = select(Partner.id).where(func.lower(Partner.name) == name.lower())
        if other_than is not None:
            query = query.where(Partner.id != other_than)
        return await self.session.scalar(query) is not None

    async def ids_by_name(self, names: Sequence[str]) -> dict[str, uuid.UUID]:
        if not names:
            return {}
        rows = await self.session.execute(
            select(func.lower(Partner.name), Partner.id).where(func.lower(Partner.name).in_({n.lower() for n in names}))
        )
        return {name: pid for name, pid in rows.tuples()}

    async def names_by_id(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        rows = await self.session.execute(select(Partner.id, Partner.name).where(Partner.id.in_(ids)))
        return dict(rows.tuples().all())

    async def rank_of(self, partner_id: uuid.UUID) -> int | None:
        ranked = (select(Partner.id, _RANK.label("rank"))
                  .where(Partner.archived_at.is_(None), Partner.deleted_at.is_(None),
                         Partner.score.is_not(None)).subquery())
        return await self.session.scalar(select(ranked.c.rank).where(ranked.c.id == partner_id))

    async def list(self, cmd: c.ListPartners) -> tuple[list[tuple[Partner, int | None]], int]:
        ranked = (select(Partner.id.label("pid"), _RANK.label("rank"))
                  .where(Partner.archived_at.is_(None), Partner.deleted_at.is_(None),
                         Partner.score.is_not(None)).subquery())
        query: Select[tuple[Partner, int | None]] = select(Partner, ranked.c.rank).outerjoin(
            ranked, ranked.c.pid == Partner.id)
        count = select(func.count()).select_from(Partner)
        # Deleted partners are listed only when asked for (state=deleted), never with the others.
        conditions = [Partner.deleted_at.is_not(None) if cmd.state == "deleted" else Partner.deleted_at.is_(None)]
        if cmd.state == "archived":
            conditions.append(Partner.archived_at.is_not(None))
        elif cmd.state == "active" or (cmd.state is None and not cmd.include_archived):
            conditions.append(Partner.archived_at.is_(None))
        if cmd.type:
            conditions.append(Partner.type == cmd.type.value)
        if cmd.tier:
            conditions.append(Partner.tier == cmd.tier.value)
        if cmd.status:
            conditions.append(Partner.status == cmd.status.value)
        if cmd.owner:
            conditions.append(Partner.owner == cmd.owner)
        if cmd.q:
            conditions.append(Partner.name.ilike(f"%{_escape_like(cmd.q)}%", escape="\\"))
        if conditions:
            query = query.where(*conditions)
            count = count.where(*conditions)
        order = {
            c.PartnerSort.name: (func.lower(Partner.name).asc(),),
            c.PartnerSort.name_desc: (func.lower(Partner.name).desc(),),
            c.PartnerSort.score: (Partner.score.asc().nulls_last(),),
            c.PartnerSort.score_desc: (Partner.score.desc().nulls_last(),),
            c.PartnerSort.created: (Partner.created_at.asc(),),
            c.PartnerSort.created_desc: (Partner.created_at.desc(),),
            c.PartnerSort.tier: (_TIER_RANK.asc(),),
            c.PartnerSort.tier_desc: (_TIER_RANK.desc(),),
        }[cmd.sort]
        query = query.order_by(*order, Partner.id).offset(cmd.offset).limit(cmd.limit)
        rows = (await self.session.execute(query)).tuples().all()
        return [(p, r) for p, r in rows], int(await self.session.scalar(count) or 0)

    async def page_by_id(self, after: uuid.UUID | None, limit: int) -> list[Partner]:
        query = select(Partner).where(Partner.deleted_at.is_(None)).order_by(Partner.id).limit(limit)
        if after is not None:
            query = query.where(Partner.id > after)
        return list(await self.session.scalars(query))

    async def on_ledger(self, partner_id: uuid.UUID) -> bool:
        """Whether the commissions service has posted entries for the partner (its events' copy)."""
        return await self.session.scalar(
            select(LedgerPartner.partner_id).where(LedgerPartner.partner_id == partner_id)) is not None

    async def add_ledger_partners(self, partner_ids: set[uuid.UUID], at: datetime) -> None:
        if partner_ids:
            stmt = pg_insert(LedgerPartner).values([{"partner_id": p, "first_posted_at": at}
                                                    for p in sorted(partner_ids)])
            await self.session.execute(stmt.on_conflict_do_nothing(index_elements=[LedgerPartner.partner_id]))

    async def scored(self) -> list[Partner]:
        return list(await self.session.scalars(
            select(Partner).where(Partner.strategic_fit.is_not(None)).with_for_update()))

    async def set_scores(self, scores: dict[uuid.UUID, Decimal]) -> None:
        for partner_id, score in scores.items():
            await self.session.execute(update(Partner).where(Partner.id == partner_id).values(score=score))

    async def active_ids(self) -> list[uuid.UUID]:
        """Every partner not archived: each keeps its trailing revenue, pinned tier or not."""
        return list(await self.session.scalars(
            select(Partner.id).where(Partner.archived_at.is_(None), Partner.deleted_at.is_(None)).order_by(Partner.id)))

    async def won_since(self, partner_ids: Sequence[uuid.UUID], since: datetime
                        ) -> dict[uuid.UUID, dict[str, Decimal]]:
        """Won amounts per partner and currency closed at or after `since`."""
        if not partner_ids:
            return {}
        # One array parameter: one statement text (prepared once) whatever the number of partners.
        rows = await self.session.execute(_WON_SINCE, {"ids": list(partner_ids), "won": c.Outcome.won.value,
                                                       "since": since})
        out: dict[uuid.UUID, dict[str, Decimal]] = {}
        for partner_id, currency, total in rows.tuples():
            out.setdefault(partner_id, {})[currency] = total
        return out

    async def tier_states(self, partner_ids: Sequence[uuid.UUID]) -> list[Any]:
        """Id, tier, tier_auto, archived_at and trailing_revenue of these partners, locked, in id order."""
        return list(await self.session.execute(_TIER_STATES, {"ids": list(partner_ids)}))

    async def set_trailing_revenues(self, revenues: dict[uuid.UUID, Decimal]) -> None:
        """Write partners' trailing revenues (locked by the caller), in one statement; the copies of them
        this session holds as objects get the new values too (as if loaded so)."""
        await _REVENUES.update(self.session, [{"id": p, "trailing_revenue": v} for p, v in sorted(revenues.items())])
        for partner_id, revenue in revenues.items():
            held = self.session.identity_map.get(identity_key(Partner, partner_id))
            if held is not None:
                set_committed_value(held, "trailing_revenue", revenue)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
