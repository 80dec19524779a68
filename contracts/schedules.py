"""Periodic work as events: JetStream message schedules (nats-server 2.12+, ADR-51) in one stream.

The notifications service keeps one *plan* per job: a message on `schedule.plan.<job>` whose headers
`Nats-Schedule` (a six-field cron, UTC unless `Nats-Schedule-Time-Zone` says otherwise) and
`Nats-Schedule-Target` tell the server to publish the plan's body on `schedule.<job>.v1` at every
firing. The server does the firing: it survives restarts (the plan is a stored message), fires once
whatever the number of service replicas, and needs no process of ours awake at the time. The owner
of the work consumes the tick through its idempotent inbox like any event.

A tick's body is the plan's body, the same at every firing, so it cannot carry an event id. The
consumer derives one from the job and the time the stream stored the tick (`from_delivery`): a
redelivered tick keeps its id, the next firing gets a new one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from contracts.base import Event, StreamSpec

STREAM = StreamSpec(
    name="SCHEDULES",
    subjects=("schedule.>",),
    description="Schedule plans (JetStream message schedules) and the ticks the server publishes from them.",
    schedules=True,
)

PLAN_PREFIX = "schedule.plan."
# Names a tick's derived event id; fixed so every consumer derives the same id.
_TICK_NAMESPACE = uuid.UUID("7b0f5b9e-6a53-4a55-9d3f-6b3c2f0a1e11")


class _Tick(Event):
    stream: ClassVar[StreamSpec] = STREAM
    schema_version: Literal[1] = 1
    job: str = Field(max_length=40, pattern=r"^[a-z][a-z0-9_]{0,39}$")

    @classmethod
    def from_delivery(cls, raw: dict[str, Any], stored_at: datetime | None) -> dict[str, Any]:
        if "event_id" in raw or stored_at is None:
            return raw
        slot = stored_at.isoformat(timespec="seconds")
        return {**raw, "event_id": str(uuid.uuid5(_TICK_NAMESPACE, f"{raw.get('job')}:{slot}")),
                "occurred_at": stored_at.isoformat()}


class HourlyTickV1(_Tick):
    """Sent by the bus at the top of every hour: the notifications service scans for alerts due and sends
    the digests whose local time has come."""

    subject: ClassVar[str] = "schedule.hourly.v1"


class TierRecomputationDueV1(_Tick):
    """Sent by the bus once a day: the pipeline recomputes partner tiers as won deals age out of the window."""

    subject: ClassVar[str] = "schedule.tiers.v1"


class HousekeepingDueV1(_Tick):
    """Sent by the bus every hour: the gateway purges expired sessions, password resets and old sign-in
    attempts, and sends the notifications service its directory of people."""

    subject: ClassVar[str] = "schedule.housekeeping.v1"


class AwsPullDueV1(_Tick):
    """Sent by the bus every 15 minutes: the AWS Partner Central sync pulls the opportunities changed
    since its cursor (EventBridge events are best-effort; this is the floor)."""

    subject: ClassVar[str] = "schedule.aws_pull.v1"


class AwsReconciliationDueV1(_Tick):
    """Sent by the bus every 6 hours: the AWS Partner Central sync compares every opportunity again."""

    subject: ClassVar[str] = "schedule.aws_reconcile.v1"


@dataclass(frozen=True)
class Plan:
    """One job's schedule: a six-field cron (seconds first), in UTC unless `time_zone` is given."""

    tick: type[_Tick]
    cron: str
    time_zone: str | None = None

    @property
    def job(self) -> str:
        return self.tick.subject.split(".")[1]

    @property
    def subject(self) -> str:
        return PLAN_PREFIX + self.job

    def headers(self) -> dict[str, str]:
        headers = {"Nats-Schedule": self.cron, "Nats-Schedule-Target": self.tick.subject}
        if self.time_zone:
            headers["Nats-Schedule-Time-Zone"] = self.time_zone
        return headers

    def body(self) -> bytes:
        return self.tick(job=self.job).model_dump_json(include={"schema_version", "job"}).encode()


PLANS: tuple[Plan, ...] = (
    Plan(HourlyTickV1, "0 0 * * * *"),
    Plan(TierRecomputationDueV1, "0 15 3 * * *"),
    Plan(HousekeepingDueV1, "0 30 * * * *"),
    Plan(AwsPullDueV1, "0 */15 * * * *"),
    Plan(AwsReconciliationDueV1, "0 5 */6 * * *"),
)

EVENTS: tuple[type[Event], ...] = (HourlyTickV1, TierRecomputationDueV1, HousekeepingDueV1, AwsPullDueV1,
                                   AwsReconciliationDueV1)
