"""Turning revenue into ledger entries: store the facts, attribute them to partners, fold them into each
of the partner's agreements, and append what the ledger is missing. Never commits.

Two paths give the same ledger (tests/commissions/test_domain.py proves the equivalence on random
revenue): events newer than everything an agreement has folded are stepped on from its stored state
(the fast path, one batch of SQL statements for a whole batch of events); anything else - an event
older than the agreement's last, a corrected or voided fact, a changed agreement - folds the partner's
whole revenue again and appends the differences as adjusting entries.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import commissions as c
from contracts.pipeline import PartnerTier
from contracts.quarters import month_start
from runtime.errors import Conflict
from services.commissions import domain
from services.commissions.customer_cache import CUSTOMERS, Known
from services.commissions.models import AgreementVersion, RevenueEvent
from services.commissions.repository import (
    CONTENT_FIELDS,
    AgreementRepository,
    IncomingRevenue,
    LedgerRepository,
    PipelineCopyRepository,
    RevenueRepository,
    StateRepository,
)


def clock() -> datetime:
    """Now, in UTC. Adjusting entries are posted in the current month."""
    return datetime.now(UTC)


@dataclass
class IngestResult:
    stored: dict[tuple[str, str, str], int] = field(default_factory=dict)
    duplicates: set[tuple[str, str, str]] = field(default_factory=set)
    entry_ids: list[int] = field(default_factory=list)


def link_keys(i: IncomingRevenue) -> list[str]:
    keys = []
    if i.kind == "invoice_paid":
        keys.append(f"invoice:{i.ref}")
    if i.kind == "refund":
        keys.append(f"invoice:{i.invoice_ref}")
    if i.kind == "deal_won":
        keys.append(f"opportunity:{i.ref}")
    if i.opportunity_id is not None:
        keys.append(f"opportunity:{i.opportunity_id}")
    return keys


def same_fact(row: RevenueEvent, incoming: IncomingRevenue) -> bool:
    return all(getattr(row, f) == getattr(incoming, f) for f in CONTENT_FIELDS)


# The request field that carries a revenue fact's `ref` (its natural key), so a conflict names a field
# the caller sent: an invoice's ref is its invoice_id, a refund's its refund_id, a churn's the customer.
REQUEST_FIELD_OF_REF = {"invoice_paid": "invoice_id", "refund": "refund_id", "churn": "customer"}


async def ingest(session: AsyncSession, incoming: Sequence[IncomingRevenue], *, strict: bool = False) -> IngestResult:
    """Store revenue facts and post what they earn. `strict` (entry through the API): a different fact under
    a key already stored is a conflict; from the bus, the newer fact replaces the older one."""
    batch = _newest_per_key(incoming)
    revenue = RevenueRepository(session)
    result = IngestResult(stored=await revenue.insert_new(list(batch.values()),
                                                          [k for i in batch.values() for k in link_keys(i)]))
    corrections = await _corrections(revenue, batch, result, strict)
    stored = [(row_id, batch[k]) for k, row_id in result.stored.items()]
    relinked = await _link(revenue, stored, corrections.invoices)
    by_partner, late_partners = await _by_partner(revenue, stored, relinked, corrections.changed,
                                                  late=relinked - set(result.stored.values()))
    refold = corrections.partners | late_partners
    result.entry_ids = await post(session, set(by_partner) | refold, by_partner, refold=refold)
    return result


def _newest_per_key(incoming: Sequence[IncomingRevenue]) -> dict[tuple[str, str, str], IncomingRevenue]:
    """One fact per natural key in a batch: the one that happened last."""
    batch: dict[tuple[str, str, str], IncomingRevenue] = {}
    for i in incoming:
        key = (i.kind, i.ref, i.scope)
        if key not in batch or i.event_occurred_at > batch[key].event_occurred_at:
            batch[key] = i
    return batch


@dataclass
class _Corrections:
    changed: set[int] = field(default_factory=set)  # stored rows replaced by a newer fact
    invoices: list[str] = field(default_factory=list)  # corrected invoices, whose refunds link again
    partners: set[uuid.UUID] = field(default_factory=set)  # partners whose ledger is folded again


async def _corrections(revenue: RevenueRepository, batch: dict[tuple[str, str, str], IncomingRevenue],
                       result: IngestResult, strict: bool) -> _Corrections:
    """Facts under a key already stored: duplicates are noted, a newer different fact replaces the
    stored one (from the bus) or is refused (`strict`)."""
    out = _Corrections()
    conflicts = [k for k in batch if k not in result.stored]
    found = await revenue.by_natural_keys(conflicts)
    # A conflict on the event id alone: that very event was stored before.
    result.duplicates |= set(conflicts) - {(r.kind, r.ref, r.scope) for r in found}
    for row in found:
        key = (row.kind, row.ref, row.scope)
        new = batch[key]
        if same_fact(row, new) or (new.event_occurred_at <= row.event_occurred_at and not strict):
            result.duplicates.add(key)
            continue
        if strict:
            differs = ", ".join(f for f in CONTENT_FIELDS if getattr(row, f) != getattr(new, f))
            raise Conflict(f"{row.kind} {row.ref} is already recorded with a different {differs}",
                           field=REQUEST_FIELD_OF_REF.get(row.kind, "ref"))
        await revenue.replace(row.id, new)
        out.changed.add(row.id)
        if new.kind == "invoice_paid":
            out.invoices.append(new.ref)
        out.partners |= {p for p in (row.partner_id, new.partner_id) if p is not None}
    return out


async def _link(revenue: RevenueRepository, stored: list[tuple[int, IncomingRevenue]],
                corrected_invoices: list[str]) -> set[int]:
    """Attribute new revenue to partners through its deal, complete refunds from their invoices, and
    link the stored revenue that was waiting for these facts; the ids of the rows the linking changed."""
    waiting = await revenue.waiting_for(
        invoices=[i.ref for _, i in stored if i.kind == "invoice_paid"] + corrected_invoices,
        opportunities=[i.ref for _, i in stored if i.kind == "deal_won"])
    unattributed = [row_id for row_id, i in stored if i.partner_id is None and i.opportunity_id is not None]
    refunds = [row_id for row_id, i in stored if i.kind == "refund"]
    linked = await revenue.attribute_by_deal(unattributed + waiting)
    linked += await revenue.enrich_refunds(refunds + waiting)
    return {row_id for row_id, _ in linked}


async def _by_partner(revenue: RevenueRepository, stored: list[tuple[int, IncomingRevenue]], relinked: set[int],
                      changed: set[int], *, late: set[int],
                      ) -> tuple[dict[uuid.UUID, list[domain.Revenue]], set[uuid.UUID]]:
    """The revenue to post, per partner, and the partners a late-linked row makes fold again."""
    by_partner: dict[uuid.UUID, list[domain.Revenue]] = defaultdict(list)
    # Rows stored as they came need not be read back; rows the linking changed are.
    for row_id, i in stored:
        if row_id not in relinked and i.partner_id is not None and not i.void:
            by_partner[i.partner_id].append(revenue_from(i))
    refold: set[uuid.UUID] = set()
    for r in await revenue.by_ids(relinked | changed):
        if r.partner_id is not None and not r.void:
            by_partner[r.partner_id].append(revenue_of(r))
            if r.id in late:
                refold.add(r.partner_id)
    return by_partner, refold


async def void_deal(session: AsyncSession, opportunity_id: uuid.UUID, at: datetime) -> list[int]:
    """A won opportunity was reopened: its revenue no longer counts."""
    revenue = RevenueRepository(session)
    await revenue.lock_links([f"opportunity:{opportunity_id}"])
    row = await revenue.void_deal(opportunity_id, at)
    if row is None or row.partner_id is None:
        return []
    return await post(session, {row.partner_id}, {}, refold={row.partner_id})


async def recalculate(session: AsyncSession, agreement_ids: Iterable[uuid.UUID]) -> list[int]:
    """Fold agreements again from all their revenue and append the differences."""
    agreements = AgreementRepository(session)
    found = [a for a in [await agreements.get(i) for i in agreement_ids] if a is not None]
    await agreements.lock_partners({a.partner_id for a in found}, exclusive=True)
    return await post(session, {a.partner_id for a in found}, {}, refold={a.partner_id for a in found},
                      only={a.id for a in found})


# ------------------------------------------------------------------------------------------ posting


_KINDS = {k.value: k for k in c.RevenueKind}


def revenue_from(i: IncomingRevenue) -> domain.Revenue:
    opportunity = str(i.opportunity_id) if i.opportunity_id else (i.ref if i.kind == "deal_won" else None)
    return domain.Revenue(
        kind=_KINDS[i.kind], ref=i.ref, at=i.occurred_at, customer=i.customer, amount=i.amount,
        currency=i.currency, opportunity_id=opportunity, deal_model=i.deal_model,
        customer_started_on=i.customer_started_on, invoice_ref=i.invoice_ref, customer_name=i.customer_name,
        pipeline=i.pipeline,
    )


def revenue_of(r: Any) -> domain.Revenue:
    opportunity = str(r.opportunity_id) if r.opportunity_id else (r.ref if r.kind == "deal_won" else None)
    return domain.Revenue(
        kind=c.RevenueKind(r.kind), ref=r.ref, at=r.occurred_at, customer=r.customer, amount=r.amount,
        currency=r.currency, opportunity_id=opportunity, deal_model=r.deal_model,
        customer_started_on=r.customer_started_on, invoice_ref=r.invoice_ref, customer_name=r.customer_name,
        pipeline=r.pipeline,
    )


TermsKey = tuple[uuid.UUID, int, int]
# A version's terms change only through a correction, which bumps its revision: parsed terms are kept per
# (agreement, version, revision), so the hot path neither reads nor validates them again.
_TERMS: dict[TermsKey, c.Terms] = {}


def _terms(v: AgreementVersion) -> c.Terms:
    key = (v.agreement_id, v.version, v.revision)
    found = _TERMS.get(key)
    if found is None:
        if len(_TERMS) > 20_000:
            _TERMS.clear()
        found = _TERMS[key] = c.Terms.model_validate(v.terms)
    return found


def spec_of(agreement: Any, versions: Sequence[Any], terms: Mapping[TermsKey, c.Terms] | None = None,
            ) -> domain.AgreementSpec:
    """The agreement as the fold sees it. `versions` are ORM versions (terms read from them) or version
    heads without terms, whose terms `terms` holds."""
    return domain.AgreementSpec(
        id=str(agreement.id), currency=agreement.currency,
        deal_models=frozenset(m.lower() for m in agreement.deal_models) if agreement.deal_models else None,
        versions=tuple(
            domain.Version(number=v.version, effective_from=v.effective_from, effective_to=v.effective_to,
                           retroactive=v.retroactive, revision=v.revision,
                           terms=terms[(v.agreement_id, v.version, v.revision)] if terms is not None else _terms(v))
            for v in sorted(versions, key=lambda v: v.effective_from)
        ),
    )


# The spec an agreement was last built with, under what its versions' heads and its own row said then.
_SPECS: dict[uuid.UUID, tuple[tuple[Any, ...], domain.AgreementSpec]] = {}


class VersionHead(NamedTuple):
    agreement_id: uuid.UUID
    version: int
    revision: int
    effective_from: date
    effective_to: date | None
    retroactive: bool


class LockedAgreement(NamedTuple):
    """An agreement as `lock_context` read it, with its fold state (the row locked)."""

    id: uuid.UUID
    partner_id: uuid.UUID
    name: str
    direction: str
    currency: str
    deal_models: list[str] | None
    last_at: datetime | None
    last_rank: int | None
    last_ref: str | None
    period_key: str | None
    period_basis: Decimal
    period_commission: Decimal
    state_token: uuid.UUID | None


_AGREEMENT_FIELDS = LockedAgreement._fields
_HEAD_FIELDS = VersionHead._fields[1:]


def agreements_with_heads(rows: Sequence[Any]) -> tuple[list[LockedAgreement], dict[uuid.UUID, list[VersionHead]]]:
    """`AgreementRepository.lock_context`'s rows (one per agreement and version) as agreements and their
    version heads. Built once per row by column name (a row's `__getitem__`; its attribute access is a Python
    call per column, and the fast path reads these a dozen times per agreement)."""
    agreements: list[LockedAgreement] = []
    heads: dict[uuid.UUID, list[VersionHead]] = {}
    for r in rows:
        agreement_id = r["id"]
        found = heads.get(agreement_id)
        if found is None:
            agreements.append(LockedAgreement._make([r[f] for f in _AGREEMENT_FIELDS]))
            found = heads[agreement_id] = []
        if r["version"] is not None:
            found.append(VersionHead(agreement_id, *[r[f] for f in _HEAD_FIELDS]))
    return agreements, heads


async def specs_of(repo: AgreementRepository, agreements: Sequence[Any],
                   heads: Mapping[uuid.UUID, Sequence[Any]] | None = None) -> dict[uuid.UUID, domain.AgreementSpec]:
    """Specs of these agreements: their versions' heads in one statement (unless given); terms read only for
    revisions not seen before, and a spec built again only when the agreement or one of its version heads
    changed."""
    if heads is None:
        heads = await repo.version_heads(a.id for a in agreements)
    out: dict[uuid.UUID, domain.AgreementSpec] = {}
    stale = []
    for a in agreements:
        signature = (a.currency, tuple(a.deal_models or ()), *heads[a.id])
        cached = _SPECS.get(a.id)
        if cached is not None and cached[0] == signature:
            out[a.id] = cached[1]
        else:
            stale.append((a, signature))
    if not stale:
        return out
    keys = {(v.agreement_id, v.version, v.revision) for a, _ in stale for v in heads[a.id]}
    known = {k: _TERMS[k] for k in keys if k in _TERMS}
    missing = keys - known.keys()
    if missing:
        if len(_TERMS) > 20_000:
            _TERMS.clear()
        for k, raw in (await repo.terms_of(missing)).items():
            known[k] = _TERMS[k] = c.Terms.model_validate(raw)
    if len(_SPECS) > 20_000:
        _SPECS.clear()
    for a, signature in stale:
        spec = out[a.id] = spec_of(a, heads[a.id], known)
        _SPECS[a.id] = (signature, spec)
    return out


def needs_tiers(terms: c.Terms) -> bool:
    """Rates by partner tier, and SPIFs for some tiers, read the partner's tier history."""
    return isinstance(terms.rate, c.PartnerTierRate) or (isinstance(terms.rate, c.SpifRate) and bool(terms.rate.tiers))


