"""The relationships REST API and pages through the real gateway: roles and scopes, owners by email,
422 naming the field, capacities (yours; others' for managers), settings (admins), imports, pages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from gateway.auth import Role
from tests.contacts.conftest import call, partner_via_api


async def test_viewers_read_members_write(gw, rel_service):
    org = await partner_via_api(gw, rel_service)
    denied = await call(gw, Role.viewer, "POST", "/api/contacts", {"partner_id": org, "name": "V"})
    assert denied.status_code == 403
    made = await call(gw, Role.member, "POST", "/api/contacts", {"partner_id": org, "name": "Maya",
                                                                 "owner": "member@contacts.test", "role": "psm"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["owner"], body["role"], body["strength"]["band"]) == (gw.people[Role.member].id, "PSM", "none")
    assert (await call(gw, Role.viewer, "GET", f"/api/contacts/{body['id']}")).status_code == 200
    unauthenticated = await gw.people[Role.viewer].client.get("/api/contacts", headers={"cookie": ""})
    assert unauthenticated.status_code in (200, 401)  # the client keeps its cookie jar; checked below
    async with __import__("httpx").AsyncClient(transport=__import__("httpx").ASGITransport(app=gw.app),
                                               base_url="http://gateway") as anonymous:
        assert (await anonymous.get("/api/contacts")).status_code == 401


async def test_bad_input_is_a_422_naming_the_field_and_nothing_is_stored(gw, rel_service):
    org = await partner_via_api(gw, rel_service)
    for body, field in (({"partner_id": org, "name": "X", "owner": "stranger@nowhere.example"}, "owner"),
                        ({"partner_id": org, "name": "X", "role": "Wizard"}, "role"),
                        ({"partner_id": str(uuid.uuid4()), "name": "X"}, "partner_id"),
                        ({"partner_id": org, "name": "A\u0000B"}, "name"),
                        ({"partner_id": org, "name": "X", "surprise": 1}, "surprise")):
        r = await call(gw, Role.member, "POST", "/api/contacts", body)
        assert r.status_code == 422, (body, r.text)
        assert field in r.text
    r = await call(gw, Role.member, "POST", "/api/interactions", {"kind": "meeting", "contact_ids": [],
                                                                  "occurred_at": "2026-11-30T10:00:00Z"})
    assert r.status_code == 422 and "contact_ids" in r.text
    r = await call(gw, Role.member, "POST", "/api/interactions", {"kind": "meeting", "contact_ids": [str(uuid.uuid4())],
                                                                  "occurred_at": 1764500000})
    assert r.status_code == 422 and "occurred_at" in r.text
    listing = await call(gw, Role.viewer, "GET", f"/api/contacts?partner_id={org}")
    assert listing.json()["total"] == 0


async def test_logging_a_touch_and_the_contact_page(gw, rel_service):
    org = await partner_via_api(gw, rel_service)
    x = (await call(gw, Role.member, "POST", "/api/contacts", {"partner_id": org, "name": "Kenji"})).json()
    r = await call(gw, Role.member, "POST", "/api/interactions", {"kind": "call", "contact_ids": [x["id"]],
                                                                  "note": "intro"})
    assert r.status_code == 201, r.text
    page = await gw.people[Role.viewer].client.get(f"/contacts/{x['id']}")
    assert page.status_code == 200 and "Kenji" in page.text and "intro" in page.text
    assert 'data-testid="chart-strength"' in page.text
    removed = await call(gw, Role.member, "DELETE", f"/api/interactions/{r.json()['id']}")
    assert removed.status_code == 200
    assert (await call(gw, Role.member, "DELETE", f"/api/interactions/{r.json()['id']}")).status_code == 404


async def test_capacity_is_yours_unless_you_are_a_manager(gw, rel_service):
    me = await call(gw, Role.member, "PUT", "/api/relationships/capacity", {"hours_per_week": "6"})
    assert me.status_code == 200 and me.json()["owner"] == gw.people[Role.member].id
    other = await call(gw, Role.member, "PUT", "/api/relationships/capacity",
                       {"owner": "viewer@contacts.test", "hours_per_week": "6"})
    assert other.status_code == 403
    boss = await call(gw, Role.manager, "PUT", "/api/relationships/capacity",
                      {"owner": "member@contacts.test", "hours_per_week": "3.5"})
    assert boss.status_code == 200 and boss.json()["hours_per_week"] == "3.5"
    for hours in ("-1", "169", "1e9", "abc"):
        r = await call(gw, Role.member, "PUT", "/api/relationships/capacity", {"hours_per_week": hours})
        assert r.status_code == 422, hours


async def test_settings_are_for_admins_and_audited(gw, rel_service):
    current = (await call(gw, Role.viewer, "GET", "/api/relationships/settings")).json()
    changed = {**current, "strength": {**current["strength"], "half_life_days": "45"}}
    changed.pop("version")
    refused = await call(gw, Role.manager, "PUT", "/api/relationships/settings", {"settings": changed})
    assert refused.status_code == 403
    r = await call(gw, Role.admin, "PUT", "/api/relationships/settings", {"settings": changed})
    assert r.status_code == 200 and r.json()["strength"]["half_life_days"] == "45"
    stale = await call(gw, Role.admin, "PUT", "/api/relationships/settings",
                       {"settings": changed, "expected_version": 0})
    assert stale.status_code == 409
    changed["strength"]["half_life_days"] = "30"
    assert (await call(gw, Role.admin, "PUT", "/api/relationships/settings", {"settings": changed})).status_code == 200
    audit = await call(gw, Role.admin, "GET", "/api/audit?action=relationship_settings.updated")
    assert audit.status_code == 200 and "relationship_settings.updated" in audit.text


async def test_csv_import_all_or_nothing_with_owners_by_email(gw, rel_service):
    name = f"Csv {uuid.uuid4().hex[:6]}"
    org = await partner_via_api(gw, rel_service, name)
    good = f"Name,Email,Company,Contact owner\nZoe,zoe@{name[4:]}.example,{name},member@contacts.test\n"
    r = await call(gw, Role.member, "POST", "/api/contacts/import", good, headers={"content-type": "text/csv"})
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    bad = f"Name,Email,Company,Contact owner\nA,a@x.example,{name},nobody@x.example\nB,b@x.example,Nope Inc,\n"
    r = await call(gw, Role.member, "POST", "/api/contacts/import", bad, headers={"content-type": "text/csv"})
    assert r.status_code == 422
    assert [d["loc"][2] for d in r.json()["detail"]] == [2]  # owners are checked first, by the gateway
    bad = f"Name,Email,Company\nA,a@x.example,{name}\nB,b@x.example,Nope Inc\n"
    r = await call(gw, Role.member, "POST", "/api/contacts/import", bad, headers={"content-type": "text/csv"})
    assert r.status_code == 422 and [d["loc"][2:] for d in r.json()["detail"]] == [[3, "organisation"]]
    listing = (await call(gw, Role.viewer, "GET", f"/api/contacts?partner_id={org}")).json()
    assert [x["name"] for x in listing["items"]] == ["Zoe"]
    big = "Name\n" + "x\n" * 500_000
    assert (await call(gw, Role.member, "POST", "/api/contacts/import", big,
                       headers={"content-type": "text/csv"})).status_code == 413
    assert (await call(gw, Role.member, "POST", "/api/contacts/import", b"\xff\xfe",
                       headers={"content-type": "text/csv"})).status_code == 422


async def test_a_formula_safe_cell_imports_as_the_value_it_stands_for(gw, rel_service):
    """A contact named `'=Sum` is exported as `''=Sum` (runtime/csv_cells.py); that cell imports as `'=Sum`
    again, its apostrophe taken off once (it was taken off twice, leaving `=Sum`)."""
    name = f"Csv {uuid.uuid4().hex[:6]}"
    org = await partner_via_api(gw, rel_service, name)
    body = f"Name,Email,Company\n''=Sum,sum@{name[4:]}.example,{name}\n"
    r = await call(gw, Role.member, "POST", "/api/contacts/import", body, headers={"content-type": "text/csv"})
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    listing = (await call(gw, Role.viewer, "GET", f"/api/contacts?partner_id={org}")).json()
    assert [x["name"] for x in listing["items"]] == ["'=Sum"]


async def test_calendar_upload(gw, rel_service):
    org = await partner_via_api(gw, rel_service)
    email = f"ics{uuid.uuid4().hex[:6]}@google.example"
    await call(gw, Role.member, "POST", "/api/contacts", {"partner_id": org, "name": "Cal", "email": email})
    day = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y%m%dT100000Z")
    ics = (f"BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:{uuid.uuid4()}\nDTSTART:{day}\nATTENDEE:mailto:{email}\n"
           "END:VEVENT\nEND:VCALENDAR\n")
    calendar = {"content-type": "text/calendar"}
    r = await call(gw, Role.member, "POST", "/api/interactions/calendar", ics, headers=calendar)
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    r = await call(gw, Role.member, "POST", "/api/interactions/calendar", "nothing here",
                   headers={"content-type": "text/calendar"})
    assert r.status_code == 422


async def test_pages_and_the_dashboard_card(gw, rel_service):
    org = await partner_via_api(gw, rel_service)
    x = (await call(gw, Role.member, "POST", "/api/contacts", {"partner_id": org, "name": "Card Person",
                                                               "crucial": True})).json()
    forty_days_ago = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    await call(gw, Role.member, "POST", "/api/interactions", {"kind": "meeting", "contact_ids": [x["id"]],
                                                              "occurred_at": forty_days_ago})
    viewer = gw.people[Role.viewer].client
    health = (await call(gw, Role.viewer, "GET", "/api/relationships/health")).json()
    assert x["id"] in [c["id"] for c in health["crucial_cooling"]] or len(health["crucial_cooling"]) == 5
    for url, marker in (("/contacts", "Card Person"), ("/relationships", 'data-testid="chart-heatmap"'),
                        ("/relationships?group=owner", "Team members"), ("/attention", "Attention this week"),
                        ("/contacts?q=%00", "Contacts"), ("/contacts?partner_id=nonsense&sort=bogus", "Contacts"),
                        ("/", 'data-testid="crucial-cooling"')):
        page = await viewer.get(url, headers={"accept": "text/html"})
        assert page.status_code == 200, url
        assert marker in page.text, url
    assert (await viewer.get(f"/contacts/{uuid.uuid4()}", headers={"accept": "text/html"})).status_code == 404
    member = gw.people[Role.member].client
    page = await member.get("/", headers={"accept": "text/html"})
    assert 'id="quicklog"' in page.text
    assert 'id="quicklog"' not in (await viewer.get("/", headers={"accept": "text/html"})).text
