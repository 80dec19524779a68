"""Rollover: open tasks move into the next week's meeting once, however often and from however many
processes the week is opened, with week bounds in the team's time zone across daylight-saving changes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest

from contracts import week as w
from runtime.commands import send
from runtime.db import plain_dsn
from runtime.errors import CommandFailed
from tests.week.conftest import member, open_week, utc

pytestmark = pytest.mark.usefixtures("fresh")
ROOT = Path(__file__).resolve().parents[2]


async def task_in(nc, owner: str, week: date, due: date | None = None, title: str = "call the PDM") -> w.Task:
    return await send(nc, w.CreateTask(owner=owner, title=title, due_date=due or week + timedelta(days=3),
                                       week=week, actor="tester"))


async def tasks_of(nc, owner: str) -> list[w.Task]:
    return (await send(nc, w.ListTasks(owner=owner))).items


class TestRollover:
    async def test_opening_the_next_week_twice_carries_once(self, nc):
        owner = member()
        t = await task_in(nc, owner, date(2026, 11, 23), due=date(2026, 11, 25))
        done = await task_in(nc, owner, date(2026, 11, 23))
        await send(nc, w.ChangeTask(task_id=done.id, version=done.version, status=w.TaskStatus.done))
        for _ in range(2):
            meeting = await open_week(nc, utc(2026, 12, 1, 15))
            assert meeting.week == date(2026, 11, 30)
        by_id = {x.id: x for x in await tasks_of(nc, owner)}
        assert (by_id[t.id].week, by_id[t.id].carried, by_id[t.id].due_date) == (date(2026, 11, 30), 1,
                                                                              date(2026, 11, 25))
        assert by_id[t.id].first_week == date(2026, 11, 23)
        assert (by_id[done.id].week, by_id[done.id].carried) == (date(2026, 11, 23), 0)

    async def test_each_week_end_counts_and_skipped_weeks_count_too(self, nc):
        owner = member()
        t = await task_in(nc, owner, date(2026, 11, 2))
        await open_week(nc, utc(2026, 11, 10, 15))  # week of Nov 9: carried once
        await open_week(nc, utc(2026, 11, 30, 15))  # nobody opened Nov 16 and 23: three week ends in all
        [after] = [x for x in await tasks_of(nc, owner) if x.id == t.id]
        assert (after.week, after.carried) == (date(2026, 11, 30), 4)

    async def test_concurrent_rollover_from_two_processes_carries_once(self, nc, private_db, tmp_path):
        owner = member()
        made = await asyncio.gather(*(task_in(nc, owner, date(2026, 11, 23), title=f"task {i}") for i in range(120)))
        start = tmp_path / "go"
        workers = [subprocess.Popen([sys.executable, str(ROOT / "tests/week/rollover_worker.py"),
                                     private_db["relationships"], "2026-12-02T12:00:00+00:00", str(start), "3"],
                                    cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
                   for _ in range(2)]
        start.touch()
        # and, at the same time, gateways asking the service over the bus
        await asyncio.gather(*(open_week(nc, utc(2026, 12, 2, 12)) for _ in range(6)))
        for p in workers:
            assert p.wait(timeout=120) == 0
        after = {x.id: x for x in await tasks_of(nc, owner)}
        assert {(after[t.id].week, after[t.id].carried) for t in made} == {(date(2026, 11, 30), 1)}
        conn = await asyncpg.connect(plain_dsn(private_db["admin"]))
        try:
            carries = await conn.fetchval("SELECT count(*) FROM relationships.task_carry")
            events = await conn.fetchval("SELECT count(*) FROM relationships.outbox WHERE subject = $1 "
                                         "AND payload::jsonb -> 'task' ->> 'owner' = $2",
                                         w.TaskCarriedV1.subject, owner)
            meetings = await conn.fetchval("SELECT count(*) FROM relationships.meeting WHERE week = '2026-11-30'")
        finally:
            await conn.close()
        assert (carries, events, meetings) == (120, 120, 1)

    async def test_week_bounds_follow_the_team_zone_across_the_autumn_dst_change(self, nc):
        # New York leaves daylight saving on Sunday 2026-11-01; the week of Oct 26 is 169 hours long.
        owner = member()
        t = await task_in(nc, owner, date(2026, 10, 19))
        sunday_late = await open_week(nc, utc(2026, 11, 2, 4, 30))  # Sunday 23:30 EST (00:30 by the old offset)
        assert sunday_late.week == date(2026, 10, 26)
        assert sunday_late.ends_at - sunday_late.starts_at == timedelta(hours=169)
        assert sunday_late.starts_at == utc(2026, 10, 26, 4) and sunday_late.ends_at == utc(2026, 11, 2, 5)
        [mid] = await tasks_of(nc, owner)
        assert (mid.week, mid.carried) == (date(2026, 10, 26), 1)
        monday = await open_week(nc, utc(2026, 11, 2, 5))  # Monday 00:00 EST
        assert monday.week == date(2026, 11, 2)
        [after] = await tasks_of(nc, owner)
        assert (after.id, after.week, after.carried) == (t.id, date(2026, 11, 2), 2)

    async def test_spring_forward_week_is_167_hours(self, nc):
        meeting = await open_week(nc, utc(2027, 3, 10, 12))
        assert meeting.week == date(2027, 3, 8)
        assert meeting.ends_at - meeting.starts_at == timedelta(hours=167)
        assert meeting.updates_due_at == utc(2027, 3, 8, 17)  # Monday noon EST

    async def test_a_member_in_tokyo_follows_the_team_week_in_new_york(self, nc):
        tokyo = member()
        t = await task_in(nc, tokyo, date(2026, 11, 30), due=date(2026, 12, 4))
        # Monday 09:00 in Tokyo is still Sunday 19:00 in New York: the team's week has not ended.
        early = await open_week(nc, utc(2026, 12, 7, 0), attendees=[w.Attendee(user_id=tokyo, name="Yuki")])
        assert early.week == date(2026, 11, 30)
        [still] = await tasks_of(nc, tokyo)
        assert (still.week, still.carried) == (date(2026, 11, 30), 0)
        later = await open_week(nc, utc(2026, 12, 7, 5))
        assert later.week == date(2026, 12, 7)
        [after] = await tasks_of(nc, tokyo)
        assert (after.id, after.week, after.carried, after.due_date) == (t.id, date(2026, 12, 7), 1, date(2026, 12, 4))

    async def test_two_gateways_opening_a_week_make_one_meeting(self, nc):
        meetings = await asyncio.gather(*(open_week(nc, utc(2026, 12, 16, 12)) for _ in range(8)))
        assert len({m.id for m in meetings}) == 1

    async def test_the_team_zone_is_the_first_one_given_and_a_bad_zone_is_refused(self, nc):
        first = await open_week(nc, utc(2026, 12, 16, 12), tz="Asia/Tokyo")
        again = await open_week(nc, utc(2026, 12, 16, 12), tz="Europe/Paris")
        assert first.time_zone == again.time_zone == "Asia/Tokyo"
        for bad in ("Mars/Olympus", "../../etc/passwd", "+05:00"):
            with pytest.raises(CommandFailed) as err:
                await open_week(nc, utc(2026, 12, 16, 12), tz=bad)
            assert err.value.error.field == "default_time_zone"
        with pytest.raises(CommandFailed) as err:
            await task_in(nc, member(), date(2026, 12, 15))  # a Tuesday
        assert err.value.error.field == "week"