# Whether a spec needs the partner's tiers, kept per spec (specs are kept too: see `specs_of`).
_SPEC_NEEDS_TIERS: dict[int, tuple[domain.AgreementSpec, bool]] = {}


def spec_needs_tiers(spec: domain.AgreementSpec) -> bool:
    found = _SPEC_NEEDS_TIERS.get(id(spec))
    if found is None or found[0] is not spec:
        if len(_SPEC_NEEDS_TIERS) > 20_000:
            _SPEC_NEEDS_TIERS.clear()
        found = _SPEC_NEEDS_TIERS[id(spec)] = (spec, any(needs_tiers(v.terms) for v in spec.versions))
    return found[1]


def tier_history(rows: Sequence[tuple[datetime, str]]) -> list[tuple[datetime, PartnerTier]]:
    return [(since, PartnerTier(tier)) for since, tier in rows]


def state_of(row: Any) -> domain.FoldState:
    state = domain.FoldState()
    if row.last_at is not None:
        state.last = (row.last_at, row.last_rank or 0, row.last_ref or "")
    if row.period_key is not None:
        state.period = domain.PeriodState(row.period_key, row.period_basis, row.period_commission)
    return state


def customer_state(row: Any) -> domain.CustomerState:
    return domain.CustomerState(start=row.start, booked=row.booked, invoices=row.invoices, churned_on=row.churned_on,
                                deal_commission=row.deal_commission, deal_model=row.deal_model)


