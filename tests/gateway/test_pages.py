"""The pages over HTTP against the real pipeline service: forms that answer with errors beside the
fields, the board and moving deals on it (audited), the opportunity and partner pages."""

from __future__ import annotations

import re

from gateway.auth import Role
from runtime.testing import unique
from tests.gateway.conftest import Gateway

HTML = {"accept": "text/html"}


async def _partner(gateway: Gateway, name: str | None = None) -> dict:
    member = gateway.people[Role.member]
    response = await member.client.post("/partners", data={"name": name or unique("Partner "), "type": "isv",
                                                           "csrf_token": member.csrf}, headers=HTML)
    assert response.status_code == 303, response.text
    partner_id = response.headers["location"].split("/")[2].split("?")[0]
    return {"id": partner_id}


async def _deal(gateway: Gateway, **fields: str) -> str:
    member = gateway.people[Role.member]
    data = {"name": unique("Deal "), "customer": "Acme Corp", "amount": "12000", "csrf_token": member.csrf,
            **fields}
    response = await member.client.post("/opportunities", data=data, headers=HTML)
    assert response.status_code == 303, response.text
    return response.headers["location"].split("/")[2].split("?")[0]


class TestPartnerPages:
    async def test_the_add_partner_form_shows_errors_beside_fields_and_keeps_the_input(self, gateway: Gateway):
        member = gateway.people[Role.member]
        response = await member.client.post("/partners", data={"name": "", "type": "spaceship", "owner": "tom",
                                                               "csrf_token": member.csrf}, headers=HTML)
        assert response.status_code == 422
        assert re.search(r'data-field="name"[^>]*>Required\.', response.text)
        assert 'data-field="type"' in response.text and 'value="tom"' in response.text

    async def test_a_duplicate_name_is_the_services_error_beside_the_name(self, gateway: Gateway):
        name = unique("Twice ")
        await _partner(gateway, name)
        member = gateway.people[Role.member]
        response = await member.client.post("/partners", data={"name": name, "type": "isv",
                                                               "csrf_token": member.csrf}, headers=HTML)
        assert response.status_code == 422
        assert re.search(r'data-field="name"[^>]*>[^<]*already exists', response.text)

    async def test_partner_page_and_list(self, gateway: Gateway):
        name = unique("Listed ")
        partner = await _partner(gateway, name)
        viewer = gateway.people[Role.viewer]
        page = await viewer.client.get(f"/partners/{partner['id']}", headers=HTML)
        assert page.status_code == 200 and name in page.text and 'data-testid="scorecard"' in page.text
        listing = await viewer.client.get("/partners?type=isv", headers=HTML)
        assert listing.status_code == 200 and name in listing.text
        missing = await viewer.client.get("/partners/00000000-0000-0000-0000-000000000000", headers=HTML)
        assert missing.status_code == 404 and "No such partner" in missing.text


