"""The contacts area against real NATS and Postgres: contacts, interactions and the stored strength,
value at stake from the pipeline's events (duplicates, out of order), contacts from co-sell deals,
the cooling alert once per crossing, the attention list, the heatmap, health and imports."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from contracts import contacts as c
from contracts import pipeline as p
from runtime.commands import send
from runtime.errors import CommandFailed
from tests.contacts.conftest import contact, log, opportunity, organisation
from tests.support.bus import publish, settled

NOW = datetime.now(UTC)


async def refused(coro, kind: str, field: str | None = None) -> None:
    with pytest.raises(CommandFailed) as info:
        await coro
    assert info.value.error.kind == kind, info.value.error
    if field is not None:
        assert info.value.error.field == field, info.value.error


async def cooling_events(nc, contact_id: uuid.UUID, expect: int, timeout: float = 20) -> list[dict]:
    """The cooling events of one contact on the RELATIONSHIPS stream, once `expect` of them are there
    (the outbox relay publishes after the commit); then a little longer, to see no extra one arrives."""
    js = nc.jetstream()
    sub = await js.pull_subscribe(c.ContactCoolingV1.subject, durable=None, stream="RELATIONSHIPS",
                                  config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(50, timeout=0.5)
            except TimeoutError:
                msgs = []
            for m in msgs:
                body = json.loads(m.data)
                if body["contact_id"] == str(contact_id):
                    found.append(body)
                await m.ack()
            if len(found) >= expect and not msgs:
                break
    finally:
        await sub.unsubscribe()
    return found


class TestContacts:
    async def test_a_contact_needs_a_known_organisation(self, nc):
        await refused(send(nc, c.CreateContact(partner_id=uuid.uuid4(), name="Nobody")), "invalid", "partner_id")

    async def test_one_email_per_organisation(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        await contact(nc, org, email="pdm@amazon.example")
        await refused(contact(nc, org, email="PDM@amazon.example"), "conflict", "email")
        other = await organisation(nc, rel_service)
        assert (await contact(nc, other, email="pdm@amazon.example")).partner_id == other

    async def test_roles_come_from_the_configured_list(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        assert (await contact(nc, org, role="pdm")).role == "PDM"
        await refused(contact(nc, org, role="Wizard"), "invalid", "role")

    async def test_reports_to_cannot_make_a_loop(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        boss = await contact(nc, org)
        report = await contact(nc, org, reports_to=boss.id)
        await refused(send(nc, c.UpdateContact(contact_id=boss.id, set=c.ContactFields(reports_to=report.id))),
                      "invalid", "reports_to")
        await refused(send(nc, c.UpdateContact(contact_id=boss.id, set=c.ContactFields(reports_to=boss.id))),
                      "invalid", "reports_to")

    async def test_a_stale_version_is_refused_and_nothing_changes(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        x = await contact(nc, org, name="Ann")
        await send(nc, c.UpdateContact(contact_id=x.id, expected_version=1, set=c.ContactFields(title="PDM West")))
        await refused(send(nc, c.UpdateContact(contact_id=x.id, expected_version=1, set=c.ContactFields(name="B"))),
                      "conflict", "expected_version")
        detail = await send(nc, c.GetContact(contact_id=x.id))
        assert (detail.contact.name, detail.contact.title, detail.contact.version) == ("Ann", "PDM West", 2)

    async def test_hostile_commands_are_refused_by_the_service_itself(self, nc, rel_service):
        """Sent as raw JSON, as a client that skips our models would: the service validates for itself."""
        org = await organisation(nc, rel_service)

        async def raw(body: object) -> dict:
            reply = await nc.request(c.CreateContact.subject, json.dumps(body).encode(), timeout=10)
            return json.loads(reply.data)

        for name, field in (("A\x00B", "name"), ("x" * 201, "name"), ("line\nbreak", "name")):
            answer = await raw({"partner_id": str(org), "name": name})
            assert (answer["ok"], answer["error"]["kind"], answer["error"]["field"]) == (False, "invalid", field)
        answer = await raw({"partner_id": str(org), "name": "X", "email": "not-an-email"})
        assert answer["error"]["field"] == "email"
        nested: object = "deep"
        for _ in range(200):
            nested = {"a": nested}
        assert (await raw({"partner_id": str(org), "name": nested}))["error"]["kind"] == "invalid"
        assert (await raw({"partner_id": str(org), "name": "X", "actor": "x", "crucial": "perhaps"}))["ok"] is False
        reply = await nc.request(c.CreateContact.subject, b"\xff\xfe not json", timeout=10)
        assert json.loads(reply.data)["error"]["kind"] == "invalid"
        assert (await send(nc, c.ListContacts(partner_id=org))).total == 0

    async def test_search_finds_by_name_email_and_organisation_and_escapes_wildcards(self, nc, rel_service):
        org = await organisation(nc, rel_service, name=f"Searchable {uuid.uuid4().hex[:6]}")
        x = await contact(nc, org, name="Priya_Search%", email=f"p{uuid.uuid4().hex[:6]}@aws.example")
        found = await send(nc, c.ListContacts(q="priya_search%"))
        assert [i.id for i in found.items] == [x.id]
        assert x.id in [i.id for i in (await send(nc, c.ListContacts(partner_id=org))).items]
        assert (await send(nc, c.ListContacts(q="_%_%_%_%_%_%_%_%_%"))).total == 0


class TestInteractions:
    async def test_logging_a_meeting_raises_the_stored_strength(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        x = await contact(nc, org)
        assert x.strength.band == c.Band.none and x.strength.score == 0
        await log(nc, [x.id], NOW - timedelta(days=30))
        detail = await send(nc, c.GetContact(contact_id=x.id))
        assert detail.contact.strength.score == 39  # one meeting, one half-life ago
        assert detail.contact.strength.days_until_cold in (13, 14)

    async def test_a_touch_logged_late_counts_as_if_logged_on_time(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        a, b = await contact(nc, org), await contact(nc, org)
        await log(nc, [a.id], NOW - timedelta(days=2), c.InteractionKind.call)
        await log(nc, [a.id], NOW - timedelta(days=40))            # remembered later
        await log(nc, [b.id], NOW - timedelta(days=40))
        await log(nc, [b.id], NOW - timedelta(days=2), c.InteractionKind.call)
        sa = (await send(nc, c.GetContact(contact_id=a.id))).contact.strength
        sb = (await send(nc, c.GetContact(contact_id=b.id))).contact.strength
        assert (sa.score, sa.cold_at, sa.touches) == (sb.score, sb.cold_at, 2)

    async def test_one_meeting_with_several_contacts_counts_for_each(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        a, b = await contact(nc, org), await contact(nc, org, seniority=c.Seniority.executive)
        logged = await log(nc, [a.id, b.id, a.id], NOW)
        assert sorted(x for x, _ in logged.contacts) == sorted([a.id, b.id])
        scores = [(await send(nc, c.GetContact(contact_id=i))).contact.strength.score for i in (a.id, b.id)]
        assert scores == [63, 77]  # the executive's weighs 1.5

    async def test_bad_interactions_are_refused(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        x = await contact(nc, org)
        await refused(log(nc, [uuid.uuid4()], NOW), "invalid", "contact_ids")
        await refused(log(nc, [x.id], NOW + timedelta(days=3)), "invalid", "occurred_at")
        await refused(log(nc, [x.id], NOW, opportunity_id=uuid.uuid4()), "invalid", "opportunity_id")
        with pytest.raises(ValueError):
            c.LogInteraction(kind="meeting", occurred_at=0, contact_ids=(x.id,))
        with pytest.raises(ValueError):
            c.LogInteraction(kind="meeting", occurred_at="9999-01-01T00:00:00Z", contact_ids=(x.id,))
        assert (await send(nc, c.GetContact(contact_id=x.id))).contact.strength.touches == 0

    async def test_the_same_calendar_event_is_logged_once(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        x = await contact(nc, org)
        uid = f"{uuid.uuid4()}@calendar"
        await log(nc, [x.id], NOW, uid=uid)
        await refused(log(nc, [x.id], NOW, uid=uid), "conflict", "uid")
        assert (await send(nc, c.GetContact(contact_id=x.id))).contact.strength.touches == 1

    async def test_deleting_an_interaction_folds_the_rest_again(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        x = await contact(nc, org)
        await log(nc, [x.id], NOW - timedelta(days=30))
        recent = await log(nc, [x.id], NOW)
        await send(nc, c.DeleteInteraction(interaction_id=recent.id))
        s = (await send(nc, c.GetContact(contact_id=x.id))).contact.strength
        assert (s.score, s.touches) == (39, 1)
        await refused(send(nc, c.DeleteInteraction(interaction_id=recent.id)), "not_found")

    async def test_archived_contacts_take_no_new_touches(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        x = await contact(nc, org)
        await send(nc, c.UpdateContact(contact_id=x.id, archived=True))
        await refused(log(nc, [x.id], NOW), "invalid", "contact_ids")
        assert x.id not in [i.id for i in (await send(nc, c.ListContacts(partner_id=org))).items]


class TestValueAtStake:
    async def test_open_deals_of_the_organisation_count_and_old_snapshots_change_nothing(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        x = await contact(nc, org)
        deal = opportunity(org, "50000.00", version=2)
        older = opportunity(org, "999999.00", version=1, opportunity_id=deal.id)
        await publish(nc, p.OpportunityUpdatedV1(opportunity=deal))
        await publish(nc, p.OpportunityCreatedV1(opportunity=older))      # arrives late
        created = p.OpportunityCreatedV1(opportunity=opportunity(org, "2500.50"))
        await publish(nc, created)
        await publish(nc, created)                                          # duplicate
        await settled(nc, rel_service)
        assert (await send(nc, c.GetContact(contact_id=x.id))).contact.value_at_stake == Decimal("52500.50")
        lost = deal.model_copy(update={"version": 3, "outcome": p.Outcome.lost})
        await publish(nc, p.OpportunityStageChangedV1(opportunity=lost, from_stage="qualified", to_stage="closed_lost",
                                                      changed_by=None, changed_at=NOW))
        await settled(nc, rel_service)
        assert (await send(nc, c.GetContact(contact_id=x.id))).contact.value_at_stake == Decimal("2500.50")

    async def test_a_linked_deal_counts_for_its_contacts_not_the_whole_organisation(self, nc, rel_service):
        """Stakes are shares: each deal counted once across the contacts it depends on."""
        org = await organisation(nc, rel_service)
        a, b = await contact(nc, org), await contact(nc, org)
        deal = opportunity(org, "80000.00")
        await publish(nc, p.OpportunityCreatedV1(opportunity=deal))
        await publish(nc, p.OpportunityCreatedV1(opportunity=opportunity(org, "1000.00")))
        await settled(nc, rel_service)
        await log(nc, [a.id], NOW, opportunity_id=deal.id)
        stakes = [(await send(nc, c.GetContact(contact_id=i))).contact.value_at_stake for i in (a.id, b.id)]
        # The linked deal is a's; the organisation's other deal is shared by its two contacts.
        assert stakes == [Decimal("80500.00"), Decimal("500.00")]

    async def test_deals_in_a_currency_without_a_rate_count_toward_nothing(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        x = await contact(nc, org)
        await publish(nc, p.OpportunityCreatedV1(opportunity=opportunity(org, "1000.00", currency="JPY")))
        await settled(nc, rel_service)
        assert (await send(nc, c.GetContact(contact_id=x.id))).contact.value_at_stake == Decimal("0.00")
        assert "JPY" in (await send(nc, c.GetHeatmap())).unconverted_currencies


class TestCoSellTeams:
    async def test_people_on_an_ace_deal_become_linked_contacts_once(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        email = f"pdm-{uuid.uuid4().hex[:6]}@amazon.example"
        ace = p.AceState(team=(p.ExternalContact(email=email, name="Pat PDM", role="Partner Development Manager"),
                               p.ExternalContact(email=f"ao{email}", role="AWSAccountOwner")))
        deal = opportunity(org, "120000.00", ace=ace, owner="owner-1")
        await publish(nc, p.OpportunityCreatedV1(opportunity=deal))
        await publish(nc, p.OpportunityUpdatedV1(opportunity=deal.model_copy(update={"version": 2})))
        await settled(nc, rel_service)
        found = (await send(nc, c.ListContacts(partner_id=org))).items
        assert sorted((x.name, x.role, x.owner) for x in found) == sorted([
            ("Pat PDM", "PDM", "owner-1"), (f"ao{email}".split("@")[0], "Account manager", "owner-1")])
        detail = await send(nc, c.GetContact(contact_id=next(x.id for x in found if x.name == "Pat PDM")))
        assert [(d.opportunity_id, d.via) for d in detail.deals] == [(deal.id, "linked")]
        assert detail.contact.value_at_stake == Decimal("60000.00")  # the deal's two AWS people share it

    async def test_a_deal_without_a_known_organisation_makes_no_contacts(self, nc, rel_service):
        ace = p.AceState(team=(p.ExternalContact(email=f"{uuid.uuid4().hex}@amazon.example"),))
        await publish(nc, p.OpportunityCreatedV1(opportunity=opportunity(uuid.uuid4(), ace=ace)))
        await settled(nc, rel_service)
        assert (await send(nc, c.ListContacts(q=ace.team[0].email))).total == 0


class TestCooling:
    async def test_a_crucial_contact_is_announced_once_per_crossing(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        x = await contact(nc, org, crucial=True, owner="owner-9")
        await log(nc, [x.id], NOW - timedelta(days=20))      # cold in ~24 days: outside the 14-day window
        await send(nc, c.ScanCooling())
        assert await cooling_events(nc, x.id, 0, timeout=1) == []
        later = NOW + timedelta(days=15)                      # now inside it
        await send(nc, c.ScanCooling(as_of=later))
        await send(nc, c.ScanCooling(as_of=later + timedelta(days=1)))
        [event] = await cooling_events(nc, x.id, 1)
        assert (event["owner"], event["link"], event["days_until_cold"]) == ("owner-9", f"/contacts/{x.id}", 9)
        # A new touch lifts it out; the next approach to cold is a new crossing with a new alert.
        await log(nc, [x.id], NOW)
        await send(nc, c.ScanCooling(as_of=NOW + timedelta(days=60)))
        assert len(await cooling_events(nc, x.id, 2)) == 2

    async def test_marking_a_cooling_contact_crucial_announces_it_at_once(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        x = await contact(nc, org)
        await log(nc, [x.id], NOW - timedelta(days=50))
        assert await cooling_events(nc, x.id, 0, timeout=1) == []
        await send(nc, c.UpdateContact(contact_id=x.id, set=c.ContactFields(crucial=True)))
        [event] = await cooling_events(nc, x.id, 1)
        assert event["days_until_cold"] < 0 and event["score"] < 30


class TestAttention:
    async def test_the_week_is_filled_to_capacity_in_rank_order(self, nc, rel_service):
        owner = f"member-{uuid.uuid4().hex[:6]}"
        org = await organisation(nc, rel_service)
        await publish(nc, p.OpportunityCreatedV1(opportunity=opportunity(org, "95000.00")))
        await settled(nc, rel_service)
        soon = await contact(nc, org, owner=owner, crucial=True, name="Soon")
        later = await contact(nc, org, owner=owner, name="Later")
        await contact(nc, org, owner=owner, crucial=True, name="Never")
        await log(nc, [soon.id], NOW - timedelta(days=40))
        await log(nc, [later.id], NOW - timedelta(days=25))
        deadline = opportunity(org, "30000.00", owner=owner,
                               ace=p.AceState(review_status=p.AceReviewStatus.action_required,
                                              action_due_date=date.today() + timedelta(days=2)))
        await publish(nc, p.OpportunityCreatedV1(opportunity=deadline))
        await settled(nc, rel_service)
        await send(nc, c.SetCapacity(owner=owner, hours_per_week=Decimal("2")))
        week = await send(nc, c.GetAttention(owner=owner))
        [member] = week.members
        assert (member.owner, member.capacity_hours, member.planned_hours) == (owner, Decimal("2.00"), Decimal("2.00"))
        # Priorities (docs/contacts.md): Never 3.95 (crucial, never touched), Soon 2.51 (crucial, cold in
        # 4 days), the ACE answer 1.94 (due in 2 days, $30K), Later 0.71 (cold in 19 days); each contact
        # has a third of the organisation's $125K that no contact is linked to.
        assert [i.title.split(" (")[0] for i in member.items] == ["Touch Never", "Touch Soon"]
        assert [i.title.split(" (")[0] for i in member.outside] == [f"Answer AWS on {deadline.name}", "Touch Later"]
        assert [i.rank for i in [*member.items, *member.outside]] == [1, 2, 3, 4]
        assert [i.value_at_stake for i in member.items] == [Decimal("41666.67")] * 2
        assert (member.items[1].score, member.items[1].days_until_cold, member.items[1].last_touch_days) == (32, 4, 40)

    async def test_the_same_data_gives_the_same_list(self, nc, rel_service):
        first = await send(nc, c.GetAttention(as_of=NOW))
        second = await send(nc, c.GetAttention(as_of=NOW))
        assert first.members == second.members


class TestHeatmapAndHealth:
    async def test_rows_by_organisation_and_owner(self, nc, rel_service):
        org = await organisation(nc, rel_service, name=f"Heat {uuid.uuid4().hex[:6]}")
        owner = f"heat-{uuid.uuid4().hex[:6]}"
        strong, weak = await contact(nc, org, owner=owner), await contact(nc, org, owner=owner)
        await log(nc, [strong.id], NOW)
        deal = opportunity(org, "40000.00")
        await publish(nc, p.OpportunityCreatedV1(opportunity=deal))
        await settled(nc, rel_service)
        await log(nc, [weak.id], NOW - timedelta(days=200), opportunity_id=deal.id)
        heat = await send(nc, c.GetHeatmap(rows=200))
        row = next(r for r in heat.rows if r.key == str(org))
        assert (row.value_at_stake, row.contacts) == (Decimal("40000.00"), 2)
        assert [cell.contact_id for cell in row.cells] == [weak.id, strong.id]  # ordered by value at stake
        by_owner = await send(nc, c.GetHeatmap(group_by=c.HeatmapGroup.owner, rows=200))
        assert next(r for r in by_owner.rows if r.key == owner).value_at_stake == Decimal("40000.00")
        health = await send(nc, c.GetRelationshipHealth())
        assert health.contacts >= 2 and sum(n for _, n in health.distribution) == health.contacts
        assert health.weak_value_at_stake >= Decimal("40000.00")


class TestImports:
    async def test_a_hubspot_csv_creates_and_updates_contacts(self, nc, rel_service):
        name = f"Hub {uuid.uuid4().hex[:6]}"
        org = await organisation(nc, rel_service, name=name)
        email = f"a{uuid.uuid4().hex[:6]}@aws.example"
        header = ["First Name", "Last Name", "Email", "Company Name", "Job Title", "Role", "Crucial", "Lifecycle Stage"]
        rows = [["Ada", "Lovelace", email, name, "PDM EMEA", "PDM", "yes", "customer"],
                ["Bob", "Boss", f"b{email}", name, "", "", "", ""], [""] * 8]
        result = await send(nc, c.ImportContacts(format=c.ContactImportFormat.csv, columns=header, rows=rows))
        assert (result.stored, result.created, result.updated) == (True, 2, 0)
        rows[0][4] = "PDM Europe"
        result = await send(nc, c.ImportContacts(format=c.ContactImportFormat.csv, columns=[*header, "Reports To"],
                                                 rows=[[*r, ""] for r in rows[:1]] + [[*rows[1], email]]))
        assert (result.created, result.updated) == (0, 2)  # Ada's title, Bob's manager
        found = {x.name: x for x in (await send(nc, c.ListContacts(partner_id=org))).items}
        assert found["Ada Lovelace"].title == "PDM Europe" and found["Ada Lovelace"].crucial
        assert found["Bob Boss"].reports_to == found["Ada Lovelace"].id

    async def test_one_bad_row_and_nothing_is_stored_with_every_bad_row_named(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        header = ["name", "email", "partner_id", "role", "crucial", "seniority"]
        rows = [["Good", "good@x.example", str(org), "", "", ""],
                ["", "nameless@x.example", str(org), "", "", ""],
                ["Bad mail", "nope", str(org), "", "", ""],
                ["Role", "r@x.example", str(org), "Wizard", "", ""],
                ["Flag", "f@x.example", str(org), "", "maybe", ""],
                ["Twice", "good@x.example", str(org), "", "", ""],
                ["Nowhere", "n@x.example", str(uuid.uuid4()), "", "", ""],
                ["Level", "l@x.example", str(org), "", "", "emperor"]]
        result = await send(nc, c.ImportContacts(format=c.ContactImportFormat.csv, columns=header, rows=rows))
        assert not result.stored and result.created == 0
        assert {(e.row, e.field) for e in result.errors} == {(3, "name"), (4, "email"), (5, "role"),
                                                             (6, "crucial"), (7, "email"), (8, "partner_id"),
                                                             (9, "seniority")}
        assert (await send(nc, c.ListContacts(partner_id=org))).total == 0

    async def test_vcards(self, nc, rel_service):
        name = f"Card {uuid.uuid4().hex[:6]}"
        org = await organisation(nc, rel_service, name=name)
        vcf = ("BEGIN:VCARD\r\nVERSION:3.0\r\nN:Doe;Jane;;;\r\nEMAIL;TYPE=work:jane@google.example\r\n"
               f"ORG:{name};Partner team\r\nTITLE:Partner\r\n Engineer\r\nEND:VCARD\r\n"
               "BEGIN:VCARD\nVERSION:4.0\nFN:Li Wei\nitem1.EMAIL:li@google.example\nTEL:+1 650 555 0100\nEND:VCARD\n")
        result = await send(nc, c.ImportContacts(format=c.ContactImportFormat.vcard, content=vcf,
                                                 default_partner_id=org))
        assert (result.stored, result.created) == (True, 2)
        found = {x.name: x for x in (await send(nc, c.ListContacts(partner_id=org))).items}
        assert found["Jane Doe"].title == "PartnerEngineer" and found["Li Wei"].phone == "+1 650 555 0100"
        bad = await send(nc, c.ImportContacts(format=c.ContactImportFormat.vcard, content="BEGIN:VCARD\nEMAIL:x@y.z\n"
                                              "END:VCARD\nBEGIN:VCARD\nFN:Open", default_partner_id=org))
        assert not bad.stored and [e.row for e in bad.errors] == [1, 2]

    async def test_a_calendar_export_logs_each_meeting_once(self, nc, rel_service):
        org = await organisation(nc, rel_service)
        email = f"cal{uuid.uuid4().hex[:6]}@amazon.example"
        x = await contact(nc, org, email=email)
        uid = uuid.uuid4().hex
        ics = "\r\n".join([
            "BEGIN:VCALENDAR", "VERSION:2.0",
            "BEGIN:VEVENT", f"UID:{uid}-1", "DTSTART:20261110T160000Z", "SUMMARY:QBR with AWS\\, EMEA",
            f"ORGANIZER;CN=Them:mailto:{email.upper()}", "ATTENDEE;CN=Us:mailto:us@ourco.example",
            "BEGIN:VALARM", "TRIGGER:-PT15M", "END:VALARM", "END:VEVENT",
            "BEGIN:VEVENT", f"UID:{uid}-2", "DTSTART;TZID=Europe/Berlin:20261112T090000",
            f"ATTENDEE:mailto:{email}", "STATUS:CANCELLED", "END:VEVENT",
            "BEGIN:VEVENT", f"UID:{uid}-3", "DTSTART;VALUE=DATE:20261113", "ATTENDEE:mailto:stranger@x.example",
            "END:VEVENT",
            "BEGIN:VEVENT", f"UID:{uid}-4", "DTSTART:99991113T000000Z", f"ATTENDEE:mailto:{email}", "END:VEVENT",
            "BEGIN:VEVENT", "DTSTART:20261101T100000Z", f"ATTENDEE:mailto:{email}", "END:VEVENT",
            "END:VCALENDAR", ""])
        first = await send(nc, c.ImportCalendar(content=ics))
        again = await send(nc, c.ImportCalendar(content=ics))
        assert (first.created, first.skipped, len(first.errors)) == (1, 2, 2)
        assert (again.created, again.skipped) == (0, 3)
        [meeting] = (await send(nc, c.GetContact(contact_id=x.id))).interactions
        assert (meeting.kind, meeting.initiated_by, meeting.note, meeting.occurred_at) == (
            c.InteractionKind.meeting, c.Initiator.them, "QBR with AWS, EMEA", datetime(2026, 11, 10, 16, tzinfo=UTC))
        await refused(send(nc, c.ImportCalendar(content="not a calendar")), "invalid", "content")


async def test_hostile_pipeline_events_are_dead_lettered_and_the_rest_applied(nc, rel_service):
    org = await organisation(nc, rel_service)
    x = await contact(nc, org)
    good = opportunity(org, "700.00")
    body = json.loads(p.OpportunityCreatedV1(opportunity=opportunity(org)).model_dump_json())
    body["opportunity"]["ace"] = {"team": [{"email": "not-an-email"}]}
    await publish(nc, p.OpportunityCreatedV1(opportunity=good), data=json.dumps(body).encode(),
                  msg_id=str(uuid.uuid4()))
    await publish(nc, p.OpportunityCreatedV1(opportunity=good))
    await settled(nc, rel_service)
    assert (await send(nc, c.GetContact(contact_id=x.id))).contact.value_at_stake == Decimal("700.00")


async def test_the_hourly_tick_runs_the_cooling_scan(nc, rel_service):
    """The bus's hourly tick (a schedule's firing, contracts/schedules.py) announces what came due without
    any write to the contact: here a wider warning window brings a crucial contact into it."""
    from contracts import schedules

    org = await organisation(nc, rel_service)
    x = await contact(nc, org, crucial=True)
    await log(nc, [x.id], NOW - timedelta(days=25))            # cold in ~19 days: outside the 14-day window
    assert await cooling_events(nc, x.id, 0, timeout=1) == []
    before = await send(nc, c.GetRelationshipSettings())
    wider = before.model_copy(update={"strength": before.strength.model_copy(update={"warning_days": 30})})
    await send(nc, c.UpdateRelationshipSettings(settings=wider))
    try:
        tick = schedules.HourlyTickV1(job="hourly")
        await publish(nc, tick)
        await publish(nc, tick)                                  # redelivered: applied once
        await settled(nc, rel_service)
        [event] = await cooling_events(nc, x.id, 1)
        assert 17 <= event["days_until_cold"] <= 20
    finally:
        await send(nc, c.UpdateRelationshipSettings(settings=before))


async def test_funding_and_competency_deadlines_join_the_week(nc, rel_service):
    """Deadlines the funding and competency areas keep (services/relationships/deadlines) are ranked too."""
    from services.relationships.deadlines.models import Deadline

    owner = f"funder-{uuid.uuid4().hex[:6]}"
    due = date.today() + timedelta(days=5)
    async with rel_service.sessions() as session, session.begin():
        session.add(Deadline(key=f"fund:{uuid.uuid4()}:claim", kind="fund_claim_due", status="open",
                             title="MAP claim for Acme migration", due_date=due, time_zone="UTC",
                             due_at=datetime.combine(due, datetime.max.time(), tzinfo=UTC), regarding="fund_request",
                             regarding_id=uuid.uuid4(), link="/funding/x", owner=owner,
                             amount_at_stake=Decimal("40000.00"), currency="USD", version=1))
        session.add(Deadline(key=f"fund:{uuid.uuid4()}:met", kind="fund_claim_due", status="met", title="Done",
                             due_date=due, time_zone="UTC",
                             due_at=datetime.combine(due, datetime.max.time(), tzinfo=UTC),
                             regarding="fund_request", regarding_id=uuid.uuid4(), link="/funding/y", owner=owner,
                             amount_at_stake=None, currency=None, version=1))
    [member] = (await send(nc, c.GetAttention(owner=owner))).members
    [item] = member.items
    assert (item.kind, item.title, item.value_at_stake, item.due_in_days, item.what, item.effort_hours) == (
        c.ActionKind.deadline, "MAP claim for Acme migration", Decimal("40000.00"), 5, "Funding claim", Decimal(2))