def state_row(agreement_id: uuid.UUID, state: domain.FoldState) -> dict[str, Any]:
    last = state.last
    return {"agreement_id": agreement_id, "last_at": last[0] if last else None, "last_rank": last[1] if last else None,
            "last_ref": last[2] if last else None, "period_key": state.period.key if state.period else None,
            "period_basis": state.period.basis if state.period else Decimal(0),
            "period_commission": state.period.commission if state.period else Decimal(0)}


def customer_rows(agreement_id: uuid.UUID, customers: dict[str, domain.CustomerState],
                  unchanged: Mapping[tuple[uuid.UUID, str], tuple[Any, ...]] | None = None) -> list[dict[str, Any]]:
    """Rows of customer state to write; with `unchanged` (as read before the fold), only those that differ."""
    out = []
    for k, s in customers.items():
        if unchanged is not None and unchanged.get((agreement_id, k)) == _customer_values(s):
            continue
        out.append({"agreement_id": agreement_id, "customer": k, "start": s.start, "booked": s.booked,
                    "invoices": s.invoices, "churned_on": s.churned_on, "deal_commission": s.deal_commission,
                    "deal_model": s.deal_model})
    return out


def _customer_values(s: domain.CustomerState) -> tuple[Any, ...]:
    return (s.start, s.booked, s.invoices, s.churned_on, s.deal_commission, s.deal_model)


