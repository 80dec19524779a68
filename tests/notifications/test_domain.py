"""Pure rules: the digest's Monday 08:00 in each person's zone across DST changes, quiet hours,
who receives what, and the deadline reminders' steps."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from contracts import deadlines as dl
from contracts import week as w
from services.notifications.domain import Audience, Recipient, backoff, digest_week, quiet_until, recipients
from services.notifications.rules import RULES, DeadlineView, ScanInput, funding_deadline, task_carried


def hourly_ticks(start: datetime, days: int) -> list[datetime]:
    return [start + timedelta(hours=h) for h in range(days * 24)]


def first_due_ticks(tz: str, start: datetime, days: int) -> list[tuple[datetime, str]]:
    """The tick at which each week's digest is first due (what the service sends at: once a week)."""
    sent: dict[str, datetime] = {}
    for at in hourly_ticks(start, days):
        week = digest_week(at, tz)
        if week is not None and week not in sent:
            sent[week] = at
    return sorted((at, week) for week, at in sent.items())


class TestDigestAcrossDaylightSaving:
    def test_los_angeles_08_00_local_before_and_after_the_november_change(self):
        # DST ends in the US on Sunday 1 November 2026: 08:00 PDT is 15:00 UTC, 08:00 PST is 16:00 UTC.
        got = first_due_ticks("America/Los_Angeles", datetime(2026, 10, 21, tzinfo=UTC), 21)
        assert got == [(datetime(2026, 10, 26, 15, tzinfo=UTC), "2026-W44"),
                       (datetime(2026, 11, 2, 16, tzinfo=UTC), "2026-W45"),
                       (datetime(2026, 11, 9, 16, tzinfo=UTC), "2026-W46")]

    def test_berlin_08_00_local_before_and_after_the_october_change(self):
        # DST ends in the EU on Sunday 25 October 2026: 08:00 CEST is 06:00 UTC, 08:00 CET is 07:00 UTC.
        got = first_due_ticks("Europe/Berlin", datetime(2026, 10, 14, tzinfo=UTC), 21)
        assert got == [(datetime(2026, 10, 19, 6, tzinfo=UTC), "2026-W43"),
                       (datetime(2026, 10, 26, 7, tzinfo=UTC), "2026-W44"),
                       (datetime(2026, 11, 2, 7, tzinfo=UTC), "2026-W45")]

    def test_berlin_spring_forward(self):
        # 29 March 2026 (Sunday) clocks go forward: the next Monday 08:00 CEST is 06:00 UTC.
        got = first_due_ticks("Europe/Berlin", datetime(2026, 3, 18, tzinfo=UTC), 14)
        assert got == [(datetime(2026, 3, 23, 7, tzinfo=UTC), "2026-W13"),
                       (datetime(2026, 3, 30, 6, tzinfo=UTC), "2026-W14")]

    def test_missed_08_00_is_caught_up_within_a_day_and_not_after(self):
        tz = "Europe/Berlin"
        assert digest_week(datetime(2026, 11, 2, 6, 59, tzinfo=UTC), tz) is None
        assert digest_week(datetime(2026, 11, 2, 13, tzinfo=UTC), tz) == "2026-W45"
        assert digest_week(datetime(2026, 11, 3, 6, 59, tzinfo=UTC), tz) == "2026-W45"
        assert digest_week(datetime(2026, 11, 3, 7, tzinfo=UTC), tz) is None

    def test_a_year_end_week_is_named_by_its_iso_year(self):
        assert digest_week(datetime(2026, 12, 28, 9, tzinfo=UTC), "UTC") == "2026-W53"
        assert digest_week(datetime(2027, 1, 4, 9, tzinfo=UTC), "UTC") == "2027-W01"

    def test_an_unknown_zone_reads_as_utc(self):
        assert digest_week(datetime(2026, 11, 2, 8, tzinfo=UTC), "Mars/Olympus") == "2026-W45"


