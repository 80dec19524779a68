"""Pipeline KPIs from the pipeline's events: opportunities as last described, stage probabilities,
settings, and small aggregates the KPI endpoint reads instead of scanning every opportunity.

Each opportunity event carries the whole opportunity and its version. A batch of events is applied
at once: the stored rows are read (locked, in id order), each opportunity's old contribution to the
aggregates is subtracted and its new one added, netted over the batch, and written in key order. A
snapshot older than the stored one changes nothing, so events may arrive in any order, and a replay
rebuilds the same figures.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    Uuid,
    case,
    cast,
    column,
    delete,
    func,
    literal,
    null,
    select,
    text,
    tuple_,
    union_all,
    values,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from contracts import pipeline as pc
from contracts.base import Event
from contracts.quarters import Quarter, add_months
from gateway.read_models import forecast as fc
from gateway.read_models import kpi_snapshots
from gateway.read_models.base import SCHEMA, Base
from gateway.read_models.partners import PartnerView
from runtime.db import execute_many
from runtime.inbox import Subscription

MONEY = Numeric(20, 2)


class OpportunityView(Base):
    __tablename__ = "pipeline_opportunity"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    pipeline: Mapped[str] = mapped_column(String(40))
    stage: Mapped[str] = mapped_column(String(40))
    # The stage before the last move (gateway_pipeline_0004), so a page shows "from → to" without asking.
    previous_stage: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(8))
    partner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    owner: Mapped[str | None] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    hyperscaler: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stage_entered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    launched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StageView(Base):
    __tablename__ = "pipeline_stage"

    pipeline: Mapped[str] = mapped_column(String(40), primary_key=True)
    stage: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    probability: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(8))
    set_version: Mapped[int] = mapped_column(Integer)


class SettingsView(Base):
    __tablename__ = "pipeline_settings"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(Integer)


class OpenAgg(Base):
    __tablename__ = "pipeline_open_agg"

    pipeline: Mapped[str] = mapped_column(String(40), primary_key=True)
    stage: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(Text, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    close_month: Mapped[date] = mapped_column(Date, primary_key=True)
    deals: Mapped[int] = mapped_column(BigInteger, default=0)
    amount: Mapped[Decimal] = mapped_column(MONEY, default=0)


class ClosedAgg(Base):
    __tablename__ = "pipeline_closed_agg"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(40), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(8), primary_key=True)
    owner: Mapped[str] = mapped_column(Text, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    deals: Mapped[int] = mapped_column(BigInteger, default=0)
    amount: Mapped[Decimal] = mapped_column(MONEY, default=0)
    cycle_seconds: Mapped[Decimal] = mapped_column(Numeric(24, 0), default=0)


class PartnerWonAgg(Base):
    __tablename__ = "pipeline_partner_won_agg"

    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    deals: Mapped[int] = mapped_column(BigInteger, default=0)
    amount: Mapped[Decimal] = mapped_column(MONEY, default=0)


class LaunchAgg(Base):
    __tablename__ = "pipeline_launch_agg"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    hyperscaler: Mapped[str] = mapped_column(String(10), primary_key=True)
    owner: Mapped[str] = mapped_column(Text, primary_key=True)
    launches: Mapped[int] = mapped_column(BigInteger, default=0)


class StuckAgg(Base):
    __tablename__ = "pipeline_stuck_agg"

    entered_day: Mapped[date] = mapped_column(Date, primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(40), primary_key=True)
    stage: Mapped[str] = mapped_column(String(40), primary_key=True)
    deals: Mapped[int] = mapped_column(BigInteger, default=0)


class ArrWindow(Base):
    """The months and exchange rates the per-partner ARR below is kept for."""

    __tablename__ = "pipeline_arr_window"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    first_month: Mapped[date] = mapped_column(Date)
    last_month: Mapped[date] = mapped_column(Date)
    reporting_currency: Mapped[str] = mapped_column(String(3))
    rates: Mapped[dict[str, str]] = mapped_column(JSONB)


class PartnerArrCurrency(Base):
    __tablename__ = "pipeline_partner_arr_currency"

    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)


class PartnerArrTotal(Base):
    __tablename__ = "pipeline_partner_arr"

    partner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    arr: Mapped[Decimal] = mapped_column(Numeric(22, 2))


# aggregate name -> (model, key columns, value columns)
AGGREGATES: dict[str, tuple[type[Base], tuple[str, ...], tuple[str, ...]]] = {
    "open": (OpenAgg, ("pipeline", "stage", "owner", "currency", "close_month"), ("deals", "amount")),
    "closed": (ClosedAgg, ("month", "pipeline", "outcome", "owner", "currency"), ("deals", "amount", "cycle_seconds")),
    "partner_won": (PartnerWonAgg, ("partner_id", "month", "currency"), ("deals", "amount")),
    "launch": (LaunchAgg, ("month", "hyperscaler", "owner"), ("launches",)),
    "stuck": (StuckAgg, ("entered_day", "pipeline", "stage"), ("deals",)),
}

# --------------------------------------------------------------------------------------- writing

_FACT_COLUMNS = ("pipeline", "stage", "outcome", "owner", "partner_id", "amount", "currency", "expected_close_date",
                 "hyperscaler", "created_at", "stage_entered_at", "closed_at", "launched_at")


def _row(o: pc.Opportunity, previous_stage: str | None) -> dict[str, Any]:
    return dict(id=o.id, version=o.version, name=o.name, pipeline=o.pipeline, stage=o.stage,
                previous_stage=previous_stage, outcome=o.outcome.value,
                partner_id=o.partner_id, owner=o.owner, amount=o.amount, currency=o.currency,
                expected_close_date=o.expected_close_date, hyperscaler=o.hyperscaler.value if o.hyperscaler else None,
                created_at=o.created_at, stage_entered_at=o.stage_entered_at, closed_at=o.closed_at,
                launched_at=o.launched_at)


async def on_opportunity(session: AsyncSession, event: Event) -> None:
    await on_opportunities(session, [event])


async def on_opportunities(session: AsyncSession, events: list[Event]) -> None:
    """Apply a batch of opportunity snapshots: the newest per opportunity, if newer than stored."""
    newest: dict[uuid.UUID, pc.Opportunity] = {}
    moved_from: dict[uuid.UUID, tuple[int, str]] = {}  # the batch's latest move of each opportunity
    for e in events:
        assert isinstance(e, pc.OpportunityCreatedV1 | pc.OpportunityUpdatedV1 | pc.OpportunityStageChangedV1)
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
    found = (await session.execute(
        select(*(OpportunityView.__table__.c[n] for n in ("id", "version", "previous_stage", *_FACT_COLUMNS)))
        .where(OpportunityView.id.in_(ids)).order_by(OpportunityView.id).with_for_update()
    )).all()
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
    await session.execute(_UPSERT_OPPORTUNITY, rows)
    # Key order, so two consumers touching the same aggregate rows never wait on each other in a cycle.
    for name, (_model, key_columns, value_columns) in AGGREGATES.items():
        changes = sorted((key, vals) for (agg, key), vals in deltas.items() if agg == name and any(vals))
        if changes:
            await session.execute(_UPSERT_AGGREGATE[name], [
                dict(zip((*key_columns, *value_columns), (*key, *vals), strict=True)) for key, vals in changes])
    won = [(key, vals) for (agg, key), vals in deltas.items() if agg == "partner_won" and vals[1]]
    if won:
        await _apply_arr(session, won)
    owners = {r["owner"] for r in rows} | {stored[r["id"]][0].owner for r in rows if r["id"] in stored}
    if won:  # an owner's ARR figures are their partners', whoever owns the deals
        owners |= set(await session.scalars(select(PartnerView.owner).where(
            PartnerView.id.in_(sorted({uuid.UUID(str(key[0])) for key, _ in won})))))
    await kpis_changed(session, (o for o in owners if o is not None))


# ------------------------------------------------------------------------- trailing-twelve-month ARR
# Consumers keep pipeline_partner_arr for the window in pipeline_arr_window under a shared lock; a new
# month or new exchange rates rebuild it from the month aggregate under the exclusive lock, so a
# rebuild never misses a consumer's uncommitted change nor counts it twice.

_LOCK_OPPORTUNITIES = text(
    "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended('gateway.opportunity:' || id, 0) AS k "
    "FROM unnest(CAST(:ids AS text[])) AS id ORDER BY k) AS keys")
_ARR_SHARED = text("SELECT pg_advisory_xact_lock_shared(hashtext('gateway.pipeline_partner_arr'))")
_ARR_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(hashtext('gateway.pipeline_partner_arr'))")
_ARR_TRY_EXCLUSIVE = text("SELECT pg_try_advisory_xact_lock(hashtext('gateway.pipeline_partner_arr'))")


def _rates_json(settings: pc.PipelineSettings) -> dict[str, str]:
    return {currency: str(rate) for currency, rate in sorted(settings.fx_rates.items())}


def _convert_one(amount: Decimal, currency: str, window: ArrWindow) -> Decimal:
    if currency == window.reporting_currency:
        return amount
    rate = window.rates.get(currency)
    return (amount * Decimal(rate)).quantize(fc.CENT, ROUND_HALF_UP) if rate is not None else Decimal(0)


async def _apply_arr(session: AsyncSession, won: list[tuple[tuple[Any, ...], tuple[Any, ...]]]) -> None:
    today = datetime.now(UTC).date()
    settings = await settings_of(session)
    if not _window_current(await session.scalar(select(ArrWindow).where(ArrWindow.id == 1)), today, settings) and (
            await session.scalar(_ARR_TRY_EXCLUSIVE)):
        # A new month (or no window yet): roll it over here. The rebuild reads this transaction's own
        # month aggregates, so this batch's changes are in it already.
        window = await session.scalar(select(ArrWindow).where(ArrWindow.id == 1)
                                      .execution_options(populate_existing=True))
        if not _window_current(window, today, settings):
            await _rebuild_arr(session, *arr_window(today), settings)
            return
    await session.execute(_ARR_SHARED)
    window = await session.scalar(select(ArrWindow).where(ArrWindow.id == 1).execution_options(populate_existing=True))
    if window is None:
        return
    by_key: dict[tuple[uuid.UUID, str], Decimal] = {}
    for (partner, month, currency), (_deals, amount) in won:
        if window.first_month <= month <= window.last_month:
            key = (uuid.UUID(str(partner)), currency)
            by_key[key] = by_key.get(key, Decimal(0)) + amount
    keys = sorted(k for k, v in by_key.items() if v)
    if not keys:
        return
    stored = {(r.partner_id, r.currency): r.amount for r in await session.execute(
        select(PartnerArrCurrency.partner_id, PartnerArrCurrency.currency, PartnerArrCurrency.amount)
        .where(tuple_(PartnerArrCurrency.partner_id, PartnerArrCurrency.currency).in_(keys))
        .order_by(PartnerArrCurrency.partner_id, PartnerArrCurrency.currency).with_for_update())}
    totals: dict[uuid.UUID, Decimal] = {}
    rows = []
    for partner, currency in keys:
        old = stored.get((partner, currency), Decimal(0))
        new = old + by_key[(partner, currency)]
        rows.append({"partner_id": partner, "currency": currency, "amount": new})
        change = _convert_one(new, currency, window) - _convert_one(old, currency, window)
        totals[partner] = totals.get(partner, Decimal(0)) + change
    await execute_many(session, _UPSERT_ARR_CURRENCY, rows)
    # A change in a currency without an exchange rate (or one that rounds away) leaves every total
    # as it was: possibly nothing to write at all.
    await execute_many(session, _UPSERT_ARR_TOTAL,
                       [{"partner_id": p, "arr": v} for p, v in sorted(totals.items()) if v])


def arr_window(today: date) -> tuple[date, date]:
    """The trailing twelve calendar months, the current one included."""
    return add_months(fc.month_of(today), -11), fc.month_of(today)


def _window_current(window: ArrWindow | None, today: date, settings: pc.PipelineSettings) -> bool:
    return (window is not None and window.last_month == fc.month_of(today)
            and window.reporting_currency == settings.reporting_currency and window.rates == _rates_json(settings))


async def ensure_arr_window(session: AsyncSession, today: date) -> bool:
    """Rebuild the per-partner ARR if its window is not the twelve months ending this month (or the
    rates changed). Cheap when nothing is to do; the caller commits. True if it rebuilt."""
    settings = await settings_of(session)
    if _window_current(await session.scalar(select(ArrWindow).where(ArrWindow.id == 1)), today, settings):
        return False
    await session.execute(_ARR_EXCLUSIVE)
    window = await session.scalar(select(ArrWindow).where(ArrWindow.id == 1).execution_options(populate_existing=True))
    if _window_current(window, today, settings):
        return False
    await _rebuild_arr(session, *arr_window(today), settings)
    return True


async def _rebuild_arr(session: AsyncSession, first: date, last: date, settings: pc.PipelineSettings) -> None:
    await session.execute(delete(PartnerArrTotal))
    await session.execute(delete(PartnerArrCurrency))
    await session.execute(delete(ArrWindow))
    await session.execute(text(
        f"INSERT INTO {SCHEMA}.pipeline_partner_arr_currency (partner_id, currency, amount) "
        f"SELECT partner_id, currency, sum(amount) FROM {SCHEMA}.pipeline_partner_won_agg "
        "WHERE month >= :first AND month <= :last GROUP BY 1, 2 HAVING sum(amount) <> 0"),
        {"first": first, "last": last})
    rates = _rates(settings)
    per_partner = (select(PartnerArrCurrency.partner_id,
                          func.sum(func.round(PartnerArrCurrency.amount * rates.c.rate, 2)).label("arr"))
                   .join(rates, rates.c.currency == PartnerArrCurrency.currency)
                   .group_by(PartnerArrCurrency.partner_id))
    await session.execute(insert(PartnerArrTotal).from_select(["partner_id", "arr"], per_partner))
    session.add(ArrWindow(id=1, first_month=first, last_month=last, reporting_currency=settings.reporting_currency,
                          rates=_rates_json(settings)))
    await session.flush()
    await kpi_snapshots.changed(session, [kpi_snapshots.EVERYONE])


# Plain SQL, compiled once: SQLAlchemy 2.0 cannot cache the Postgres dialect's INSERT ... ON CONFLICT
# and would compile it again for every batch.
_ROW_COLUMNS = ("id", "version", "name", "pipeline", "stage", "previous_stage", "outcome", "partner_id", "owner",
                "amount", "currency",
                "expected_close_date", "hyperscaler", "created_at", "stage_entered_at", "closed_at", "launched_at")
_UPSERT_OPPORTUNITY = text(
    f"INSERT INTO {SCHEMA}.pipeline_opportunity ({', '.join(_ROW_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _ROW_COLUMNS)}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _ROW_COLUMNS if c != "id")
    + " WHERE pipeline_opportunity.version < EXCLUDED.version"
)
_UPSERT_ARR_CURRENCY = text(
    f"INSERT INTO {SCHEMA}.pipeline_partner_arr_currency (partner_id, currency, amount) "
    "VALUES (:partner_id, :currency, :amount) "
    "ON CONFLICT (partner_id, currency) DO UPDATE SET amount = EXCLUDED.amount")
_UPSERT_ARR_TOTAL = text(
    f"INSERT INTO {SCHEMA}.pipeline_partner_arr (partner_id, arr) VALUES (:partner_id, :arr) "
    "ON CONFLICT (partner_id) DO UPDATE SET arr = pipeline_partner_arr.arr + EXCLUDED.arr")
_UPSERT_AGGREGATE = {
    name: text(
        f"INSERT INTO {SCHEMA}.{model.__table__.name} ({', '.join((*keys, *vals))}) "
        f"VALUES ({', '.join(':' + c for c in (*keys, *vals))}) ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
        + ", ".join(f"{v} = {model.__table__.name}.{v} + EXCLUDED.{v}" for v in vals))
    for name, (model, keys, vals) in AGGREGATES.items()
}


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
                  FROM {{schema}}.pipeline_opportunity WHERE outcome <> 'open' AND closed_at IS NOT NULL
                  GROUP BY 1, 2, 3, 4, 5""",
    "partner_won": f"""SELECT coalesce(partner_id, '{fc.NIL_PARTNER}'::uuid) AS partner_id,
                          {_MONTH.format("closed_at")} AS month, currency, count(*) AS deals, sum(amount) AS amount
                       FROM {{schema}}.pipeline_opportunity WHERE outcome = 'won' AND closed_at IS NOT NULL
                       GROUP BY 1, 2, 3""",
    "launch": f"""SELECT {_MONTH.format("launched_at")} AS month, coalesce(hyperscaler, '') AS hyperscaler,
                     coalesce(owner, '') AS owner, count(*) AS launches
                  FROM {{schema}}.pipeline_opportunity WHERE launched_at IS NOT NULL GROUP BY 1, 2, 3""",
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
    Subscription(consumer="gateway", models=(pc.StageSetDefinedV1,), handle=on_stage_set),
    Subscription(consumer="gateway", models=(pc.PipelineSettingsChangedV1,), handle=on_settings),
)
READ_MODEL_TABLES = tuple(m.__table__ for m in (OpportunityView, StageView, SettingsView, OpenAgg, ClosedAgg,
                                                PartnerWonAgg, LaunchAgg, StuckAgg, ArrWindow, PartnerArrCurrency,
                                                PartnerArrTotal)) + kpi_snapshots.TABLES

