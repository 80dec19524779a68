"""The pages over HTTP against the real pipeline service: forms that answer with errors beside the
fields, the board and moving deals on it (audited), the opportunity and partner pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from contracts.quarters import Quarter
from gateway.auth import Role
from runtime.testing import eventually, unique
from tests.support.gateway import Gateway

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
        deal_id = await _deal(gateway, name=name, partner_id=partner["id"], owner="member@gateway.test")
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
        await _deal(gateway, name=mine, owner="member@gateway.test")
        await _deal(gateway, name=theirs, owner="manager@gateway.test")
        viewer = gateway.people[Role.viewer]
        board = await viewer.client.get(f"/pipeline?owner={gateway.people[Role.member].id}", headers=HTML)
        assert mine in board.text and theirs not in board.text
        empty = await viewer.client.get(f"/pipeline?partner={'0' * 8}-0000-0000-0000-{'0' * 12}", headers=HTML)
        assert "No deals match these filters" in empty.text

    async def test_the_partner_list_sorts_by_its_column_headers(self, gateway: Gateway):
        member = gateway.people[Role.member]
        for score in ("2", "9", "5"):
            r = await member.client.post("/api/partners", json={
                "name": unique(f"Sorted {score} "), "type": "isv",
                "scorecard": {"strategic_fit": score, "revenue_potential": score, "feasibility": score, "risk": score}},
                headers={"x-csrf-token": member.csrf})
            assert r.status_code == 201, r.text
        viewer = gateway.people[Role.viewer]
        page = await viewer.client.get("/partners", params={"sort": "-score"}, headers=HTML)
        assert 'aria-sort="descending"' in page.text and 'data-testid="partner-sort-score"' in page.text
        scores = [float(x) for x in re.findall(r'<td class="num">(\d+\.\d)</td>', page.text)]
        assert scores and scores == sorted(scores, reverse=True)
        assert "sort=score" in page.text  # the header's link turns it round
        odd = await viewer.client.get("/partners", params={"sort": "'; drop"}, headers=HTML)
        assert odd.status_code == 200 and 'aria-sort="ascending"' in odd.text  # by name, as by default

    async def test_the_board_tabs_name_the_pipelines_not_one_hyperscaler(self, gateway: Gateway):
        """GCP deals are co-sell too: the co-sell pipeline's tab says "Co-sell", not "AWS ACE lifecycle"."""
        board = await gateway.people[Role.viewer].client.get("/pipeline", headers=HTML)
        tabs = board.text[board.text.index('aria-label="Pipelines"'):]
        tabs = tabs[:tabs.index("</nav>")]
        assert {"Co-sell", "ISV resale"} <= set(re.findall(r">([^<>]+)</a>", tabs))
        assert "AWS" not in tabs and "ACE" not in tabs

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


class TestSmallerThings:
    async def test_deal_form_offers_stages_and_only_people_who_can_own(self, gateway: Gateway):
        member = gateway.people[Role.member]
        form = (await member.client.get("/opportunities/new", headers=HTML)).text
        assert '<select id="f-stage" name="stage"' in form and '<option value="technical_validation">Technical ' \
            'Validation</option>' in form
        owners = form.split('id="f-owner"')[1].split("</select>")[0]
        assert gateway.people[Role.member].id in owners and gateway.people[Role.viewer].id not in owners
        assert '<a href="/import"' in form, "Import is in the navigation of a member"
        viewer_home = (await gateway.people[Role.viewer].client.get("/", headers=HTML)).text
        assert '<a href="/import"' not in viewer_home, "a viewer cannot import: no link"

    async def test_an_open_deal_past_its_close_date_is_flagged_on_the_board(self, gateway: Gateway):
        name = unique("Late ")
        past = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()
        await _deal(gateway, name=name, expected_close_date=past)
        board = (await gateway.people[Role.viewer].client.get("/pipeline", headers=HTML)).text
        card = board.split(f'data-name="{name}"')[1].split("</article>")[0]
        assert 'data-testid="overdue"' in card and "overdue: was to close" in card