class TestQuietHours:
    @pytest.mark.parametrize(("local_now", "expected"), [
        ("2026-11-02T23:30", "2026-11-03T07:00"),  # across midnight
        ("2026-11-03T06:59", "2026-11-03T07:00"),
        ("2026-11-03T07:00", None),
        ("2026-11-02T21:59", None),
        ("2026-11-02T22:00", "2026-11-03T07:00"),
    ])
    def test_evening_to_morning_in_the_persons_zone(self, local_now, expected):
        from zoneinfo import ZoneInfo

        tz = "Europe/Berlin"
        now = datetime.fromisoformat(local_now).replace(tzinfo=ZoneInfo(tz))
        got = quiet_until(now.astimezone(UTC), tz, 22, 7)
        assert (got.astimezone(ZoneInfo(tz)).replace(tzinfo=None).isoformat(timespec="minutes") if got else None) \
            == expected

    def test_quiet_hours_across_the_dst_night_end_at_the_local_hour(self):
        # Berlin, night of 24-25 October 2026 (clocks go back at 03:00): quiet until 07:00 CET = 06:00 UTC.
        got = quiet_until(datetime(2026, 10, 24, 22, tzinfo=UTC), "Europe/Berlin", 22, 7)
        assert got is not None and got.astimezone(UTC) == datetime(2026, 10, 25, 6, tzinfo=UTC)

    def test_no_quiet_hours_or_a_day_window(self):
        now = datetime(2026, 11, 2, 12, tzinfo=UTC)
        assert quiet_until(now, "UTC", None, None) is None
        assert quiet_until(now, "UTC", 12, 14) == datetime(2026, 11, 2, 14, tzinfo=UTC)
        assert quiet_until(now, "UTC", 9, 9) is None


PEOPLE = [Recipient("a", "a@x", "A", "admin", "UTC"), Recipient("m", "m@x", "M", "manager", "UTC"),
          Recipient("o", "o@x", "O", "member", "UTC"), Recipient("v", "v@x", "V", "viewer", "UTC")]


class TestRecipients:
    @pytest.mark.parametrize(("audience", "owner", "expected"), [
        (Audience.owner, "o", ["o"]),
        (Audience.owner, None, []),
        (Audience.owner_and_admins, "o", ["a", "o"]),
        (Audience.owner_and_admins, "someone-gone", ["a"]),
        (Audience.leads, "o", ["a", "m", "o"]),
        (Audience.leads, "a", ["a", "m"]),
        (Audience.admins, "o", ["a"]),
    ])
    def test_who_receives(self, audience, owner, expected):
        assert [p.user_id for p in recipients(audience, owner, PEOPLE)] == expected


def test_backoff_grows_and_stays_at_its_last_step():
    steps = (5.0, 30.0, 120.0)
    assert [backoff(n, steps).total_seconds() for n in (1, 2, 3, 4, 10)] == [5, 30, 120, 120, 120]


def test_every_rule_has_a_trigger_a_window_and_a_unique_key():
    assert len({r.key for r in RULES}) == len(RULES)
    for r in RULES:
        assert (r.on_event is not None) == bool(r.on) and (r.scan is not None) != bool(r.on), r.key
        assert r.window > timedelta(0)


