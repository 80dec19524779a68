"""All SQL about opportunities, their stage history and next steps. Opportunities are read as plain
states and written in bulk (one statement for many rows), so a batch of ingested events costs a
handful of round trips, not a handful per event."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Date, cast, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as c
from runtime.db import ArrayRows
from services.pipeline.models import NextStep, Opportunity, StageChange
from services.pipeline.opportunities.domain import COLUMNS, OpportunityState

T = Opportunity.__table__
_ORDER = {
    c.OpportunitySort.created: (T.c.created_at.asc(),),
    c.OpportunitySort.created_desc: (T.c.created_at.desc(),),
    c.OpportunitySort.amount: (T.c.amount.asc(),),
    c.OpportunitySort.amount_desc: (T.c.amount.desc(),),
    c.OpportunitySort.close: (T.c.expected_close_date.asc().nulls_last(),),
    c.OpportunitySort.close_desc: (T.c.expected_close_date.desc().nulls_last(),),
    c.OpportunitySort.stage_entered: (T.c.stage_entered_at.asc(),),
    c.OpportunitySort.stage_entered_desc: (T.c.stage_entered_at.desc(),),
    c.OpportunitySort.name: (func.lower(T.c.name).asc(),),
    c.OpportunitySort.name_desc: (func.lower(T.c.name).desc(),),
}
# Batches are written as arrays (unnest), not a Bind/Execute per row; a planned batch's new and changed
# opportunities, stage history and next steps in one statement (a part with nothing to write gets empty
# arrays). History and next steps refer to opportunities inserted by the same statement: foreign keys
# are checked at its end.
_OPPORTUNITIES = ArrayRows(T, COLUMNS, key="id")
_NEW = ArrayRows(T, COLUMNS, prefix="n_")
_CHANGED = ArrayRows(T, COLUMNS, key="id", prefix="c_")
_HISTORY = ArrayRows(StageChange.__table__, ("opportunity_id", "from_stage", "to_stage", "changed_by", "changed_at"),
                     prefix="h_")
_NEXT_STEPS = ArrayRows(NextStep.__table__, ("opportunity_id", "text", "recorded_by", "recorded_at"), prefix="s_")
_WRITE = text(f"WITH w_new AS ({_NEW.insert_sql}), w_changed AS ({_CHANGED.update_sql}), "
              f"w_history AS ({_HISTORY.insert_sql}), w_steps AS ({_NEXT_STEPS.insert_sql}) SELECT 1")
_LOCK_EXTERNAL = text(
    "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended('external:' || key, 0) AS k "
    "FROM unnest(CAST(:keys AS text[])) AS key ORDER BY k) AS keys"
)

# The stored opportunities for (source, external id) keys given as two arrays, locked in the order the
# keys are given (`by_external_ids` sorts them): one statement text whatever the number of keys, and an index look-up
# per key whatever the table's statistics say (the LIMIT keeps the planner from flattening the LATERAL
# into a join; the key is unique). As a row-value IN list the planner chose a sequential scan of the whole
# table, sorted, while its statistics lagged behind a fast-growing table (any ingestion into a new one,
# until autovacuum's next analyze): ~22 ms per look-up, twice per batch, at 3,500 rows (docs/benchmarks.md).
_BY_EXTERNAL_IDS = text(
    f"SELECT {', '.join(f'o.{c.name}' for c in T.c)} "
    "FROM unnest(CAST(:sources AS text[]), CAST(:external_ids AS text[])) WITH ORDINALITY AS k(source, external_id, n) "
    f"CROSS JOIN LATERAL (SELECT * FROM {T.schema}.{T.name} AS t WHERE t.source = k.source "
    "AND t.external_id = k.external_id AND t.external_id IS NOT NULL LIMIT 1 FOR UPDATE) AS o "
    "ORDER BY k.n"
).columns(*T.c)

ExternalKey = tuple[str, str]


def _state(row: Any) -> OpportunityState:
    return OpportunityState(**row._mapping)


class OpportunityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, opportunity_id: uuid.UUID, *, for_update: bool = False) -> OpportunityState | None:
        query = select(T).where(T.c.id == opportunity_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return _state(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID], *, for_update: bool = False
                       ) -> dict[uuid.UUID, OpportunityState]:
        if not ids:
            return {}
        query = select(T).where(T.c.id.in_(list(ids))).order_by(T.c.id)
        if for_update:
            query = query.with_for_update()
        return {r.id: _state(r) for r in await self.session.execute(query)}

    async def by_external_ids(self, keys: Sequence[ExternalKey]) -> dict[ExternalKey, OpportunityState]:
        """The stored opportunities for (source, external id) keys, locked in key order (so two consumers
        never wait on each other in a cycle)."""
        if not keys:
            return {}
        ordered = sorted(keys)
        rows = await self.session.execute(_BY_EXTERNAL_IDS, {"sources": [s for s, _ in ordered],
                                                             "external_ids": [e for _, e in ordered]})
        return {(r.source, r.external_id): _state(r) for r in rows}

    async def lock_external_keys(self, keys: Sequence[ExternalKey]) -> None:
        # A key not stored yet has no row to lock: two consumers creating it at once wait here instead.
        await self.session.execute(_LOCK_EXTERNAL, {"keys": [f"{s}:{e}" for s, e in keys]})

    async def update(self, states: Iterable[OpportunityState]) -> None:
        """Write the states of stored opportunities the caller has locked (one state per id)."""
        await _OPPORTUNITIES.update(self.session, [s.row() for s in states])

    async def write(self, new: Sequence[OpportunityState], changed: Sequence[OpportunityState],
                    history: Sequence[dict[str, Any]], next_steps: Sequence[dict[str, Any]]) -> None:
        """New opportunities, changed ones (stored, locked by the caller, one state per id), stage history and
        next steps (each in the given order: ids are numbered in it, and the history reads in id order), in
        one statement; none for an empty batch."""
        if not (new or changed or history or next_steps):
            return
        await self.session.execute(_WRITE, _NEW.params([s.row() for s in new])
                                   | _CHANGED.params([s.row() for s in changed])
                                   | _HISTORY.params(history) | _NEXT_STEPS.params(next_steps))

    async def live_of_partner(self, partner_id: uuid.UUID) -> int:
        """How many of the partner's deals are not deleted."""
        return int(await self.session.scalar(select(func.count()).select_from(T).where(
            T.c.partner_id == partner_id, T.c.deleted_at.is_(None))) or 0)

    async def stage_history(self, opportunity_id: uuid.UUID) -> list[StageChange]:
        return list(await self.session.scalars(
            select(StageChange).where(StageChange.opportunity_id == opportunity_id).order_by(StageChange.id)))

    async def next_steps(self, opportunity_id: uuid.UUID) -> list[NextStep]:
        return list(await self.session.scalars(
            select(NextStep).where(NextStep.opportunity_id == opportunity_id).order_by(NextStep.id)))

    async def list(self, cmd: c.ListOpportunities, quarter: tuple[date, date] | None
                   ) -> tuple[list[OpportunityState], int]:
        # Deleted deals are listed only when asked for (the "Deleted" filter), never with the others.
        conditions = [T.c.deleted_at.is_not(None) if cmd.deleted else T.c.deleted_at.is_(None)]
        if cmd.owner:
            conditions.append(T.c.owner == cmd.owner)
        if cmd.partner_id:
            conditions.append(T.c.partner_id == cmd.partner_id)
        if cmd.pipeline:
            conditions.append(T.c.pipeline == cmd.pipeline)
        if cmd.stage:
            conditions.append(T.c.stage == cmd.stage)
        if cmd.outcome:
            conditions.append(T.c.outcome == cmd.outcome.value)
        if cmd.source:
            conditions.append(T.c.source == cmd.source.value)
        if cmd.deal_model:
            conditions.append(T.c.deal_model == cmd.deal_model.value)
        if quarter:
            when = func.coalesce(cast(T.c.closed_at, Date), T.c.expected_close_date)
            conditions.append(when >= quarter[0])
            conditions.append(when < quarter[1])
        if cmd.q:
            pattern = f"%{_escape_like(cmd.q)}%"
            conditions.append(or_(T.c.name.ilike(pattern, escape="\\"), T.c.customer.ilike(pattern, escape="\\")))
        query = select(T).where(*conditions).order_by(*_ORDER[cmd.sort], T.c.id).offset(cmd.offset).limit(cmd.limit)
        rows = [_state(r) for r in await self.session.execute(query)]
        total = await self.session.scalar(select(func.count()).select_from(T).where(*conditions))
        return rows, int(total or 0)

    async def page_by_id(self, after: uuid.UUID | None, limit: int) -> list[OpportunityState]:
        """A page of the opportunities that are not deleted (the CSV export), in id order."""
        query = select(T).where(T.c.deleted_at.is_(None)).order_by(T.c.id).limit(limit)
        if after is not None:
            query = query.where(T.c.id > after)
        return [_state(r) for r in await self.session.execute(query)]


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