def posted_row(r: Any) -> domain.PostedRow:
    return domain.PostedRow(id=r.id, line_key=r.line_key, entry_type=c.EntryType(r.entry_type), rule=r.rule,
                            amount=r.amount, basis_amount=r.basis_amount, reverses=r.reverses_key, version=r.version,
                            customer=r.customer, revenue_at=r.revenue_at, period=r.period)


@dataclass
class _Work:
    """What one transaction appends for one agreement."""

    agreement: Any  # an agreement row: id, partner_id, direction, currency
    lines: list[domain.Line] = field(default_factory=list)
    adjustments: list[domain.Adjustment] = field(default_factory=list)
    posted: dict[str, domain.PostedRow] = field(default_factory=dict)  # first stored entry per line key
    reasons: dict[str, str] = field(default_factory=dict)  # why a revenue key earns nothing now
    names: dict[str, str] = field(default_factory=dict)  # customer key -> the name as written


async def post(session: AsyncSession, partner_ids: set[uuid.UUID], by_partner: dict[uuid.UUID, list[domain.Revenue]],
               *, refold: set[uuid.UUID], only: set[uuid.UUID] | None = None) -> list[int]:
    """Post what new revenue earns under the partners' agreements: stepped on from the stored state
    when it comes after everything folded so far, else folded again from scratch (`refold`)."""
    if not partner_ids:
        return []
    ctx = await _context(session, partner_ids, only)
    if ctx is None:
        return []
    fast, refolds = _split(ctx, by_partner, refold)
    back = _WriteBack()
    work = await _step_on(session, ctx, fast, back) if fast else []
    work += await _fold_again(session, ctx, refolds)
    return await _append(session, work, back)


