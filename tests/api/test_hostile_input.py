"""No input makes a 5xx, and bad input is refused with a 4xx naming the field: each case found by the
schemathesis run of issue 10 (year 0 periods, offsets past bigint, NUL and control characters,
`1e309`, numeric timestamps, invented currencies, revenue for an unknown partner) and their siblings;
and an outage answers 503 with Retry-After. Against the real gateway and services."""

from __future__ import annotations

import uuid

import httpx
import pytest

from runtime.testing import eventually
from tests.api.conftest import Api

BIGINT_PAST = str(2**63)
HUGE = "9" * 40


def loc(response: httpx.Response) -> list[object]:
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return detail[0]["loc"]


def refused(response: httpx.Response, *where: object) -> None:
    """A 422 whose first error names the field (its location ends with `where`)."""
    assert response.status_code == 422, (response.status_code, response.text)
    assert tuple(loc(response)[-len(where):]) == where, response.text


async def new_partner(client: httpx.AsyncClient, api: Api) -> str:
    r = await client.post("/api/partners", json={"name": f"P {uuid.uuid4().hex[:8]}", "type": "referral",
                                                 "status": "active"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def opportunity(**changes: object) -> dict[str, object]:
    return {"name": f"Deal {uuid.uuid4().hex[:6]}", "customer": "Acme", "amount": "1000.00", **changes}


def invoice(partner_id: str, **changes: object) -> dict[str, object]:
    return {"invoice_id": f"INV-{uuid.uuid4().hex[:8]}", "customer": "Acme", "partner_id": partner_id,
            "amount": "100.00", "currency": "USD", "paid_at": "2026-10-05T10:00:00Z", **changes}


def agreement(partner_id: str, **changes: object) -> dict[str, object]:
    return {"partner_id": partner_id, "name": f"A {uuid.uuid4().hex[:6]}", "direction": "payable",
            "effective_from": "2026-01-01", "terms": {"rate": {"kind": "flat", "rate": "10"}}, **changes}


async def test_year_zero_and_out_of_range_periods(api: Api) -> None:
    async with api.client() as client:
        for period in ("0000-01", "0000-Q1", "1899-12", "2201-01", "9999-Q4"):
            refused(await client.get("/api/commissions/ledger", params={"period": period}), "query", "period")
            for suffix in ("", ".csv"):
                r = await client.get(f"/api/commissions/statements/{uuid.uuid4()}/{period}{suffix}")
                refused(r, "path", "period")
        assert (await client.get("/api/commissions/ledger", params={"period": "2026-Q4"})).status_code == 200
        refused(await client.get("/api/opportunities", params={"quarter": "0000-Q1"}), "query", "quarter")


@pytest.mark.parametrize("path", ["/api/partners", "/api/opportunities", "/api/commissions/agreements",
                                  "/api/commissions/revenue", "/api/commissions/ledger"])
async def test_offsets_past_any_column_are_refused(api: Api, path: str) -> None:
    async with api.client() as client:
        for offset in (BIGINT_PAST, HUGE, "-1"):
            refused(await client.get(path, params={"offset": offset}), "query", "offset")
        assert (await client.get(path, params={"offset": "10000000"})).status_code == 200


async def test_ids_and_versions_past_their_columns_are_refused(api: Api) -> None:
    admin = api.admin
    refused(await admin.client.get("/api/audit", params={"before_id": BIGINT_PAST}), "query", "before_id")
    assert (await admin.client.get("/api/audit", params={"before_id": str(2**63 - 1)})).status_code == 200
    async with api.client() as client:
        r = await client.post("/api/commissions/ledger/approve", json={"entry_ids": [2**63]})
        refused(r, "body", "entry_ids", 0)
        r = await client.put(f"/api/commissions/agreements/{uuid.uuid4()}/versions/{2**31}",
                             json={"effective_from": "2026-01-01", "terms": {"rate": {"kind": "flat", "rate": "1"}}})
        refused(r, "path", "version")
        partner = await new_partner(client, api)
        refused(await client.patch(f"/api/partners/{partner}", json={"expected_version": 2**63}),
                "body", "expected_version")


@pytest.mark.parametrize("bad", ["a\x00b", "\x00", "bell\x07", "esc\x1b[31m", "del\x7f", "two\nlines"])
async def test_control_characters_in_names_are_refused(api: Api, bad: str) -> None:
    async with api.client() as client:
        refused(await client.post("/api/partners", json={"name": bad, "type": "isv"}), "body", "name")
        refused(await client.post("/api/opportunities", json=opportunity(customer=bad)), "body", "customer")
        partner = await new_partner(client, api)
        refused(await client.post("/api/commissions/agreements", json=agreement(partner, name=bad)), "body", "name")
        refused(await client.post("/api/commissions/revenue/invoices", json=invoice(partner, customer=bad)),
                "body", "customer")
    r = await api.admin.client.post("/api/tokens", json={"name": bad, "scopes": ["kpis:read"]},
                                    headers={"x-csrf-token": api.admin.csrf})
    refused(r, "body", "name")


async def test_nul_in_free_text_is_refused_but_line_breaks_are_kept(api: Api) -> None:
    async with api.client() as client:
        ace = {"review_status": "Action Required", "reviewer_comments": "first line\nsecond\x00line"}
        refused(await client.post("/api/opportunities", json=opportunity(ace=ace)), "body", "ace", "reviewer_comments")
        ace["reviewer_comments"] = "first line\n\tsecond line"
        r = await client.post("/api/opportunities", json=opportunity(ace=ace))
        assert r.status_code == 201, r.text
        assert r.json()["ace"]["reviewer_comments"] == "first line\n\tsecond line"
        partner = await new_partner(client, api)
        churn = {"customer": "Acme", "partner_id": partner, "churned_at": "2026-10-01T00:00:00Z",
                 "reason": "moved\x00away"}
        refused(await client.post("/api/commissions/revenue/churns", json=churn), "body", "reason")


@pytest.mark.parametrize("path,name", [("/api/partners", "q"), ("/api/partners", "owner"),
                                       ("/api/opportunities", "q"), ("/api/opportunities", "stage"),
                                       ("/api/opportunities", "owner"), ("/api/kpis/pipeline", "owner")])
async def test_nul_in_query_filters_is_refused(api: Api, path: str, name: str) -> None:
    async with api.client() as client:
        refused(await client.get(path, params={name: "a\x00b"}), "query", name)
        assert (await client.get(path, params={name: "ab"})).status_code == 200


async def test_nul_in_the_audit_filter_is_refused(api: Api) -> None:
    refused(await api.admin.client.get("/api/audit", params={"entity": "part\x00ner"}), "query", "entity")


@pytest.mark.parametrize("number", ["1e309", "-1e309", "1e400", "NaN", "Infinity"])
async def test_infinite_and_absurd_numbers_get_a_422_not_a_500(api: Api, number: str) -> None:
    async with api.client() as client:
        body = b'{"name": "Deal", "customer": "Acme", "amount": ' + number.encode() + b"}"
        r = await client.post("/api/opportunities", content=body, headers={"content-type": "application/json"})
        refused(r, "body", "amount")
        assert "input" not in r.json()["detail"][0]  # nothing of the input is echoed back
        partner = await new_partner(client, api)
        body = (b'{"invoice_id": "I-1", "customer": "Acme", "partner_id": "' + partner.encode() + b'", "amount": '
                + number.encode() + b', "paid_at": "2026-10-05T10:00:00Z"}')
        r = await client.post("/api/commissions/revenue/invoices", content=body,
                              headers={"content-type": "application/json"})
        refused(r, "body", "amount")


async def test_numeric_timestamps_and_absurd_dates_are_refused(api: Api) -> None:
    async with api.client() as client:
        partner = await new_partner(client, api)
        churn = {"customer": "Acme", "partner_id": partner}
        for value in (0, 1700000000, "0", "1700000000", "0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z"):
            r = await client.post("/api/commissions/revenue/churns", json={**churn, "churned_at": value})
            refused(r, "body", "churned_at")
        for value in (0, "0", "1899-12-31", "2201-01-01"):
            ace = {"review_status": "Action Required", "action_due_date": value}
            refused(await client.post("/api/opportunities", json=opportunity(ace=ace)),
                    "body", "ace", "action_due_date")
            refused(await client.post("/api/opportunities", json=opportunity(expected_close_date=value)),
                    "body", "expected_close_date")
            refused(await client.post("/api/commissions/agreements", json=agreement(partner, effective_from=value)),
                    "body", "effective_from")
            refused(await client.get("/api/kpis/pipeline", params={"as_of": value}), "query", "as_of")
        r = await client.post("/api/commissions/revenue/churns", json={**churn, "churned_at": "2026-10-01T00:00:00Z"})
        assert r.status_code == 201, r.text
        assert r.json()["event"]["occurred_at"].startswith("2026-10-01")


async def test_invented_currencies_are_refused(api: Api) -> None:
    async with api.client() as client:
        partner = await new_partner(client, api)
        for code in ("XYZ", "usd1", "US", "\x00\x00\x00"):
            refused(await client.post("/api/commissions/agreements", json=agreement(partner, currency=code)),
                    "body", "currency")
            refused(await client.post("/api/commissions/revenue/invoices", json=invoice(partner, currency=code)),
                    "body", "currency")
            refused(await client.post("/api/opportunities", json=opportunity(currency=code)), "body", "currency")

        async def accepted() -> httpx.Response | None:
            # Commissions learns of the new partner from the pipeline's event, a moment after it is created.
            r = await client.post("/api/commissions/revenue/invoices", json=invoice(partner, currency="eur"))
            return None if r.status_code == 422 and "no partner with id" in r.text else r

        r = await eventually(accepted, "commissions to know the new partner")
        assert r.status_code == 201 and r.json()["event"]["currency"] == "EUR", r.text


async def test_revenue_for_an_unknown_partner_is_refused(api: Api) -> None:
    stranger = str(uuid.uuid4())
    async with api.client() as client:
        r = await client.post("/api/commissions/revenue/invoices", json=invoice(stranger))
        refused(r, "body", "partner_id")
        assert stranger in r.json()["detail"][0]["msg"]
        churn = {"customer": "Acme", "partner_id": stranger, "churned_at": "2026-10-01T00:00:00Z"}
        refused(await client.post("/api/commissions/revenue/churns", json=churn), "body", "partner_id")
        listed = await client.get("/api/commissions/revenue", params={"partner_id": stranger})
        assert listed.json()["total"] == 0


async def test_nul_in_a_csv_import_is_refused_not_a_500(api: Api) -> None:
    async with api.client() as client:
        for csv_text in ("name,type\nAcme\x00Corp,isv\n", "na\x00me,type\nAcme,isv\n"):
            r = await client.post("/api/partners/import", content=csv_text.encode(),
                                  headers={"content-type": "text/csv"})
            assert r.status_code == 422, r.text
            assert "NUL" in r.text
        listed = await client.get("/api/partners", params={"q": "Acme"})
        assert all("\x00" not in p["name"] for p in listed.json()["items"])


async def test_an_outage_answers_503_with_retry_after(api: Api) -> None:
    """Last in the module: NATS stops, then comes back."""
    external = {"source": "aws", "external_id": f"O{uuid.uuid4().hex[:8]}", "last_modified": "2026-10-01T00:00:00Z",
                "name": "Deal", "customer": "Acme", "stage": "Prospect", "amount": "10.00"}
    async with api.client(timeout=60) as client:
        # First call while NATS is up: the SYNC stream is ensured once.
        assert (await client.post("/api/integrations/opportunities", json=[external])).status_code == 202
        api.nats.stop()
        try:
            for method, path, body in (("POST", "/api/integrations/opportunities", [external]),
                                       ("GET", "/api/partners", None)):
                r = await client.request(method, path, json=body)
                assert r.status_code == 503, (path, r.status_code, r.text)
                assert int(r.headers["retry-after"]) > 0
                assert r.json()["detail"]
        finally:
            api.nats.start()

        async def back() -> bool:
            return (await client.get("/api/partners")).status_code == 200

        await eventually(back, "the gateway to come back after NATS did")
