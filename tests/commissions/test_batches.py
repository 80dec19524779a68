"""Batches through the ledger engine as the consumers hand them over (`engine.ingest`, one transaction per
batch), on the real Postgres: a batch gives exactly the ledger, notes and fold state that the same events
give one at a time; an empty batch writes nothing; duplicates inside a batch change nothing; one batch
may span agreements in several currencies and both directions; and each transaction that writes entries
stages exactly one `entries.posted` event whose totals are those entries."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from contracts import commissions as c
from runtime.db import create_engine, session_factory
from services.commissions import engine, service
from services.commissions.models import CustomerState, LedgerEntry, RevenueNote
from services.commissions.repository import IncomingRevenue

D = Decimal
START = datetime(2026, 1, 5, 9, tzinfo=UTC)
TIERS = [c.Tier(from_amount=D(0), up_to=D(5000), rate=D(10)), c.Tier(from_amount=D(5000), rate=D(20))]
LIFETIME = {"basis": c.Basis.invoice, "duration": c.Duration.lifetime}
# (terms, direction, currency) of each partner's one agreement: every rule kind the fast path steps on.
AGREEMENTS: list[tuple[c.Terms, c.Direction, str]] = [
    (c.Terms(rate=c.FlatRate(rate=D(10)), clawback_days=90), c.Direction.payable, "USD"),
    (c.Terms(rate=c.FlatRate(rate=D(15)), clawback_days=90, **LIFETIME), c.Direction.receivable, "USD"),
    (c.Terms(rate=c.TieredRate(mode=c.TierMode.whole_amount, tiers=TIERS), period=c.RatePeriod.quarter,
             clawback_days=60, **LIFETIME), c.Direction.payable, "EUR"),
    (c.Terms(rate=c.TieredRate(mode=c.TierMode.marginal, tiers=TIERS), period=c.RatePeriod.month, **LIFETIME),
     c.Direction.receivable, "EUR"),
    (c.Terms(rate=c.FlatRate(rate=D(25)), cap_per_deal=D("400.00"), cap_per_period=D("900.00"),
             period=c.RatePeriod.month, clawback_days=30, **LIFETIME), c.Direction.payable, "USD"),
    (c.Terms(rate=c.FlatRate(rate=D(30)), basis=c.Basis.invoice, duration=c.Duration.one_time),
     c.Direction.payable, "GBP"),
    (c.Terms(rate=c.FlatRate(rate=D(20)), basis=c.Basis.invoice, duration=c.Duration.recurring, duration_months=2,
             clawback_days=45), c.Direction.receivable, "USD"),
]


class World:
    """One partner per agreement kind, and a few months of their revenue, under ids no other world uses:
    two worlds built alike hold the same revenue, so their ledgers can be compared line by line."""

    def __init__(self, seed: int = 1) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.partners = [uuid.uuid4() for _ in AGREEMENTS]
        self.seed = seed
        self.names: dict[str, str] = {}

    def opp(self, name: str) -> uuid.UUID:
        o = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.tag}:{name}")
        self.names[str(o)] = name
        return o

    def canon(self, key: str | None) -> str:
        if key is None:
            return ""
        for real, name in self.names.items():
            key = key.replace(real, name)
        return key.replace(self.tag, "T")

    async def agreements(self, sessions) -> list[uuid.UUID]:
        ids = []
        for i, (partner, (terms, direction, currency)) in enumerate(zip(self.partners, AGREEMENTS, strict=True)):
            async with sessions() as s, s.begin():
                a = await service.create_agreement(s, c.CreateAgreement(
                    partner_id=partner, name=f"batch {i}", direction=direction, currency=currency,
                    effective_from=date(2026, 1, 1), terms=terms, actor="tester"))
            ids.append(a.id)
        return ids

    def revenue(self) -> list[IncomingRevenue]:
        """Deals, monthly invoices (some in a currency the agreement does not use), refunds and a churn,
        in business-time order."""
        rnd = random.Random(self.seed)
        out: list[IncomingRevenue] = []
        for p, partner in enumerate(self.partners):
            currency = AGREEMENTS[p][2]
            for k in range(3):
                customer = f"Customer {k} of {p}"
                opp = self.opp(f"opp-{p}-{k}")
                began = START + timedelta(days=rnd.randrange(0, 20), minutes=p * 7 + k)
                out.append(service.deal_incoming(
                    event_id=uuid.uuid4(), opportunity_id=opp, partner_id=partner, customer=customer,
                    amount=D(rnd.randrange(1000, 9000)), currency=currency, won_at=began, deal_model="resale",
                    event_at=began))
                for month in range(4):
                    paid = began + timedelta(days=30 * month + 1)
                    invoice = f"{self.tag}-inv-{p}-{k}-{month}"
                    out.append(service.invoice_incoming(
                        event_id=uuid.uuid4(), invoice_id=invoice, customer=customer, partner_id=partner,
                        opportunity_id=opp, amount=D(rnd.randrange(100_00, 4000_00)) / 100,
                        currency="CHF" if month == 2 and k == 1 else currency, paid_at=paid,
                        customer_started_on=None, deal_model="resale", source="test", actor=None, event_at=paid))
                    if month == 1 and k == 0:
                        out.append(service.refund_incoming(
                            event_id=uuid.uuid4(), refund_id=f"{invoice}-r", invoice_id=invoice, partner_id=None,
                            amount=D("50.00"), currency=currency, refunded_at=paid + timedelta(days=3),
                            source="test", actor=None, event_at=paid + timedelta(days=3)))
                if k == 2:
                    churned = began + timedelta(days=75)
                    out.append(service.churn_incoming(
                        event_id=uuid.uuid4(), customer=customer, partner_id=partner, opportunity_id=None,
                        churned_at=churned, source="test", actor=None, event_at=churned))
        out.sort(key=lambda i: (i.occurred_at, i.kind, i.ref))
        return out


@pytest.fixture
async def sessions(private_db: dict[str, str]) -> AsyncIterator:
    db = create_engine(private_db["commissions"], trace_sql=False)
    yield session_factory(db)
    await db.dispose()


async def feed(sessions, batches: list[list[IncomingRevenue]]) -> list[engine.IngestResult]:
    results = []
    for batch in batches:
        async with sessions() as s, s.begin():
            results.append(await engine.ingest(s, batch))
    return results


async def picture(sessions, world: World) -> dict[int, dict[str, list[tuple]]]:
    """Per partner (by position): its entries, notes and customer state, without ids."""
    out: dict[int, dict[str, list[tuple]]] = {}
    async with sessions() as s:
        for i, partner in enumerate(world.partners):
            entries = (await s.scalars(select(LedgerEntry).where(LedgerEntry.partner_id == partner))).all()
            agreement_id = entries[0].agreement_id if entries else None
            [agreement] = await _agreements(s, partner)
            notes = (await s.execute(select(RevenueNote.revenue_key, RevenueNote.note)
                                     .where(RevenueNote.agreement_id == agreement))).all()
            customers = (await s.execute(
                select(CustomerState.customer, CustomerState.start, CustomerState.booked, CustomerState.invoices,
                       CustomerState.churned_on, CustomerState.deal_commission, CustomerState.deal_model)
                .where(CustomerState.agreement_id == agreement))).all()
            state = (await s.execute(text(
                "SELECT last_at, last_rank, last_ref, period_key, period_basis, period_commission "
                "FROM commissions.agreement_state WHERE agreement_id = :a"), {"a": agreement})).one()
            assert agreement_id in (None, agreement)
            out[i] = {
                "entries": sorted((world.canon(e.line_key), e.entry_type, e.amount, e.basis_amount, e.version,
                                   e.period, e.rule, e.detail, world.canon(e.reverses_key), e.customer,
                                   e.customer_name or "", e.reverses_entry_id is not None) for e in entries),
                "notes": sorted((world.canon(k), world.canon(n)) for k, n in notes),
                "customers": sorted(tuple(r) for r in customers),
                "state": [(state.last_at, state.last_rank, world.canon(state.last_ref), state.period_key,
                           state.period_basis, state.period_commission)],
            }
    return out


async def _agreements(s, partner: uuid.UUID) -> list[uuid.UUID]:
    from services.commissions.repository import AgreementRepository

    return [a.id for a in await AgreementRepository(s).of_partners([partner])]


async def posted_events(sessions, after: int) -> list[tuple[str, dict]]:
    async with sessions() as s:
        rows = (await s.execute(text("SELECT subject, payload FROM commissions.outbox WHERE id > :after ORDER BY id"),
                                {"after": after})).all()
    return [(r.subject, r.payload) for r in rows if r.subject.startswith("commissions.entries.posted")]


async def outbox_mark(sessions) -> int:
    async with sessions() as s:
        return int(await s.scalar(text("SELECT coalesce(max(id), 0) FROM commissions.outbox")) or 0)


class TestBatches:
    async def test_a_batch_gives_the_ledger_of_the_same_events_one_at_a_time(self, sessions):
        one_by_one, batched, chunked = World(seed=3), World(seed=3), World(seed=3)
        for w in (one_by_one, batched, chunked):
            await w.agreements(sessions)
        events = one_by_one.revenue()
        await feed(sessions, [[e] for e in events])
        await feed(sessions, [batched.revenue()])
        rnd = random.Random(9)
        rest, chunks = chunked.revenue(), []
        while rest:
            n = rnd.randrange(1, 12)
            chunk = rest[:n]
            rnd.shuffle(chunk)  # the engine orders a batch itself
            chunks.append(chunk)
            rest = rest[n:]
        await feed(sessions, chunks)
        want = await picture(sessions, one_by_one)
        assert sum(len(p["entries"]) for p in want.values()) > 40
        assert any(e[1] == "clawback" for p in want.values() for e in p["entries"])
        assert any(p["notes"] for p in want.values())
        for other in (batched, chunked):
            got = await picture(sessions, other)
            for i, part in want.items():
                for section, rows in part.items():
                    assert got[i][section] == rows, (i, section, set(got[i][section]) ^ set(rows))

    async def test_an_empty_batch_writes_nothing(self, sessions):
        mark = await outbox_mark(sessions)
        async with sessions() as s, s.begin():
            before = await s.scalar(select(func.count()).select_from(LedgerEntry))
            result = await engine.ingest(s, [])
        assert result.entry_ids == [] and result.stored == {} and result.duplicates == set()
        async with sessions() as s:
            assert await s.scalar(select(func.count()).select_from(LedgerEntry)) == before
        assert await outbox_mark(sessions) == mark

    async def test_a_batch_that_earns_nothing_stages_no_event(self, sessions):
        world = World()
        await world.agreements(sessions)
        mark = await outbox_mark(sessions)
        # Only a deal, under an invoice-basis agreement: stored, folded, nothing earned.
        deal = next(e for e in world.revenue() if e.kind == "deal_won" and e.partner_id == world.partners[1])
        [result] = await feed(sessions, [[deal]])
        assert result.entry_ids == [] and len(result.stored) == 1
        assert await posted_events(sessions, mark) == []

    async def test_duplicates_inside_a_batch_change_nothing(self, sessions):
        clean, noisy = World(seed=5), World(seed=5)
        for w in (clean, noisy):
            await w.agreements(sessions)
        await feed(sessions, [clean.revenue()])
        events = noisy.revenue()
        first, second = events[: len(events) // 2], events[len(events) // 2:]
        await feed(sessions, [first])
        invoice = next(e for e in second if e.kind == "invoice_paid")
        again = IncomingRevenue(**{**invoice.row(), "event_id": uuid.uuid4()})  # the same invoice, another id
        noisy_batch = [*second, second[0], again, first[0], first[-1]]
        [result] = await feed(sessions, [noisy_batch])
        # Stored before: reported as duplicates. Twice inside the batch: taken once.
        assert result.duplicates == {(e.kind, e.ref, e.scope) for e in (first[0], first[-1])}
        assert (invoice.kind, invoice.ref, invoice.scope) in result.stored
        assert await picture(sessions, noisy) == await picture(sessions, clean)
        # Delivered again as a whole: nothing more.
        [again_result] = await feed(sessions, [noisy_batch])
        assert again_result.entry_ids == [] and again_result.stored == {}
        assert again_result.duplicates == {(e.kind, e.ref, e.scope) for e in noisy_batch}
        assert await picture(sessions, noisy) == await picture(sessions, clean)

    async def test_one_posted_event_per_transaction_with_the_totals_of_its_entries(self, sessions):
        world = World(seed=7)
        agreements = await world.agreements(sessions)
        events = world.revenue()
        mark = await outbox_mark(sessions)
        [result] = await feed(sessions, [events])
        posted = await posted_events(sessions, mark)
        assert [subject for subject, _ in posted] == [c.CommissionEntriesPostedV2.subject]
        event = c.CommissionEntriesPostedV2.model_validate_json(posted[0][1])
        async with sessions() as s:
            entries = (await s.scalars(select(LedgerEntry).where(LedgerEntry.id.in_(result.entry_ids)))).all()
        assert len(entries) == len(result.entry_ids) == event.entries > 0
        assert event.first_entry_id == min(result.entry_ids) and event.last_entry_id == max(result.entry_ids)
        assert set(event.agreement_ids) == {e.agreement_id for e in entries} <= set(agreements)
        assert set(event.partner_ids) == {e.partner_id for e in entries}
        want: dict[tuple, list] = defaultdict(lambda: [D(0), 0])
        for e in entries:
            t = want[(e.direction, e.currency, e.period, e.entry_type)]
            t[0] += e.amount
            t[1] += 1
        got = {(t.direction.value, t.currency, t.period, t.entry_type.value): [t.amount, t.entries]
               for t in event.totals}
        assert got == dict(want)
        # Several currencies and both directions in one batch, each total in its own currency.
        assert {t.currency for t in event.totals} == {"USD", "EUR", "GBP"}
        assert {t.direction for t in event.totals} == set(c.Direction)

    async def test_revenue_in_another_currency_earns_nothing_and_says_why(self, sessions):
        world = World(seed=2)
        await world.agreements(sessions)
        await feed(sessions, [world.revenue()])
        async with sessions() as s:
            notes = (await s.scalars(select(RevenueNote.note).where(RevenueNote.revenue_key.like(
                f"invoice_paid:{world.tag}-inv-%-1-2")))).all()
            earned = (await s.scalars(select(LedgerEntry.id).where(LedgerEntry.revenue_key.like(
                f"invoice_paid:{world.tag}-inv-%-1-2")))).all()
        # Partner 0's agreement is on the deal (invoices earn nothing anyway, without a note).
        assert len(notes) == len(AGREEMENTS) - 1 and earned == []
        assert all("the revenue is in CHF" in n and "(no conversion)" in n for n in notes)

    async def test_an_event_older_than_the_batch_before_it_folds_again_to_the_same_ledger(self, sessions):
        in_order, late = World(seed=4), World(seed=4)
        for w in (in_order, late):
            await w.agreements(sessions)
        await feed(sessions, [in_order.revenue()])
        events = late.revenue()
        held_back = [e for e in events if e.kind == "invoice_paid"][5]
        rest = [e for e in events if e is not held_back]
        await feed(sessions, [rest[:40], rest[40:], [held_back]])
        # Same net per line; the late path may have written adjusting entries to get there.
        assert _net(await picture(sessions, late)) == _net(await picture(sessions, in_order))


def _net(p: dict[int, dict[str, list[tuple]]]) -> dict[int, dict[str, Decimal]]:
    out: dict[int, dict[str, Decimal]] = {}
    for i, part in p.items():
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for e in part["entries"]:
            sums[e[0]] += e[2]
        out[i] = {k: v for k, v in sums.items() if v != 0}
    return out


class TestAdjustedLines:
    async def test_a_refund_after_a_correction_reverses_what_the_line_holds_now(self, sessions):
        """The entries of a line are its original and the adjustments of that original: a refund stepped on
        in a later batch must see both (15 % of 1,000.00 corrected to 800.00, then fully refunded)."""
        world = World()
        await world.agreements(sessions)
        partner = world.partners[1]  # flat 15 % lifetime on invoices, 90-day clawback
        paid = START + timedelta(days=2)
        invoice = service.invoice_incoming(
            event_id=uuid.uuid4(), invoice_id=f"{world.tag}-corrected", customer="Adjusted Ltd", partner_id=partner,
            opportunity_id=None, amount=D("1000.00"), currency="USD", paid_at=paid, customer_started_on=None,
            deal_model="resale", source="test", actor=None, event_at=paid)
        corrected = IncomingRevenue(**{**invoice.row(), "event_id": uuid.uuid4(), "amount": D("800.00"),
                                       "event_occurred_at": paid + timedelta(hours=1)})
        refund = service.refund_incoming(
            event_id=uuid.uuid4(), refund_id=f"{world.tag}-corrected-r", invoice_id=invoice.ref, partner_id=None,
            amount=D("800.00"), currency="USD", refunded_at=paid + timedelta(days=10), source="test", actor=None,
            event_at=paid + timedelta(days=10))
        other = service.invoice_incoming(
            event_id=uuid.uuid4(), invoice_id=f"{world.tag}-other", customer="Other Ltd", partner_id=partner,
            opportunity_id=None, amount=D("100.00"), currency="USD", paid_at=paid + timedelta(days=9),
            customer_started_on=None, deal_model="resale", source="test", actor=None,
            event_at=paid + timedelta(days=9))
        await feed(sessions, [[invoice], [corrected], [other, refund]])
        async with sessions() as s:
            entries = (await s.scalars(select(LedgerEntry).where(LedgerEntry.partner_id == partner)
                                       .order_by(LedgerEntry.id))).all()
        kinds = [(e.entry_type, e.amount) for e in entries]
        assert kinds == [("accrual", D("150.00")), ("adjustment", D("-30.00")), ("accrual", D("15.00")),
                         ("clawback", D("-120.00"))]
        assert entries[1].adjusts_entry_id == entries[0].id
        assert entries[3].reverses_entry_id == entries[0].id


class TestDriverStatements:
    """The hot path's statements on the driver connection (runtime.db.session_driver): the link locks taken by the
    revenue insert itself, NULLs through the array parameters, nothing written for nothing, and the
    agreements read with their locked state and every version."""

    async def test_the_revenue_insert_takes_the_batch_link_locks(self, sessions):
        from services.commissions.repository import _LINK_LOCK_SPACE, LINK_BUCKETS, RevenueRepository, hash_bucket

        world = World(seed=11)
        await world.agreements(sessions)
        batch = world.revenue()[:40]
        keys = [k for i in batch for k in engine.link_keys(i)]
        expected = {hash_bucket(k) for k in keys}
        assert 1 < len(expected) < LINK_BUCKETS
        for incoming in (batch, []):  # an empty batch still takes the locks it is given
            async with sessions() as s, s.begin():
                await RevenueRepository(s).insert_new(incoming, keys)
                held = set((await s.execute(text(
                    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                    "AND classid = :space AND granted"), {"space": _LINK_LOCK_SPACE})).scalars())
            assert held == expected

    async def test_nulls_travel_through_the_array_parameters(self, sessions):
        from services.commissions.repository import RevenueRepository, StateRepository

        world = World(seed=12)
        [agreement, *_] = await world.agreements(sessions)
        refund = service.refund_incoming(  # no partner, no deal: NULLs in uuid[] columns
            event_id=uuid.uuid4(), refund_id=f"{world.tag}-r", invoice_id=f"{world.tag}-unknown", partner_id=None,
            amount=D("5.00"), currency="USD", refunded_at=START, source="test", actor=None, event_at=START)
        churn = service.churn_incoming(  # no amount, no currency: NULLs in numeric[] and text[] columns
            event_id=uuid.uuid4(), customer=f"{world.tag} customer", partner_id=world.partners[0],
            opportunity_id=None, churned_at=START, source="test", actor=None, event_at=START)
        async with sessions() as s, s.begin():
            stored = await RevenueRepository(s).insert_new([refund, churn])
            ids = await StateRepository(s).write_back(
                [], [{"agreement_id": agreement, "customer": "nobody", "start": date(2026, 1, 1),
                      "booked": date(2026, 1, 1), "invoices": 0, "churned_on": None, "deal_commission": D(0),
                      "deal_model": None}],
                [{"agreement_id": agreement, "revenue_key": "churn:x", "note": "first"},
                 {"agreement_id": agreement, "revenue_key": "churn:x", "note": "second"}], 3)
        assert len(stored) == 2 and len(ids) == 3 and ids == sorted(ids)
        async with sessions() as s:
            rows = {r.kind: r for r in (await s.execute(text(
                "SELECT kind, partner_id, opportunity_id, amount, currency, invoice_ref FROM commissions.revenue_event "
                "WHERE id = ANY(:ids)"), {"ids": list(stored.values())})).all()}
            customer = (await s.execute(text(
                "SELECT churned_on, deal_model FROM commissions.customer_state WHERE agreement_id = :a "
                "AND customer = 'nobody'"), {"a": agreement})).one()
            notes = (await s.scalars(select(RevenueNote.note).where(RevenueNote.agreement_id == agreement)
                                     .order_by(RevenueNote.id))).all()
        assert (rows["refund"].partner_id, rows["refund"].opportunity_id) == (None, None)
        assert rows["refund"].invoice_ref == f"{world.tag}-unknown"
        assert (rows["churn"].amount, rows["churn"].currency) == (None, None)
        assert tuple(customer) == (None, None)
        assert notes == ["first", "second"]  # in the order given

    async def test_nothing_to_write_back_runs_nothing(self, sessions):
        from services.commissions.repository import StateRepository

        async with sessions() as s, s.begin():
            assert await StateRepository(s).write_back([], [], [], 0) == []
            # No statement ran: the session never opened its transaction on the connection.
            assert not (await (await s.connection()).get_raw_connection()).driver_connection.is_in_transaction()

    async def test_the_context_has_every_version_of_each_agreement_in_effective_order(self, sessions):
        from services.commissions.repository import AgreementRepository

        world = World(seed=13)
        [first, second, *_] = await world.agreements(sessions)
        async with sessions() as s, s.begin():
            await service.add_agreement_version(s, c.AddAgreementVersion(
                agreement_id=first, effective_from=date(2026, 6, 1), terms=AGREEMENTS[0][0], actor="tester"))
        async with sessions() as s, s.begin():
            repo = AgreementRepository(s)
            assert await repo.lock_context([uuid.uuid4()]) == []
            agreements, heads = engine.agreements_with_heads(
                await repo.lock_context([world.partners[0], world.partners[1]]))
            assert [a.id for a in agreements] == sorted([first, second])
            assert [(h.version, h.effective_from) for h in heads[first]] == [(1, date(2026, 1, 1)),
                                                                             (2, date(2026, 6, 1))]
            assert [h.version for h in heads[second]] == [1]
            assert all(a.last_at is None for a in agreements)  # the fold state, as stored


def chunks_of(events: list[IncomingRevenue], seed: int) -> list[list[IncomingRevenue]]:
    rnd, rest, out = random.Random(seed), list(events), []
    while rest:
        n = rnd.randrange(1, 8)
        out.append(rest[:n])
        rest = rest[n:]
    return out


class TestKeptCustomers:
    """The fast path keeps the customers' state it wrote (engine.CUSTOMERS) and uses it while the agreement's
    state row still carries the token of that write: anything written since by anyone else is read again."""

    async def test_replicas_taking_turns_give_the_ledger_of_one_process(self, sessions, monkeypatch):
        from services.commissions.customer_cache import CustomerCache

        alone, together = World(seed=21), World(seed=21)
        for w in (alone, together):
            await w.agreements(sessions)
        await feed(sessions, chunks_of(alone.revenue(), 4))
        # Two processes, each with its own kept state, taking batches in turn (sometimes two in a row).
        replicas = [CustomerCache(), CustomerCache()]
        for i, chunk in enumerate(chunks_of(together.revenue(), 4)):
            monkeypatch.setattr(engine, "CUSTOMERS", replicas[(i // 2) % 2 if i % 5 else (i + 1) % 2])
            await feed(sessions, [chunk])
        assert await picture(sessions, together) == await picture(sessions, alone)

    async def test_a_rolled_back_batch_leaves_nothing_that_is_used(self, sessions):
        straight, retried = World(seed=22), World(seed=22)
        for w in (straight, retried):
            await w.agreements(sessions)
        await feed(sessions, chunks_of(straight.revenue(), 5))
        for chunk in chunks_of(retried.revenue(), 5):
            with pytest.raises(RuntimeError):  # the batch is written, then its transaction rolls back
                async with sessions() as s, s.begin():
                    await engine.ingest(s, chunk)
                    raise RuntimeError("the consumer failed after the engine")
            await feed(sessions, [chunk])  # redelivered
        assert await picture(sessions, retried) == await picture(sessions, straight)

    async def test_the_customers_written_are_not_read_again_by_the_next_batch(self, sessions, monkeypatch):
        from services.commissions.repository import StateRepository

        world = World(seed=23)
        await world.agreements(sessions)
        events = [e for e in world.revenue() if e.partner_id == world.partners[1]]  # deals and invoices
        read: list[set[tuple[uuid.UUID, str]]] = []
        customers = StateRepository.customers

        async def reading(self, pairs):
            read.append(set(pairs))
            return await customers(self, pairs)

        monkeypatch.setattr(StateRepository, "customers", reading)
        # An agreement that has folded nothing has no customers; each later batch follows this process's write.
        await feed(sessions, [events[:3], *[[e] for e in events[3:]]])
        assert read == []
        # A refold (here: the agreement recalculated) writes without a token: the next batch reads again.
        [agreement] = await _agreements_of(sessions, world.partners[1])
        async with sessions() as s, s.begin():
            await engine.recalculate(s, [agreement])
        late = [e for e in events[3:] if e.kind == "invoice_paid"][-1]
        again = IncomingRevenue(**{**late.row(), "event_id": uuid.uuid4(), "ref": f"{late.ref}-later",
                                   "occurred_at": late.occurred_at + timedelta(days=1),
                                   "event_occurred_at": late.occurred_at + timedelta(days=1)})
        await feed(sessions, [[again]])
        assert read == [{(agreement, again.customer)}]


async def _agreements_of(sessions, partner: uuid.UUID) -> list[uuid.UUID]:
    async with sessions() as s:
        return await _agreements(s, partner)


class TestTiersWithTheContext:
    async def test_the_tier_history_read_with_the_context_is_the_one_read_alone(self, sessions):
        from contracts import pipeline as p
        from services.commissions import pipeline_copy
        from services.commissions.repository import AgreementRepository, PipelineCopyRepository

        rates = {t: D(r) for t, r in zip(p.PartnerTier, ("5", "10", "15", "20"), strict=True)}
        partner, other = uuid.uuid4(), uuid.uuid4()
        async with sessions() as s, s.begin():
            await pipeline_copy.on_partners_created(s, [p.PartnerCreatedV1(
                partner_id=partner, name="tiered", type=p.PartnerType.isv, tier=p.PartnerTier.silver,
                status=p.PartnerStatus.active, occurred_at=START - timedelta(days=30))])
            await PipelineCopyRepository(s).add_tier(partner, START + timedelta(days=10), p.PartnerTier.gold.value)
            for who in (partner, other):
                await service.create_agreement(s, c.CreateAgreement(
                    partner_id=who, name="by tier", direction=c.Direction.payable, currency="USD",
                    effective_from=date(2026, 1, 1), terms=c.Terms(rate=c.PartnerTierRate(rates=rates), **LIFETIME),
                    actor="tester"))
        async with sessions() as s, s.begin():
            rows = await AgreementRepository(s).lock_context([partner, other], [partner, other])
            alone = await PipelineCopyRepository(s).tiers([partner, other])
        assert engine.tiers_read_with(rows, {partner, other}) == alone
        assert [t for _, t in alone[partner]] == ["silver", "gold"] and alone[other] == []

        def invoice(n: int, day: int) -> IncomingRevenue:
            at = START + timedelta(days=day)
            return service.invoice_incoming(
                event_id=uuid.uuid4(), invoice_id=f"{partner}-{n}", customer="Acme", partner_id=partner,
                opportunity_id=None, amount=D("1000.00"), currency="USD", paid_at=at, customer_started_on=None,
                deal_model=None, source="test", actor=None, event_at=at)

        # Batches one after another: the second and third read the tiers with the context (the partner needed
        # them in the first), and a tier change recorded in between is seen.
        await feed(sessions, [[invoice(1, 1)], [invoice(2, 12)]])
        async with sessions() as s, s.begin():
            assert await PipelineCopyRepository(s).add_tier(partner, START + timedelta(days=20),
                                                            p.PartnerTier.platinum.value)
        await feed(sessions, [[invoice(3, 25)]])
        async with sessions() as s:
            entries = (await s.scalars(select(LedgerEntry).where(LedgerEntry.partner_id == partner)
                                       .order_by(LedgerEntry.id))).all()
        assert [e.amount for e in entries] == [D("100.00"), D("150.00"), D("200.00")]