class TestBoardTotals:
    async def test_a_column_total_converts_currencies_as_the_dashboard_does(self, gateway: Gateway):
        admin = gateway.people[Role.admin]
        response = await admin.client.patch("/api/pipeline/settings", json={"fx_rates": {"EUR": "1.10"}},
                                            headers={"x-csrf-token": admin.csrf})
        assert response.status_code == 200, response.text
        partner = await _partner(gateway)
        await _deal(gateway, amount="247000", partner_id=partner["id"])
        await _deal(gateway, amount="46000", currency="EUR", partner_id=partner["id"])
        board = (await gateway.people[Role.viewer].client.get(f"/pipeline?partner={partner['id']}",
                                                              headers=HTML)).text
        total = re.search(r'data-testid="total-lead" title="([^"]*)">([^<]*)<', board)
        assert total, board.split('data-testid="column-lead"')[1][:600]
        assert total[2] == "$298K", "247,000 + 46,000 x 1.10 = 297,600, in dollars like the dashboard"
        assert "$247,000 + €46,000" in total[1]
        assert "€46K" not in board.split('data-testid="column-lead"')[1].split("</h2>")[0]


class TestErrorPages:
    async def test_a_person_gets_pages_and_a_program_gets_json(self, gateway: Gateway):
        viewer = gateway.people[Role.viewer]
        unknown = await viewer.client.get("/no-such-page", headers=HTML)
        assert unknown.status_code == 404 and 'data-testid="error-page"' in unknown.text
        assert "<nav" in unknown.text, "the page keeps the navigation of the signed-in person"
        for path in ("/partners/not-a-uuid", "/opportunities/not-a-uuid", "/partners/" + "0" * 8 + "-0000-0000-0000-"
                     + "0" * 12):
            wrong = await viewer.client.get(path, headers=HTML)
            assert wrong.status_code == 404 and "No such " in wrong.text, (path, wrong.text[:300])
        refused = await viewer.client.get("/admin", headers=HTML)
        assert refused.status_code == 403 and "Not allowed" in refused.text
        bad_query = await viewer.client.get("/partners?page=0", headers=HTML)
        assert bad_query.status_code == 422 and 'data-testid="error-page"' in bad_query.text
        assert "page" in bad_query.text
        api = await viewer.client.get("/api/partners/not-a-uuid", headers=HTML)
        assert api.status_code == 422 and api.json()["detail"][0]["loc"] == ["path", "partner_id"]
        api_missing = await viewer.client.get("/api/no-such-thing", headers=HTML)
        assert api_missing.status_code == 404 and api_missing.json() == {"detail": "Not Found"}
        program = await viewer.client.get("/no-such-page", headers={"accept": "application/json"})
        assert program.status_code == 404 and program.json() == {"detail": "Not Found"}

    async def test_a_bug_is_a_page_for_a_person_and_json_for_a_program(self, gateway: Gateway):
        import httpx

        async def broken() -> None:
            raise RuntimeError("a bug in a route")

        gateway.app.add_api_route("/test-only/broken", broken, include_in_schema=False)
        transport = httpx.ASGITransport(app=gateway.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            page = await client.get("/test-only/broken", headers=HTML)
            assert page.status_code == 500 and "Something went wrong on our side" in page.text
            assert "RuntimeError" not in page.text and "a bug in a route" not in page.text
            program = await client.get("/test-only/broken")
            assert program.status_code == 500 and program.json() == {"detail": "Internal Server Error"}


def _money(html: str, testid: str) -> Decimal:
    found = re.search(rf'data-testid="{testid}">([^<]+)<', html)
    assert found, f"no {testid} on the page"
    return Decimal(re.sub(r"[^0-9.\-]", "", found[1]))


class TestFiguresMatchTheService:
    async def test_dashboard_and_member_figures_equal_what_the_pipeline_service_holds(self, gateway: Gateway):
        member = gateway.people[Role.member]
        today = datetime.now(UTC).date()
        quarter = Quarter.fiscal_of(today, 1).label
        _, after = Quarter.fiscal_of(today, 1).range()
        close = (after - timedelta(days=1)).isoformat()
        for amount, stage in (("40000", "negotiation"), ("24000", "proposal"), ("36000", "won"), ("8000", "lost"),
                              ("12000", None)):
            deal_id = await _deal(gateway, amount=amount, owner="member@gateway.test", expected_close_date=close)
            if stage:
                response = await member.client.post(f"/api/opportunities/{deal_id}/stage", json={"stage": stage},
                                                    headers={"x-csrf-token": member.csrf})
                assert response.status_code == 200, response.text

        async def service(**params) -> list[dict]:
            response = await member.client.get("/api/opportunities", params={"limit": 500, **params})
            assert response.json()["total"] <= 500
            return response.json()["items"]

        # The service's own records, summed here by hand.
        won = await service(pipeline="resale", outcome="won", quarter=quarter)
        closed_won = sum(Decimal(o["amount"]) for o in won)
        open_deals = await service(pipeline="resale", outcome="open")
        weighted = sum(Decimal(o["amount"]) * o["probability"] / 100 for o in open_deals
                       if o["expected_close_date"] and o["expected_close_date"] < after.isoformat())

        async def caught_up():
            k = (await member.client.get("/api/kpis/pipeline")).json()
            return Decimal(k["forecast"]["closed_won"]) == closed_won and \
                Decimal(k["forecast"]["weighted_pipeline"]) == weighted
        await eventually(caught_up, "the read model to catch up with the service")

        page = (await member.client.get("/", headers=HTML)).text
        assert _money(page, "closed-won") == closed_won
        assert _money(page, "weighted-open") == weighted.quantize(Decimal(1))
        assert _money(page, "projected") == (closed_won + weighted).quantize(Decimal(1))
        signal = "at-risk" if closed_won + weighted < Decimal(250000) else "on-track"
        assert f'data-testid="{signal}"' in page

        mine = await service(owner="member@gateway.test")
        mine_open = [o for o in mine if o["outcome"] == "open"]
        mine_won = [o for o in mine if o["outcome"] == "won" and o["closed_at"] and
                    Quarter.fiscal_of(datetime.fromisoformat(o["closed_at"]).date(), 1).label == quarter]
        kpis = (await member.client.get(f"/team/{member.id}", headers=HTML)).text
        assert int(re.search(r'data-testid="deals-owned">(\d+)<', kpis)[1]) == len(mine_open)
        assert _money(kpis, "open-amount") == sum(Decimal(o["amount"]) for o in mine_open)
        assert _money(kpis, "closed-amount") == sum(Decimal(o["amount"]) for o in mine_won)
        advanced = [o for o in mine if o["outcome"] != "lost" and
                    datetime.fromisoformat(o["stage_entered_at"]) > datetime.fromisoformat(o["created_at"])]
        assert int(re.search(r'data-testid="advanced">(\d+)<', kpis)[1]) == len(advanced) >= 3

        team = (await gateway.people[Role.manager].client.get("/team", headers=HTML)).text
        assert 'data-testid="member-member"' in team and 'data-testid="member-viewer"' in team
        own_only = (await member.client.get("/team", headers=HTML)).text
        assert 'data-testid="member-member"' in own_only and 'data-testid="member-manager"' not in own_only

    async def test_the_team_page_reconciles_with_the_dashboard_pipeline_by_pipeline(self, gateway: Gateway):
        member = gateway.people[Role.member]
        resale = await _deal(gateway, amount="7000", owner="member@gateway.test")
        cosell = await _deal(gateway, amount="9000", owner="member@gateway.test", deal_model="cosell")
        unowned = await _deal(gateway, amount="5000")
        for deal_id, stage in ((resale, "won"), (cosell, "launched"), (unowned, "won")):
            response = await member.client.post(f"/api/opportunities/{deal_id}/stage", json={"stage": stage},
                                                headers={"x-csrf-token": member.csrf})
            assert response.status_code == 200, response.text
        manager = gateway.people[Role.manager].client

        mine = {resale, cosell, unowned}

        async def all_three_won() -> bool:
            listed = (await manager.get("/api/opportunities", params={"outcome": "won", "limit": 500})).json()
            if not mine <= {o["id"] for o in listed["items"]}:
                return False
            k = (await manager.get("/api/kpis/pipeline")).json()
            return {o["pipeline"] for o in k["outcomes_by_pipeline"] if o["won"]} >= {"resale", "cosell"}
        await eventually(all_three_won, "the three wins in the service and both pipelines in the KPIs")

        async def settled() -> bool:
            # The read models follow events a moment later: the dashboard and the team page read the same
            # aggregates, so once no event is in flight they agree.
            first = (await manager.get("/", headers=HTML)).text
            team_page = (await manager.get("/team", headers=HTML)).text
            again = (await manager.get("/", headers=HTML)).text
            departments = re.findall(r'data-testid="department">([^<]+)<', team_page)
            # The unowned win must have reached the read model too: the service lists it as won before the
            # gateway's copy has taken its event, and without it both pages agree on the figures before it.
            nobody = re.search(r'<th scope="row">Resale</th><td class="num">[^<]+</td><td class="num">([^<]+)<',
                               team_page)
            return bool(departments) and _money(first, "closed-won-all") == _money(again, "closed-won-all") == \
                Decimal(re.sub(r"[^0-9.\-]", "", departments[-1])) and nobody is not None and \
                Decimal(re.sub(r"[^0-9.\-]", "", nobody.group(1))) >= Decimal(5000)
        await eventually(settled, "the dashboard and the team page to read the same settled figures")

        dashboard = (await manager.get("/", headers=HTML)).text
        assert "the <strong>Resale</strong> pipeline" in dashboard.split('data-testid="kpi-scope"')[1][:200]
        by_pipeline = {key: _money(dashboard, f"closed-won-{key}") for key in ("resale", "cosell", "all")}
        assert by_pipeline["resale"] == _money(dashboard, "closed-won"), "the strip's closed won is the resale row"
        assert by_pipeline["resale"] + by_pipeline["cosell"] == by_pipeline["all"]
        # The strip's win rate counts the same pipeline as its closed won.
        strip = dashboard.split('data-testid="win-rate"')[1][:400]
        resale_row = dashboard.split('data-testid="pipeline-resale"')[1][:600]
        won, lost = re.search(r"(\d+) won · (\d+) lost", strip).groups()
        assert f'<td class="num">{won} · {lost}</td>' in resale_row

        team = (await manager.get("/team", headers=HTML)).text.split('data-testid="team-totals"')[1]
        rows = re.findall(r'<th scope="row">([^<]+)</th><td class="num">([^<]+)</td><td class="num">([^<]+)</td>'
                          r'<td class="num" data-testid="department">([^<]+)</td>', team)
        figures = {label: [Decimal(re.sub(r"[^0-9.\-]", "", x)) for x in rest] for label, *rest in rows}
        assert set(figures) == {"Resale", "Co-sell", "All pipelines"}
        for label, key in (("Resale", "resale"), ("Co-sell", "cosell"), ("All pipelines", "all")):
            team_total, nobody, department = figures[label]
            assert department == by_pipeline[key] and team_total + nobody == department, label
        assert figures["Resale"][1] >= Decimal(5000), "the unowned won deal is shown as the difference"


class TestPartnerEditing:
    async def test_scorecard_tier_and_owner_are_edited_with_errors_beside_fields(self, gateway: Gateway):
        partner = await _partner(gateway)
        member = gateway.people[Role.member]
        page = await member.client.get(f"/partners/{partner['id']}", headers=HTML)
        version = re.search(r'name="expected_version" value="(\d+)"', page.text)[1]
        form = {"name": unique("Scored "), "type": "isv", "status": "active", "owner": "member@gateway.test",
                "tier": "gold", "expected_version": version, "csrf_token": member.csrf}
        bad = await member.client.post(f"/partners/{partner['id']}", headers=HTML,
                                       data={**form, "strategic_fit": "11", "revenue_potential": "8"})
        assert bad.status_code == 422
        assert 'data-field="strategic_fit"' in bad.text and 'data-field="feasibility"' in bad.text
        assert 'value="11"' in bad.text, "what was typed stays in the form"
        good = await member.client.post(f"/partners/{partner['id']}", headers=HTML, data={
            **form, "strategic_fit": "9", "revenue_potential": "8", "feasibility": "7", "risk": "6"})
        assert good.status_code == 303, good.text
        shown = (await member.client.get(f"/partners/{partner['id']}", headers=HTML)).text
        # 9 x .30 + 8 x .25 + 7 x .25 + 6 x .20 = 7.65
        assert 'data-testid="score">7.65/10' in shown and "set by hand" in shown and form["name"] in shown
        stale = await member.client.post(f"/partners/{partner['id']}", headers=HTML, data=form)
        assert stale.status_code == 409 and "Someone changed this partner" in stale.text
        admin = gateway.people[Role.admin]
        entries = (await admin.client.get("/api/audit", params={"entity": "partner"})).json()
        assert any(e["entity_id"] == partner["id"] and e["action"] == "partner.updated" for e in entries)


class TestImport:
    async def test_a_csv_with_a_bad_row_stores_nothing_and_names_the_line_then_imports_when_fixed(self, gateway):
        member = gateway.people[Role.member]
        first, second = unique("Csv one "), unique("Csv two ")
        bad = f"name,type,owner\n{first},isv,member@gateway.test\n{second},spaceship,member@gateway.test\n"
        response = await member.client.post("/import", headers=HTML, data={"kind": "partners",
                                                                            "csrf_token": member.csrf},
                                            files={"file": ("partners.csv", bad.encode(), "text/csv")})
        assert response.status_code == 422
        table = response.text.split('data-testid="row-errors"')[1]
        assert re.search(r'<td class="num">3</td><td>type</td>', table), "line 3, column type"
        listing = (await member.client.get("/partners", headers=HTML)).text
        assert first not in listing, "nothing of a bad file is stored"
        good = bad.replace("spaceship", "msp")
        response = await member.client.post("/import", headers=HTML, data={"kind": "partners",
                                                                            "csrf_token": member.csrf},
                                            files={"file": ("partners.csv", good.encode(), "text/csv")})
        assert response.status_code == 200 and "2 rows read: 2 partners created" in response.text
        listing = (await member.client.get("/partners?type=msp", headers=HTML)).text
        assert second in listing

    async def test_one_bad_row_reads_as_one_row_with_its_every_problem_and_a_typo_named(self, gateway: Gateway):
        member = gateway.people[Role.member]
        local = member.email.split("@")[0]
        bad = ("name,customer,partner,amount,owner\n"
               f"{unique('Deal ')},Acme,No Such Partner {unique('')},ten,{local}x\n")
        response = await member.client.post("/import", headers=HTML, data={"kind": "opportunities",
                                                                            "csrf_token": member.csrf},
                                            files={"file": ("deals.csv", bad.encode(), "text/csv")})
        assert response.status_code == 422
        summary = re.search(r'data-testid="import-summary">([^<]*)', response.text).group(1)
        assert summary.startswith("1 row read; 1 row needs fixing (3 problems)"), summary
        table = response.text.split('data-testid="row-errors"')[1]
        for column in ("partner", "amount", "owner"):
            assert f"<td>{column}</td>" in table, column
        assert f"did you mean {member.email}?" in table

        good = f"name,customer,amount,owner\n{unique('Deal ')},Acme,10,{member.email}\n"
        response = await member.client.post("/import", headers=HTML, data={"kind": "opportunities",
                                                                            "csrf_token": member.csrf},
                                            files={"file": ("deals.csv", good.encode(), "text/csv")})
        assert response.status_code == 200 and "1 row read: 1 deal created, 0 updated." in response.text

    async def test_import_needs_a_member_and_the_csrf_token(self, gateway: Gateway):
        viewer = gateway.people[Role.viewer]
        assert (await viewer.client.get("/import", headers=HTML)).status_code == 403
        member = gateway.people[Role.member]
        response = await member.client.post("/import", headers=HTML, data={"kind": "partners"},
                                            files={"file": ("p.csv", b"name,type\nX,isv\n", "text/csv")})
        assert response.status_code == 403


class TestDealEditing:
    async def test_fields_and_the_ace_deadline_are_edited_with_errors_beside_fields(self, gateway: Gateway):
        deal_id = await _deal(gateway, deal_model="cosell", hyperscaler="aws", owner="member@gateway.test")
        member = gateway.people[Role.member]
        page = (await member.client.get(f"/opportunities/{deal_id}", headers=HTML)).text
        assert 'data-testid="deal-edit"' in page and 'name="review_status"' in page
        version = re.search(r'name="expected_version" value="(\d+)"', page)[1]
        form = {"name": unique("Edited "), "customer": "Globex", "amount": "64000", "currency": "USD",
                "deal_model": "cosell", "hyperscaler": "aws", "owner": "member@gateway.test", "expected_close_date": "",
                "partner_id": "", "ace": "1", "review_status": "Action Required", "action_due_date": "2026-12-01",
                "reviewer_comments": "Add the customer's use case", "next_steps": "Call the PDM",
                "expected_version": version, "csrf_token": member.csrf}
        bad = await member.client.post(f"/opportunities/{deal_id}", headers=HTML,
                                       data={**form, "amount": "-5", "currency": "UDS"})
        assert bad.status_code == 422
        assert 'data-field="amount"' in bad.text and 'data-field="currency"' in bad.text
        good = await member.client.post(f"/opportunities/{deal_id}", headers=HTML, data=form)
        assert good.status_code == 303, good.text
        shown = (await member.client.get(f"/opportunities/{deal_id}", headers=HTML)).text
        assert form["name"] in shown and "$64,000" in shown
        assert "Action Required by 01 Dec 2026" in shown and "Call the PDM" in shown
        stale = await member.client.post(f"/opportunities/{deal_id}", headers=HTML, data=form)
        assert stale.status_code == 409 and "Someone changed this deal" in stale.text
        viewer = (await gateway.people[Role.viewer].client.get(f"/opportunities/{deal_id}", headers=HTML)).text
        assert 'data-testid="deal-edit"' not in viewer and 'data-testid="move-form"' not in viewer


class TestApiDocs:
    async def test_docs_are_public_linked_from_every_page_and_need_no_cdn(self, gateway: Gateway):
        async with gateway.client() as anonymous:
            docs = await anonymous.get("/docs")
            assert docs.status_code == 200
            assert "cdn." not in docs.text and "/static/apidocs/swagger-ui-bundle.js" in docs.text
            asset = await anonymous.get("/static/apidocs/swagger-ui-bundle.js")
            assert asset.status_code == 200 and len(asset.content) > 100_000
            redoc = await anonymous.get("/redoc")
            assert redoc.status_code == 200 and "fonts.googleapis" not in redoc.text
            assert (await anonymous.get("/openapi.json")).json()["info"]["title"] == "PartnerOps API"
            assert "asyncapi" in (await anonymous.get("/asyncapi.json")).json()
        page = (await gateway.people[Role.viewer].client.get("/", headers=HTML)).text
        assert 'href="/docs"' in page and 'href="/asyncapi.json"' in page