class TestDeals:
    async def test_the_deal_form_refuses_bad_input_beside_each_field(self, gateway: Gateway):
        member = gateway.people[Role.member]
        response = await member.client.post("/opportunities", data={
            "name": "", "customer": "Acme", "amount": "lots", "currency": "UDS", "csrf_token": member.csrf},
            headers=HTML)
        assert response.status_code == 422
        for name in ("name", "amount", "currency"):
            assert f'data-field="{name}"' in response.text, name
        assert 'value="Acme"' in response.text
        # The service's own checks arrive beside their field too (an unknown stage).
        response = await member.client.post("/opportunities", data={
            "name": unique("Deal "), "customer": "Acme", "amount": "10", "stage": "Celebration",
            "csrf_token": member.csrf}, headers=HTML)
        assert response.status_code == 422
        assert re.search(r'data-field="stage"[^>]*>[^<]*not a stage', response.text)

    async def test_a_deal_moves_on_the_board_and_the_move_is_audited(self, gateway: Gateway):
        partner = await _partner(gateway)
        name = unique("Board ")
        deal_id = await _deal(gateway, name=name, partner_id=partner["id"], owner="member")
        member = gateway.people[Role.member]
        board = await member.client.get("/pipeline?pipeline=resale", headers=HTML)
        assert board.status_code == 200
        lead = board.text.split('data-testid="column-lead"')[1].split('data-testid="column-qualified"')[0]
        assert name in lead
        version = re.search(rf'action="/opportunities/{deal_id}/move".*?name="expected_version" value="(\d+)"',
                            board.text, re.S)[1]
        moved = await member.client.post(f"/opportunities/{deal_id}/move", headers=HTML, data={
            "stage": "qualified", "expected_version": version, "back": "/pipeline?pipeline=resale",
            "csrf_token": member.csrf})
        assert moved.status_code == 303
        assert moved.headers["location"].startswith("/pipeline?pipeline=resale&notice=Moved")
        board = await member.client.get("/pipeline?pipeline=resale", headers=HTML)
        qualified = board.text.split('data-testid="column-qualified"')[1].split('data-testid="column-proposal"')[0]
        assert name in qualified

        # A move from a stale board is refused, not applied over the newer state.
        stale = await member.client.post(f"/opportunities/{deal_id}/move", headers=HTML, data={
            "stage": "lost", "expected_version": version, "back": "/pipeline", "csrf_token": member.csrf})
        assert stale.status_code == 303 and "error=Someone+changed" in stale.headers["location"]

        page = await member.client.get(f"/opportunities/{deal_id}", headers=HTML)
        history = page.text.split('data-testid="stage-history"')[1]
        assert "Qualified" in history and "Lead" in history and member.email in history

        admin = gateway.people[Role.admin]
        entries = (await admin.client.get("/api/audit", params={"entity": "opportunity"})).json()
        entry = next(e for e in entries if e["entity_id"] == deal_id and e["action"] == "opportunity.moved")
        assert entry["actor"] == member.email
        assert entry["before"]["stage"] == "lead" and entry["after"]["stage"] == "qualified"
        assert any(e["entity_id"] == deal_id and e["action"] == "opportunity.created" for e in entries)

    async def test_board_filters_narrow_the_columns(self, gateway: Gateway):
        mine = unique("Mine ")
        theirs = unique("Theirs ")
        await _deal(gateway, name=mine, owner="member")
        await _deal(gateway, name=theirs, owner="manager")
        viewer = gateway.people[Role.viewer]
        board = await viewer.client.get("/pipeline?owner=member", headers=HTML)
        assert mine in board.text and theirs not in board.text
        empty = await viewer.client.get(f"/pipeline?partner={'0' * 8}-0000-0000-0000-{'0' * 12}", headers=HTML)
        assert "No deals match these filters" in empty.text

    async def test_viewers_get_the_board_without_controls(self, gateway: Gateway):
        await _deal(gateway)
        viewer = gateway.people[Role.viewer]
        board = await viewer.client.get("/pipeline", headers=HTML)
        assert board.status_code == 200
        assert 'class="move"' not in board.text and 'draggable="true"' not in board.text
        assert "/static/board.js" not in board.text
        assert (await viewer.client.get("/opportunities/new", headers=HTML)).status_code == 403

    async def test_an_unknown_deal_is_a_404_page(self, gateway: Gateway):
        viewer = gateway.people[Role.viewer]
        page = await viewer.client.get("/opportunities/00000000-0000-0000-0000-000000000000", headers=HTML)
        assert page.status_code == 404 and "No such deal" in page.text


class TestEveryPageRenders:
    async def test_each_role_gets_each_page_it_may_see(self, gateway: Gateway):
        pages = ["/", "/pipeline", "/pipeline?pipeline=cosell", "/partners", "/team", "/opportunities/new",
                 "/admin", "/admin/audit", f"/team/{gateway.people[Role.member].id}"]
        for role, person in gateway.people.items():
            for path in pages:
                response = await person.client.get(path, headers=HTML)
                allowed = not ((path.startswith("/admin") and role != Role.admin)
                               or (path == "/opportunities/new" and role == Role.viewer)
                               or (path.startswith("/team/") and role in (Role.viewer,)))
                assert response.status_code == (200 if allowed else 403), (role, path, response.status_code)
                if allowed:
                    assert "<nav" in response.text and 'action="/signout"' in response.text