# --------------------------------------------------------------------------------------- reading


class StageFigure(BaseModel):
    pipeline: str
    stage: str
    name: str
    probability: int
    deals: int
    amount: Decimal
    weighted: Decimal


class PartnerArr(BaseModel):
    partner_id: uuid.UUID | None
    name: str
    type: str
    arr: Decimal


class PipelineOutcomes(BaseModel):
    pipeline: str
    won: int
    lost: int
    won_amount: Decimal
    win_rate: Decimal | None
    average_cycle_days: Decimal | None


class Launches(BaseModel):
    quarter: str
    by_hyperscaler: dict[str, int]


class StuckDeal(BaseModel):
    id: uuid.UUID
    name: str
    pipeline: str
    stage: str
    owner: str | None
    amount: Decimal
    currency: str
    in_stage_since: datetime
    days_in_stage: int


class Stuck(BaseModel):
    after_days: int
    count: int
    oldest: list[StuckDeal]


class PipelineKpis(BaseModel):
    """The pipeline's KPIs at a glance. Money is in `currency` (the reporting currency)."""

    as_of: date
    owner: str | None
    currency: str
    settings_version: int
    forecast: fc.Forecast
    pipeline_by_stage: list[StageFigure]
    weighted_pipeline_total: Decimal
    win_rate: Decimal | None
    won: int
    lost: int
    average_cycle_days: Decimal | None
    outcomes_by_pipeline: list[PipelineOutcomes]
    arr_from: date
    arr_to: date
    arr_by_partner: list[PartnerArr]
    arr_by_partner_type: dict[str, Decimal]
    launches: list[Launches]
    stuck: Stuck


