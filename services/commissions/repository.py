"""All SQL of the commissions service."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, Uuid, any_, delete, func, insert, literal, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as pc
from contracts.base import Event
from runtime.db import DriverRow, session_driver
from runtime.outbox import add_events, events_args, events_statement
from services.commissions.column_batch import ColumnBatch
from services.commissions.models import (
    SCHEMA,
    Agreement,
    AgreementAudit,
    AgreementState,
    AgreementVersion,
    CustomerState,
    LedgerEntry,
    Opportunity,
    Partner,
    PartnerTierSince,
    Payment,
    RevenueEvent,
    RevenueNote,
    StageSet,
)

# Revenue ingestion serialises on these many advisory-lock buckets of its link keys (invoice ids,
# opportunity ids), so an invoice and its refund, or a deal and its pending invoices, are never
# linked by two transactions that cannot see each other.
LINK_BUCKETS = 64
_LINK_LOCK_SPACE = 0x636F6D6D  # "comm": the advisory-lock key space of this service


@dataclass(frozen=True, slots=True)
class IncomingRevenue:
    event_id: uuid.UUID
    kind: str
    ref: str
    scope: str
    partner_id: uuid.UUID | None
    opportunity_id: uuid.UUID | None
    customer: str
    customer_name: str | None
    amount: Decimal | None
    currency: str | None
    occurred_at: datetime
    invoice_ref: str | None
    deal_model: str | None
    customer_started_on: date | None
    void: bool
    source: str
    actor: str | None
    event_occurred_at: datetime
    pipeline: str | None = None  # a won deal's pipeline; not content: facts stored before it have none

    def row(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}  # type: ignore[attr-defined]


# Fields that make two records of the same natural key the same fact.
CONTENT_FIELDS = ("partner_id", "opportunity_id", "customer", "amount", "currency", "occurred_at", "invoice_ref",
                  "deal_model", "customer_started_on", "void")


REVENUE_COLUMNS = ("event_id", "kind", "ref", "scope", "partner_id", "opportunity_id", "customer", "customer_name",
                   "amount", "currency", "occurred_at", "invoice_ref", "deal_model", "customer_started_on", "void",
                   "source", "actor", "event_occurred_at", "pipeline")
_REVENUE_TYPES = {"event_id": "uuid", "partner_id": "uuid", "opportunity_id": "uuid", "amount": "numeric",
                  "occurred_at": "timestamptz", "event_occurred_at": "timestamptz", "customer_started_on": "date",
                  "void": "boolean"}
# Constant per consumer or per batch as a rule (the source, the actor, no pipeline, no refunded invoice, ...).
_REVENUE_BATCH = ColumnBatch(REVENUE_COLUMNS, [_REVENUE_TYPES.get(c, "text") for c in REVENUE_COLUMNS], constant_ok=(
    "kind", "scope", "partner_id", "opportunity_id", "customer_name", "amount", "currency", "invoice_ref",
    "deal_model", "customer_started_on", "void", "source", "actor", "pipeline"))
_N = len(REVENUE_COLUMNS)
# The batch's link locks are taken by the statement that inserts its revenue: the uncorrelated subquery runs
# once (an InitPlan) when the first row's condition is checked, so before any row is inserted; the look-ups that
# must see what the transactions holding these locks committed come in later statements (fresh snapshots).
_INSERT_REVENUE = (
    f"INSERT INTO {SCHEMA}.revenue_event ({', '.join(REVENUE_COLUMNS)}) SELECT * FROM {{rows}} "
    f"WHERE (SELECT count(*) FROM (SELECT pg_advisory_xact_lock(${_N + 1}, b) FROM unnest(${_N + 2}::int[]) AS b "
    f"ORDER BY b) AS locked) >= 0 "
    f"ON CONFLICT DO NOTHING RETURNING id, kind, ref, scope")
_LOCK_LINKS = "SELECT pg_advisory_xact_lock($1, b) FROM unnest($2::int[]) AS b ORDER BY b"
# Stored facts that could not be linked before: refunds of these invoices, and unattributed invoices and churns
# naming these opportunities (each part on its partial index).
_WAITING_FOR = (
    f"SELECT id FROM {SCHEMA}.revenue_event WHERE kind = 'refund' AND invoice_ref = ANY($1::text[]) "
    f"UNION ALL SELECT id FROM {SCHEMA}.revenue_event WHERE partner_id IS NULL AND opportunity_id = ANY($2::uuid[])")


# Linking, on the rows' ids (the batch's waiting and unattributed rows) and the other row's full unique key, so
# the plan is index look-ups however stale the table's statistics are while it grows.
_ATTRIBUTE_BY_DEAL = (
    f"UPDATE {SCHEMA}.revenue_event t SET partner_id = deal.partner_id FROM {SCHEMA}.revenue_event deal "
    f"WHERE t.id = ANY($1::bigint[]) AND t.partner_id IS NULL AND t.opportunity_id IS NOT NULL "
    f"AND deal.kind = 'deal_won' AND deal.scope = '' AND deal.ref = t.opportunity_id::text "
    f"AND deal.partner_id IS NOT NULL RETURNING t.id, t.partner_id")
_ENRICH_REFUNDS = (
    f"UPDATE {SCHEMA}.revenue_event t SET partner_id = coalesce(t.partner_id, inv.partner_id), "
    f"customer = inv.customer, customer_name = inv.customer_name, opportunity_id = inv.opportunity_id "
    f"FROM {SCHEMA}.revenue_event inv "
    f"WHERE t.id = ANY($1::bigint[]) AND t.kind = 'refund' AND inv.kind = 'invoice_paid' AND inv.scope = '' "
    f"AND inv.ref = t.invoice_ref AND inv.partner_id IS NOT NULL "
    f"AND (t.partner_id IS NULL OR t.customer <> inv.customer "
    f"OR t.opportunity_id IS DISTINCT FROM inv.opportunity_id) RETURNING t.id, t.partner_id")


def any_of(values: Sequence[Any], item_type: Any) -> Any:
    """`= ANY(array)`: one array parameter instead of a parameter per value, so the statement's text (and
    its prepared plan) is the same whatever the batch size."""
    return any_(literal(list(values), ARRAY(item_type)))


class RevenueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_links(self, keys: Iterable[str]) -> None:
        buckets = sorted({hash_bucket(k) for k in keys})
        if buckets:
            await (await session_driver(self.session)).execute(_LOCK_LINKS, _LINK_LOCK_SPACE, buckets)

    async def insert_new(self, incoming: Sequence[IncomingRevenue], link_keys: Iterable[str] = (),
                         ) -> dict[tuple[str, str, str], int]:
        """Insert those not stored yet, having taken the link locks of `link_keys` (as `lock_links`); returns
        the new rows' ids by natural key. One statement with a parameter per column (arrays), so the cost does
        not grow with parameters per row."""
        if not incoming:
            await self.lock_links(link_keys)
            return {}
        shape, args = _REVENUE_BATCH.args_of(incoming, attributes=True)
        rows = await (await session_driver(self.session)).fetch(
            _INSERT_REVENUE.format(rows=_REVENUE_BATCH.rows(shape)), *args, _LINK_LOCK_SPACE,
            sorted({hash_bucket(k) for k in link_keys}))
        return {(r[1], r[2], r[3]): r[0] for r in rows}

    async def by_natural_keys(self, keys: Sequence[tuple[str, str, str]]) -> list[RevenueEvent]:
        if not keys:
            return []
        wanted = set(keys)
        rows = await self.session.scalars(
            select(RevenueEvent).where(RevenueEvent.ref.in_({r for _, r, _ in wanted}),
                                       RevenueEvent.kind.in_({k for k, _, _ in wanted})))
        return [r for r in rows if (r.kind, r.ref, r.scope) in wanted]

    async def replace(self, row_id: int, incoming: IncomingRevenue) -> None:
        values = incoming.row()
        values.pop("kind"), values.pop("ref"), values.pop("scope"), values.pop("event_id")
        await self.session.execute(update(RevenueEvent).where(RevenueEvent.id == row_id).values(**values))

    async def void_deal(self, opportunity_id: uuid.UUID, at: datetime) -> RevenueEvent | None:
        """Mark a won deal void (reopened) unless a newer event already decided it."""
        row = await self.session.scalar(
            update(RevenueEvent)
            .where(RevenueEvent.kind == "deal_won", RevenueEvent.ref == str(opportunity_id),
                   RevenueEvent.scope == "", RevenueEvent.event_occurred_at < at, ~RevenueEvent.void)
            .values(void=True, event_occurred_at=at)
            .returning(RevenueEvent)
        )
        return row

    async def waiting_for(self, *, invoices: Iterable[str], opportunities: Iterable[str]) -> list[int]:
        """Stored facts that could not be linked before: refunds of these invoices, and unattributed
        invoices and churns naming these opportunities."""
        refs, opps = sorted(set(invoices)), sorted({uuid.UUID(o) for o in opportunities})
        if not refs and not opps:
            return []
        return [r[0] for r in await (await session_driver(self.session)).fetch(_WAITING_FOR, refs, opps)]

    async def attribute_by_deal(self, row_ids: Iterable[int]) -> list[tuple[int, uuid.UUID]]:
        """Give unattributed invoices and churns the partner of the won deal they name."""
        ids = sorted(set(row_ids))
        if not ids:
            return []
        return [(r[0], r[1]) for r in await (await session_driver(self.session)).fetch(_ATTRIBUTE_BY_DEAL, ids)]

    async def enrich_refunds(self, row_ids: Iterable[int]) -> list[tuple[int, uuid.UUID]]:
        """Give refunds their invoice's partner, customer and deal."""
        ids = sorted(set(row_ids))
        if not ids:
            return []
        return [(r[0], r[1]) for r in await (await session_driver(self.session)).fetch(_ENRICH_REFUNDS, ids)]

    async def refunds_of(self, invoice_ref: str) -> list[RevenueEvent]:
        return list(await self.session.scalars(
            select(RevenueEvent).where(RevenueEvent.kind == "refund", RevenueEvent.invoice_ref == invoice_ref)))

    async def by_ids(self, ids: Iterable[int]) -> list[DriverRow]:
        ids = sorted(set(ids))
        if not ids:
            return []
        return await (await session_driver(self.session)).fetch(
            f"SELECT * FROM {SCHEMA}.revenue_event WHERE id = ANY($1::bigint[])", ids, record_class=DriverRow)

    async def of_partner(self, partner_id: uuid.UUID) -> list[RevenueEvent]:
        return list(await self.session.scalars(
            select(RevenueEvent).where(RevenueEvent.partner_id == partner_id, ~RevenueEvent.void)))

    async def list(self, *, partner_id: uuid.UUID | None, kind: str | None, offset: int,
                   limit: int) -> tuple[list[RevenueEvent], int]:
        conditions = []
        if partner_id is not None:
            conditions.append(RevenueEvent.partner_id == partner_id)
        if kind is not None:
            conditions.append(RevenueEvent.kind == kind)
        query = (select(RevenueEvent).where(*conditions)
                 .order_by(RevenueEvent.occurred_at.desc(), RevenueEvent.id.desc()).offset(offset).limit(limit))
        total = await self.session.scalar(select(func.count()).select_from(RevenueEvent).where(*conditions))
        return list(await self.session.scalars(query)), int(total or 0)

    async def commission_by_revenue(self, keys: Sequence[str]) -> dict[str, list[tuple[str, int, Decimal]]]:
        """Per revenue key: (currency, entries, net amount) of the entries it produced."""
        if not keys:
            return {}
        rows = await self.session.execute(
            select(LedgerEntry.revenue_key, LedgerEntry.currency, func.count(), func.sum(LedgerEntry.amount))
            .where(LedgerEntry.revenue_key.in_(keys))
            .group_by(LedgerEntry.revenue_key, LedgerEntry.currency))
        out: dict[str, list[tuple[str, int, Decimal]]] = {}
        for key, currency, count, total in rows:
            out.setdefault(key, []).append((currency, count, total))
        return out

    async def notes_by_revenue(self, keys: Sequence[str]) -> dict[str, list[str]]:
        if not keys:
            return {}
        rows = await self.session.execute(
            select(RevenueNote.revenue_key, RevenueNote.note, Agreement.name)
            .join(Agreement, Agreement.id == RevenueNote.agreement_id)
            .where(RevenueNote.revenue_key.in_(keys)).order_by(RevenueNote.id))
        out: dict[str, list[str]] = {}
        for key, note, name in rows:
            out.setdefault(key, []).append(f"{name}: {note}")
        return out


