"""SPIFs: a fixed bonus per qualifying deal won in a window, computed by the commission engine as the rate
kind `spif` on the same ledger. The worked examples at the window's edges, the minimum and a currency not
the SPIF's are in examples.py (run through the pure fold and the real service); here: the rule's
validation, the tier condition, the forecast, and on the real service redelivery, a reopened deal,
the list of SPIFs, statements, approval and payment, and the gateway's API and roles."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from contracts import commissions as c
from contracts import pipeline as p
from contracts.quarters import Quarter
from gateway.auth import Role
from runtime.commands import send
from runtime.errors import CommandFailed, Invalid
from services.commissions import domain, engine
from services.commissions.domain import AgreementSpec, Revenue, Version
from tests.commissions.helpers import call, ledger, make_agreement, partner, publish, settled
from tests.commissions.test_pages import error_beside, get_page, post_form

D = Decimal
Q4_FROM, Q4_TO = Quarter.parse("2026-Q4").range()
NOW = datetime(2026, 11, 15, 9, tzinfo=UTC)


def at(day: str, time: str = "12:00:00") -> datetime:
    return datetime.fromisoformat(f"{day}T{time}+00:00")


def spif_terms(bonus: str = "500.00", min_amount: str | None = None, tiers: list[p.PartnerTier] | None = None,
               **kw) -> c.Terms:
    return c.Terms(rate=c.SpifRate(bonus=D(bonus), min_amount=D(min_amount) if min_amount else None, tiers=tiers),
                   **kw)


def won(partner_id: uuid.UUID, opp: uuid.UUID, amount: str, day: str, currency: str = "USD",
        **kw) -> p.OpportunityWonV1:
    return p.OpportunityWonV1(opportunity_id=opp, partner_id=partner_id, amount=D(amount), currency=currency,
                              deal_model=p.DealModel.referral, customer=kw.pop("customer", "Acme"), owner=None,
                              pipeline="resale", source=p.Source.manual, won_at=at(day), **kw)


async def failure(coro) -> CommandFailed:
    with pytest.raises(CommandFailed) as caught:
        await coro
    return caught.value


# ------------------------------------------------------------------------------------ the rule, pure


def spec(terms: c.Terms) -> AgreementSpec:
    return AgreementSpec(id="s", currency="USD", versions=(Version(1, Q4_FROM, Q4_TO, False, terms),))


def deal(ref: str, amount: str, day: str) -> Revenue:
    return Revenue(kind=c.RevenueKind.deal_won, ref=ref, at=at(day), customer="acme", amount=D(amount), currency="USD",
                   opportunity_id=ref)


class TestTheRule:
    def test_the_partners_tier_on_the_day_of_the_win_decides(self):
        tiers = [(at("2026-01-01"), p.PartnerTier.silver), (at("2026-11-01", "00:00:00"), p.PartnerTier.gold)]
        terms = spif_terms("250.00", tiers=[p.PartnerTier.gold, p.PartnerTier.platinum])
        result = domain.fold(spec(terms), [deal("silver-time", "9000.00", "2026-10-31"),
                                           deal("gold-time", "9000.00", "2026-11-01")], tiers)
        assert {k: line.amount for k, line in result.lines.items()} == {"deal_won:gold-time": D("250.00")}
        assert result.lines["deal_won:gold-time"].rule == "spif"
        assert ("deal_won:silver-time", "SPIF: the partner was silver when the deal was won; the SPIF is for gold "
                "or platinum") in result.notes
        unknown = domain.fold(spec(terms), [deal("x", "9000.00", "2026-11-02")], ())
        assert not unknown.lines and unknown.notes == [("deal_won:x", "the partner's tier is not known yet")]

    def test_a_deal_whose_pipeline_is_not_known_does_not_count_for_a_pipeline_spif(self):
        terms = c.Terms(rate=c.SpifRate(bonus=D("100.00"), pipelines=["cosell"]))
        result = domain.fold(spec(terms), [deal("old", "5000.00", "2026-10-02")])  # stored before pipelines
        assert not result.lines and "pipeline is not known" in result.notes[0][1]

    def test_the_same_deal_twice_in_a_fold_earns_once(self):
        twice = [deal("a", "20000.00", "2026-10-02"), deal("a", "20000.00", "2026-10-02")]
        assert [line.amount for line in domain.fold(spec(spif_terms()), twice).lines.values()] == [D("500.00")]

    @pytest.mark.parametrize("terms,field,words", [
        (spif_terms(basis=c.Basis.invoice, duration=c.Duration.lifetime), "terms.basis", "per won deal"),
        (spif_terms(tiers=[p.PartnerTier.gold, p.PartnerTier.gold]), "terms.rate.tiers", "each tier once"),
    ])
    def test_invalid_rules_name_the_field(self, terms, field, words):
        with pytest.raises(Invalid) as caught:
            domain.validate_terms(terms)
        assert caught.value.field == field and words in str(caught.value)

    def test_a_spif_is_time_boxed_and_never_mixed_with_a_rate(self):
        with pytest.raises(Invalid) as caught:
            domain.validate_window(spif_terms(), None)
        assert caught.value.field == "effective_to" and "time-boxed" in str(caught.value)
        flat = Version(1, Q4_FROM, None, False, c.Terms(rate=c.FlatRate(rate=D(10))))
        with pytest.raises(Invalid) as caught:
            domain.validate_window(spif_terms(), Q4_TO, [flat])
        assert caught.value.field == "terms.rate.kind"
        domain.validate_window(spif_terms(), Q4_TO, [Version(1, date(2026, 7, 1), Q4_FROM, False, spif_terms())])

    @pytest.mark.parametrize("rate", [
        {"kind": "spif", "bonus": "0"}, {"kind": "spif", "bonus": "-5"}, {"kind": "spif", "bonus": "1e20"},
        {"kind": "spif", "bonus": "1.001"}, {"kind": "spif", "bonus": "10", "min_amount": "-1"},
        {"kind": "spif", "bonus": "10", "tiers": ["diamond"]}, {"kind": "spif", "bonus": "10", "tiers": []},
        {"kind": "spif", "bonus": "10", "surprise": True}, {"kind": "spif", "bonus": "NaN"},
        {"kind": "spif", "bonus": "10", "pipelines": ["Resale; DROP"]},
        {"kind": "spif", "bonus": "10", "pipelines": []},
    ])
    def test_hostile_rules_are_refused_by_the_contract(self, rate):
        with pytest.raises(ValidationError):
            c.Terms.model_validate({"rate": rate})

    def test_the_forecast_expects_the_bonus_weighted_if_the_deal_would_qualify(self):
        s = spec(spif_terms("500.00", "10000.00"))
        kw = {"currency": "USD", "probability": D("0.4"), "deal_model": None, "tier": None, "period_basis": D(0)}
        hit = domain.expected_commission(s, amount=D("20000.00"), on=date(2026, 12, 31), **kw)
        assert hit is not None and hit.commission == D("200.00") and "SPIF bonus 500.00" in hit.note
        assert domain.expected_commission(s, amount=D("9999.99"), on=date(2026, 12, 1), **kw) is None
        assert domain.expected_commission(s, amount=D("20000.00"), on=date(2027, 1, 1), **kw) is None


# ------------------------------------------------------------------------------------ the real service


@pytest.fixture
def november(monkeypatch):
    """Adjusting entries go into the current month, and a SPIF's status depends on today."""
    monkeypatch.setattr(engine, "clock", lambda: NOW)


