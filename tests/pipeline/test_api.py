"""The pipeline's REST API on the gateway: every endpoint's happy path, its 422 (with the field),
404 and 409, filters, sorting and paging, scopes, and the integration endpoint sync workers use."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from contracts.quarters import Quarter
from gateway.auth import digest, new_api_token
from gateway.models import ApiToken
from runtime.testing import eventually, unique
from tests.pipeline.helpers import external


def fields_of(response: httpx.Response) -> set[str]:
    return {".".join(str(p) for p in d["loc"][1:]) for d in response.json()["detail"]}


async def partner(api, **kw) -> dict:
    response = await api.post("/api/partners", json={"name": unique("P "), "type": "isv", **kw})
    assert response.status_code == 201, response.text
    return response.json()


async def opportunity(api, **kw) -> dict:
    response = await api.post("/api/opportunities", json={"name": unique("O "), "customer": "Cust",
                                                           "amount": "1000.00", **kw})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def scoped(gateway_app):
    """A client whose token holds only the given scopes."""
    clients = []

    async def make(*scopes: str) -> httpx.AsyncClient:
        token = new_api_token()
        async with gateway_app.state.running.sessions() as session, session.begin():
            session.add(ApiToken(name=unique("t"), token_hash=digest(token), scopes=list(scopes), created_by="tests"))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway_app), base_url="http://gateway",
                                   headers={"authorization": f"Bearer {token}"})
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


class TestPartners:
    async def test_create_read_change_archive(self, api, new_owner):
        owner, owner_id = await new_owner()
        p = await partner(api, owner=owner, scorecard={"strategic_fit": 8, "revenue_potential": 6,
                                                       "feasibility": 7, "risk": 5})
        assert p["score"] == "6.65" and p["tier"] == "bronze" and p["tier_auto"] is True
        assert p["owner"] == owner_id  # named by email, owned by user id
        got = await api.get(f"/api/partners/{p['id']}")
        assert got.status_code == 200 and got.json()["rank"] >= 1
        patched = await api.patch(f"/api/partners/{p['id']}", json={"status": "active", "expected_version": 1})
        assert patched.status_code == 200 and patched.json()["version"] == 2
        stale = await api.patch(f"/api/partners/{p['id']}", json={"status": "inactive", "expected_version": 1})
        assert stale.status_code == 409 and fields_of(stale) == {"expected_version"}
        archived = await api.post(f"/api/partners/{p['id']}/archive")
        assert archived.status_code == 200 and archived.json()["archived"] is True
        listed = await api.get("/api/partners", params={"owner": owner})
        assert listed.json()["total"] == 0
        listed = await api.get("/api/partners", params={"owner": owner, "include_archived": "true"})
        assert listed.json()["total"] == 1

    async def test_filters_sorting_paging(self, api, new_owner):
        owner, _ = await new_owner()
        for name, tier in (("Beta", "gold"), ("alpha", None), ("Gamma", "platinum")):
            await partner(api, name=f"{name} {unique('')}", owner=owner, **({"tier": tier} if tier else {}))
        names = lambda r: [p["name"].split()[0] for p in r.json()["items"]]  # noqa: E731
        assert names(await api.get("/api/partners", params={"owner": owner, "sort": "name"})) == ["alpha", "Beta",
                                                                                                  "Gamma"]
        assert names(await api.get("/api/partners", params={"owner": owner, "sort": "-tier"})) == ["Gamma", "Beta",
                                                                                                   "alpha"]
        page = await api.get("/api/partners", params={"owner": owner, "sort": "name", "limit": 1, "offset": 1})
        assert names(page) == ["Beta"] and page.json()["total"] == 3
        assert names(await api.get("/api/partners", params={"owner": owner, "tier": "gold"})) == ["Beta"]

    @pytest.mark.parametrize(("method", "path", "body", "params", "field"), [
        ("post", "/api/partners", {"name": "", "type": "isv"}, None, "name"),
        ("post", "/api/partners", {"name": "X", "type": "rocket"}, None, "type"),
        ("post", "/api/partners", {"name": "X", "type": "isv", "admin": True}, None, "admin"),
        ("post", "/api/partners", {"name": "X", "type": "isv", "scorecard": {"strategic_fit": 99}}, None,
         "scorecard.strategic_fit"),
        ("patch", "/api/partners/{id}", {"tier": "mithril"}, None, "tier"),
        ("patch", "/api/partners/{id}", {"name": None, "owner": "x" * 201}, None, "owner"),
        ("get", "/api/partners", None, {"limit": 0}, "limit"),
        ("get", "/api/partners", None, {"limit": 501}, "limit"),
        ("get", "/api/partners", None, {"sort": "password"}, "sort"),
        ("get", "/api/partners", None, {"type": "<script>"}, "type"),
        ("get", "/api/partners/not-a-uuid", None, None, "partner_id"),
    ])
    async def test_bad_input_is_422_with_the_field(self, api, method, path, body, params, field):
        p = await partner(api)
        response = await api.request(method, path.format(id=p["id"]), json=body, params=params)
        assert response.status_code == 422, response.text
        assert field in fields_of(response)

    async def test_404_and_409(self, api):
        missing = uuid.uuid4()
        for method, path in (("get", f"/api/partners/{missing}"), ("patch", f"/api/partners/{missing}"),
                             ("post", f"/api/partners/{missing}/archive")):
            response = await api.request(method, path, json={"status": "active"} if method == "patch" else None)
            assert response.status_code == 404, (path, response.text)
        p = await partner(api)
        dup = await api.post("/api/partners", json={"name": p["name"].upper(), "type": "msp"})
        assert dup.status_code == 409 and fields_of(dup) == {"name"}

    async def test_tier_recomputation_needs_a_manager(self, api, scoped):
        response = await api.post("/api/partners/tiers/recompute")
        assert response.status_code == 200 and response.json()["partners_checked"] >= 0
        reader = await scoped("partners:read")
        assert (await reader.post("/api/partners/tiers/recompute")).status_code == 403


class TestOpportunities:
    async def test_create_move_read_history(self, api, new_owner):
        p = await partner(api)
        o = await opportunity(api, partner_id=p["id"], owner=(await new_owner())[0], expected_close_date="2026-12-31")
        for stage in ("Qualified", "proposal", "won"):
            moved = await api.post(f"/api/opportunities/{o['id']}/stage", json={"stage": stage})
            assert moved.status_code == 200, moved.text
        detail = (await api.get(f"/api/opportunities/{o['id']}")).json()
        assert [h["to_stage"] for h in detail["stage_history"]] == ["lead", "qualified", "proposal", "won"]
        assert {h["changed_by"] for h in detail["stage_history"]} == {"token:pipeline-tests"}
        assert detail["outcome"] == "won" and detail["amount"] == "1000.00"

    async def test_patch_and_conflicts(self, api, new_owner):
        _, owner_id = await new_owner()
        o = await opportunity(api, owner=owner_id)
        assert o["owner"] == owner_id
        nobody = await api.patch(f"/api/opportunities/{o['id']}", json={"owner": "tom"})
        assert nobody.status_code == 422 and fields_of(nobody) == {"owner"}
        ok = await api.patch(f"/api/opportunities/{o['id']}", json={"amount": "2500.50", "owner": None,
                                                                    "expected_version": 1})
        assert ok.status_code == 200 and ok.json()["amount"] == "2500.50" and ok.json()["owner"] is None
        stale = await api.post(f"/api/opportunities/{o['id']}/stage", json={"stage": "won", "expected_version": 1})
        assert stale.status_code == 409
        unknown = await api.post(f"/api/opportunities/{o['id']}/stage", json={"stage": "Signed"})
        assert unknown.status_code == 422 and fields_of(unknown) == {"stage"}
        missing = await api.get(f"/api/opportunities/{uuid.uuid4()}")
        assert missing.status_code == 404

    @pytest.mark.parametrize(("body", "field"), [
        ({"amount": "-1"}, "amount"), ({"amount": "12.345"}, "amount"), ({"amount": "Infinity"}, "amount"),
        ({"amount": 1e30}, "amount"), ({"currency": "EURO"}, "currency"), ({"customer": ""}, "customer"),
        ({"expected_close_date": "31/12/2026"}, "expected_close_date"), ({"deal_model": "gift"}, "deal_model"),
        ({"pipeline": "Robert'); DROP TABLE opportunity;--"}, "pipeline"), ({"hyperscaler": "oracle"}, "hyperscaler"),
        ({"ace": {"review_status": "Approved", "extra": 1}}, "ace.extra"), ({"partner_id": "nope"}, "partner_id"),
        ({"partner_id": str(uuid.uuid4())}, "partner_id"), ({"stage": "Nope"}, "stage"),
    ])
    async def test_bad_opportunities_are_422_with_the_field(self, api, body, field):
        base = {"name": "N", "customer": "C", "amount": "10.00"}
        response = await api.post("/api/opportunities", json={**base, **body})
        assert response.status_code == 422, response.text
        assert field in fields_of(response)

    async def test_filters_sorting_paging(self, api, new_owner):
        owner, _ = await new_owner()
        p = await partner(api)
        for amount, source_stage in (("300", "lead"), ("100", "won"), ("200", "proposal")):
            o = await opportunity(api, owner=owner, amount=amount, partner_id=p["id"], expected_close_date="2026-05-20")
            if source_stage != "lead":
                await api.post(f"/api/opportunities/{o['id']}/stage", json={"stage": source_stage})
        get = lambda **q: api.get("/api/opportunities", params={"owner": owner, **q})  # noqa: E731
        amounts = lambda r: [o["amount"] for o in r.json()["items"]]  # noqa: E731
        assert amounts(await get(sort="amount")) == ["100.00", "200.00", "300.00"]
        assert amounts(await get(sort="-amount", limit=2, offset=1)) == ["200.00", "100.00"]
        assert amounts(await get(stage="won")) == ["100.00"]
        assert amounts(await get(partner_id=p["id"], outcome="open", sort="amount")) == ["200.00", "300.00"]
        assert (await get(source="manual")).json()["total"] == 3 and (await get(source="gcp")).json()["total"] == 0
        await api.patch("/api/pipeline/settings", json={"fiscal_year_start_month": 1})
        # Open deals by their expected close date, closed ones by the day they closed (today).
        now = Quarter.fiscal_of(datetime.now(UTC).date(), 1).label
        assert (await get(quarter="2026-Q2")).json()["total"] == (3 if now == "2026-Q2" else 2)
        assert (await get(quarter=now)).json()["total"] == (3 if now == "2026-Q2" else 1)
        assert (await get(quarter="FY1999 Q3")).json()["total"] == 0
        for bad in ({"quarter": "2026-Q5"}, {"quarter": "last one"}, {"sort": "amount; drop"}, {"outcome": "meh"},
                    {"offset": -1}, {"partner_id": "x"}, {"pipeline": "UPPER"}):
            response = await get(**bad)
            assert response.status_code == 422, (bad, response.text)


class TestPipelinesAndSettings:
    async def test_define_a_pipeline_and_protect_stages_in_use(self, api):
        key = unique("p").lower()
        stages = [{"key": "intro", "name": "Intro", "probability": 20}, {"key": "pilot", "name": "Pilot",
                                                                         "probability": 60},
                  {"key": "signed", "name": "Signed", "probability": 100, "outcome": "won"},
                  {"key": "dropped", "name": "Dropped", "probability": 0, "outcome": "lost"}]
        defined = await api.put(f"/api/pipelines/{key}", json={"name": "MSP onboarding", "stages": stages})
        assert defined.status_code == 200 and defined.json()["version"] == 1
        assert key in {p["key"] for p in (await api.get("/api/pipelines")).json()["items"]}
        o = await opportunity(api, pipeline=key, stage="Pilot")
        assert (o["pipeline"], o["stage"], o["probability"]) == (key, "pilot", 60)
        drop_pilot = [s for s in stages if s["key"] != "pilot"]
        refused = await api.put(f"/api/pipelines/{key}", json={"name": "MSP onboarding", "stages": drop_pilot})
        assert refused.status_code == 409 and "pilot (1)" in refused.text
        bad = await api.put(f"/api/pipelines/{key}", json={"name": "x", "stages": stages[:2]})
        assert bad.status_code == 422
        won_not_100 = [*stages[:2], {**stages[2], "probability": 90}, stages[3]]
        assert (await api.put(f"/api/pipelines/{key}", json={"name": "x", "stages": won_not_100})).status_code == 422
        assert (await api.put("/api/pipelines/Bad-Key", json={"name": "x", "stages": stages})).status_code == 422

    async def test_settings_and_stage_sets_need_their_own_scope(self, scoped):
        writer = await scoped("opportunities:read", "opportunities:write")
        assert (await writer.patch("/api/pipeline/settings", json={"stuck_after_days": 30})).status_code == 403
        assert (await writer.put("/api/pipelines/scope_check", json={"name": "x", "stages": []})).status_code == 403
        assert (await writer.get("/api/pipeline/settings")).status_code == 200
        configurer = await scoped("pipeline:configure")
        response = await configurer.patch("/api/pipeline/settings", json={"stuck_after_days": 30})
        assert response.status_code == 200 and response.json()["stuck_after_days"] == 30

    async def test_settings_validation_and_versions(self, api):
        current = (await api.get("/api/pipeline/settings")).json()
        for body in ({"fiscal_year_start_month": 13}, {"quarterly_target": "-1"}, {"forecast_pipelines": []},
                     {"forecast_pipelines": ["unknown"]}, {"fx_rates": {"EUR": "0"}}, {"fx_rates": {"XYZ": "1"}},
                     {"scorecard_weights": {"strategic_fit": 100, "revenue_potential": 0, "feasibility": 0,
                                            "risk": 1}}, {"mystery": 1}):
            response = await api.patch("/api/pipeline/settings", json=body)
            assert response.status_code == 422, (body, response.text)
        stale = await api.patch("/api/pipeline/settings", json={"stuck_after_days": 45,
                                                                "expected_version": current["version"] + 7})
        assert stale.status_code == 409


class TestKpiEndpoint:
    @pytest.mark.parametrize("params", [{"as_of": "yesterday"}, {"as_of": "0001-01-01"}, {"owner": "x" * 201},
                                        {"top": 0}, {"top": 1000}])
    async def test_bad_parameters_are_422(self, api, params):
        assert (await api.get("/api/kpis/pipeline", params=params)).status_code == 422

    async def test_needs_the_kpi_scope(self, scoped):
        client = await scoped("opportunities:read")
        assert (await client.get("/api/kpis/pipeline")).status_code == 403
        client = await scoped("kpis:read")
        assert (await client.get("/api/kpis/pipeline")).status_code == 200

    async def test_no_token_is_401(self, gateway_app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway_app), base_url="http://g") as client:
            for path in ("/api/kpis/pipeline", "/api/opportunities", "/api/pipelines", "/api/partners/export.csv"):
                assert (await client.get(path)).status_code == 401


class TestIntegration:
    async def test_sync_workers_publish_over_http(self, api, scoped):
        events = [external(external_id=unique("O"), last_modified=datetime.now(UTC) - timedelta(minutes=1))
                  for _ in range(3)]
        body = [json.loads(e.model_dump_json()) for e in events]
        worker = await scoped("events:publish")
        response = await worker.post("/api/integrations/opportunities", json=body)
        assert response.status_code == 202 and response.json()["accepted"] == 3

        async def arrived():
            found = await api.get("/api/opportunities", params={"source": "aws", "q": events[0].name, "limit": 500})
            ids = {o["external_id"] for o in found.json()["items"]}
            return {e.external_id for e in events} <= ids

        await eventually(arrived, what="the published opportunities")
        reader = await scoped("opportunities:read")
        assert (await reader.post("/api/integrations/opportunities", json=body)).status_code == 403

    @pytest.mark.parametrize("body", [
        [], {"not": "a list"}, [{"source": "aws"}], [{**json.loads(external().model_dump_json()), "amount": "-1"}],
        [json.loads(external().model_dump_json())] * 501,
    ])
    async def test_bad_batches_are_422_and_nothing_is_published(self, api, body):
        response = await api.post("/api/integrations/opportunities", json=body)
        assert response.status_code == 422
