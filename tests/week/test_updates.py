"""A member's weekly update: pre-filled from the pipeline copy and their tasks, saved as a draft at every
change with optimistic versions, submitted (next steps become tasks), amended with history until the
meeting closes; hostile input is refused with the field named and nothing stored changes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from contracts import pipeline as p
from contracts import week as w
from contracts.quarters import Quarter
from runtime.commands import send
from runtime.errors import CommandFailed
from tests.support.bus import publish, settled
from tests.week.conftest import member, open_week, opportunity

pytestmark = pytest.mark.usefixtures("fresh")


def now() -> datetime:
    return datetime.now(UTC)


async def failed(coro) -> CommandFailed:
    with pytest.raises(CommandFailed) as err:
        await coro
    return err.value


async def this_week(nc, *members: str) -> w.Meeting:
    return await open_week(nc, attendees=[w.Attendee(user_id=m, name=f"member {m[:4]}") for m in members])


async def get(nc, meeting: w.Meeting, who: str) -> w.Update:
    return await send(nc, w.GetUpdate(week=meeting.week, member=who))


def quarter_end(today: date) -> date:
    return Quarter.calendar_of(today).range()[1] - timedelta(days=1)


class TestPrefill:
    async def test_each_kind_of_deal_appears_on_its_owners_form_and_nothing_of_another_members(self, nc, service):
        alice, bob = member(), member()
        meeting = await this_week(nc, alice, bob)
        t0 = now()
        partner = uuid.uuid4()
        await publish(
            nc,
            p.PartnerCreatedV1(
                partner_id=partner,
                name="Snowflake",
                type=p.PartnerType.isv,
                tier=p.PartnerTier.gold,
                status=p.PartnerStatus.active,
                owner=alice,
            ),
        )
        moved = opportunity(
            alice,
            created_at=t0 - timedelta(days=40),
            stage_entered_at=t0 - timedelta(hours=2),
            partner_id=partner,
            name="moved deal",
        )
        closing = opportunity(
            alice,
            created_at=t0 - timedelta(days=20),
            stage_entered_at=t0 - timedelta(days=20),
            close=quarter_end(meeting.week),
            name="closing deal",
        )
        ace = opportunity(
            alice,
            created_at=t0 - timedelta(days=20),
            stage_entered_at=t0 - timedelta(days=20),
            ace=p.AceState(
                review_status=p.AceReviewStatus.action_required, action_due_date=meeting.week + timedelta(days=2)
            ),
            name="ace deal",
        )
        quiet = opportunity(
            alice,
            created_at=t0 - timedelta(days=25),
            stage_entered_at=t0 - timedelta(days=20),
            close=date(meeting.week.year + 2, 1, 15),
            name="quiet deal",
        )
        bobs = opportunity(
            bob, created_at=t0 - timedelta(days=40), stage_entered_at=t0 - timedelta(hours=1), name="bob's deal"
        )
        for o in (moved, closing, ace, quiet, bobs):
            await publish(
                nc,
                p.OpportunityStageChangedV1(
                    opportunity=o,
                    from_stage="Prospect",
                    to_stage=o.stage_name,
                    changed_by=o.owner,
                    changed_at=o.stage_entered_at,
                ),
            )
        await settled(nc, service)

        update = await get(nc, meeting, alice)
        reasons = {ln.ref_id: ln.reasons for ln in update.lines}
        assert "moved" in reasons[moved.id]
        assert "closing_this_quarter" in reasons[closing.id]
        assert "action_required" in reasons[ace.id]
        assert quiet.id not in reasons and bobs.id not in reasons
        [line] = [ln for ln in update.lines if ln.ref_id == moved.id]
        assert (line.partner_name, line.amount, line.currency, line.suggested) == ("Snowflake", "1000.00", "USD", True)
        assert update.version == 0 and update.status == w.UpdateStatus.draft

        bobs_update = await get(nc, meeting, bob)
        assert [ln.ref_id for ln in bobs_update.lines] == [bobs.id]

    async def test_an_older_snapshot_arriving_late_changes_nothing(self, nc, service):
        alice = member()
        meeting = await this_week(nc, alice)
        t0 = now()
        new = opportunity(
            alice, version=3, created_at=t0 - timedelta(days=40), stage_entered_at=t0 - timedelta(hours=1)
        )
        old = new.model_copy(update={"version": 2, "owner": member()})
        await publish(nc, p.OpportunityUpdatedV1(opportunity=new))
        await publish(nc, p.OpportunityUpdatedV1(opportunity=old))
        await settled(nc, service)
        assert [ln.ref_id for ln in (await get(nc, meeting, alice)).lines] == [new.id]

    async def test_tasks_due_this_week_and_overdue_are_on_the_form(self, nc):
        alice = member()
        meeting = await this_week(nc, alice)
        due = await send(
            nc, w.CreateTask(owner=alice, title="send the MAP claim", due_date=meeting.week + timedelta(days=3))
        )
        late = await send(
            nc, w.CreateTask(owner=alice, title="answer the PDM", due_date=meeting.week - timedelta(days=3))
        )
        later = await send(
            nc, w.CreateTask(owner=alice, title="next month", due_date=meeting.week + timedelta(days=30))
        )
        lines = {ln.ref_id: ln for ln in (await get(nc, meeting, alice)).lines}
        assert lines[due.id].reasons in (["task_due"], ["task_overdue"])
        assert lines[late.id].reasons == ["task_overdue"]
        assert later.id not in lines


class TestDraftsAndSubmission:
    async def test_draft_saves_submit_and_amend_with_history(self, nc):
        alice = member()
        meeting = await this_week(nc, alice)
        lines = [
            w.UpdateLineIn(
                key="free:1",
                label="AWS summit booth",
                status=w.LineStatus.on_track,
                note="booked",
                next_step="send the invite list",
                next_step_due=meeting.week + timedelta(days=2),
            )
        ]
        draft = await send(nc, w.SaveUpdate(week=meeting.week, member=alice, version=0, lines=lines))
        assert (draft.version, draft.status, draft.lines[0].task_id) == (1, w.UpdateStatus.draft, None)
        stale = await failed(send(nc, w.SaveUpdate(week=meeting.week, member=alice, version=0, lines=[])))
        assert (stale.error.kind, stale.error.field) == ("conflict", "version")
        assert (await get(nc, meeting, alice)).lines[0].note == "booked"

        submitted = await send(
            nc,
            w.SaveUpdate(
                week=meeting.week,
                member=alice,
                version=1,
                lines=lines,
                submit=True,
                anything_else="out Friday",
                actor=alice,
            ),
        )
        assert submitted.status == w.UpdateStatus.submitted and submitted.submitted_at is not None
        task_id = submitted.lines[0].task_id
        [task] = (await send(nc, w.ListTasks(owner=alice))).items
        assert (task.id, task.title, task.due_date) == (
            task_id,
            "send the invite list",
            meeting.week + timedelta(days=2),
        )

        amended_lines = [lines[0].model_copy(update={"next_step": "send the final invite list"})]
        amended = await send(
            nc,
            w.SaveUpdate(
                week=meeting.week,
                member=alice,
                version=submitted.version,
                lines=amended_lines,
                submit=True,
                actor=alice,
            ),
        )
        assert amended.amendments == 1 and amended.lines[0].task_id == task_id
        [task] = (await send(nc, w.ListTasks(owner=alice))).items
        assert task.title == "send the final invite list"  # the same task, not a second one
        history = (await send(nc, w.GetUpdateHistory(week=meeting.week, member=alice))).items
        assert [(h.revision, h.action) for h in history] == [(1, "submitted"), (2, "amended")]
        assert history[0].lines[0].next_step == "send the invite list"

        closed = await send(nc, w.CloseMeeting(week=meeting.week, version=meeting.version))
        after_close = await failed(
            send(nc, w.SaveUpdate(week=meeting.week, member=alice, version=amended.version, lines=[], submit=True))
        )
        assert (after_close.error.kind, after_close.error.field) == ("conflict", "week")
        assert closed.status == w.MeetingStatus.closed
        assert len((await get(nc, meeting, alice)).lines) == 1

    async def test_a_task_line_marked_done_closes_the_task(self, nc):
        alice = member()
        meeting = await this_week(nc, alice)
        task = await send(nc, w.CreateTask(owner=alice, title="renew the competency", due_date=meeting.week))
        line = w.UpdateLineIn(key=f"task:{task.id}", kind=w.LineKind.task, ref_id=task.id, status=w.LineStatus.done)
        await send(nc, w.SaveUpdate(week=meeting.week, member=alice, version=0, lines=[line], submit=True))
        [after] = (await send(nc, w.ListTasks(owner=alice))).items
        assert after.status == w.TaskStatus.done and after.closed_at is not None


class TestHostileInput:
    async def test_refused_with_the_field_named_and_nothing_changed(self, nc):
        alice, bob = member(), member()
        meeting = await this_week(nc, alice, bob)
        saved = await send(
            nc,
            w.SaveUpdate(
                week=meeting.week, member=alice, version=0, lines=[w.UpdateLineIn(key="free:1", note="keep me")]
            ),
        )
        bobs_task = await send(nc, w.CreateTask(owner=bob, title="bob's", due_date=meeting.week))
        cases = {
            "lines.0.ref_id": [{"key": "deal:x", "kind": "deal", "ref_id": str(uuid.uuid4())}],
            "lines.1.ref_id": [
                {"key": "a"},
                {"key": f"task:{bobs_task.id}", "kind": "task", "ref_id": str(bobs_task.id)},
            ],
        }
        for field, lines in cases.items():
            err = await failed(
                send(
                    nc,
                    w.SaveUpdate(
                        week=meeting.week,
                        member=alice,
                        version=saved.version,
                        lines=[w.UpdateLineIn.model_validate(x) for x in lines],
                    ),
                )
            )
            assert (err.error.kind, err.error.field) == ("invalid", field)
        raw = {"week": meeting.week.isoformat(), "member": alice, "version": saved.version}
        bad_bodies = {
            "lines.0.note": {"lines": [{"key": "k", "note": "x" * 2001}]},
            "lines.0.label": {"lines": [{"key": "k", "label": "nul\x00"}]},
            "lines": {"lines": [{"key": "k"}, {"key": "k"}]},
            "lines.0.next_step_due": {"lines": [{"key": "k", "next_step": "x", "next_step_due": 0}]},
            "version": {"version": -1},
            "week": {"week": "9999-01-04"},
        }
        nc_raw = nc
        for field, body in bad_bodies.items():
            msg = await nc_raw.request(
                w.SaveUpdate.subject, __import__("json").dumps({**raw, **body}).encode(), timeout=10
            )
            reply = __import__("json").loads(msg.data)
            assert not reply["ok"] and reply["error"]["kind"] == "invalid", (field, reply)
            assert reply["error"]["field"].startswith(field), (field, reply)
        not_monday = await failed(
            send(nc, w.SaveUpdate(week=meeting.week + timedelta(days=1), member=alice, version=saved.version))
        )
        assert not_monday.error.field == "week"
        no_meeting = await failed(send(nc, w.GetUpdate(week=date(2001, 1, 1), member=alice)))
        assert (no_meeting.error.kind, no_meeting.error.field) == ("not_found", "week")
        unknown = await failed(send(nc, w.ChangeTask(task_id=uuid.uuid4(), version=1, status=w.TaskStatus.done)))
        assert unknown.error.kind == "not_found"
        no_reason = await failed(
            send(
                nc,
                w.ChangeTask.model_construct(task_id=bobs_task.id, version=1, status=w.TaskStatus.dropped, reason=None),
            )
        )
        assert no_reason.error.kind == "invalid"
        stale = await failed(send(nc, w.ChangeTask(task_id=bobs_task.id, version=7, status=w.TaskStatus.done)))
        assert (stale.error.kind, stale.error.field) == ("conflict", "version")
        after = await get(nc, meeting, alice)
        assert (after.version, [ln.note for ln in after.lines if not ln.suggested]) == (saved.version, ["keep me"])


class TestFundingPrefill:
    async def test_a_fund_request_deadline_within_three_weeks_is_on_its_owners_form(self, nc, private_db):
        import asyncpg

        from runtime.db import plain_dsn

        alice, bob = member(), member()
        meeting = await this_week(nc, alice, bob)
        soon, later, bobs = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        conn = await asyncpg.connect(plain_dsn(private_db["admin"]))
        try:
            for rid, owner, due, status in ((soon, alice, meeting.week + timedelta(days=10), "open"),
                                            (later, alice, meeting.week + timedelta(days=60), "open"),
                                            (bobs, bob, meeting.week + timedelta(days=2), "open"),
                                            (uuid.uuid4(), alice, meeting.week, "met")):
                await conn.execute(
                    "INSERT INTO relationships.deadline (key, kind, status, title, due_date, time_zone, due_at, "
                    "regarding, regarding_id, link, owner, amount_at_stake, currency, version) VALUES ($1, "
                    "'fund_request_expiry', $2, 'MAP request expires', $3, 'UTC', now(), 'fund_request', $4, '/x', $5, "
                    "25000, 'USD', 1) ON CONFLICT DO NOTHING", f"fund_request:{rid}:expiry", status, due, rid, owner)
            lines = {ln.ref_id: ln for ln in (await get(nc, meeting, alice)).lines}
        finally:
            await conn.execute("DELETE FROM relationships.deadline WHERE regarding_id = ANY($1::uuid[])",
                               [soon, later, bobs])
            await conn.close()
        assert lines[soon].reasons == ["funding_deadline"] and lines[soon].kind == w.LineKind.funding
        assert lines[soon].amount == "25000.00" and "MAP request expires" in lines[soon].label
        assert later not in lines and bobs not in lines