def hash_bucket(key: str) -> int:
    # Stable across processes (Python's hash() is salted per process).
    return zlib.crc32(key.encode()) % LINK_BUCKETS


class AgreementRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, agreement: Agreement) -> Agreement:
        self.session.add(agreement)
        await self.session.flush()
        self.session.add(AgreementState(agreement_id=agreement.id))
        await self.session.flush()
        return agreement

    async def get(self, agreement_id: uuid.UUID) -> Agreement | None:
        return await self.session.get(Agreement, agreement_id)

    async def versions(self, agreement_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[AgreementVersion]]:
        ids = list(agreement_ids)
        out: dict[uuid.UUID, list[AgreementVersion]] = {i: [] for i in ids}
        if not ids:
            return out
        rows = await self.session.scalars(
            select(AgreementVersion).where(AgreementVersion.agreement_id.in_(ids))
            .order_by(AgreementVersion.agreement_id, AgreementVersion.effective_from))
        for v in rows:
            out[v.agreement_id].append(v)
        return out

    async def add_version(self, version: AgreementVersion) -> None:
        self.session.add(version)
        await self.session.flush()

    async def next_version_number(self, agreement_id: uuid.UUID) -> int:
        found = await self.session.scalar(
            select(func.max(AgreementVersion.version)).where(AgreementVersion.agreement_id == agreement_id))
        return int(found or 0) + 1

    async def of_partners(self, partner_ids: Iterable[uuid.UUID]) -> Sequence[Row[Any]]:
        """The partners' agreements as plain rows (id, partner_id, direction, currency, deal_models, ...)."""
        ids = list(set(partner_ids))
        if not ids:
            return []
        t = Agreement.__table__
        return (await self.session.execute(
            select(t).where(t.c.partner_id == any_of(ids, Uuid)).order_by(t.c.id))).all()

    async def version_heads(self, agreement_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[Row[Any]]]:
        """Versions without their terms (agreement_id, version, revision, dates, retroactive): the terms of a
        (version, revision) never change, so the engine reads them only for revisions it has not seen."""
        ids = list(agreement_ids)
        out: dict[uuid.UUID, list[Row[Any]]] = {i: [] for i in ids}
        if not ids:
            return out
        t = AgreementVersion.__table__
        rows = await self.session.execute(
            select(t.c.agreement_id, t.c.version, t.c.revision, t.c.effective_from, t.c.effective_to,
                   t.c.retroactive).where(t.c.agreement_id == any_of(ids, Uuid))
            .order_by(t.c.agreement_id, t.c.effective_from))
        for v in rows:
            out[v.agreement_id].append(v)
        return out

    async def terms_of(self, keys: Iterable[tuple[uuid.UUID, int, int]]) -> dict[tuple[uuid.UUID, int, int], Any]:
        """The stored terms of these (agreement, version, revision)s, where that revision is still current."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        rows = await self.session.execute(
            text(f"SELECT v.agreement_id, v.version, v.revision, v.terms FROM unnest(CAST(:a AS uuid[]), "
                 f"CAST(:v AS int[]), CAST(:r AS int[])) AS k(agreement_id, version, revision) "
                 f"JOIN {SCHEMA}.agreement_version v USING (agreement_id, version, revision)")
            .columns(terms=JSONB),
            {"a": [k[0] for k in wanted], "v": [k[1] for k in wanted], "r": [k[2] for k in wanted]})
        return {(r.agreement_id, r.version, r.revision): r.terms for r in rows}

    async def list(self, *, partner_id: uuid.UUID | None, offset: int, limit: int) -> tuple[list[Agreement], int]:
        conditions = [Agreement.partner_id == partner_id] if partner_id else []
        rows = await self.session.scalars(
            select(Agreement).where(*conditions).order_by(Agreement.created_at.desc(), Agreement.id)
            .offset(offset).limit(limit))
        total = await self.session.scalar(select(func.count()).select_from(Agreement).where(*conditions))
        return list(rows), int(total or 0)

    async def spif_versions(self, partner_id: uuid.UUID | None, limit: int) -> list[tuple[Agreement, AgreementVersion]]:
        """Versions whose rate kind is a SPIF, with their agreement, newest window first."""
        conditions = [AgreementVersion.terms["rate"]["kind"].astext == "spif"]
        if partner_id is not None:
            conditions.append(Agreement.partner_id == partner_id)
        rows = await self.session.execute(
            select(Agreement, AgreementVersion).join(AgreementVersion, AgreementVersion.agreement_id == Agreement.id)
            .where(*conditions)
            .order_by(AgreementVersion.effective_from.desc(), Agreement.name, AgreementVersion.version)
            .limit(limit))
        return [(a, v) for a, v in rows]

    async def audit(self, record: AgreementAudit) -> None:
        self.session.add(record)
        await self.session.flush()

    async def audit_trail(self, agreement_id: uuid.UUID) -> list[AgreementAudit]:
        return list(await self.session.scalars(
            select(AgreementAudit).where(AgreementAudit.agreement_id == agreement_id).order_by(AgreementAudit.id)))

    async def lock_partners(self, partner_ids: Iterable[uuid.UUID], *, exclusive: bool) -> None:
        """Revenue ingestion holds its partners shared, an agreement change exclusive: a new agreement
        never misses revenue committed beside it."""
        keys = sorted({hash_bucket(f"partner:{p}") for p in partner_ids})
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        if keys:
            await (await session_driver(self.session)).execute(
                f"SELECT {fn}($1, k) FROM unnest($2::int[]) AS k ORDER BY k", _LINK_LOCK_SPACE + 1, keys)

    async def lock_context(self, partner_ids: Iterable[uuid.UUID], tiers_of: Iterable[uuid.UUID] = (),
                           ) -> list[DriverRow]:
        """The partners' agreements with their fold state, the state rows locked (in agreement order), one row
        per version (`version`, `revision`, `effective_from`, ... in effective order; None for an agreement
        without versions): one statement instead of three. The rows of the partners `tiers_of` carry their
        tier history (`tier_since`, `tier_names`, in order, as `PipelineCopyRepository.tiers` reads it; None
        for the others): a statement less when the caller knows which partners it needs it for. Call after
        `lock_partners`: this statement's snapshot must be taken once the partner locks are held."""
        ids = sorted(set(partner_ids))
        if not ids:
            return []
        return await (await session_driver(self.session)).fetch(_LOCK_CONTEXT, ids, sorted(set(tiers_of)),
                                                                record_class=DriverRow)


