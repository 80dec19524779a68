"""The commissions service on real Postgres and NATS: agreements and their audit, recalculation with
adjusting entries, the append-only ledger, approval and payment, statements, revenue entered through
commands, the consumers under malformed, duplicate, out-of-order and hostile input, and the forecast."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import pytest

from contracts import billing as b
from contracts import commissions as c
from contracts import pipeline as p
from runtime import deadletter
from runtime.commands import send
from runtime.db import plain_dsn
from runtime.errors import CommandFailed
from services.commissions import engine
from tests.commissions.helpers import flat_terms, known_partner, ledger, make_agreement, publish, settled

D = Decimal
NOW = datetime(2026, 11, 15, 9, tzinfo=UTC)


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T12:00:00+00:00")


@pytest.fixture(autouse=True)
def november(monkeypatch):
    """Adjusting entries go into the current month; the tests say which month that is."""
    monkeypatch.setattr(engine, "clock", lambda: NOW)


def invoice(partner_id: uuid.UUID, ref: str, amount: str, day: str, customer: str = "Acme", **kw) -> b.InvoicePaidV1:
    return b.InvoicePaidV1(invoice_id=ref, customer=customer, partner_id=partner_id, amount=D(amount), currency="USD",
                           paid_at=at(day), **kw)


def won(partner_id: uuid.UUID | None, opp: uuid.UUID, amount: str, day: str, customer: str = "Acme",
        **kw) -> p.OpportunityWonV1:
    return p.OpportunityWonV1(opportunity_id=opp, partner_id=partner_id, amount=D(amount), currency="USD",
                              deal_model=kw.pop("deal_model", p.DealModel.resale), customer=customer, owner=None,
                              pipeline="resale", source=p.Source.manual, won_at=at(day), **kw)


async def failure(coro) -> CommandFailed:
    with pytest.raises(CommandFailed) as caught:
        await coro
    return caught.value


def ref() -> str:
    return f"INV-{uuid.uuid4().hex[:10]}"


class TestAgreements:
    async def test_every_change_is_audited_with_who_when_and_old_and_new_terms(self, bus_client):
        partner = uuid.uuid4()
        a = await make_agreement(bus_client, partner, flat_terms("10"), name="Referral fee")
        a = await send(bus_client, c.AddAgreementVersion(agreement_id=a.id, effective_from=date(2026, 7, 1),
                                                         terms=flat_terms("15"), actor="maria@example.com"))
        assert [(v.version, v.effective_from, v.effective_to) for v in a.versions] == [
            (1, date(2026, 1, 1), date(2026, 7, 1)), (2, date(2026, 7, 1), None)]
        a = await send(bus_client, c.UpdateAgreementVersion(
            agreement_id=a.id, version=2, effective_from=date(2026, 7, 1), terms=flat_terms("12"),
            actor="vp@example.com"))
        assert a.versions[1].revision == 2 and a.versions[1].updated_by == "vp@example.com"
        await send(bus_client, c.UpdateAgreement(agreement_id=a.id, name="Referral fee (2026)", actor="tom"))

        audit = (await send(bus_client, c.GetAgreementAudit(agreement_id=a.id))).items
        assert [(r.action, r.version, r.actor) for r in audit] == [
            ("created", 1, "tester"), ("version_ended", 1, "maria@example.com"),
            ("version_added", 2, "maria@example.com"), ("version_updated", 2, "vp@example.com"),
            ("updated", None, "tom")]
        updated = audit[3]
        assert updated.old["terms"]["rate"]["rate"] == "15" and updated.new["terms"]["rate"]["rate"] == "12"
        assert audit[1].old["effective_to"] is None and audit[1].new["effective_to"] == "2026-07-01"
        assert audit[4].old == {"name": "Referral fee", "deal_models": None}
        assert all(r.at is not None for r in audit)

    async def test_an_unchanged_correction_records_nothing(self, bus_client):
        a = await make_agreement(bus_client, uuid.uuid4(), flat_terms("10"))
        same = await send(bus_client, c.UpdateAgreementVersion(
            agreement_id=a.id, version=1, effective_from=date(2026, 1, 1), terms=flat_terms("10"), actor="x"))
        assert same.versions[0].revision == 1
        assert len((await send(bus_client, c.GetAgreementAudit(agreement_id=a.id))).items) == 1

    @pytest.mark.parametrize("terms, field, words", [
        (flat_terms("120"), "terms.rate.rate", "outside 0-100%"),
        (c.Terms(rate=c.TieredRate(mode=c.TierMode.marginal, tiers=[
            c.Tier(from_amount=D(0), up_to=D(50000), rate=D(10)), c.Tier(from_amount=D(60000), rate=D(15))])),
         "terms.rate.tiers.1.from_amount", "gap between tiers"),
        (flat_terms("10", basis=c.Basis.invoice, duration=c.Duration.recurring), "terms.duration_months",
         "recurring commission needs duration_months"),
    ])
    async def test_invalid_terms_are_refused_with_the_field_and_the_reason(self, bus_client, terms, field, words):
        error = (await failure(make_agreement(bus_client, uuid.uuid4(), terms))).error
        assert (error.kind, error.field) == ("invalid", field) and words in error.message

    async def test_overlapping_versions_are_refused(self, bus_client):
        a = await make_agreement(bus_client, uuid.uuid4(), flat_terms("10"), effective_to=date(2026, 12, 31))
        error = (await failure(send(bus_client, c.AddAgreementVersion(
            agreement_id=a.id, effective_from=date(2026, 6, 1), terms=flat_terms("12"))))).error
        assert error.kind == "invalid" and error.field == "effective_from"
        assert "overlaps version 1 (2026-01-01 - 2026-12-31)" in error.message
        assert len((await send(bus_client, c.GetAgreement(agreement_id=a.id))).versions) == 1

    async def test_malformed_and_unknown(self, bus_client):
        error = (await failure(send(bus_client, c.GetAgreement(agreement_id=uuid.uuid4())))).error
        assert error.kind == "not_found"
        raw = json.dumps({"partner_id": str(uuid.uuid4()), "name": "x", "direction": "sideways", "currency": "usd",
                          "effective_from": "2026-01-01", "terms": {"rate": {"kind": "flat", "rate": "10"}}})
        reply = json.loads((await bus_client.request(c.CreateAgreement.subject, raw.encode(), timeout=5)).data)
        assert reply["ok"] is False and reply["error"]["kind"] == "invalid" and reply["error"]["field"] == "direction"
        partner = uuid.uuid4()
        await make_agreement(bus_client, partner, flat_terms("10"), name="Resale")
        error = (await failure(make_agreement(bus_client, partner, flat_terms("10"), name="resale"))).error
        assert error.kind == "conflict" and error.field == "name"


class TestRecalculation:
    async def test_a_corrected_rate_writes_adjusting_entries_and_never_edits_history(self, bus_client, service):
        partner = uuid.uuid4()
        a = await make_agreement(bus_client, partner, flat_terms("10", basis=c.Basis.invoice,
                                                                duration=c.Duration.lifetime))
        r1, r2 = ref(), ref()
        await publish(bus_client, invoice(partner, r1, "1000.00", "2026-03-10"))
        await publish(bus_client, invoice(partner, r2, "2000.00", "2026-04-10"))
        await settled(bus_client, service)
        before = await ledger(bus_client, partner)
        assert [(e.line_key, e.amount) for e in before] == [(f"invoice_paid:{r1}", D("100.00")),
                                                            (f"invoice_paid:{r2}", D("200.00"))]
        await send(bus_client, c.UpdateAgreementVersion(agreement_id=a.id, version=1, effective_from=date(2026, 1, 1),
                                                         terms=flat_terms("12", basis=c.Basis.invoice,
                                                                          duration=c.Duration.lifetime)))
        after = await ledger(bus_client, partner)
        assert after[:2] == before  # the originals, untouched
        adjustments = after[2:]
        assert [(e.entry_type, e.amount, e.adjusts_entry_id, e.period, e.revision) for e in adjustments] == [
            (c.EntryType.adjustment, D("20.00"), before[0].id, date(2026, 11, 1), 2),
            (c.EntryType.adjustment, D("40.00"), before[1].id, date(2026, 11, 1), 2)]
        assert "now 120.00" in adjustments[0].detail
        # Recalculating again finds nothing to change.
        result = await send(bus_client, c.RecalculateAgreement(agreement_id=a.id))
        assert result.entries_written == 0

    async def test_a_backdated_retroactive_version_adjusts_old_deals_and_a_non_retroactive_one_does_not(
            self, bus_client, service):
        lifetime = {"basis": c.Basis.invoice, "duration": c.Duration.lifetime}
        results = {}
        for retroactive in (False, True):
            partner = uuid.uuid4()
            a = await make_agreement(bus_client, partner, flat_terms("10", **lifetime))
            old, new = ref(), ref()
            await publish(bus_client, invoice(partner, f"{old}-1", "1000.00", "2026-02-01", customer="Old"))
            await publish(bus_client, invoice(partner, f"{old}-2", "1000.00", "2026-08-01", customer="Old"))
            await publish(bus_client, invoice(partner, new, "1000.00", "2026-08-05", customer="New"))
            await settled(bus_client, service)
            await send(bus_client, c.AddAgreementVersion(agreement_id=a.id, effective_from=date(2026, 7, 1),
                                                         retroactive=retroactive, terms=flat_terms("15", **lifetime)))
            results[retroactive] = [(e.line_key.split("-")[-1] if "-" in e.line_key else e.line_key, e.entry_type,
                                     e.amount, e.version) for e in await ledger(bus_client, partner)]
        # Not retroactive: the customer booked in February keeps 10%; the one that started in August gets 15%.
        assert results[False] == [
            ("1", c.EntryType.accrual, D("100.00"), 1), ("2", c.EntryType.accrual, D("100.00"), 1),
            (results[False][2][0], c.EntryType.accrual, D("100.00"), 1),
            (results[False][2][0], c.EntryType.adjustment, D("50.00"), 2)]
        # Retroactive: from July every customer is at 15%, February stays at 10%.
        assert [(t, a, v) for _, t, a, v in results[True]] == [
            (c.EntryType.accrual, D("100.00"), 1), (c.EntryType.accrual, D("100.00"), 1),
            (c.EntryType.accrual, D("100.00"), 1), (c.EntryType.adjustment, D("50.00"), 2),
            (c.EntryType.adjustment, D("50.00"), 2)]

    async def test_a_new_agreement_picks_up_revenue_recorded_before_it(self, bus_client, service):
        partner = uuid.uuid4()
        r = ref()
        await publish(bus_client, invoice(partner, r, "500.00", "2026-05-05"))
        await settled(bus_client, service)
        await make_agreement(bus_client, partner, flat_terms("20", basis=c.Basis.invoice, duration=c.Duration.lifetime))
        [entry] = await ledger(bus_client, partner)
        assert (entry.line_key, entry.amount, entry.period, entry.entry_type) == (
            f"invoice_paid:{r}", D("100.00"), date(2026, 5, 1), c.EntryType.accrual)


class TestAppendOnly:
    async def test_the_database_refuses_edits_deletes_and_backward_status(self, bus_client, service, private_db):
        partner = uuid.uuid4()
        await make_agreement(bus_client, partner, flat_terms("10"))
        await publish(bus_client, won(partner, uuid.uuid4(), "1000.00", "2026-03-01"))
        await settled(bus_client, service)
        [entry] = await ledger(bus_client, partner)
        conn = await asyncpg.connect(plain_dsn(private_db["commissions"]))
        try:
            for sql in ("UPDATE ledger_entry SET amount = 1 WHERE id = $1", "DELETE FROM ledger_entry WHERE id = $1",
                        "UPDATE ledger_entry SET customer_name = 'someone else' WHERE id = $1",
                        "UPDATE ledger_entry SET status = 'paid' WHERE id = $1"):
                with pytest.raises(asyncpg.RaiseError):
                    await conn.execute(sql, entry.id)
            await send(bus_client, c.ApproveEntries(entry_ids=[entry.id]))
            with pytest.raises(asyncpg.RaiseError, match="cannot go from approved to accrued"):
                await conn.execute("UPDATE ledger_entry SET status = 'accrued' WHERE id = $1", entry.id)
        finally:
            await conn.close()


class TestApprovalAndPayment:
    async def _entries(self, bus_client, service, partner, *amounts) -> list[c.LedgerEntry]:
        await make_agreement(bus_client, partner, flat_terms("10"))
        for i, amount in enumerate(amounts):
            await publish(bus_client, won(partner, uuid.uuid4(), amount, f"2026-10-0{i + 1}"))
        await settled(bus_client, service)
        return await ledger(bus_client, partner)

    async def test_keyset_pages_follow_the_sort_without_gaps_or_repeats(self, bus_client, service):
        partner = uuid.uuid4()
        amounts = ["500.00", "100.00", "300.00", "300.00", "200.00", "400.00", "100.00"]
        await self._entries(bus_client, service, partner, *amounts)
        for sort, key in ((c.LedgerSort.amount_desc, lambda e: (-e.amount, -e.id)),
                          (c.LedgerSort.amount, lambda e: (e.amount, e.id)),
                          (c.LedgerSort.id_desc, lambda e: -e.id), (c.LedgerSort.period, lambda e: (e.period, e.id))):
            seen: list[c.LedgerEntry] = []
            after = None
            while True:
                page = await send(bus_client, c.ListLedgerEntries(partner_id=partner, sort=sort, after=after, limit=3))
                assert page.total == len(amounts)
                seen += page.items
                if page.next_after is None:
                    break
                after = page.next_after
            assert [e.id for e in seen] == [e.id for e in sorted(seen, key=key)], sort
            assert len({e.id for e in seen}) == len(amounts), sort
        # A cursor of another sort, or one that is not a cursor, is refused with the field named.
        first = await send(bus_client, c.ListLedgerEntries(partner_id=partner, sort=c.LedgerSort.amount, limit=2))
        error = (await failure(send(bus_client, c.ListLedgerEntries(partner_id=partner, sort=c.LedgerSort.period,
                                                                    after=first.next_after)))).error
        assert (error.kind, error.field) == ("invalid", "after")
        for bad in ("x", "1:2:3", "9" * 30, "2026-13-45:1", "-:1", "1e5:1"):
            reply = await failure(send(bus_client, c.ListLedgerEntries.model_construct(
                partner_id=partner, sort=c.LedgerSort.period, after=bad, offset=0, limit=2)))
            assert reply.error.kind == "invalid", bad

    async def test_accrued_then_approved_then_paid_as_one_payment(self, bus_client, service):
        partner = uuid.uuid4()
        e1, e2 = await self._entries(bus_client, service, partner, "1000.00", "2500.00")
        result = await send(bus_client, c.ApproveEntries(entry_ids=[e1.id, e2.id], actor="manager@example.com"))
        assert result.approved == [e1.id, e2.id] and result.already_approved == []
        again = await send(bus_client, c.ApproveEntries(entry_ids=[e1.id]))
        assert again.approved == [] and again.already_approved == [e1.id]
        payment = await send(bus_client, c.PayEntries(entry_ids=[e1.id, e2.id], paid_on=date(2026, 11, 20),
                                                      reference="wire 42", actor="manager@example.com"))
        assert payment.amount == D("350.00") and payment.entry_ids == [e1.id, e2.id]
        assert {e.status for e in await ledger(bus_client, partner)} == {c.EntryStatus.paid}
        error = (await failure(send(bus_client, c.PayEntries(entry_ids=[e1.id], paid_on=date(2026, 11, 20),
                                                             reference="again")))).error
        assert error.kind == "conflict" and "already paid" in error.message
        error = (await failure(send(bus_client, c.ApproveEntries(entry_ids=[e2.id])))).error
        assert error.kind == "conflict"

    async def test_refusals(self, bus_client, service):
        partner, other = uuid.uuid4(), uuid.uuid4()
        [e1] = await self._entries(bus_client, service, partner, "1000.00")
        [e2] = await self._entries(bus_client, service, other, "1000.00")
        error = (await failure(send(bus_client, c.PayEntries(entry_ids=[e1.id], paid_on=date(2026, 11, 1),
                                                             reference="r")))).error
        assert error.kind == "conflict" and "approve it before paying" in error.message
        await send(bus_client, c.ApproveEntries(entry_ids=[e1.id, e2.id]))
        error = (await failure(send(bus_client, c.PayEntries(entry_ids=[e1.id, e2.id], paid_on=date(2026, 11, 1),
                                                             reference="r")))).error
        assert error.kind == "invalid" and "one partner" in error.message
        error = (await failure(send(bus_client, c.ApproveEntries(entry_ids=[e1.id, 987654321])))).error
        assert error.kind == "not_found" and "987654321" in error.message
        raw = json.dumps({"entry_ids": []}).encode()
        reply = json.loads((await bus_client.request(c.ApproveEntries.subject, raw, timeout=5)).data)
        assert reply["error"]["kind"] == "invalid" and reply["error"]["field"] == "entry_ids"


class TestStatements:
    async def test_opening_accruals_clawbacks_adjustments_payments_closing(self, bus_client, service):
        partner = uuid.uuid4()
        lifetime = {"basis": c.Basis.invoice, "duration": c.Duration.lifetime, "clawback_days": 90}
        a = await make_agreement(bus_client, partner, flat_terms("10", **lifetime), name="Resale share",
                                 direction=c.Direction.receivable)
        r1, r2, r3 = ref(), ref(), ref()
        await publish(bus_client, invoice(partner, r1, "4000.00", "2026-06-10"))  # Q2: 400
        await publish(bus_client, invoice(partner, r2, "6000.00", "2026-08-10"))  # Q3: 600
        await publish(bus_client, invoice(partner, r3, "3000.00", "2026-09-20"))  # Q3: 300
        await publish(bus_client, b.InvoiceRefundedV1(refund_id=ref(), invoice_id=r2, amount=D("1500.00"),
                                                      currency="USD", refunded_at=at("2026-09-01")))  # Q3: -150
        await settled(bus_client, service)
        q2 = [e.id for e in await ledger(bus_client, partner) if e.period < date(2026, 7, 1)]
        await send(bus_client, c.ApproveEntries(entry_ids=q2))
        await send(bus_client, c.PayEntries(entry_ids=q2, paid_on=date(2026, 7, 15), reference="Q2 remittance"))
        await send(bus_client, c.UpdateAgreementVersion(agreement_id=a.id, version=1, effective_from=date(2026, 1, 1),
                                                        terms=flat_terms("11", **lifetime)))  # adjustments in November

        q3 = await send(bus_client, c.GetStatement(partner_id=partner, period="2026-Q3"))
        [s] = q3.sections
        assert (s.direction, s.currency) == (c.Direction.receivable, "USD")
        assert (s.opening_balance, s.accruals, s.clawbacks, s.adjustments, s.payments, s.closing_balance) == (
            D("400.00"), D("900.00"), D("-150.00"), D("0"), D("400.00"), D("750.00"))
        assert [p.reference for p in s.payment_lines] == ["Q2 remittance"]
        nov = (await send(bus_client, c.GetStatement(partner_id=partner, period="2026-11"))).sections[0]
        # +40 on the Q2 invoice, +60 +30 on Q3's, -15 more on the refund's clawback.
        assert (nov.opening_balance, nov.adjustments, nov.closing_balance) == (D("750.00"), D("115.00"),
                                                                               D("865.00"))
        assert sum(e.amount for e in nov.lines) == nov.adjustments

    async def test_a_partner_with_nothing_has_an_empty_statement_and_bad_periods_are_refused(self, bus_client):
        empty = await send(bus_client, c.GetStatement(partner_id=uuid.uuid4(), period="2026-Q4"))
        assert empty.sections == [] and empty.period_start == date(2026, 10, 1)
        for period in ("2026-13", "2026-Q5", "26-Q1", "2026-Q1; DROP TABLE ledger_entry"):
            raw = json.dumps({"partner_id": str(uuid.uuid4()), "period": period}).encode()
            reply = json.loads((await bus_client.request(c.GetStatement.subject, raw, timeout=5)).data)
            assert reply["error"]["field"] == "period"


class TestRevenueThroughCommands:
    async def test_an_invoice_entered_twice_is_one_invoice(self, bus_client, service):
        partner = await known_partner(bus_client, service)
        await make_agreement(bus_client, partner, flat_terms("10", basis=c.Basis.invoice, duration=c.Duration.lifetime))
        cmd = c.RecordInvoicePaid(invoice_id=ref(), customer="Acme", partner_id=partner, amount=D("999.99"),
                                  currency="USD", paid_at=at("2026-10-01"), actor="maria")
        first = await send(bus_client, cmd)
        assert not first.duplicate and [e.amount for e in first.entries] == [D("100.00")]
        second = await send(bus_client, cmd)
        assert second.duplicate and [e.id for e in second.entries] == [e.id for e in first.entries]
        changed = cmd.model_copy(update={"amount": D("1999.99")})
        error = (await failure(send(bus_client, changed))).error
        assert error.kind == "conflict" and "amount" in error.message
        assert len(await ledger(bus_client, partner)) == 1

    async def test_refunds_are_checked_against_their_invoice(self, bus_client, service):
        partner = await known_partner(bus_client, service)
        await make_agreement(bus_client, partner, flat_terms("10", basis=c.Basis.invoice, duration=c.Duration.lifetime,
                                                             clawback_days=30))
        inv = ref()
        await send(bus_client, c.RecordInvoicePaid(invoice_id=inv, customer="Acme", partner_id=partner,
                                                   amount=D("1000.00"), currency="USD", paid_at=at("2026-10-01")))
        cases = [
            (c.RecordRefund(refund_id=ref(), invoice_id="nope", amount=D(1), currency="USD",
                            refunded_at=at("2026-10-02")), "not_found", "invoice_id"),
            (c.RecordRefund(refund_id=ref(), invoice_id=inv, amount=D(1), currency="EUR",
                            refunded_at=at("2026-10-02")), "invalid", "currency"),
            (c.RecordRefund(refund_id=ref(), invoice_id=inv, amount=D("1000.01"), currency="USD",
                            refunded_at=at("2026-10-02")), "invalid", "amount"),
            (c.RecordRefund(refund_id=ref(), invoice_id=inv, amount=D(1), currency="USD",
                            refunded_at=at("2026-09-02")), "invalid", "refunded_at"),
        ]
        for cmd, kind, field in cases:
            error = (await failure(send(bus_client, cmd))).error
            assert (error.kind, error.field) == (kind, field), error
        done = await send(bus_client, c.RecordRefund(refund_id=ref(), invoice_id=inv, amount=D("250.00"),
                                                     currency="USD", refunded_at=at("2026-10-20")))
        assert [(e.entry_type, e.amount) for e in done.entries] == [(c.EntryType.clawback, D("-25.00"))]
        error = (await failure(send(bus_client, c.RecordRefund(
            refund_id=ref(), invoice_id=inv, amount=D("750.01"), currency="USD", refunded_at=at("2026-10-21"))))).error
        assert error.field == "amount" and "at most 750.00" in error.message

    async def test_churn_needs_a_partner_or_an_opportunity(self, bus_client):
        error = (await failure(send(bus_client, c.RecordChurn(customer="Acme", churned_at=at("2026-10-01"))))).error
        assert (error.kind, error.field) == ("invalid", "partner_id")

    async def test_revenue_for_a_partner_nobody_knows_is_refused(self, bus_client, service):
        stranger = uuid.uuid4()
        for cmd in (c.RecordInvoicePaid(invoice_id=ref(), customer="Acme", partner_id=stranger, amount=D("10.00"),
                                        currency="USD", paid_at=at("2026-10-01")),
                    c.RecordChurn(customer="Acme", partner_id=stranger, churned_at=at("2026-10-01"))):
            error = (await failure(send(bus_client, cmd))).error
            assert (error.kind, error.field) == ("invalid", "partner_id"), error
            assert str(stranger) in error.message
        listed = await send(bus_client, c.ListRevenueEvents(partner_id=stranger))
        assert listed.total == 0


class TestConsumers:
    async def test_malformed_and_hostile_messages_go_to_the_dead_letters_with_a_reason(self, bus_client, service):
        partner = str(uuid.uuid4())
        good = {"schema_version": 1, "event_id": str(uuid.uuid4()), "invoice_id": "X", "customer": "Acme",
                "partner_id": partner, "amount": "10.00", "currency": "USD", "paid_at": "2026-10-01T00:00:00Z"}
        bodies = {
            "not json": b"{nope",
            "unknown version": json.dumps({**good, "schema_version": 7}).encode(),
            "negative amount": json.dumps({**good, "amount": "-10.00"}).encode(),
            "fractions of a cent": json.dumps({**good, "amount": "10.001"}).encode(),
            "not a number": json.dumps({**good, "amount": "NaN"}).encode(),
            "absurd amount": json.dumps({**good, "amount": "1e30"}).encode(),
            "no partner and no deal": json.dumps({**good, "partner_id": None}).encode(),
            "invented currency": json.dumps({**good, "currency": "XYZ"}).encode(),
            "naive time": json.dumps({**good, "paid_at": "2026-10-01T00:00:00"}).encode(),
            "control characters": json.dumps({**good, "invoice_id": "a\u0000b"}).encode(),
            "a list": b"[1, 2, 3]",
        }
        durable = next(s.inbox_key for x in service.consumers for s in x.subs if s.subject == b.InvoicePaidV1.subject)
        before = len(await deadletter.list_all(bus_client.jetstream(), consumer=durable))
        for body in bodies.values():
            await publish(bus_client, b.InvoicePaidV1.model_construct(), data=body, msg_id=str(uuid.uuid4()),
                          subject=b.InvoicePaidV1.subject)
        await settled(bus_client, service)
        letters = await deadletter.list_all(bus_client.jetstream(), consumer=durable)
        assert len(letters) - before == len(bodies)
        reasons = " | ".join(letter.reason for letter in letters[before:])
        for words in ("not JSON", "unknown schema_version 7", "amount", "partner_id or opportunity_id", "currency",
                      "paid_at", "not a JSON object"):
            assert words in reasons
        page = await send(bus_client, c.ListRevenueEvents(partner_id=uuid.UUID(partner)))
        assert page.total == 0

    async def test_hostile_but_valid_text_is_stored_verbatim(self, bus_client, service):
        partner = uuid.uuid4()
        await make_agreement(bus_client, partner, flat_terms("10", basis=c.Basis.invoice, duration=c.Duration.lifetime))
        nasty = f"'); DROP TABLE ledger_entry; -- {uuid.uuid4().hex[:6]} <script>alert(1)</script>"
        await publish(bus_client, invoice(partner, nasty, "10.00", "2026-10-01", customer="Robert'); --"))
        await settled(bus_client, service)
        [entry] = await ledger(bus_client, partner)
        assert entry.line_key == f"invoice_paid:{nasty}" and entry.amount == D("1.00")

    async def test_the_same_event_twice_and_the_same_invoice_under_two_event_ids_post_once(self, bus_client, service):
        partner = uuid.uuid4()
        await make_agreement(bus_client, partner, flat_terms("10", basis=c.Basis.invoice, duration=c.Duration.lifetime))
        event = invoice(partner, ref(), "1000.00", "2026-10-01")
        await publish(bus_client, event)
        await publish(bus_client, event, msg_id=str(uuid.uuid4()))  # past the broker's de-duplication
        await publish(bus_client, event.model_copy(update={"event_id": uuid.uuid4()}))  # a re-sent invoice
        await settled(bus_client, service)
        assert [e.amount for e in await ledger(bus_client, partner)] == [D("100.00")]

    async def test_a_corrected_invoice_replaces_the_older_one_with_an_adjustment(self, bus_client, service):
        partner = uuid.uuid4()
        await make_agreement(bus_client, partner, flat_terms("10", basis=c.Basis.invoice, duration=c.Duration.lifetime))
        first = invoice(partner, ref(), "1000.00", "2026-10-01")
        corrected = first.model_copy(update={"event_id": uuid.uuid4(), "amount": D("1200.00"),
                                             "occurred_at": datetime.now(UTC)})
        stale = first.model_copy(update={"event_id": uuid.uuid4(), "amount": D("5.00"),
                                         "occurred_at": datetime(2020, 1, 1, tzinfo=UTC)})
        for event in (first, corrected, stale):
            await publish(bus_client, event)
            await settled(bus_client, service)
        assert [(e.entry_type, e.amount) for e in await ledger(bus_client, partner)] == [
            (c.EntryType.accrual, D("100.00")), (c.EntryType.adjustment, D("20.00"))]

    async def test_an_invoice_for_a_deal_not_won_yet_waits_for_it(self, bus_client, service):
        partner, opp = uuid.uuid4(), uuid.uuid4()
        await make_agreement(bus_client, partner, flat_terms("10", basis=c.Basis.invoice, duration=c.Duration.lifetime))
        pending = b.InvoicePaidV1(invoice_id=ref(), customer="Acme", opportunity_id=opp, amount=D("800.00"),
                                  currency="USD", paid_at=at("2026-10-05"))
        await publish(bus_client, pending)
        await settled(bus_client, service)
        waiting = (await send(bus_client, c.ListRevenueEvents(kind=c.RevenueKind.invoice_paid, limit=500))).items
        [item] = [i for i in waiting if i.key == f"invoice_paid:{pending.invoice_id}"]
        assert item.partner_id is None and "waiting for opportunity" in item.notes[0]
        await publish(bus_client, won(partner, opp, "10000.00", "2026-10-01"))
        await settled(bus_client, service)
        assert [(e.line_key, e.amount) for e in await ledger(bus_client, partner)] == [
            (f"invoice_paid:{pending.invoice_id}", D("80.00"))]

    async def test_a_reopened_deal_is_reversed_and_a_deal_without_partner_earns_nothing(self, bus_client, service):
        partner, opp = uuid.uuid4(), uuid.uuid4()
        await make_agreement(bus_client, partner, flat_terms("10"))
        deal = won(partner, opp, "5000.00", "2026-10-01")
        await publish(bus_client, deal)
        await publish(bus_client, won(None, uuid.uuid4(), "5000.00", "2026-10-01"))
        await settled(bus_client, service)
        reopened = p.OpportunityReopenedV1(
            opportunity_id=opp, partner_id=partner, amount=D("5000.00"), currency="USD", deal_model=p.DealModel.resale,
            customer="Acme", owner=None, pipeline="resale", source=p.Source.manual, previous_outcome=p.Outcome.won,
            reopened_at=datetime.now(UTC))
        await publish(bus_client, reopened)
        await settled(bus_client, service)
        entries = await ledger(bus_client, partner)
        assert [(e.entry_type, e.amount) for e in entries] == [
            (c.EntryType.accrual, D("500.00")), (c.EntryType.adjustment, D("-500.00"))]
        assert "reversed" in entries[1].detail
        await publish(bus_client, won(partner, opp, "6000.00", "2026-11-02").model_copy(
            update={"occurred_at": datetime.now(UTC)}))  # won again, for more
        await settled(bus_client, service)
        assert sum(e.amount for e in await ledger(bus_client, partner)) == D("600.00")

    async def test_tier_based_rates_wait_for_the_partners_tier(self, bus_client, service):
        partner = uuid.uuid4()
        rates = {t: D(r) for t, r in zip(p.PartnerTier, ("5", "10", "15", "20"), strict=True)}
        await make_agreement(bus_client, partner, c.Terms(rate=c.PartnerTierRate(rates=rates)))
        await publish(bus_client, won(partner, uuid.uuid4(), "1000.00", "2026-10-01"))
        await settled(bus_client, service)
        assert await ledger(bus_client, partner) == []
        await publish(bus_client, p.PartnerCreatedV1(partner_id=partner, name="Datadog", type=p.PartnerType.isv,
                                                     tier=p.PartnerTier.gold, status=p.PartnerStatus.active,
                                                     occurred_at=at("2026-01-01")))
        await settled(bus_client, service)
        [entry] = await ledger(bus_client, partner)
        assert entry.amount == D("150.00") and "gold partner rate 15%" in entry.detail

    async def test_the_forecast_weighs_open_opportunities_by_stage_probability_and_rate(self, bus_client, service):
        partner = uuid.uuid4()
        await make_agreement(bus_client, partner, flat_terms("20"), direction=c.Direction.receivable)
        now = datetime.now(UTC)
        opp = p.Opportunity(
            id=uuid.uuid4(), version=3, name="Acme platform", pipeline="resale", stage="proposal",
            stage_name="Proposal", probability=50, outcome=p.Outcome.open, partner_id=partner, customer="Acme",
            amount=D("40000.00"), currency="USD", expected_close_date=date(2026, 12, 15), owner="maria",
            deal_model=p.DealModel.resale, source=p.Source.manual, created_at=now, updated_at=now, stage_entered_at=now)
        await publish(bus_client, p.OpportunityStageChangedV1(opportunity=opp, from_stage="qualified",
                                                              to_stage="proposal", changed_by="maria", changed_at=now))
        stale = opp.model_copy(update={"version": 1, "probability": 10})
        await publish(bus_client, p.OpportunityCreatedV1(opportunity=stale))
        await settled(bus_client, service)
        result = await send(bus_client, c.ForecastCommissions(partner_id=partner))
        [line] = result.lines
        assert (line.rate, line.probability, line.commission) == (D("20.0000"), D("0.5"), D("4000.00"))
        assert result.totals[0].commission == D("4000.00")

        # The one probability rule: the stage set in force weighs the deal, not the probability its last
        # event carried; a stale definition (older version) changes nothing, and a removed stage weighs 0.
        def resale(version: int, proposal: int, keep: bool = True) -> p.StageSetDefinedV1:
            stages = [s.model_copy(update={"probability": proposal}) if s.key == "proposal" else s
                      for s in p.RESALE_STAGE_SET.stages if keep or s.key != "proposal"]
            return p.StageSetDefinedV1(stage_set=p.RESALE_STAGE_SET.model_copy(
                update={"stages": tuple(stages), "version": version, "builtin": False}))

        await publish(bus_client, resale(3, 60))
        await publish(bus_client, resale(2, 90))
        await settled(bus_client, service)
        [line] = (await send(bus_client, c.ForecastCommissions(partner_id=partner))).lines
        assert (line.probability, line.commission) == (D("0.6"), D("4800.00"))
        assert p.probability_of(p.probabilities_in_force([resale(3, 60).stage_set]), "resale", "proposal") == 60
        await publish(bus_client, resale(4, 0, keep=False))
        await settled(bus_client, service)
        [line] = (await send(bus_client, c.ForecastCommissions(partner_id=partner))).lines
        assert (line.probability, line.commission) == (D("0"), D("0.00"))
