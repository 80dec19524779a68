"""Four eyes on commission money: whoever recorded revenue by hand cannot approve or pay its
commission (a second person does), unless COMMISSIONS_SECOND_APPROVER is off for a team of one; and
the audit log names who recorded, approved and paid, from the verified principal."""

from __future__ import annotations

import uuid
from datetime import date

from contracts import commissions as c
from gateway.auth import Role
from runtime.commands import send
from runtime.errors import CommandFailed
from tests.commissions.helpers import call, partner
from tests.commissions.test_api import API, agreement_body

EMAIL = {role: f"{role.value}@commissions.test" for role in Role}


async def _accrued(gw, recorder: Role) -> list[int]:
    pid = await partner(gw)
    assert (await call(gw, Role.member, "POST", f"{API}/agreements", agreement_body(pid))).status_code == 201
    invoice = {"invoice_id": f"INV-{uuid.uuid4().hex[:8]}", "customer": "Globex", "partner_id": pid,
               "amount": "1000.00", "currency": "USD", "paid_at": "2026-10-05T10:00:00Z"}
    r = await call(gw, recorder, "POST", f"{API}/revenue/invoices", invoice)
    assert r.status_code == 201, r.text
    return [e["id"] for e in r.json()["entries"]]


async def _audit(gw) -> list[dict]:
    r = await call(gw, Role.admin, "GET", "/api/audit?limit=200")
    assert r.status_code == 200
    return r.json()


class TestSecondApprover:
    async def test_the_recorder_cannot_approve_or_pay_and_a_second_manager_can(self, gw):
        ids = await _accrued(gw, Role.manager)
        own = await call(gw, Role.manager, "POST", f"{API}/ledger/approve", {"entry_ids": ids})
        assert own.status_code == 403, own.text
        assert "revenue you recorded" in own.text and own.json()["detail"][0]["loc"][-1] == "entry_ids"
        approved = await call(gw, Role.admin, "POST", f"{API}/ledger/approve", {"entry_ids": ids})
        assert approved.status_code == 200 and approved.json()["approved"] == ids
        pay = {"entry_ids": ids, "paid_on": "2026-10-31", "reference": f"wire {uuid.uuid4().hex[:6]}"}
        assert (await call(gw, Role.manager, "POST", f"{API}/ledger/pay", pay)).status_code == 403
        paid = await call(gw, Role.admin, "POST", f"{API}/ledger/pay", pay)
        assert paid.status_code == 201, paid.text

        audit = await _audit(gw)
        recorded = [a for a in audit if a["action"] == "revenue.invoice_paid_recorded" and a["after"]["entries"] == ids]
        assert [a["actor"] for a in recorded] == [EMAIL[Role.manager]]
        assert any(a["action"] == "ledger.approved" and a["after"]["entries"] == ids and a["actor"] == EMAIL[Role.admin]
                   for a in audit)
        assert any(a["action"] == "ledger.paid" and a["entity_id"] == paid.json()["id"]
                   and a["actor"] == EMAIL[Role.admin] for a in audit)

    async def test_revenue_recorded_by_someone_else_is_approved_as_before(self, gw):
        ids = await _accrued(gw, Role.member)
        assert (await call(gw, Role.manager, "POST", f"{API}/ledger/approve", {"entry_ids": ids})).status_code == 200

    async def test_a_team_of_one_turns_the_rule_off(self, gw):
        ids = await _accrued(gw, Role.manager)
        gw.settings.commissions_second_approver = False
        try:
            r = await call(gw, Role.manager, "POST", f"{API}/ledger/approve", {"entry_ids": ids})
            assert r.status_code == 200 and r.json()["approved"] == ids
            pay = {"entry_ids": ids, "paid_on": "2026-10-31", "reference": "solo"}
            assert (await call(gw, Role.manager, "POST", f"{API}/ledger/pay", pay)).status_code == 201
        finally:
            gw.settings.commissions_second_approver = True

    async def test_the_service_itself_refuses_a_command_that_names_the_recorder(self, gw):
        # Not only the gateway: a command on the bus (from the CLI, say) gets the same answer.
        ids = await _accrued(gw, Role.manager)
        bus_client = gw.app.state.running.nc
        try:
            await send(bus_client, c.ApproveEntries(entry_ids=ids, actor=EMAIL[Role.manager]))
            raise AssertionError("approved")
        except CommandFailed as exc:
            assert exc.error.kind.value == "forbidden" and exc.error.field == "entry_ids"
        try:
            await send(bus_client, c.PayEntries(entry_ids=ids, paid_on=date(2026, 10, 31), reference="x",
                                                actor=EMAIL[Role.manager]))
            raise AssertionError("paid")
        except CommandFailed as exc:
            assert exc.error.kind.value in ("forbidden", "conflict")
        result = await send(bus_client, c.ApproveEntries(entry_ids=ids, actor=EMAIL[Role.admin]))
        assert result.approved == ids
