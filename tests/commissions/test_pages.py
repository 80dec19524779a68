"""The commission pages through the real gateway: the agreement form shows the service's refusals beside
the fields they concern and keeps what was typed; versions, audit and ledger show on the agreement
page; managers approve and pay from the ledger page, others cannot; statements link their CSV."""

from __future__ import annotations

import re
import uuid

from gateway.auth import Role
from tests.commissions.helpers import call, partner

FORM = {"name": "Referral fee", "direction": "payable", "currency": "USD", "effective_from": "2026-01-01",
        "rate_kind": "flat", "rate": "10", "basis": "invoice", "duration": "lifetime", "period": "quarter",
        "clawback_days": "30", "tier_mode": "marginal"}


async def post_form(g, role: Role, url: str, data: dict):
    person = g.people[role]
    return await person.client.post(url, data={**data, "csrf_token": person.csrf},
                                     headers={"accept": "text/html"})


async def get_page(g, role: Role, url: str):
    return await g.people[role].client.get(url, headers={"accept": "text/html"})


def error_beside(html: str, field: str) -> str | None:
    found = re.search(rf'<p class="field-error" id="{field}-error" data-field="{field}" role="alert">([^<]*)</p>', html)
    return found[1] if found else None


class TestAgreementForm:
    async def test_refusals_are_shown_beside_their_fields_and_what_was_typed_stays(self, gw):
        pid = await partner(gw)
        cases = [
            ({"rate": "120"}, "rate", "outside 0-100%"),
            ({"rate": "ten"}, "rate", "Enter a number"),
            ({"rate_kind": "tiered", "tier_1_from": "0", "tier_1_up_to": "50000", "tier_1_rate": "10",
              "tier_2_from": "60000", "tier_2_rate": "15"}, "tier_2_from", "gap between tiers"),
            ({"rate_kind": "partner_tier", "rate_bronze": "5", "rate_silver": "10", "rate_gold": "15"},
             "rate_platinum", "no rate for the platinum tier"),
            ({"duration": "recurring"}, "duration_months", "duration_months"),
            ({"effective_from": ""}, "effective_from", "Enter a date"),
            ({"cap_per_deal": "-5"}, "cap_per_deal", "more than 0"),
        ]
        for change, field, words in cases:
            r = await post_form(gw, Role.member, "/commissions/agreements", {**FORM, "partner_id": pid, **change})
            assert r.status_code == 422, (change, r.text[:300])
            message = error_beside(r.text, field)
            assert message and words in message, (field, message)
            for name, value in change.items():
                if value and name != "rate_kind":
                    assert f'value="{value}"' in r.text  # what was typed is still there
        r = await post_form(gw, Role.member, "/commissions/agreements", {**FORM, "partner_id": ""})
        assert r.status_code == 422 and error_beside(r.text, "partner_id")

    async def test_create_then_version_then_correct_through_the_pages(self, gw):
        pid = await partner(gw, name=f"Northwind {uuid.uuid4().hex[:4]}")
        r = await post_form(gw, Role.member, "/commissions/agreements",
                            {**FORM, "partner_id": pid, "deal_models": ["referral"]})
        assert r.status_code == 303, r.text[:500]
        page_url = r.headers["location"].split("?")[0]
        page = await get_page(gw, Role.viewer, page_url)
        assert page.status_code == 200 and "10% of each paid invoice, for the customer&#39;s lifetime" in page.text
        agreement_id = page_url.rsplit("/", 1)[1]
        form = await get_page(gw, Role.member, f"{page_url}/versions/new")
        assert 'name="rate" type="text" value="10"' in form.text  # starts from the current terms
        overlap = await post_form(gw, Role.member, f"{page_url}/versions", {**FORM, "effective_from": "2026-01-01"})
        assert overlap.status_code == 422 and "overlaps version 1" in error_beside(overlap.text, "effective_from")
        added = await post_form(gw, Role.member, f"{page_url}/versions",
                                {**FORM, "effective_from": "2026-07-01", "rate": "12.5", "retroactive": "on"})
        assert added.status_code == 303
        corrected = await post_form(gw, Role.member, f"{page_url}/versions/2",
                                    {**FORM, "effective_from": "2026-07-01", "rate": "13", "retroactive": "on"})
        assert corrected.status_code == 303 and "recalculated" in corrected.headers["location"]
        page = await get_page(gw, Role.viewer, page_url)
        assert "13% of each paid invoice" in page.text and "(corrected 1" in page.text
        audit = (await call(gw, Role.viewer, "GET", f"/api/commissions/agreements/{agreement_id}/audit")).json()
        assert [a["action"] for a in audit["items"]][-1] == "version_updated"
        assert "version updated" in page.text and "member@commissions.test" in page.text

    async def test_viewers_see_but_do_not_edit(self, gw):
        assert (await get_page(gw, Role.viewer, "/commissions")).status_code == 200
        assert (await get_page(gw, Role.viewer, "/commissions/agreements/new")).status_code == 403
        r = await post_form(gw, Role.viewer, "/commissions/agreements", {**FORM, "partner_id": str(uuid.uuid4())})
        assert r.status_code == 403
        page = await get_page(gw, Role.viewer, f"/commissions/agreements/{uuid.uuid4()}")
        assert page.status_code == 404


