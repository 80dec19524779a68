"""Trailing-twelve-month ARR per partner: kept by the consumers for the current window, rebuilt from the
month aggregate when the window moves or the exchange rates change."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    Numeric,
    String,
    column,
    delete,
    func,
    select,
    text,
    tuple_,
    values,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as pc
from contracts.quarters import add_months
from gateway.read_models import forecast as fc
from gateway.read_models import kpi_snapshots
from gateway.read_models.base import SCHEMA
from gateway.read_models.pipeline.tables import ArrWindow, PartnerArrCurrency, PartnerArrTotal, settings_of
from runtime.db import ArrayRows

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
    # A change in a currency without an exchange rate (or one that rounds away) leaves every total
    # as it was: possibly no total to write at all (empty arrays: that part inserts nothing).
    await session.execute(_UPSERT_ARR, _ARR_CURRENCY_ROWS.params(rows) | _ARR_TOTAL_ROWS.params(
        [{"partner_id": p, "arr": v} for p, v in sorted(totals.items()) if v]))


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


# Both upserts in one statement (arrays, unnest), the currencies' first.
_ARR_CURRENCY_ROWS = ArrayRows(PartnerArrCurrency.__table__, ("partner_id", "currency", "amount"), prefix="c_",
                               on_conflict="ON CONFLICT (partner_id, currency) DO UPDATE SET amount = EXCLUDED.amount")
_ARR_TOTAL_ROWS = ArrayRows(
    PartnerArrTotal.__table__, ("partner_id", "arr"), prefix="t_",
    on_conflict="ON CONFLICT (partner_id) DO UPDATE SET arr = pipeline_partner_arr.arr + EXCLUDED.arr")
_UPSERT_ARR = text(f"WITH c AS ({_ARR_CURRENCY_ROWS.insert_sql}), t AS ({_ARR_TOTAL_ROWS.insert_sql}) SELECT 1")


def _rates(settings: pc.PipelineSettings) -> Any:
    pairs = [(settings.reporting_currency, Decimal(1)),
             *((c, r) for c, r in settings.fx_rates.items() if c != settings.reporting_currency)]
    return values(column("currency", String(3)), column("rate", Numeric(28, 8)), name="rates").data(pairs)