async def settings_of(session: AsyncSession) -> pc.PipelineSettings:
    stored = await session.scalar(select(SettingsView.definition).where(SettingsView.id == 1))
    return pc.PipelineSettings.model_validate(stored) if stored else pc.PipelineSettings()


async def stage_sets(session: AsyncSession) -> dict[str, list[StageView]]:
    """The stages per pipeline: as defined by events, else the built-in definitions."""
    found: dict[str, list[StageView]] = {}
    for key, s in pc.BUILTIN_STAGE_SETS.items():
        found[key] = [StageView(pipeline=key, stage=st.key, name=st.name, position=i, probability=st.probability,
                                outcome=st.outcome.value, set_version=0) for i, st in enumerate(s.stages)]
    defined: dict[str, list[StageView]] = {}
    for row in await session.scalars(select(StageView).order_by(StageView.pipeline, StageView.position)):
        defined.setdefault(row.pipeline, []).append(row)
    found.update(defined)
    return found


def _owner_filter(column: Any, owner: str | None) -> list[Any]:
    return [column == owner] if owner is not None else []


async def kpis(session: AsyncSession, *, as_of: date, owner: str | None = None, top: int = 10) -> PipelineKpis:
    """Every pipeline KPI for the fiscal quarter holding `as_of`; `owner` narrows deal figures to the
    deals a team member owns, and partner figures (ARR) to the partners they own."""
    # The per-partner ARR aggregate holds tens of thousands of groups at scale: keep it in memory.
    await session.execute(text("SET LOCAL work_mem = '32MB'"))
    settings = await settings_of(session)
    stages = await stage_sets(session)
    stage_of = {(p, s.stage): s for p, ss in stages.items() for s in ss}
    # stage_sets() already holds the sets in force (built-in unless defined): the one rule weighs them.
    in_force: pc.Probabilities = {key: s.probability for key, s in stage_of.items()}
    quarter = Quarter.fiscal_of(as_of, settings.fiscal_year_start_month)
    first_month, last_month = quarter.months()
    forecast_pipelines = set(settings.forecast_pipelines)

    # Open deals: by stage (everything) and the weighted forecast (closing by the quarter's end).
    in_quarter = (OpenAgg.close_month <= last_month).label("by_quarter_end")
    open_rows = (await session.execute(
        select(OpenAgg.pipeline, OpenAgg.stage, OpenAgg.currency, in_quarter, func.sum(OpenAgg.deals),
               func.sum(OpenAgg.amount))
        .where(*_owner_filter(OpenAgg.owner, owner))
        .group_by(OpenAgg.pipeline, OpenAgg.stage, OpenAgg.currency, in_quarter)
    )).tuples().all()
    by_stage: dict[tuple[str, str], dict[str, Any]] = {}
    weighted_in_quarter: list[tuple[int, str, Decimal]] = []
    weighted_all: list[tuple[int, str, Decimal]] = []
    for pipeline, stage, currency, by_quarter_end, deals, amount in open_rows:
        if not deals and not amount:
            continue
        p = pc.probability_of(in_force, pipeline, stage)
        entry = by_stage.setdefault((pipeline, stage), {"deals": 0, "amount": {}, "weighted": []})
        entry["deals"] += int(deals)
        entry["amount"][currency] = entry["amount"].get(currency, Decimal(0)) + amount
        entry["weighted"].append((p, currency, amount))
        if pipeline in forecast_pipelines:
            weighted_all.append((p, currency, amount))
            if by_quarter_end:
                weighted_in_quarter.append((p, currency, amount))
    figures = []
    for (pipeline, stage), entry in by_stage.items():
        known = stage_of.get((pipeline, stage))
        figures.append(StageFigure(
            pipeline=pipeline, stage=stage, name=known.name if known else stage,
            probability=pc.probability_of(in_force, pipeline, stage), deals=entry["deals"],
            amount=fc.convert(entry["amount"], settings)[0], weighted=fc.convert(fc.weighted(entry["weighted"]),
                                                                                  settings)[0]))
    figures.sort(key=lambda f: (f.pipeline, stage_of[(f.pipeline, f.stage)].position
                                if (f.pipeline, f.stage) in stage_of else 99))

    # Closed in the quarter: closed won (forecast pipelines), win rate and cycle time per pipeline.
    closed_rows = (await session.execute(
        select(ClosedAgg.pipeline, ClosedAgg.outcome, ClosedAgg.currency, func.sum(ClosedAgg.deals),
               func.sum(ClosedAgg.amount), func.sum(ClosedAgg.cycle_seconds))
        .where(ClosedAgg.month >= first_month, ClosedAgg.month <= last_month, *_owner_filter(ClosedAgg.owner, owner))
        .group_by(ClosedAgg.pipeline, ClosedAgg.outcome, ClosedAgg.currency)
    )).tuples().all()
    closed_won: dict[str, Decimal] = {}
    per_pipeline: dict[str, dict[str, Any]] = {}
    for pipeline, outcome, currency, deals, amount, cycle in closed_rows:
        entry = per_pipeline.setdefault(pipeline, {"won": 0, "lost": 0, "won_amount": {}, "cycle": Decimal(0)})
        entry[outcome] += int(deals)
        if outcome == pc.Outcome.won.value:
            entry["won_amount"][currency] = entry["won_amount"].get(currency, Decimal(0)) + amount
            entry["cycle"] += cycle
            if pipeline in forecast_pipelines:
                closed_won[currency] = closed_won.get(currency, Decimal(0)) + amount
    outcomes = [PipelineOutcomes(
        pipeline=p, won=e["won"], lost=e["lost"], won_amount=fc.convert(e["won_amount"], settings)[0],
        win_rate=fc.ratio(Decimal(e["won"]), Decimal(e["won"] + e["lost"])),
        average_cycle_days=fc.average_days(e["cycle"], e["won"])) for p, e in sorted(per_pipeline.items())]
    won = sum(e["won"] for e in per_pipeline.values())
    lost = sum(e["lost"] for e in per_pipeline.values())

    arr_from, arr_to = add_months(fc.month_of(as_of), -11), fc.month_of(as_of)
    arr_top, arr_types = await _arr(session, settings, arr_from, arr_to, owner, top)
    launches = await _launches(session, settings, quarter, owner)
    stuck = await _stuck(session, as_of, settings.stuck_after_days, owner, top)
    return PipelineKpis(
        as_of=as_of, owner=owner, currency=settings.reporting_currency, settings_version=settings.version,
        forecast=fc.forecast(as_of=as_of, settings=settings, closed_won=closed_won,
                             weighted_open=fc.weighted(weighted_in_quarter)),
        pipeline_by_stage=figures, weighted_pipeline_total=fc.convert(fc.weighted(weighted_all), settings)[0],
        win_rate=fc.ratio(Decimal(won), Decimal(won + lost)), won=won, lost=lost,
        average_cycle_days=fc.average_days(sum((e["cycle"] for e in per_pipeline.values()), Decimal(0)), won),
        outcomes_by_pipeline=outcomes, arr_from=arr_from, arr_to=add_months(arr_to, 1) - timedelta(days=1),
        arr_by_partner=arr_top, arr_by_partner_type=arr_types, launches=launches, stuck=stuck,
    )