class TestLedgerAndStatementPages:
    async def test_managers_approve_and_pay_from_the_ledger_page(self, gw):
        pid = await partner(gw)
        await call(gw, Role.member, "POST", "/api/commissions/agreements", {
            "partner_id": pid, "name": "Fee", "direction": "payable", "effective_from": "2026-01-01",
            "terms": {"rate": {"kind": "flat", "rate": "10"}, "basis": "invoice", "duration": "lifetime"}})
        r = await call(gw, Role.member, "POST", "/api/commissions/revenue/invoices", {
            "invoice_id": f"I-{uuid.uuid4().hex[:8]}", "customer": "Acme <b>Corp</b>", "partner_id": pid,
            "amount": "2500.00", "paid_at": "2026-11-02T09:00:00Z"})
        [entry] = r.json()["entries"]
        member_view = await get_page(gw, Role.member, f"/commissions/ledger?partner_id={pid}")
        assert member_view.status_code == 200 and 'name="entry_id"' not in member_view.text
        assert "Acme &lt;b&gt;Corp&lt;/b&gt;" in member_view.text  # as written, and escaped
        manager_view = await get_page(gw, Role.manager, f"/commissions/ledger?partner_id={pid}")
        assert f'name="entry_id" value="{entry["id"]}"' in manager_view.text
        assert (await post_form(gw, Role.member, "/commissions/ledger/approve",
                                {"entry_id": str(entry["id"])})).status_code == 403
        r = await post_form(gw, Role.manager, "/commissions/ledger/approve", {"entry_id": str(entry["id"])})
        assert r.status_code == 303 and "1+entries+approved" in r.headers["location"]
        r = await post_form(gw, Role.manager, "/commissions/ledger/pay",
                            {"entry_id": str(entry["id"]), "paid_on": "2026-11-20", "reference": ""})
        assert "reference" in r.headers["location"]
        r = await post_form(gw, Role.manager, "/commissions/ledger/pay",
                            {"entry_id": str(entry["id"]), "paid_on": "2026-11-20", "reference": "wire 9"})
        assert "Payment+of+250.00+USD" in r.headers["location"]
        statement = await get_page(gw, Role.viewer, f"/commissions/statement?partner_id={pid}&period=2026-11")
        assert statement.status_code == 200
        assert f"/api/commissions/statements/{pid}/2026-11.csv" in statement.text
        assert re.search(r'data-testid="closing">\$0\.00<', statement.text)
        bad = await get_page(gw, Role.viewer, f"/commissions/statement?partner_id={pid}&period=2026-13")
        assert bad.status_code == 422 and "a month (2026-11) or a quarter" in bad.text
        filtered = await get_page(gw, Role.viewer, "/commissions/ledger?status=nonsense&period=x")
        assert filtered.status_code == 200 and "not valid" in filtered.text

    async def test_the_overview_lists_agreements_and_the_nav_leads_there(self, gw):
        page = await get_page(gw, Role.viewer, "/commissions")
        assert page.status_code == 200 and 'href="/commissions" aria-current="page"' in page.text
        assert 'data-testid="agreements"' in page.text and 'data-testid="forecast"' in page.text