@pytest.mark.usefixtures("november")
class TestOnTheLedger:
    async def _spif(self, bus_client, partner_id: uuid.UUID, terms: c.Terms | None = None) -> c.Agreement:
        return await make_agreement(bus_client, partner_id, terms or spif_terms("500.00", "10000.00"),
                                    effective_from=Q4_FROM.isoformat(), effective_to=Q4_TO, name="Q4 SPIF")

    async def test_redelivery_and_a_resent_win_pay_once(self, bus_client, service):
        partner_id, opp = uuid.uuid4(), uuid.uuid4()
        await self._spif(bus_client, partner_id)
        event = won(partner_id, opp, "25000.00", "2026-10-20")
        await publish(bus_client, event)
        await publish(bus_client, event, msg_id=str(uuid.uuid4()))  # past the broker's de-duplication
        await publish(bus_client, event.model_copy(update={"event_id": uuid.uuid4()}))  # the pipeline sends it again
        await settled(bus_client, service)
        [entry] = await ledger(bus_client, partner_id)
        assert (entry.rule, entry.amount, entry.line_key) == ("spif", D("500.00"), f"deal_won:{opp}")

    async def test_a_reopened_deal_is_reversed_and_winning_it_again_pays_it_once(self, bus_client, service):
        partner_id, opp = uuid.uuid4(), uuid.uuid4()
        await self._spif(bus_client, partner_id)
        await publish(bus_client, won(partner_id, opp, "25000.00", "2026-10-20"))
        await settled(bus_client, service)
        reopened = p.OpportunityReopenedV1(
            opportunity_id=opp, partner_id=partner_id, amount=D("25000.00"), currency="USD",
            deal_model=p.DealModel.referral, customer="Acme", owner=None, pipeline="resale", source=p.Source.manual,
            previous_outcome=p.Outcome.won, reopened_at=datetime.now(UTC))
        await publish(bus_client, reopened)
        await settled(bus_client, service)
        entries = await ledger(bus_client, partner_id)
        assert [(e.entry_type, e.amount) for e in entries] == [
            (c.EntryType.accrual, D("500.00")), (c.EntryType.adjustment, D("-500.00"))]
        assert entries[1].adjusts_entry_id == entries[0].id and "reversed" in entries[1].detail
        # Won again (a later event) for a different amount: the bonus is owed once more, not twice.
        await publish(bus_client, won(partner_id, opp, "30000.00", "2026-11-02").model_copy(
            update={"occurred_at": datetime.now(UTC)}))
        await settled(bus_client, service)
        assert sum(e.amount for e in await ledger(bus_client, partner_id)) == D("500.00")
        # Won again below the minimum: nothing is owed.
        await publish(bus_client, won(partner_id, opp, "500.00", "2026-11-03").model_copy(
            update={"occurred_at": datetime.now(UTC)}))
        await settled(bus_client, service)
        assert sum(e.amount for e in await ledger(bus_client, partner_id)) == D("0.00")

    async def test_a_late_tier_change_refolds_a_tier_spif(self, bus_client, service):
        partner_id = uuid.uuid4()
        await self._spif(bus_client, partner_id, spif_terms("300.00", tiers=[p.PartnerTier.gold]))
        await publish(bus_client, p.PartnerCreatedV1(partner_id=partner_id, name="Tiered", type=p.PartnerType.referral,
                                                     tier=p.PartnerTier.silver, status=p.PartnerStatus.active,
                                                     occurred_at=at("2026-01-01")))
        await publish(bus_client, won(partner_id, uuid.uuid4(), "1000.00", "2026-10-10"))
        await publish(bus_client, won(partner_id, uuid.uuid4(), "1000.00", "2026-11-10", customer="Globex"))
        await settled(bus_client, service)
        assert await ledger(bus_client, partner_id) == []
        promoted = p.Partner(id=partner_id, name="Tiered", type=p.PartnerType.referral, tier=p.PartnerTier.gold,
                             status=p.PartnerStatus.active, owner=None, created_at=at("2026-01-01"), version=2)
        await publish(bus_client, p.PartnerTierChangedV1(partner=promoted, from_tier=p.PartnerTier.silver,
                                                         to_tier=p.PartnerTier.gold, trailing_revenue=D("1"),
                                                         currency="USD", occurred_at=at("2026-11-01")))
        await settled(bus_client, service)
        [entry] = await ledger(bus_client, partner_id)
        assert entry.amount == D("300.00") and "won 2026-11-10" in entry.detail

    async def test_listed_with_its_deals_shown_on_the_statement_approved_and_paid(self, bus_client, service):
        partner_id = uuid.uuid4()
        agreement = await self._spif(bus_client, partner_id)
        for amount, day in (("12000.00", "2026-10-01"), ("9999.99", "2026-10-02"), ("15000.00", "2026-11-30")):
            await publish(bus_client, won(partner_id, uuid.uuid4(), amount, day, customer=f"C {day}"))
        await settled(bus_client, service)
        [item] = (await send(bus_client, c.ListSpifs(partner_id=partner_id))).items
        assert (item.agreement_id, item.deals, item.earned, item.status) == (agreement.id, 2, D("1000.00"),
                                                                            c.SpifStatus.running)
        assert (item.window_from, item.window_to) == (Q4_FROM, Q4_TO)
        assert item.rule_text == "SPIF bonus 500.00 per deal won of at least 10,000.00"
        q4 = await send(bus_client, c.GetStatement(partner_id=partner_id, period="2026-Q4"))
        [section] = q4.sections
        assert section.accruals == D("1000.00") and {line.rule for line in section.lines} == {"spif"}
        ids = [e.id for e in await ledger(bus_client, partner_id)]
        await send(bus_client, c.ApproveEntries(entry_ids=ids, actor="manager@example.com"))
        payment = await send(bus_client, c.PayEntries(entry_ids=ids, paid_on=date(2026, 12, 5), reference="SPIF Q4",
                                                      actor="manager@example.com"))
        assert payment.amount == D("1000.00")

    async def test_refusals_name_the_field(self, bus_client, service):
        partner_id = uuid.uuid4()
        error = (await failure(make_agreement(bus_client, partner_id, spif_terms(),
                                              effective_from="2026-10-01"))).error
        assert (error.kind, error.field) == ("invalid", "effective_to")
        agreement = await self._spif(bus_client, partner_id)
        error = (await failure(send(bus_client, c.AddAgreementVersion(
            agreement_id=agreement.id, effective_from=Q4_TO, terms=c.Terms(rate=c.FlatRate(rate=D(5))))))).error
        assert (error.kind, error.field) == ("invalid", "terms.rate.kind")
        # The next quarter as a second window of the same SPIF is fine, with its own bonus.
        q1_from, q1_to = Quarter.parse("2027-Q1").range()
        await send(bus_client, c.AddAgreementVersion(agreement_id=agreement.id, effective_from=q1_from,
                                                     effective_to=q1_to, terms=spif_terms("750.00")))
        items = (await send(bus_client, c.ListSpifs(partner_id=partner_id))).items
        assert [(i.version, i.rule.bonus, i.status) for i in items] == [
            (2, D("750.00"), c.SpifStatus.upcoming), (1, D("500.00"), c.SpifStatus.running)]


