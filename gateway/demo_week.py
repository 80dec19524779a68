"""Demo data for the team's week: the four weeks before this one, each with its meeting, the members'
updates (about their partners, mostly on time), decisions and tasks — some done, some carried over
several times — and then this week's meeting, opened so the open tasks roll into it and the members'
forms are pre-filled from their deals. Sent through the relationships service's own commands."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nats.aio.client import Client as NATS

from contracts import pipeline as pc
from contracts import week as w
from runtime.commands import send
from runtime.errors import CommandFailed

ACTOR = "demo-seed"
TEAM = ("vp", "maria", "tom", "aisha")
STATUSES = (w.LineStatus.on_track, w.LineStatus.at_risk, w.LineStatus.on_track, w.LineStatus.blocked,
            w.LineStatus.done, w.LineStatus.on_track)
NOTES = ("joint pipeline review booked", "procurement waiting on legal", "PDM asked for a case study",
         "marketplace listing live", "renewal signed", "needs an executive sponsor call")
STEPS = ("send the joint business plan", "book the QBR", "share the reference architecture",
         "answer the ACE reviewer", "file the MDF request", "introduce the new PSM")
DECISIONS = (
    "Focus co-sell effort on Snowflake and MongoDB until quarter end.",
    "Tom takes over the GitLab relationship from Maria.",
    "No new ISVs onboarded this quarter: capacity goes to the top 10.",
    "Submit the MAP request for the Datadog migration this month.",
)
# Tasks recorded in the first demo meeting and never finished: carried into every later week.
STUCK_TASKS = (("tom", "Get the HashiCorp reseller addendum signed"),
               ("aisha", "Collect the Okta win-wire details for AWS"))


async def _partners(nc: NATS) -> dict[str, tuple[str, str | None]]:
    page: pc.PartnerList = await send(nc, pc.ListPartners(limit=200))
    return {p.name: (str(p.id), p.owner) for p in page.items}


async def _save(nc: NATS, cmd: w.SaveUpdate, *, tries: int = 60) -> w.Update:
    """The service learns partners from the pipeline's events; right after the pipeline's seed it may not
    know them yet, so a line naming one is retried until it does."""
    for attempt in range(tries):
        try:
            return await send(nc, cmd)  # type: ignore[no-any-return]
        except CommandFailed as exc:
            if not (exc.error.field or "").endswith("ref_id") or attempt == tries - 1:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


async def seed_week(nc: NATS, *, owners: Mapping[str, str], names: Mapping[str, str], time_zone: str,
                    now: datetime | None = None) -> dict[str, int]:
    """`owners`: demo handles (maria, tom, ...) to user ids; `names`: user ids to names."""
    now = now or datetime.now(UTC)
    tz = ZoneInfo(time_zone)
    # The team: the VP and the members (the board observer reads the pages but does not attend).
    attendees = [w.Attendee(user_id=uid, name=names.get(uid, handle)[:200]) for handle, uid in owners.items()
                 if handle in TEAM]
    partners = await _partners(nc)
    members = [h for h in ("maria", "tom", "aisha") if h in owners]
    by_member = {h: [name for name, (_, owner) in partners.items() if owner == owners[h]][:3] for h in members}
    local_today = now.astimezone(tz).date()
    this_monday = local_today - timedelta(days=local_today.weekday())
    counts = {"meetings": 0, "updates": 0, "tasks": 0, "decisions": 0}
    stuck: list[w.Task] = []
    for back in (4, 3, 2, 1):
        monday = this_monday - timedelta(weeks=back)
        opened_at = datetime.combine(monday, time(8), tz).astimezone(UTC)
        meeting: w.Meeting = await send(nc, w.OpenWeek(at=opened_at, default_time_zone=time_zone,
                                                       attendees=attendees, actor=ACTOR))
        counts["meetings"] += 1
        for i, handle in enumerate(members):
            # Aisha is late once, Tom skips the update two weeks back: the KPIs have something to show.
            if handle == "tom" and back == 2:
                continue
            hour = 14 if (handle == "aisha" and back == 3) else 9
            at = datetime.combine(monday, time(hour, 10 * i), tz).astimezone(UTC)
            lines = []
            for j, partner in enumerate(by_member[handle]):
                k = (back + i + j) % len(STATUSES)
                lines.append(w.UpdateLineIn(
                    key=f"partner:{partners[partner][0]}", kind=w.LineKind.partner, ref_id=partners[partner][0],
                    label=partner, status=STATUSES[k], note=NOTES[k],
                    next_step=STEPS[k] if j == 0 else "", next_step_due=monday + timedelta(days=4) if j == 0 else None))
            await _save(nc, w.SaveUpdate(week=meeting.week, member=owners[handle], version=0, lines=lines, submit=True,
                                         anything_else="Out Friday afternoon." if back == 1 and handle == "maria"
                                         else "", at=at, actor=owners[handle]))
            counts["updates"] += 1
        await send(nc, w.RecordDecision(week=meeting.week, text=DECISIONS[4 - back], actor=owners.get("vp")))
        counts["decisions"] += 1
        if back == 4:
            for handle, title in STUCK_TASKS:
                if handle in owners:
                    stuck.append(await send(nc, w.CreateTask(owner=owners[handle], title=title, week=meeting.week,
                                                             due_date=monday + timedelta(days=4), actor=ACTOR)))
                    counts["tasks"] += 1
        # The next steps of this week's updates became tasks; most get done the following week.
        if back <= 3:
            done_at = datetime.combine(monday + timedelta(days=2), time(16), tz).astimezone(UTC)
            previous = (await send(nc, w.ListTasks(week=meeting.week, status=w.TaskStatus.open))).items
            for t in previous:
                if t.id in {s.id for s in stuck} or (t.owner == owners.get("tom") and back == 1):
                    continue
                await send(nc, w.ChangeTask(task_id=t.id, version=t.version, status=w.TaskStatus.done, at=done_at,
                                            actor=ACTOR))
        await send(nc, w.CloseMeeting(week=meeting.week, version=(await send(nc, w.OpenWeek(
            at=opened_at, default_time_zone=time_zone, actor=ACTOR))).version, actor=owners.get("vp")))
    await send(nc, w.OpenWeek(at=now, default_time_zone=time_zone, attendees=attendees, actor=ACTOR))
    counts["tasks"] = (await send(nc, w.ListTasks(limit=1))).total
    return counts
