"""Who may own a deal or a partner (issue 16 item 9): members, managers and admins, never a viewer; one rule
(gateway/people.py) for the pages' pickers, the API and the CSV import, each answering with the field."""

from __future__ import annotations

from gateway.auth import Role
from runtime.testing import unique
from tests.support.gateway import Gateway, Person

HTML = {"accept": "text/html"}


async def _api(person: Person, method: str, path: str, **kw):
    return await person.client.request(method, path, headers={"x-csrf-token": person.csrf}, **kw)


def _fields(response) -> dict[str, str]:
    return {d["loc"][-1]: d["msg"] for d in response.json()["detail"]}


class TestAViewerOwnsNothing:
    async def test_the_api_refuses_a_viewer_as_owner_with_the_field(self, gateway: Gateway):
        member, viewer = gateway.people[Role.member], gateway.people[Role.viewer]
        for owner in (viewer.email, viewer.id, viewer.email.upper()):
            deal = await _api(member, "POST", "/api/opportunities", json={
                "name": unique("Owned "), "customer": "Acme", "amount": "10", "owner": owner})
            assert deal.status_code == 422, deal.text
            assert "is a viewer" in _fields(deal)["owner"]
            partner = await _api(member, "POST", "/api/partners", json={"name": unique("P "), "type": "isv",
                                                                        "owner": owner})
            assert partner.status_code == 422 and "is a viewer" in _fields(partner)["owner"]
        ok = await _api(member, "POST", "/api/opportunities", json={
            "name": unique("Owned "), "customer": "Acme", "amount": "10", "owner": member.email})
        assert ok.status_code == 201, ok.text
        changed = await _api(member, "PATCH", f"/api/opportunities/{ok.json()['id']}", json={"owner": viewer.email})
        assert changed.status_code == 422 and "owner" in _fields(changed)

    async def test_the_csv_import_names_the_row_and_the_field(self, gateway: Gateway):
        member, viewer = gateway.people[Role.member], gateway.people[Role.viewer]
        csv = ("name,customer,amount,owner\n"
               f"{unique('Ok ')},Acme,10,{member.email}\n"
               f"{unique('Viewer owned ')},Acme,10,{viewer.email}\n")
        r = await member.client.post("/api/opportunities/import", content=csv.encode(),
                                     headers={"content-type": "text/csv", "x-csrf-token": member.csrf})
        assert r.status_code == 422, r.text
        errors = r.json()["detail"]
        assert [tuple(e["loc"][2:]) for e in errors] == [(3, "owner")]
        assert "is a viewer" in errors[0]["msg"] and r.json()["result"]["stored"] is False

    async def test_the_pages_offer_no_viewer(self, gateway: Gateway):
        page = await gateway.people[Role.member].client.get("/opportunities/new", headers=HTML)
        assert page.status_code == 200
        assert gateway.people[Role.viewer].id not in page.text and gateway.people[Role.member].id in page.text