# One row per agreement and version (agreements have one or a few): joined, the versions cost an index look-up
# each; aggregated per agreement in a subquery they cost a rescan each, several times as much.
_LOCK_CONTEXT = f"""
    SELECT a.id, a.partner_id, a.name, a.direction, a.currency, a.deal_models,
           s.last_at, s.last_rank, s.last_ref, s.period_key, s.period_basis, s.period_commission, s.state_token,
           v.version, v.revision, v.effective_from, v.effective_to, v.retroactive, t.tier_since, t.tier_names
    FROM {SCHEMA}.agreement a JOIN {SCHEMA}.agreement_state s ON s.agreement_id = a.id
    LEFT JOIN {SCHEMA}.agreement_version v ON v.agreement_id = a.id
    LEFT JOIN LATERAL (
        SELECT array_agg(pt.since ORDER BY pt.since) AS tier_since, array_agg(pt.tier ORDER BY pt.since) AS tier_names
        FROM {SCHEMA}.partner_tier pt WHERE pt.partner_id = a.partner_id AND a.partner_id = ANY($2::uuid[])
    ) t ON true
    WHERE a.partner_id = ANY($1::uuid[])
    ORDER BY a.id, v.effective_from
    FOR UPDATE OF s
"""
STATE_COLUMNS = ("agreement_id", "last_at", "last_rank", "last_ref", "period_key", "period_basis",
                 "period_commission")