@dataclass
class _WriteBack:
    """What stepping on writes back (fold and customer state, notes), written with the entries' ids taken."""

    states: list[dict[str, Any]] = field(default_factory=list)
    customers: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    # The state token the states are written under, and per agreement what is then known of its customers
    # (for CUSTOMERS once written).
    token: uuid.UUID = field(default_factory=uuid.uuid4)
    known: list[tuple[uuid.UUID, Known, bool]] = field(default_factory=list)


@dataclass
class _Context:
    """The agreements a posting touches, locked, with their state, specs and partners' tier history."""

    agreements: list[Any]
    states: dict[uuid.UUID, Any]
    specs: dict[uuid.UUID, domain.AgreementSpec]
    tiers: dict[uuid.UUID, list[tuple[datetime, PartnerTier]]]


async def _context(session: AsyncSession, partner_ids: set[uuid.UUID], only: set[uuid.UUID] | None,
                   ) -> _Context | None:
    agreements_repo = AgreementRepository(session)
    if only is None:
        await agreements_repo.lock_partners(partner_ids, exclusive=False)
    # Each agreement with its fold state (locked) and its versions' heads, and the tier history of the partners
    # whose agreements needed it last time.
    expected = partner_ids & _TIERED_PARTNERS
    rows = await agreements_repo.lock_context(partner_ids, expected)
    agreements, heads = agreements_with_heads(rows)
    agreements = [a for a in agreements if only is None or a.id in only]
    if not agreements:
        return None
    states = {a.id: a for a in agreements}
    specs = await specs_of(agreements_repo, agreements, heads)
    tier_partners = {a.partner_id for a in agreements if spec_needs_tiers(specs[a.id])}
    if len(_TIERED_PARTNERS) > 50_000:
        _TIERED_PARTNERS.clear()
    _TIERED_PARTNERS.difference_update({a.partner_id for a in agreements} - tier_partners)
    _TIERED_PARTNERS.update(tier_partners)
    tiers = {p: tier_history(found) for p, found in tiers_read_with(rows, tier_partners & expected).items()}
    if tier_partners - expected:
        read = await PipelineCopyRepository(session).tiers(tier_partners - expected)
        tiers.update((p, tier_history(found)) for p, found in read.items())
    return _Context(agreements, states, specs, tiers)