class TestThroughTheGateway:
    async def test_members_create_a_spif_viewers_read_it_and_the_audit_trail_has_it(self, gw):
        partner_id = await partner(gw)
        body = {"partner_id": partner_id, "name": "Q4 push", "direction": "payable", "currency": "USD",
                "effective_from": "2026-10-01", "effective_to": "2027-01-01",
                "terms": {"rate": {"kind": "spif", "bonus": "500.00", "min_amount": "10000.00", "tiers": ["gold"]}}}
        assert (await call(gw, Role.viewer, "POST", "/api/commissions/agreements", body)).status_code == 403
        bad = await call(gw, Role.member, "POST", "/api/commissions/agreements", {**body, "effective_to": None})
        assert bad.status_code == 422 and "time-boxed" in bad.text
        created = await call(gw, Role.member, "POST", "/api/commissions/agreements", body)
        assert created.status_code == 201, created.text
        agreement_id = created.json()["id"]
        listed = await call(gw, Role.viewer, "GET", f"/api/commissions/spifs?partner_id={partner_id}")
        assert listed.status_code == 200, listed.text
        [item] = listed.json()["items"]
        assert item["agreement_id"] == agreement_id and item["rule"]["tiers"] == ["gold"]
        assert item["rule_text"] == "SPIF bonus 500.00 per deal won of at least 10,000.00 by a gold partner"
        audit = (await call(gw, Role.viewer, "GET", f"/api/commissions/agreements/{agreement_id}/audit")).json()
        [record] = audit["items"]
        assert record["action"] == "created" and record["new"]["version"]["terms"]["rate"]["kind"] == "spif"
        for query in ("partner_id=nope", "limit=0", "limit=100000"):
            r = await call(gw, Role.viewer, "GET", f"/api/commissions/spifs?{query}")
            assert r.status_code == 422, query

    async def test_the_pages_make_a_spif_show_refusals_beside_their_fields_and_list_it(self, gw):
        pid = await partner(gw, name=f"Spif Pages {uuid.uuid4().hex[:4]}")
        new = await get_page(gw, Role.member, "/commissions/agreements/new?kind=spif")
        assert new.status_code == 200 and 'value="spif" checked' in new.text and 'data-testid="spif-rule"' in new.text
        form = {"partner_id": pid, "name": "Q4 SPIF", "direction": "payable", "currency": "USD",
                "effective_from": "2026-10-01", "effective_to": "2027-01-01", "rate_kind": "spif", "bonus": "500",
                "min_amount": "10000", "spif_tiers": ["gold", "platinum"], "spif_pipelines": "resale, cosell",
                "basis": "deal", "duration": "one_time",
                "period": "quarter", "clawback_days": "0"}
        for change, field, words in [({"bonus": ""}, "bonus", "Required"), ({"bonus": "-1"}, "bonus", "greater than"),
                                     ({"min_amount": "lots"}, "min_amount", "Enter a number"),
                                     ({"effective_to": ""}, "effective_to", "time-boxed"),
                                     ({"spif_tiers": ["diamond"]}, "spif_tiers", ""),
                                     ({"spif_pipelines": "Not A Key"}, "spif_pipelines", "")]:
            r = await post_form(gw, Role.member, "/commissions/agreements", {**form, **change})
            assert r.status_code == 422, (change, r.text[:300])
            message = error_beside(r.text, field)
            assert message is not None and words in message, (change, field, message)
        assert (await post_form(gw, Role.viewer, "/commissions/agreements", form)).status_code == 403
        created = await post_form(gw, Role.member, "/commissions/agreements", form)
        assert created.status_code == 303, created.text[:300]
        agreement_page = await get_page(gw, Role.viewer, created.headers["location"])
        assert ("SPIF: 500.00 per deal won of at least 10,000.00 by a gold or platinum partner in the resale or cosell "
                "pipeline") in agreement_page.text
        overview = await get_page(gw, Role.viewer, "/commissions")
        assert 'data-testid="spif-row"' in overview.text and "Q4 SPIF" in overview.text
        assert 'data-testid="new-spif"' not in overview.text  # viewers do not make SPIFs
        edit = await get_page(gw, Role.member, created.headers["location"].split("?")[0] + "/versions/1/edit")
        assert 'value="gold" checked' in edit.text
        assert 'id="f-bonus" name="bonus"' in edit.text and 'value="500"' in edit.text