class TestFundingDeadline:
    def _scan(self, due: date, now: datetime) -> list[str]:
        d = DeadlineView(key="fund_request:1:fund_claim_due", kind=dl.DeadlineKind.fund_claim_due.value,
                         title="MAP claim for Acme migration", due_date=due, time_zone="America/Los_Angeles",
                         link="/funding/1", owner="o", amount_at_stake=Decimal("25000"), currency="USD")
        return [f.key.rsplit(":", 1)[-1] for f in funding_deadline(ScanInput(now=now, open_deals=(), settings={},
                                                                            open_deadlines=(d,)))]

    def test_steps_at_14_and_3_days_and_when_overdue_in_the_deadlines_zone(self):
        due = date(2026, 12, 20)
        assert self._scan(due, datetime(2026, 12, 5, 12, tzinfo=UTC)) == []
        assert self._scan(due, datetime(2026, 12, 6, 12, tzinfo=UTC)) == ["14d"]
        assert self._scan(due, datetime(2026, 12, 17, 12, tzinfo=UTC)) == ["3d"]
        assert self._scan(due, datetime(2026, 12, 20, 23, tzinfo=UTC)) == ["3d"]  # still the 20th in LA
        assert self._scan(due, datetime(2026, 12, 21, 7, tzinfo=UTC)) == ["3d"]  # 23:00 on the 20th in LA
        assert self._scan(due, datetime(2026, 12, 21, 12, tzinfo=UTC)) == ["overdue"]

    def test_competency_kinds_are_not_funding(self):
        d = DeadlineView(key="k", kind=dl.DeadlineKind.competency_renewal.value, title="t", due_date=date(2026, 1, 1),
                         time_zone="UTC", link="/x", owner=None, amount_at_stake=None, currency=None)
        assert funding_deadline(ScanInput(now=datetime(2026, 1, 1, tzinfo=UTC), open_deals=(), settings={},
                                          open_deadlines=(d,))) == []


def test_a_task_carried_three_times_fires_and_twice_does_not():
    def carried(times: int) -> w.TaskCarriedV1:
        task = w.Task(id=uuid.uuid4(), owner="o", title="Send the MDF proposal", due_date=date(2026, 11, 20),
                      status=w.TaskStatus.open, week=date(2026, 11, 30), first_week=date(2026, 11, 9),
                      carried=times, created_by="o", created_at=datetime(2026, 11, 9, tzinfo=UTC), version=times + 1)
        return w.TaskCarriedV1(task=task, from_week=date(2026, 11, 23), to_week=date(2026, 11, 30))

    assert task_carried(carried(2), {}) == []
    fired = task_carried(carried(3), {})
    assert len(fired) == 1 and "3 weekly meetings" in fired[0].why and fired[0].link == "/week?week=2026-11-30"


class TestSyncStale:
    def view(self, now, *, success_ago=None, run_ago=timedelta(minutes=5), ok=True, error=None):
        from services.notifications.rules import SyncView

        return SyncView(source="aws", catalog="AWS", last_run_at=now - run_ago, last_ok=ok,
                        last_success_at=now - success_ago if success_ago is not None else None, last_error=error)

    def test_stale_only_past_the_line_and_keyed_by_the_episode(self):
        from contracts.sync import STALE_AFTER
        from services.notifications.rules import sync_stale

        now = datetime(2026, 12, 1, 12, tzinfo=UTC)

        def fired(*views):
            return sync_stale(ScanInput(now=now, open_deals=(), settings={}, syncs=views))

        assert fired(self.view(now, success_ago=STALE_AFTER)) == []
        [one] = fired(self.view(now, success_ago=STALE_AFTER + timedelta(minutes=1), run_ago=timedelta(minutes=3),
                                ok=False, error="ThrottlingException from AWS (after retries)"))
        assert one.key == f"aws:AWS:{(now - STALE_AFTER - timedelta(minutes=1)).isoformat()}" and one.link == "/sync"
        assert "61 minutes" in one.why and "ThrottlingException" in one.why and one.title.startswith("Sync stale")
        # Later in the same episode: the same key (the alert table keeps it to one); a good pass ends it.
        [later] = fired(self.view(now, success_ago=timedelta(hours=5), run_ago=timedelta(hours=5)))
        assert "worker may be down" in later.why and "5 hours" in later.why
        # Never a good pass, for longer than the line since the first run.
        [never] = fired(self.view(now, run_ago=timedelta(hours=2), ok=False, error="AccessDeniedException"))
        assert never.key == "aws:AWS:never" and "no pass has succeeded" in never.why