# Partners whose agreements needed their tier history in their last batch: `lock_context` reads it for them.
_TIERED_PARTNERS: set[uuid.UUID] = set()


def tiers_read_with(rows: Sequence[Any], partners: set[uuid.UUID]) -> dict[uuid.UUID, list[tuple[datetime, str]]]:
    """The tier history of `partners` from `lock_context`'s rows (read for them there), as
    `PipelineCopyRepository.tiers` gives it."""
    out: dict[uuid.UUID, list[tuple[datetime, str]]] = {}
    for r in rows:
        partner = r["partner_id"]
        if partner in partners and partner not in out:
            out[partner] = list(zip(r["tier_since"] or (), r["tier_names"] or (), strict=True))
    return out


def _split(ctx: _Context, by_partner: dict[uuid.UUID, list[domain.Revenue]], refold: set[uuid.UUID],
           ) -> tuple[list[tuple[Any, list[domain.Revenue]]], list[Any]]:
    """Agreements whose new events all come after the last one folded (stepped on) and the others."""
    fast: list[tuple[Any, list[domain.Revenue]]] = []
    refolds: list[Any] = []
    for a in ctx.agreements:
        unique = {e.key: e for e in by_partner.get(a.partner_id, ())}
        events = sorted(unique.values(), key=lambda e: e.order)
        state = ctx.states[a.id]
        last = (state.last_at, state.last_rank or 0, state.last_ref or "") if state.last_at else None
        if a.partner_id in refold or (events and last is not None and events[0].order <= last):
            refolds.append(a)
        elif events:
            fast.append((a, events))
    return fast, refolds


async def _stored_customers(states_repo: StateRepository, ctx: _Context,
                            fast: list[tuple[Any, list[domain.Revenue]]]) -> dict[uuid.UUID, tuple[Known, bool]]:
    """Per agreement, what is known of its customers' stored state: kept from this process's last write of the
    agreement when no one wrote it since (CUSTOMERS), completed by reading the customers the events name that
    are not known yet (None: no row)."""
    known_by: dict[uuid.UUID, tuple[Known, bool]] = {}
    missing: set[tuple[uuid.UUID, str]] = set()
    for a, events in fast:
        stored = ctx.states[a.id]
        known, complete = known_by[a.id] = CUSTOMERS.take(a.id, stored.state_token, folded=stored.last_at is not None)
        for e in events:
            if e.customer and e.customer not in known:
                if complete:
                    known[e.customer] = None
                else:
                    missing.add((a.id, e.customer))
    if missing:
        for cs in await states_repo.customers(missing):
            known_by[cs.agreement_id][0][cs.customer] = customer_state(cs)
        for agreement_id, customer in missing:
            known_by[agreement_id][0].setdefault(customer, None)
    return known_by


async def _reversible(ledger: LedgerRepository, fast: list[tuple[Any, list[domain.Revenue]]],
                      ) -> dict[uuid.UUID, list[domain.PostedRow]]:
    """Refunds and churns need the entries they reverse: one statement for the batch."""
    line_keys = {(a.id, k) for a, events in fast for e in events if e.kind is c.RevenueKind.refund
                 for k in ([f"invoice_paid:{e.invoice_ref}"]
                           + ([f"deal_won:{e.opportunity_id}"] if e.opportunity_id else []))}
    churned = {(a.id, e.customer) for a, events in fast for e in events if e.kind is c.RevenueKind.churn}
    posted_rows: dict[uuid.UUID, list[domain.PostedRow]] = defaultdict(list)
    for r in await ledger.rows_for_lines(line_keys, churned):
        posted_rows[r.agreement_id].append(posted_row(r))
    return posted_rows