_SAVE_STATES = text(f"""
    UPDATE {SCHEMA}.agreement_state s SET last_at = u.last_at, last_rank = u.last_rank, last_ref = u.last_ref,
        period_key = u.period_key, period_basis = u.period_basis, period_commission = u.period_commission,
        updated_at = now(), state_token = NULL
    FROM unnest(CAST(:agreement_id AS uuid[]), CAST(:last_at AS timestamptz[]), CAST(:last_rank AS int[]),
                CAST(:last_ref AS text[]), CAST(:period_key AS text[]), CAST(:period_basis AS numeric[]),
                CAST(:period_commission AS numeric[]))
        AS u(agreement_id, last_at, last_rank, last_ref, period_key, period_basis, period_commission)
    WHERE s.agreement_id = u.agreement_id
""")
CUSTOMER_COLUMNS = ("agreement_id", "customer", "start", "booked", "invoices", "churned_on", "deal_commission",
                    "deal_model")
NOTE_COLUMNS = ("agreement_id", "revenue_key", "note")
_STATE_BATCH = ColumnBatch(STATE_COLUMNS, ("uuid", "timestamptz", "int", "text", "text", "numeric", "numeric"),
                           constant_ok=STATE_COLUMNS[1:])
_CUSTOMER_BATCH = ColumnBatch(CUSTOMER_COLUMNS, ("uuid", "text", "date", "date", "int", "date", "numeric", "text"),
                              first=len(STATE_COLUMNS) + 1, constant_ok=CUSTOMER_COLUMNS[2:])