def _rates(settings: pc.PipelineSettings) -> Any:
    pairs = [(settings.reporting_currency, Decimal(1)),
             *((c, r) for c, r in settings.fx_rates.items() if c != settings.reporting_currency)]
    return values(column("currency", String(3)), column("rate", Numeric(28, 8)), name="rates").data(pairs)


async def _arr(session: AsyncSession, settings: pc.PipelineSettings, first: date, last: date, owner: str | None,
               top: int) -> tuple[list[PartnerArr], dict[str, Decimal]]:
    """Won amounts over the trailing twelve months, per partner (top N) and per partner type. Each
    partner's total per currency is converted and rounded to the cent, then added up."""
    window = await session.scalar(select(ArrWindow).where(ArrWindow.id == 1))
    if _window_current(window, last, settings):
        # The consumers keep this window's ARR per partner: ten thousand partners, not a year of months.
        per_partner = select(PartnerArrTotal.partner_id, PartnerArrTotal.arr).cte("per_partner")
    else:
        rates = _rates(settings)
        per_currency = (
            select(PartnerWonAgg.partner_id, PartnerWonAgg.currency, func.sum(PartnerWonAgg.amount).label("amount"))
            .where(PartnerWonAgg.month >= first, PartnerWonAgg.month <= last)
            .group_by(PartnerWonAgg.partner_id, PartnerWonAgg.currency)
            .cte("per_currency")
        )
        per_partner = (
            select(per_currency.c.partner_id,
                   func.sum(func.round(per_currency.c.amount * rates.c.rate, 2)).label("arr"))
            .join(rates, rates.c.currency == per_currency.c.currency)
            .group_by(per_currency.c.partner_id)
            .cte("per_partner")
        )
    nil = uuid.UUID(fc.NIL_PARTNER)
    joined = (select(per_partner.c.partner_id, per_partner.c.arr, PartnerView.name, PartnerView.type)
              .outerjoin(PartnerView, PartnerView.id == per_partner.c.partner_id)
              .where(per_partner.c.arr > 0, PartnerView.archived.is_not(True)))
    if owner is not None:
        joined = joined.where(PartnerView.owner == owner)
    sub = joined.cte("arr")
    # One statement: the per-partner totals are computed once for both the top N and the types.
    type_label = case((sub.c.partner_id == nil, literal("unassigned")), else_=func.coalesce(sub.c.type, "unknown"))
    top_rows = (select(literal("top").label("kind"), sub.c.partner_id, sub.c.arr, sub.c.name, sub.c.type)
                .order_by(sub.c.arr.desc(), sub.c.partner_id).limit(top).subquery())
    type_rows = select(literal("type").label("kind"), cast(null(), Uuid).label("partner_id"),
                       func.sum(sub.c.arr).label("arr"), cast(null(), String).label("name"),
                       type_label.label("type")).group_by(type_label)
    rows = (await session.execute(union_all(select(top_rows), type_rows))).all()
    partners = [PartnerArr(partner_id=None if r.partner_id == nil else r.partner_id,
                           name=r.name or ("(no partner)" if r.partner_id == nil else "(unknown partner)"),
                           type=r.type or ("unassigned" if r.partner_id == nil else "unknown"), arr=r.arr)
                for r in sorted((r for r in rows if r.kind == "top"), key=lambda r: (-r.arr, str(r.partner_id)))]
    return partners, {r.type: r.arr for r in sorted((r for r in rows if r.kind == "type"), key=lambda r: r.type)}


