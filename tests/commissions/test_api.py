"""The commissions REST API through the real gateway (its lifespan, auth, read-model consumers) with the
pipeline and commissions services running in-process on this module's own Postgres and NATS."""

from __future__ import annotations

import csv
import io
import uuid
from decimal import Decimal

import pytest

from gateway.auth import Role
from runtime.testing import eventually
from tests.commissions.helpers import call, partner

D = Decimal
API = "/api/commissions"
FLAT_INVOICE = {"rate": {"kind": "flat", "rate": "10"}, "basis": "invoice", "duration": "lifetime",
                "clawback_days": 60}


def agreement_body(partner_id: str, **kw) -> dict:
    return {"partner_id": partner_id, "name": kw.pop("name", "Referral fee"), "direction": "payable",
            "currency": "USD", "effective_from": "2026-01-01", "terms": kw.pop("terms", FLAT_INVOICE), **kw}


def loc_of(response) -> list[str]:
    return response.json()["detail"][0]["loc"]


class TestAgreementsApi:
    async def test_create_read_version_and_audit(self, gw):
        pid = await partner(gw)
        r = await call(gw, Role.member, "POST", f"{API}/agreements", agreement_body(pid, deal_models=["referral"]))
        assert r.status_code == 201, r.text
        a = r.json()
        assert a["versions"][0]["terms"]["rate"] == {"kind": "flat", "rate": "10"}
        r = await call(gw, Role.member, "POST", f"{API}/agreements/{a['id']}/versions",
                       {"effective_from": "2026-07-01",
                        "terms": {**FLAT_INVOICE, "rate": {"kind": "flat", "rate": "12.5"}}})
        assert r.status_code == 201 and [v["effective_to"] for v in r.json()["versions"]] == ["2026-07-01", None]
        r = await call(gw, Role.member, "PUT", f"{API}/agreements/{a['id']}/versions/2",
                       {"effective_from": "2026-07-01", "retroactive": True, "terms": FLAT_INVOICE})
        assert r.status_code == 200 and r.json()["versions"][1]["retroactive"] is True
        audit = (await call(gw, Role.viewer, "GET", f"{API}/agreements/{a['id']}/audit")).json()["items"]
        assert [x["action"] for x in audit] == ["created", "version_ended", "version_added", "version_updated"]
        assert {x["actor"] for x in audit} == {"member@commissions.test"}
        listed = (await call(gw, Role.viewer, "GET", f"{API}/agreements?partner_id={pid}")).json()
        assert listed["total"] == 1

    @pytest.mark.parametrize("change, loc, words", [
        ({"terms": {**FLAT_INVOICE, "rate": {"kind": "flat", "rate": "120"}}}, ["body", "terms", "rate", "rate"],
         "outside 0-100%"),
        ({"terms": {**FLAT_INVOICE, "rate": {"kind": "tiered", "mode": "marginal", "tiers": [
            {"from_amount": "0", "up_to": "50000", "rate": "10"}, {"from_amount": "60000", "rate": "15"}]}}},
         ["body", "terms", "rate", "tiers", "1", "from_amount"], "gap between tiers"),
        ({"terms": {**FLAT_INVOICE, "rate": {"kind": "flat", "rate": "ten"}}}, None, ""),
        ({"direction": "sideways"}, ["body", "direction"], ""),
        ({"currency": "XYZ"}, ["body", "currency"], "ISO 4217"),
        ({"partner_id": str(uuid.uuid4())}, ["body", "partner_id"], "no partner"),
        ({"effective_to": "2025-01-01"}, ["body", "effective_to"], "must be after"),
        ({"surprise": 1}, ["body", "surprise"], ""),
    ])
    async def test_what_is_wrong_is_said_with_the_field(self, gw, change, loc, words):
        pid = await partner(gw)
        r = await call(gw, Role.member, "POST", f"{API}/agreements", {**agreement_body(pid), **change})
        assert r.status_code == 422, r.text
        if loc:
            assert loc_of(r) == loc
        assert words in r.json()["detail"][0]["msg"]

    async def test_overlapping_versions(self, gw):
        pid = await partner(gw)
        a = (await call(gw, Role.member, "POST", f"{API}/agreements",
                        agreement_body(pid, effective_to="2026-12-31"))).json()
        r = await call(gw, Role.member, "POST", f"{API}/agreements/{a['id']}/versions",
                       {"effective_from": "2026-06-01", "terms": FLAT_INVOICE})
        assert r.status_code == 422 and loc_of(r) == ["body", "effective_from"]
        assert "overlaps version 1" in r.json()["detail"][0]["msg"]

    async def test_who_may_do_what(self, gw):
        pid = await partner(gw)
        r = await call(gw, Role.viewer, "POST", f"{API}/agreements", agreement_body(pid))
        assert r.status_code == 403
        assert (await call(gw, Role.member, "GET", f"{API}/agreements/{uuid.uuid4()}")).status_code == 404
        assert (await gw.client().get(f"{API}/ledger")).status_code == 401