async def _step_on(session: AsyncSession, ctx: _Context, fast: list[tuple[Any, list[domain.Revenue]]],
                   back: _WriteBack) -> list[_Work]:
    """Step each agreement's new events on from its stored state (the common case); what that changes in
    the stored state is left in `back` for `_append` to write."""
    states_repo, ledger = StateRepository(session), LedgerRepository(session)
    known_by = await _stored_customers(states_repo, ctx, fast)
    posted_rows = await _reversible(ledger, fast)
    work: list[_Work] = []
    state_updates, customer_upserts, notes = back.states, back.customers, back.notes
    for a, events in fast:
        spec, state = ctx.specs[a.id], state_of(ctx.states[a.id])
        known, complete = known_by[a.id]
        state.customers = {k: known[k] for k in {e.customer for e in events if e.customer} if known[k] is not None}
        as_read = {(a.id, k): _customer_values(cs) for k, cs in state.customers.items()}
        rows = posted_rows.get(a.id, [])
        book = domain.LineBook(domain.facts_from_rows(rows))
        w = _Work(a, names=_names(events))
        for r in sorted(rows, key=lambda r: r.id):
            w.posted.setdefault(r.line_key, r)
        for ev in events:
            lines, why = domain.step(spec, state, book, ev, ctx.tiers.get(a.partner_id, ()))
            w.lines += lines
            notes += [{"agreement_id": a.id, "revenue_key": ev.key, "note": n} for n in why]
        work.append(w)
        state_updates.append(state_row(a.id, state))
        customer_upserts += customer_rows(a.id, state.customers, as_read)
        known.update(state.customers)
        back.known.append((a.id, known, complete))
    return work


async def _fold_again(session: AsyncSession, ctx: _Context, refolds: list[Any]) -> list[_Work]:
    """Fold each agreement's whole history again and keep the difference to its ledger as adjustments."""
    states_repo, ledger, revenue = StateRepository(session), LedgerRepository(session), RevenueRepository(session)
    work: list[_Work] = []
    for a in refolds:
        CUSTOMERS.drop(a.id)  # its state is written without a token (`StateRepository.save`)
        history = [revenue_of(r) for r in await revenue.of_partner(a.partner_id)]
        result = domain.fold(ctx.specs[a.id], history, ctx.tiers.get(a.partner_id, ()))
        rows = [posted_row(r) for r in await ledger.rows_of(a.id)]
        new, adjustments = domain.differences(result.lines, domain.posted_from_rows(rows))
        first: dict[str, domain.PostedRow] = {}
        for r in sorted(rows, key=lambda r: r.id):
            first.setdefault(r.line_key, r)
        reasons: dict[str, str] = {}
        for key, note in result.notes:
            reasons.setdefault(key, note)
        work.append(_Work(a, lines=new, adjustments=adjustments, posted=first, reasons=reasons,
                          names=_names(history)))
        await states_repo.save([state_row(a.id, result.state)])
        await states_repo.replace_customers(a.id, customer_rows(a.id, result.state.customers))
        await states_repo.replace_notes(a.id, [{"agreement_id": a.id, "revenue_key": k, "note": n}
                                               for k, n in result.notes])
    return work


