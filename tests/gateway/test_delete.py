"""Deleting and restoring deals and partners over HTTP against the real pipeline service (issue 16 item 5):
soft (gone from lists, KPIs, search, CSV until restored), audited, undoable for RESTORE_DAYS days by the
record's owner, a manager or an admin, never by a viewer; a won deal, a partner with deals and a partner
with money on the commission ledger (as the commissions service's events told the pipeline) are refused
with a 409 naming why; hostile ids and repeated calls answer cleanly."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from contracts import commissions as cm
from gateway.auth import Role
from gateway.models import AuditEntry
from runtime import bus
from runtime.embedded import EmbeddedNats
from runtime.testing import eventually, unique
from tests.support.bus import publish
from tests.support.gateway import Gateway, Person

HTML = {"accept": "text/html"}


async def _api(person: Person, method: str, path: str, **kw):
    return await person.client.request(method, path, headers={"x-csrf-token": person.csrf}, **kw)


async def _deal(person: Person, **kw) -> dict:
    r = await _api(person, "POST", "/api/opportunities", json={
        "name": unique("Delete me "), "customer": "Initech", "amount": "7000", "owner": person.email, **kw})
    assert r.status_code == 201, r.text
    return r.json()


async def _partner(person: Person, **kw) -> dict:
    r = await _api(person, "POST", "/api/partners", json={"name": unique("Gone Partner "), "type": "isv", **kw})
    assert r.status_code == 201, r.text
    return r.json()


async def _open_deals(person: Person) -> int:
    k = (await person.client.get("/api/kpis/pipeline", params={"owner": person.id})).json()
    return sum(f["deals"] for f in k["pipeline_by_stage"])


class TestDeals:
    async def test_delete_hides_everywhere_and_restore_brings_it_back(self, gateway: Gateway):
        member = gateway.people[Role.member]
        before = await _open_deals(member)
        deal = await _deal(member)
        await eventually(lambda: _counts(member, before + 1), "the new deal in the member's KPIs")

        deleted = await _api(member, "DELETE", f"/api/opportunities/{deal['id']}")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["deleted_at"] is not None
        await eventually(lambda: _counts(member, before), "the deleted deal gone from the KPIs")
        listed = (await member.client.get("/api/opportunities", params={"q": deal["name"]})).json()
        assert listed["total"] == 0
        gone = (await member.client.get("/api/opportunities", params={"q": deal["name"], "deleted": "true"})).json()
        assert [o["id"] for o in gone["items"]] == [deal["id"]]
        csv = (await member.client.get("/api/opportunities/export.csv")).text
        assert deal["name"] not in csv
        search = await member.client.get("/search", params={"q": deal["name"].split()[-1]}, headers=HTML)
        assert deal["name"] not in search.text
        # Deleted twice: nothing changes, still 200. Edits and moves wait for a restore.
        again = await _api(member, "DELETE", f"/api/opportunities/{deal['id']}")
        assert again.status_code == 200 and again.json()["version"] == deleted.json()["version"]
        edit = await _api(member, "PATCH", f"/api/opportunities/{deal['id']}", json={"amount": "1"})
        assert edit.status_code == 409 and "restore it first" in edit.text
        # A CSV naming the deleted deal's id does not bring it back or change it behind the user's back.
        csv = f"id,name,customer,amount\n{deal['id']},{deal['name']},Initech,1\n"
        imported = await member.client.post("/api/opportunities/import", content=csv.encode(), headers={
            "content-type": "text/csv", "x-csrf-token": member.csrf})
        assert imported.status_code == 422 and "restore it first" in imported.text

        restored = await _api(member, "POST", f"/api/opportunities/{deal['id']}/restore")
        assert restored.status_code == 200 and restored.json()["deleted_at"] is None
        await eventually(lambda: _counts(member, before + 1), "the restored deal back in the KPIs")
        assert (await member.client.get("/api/opportunities", params={"q": deal["name"]})).json()["total"] == 1
        async with gateway.app.state.running.sessions() as session:
            actions = set(await session.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == deal["id"])))
        assert {"opportunity.deleted", "opportunity.restored"} <= actions

    async def test_a_won_deal_is_refused_with_the_reason(self, gateway: Gateway):
        member = gateway.people[Role.member]
        deal = await _deal(member)
        moved = await _api(member, "POST", f"/api/opportunities/{deal['id']}/stage", json={"stage": "won"})
        assert moved.status_code == 200, moved.text
        refused = await _api(member, "DELETE", f"/api/opportunities/{deal['id']}")
        assert refused.status_code == 409
        assert "won" in refused.text and "mark it lost" in refused.text

    async def test_who_may_delete_and_restore(self, gateway: Gateway):
        member, viewer, manager = (gateway.people[r] for r in (Role.member, Role.viewer, Role.manager))
        theirs = await _deal(manager)  # owned by the manager: a member may not touch it
        assert (await _api(viewer, "DELETE", f"/api/opportunities/{theirs['id']}")).status_code == 403
        refused = await _api(member, "DELETE", f"/api/opportunities/{theirs['id']}")
        assert refused.status_code == 403 and "owner" in refused.text
        assert (await _api(manager, "DELETE", f"/api/opportunities/{theirs['id']}")).status_code == 200
        assert (await _api(viewer, "POST", f"/api/opportunities/{theirs['id']}/restore")).status_code == 403
        assert (await _api(member, "POST", f"/api/opportunities/{theirs['id']}/restore")).status_code == 403
        # Admins restore anyone's.
        admin = gateway.people[Role.admin]
        assert (await _api(admin, "POST", f"/api/opportunities/{theirs['id']}/restore")).status_code == 200

    @pytest.mark.parametrize("bad", ["not-a-uuid", "1' OR '1'='1", "%00", "x" * 5000])
    async def test_hostile_ids_are_422(self, gateway: Gateway, bad):
        member = gateway.people[Role.member]
        for method, path in (("DELETE", f"/api/opportunities/{bad}"), ("POST", f"/api/opportunities/{bad}/restore"),
                             ("DELETE", f"/api/partners/{bad}"), ("POST", f"/api/partners/{bad}/restore")):
            r = await _api(member, method, path)
            assert r.status_code in (404, 422), (path, r.status_code)

    async def test_unknown_ids_are_404(self, gateway: Gateway):
        member = gateway.people[Role.member]
        missing = uuid.uuid4()
        for method, path in (("DELETE", f"/api/opportunities/{missing}"),
                             ("POST", f"/api/opportunities/{missing}/restore"),
                             ("DELETE", f"/api/partners/{missing}"), ("POST", f"/api/partners/{missing}/restore")):
            assert (await _api(member, method, path)).status_code == 404, path


async def _counts(person: Person, expected: int) -> bool:
    return await _open_deals(person) == expected


class TestPartners:
    async def test_delete_is_refused_while_deals_are_not_deleted_then_allowed(self, gateway: Gateway):
        member = gateway.people[Role.member]
        p = await _partner(member)
        deal = await _deal(member, partner_id=p["id"])
        refused = await _api(member, "DELETE", f"/api/partners/{p['id']}")
        assert refused.status_code == 409 and "1 deal not deleted" in refused.text
        assert (await _api(member, "DELETE", f"/api/opportunities/{deal['id']}")).status_code == 200
        deleted = await _api(member, "DELETE", f"/api/partners/{p['id']}")
        assert deleted.status_code == 200 and deleted.json()["deleted_at"] is not None
        assert (await member.client.get("/api/partners", params={"q": p["name"]})).json()["total"] == 0
        listed = (await member.client.get("/api/partners", params={"q": p["name"], "state": "deleted"})).json()
        assert [x["id"] for x in listed["items"]] == [p["id"]]
        # The deal cannot come back without its partner; a new deal cannot name a deleted partner.
        back = await _api(member, "POST", f"/api/opportunities/{deal['id']}/restore")
        assert back.status_code == 409 and "restore the partner first" in back.text
        r = await _api(member, "POST", "/api/opportunities", json={"name": "x", "customer": "y", "amount": "1",
                                                                   "partner_id": p["id"]})
        assert r.status_code == 422
        assert (await _api(member, "POST", f"/api/partners/{p['id']}/restore")).status_code == 200
        assert (await _api(member, "POST", f"/api/opportunities/{deal['id']}/restore")).status_code == 200

    async def test_money_on_the_ledger_refuses_delete(self, gateway: Gateway, private_bus: EmbeddedNats):
        member = gateway.people[Role.member]
        p = await _partner(member)
        nc = await bus.connect(private_bus.url, name="test-commissions")
        try:
            posted = cm.CommissionEntriesPostedV2(
                totals=[], agreement_ids=[uuid.uuid4()], partner_ids=[uuid.UUID(p["id"])], entries=1,
                first_entry_id=1, last_entry_id=1)
            await publish(nc, posted)
            await publish(nc, posted)  # a duplicate changes nothing
        finally:
            await nc.close()

        async def refused() -> bool:
            r = await _api(member, "DELETE", f"/api/partners/{p['id']}")
            assert r.status_code in (200, 409), r.text
            if r.status_code == 200:  # the event not applied yet: undo and try again
                await _api(member, "POST", f"/api/partners/{p['id']}/restore")
                return False
            assert "commission ledger" in r.text and "archive it instead" in r.text
            return True

        await eventually(refused, "the pipeline to learn of the partner's ledger entries")
        # Archiving stays possible: the money and its history are kept.
        archived = await _api(member, "POST", f"/api/partners/{p['id']}/archive")
        assert archived.status_code == 200 and archived.json()["archived"] is True
        assert (await _api(member, "POST", f"/api/partners/{p['id']}/restore")).json()["archived"] is False

    async def test_viewers_cannot_and_a_member_only_their_own(self, gateway: Gateway):
        member, viewer, manager = (gateway.people[r] for r in (Role.member, Role.viewer, Role.manager))
        p = await _partner(manager, owner=manager.email)
        assert (await _api(viewer, "DELETE", f"/api/partners/{p['id']}")).status_code == 403
        assert (await _api(member, "DELETE", f"/api/partners/{p['id']}")).status_code == 403
        assert (await _api(member, "POST", f"/api/partners/{p['id']}/archive")).status_code == 403
        assert (await _api(manager, "DELETE", f"/api/partners/{p['id']}")).status_code == 200
        assert (await _api(viewer, "POST", f"/api/partners/{p['id']}/restore")).status_code == 403
        assert (await _api(manager, "POST", f"/api/partners/{p['id']}/restore")).status_code == 200