class TestLedgerPagingApi:
    async def test_sort_and_keyset_paging_and_bad_cursors(self, gw):
        ok = await call(gw, Role.viewer, "GET", f"{API}/ledger?sort=-amount&limit=1")
        assert ok.status_code == 200 and "next_after" in ok.json(), ok.text
        for query in ("sort=amount;drop", "sort=", "after=x", "after=1:2:3", "after=" + "9" * 40,
                      "after=2026-11-01:1%00", "limit=0", "limit=1001"):
            r = await call(gw, Role.viewer, "GET", f"{API}/ledger?{query}")
            assert r.status_code == 422, (query, r.text)
        r = await call(gw, Role.viewer, "GET", f"{API}/ledger?sort=period&after=12.50:3")
        assert r.status_code == 422 and loc_of(r)[-1] == "after", r.text


class TestRevenueLedgerAndStatementsApi:
    async def test_from_invoice_to_payment_to_statement_and_csv(self, gw):
        pid = await partner(gw, name=f"=HYPERLINK(\"x\") {uuid.uuid4().hex[:4]}")
        a = (await call(gw, Role.member, "POST", f"{API}/agreements", agreement_body(pid))).json()
        invoice = {"invoice_id": f"INV-{uuid.uuid4().hex[:8]}", "customer": "=cmd|'/C calc'!A0",
                   "partner_id": pid, "amount": "4000.00", "currency": "USD", "paid_at": "2026-10-05T10:00:00Z"}
        r = await call(gw, Role.member, "POST", f"{API}/revenue/invoices", invoice)
        assert r.status_code == 201, r.text
        [entry] = r.json()["entries"]
        assert (entry["amount"], entry["status"], entry["rule"]) == ("400.00", "accrued", "flat")
        again = await call(gw, Role.member, "POST", f"{API}/revenue/invoices", invoice)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        clash = await call(gw, Role.member, "POST", f"{API}/revenue/invoices", {**invoice, "amount": "5000.00"})
        # The conflict names the field the request sent (invoice_id), not the ledger's internal `ref`.
        assert clash.status_code == 409 and loc_of(clash) == ["body", "invoice_id"], clash.text
        for bad, field in ((("amount", "-1"), "amount"), (("amount", "1.001"), "amount"),
                           (("paid_at", "2026-10-05T10:00:00"), "paid_at"), (("currency", "US"), "currency")):
            r = await call(gw, Role.member, "POST", f"{API}/revenue/invoices", {**invoice, bad[0]: bad[1]})
            assert r.status_code == 422 and loc_of(r)[-1] == field, r.text
        refund = {"refund_id": f"R-{uuid.uuid4().hex[:8]}", "invoice_id": invoice["invoice_id"], "amount": "1000.00",
                  "currency": "USD", "refunded_at": "2026-10-20T10:00:00Z"}
        r = await call(gw, Role.member, "POST", f"{API}/revenue/refunds", refund)
        assert r.status_code == 201 and r.json()["entries"][0]["amount"] == "-100.00"
        r = await call(gw, Role.member, "POST", f"{API}/revenue/refunds", {**refund, "refund_id": "R-x",
                                                                            "invoice_id": "nope"})
        assert r.status_code == 404 and loc_of(r) == ["body", "invoice_id"]

        ledger = (await call(gw, Role.viewer, "GET", f"{API}/ledger?partner_id={pid}")).json()["items"]
        ids = [e["id"] for e in ledger]
        assert (await call(gw, Role.member, "POST", f"{API}/ledger/approve", {"entry_ids": ids})).status_code == 403
        r = await call(gw, Role.manager, "POST", f"{API}/ledger/approve", {"entry_ids": ids})
        # Just approved entries are listed as approved only, not also as "already approved".
        assert r.status_code == 200 and (r.json()["approved"], r.json()["already_approved"]) == (ids, [])
        r = await call(gw, Role.manager, "POST", f"{API}/ledger/pay", {"entry_ids": ids, "paid_on": "2026-10-31",
                                                                        "reference": "wire 7"})
        assert r.status_code == 201 and r.json()["amount"] == "300.00"
        r = await call(gw, Role.admin, "POST", f"{API}/ledger/pay", {"entry_ids": ids, "reference": "again"})
        assert r.status_code == 409

        s = (await call(gw, Role.viewer, "GET", f"{API}/statements/{pid}/2026-Q4")).json()
        [sec] = s["sections"]
        assert (sec["opening_balance"], sec["accruals"], sec["clawbacks"], sec["payments"], sec["closing_balance"]) \
            == ("0", "400.00", "-100.00", "300.00", "0.00")
        r = await call(gw, Role.viewer, "GET", f"{API}/statements/{pid}/2026-Q4.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [x["row"] for x in rows] == ["opening balance", "entry", "entry", "payment", "closing balance"]
        assert rows[1]["customer"].startswith("'=")  # never a formula in a spreadsheet
        assert sum(D(x["amount"]) for x in rows[1:4]) == D(rows[-1]["amount"]) == D(0)
        assert (await call(gw, Role.viewer, "GET", f"{API}/statements/{pid}/2026-Q5")).status_code == 422

        async def earned() -> object:
            k = (await call(gw, Role.viewer, "GET", f"{API}/kpis")).json()
            paid = [f for f in k["figures"] if f["direction"] == "payable" and f["label"].startswith("Unpaid")]
            return k if paid and D(paid[0]["amount"]) == 0 else None

        kpis = await eventually(earned, "the KPI read model to take in the posted, approved and paid entries")
        assert any(f["label"].startswith("Earned this quarter") for f in kpis["figures"])
        a_id = a["id"]
        assert (await call(gw, Role.member, "POST", f"{API}/agreements/{a_id}/recalculate")).status_code == 403
        r = await call(gw, Role.manager, "POST", f"{API}/agreements/{a_id}/recalculate")
        assert r.status_code == 200 and r.json()["entries_written"] == 0

    async def test_a_token_reads_with_the_read_scope_only(self, gw):
        admin = gw.people[Role.admin]
        made = await admin.client.post("/api/tokens", json={"name": f"t{uuid.uuid4().hex[:6]}",
                                                            "scopes": ["commissions:read"]},
                                       headers={"x-csrf-token": admin.csrf})
        token = made.json()["token"]
        client = gw.client()
        ok = await client.get(f"{API}/ledger", headers={"authorization": f"Bearer {token}"})
        assert ok.status_code == 200
        refused = await client.post(f"{API}/ledger/approve", json={"entry_ids": [1]},
                                    headers={"authorization": f"Bearer {token}"})
        assert refused.status_code == 403
        await client.aclose()