async def _append(session: AsyncSession, work: Sequence[_Work], back: _WriteBack) -> list[int]:
    """Write the entries in one COPY, with ids taken from the table's sequence first (in the statement that
    writes `back`) so clawbacks can refer to the accruals they reverse, and stage one `entries.posted` event
    for the transaction."""
    ledger = LedgerRepository(session)
    this_month = month_start(clock().date())
    firsts: list[dict[str, Any]] = []
    seconds: list[tuple[_Work, dict[str, Any]]] = []
    for w in work:
        for line in w.lines:
            row = _entry(w.agreement, line.key, c.EntryType(line.entry_type), line.amount, line.period, line)
            row["customer_name"] = w.names.get(line.customer)
            if line.reverses is None:
                firsts.append(row)
            else:
                seconds.append((w, row))
        for adj in w.adjustments:
            original = w.posted[adj.key]
            source = adj.line
            period = max(this_month, source.period if source else original.period)
            if source is not None:
                detail = f"recalculated: now {domain.money(source.amount)} ({source.detail})"
            else:
                reason = w.reasons.get(original_revenue_key(original), "no longer earned under the current terms")
                detail = f"reversed: {reason}"
            row = _entry(w.agreement, adj.key, c.EntryType.adjustment, adj.delta, period, source, original=original,
                         detail=detail)
            row["adjusts_entry_id"] = adj.adjusts_entry_id
            row["customer_name"] = w.names.get(row["customer"])
            seconds.append((w, row))
    # Originals get the lower ids: a line's first entry (by id) is its original.
    ids = await StateRepository(session).write_back(back.states, back.customers, back.notes,
                                                    len(firsts) + len(seconds), back.token)
    for agreement_id, known, complete in back.known:
        CUSTOMERS.keep(agreement_id, back.token, known, complete)
    if not firsts and not seconds:
        return []
    new_ids: dict[tuple[uuid.UUID, str], int] = {}
    for entry_id, row in zip(ids, firsts, strict=False):
        row["id"] = entry_id
        new_ids[(row["agreement_id"], row["line_key"])] = entry_id
    missing: dict[uuid.UUID, set[str]] = defaultdict(set)
    for w, row in seconds:
        target = row["reverses_key"]
        if target and (w.agreement.id, target) not in new_ids and target not in w.posted:
            missing[w.agreement.id].add(target)
    looked_up: dict[tuple[uuid.UUID, str], int] = {}
    for agreement_id, keys in missing.items():
        for key, entry_id in (await ledger.first_ids(agreement_id, keys)).items():
            looked_up[(agreement_id, key)] = entry_id
    second_rows = []
    for entry_id, (w, row) in zip(ids[len(firsts):], seconds, strict=True):
        row["id"] = entry_id
        target = row["reverses_key"]
        if target and row["entry_type"] == c.EntryType.clawback.value:
            found = new_ids.get((w.agreement.id, target)) or looked_up.get((w.agreement.id, target))
            row["reverses_entry_id"] = found if found is not None else w.posted[target].id
        second_rows.append(row)
    rows = firsts + second_rows
    await ledger.insert_posted(rows, [posted_event(rows)])
    return ids


def _names(events: Iterable[domain.Revenue]) -> dict[str, str]:
    return {e.customer: e.customer_name for e in events if e.customer_name}


def original_revenue_key(row: domain.PostedRow) -> str:
    # Line keys of accruals and refund clawbacks are their revenue keys; churn clawbacks are "<churn>><line>".
    return row.line_key.split(">")[0]


def _entry(agreement: Any, key: str, entry_type: c.EntryType, amount: Decimal, period: date,
           line: domain.Line | None, *, original: domain.PostedRow | None = None,
           detail: str | None = None) -> dict[str, Any]:
    if line is not None:
        source: dict[str, Any] = {
            "basis_amount": line.basis_amount, "reverses_key": line.reverses, "revenue_key": line.revenue_key,
            "revenue_at": line.revenue_at, "customer": line.customer, "version": line.version,
            "revision": line.revision, "rule": line.rule if entry_type is not c.EntryType.adjustment else "adjustment",
            "detail": detail or line.detail,
        }
    else:
        assert original is not None
        source = {
            "basis_amount": original.basis_amount, "reverses_key": original.reverses,
            "revenue_key": original_revenue_key(original), "revenue_at": original.revenue_at,
            "customer": original.customer, "version": original.version, "revision": 0, "rule": "adjustment",
            "detail": detail or "",
        }
    return {"agreement_id": agreement.id, "partner_id": agreement.partner_id, "direction": agreement.direction,
            "currency": agreement.currency, "entry_type": entry_type.value, "amount": amount, "period": period,
            "line_key": key, "reverses_entry_id": None, "adjusts_entry_id": None, **source}


def posted_event(rows: Sequence[dict[str, Any]]) -> c.CommissionEntriesPostedV2:
    """The transaction's entries as one event: totals per direction, currency, month and type."""
    totals: dict[tuple[str, str, date, str], list[Any]] = {}
    for row in rows:
        t = totals.setdefault((row["direction"], row["currency"], row["period"], row["entry_type"]), [Decimal(0), 0])
        t[0] += row["amount"]
        t[1] += 1
    ids = [row["id"] for row in rows]
    return c.CommissionEntriesPostedV2(
        totals=[c.PostedTotal(direction=c.Direction(d), currency=cur, period=p, entry_type=c.EntryType(t),
                              amount=v[0], entries=v[1]) for (d, cur, p, t), v in sorted(totals.items())],
        agreement_ids=sorted({row["agreement_id"] for row in rows}),
        partner_ids=sorted({row["partner_id"] for row in rows}),
        entries=len(rows), first_entry_id=min(ids), last_entry_id=max(ids))