async def _launches(session: AsyncSession, settings: pc.PipelineSettings, quarter: Quarter,
                    owner: str | None) -> list[Launches]:
    """Launches per hyperscaler for the fiscal quarter and the three before it."""
    quarters = [quarter.shift(n) for n in range(-3, 1)]
    start = settings.fiscal_year_start_month
    first = quarters[0].months()[0]
    last = quarters[-1].months()[1]
    rows = (await session.execute(
        select(LaunchAgg.month, LaunchAgg.hyperscaler, func.sum(LaunchAgg.launches))
        .where(LaunchAgg.month >= first, LaunchAgg.month <= last, *_owner_filter(LaunchAgg.owner, owner))
        .group_by(LaunchAgg.month, LaunchAgg.hyperscaler)
    )).tuples().all()
    out = {q: {h.value: 0 for h in pc.Hyperscaler} for q in quarters}
    for month, hyperscaler, n in rows:
        q = Quarter.fiscal_of(month, start)
        if q in out and n:
            key = hyperscaler or "unspecified"
            out[q][key] = out[q].get(key, 0) + int(n)
    return [Launches(quarter=q.label, by_hyperscaler=counts) for q, counts in out.items()]


async def _stuck(session: AsyncSession, as_of: date, after_days: int, owner: str | None, top: int) -> Stuck:
    """Open deals that entered their stage on or before the day `after_days` before `as_of` (UTC days)."""
    cutoff = as_of - timedelta(days=after_days)
    before = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=UTC) + timedelta(days=1)
    if owner is None:
        count = await session.scalar(select(func.coalesce(func.sum(StuckAgg.deals), 0))
                                     .where(StuckAgg.entered_day <= cutoff))
    else:
        count = await session.scalar(select(func.count()).select_from(OpportunityView).where(
            OpportunityView.outcome == pc.Outcome.open.value, OpportunityView.owner == owner,
            OpportunityView.stage_entered_at < before))
    oldest = (await session.scalars(
        select(OpportunityView)
        .where(OpportunityView.outcome == pc.Outcome.open.value, OpportunityView.stage_entered_at < before,
               *_owner_filter(OpportunityView.owner, owner))
        .order_by(OpportunityView.stage_entered_at, OpportunityView.id).limit(top)
    )).all()
    return Stuck(after_days=after_days, count=int(count or 0), oldest=[
        StuckDeal(id=o.id, name=o.name, pipeline=o.pipeline, stage=o.stage, owner=o.owner, amount=o.amount,
                  currency=o.currency, in_stage_since=o.stage_entered_at,
                  days_in_stage=(as_of - fc.day_of(o.stage_entered_at)).days) for o in oldest])


# ------------------------------------------------------------------------------------ KPI snapshots
# The KPIs a request asks for most (today's, top ten; the department's or one owner's), kept ready
# (gateway/read_models/kpi_snapshots.py).

SNAPSHOT_TOP = 10
_refresher = kpi_snapshots.Refresher()


async def kpis_json(session: AsyncSession, *, as_of: date, owner: str | None) -> str:
    return (await kpis(session, as_of=as_of, owner=owner, top=SNAPSHOT_TOP)).model_dump_json()


def kpi_scope(owner: str | None) -> str:
    return kpi_snapshots.DEPARTMENT if owner is None else kpi_snapshots.owner_scope(owner)


async def kpis_changed(session: AsyncSession, owners: Iterable[str]) -> None:
    """A batch changed these owners' deals (and so the department's figures): mark their snapshots
    out of date (last in the consumer's transaction: it holds the generation rows only until commit)
    and, once the batch has committed, compute the department's afresh (at most once a second)."""
    await kpi_snapshots.changed(session, [kpi_snapshots.DEPARTMENT, *(kpi_scope(o) for o in owners)])
    _refresher.after_commit(session, kpi_snapshots.DEPARTMENT,
                            lambda day: lambda s: kpis_json(s, as_of=day, owner=None))
