"""Applying the pipeline's events to the read model: opportunity snapshots in batches (old contribution out,
new one in, netted and written in key order), stage sets and settings, and the recount that checks the
aggregates against the opportunities."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Uuid,
    any_,
    bindparam,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as pc
from contracts.base import Event
from gateway.read_models import forecast as fc
from gateway.read_models import kpi_snapshots
from gateway.read_models.base import SCHEMA
from gateway.read_models.partners import PartnerView
from gateway.read_models.pipeline.arr import _ARR_EXCLUSIVE, _apply_arr, _convert_one, _rebuild_arr, _window_current
from gateway.read_models.pipeline.snapshots import kpis_changed
from gateway.read_models.pipeline.tables import (
    AGGREGATES,
    ArrWindow,
    OpportunityView,
    PartnerArrCurrency,
    PartnerArrTotal,
    SettingsView,
    StageView,
    search_text_of,
    settings_of,
)
from runtime.db import ArrayRows
from runtime.inbox import Subscription

_FACT_COLUMNS = ("pipeline", "stage", "outcome", "owner", "partner_id", "amount", "currency", "expected_close_date",
                 "hyperscaler", "created_at", "stage_entered_at", "closed_at", "launched_at")


def _row(o: pc.Opportunity, previous_stage: str | None) -> dict[str, Any]:
    return dict(id=o.id, version=o.version, name=o.name, pipeline=o.pipeline, stage=o.stage,
                previous_stage=previous_stage, outcome=pc.copied_outcome(o),
                partner_id=o.partner_id, owner=o.owner, amount=o.amount, currency=o.currency,
                expected_close_date=o.expected_close_date, hyperscaler=o.hyperscaler.value if o.hyperscaler else None,
                created_at=o.created_at, stage_entered_at=o.stage_entered_at, closed_at=o.closed_at,
                launched_at=o.launched_at, customer=o.customer[:200], external_id=(o.external_id or "")[:200] or None,
                search_text=search_text_of(o.name, o.customer, o.external_id))


async def on_opportunity(session: AsyncSession, event: Event) -> None:
    await on_opportunities(session, [event])


async def on_opportunities(session: AsyncSession, events: list[Event]) -> None:
    """Apply a batch of opportunity snapshots: the newest per opportunity, if newer than stored."""
    newest: dict[uuid.UUID, pc.Opportunity] = {}
    moved_from: dict[uuid.UUID, tuple[int, str]] = {}  # the batch's latest move of each opportunity
    for e in events:
        assert isinstance(e, pc.OpportunityCreatedV1 | pc.OpportunityUpdatedV1 | pc.OpportunityStageChangedV1
                          | pc.OpportunityDeletedV1 | pc.OpportunityRestoredV1)
        o = e.opportunity
        if o.id not in newest or newest[o.id].version < o.version:
            newest[o.id] = o
        if isinstance(e, pc.OpportunityStageChangedV1) and moved_from.get(o.id, (-1, ""))[0] < o.version:
            moved_from[o.id] = (o.version, e.from_stage)
    ids = sorted(newest)
    # Replicas of the gateway share the durable gateway__PIPELINE, so two batches holding snapshots of one
    # opportunity can be applied at once. The row lock below cannot serialise them while the opportunity
    # has no row yet (both would count it as new): an advisory lock per opportunity, taken in one order,
    # makes the second wait and then see the first's row.
    await session.execute(_LOCK_OPPORTUNITIES, {"ids": [str(i) for i in ids]})
    found = (await session.execute(_STORED, {"ids": ids})).all()
    stored = {r.id: _facts_and_version(r) for r in found}
    stored_previous = {r.id: r.previous_stage for r in found}
    deltas: dict[fc.Key, list[Any]] = {}
    rows = []
    for opportunity_id in ids:
        old, o = stored.get(opportunity_id), newest[opportunity_id]
        row = _row(o, _previous_stage(o, moved_from.get(opportunity_id), old[0].stage if old else None,
                                      stored_previous.get(opportunity_id)))
        if old is not None and old[1] >= row["version"]:
            continue
        rows.append(row)
        new = fc.OpportunityFacts(**{name: row[name] for name in _FACT_COLUMNS})
        fc.merge(deltas, fc.delta(old[0] if old is not None else None, new))
    if not rows:
        return
    params = _OPPORTUNITY_ROWS.params(rows)
    # Key order, so two consumers touching the same aggregate rows never wait on each other in a cycle.
    for name, (_model, key_columns, value_columns) in AGGREGATES.items():
        changes = sorted((key, vals) for (agg, key), vals in deltas.items() if agg == name and any(vals))
        params |= _AGGREGATE_ROWS[name].params([
            dict(zip((*key_columns, *value_columns), (*key, *vals), strict=True)) for key, vals in changes])
    await session.execute(_WRITE_BATCH, params)
    won = [(key, vals) for (agg, key), vals in deltas.items() if agg == "partner_won" and vals[1]]
    if won:
        await _apply_arr(session, won)
    owners = {r["owner"] for r in rows} | {stored[r["id"]][0].owner for r in rows if r["id"] in stored}
    if won:  # an owner's ARR figures are their partners', whoever owns the deals
        owners |= set(await session.scalars(_OWNERS_OF_PARTNERS, {
            "ids": sorted({uuid.UUID(str(key[0])) for key, _ in won})}))
    await kpis_changed(session, (o for o in owners if o is not None))


# The batch's stored rows, locked in id order, and the owners of partners: the ids as one array parameter, so
# one statement text is prepared once, where an IN list made a statement per batch size (each prepared and
# planned anew by Postgres, a round trip more).
_STORED = (select(*(OpportunityView.__table__.c[n] for n in ("id", "version", "previous_stage", *_FACT_COLUMNS)))
           .where(OpportunityView.id == any_(bindparam("ids", type_=postgresql.ARRAY(Uuid))))
           .order_by(OpportunityView.id).with_for_update())
_OWNERS_OF_PARTNERS = select(PartnerView.owner).where(
    PartnerView.id == any_(bindparam("ids", type_=postgresql.ARRAY(Uuid))))


# Plain SQL, compiled once: SQLAlchemy 2.0 cannot cache the Postgres dialect's INSERT ... ON CONFLICT
# and would compile it again for every batch.
_LOCK_OPPORTUNITIES = text(
    "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended('gateway.opportunity:' || id, 0) AS k "
    "FROM unnest(CAST(:ids AS text[])) AS id ORDER BY k) AS keys")
_ROW_COLUMNS = ("id", "version", "name", "pipeline", "stage", "previous_stage", "outcome", "partner_id", "owner",
                "amount", "currency",
                "expected_close_date", "hyperscaler", "created_at", "stage_entered_at", "closed_at", "launched_at",
                "customer", "external_id", "search_text")


# The batch's rows and the changes of every aggregate in one statement (arrays, unnest; an aggregate without
# changes gets empty arrays): one round trip where an executemany per table cost six, ~25 ms a batch
# (docs/benchmarks.md). The statement's parts run in one fixed order, the same in every transaction.
_OPPORTUNITY_ROWS = ArrayRows(
    OpportunityView.__table__, _ROW_COLUMNS, prefix="o_",
    on_conflict="ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in _ROW_COLUMNS if c != "id")
    + " WHERE pipeline_opportunity.version < EXCLUDED.version")
_AGGREGATE_ROWS = {
    name: ArrayRows(
        model.__table__, (*keys, *vals), prefix=f"{name}_",
        on_conflict=f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
        + ", ".join(f"{v} = {model.__table__.name}.{v} + EXCLUDED.{v}" for v in vals))
    for name, (model, keys, vals) in AGGREGATES.items()
}
_WRITE_BATCH = text(
    "WITH w_opportunity AS (" + _OPPORTUNITY_ROWS.insert_sql + "), "
    + ", ".join(f"w_{name} AS ({rows.insert_sql})" for name, rows in _AGGREGATE_ROWS.items()) + " SELECT 1")


def _previous_stage(o: pc.Opportunity, move: tuple[int, str] | None, stored_stage: str | None,
                    stored_previous: str | None) -> str | None:
    """The stage before the last move: the batch's own stage-changed event says it; else a snapshot
    in another stage than the stored row moved from that one; else what was stored stays."""
    if move is not None:
        return move[1]
    if stored_stage is not None and stored_stage != o.stage:
        return stored_stage
    return stored_previous


def _facts_and_version(row: Any) -> tuple[fc.OpportunityFacts, int]:
    return fc.OpportunityFacts(**{name: getattr(row, name) for name in _FACT_COLUMNS}), row.version


# The same contributions as forecast.contributions, as SQL over the stored opportunities: to check
# the incremental aggregates (`aggregate_drift`) and to build them after a bulk load (`recount`).
_MONTH = "date_trunc('month', {} AT TIME ZONE 'UTC')::date"


RECOUNT: dict[str, str] = {
    "open": f"""SELECT pipeline, stage, coalesce(owner, '') AS owner, currency,
                   coalesce(date_trunc('month', expected_close_date)::date, DATE '{fc.NO_DATE}') AS close_month,
                   count(*) AS deals, sum(amount) AS amount
                FROM {{schema}}.pipeline_opportunity WHERE outcome = 'open' GROUP BY 1, 2, 3, 4, 5""",
    "closed": f"""SELECT {_MONTH.format("closed_at")} AS month, pipeline, outcome, coalesce(owner, '') AS owner,
                     currency, count(*) AS deals, sum(amount) AS amount,
                     sum(greatest(0, trunc(extract(epoch FROM closed_at - created_at)))) AS cycle_seconds
                  FROM {{schema}}.pipeline_opportunity
                  WHERE outcome NOT IN ('open', '{pc.DELETED_OUTCOME}') AND closed_at IS NOT NULL
                  GROUP BY 1, 2, 3, 4, 5""",
    "partner_won": f"""SELECT coalesce(partner_id, '{fc.NIL_PARTNER}'::uuid) AS partner_id,
                          {_MONTH.format("closed_at")} AS month, currency, count(*) AS deals, sum(amount) AS amount
                       FROM {{schema}}.pipeline_opportunity WHERE outcome = 'won' AND closed_at IS NOT NULL
                       GROUP BY 1, 2, 3""",
    "launch": f"""SELECT {_MONTH.format("launched_at")} AS month, coalesce(hyperscaler, '') AS hyperscaler,
                     coalesce(owner, '') AS owner, count(*) AS launches
                  FROM {{schema}}.pipeline_opportunity
                  WHERE launched_at IS NOT NULL AND outcome <> '{pc.DELETED_OUTCOME}' GROUP BY 1, 2, 3""",
    "stuck": """SELECT (stage_entered_at AT TIME ZONE 'UTC')::date AS entered_day, pipeline, stage, count(*) AS deals
                FROM {schema}.pipeline_opportunity WHERE outcome = 'open' GROUP BY 1, 2, 3""",
}


async def recount(session: AsyncSession) -> None:
    """Rebuild every aggregate, and the ARR kept per partner, from the stored opportunities (after a
    bulk load that went around the consumers)."""
    await session.execute(_ARR_EXCLUSIVE)
    for name, (model, key_columns, value_columns) in AGGREGATES.items():
        table = model.__table__
        await session.execute(delete(table))
        columns = ", ".join((*key_columns, *value_columns))
        await session.execute(text(f"INSERT INTO {SCHEMA}.{table.name} ({columns}) "
                                   + RECOUNT[name].format(schema=SCHEMA)))
    window = await session.scalar(select(ArrWindow).where(ArrWindow.id == 1))
    if window is not None:
        await _rebuild_arr(session, window.first_month, window.last_month, await settings_of(session))


async def aggregate_drift(session: AsyncSession) -> dict[str, int]:
    """Per aggregate, how many rows differ between the incremental aggregate and a recount (0: none)."""
    out = {}
    for name, (model, key_columns, value_columns) in AGGREGATES.items():
        columns = ", ".join((*key_columns, *value_columns))
        stored = f"SELECT {columns} FROM {SCHEMA}.{model.__table__.name} WHERE {value_columns[0]} <> 0"
        counted = f"SELECT {columns} FROM ({RECOUNT[name].format(schema=SCHEMA)}) AS r"
        out[name] = int(await session.scalar(text(
            f"SELECT count(*) FROM (({stored} EXCEPT ALL {counted}) UNION ALL ({counted} EXCEPT ALL {stored})) AS d"
        )) or 0)
    window = await session.scalar(select(ArrWindow).where(ArrWindow.id == 1))
    if window is not None:
        counted = (f"SELECT partner_id, currency, sum(amount) FROM {SCHEMA}.pipeline_partner_won_agg "
                   f"WHERE month >= :first AND month <= :last GROUP BY 1, 2 HAVING sum(amount) <> 0")
        stored = f"SELECT partner_id, currency, amount FROM {SCHEMA}.pipeline_partner_arr_currency WHERE amount <> 0"
        out["partner_arr"] = int(await session.scalar(text(
            f"SELECT count(*) FROM (({stored} EXCEPT ALL {counted}) UNION ALL ({counted} EXCEPT ALL {stored})) AS d"
        ), {"first": window.first_month, "last": window.last_month}) or 0)
        totals = {r.partner_id: r.arr for r in await session.scalars(select(PartnerArrTotal))}
        expected: dict[uuid.UUID, Decimal] = {}
        for r in await session.scalars(select(PartnerArrCurrency)):
            expected[r.partner_id] = expected.get(r.partner_id, Decimal(0)) + _convert_one(r.amount, r.currency, window)
        out["partner_arr"] += sum(1 for p in set(totals) | set(expected)
                                  if totals.get(p, Decimal(0)) != expected.get(p, Decimal(0)))
    return out


async def on_stage_set(session: AsyncSession, event: Event) -> None:
    assert isinstance(event, pc.StageSetDefinedV1)
    s = event.stage_set
    current = await session.scalar(select(func.max(StageView.set_version)).where(StageView.pipeline == s.key))
    if current is not None and current >= s.version:
        return
    await session.execute(delete(StageView).where(StageView.pipeline == s.key))
    await session.execute(insert(StageView), [
        dict(pipeline=s.key, stage=st.key, name=st.name, position=i, probability=st.probability,
             outcome=st.outcome.value, set_version=s.version) for i, st in enumerate(s.stages)
    ])
    await kpi_snapshots.changed(session, [kpi_snapshots.EVERYONE])


async def on_settings(session: AsyncSession, event: Event) -> None:
    assert isinstance(event, pc.PipelineSettingsChangedV1)
    data = event.settings.model_dump(mode="json")
    stmt = insert(SettingsView).values(id=1, definition=data, version=event.settings.version)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[SettingsView.id], set_={"definition": data, "version": event.settings.version},
        where=SettingsView.version < stmt.excluded.version))
    # Other rates or another reporting currency: the ARR kept per partner is converted afresh.
    await session.execute(_ARR_EXCLUSIVE)
    window = await session.scalar(select(ArrWindow).where(ArrWindow.id == 1))
    settings = await settings_of(session)
    if window is not None and not _window_current(window, window.last_month, settings):
        await _rebuild_arr(session, window.first_month, window.last_month, settings)
    await kpi_snapshots.changed(session, [kpi_snapshots.EVERYONE])


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription(consumer="gateway", models=(pc.OpportunityCreatedV1,), handle=on_opportunity,
                 handle_many=on_opportunities),
    Subscription(consumer="gateway", models=(pc.OpportunityUpdatedV1,), handle=on_opportunity,
                 handle_many=on_opportunities),
    Subscription(consumer="gateway", models=(pc.OpportunityStageChangedV1,), handle=on_opportunity,
                 handle_many=on_opportunities),
    Subscription(consumer="gateway", models=(pc.OpportunityDeletedV1,), handle=on_opportunity,
                 handle_many=on_opportunities),
    Subscription(consumer="gateway", models=(pc.OpportunityRestoredV1,), handle=on_opportunity,
                 handle_many=on_opportunities),
    Subscription(consumer="gateway", models=(pc.StageSetDefinedV1,), handle=on_stage_set),
    Subscription(consumer="gateway", models=(pc.PipelineSettingsChangedV1,), handle=on_settings),
)