_NOTES_FROM = len(STATE_COLUMNS) + len(CUSTOMER_COLUMNS) + 1
# What a batch stepped on from stored state writes back, and the ids of the entries it is about to append, in
# one statement (one round trip instead of four or five): the agreements' fold state under the batch's state
# token, the customers' state that changed, the notes (in order), then `$n` ids from the ledger's sequence.
# `_SAVE_STATES` (a refold) clears the token: see AgreementState.state_token.
_WRITE_BACK = f"""
    WITH saved AS (
        UPDATE {SCHEMA}.agreement_state s SET last_at = u.last_at, last_rank = u.last_rank, last_ref = u.last_ref,
            period_key = u.period_key, period_basis = u.period_basis, period_commission = u.period_commission,
            updated_at = now(), state_token = ${_NOTES_FROM + 4}::uuid
        FROM {{states}}
        WHERE s.agreement_id = u.agreement_id
        RETURNING 1
    ), customers AS (
        INSERT INTO {SCHEMA}.customer_state ({", ".join(CUSTOMER_COLUMNS)})
        SELECT * FROM {{customers}}
        ON CONFLICT (agreement_id, customer) DO UPDATE SET start = excluded.start, booked = excluded.booked,
            invoices = excluded.invoices, churned_on = excluded.churned_on,
            deal_commission = excluded.deal_commission, deal_model = excluded.deal_model
        RETURNING 1
    ), notes AS (
        INSERT INTO {SCHEMA}.revenue_note (agreement_id, revenue_key, note)
        SELECT n.agreement_id, n.revenue_key, n.note
        FROM unnest(${_NOTES_FROM}::uuid[], ${_NOTES_FROM + 1}::text[], ${_NOTES_FROM + 2}::text[])
            WITH ORDINALITY AS n(agreement_id, revenue_key, note, i)
        ORDER BY n.i
        RETURNING 1
    )
    SELECT nextval(pg_get_serial_sequence('{SCHEMA}.ledger_entry', 'id'))
    FROM generate_series(1, ${_NOTES_FROM + 3}::int)
"""


async def copy_records(session: AsyncSession, table: str, columns: Sequence[str],
                       records: Sequence[tuple[Any, ...]]) -> None:
    """COPY rows into a table of this schema on the session's own connection, inside its transaction:
    the cheapest way into Postgres (no statement text, no per-row parameters). Not traced as SQL."""
    conn = await session_driver(session)
    await conn.copy_records_to_table(table, schema_name=SCHEMA, columns=list(columns), records=records)


class StateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock(self, agreement_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Row[Any]]:
        ids = sorted(set(agreement_ids))
        if not ids:
            return {}
        t = AgreementState.__table__
        rows = await self.session.execute(
            select(t).where(t.c.agreement_id == any_of(ids, Uuid)).order_by(t.c.agreement_id).with_for_update())
        return {r.agreement_id: r for r in rows}

    async def save(self, states: Sequence[dict[str, Any]]) -> None:
        if not states:
            return
        await self.session.execute(_SAVE_STATES, {c: [s[c] for s in states] for c in STATE_COLUMNS})

    async def customers(self, pairs: Iterable[tuple[uuid.UUID, str]]) -> list[Any]:
        wanted = sorted(set(pairs))
        if not wanted:
            return []
        # Joined from the exact keys, so it is primary-key lookups whatever the statistics say.
        return await (await session_driver(self.session)).fetch(
            f"SELECT cs.* FROM unnest($1::uuid[], $2::text[]) AS k(agreement_id, customer) "
            f"JOIN {SCHEMA}.customer_state cs USING (agreement_id, customer)",
            [a for a, _ in wanted], [c for _, c in wanted], record_class=DriverRow)

    async def write_back(self, states: Sequence[dict[str, Any]], customers: Sequence[dict[str, Any]],
                         notes: Sequence[dict[str, Any]], entry_ids: int, token: uuid.UUID | None = None) -> list[int]:
        """Save fold states under `token` (their `state_token`), upsert customers' state (one row per agreement
        and customer) and add notes, and take `entry_ids` ids for new ledger entries (ascending), in one
        statement (`_WRITE_BACK`)."""
        if not states and not customers and not notes and entry_ids <= 0:
            return []
        shape_s, args = _STATE_BATCH.args_of(states)
        shape_c, args_c = _CUSTOMER_BATCH.args_of(customers)
        args_n = ([r[c] for r in notes] for c in NOTE_COLUMNS)
        statement = _WRITE_BACK.format(states=_STATE_BATCH.rows(shape_s), customers=_CUSTOMER_BATCH.rows(shape_c))
        rows = await (await session_driver(self.session)).fetch(statement, *args, *args_c, *args_n, max(entry_ids, 0),
                                                                token)
        return sorted(r[0] for r in rows)

    async def replace_customers(self, agreement_id: uuid.UUID, rows: Sequence[dict[str, Any]]) -> None:
        await self.session.execute(delete(CustomerState).where(CustomerState.agreement_id == agreement_id))
        if rows:
            await self.session.execute(insert(CustomerState), list(rows))

    async def add_notes(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await copy_records(self.session, RevenueNote.__tablename__, NOTE_COLUMNS,
                               [tuple(r[c] for c in NOTE_COLUMNS) for r in rows])

    async def replace_notes(self, agreement_id: uuid.UUID, rows: Sequence[dict[str, Any]]) -> None:
        await self.session.execute(delete(RevenueNote).where(RevenueNote.agreement_id == agreement_id))
        await self.add_notes(rows)


ENTRY_COLUMNS = (LedgerEntry.id, LedgerEntry.line_key, LedgerEntry.entry_type, LedgerEntry.rule,
                 LedgerEntry.amount, LedgerEntry.basis_amount, LedgerEntry.reverses_key, LedgerEntry.version,
                 LedgerEntry.customer, LedgerEntry.revenue_at, LedgerEntry.period)


_ENTRY_SELECT = ", ".join(f"e.{c.key}" for c in ENTRY_COLUMNS)
# A line's entries are its original (the unique index of originals per line) and the adjustments of that
# original (found through `adjusts_entry_id`): no index over every entry's line key is needed.
_ROWS_FOR_LINES = f"""
    WITH k AS (SELECT * FROM unnest($1::uuid[], $2::text[]) AS k(agreement_id, key)),
         c AS (SELECT * FROM unnest($3::uuid[], $4::text[]) AS c(agreement_id, customer)),
         o AS (SELECT e.* FROM k JOIN {SCHEMA}.ledger_entry e
                 ON e.agreement_id = k.agreement_id AND e.line_key = k.key AND e.entry_type <> 'adjustment')
    SELECT e.agreement_id, {_ENTRY_SELECT} FROM o AS e
    UNION
    SELECT e.agreement_id, {_ENTRY_SELECT} FROM o JOIN {SCHEMA}.ledger_entry e ON e.adjusts_entry_id = o.id
    UNION
    SELECT e.agreement_id, {_ENTRY_SELECT} FROM k
        JOIN {SCHEMA}.ledger_entry e ON e.agreement_id = k.agreement_id AND e.reverses_key = k.key
    UNION
    SELECT e.agreement_id, {_ENTRY_SELECT} FROM c
        JOIN {SCHEMA}.ledger_entry e ON e.agreement_id = c.agreement_id AND e.customer = c.customer
"""
_NEW_IDS = text(f"SELECT nextval(pg_get_serial_sequence('{SCHEMA}.ledger_entry', 'id')) FROM generate_series(1, :n)")
_FIRST_IDS = text(f"SELECT line_key, id FROM {SCHEMA}.ledger_entry WHERE agreement_id = :a "
                  f"AND line_key = ANY(CAST(:keys AS text[])) AND entry_type <> 'adjustment'")
LEDGER_COLUMNS = ("id", "agreement_id", "partner_id", "direction", "currency", "entry_type", "amount", "basis_amount",
                  "period", "line_key", "reverses_key", "revenue_key", "revenue_at", "customer", "customer_name",
                  "version", "revision", "rule", "detail", "reverses_entry_id", "adjusts_entry_id")
_LEDGER_TYPES = {"id": "bigint", "agreement_id": "uuid", "partner_id": "uuid", "amount": "numeric",
                 "basis_amount": "numeric", "period": "date", "revenue_at": "timestamptz", "version": "int",
                 "revision": "int", "reverses_entry_id": "bigint", "adjusts_entry_id": "bigint"}
_LEDGER_BATCH = ColumnBatch(LEDGER_COLUMNS, [_LEDGER_TYPES.get(c, "text") for c in LEDGER_COLUMNS],
                            constant_ok=LEDGER_COLUMNS[1:])
# The entries and the transaction's `entries.posted` event in one statement (runtime.outbox.events_statement).
_INSERT_ENTRIES = events_statement(SCHEMA, first=len(LEDGER_COLUMNS) + 1, before=(
    f"entries AS (INSERT INTO {SCHEMA}.ledger_entry ({', '.join(LEDGER_COLUMNS)}) SELECT * FROM {{rows}}), "))


LEDGER_SORT_COLUMNS = {"id": None, "amount": LedgerEntry.amount, "period": LedgerEntry.period}


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def rows_of(self, agreement_id: uuid.UUID) -> Sequence[Any]:
        return (await self.session.execute(
            select(*ENTRY_COLUMNS).where(LedgerEntry.agreement_id == agreement_id))).all()

    async def rows_for_lines(self, keys: Iterable[tuple[uuid.UUID, str]],
                             customers: Iterable[tuple[uuid.UUID, str]]) -> Sequence[Any]:
        """Per (agreement, line key): the line's entries and those of the lines that reverse it; per
        (agreement, customer): that customer's entries. One statement for a whole batch, each part driven
        by exact keys; rows carry their agreement_id."""
        keys, customers = sorted(set(keys)), sorted(set(customers))
        if not keys and not customers:
            return []
        return await (await session_driver(self.session)).fetch(
            _ROWS_FOR_LINES, [a for a, _ in keys], [k for _, k in keys], [a for a, _ in customers],
            [c for _, c in customers], record_class=DriverRow)

    async def new_ids(self, n: int) -> list[int]:
        """Ids for entries about to be written, taken from the table's own sequence, so entries can refer
        to each other (a clawback to its accrual) and be written in one COPY."""
        if n <= 0:
            return []
        rows = await self.session.scalars(_NEW_IDS, {"n": n})
        return sorted(rows)

    async def insert(self, rows: Sequence[dict[str, Any]]) -> None:
        """Write entries whose ids came from `new_ids`."""
        if rows:
            await copy_records(self.session, LedgerEntry.__tablename__, LEDGER_COLUMNS,
                               [tuple(r[c] for c in LEDGER_COLUMNS) for r in rows])

    async def insert_posted(self, rows: Sequence[dict[str, Any]], events: Sequence[Event]) -> None:
        """Write entries whose ids were taken before, and stage their events, in one statement."""
        if not rows:
            await add_events(self.session, SCHEMA, events)
            return
        shape, args = _LEDGER_BATCH.args_of(rows)
        await (await session_driver(self.session)).execute(
            _INSERT_ENTRIES.replace("{rows}", _LEDGER_BATCH.rows(shape)), *args, *events_args(SCHEMA, events))

    async def first_ids(self, agreement_id: uuid.UUID, keys: Iterable[str]) -> dict[str, int]:
        keys = list(set(keys))
        if not keys:
            return {}
        # A line's first entry is its original: the unique index of originals per line finds it.
        rows = await self.session.execute(_FIRST_IDS, {"a": agreement_id, "keys": keys})
        return {k: i for k, i in rows}

    async def of_revenue(self, revenue_key: str) -> list[LedgerEntry]:
        return list(await self.session.scalars(
            select(LedgerEntry).where(LedgerEntry.revenue_key == revenue_key).order_by(LedgerEntry.id)))

    async def by_ids(self, ids: Iterable[int], *, for_update: bool = False) -> list[LedgerEntry]:
        ids = sorted(set(ids))
        if not ids:
            return []
        query = select(LedgerEntry).where(LedgerEntry.id.in_(ids)).order_by(LedgerEntry.id)
        if for_update:
            query = query.with_for_update()
        return list(await self.session.scalars(query.execution_options(populate_existing=True)))

    async def list(self, *, partner_id: uuid.UUID | None, agreement_id: uuid.UUID | None, status: str | None,
                   period: tuple[date, date] | None, offset: int, limit: int, sort: str = "id",
                   after: tuple[object, ...] | None = None) -> tuple[list[LedgerEntry], int]:
        """A page in `sort` order (`-` for descending, ties by id); `after` is the previous page's last row's
        (sort value, id), or (id,) by id: keyset paging, as fast on the last page as on the first."""
        descending, column = sort.startswith("-"), LEDGER_SORT_COLUMNS[sort.lstrip("-")]
        keys = (LedgerEntry.id,) if column is None else (column, LedgerEntry.id)
        conditions = []
        if after is not None:
            conditions.append(tuple_(*keys) < tuple_(*after) if descending else tuple_(*keys) > tuple_(*after))
        if partner_id is not None:
            conditions.append(LedgerEntry.partner_id == partner_id)
        if agreement_id is not None:
            conditions.append(LedgerEntry.agreement_id == agreement_id)
        if status is not None:
            conditions.append(LedgerEntry.status == status)
        if period is not None:
            conditions += [LedgerEntry.period >= period[0], LedgerEntry.period < period[1]]
        rows = await self.session.scalars(
            select(LedgerEntry).where(*conditions).order_by(*(k.desc() if descending else k for k in keys))
            .offset(offset).limit(limit))
        # The total counts the filters' matches, not what is left after the cursor.
        total = await self.session.scalar(select(func.count()).select_from(LedgerEntry).where(*conditions[
            1 if after is not None else 0:]))
        return list(rows), int(total or 0)

    async def approve(self, ids: Sequence[int], actor: str | None) -> None:
        await self.session.execute(
            update(LedgerEntry).where(LedgerEntry.id.in_(ids))
            .values(status="approved", approved_at=func.now(), approved_by=actor))

    async def pay(self, ids: Sequence[int], payment_id: uuid.UUID, actor: str | None) -> None:
        await self.session.execute(
            update(LedgerEntry).where(LedgerEntry.id.in_(ids))
            .values(status="paid", payment_id=payment_id, paid_at=func.now(), paid_by=actor))

    async def add_payment(self, payment: Payment) -> Payment:
        self.session.add(payment)
        await self.session.flush()
        await self.session.refresh(payment)
        return payment

    async def entry_ids_of_payment(self, payment_id: uuid.UUID) -> list[int]:
        return list(await self.session.scalars(
            select(LedgerEntry.id).where(LedgerEntry.payment_id == payment_id).order_by(LedgerEntry.id)))

    async def net_by_line(self, agreement_ids: Iterable[uuid.UUID]) -> list[tuple[uuid.UUID, int, str, Decimal]]:
        """(agreement, version, line key, net amount) over these agreements' entries: a SPIF's deals and bonus."""
        ids = list(set(agreement_ids))
        if not ids:
            return []
        rows = await self.session.execute(
            select(LedgerEntry.agreement_id, LedgerEntry.version, LedgerEntry.line_key, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.agreement_id == any_of(ids, Uuid))
            .group_by(LedgerEntry.agreement_id, LedgerEntry.version, LedgerEntry.line_key))
        return [(a, v, k, n) for a, v, k, n in rows]

    # statements

    async def balance_before(self, partner_id: uuid.UUID, start: date) -> dict[tuple[str, str], Decimal]:
        rows = await self.session.execute(
            select(LedgerEntry.direction, LedgerEntry.currency, func.sum(LedgerEntry.amount))
            .where(LedgerEntry.partner_id == partner_id, LedgerEntry.period < start)
            .group_by(LedgerEntry.direction, LedgerEntry.currency))
        return {(d, c): s for d, c, s in rows}

    async def payments_before(self, partner_id: uuid.UUID, start: date) -> dict[tuple[str, str], Decimal]:
        rows = await self.session.execute(
            select(Payment.direction, Payment.currency, func.sum(Payment.amount))
            .where(Payment.partner_id == partner_id, Payment.paid_on < start)
            .group_by(Payment.direction, Payment.currency))
        return {(d, c): s for d, c, s in rows}

    async def entries_in(self, partner_id: uuid.UUID, start: date, end: date) -> list[LedgerEntry]:
        return list(await self.session.scalars(
            select(LedgerEntry).where(LedgerEntry.partner_id == partner_id, LedgerEntry.period >= start,
                                      LedgerEntry.period < end).order_by(LedgerEntry.period, LedgerEntry.id)))

    async def payments_in(self, partner_id: uuid.UUID, start: date, end: date) -> list[tuple[Payment, int]]:
        rows = await self.session.execute(
            select(Payment, func.count(LedgerEntry.id))
            .outerjoin(LedgerEntry, LedgerEntry.payment_id == Payment.id)
            .where(Payment.partner_id == partner_id, Payment.paid_on >= start, Payment.paid_on < end)
            .group_by(Payment.id).order_by(Payment.paid_on, Payment.created_at))
        return [(p, n) for p, n in rows]


class PipelineCopyRepository:
    """The partners and opportunities the pipeline's events describe."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert_partner(self, partner_id: uuid.UUID, name: str, version: int) -> None:
        stmt = pg_insert(Partner).values(id=partner_id, name=name, version=version)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[Partner.id], set_={"name": stmt.excluded.name, "version": stmt.excluded.version,
                                               "updated_at": func.now()},
            where=Partner.version <= stmt.excluded.version))

    async def add_tier(self, partner_id: uuid.UUID, since: datetime, tier: str) -> bool:
        """Record the partner's tier from `since`; true when that changes the tier history."""
        current = await self.session.scalar(
            select(PartnerTierSince.tier).where(PartnerTierSince.partner_id == partner_id,
                                                PartnerTierSince.since <= since)
            .order_by(PartnerTierSince.since.desc()).limit(1))
        later = await self.session.scalar(
            select(func.count()).where(PartnerTierSince.partner_id == partner_id, PartnerTierSince.since > since))
        if current == tier and not later:
            return False
        inserted = await self.session.execute(
            pg_insert(PartnerTierSince).values(partner_id=partner_id, since=since, tier=tier)
            .on_conflict_do_nothing().returning(PartnerTierSince.partner_id))
        return inserted.first() is not None

    async def tiers(self, partner_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[tuple[datetime, str]]]:
        ids = sorted(set(partner_ids))
        out: dict[uuid.UUID, list[tuple[datetime, str]]] = {i: [] for i in ids}
        if ids:
            rows = await (await session_driver(self.session)).fetch(
                f"SELECT partner_id, since, tier FROM {SCHEMA}.partner_tier WHERE partner_id = ANY($1::uuid[]) "
                f"ORDER BY since", ids)
            for pid, since, tier in rows:
                out[pid].append((since, tier))
        return out

    async def partner_names(self, partner_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        ids = list(set(partner_ids))
        if not ids:
            return {}
        rows = await self.session.execute(select(Partner.id, Partner.name).where(Partner.id.in_(ids)))
        return {i: n for i, n in rows}

    async def upsert_opportunity(self, values: dict[str, Any]) -> None:
        stmt = pg_insert(Opportunity).values(**values)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[Opportunity.id],
            set_={k: stmt.excluded[k] for k in values if k != "id"} | {"updated_at": func.now()},
            where=Opportunity.version < stmt.excluded.version))

    async def upsert_stage_set(self, stage_set: pc.StageSet) -> None:
        stmt = pg_insert(StageSet).values(key=stage_set.key, version=stage_set.version,
                                          definition=stage_set.model_dump(mode="json"))
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[StageSet.key],
            set_={"version": stmt.excluded.version, "definition": stmt.excluded.definition},
            where=StageSet.version < stmt.excluded.version))

    async def probabilities(self) -> pc.Probabilities:
        """The stage probabilities in force (contracts/pipeline/stages.py)."""
        defined = await self.session.scalars(select(StageSet.definition))
        return pc.probabilities_in_force(pc.StageSet.model_validate(d) for d in defined)

    async def open_opportunities(self, partner_id: uuid.UUID | None, limit: int) -> list[Opportunity]:
        conditions = [Opportunity.outcome == "open", Opportunity.partner_id.is_not(None)]
        if partner_id is not None:
            conditions.append(Opportunity.partner_id == partner_id)
        return list(await self.session.scalars(
            select(Opportunity).where(*conditions)
            .order_by(Opportunity.expected_close_date.nulls_last(), Opportunity.id).limit(limit)))

    async def period_basis(self, agreement_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[str | None, Decimal]]:
        ids = list(agreement_ids)
        if not ids:
            return {}
        rows = await self.session.execute(
            select(AgreementState.agreement_id, AgreementState.period_key, AgreementState.period_basis)
            .where(AgreementState.agreement_id.in_(ids)))
        return {a: (k, b) for a, k, b in rows}
