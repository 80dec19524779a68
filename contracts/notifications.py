"""Commands of the notifications service: the in-app feed, preferences, the people it writes to, and
the deliveries an admin watches and retries. Alerts are raised from other services' events and from
schedule ticks (contracts/schedules.py); the rules are listed by `ListRules`.

Every command naming a user carries the user id the gateway took from the verified principal; the
service never trusts a user id for anything but whose feed or preferences it is."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, Field

from contracts.base import Command
from contracts.fields import Offset, line

UserId = line(64, 1, description="The user's id in the gateway.")
RuleKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", max_length=40)]
LocalHour = Annotated[int, Field(ge=0, le=23, description="An hour of the day in the user's time zone.")]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)") from exc
    return value


TimeZone = Annotated[str, Field(max_length=64, examples=["America/Los_Angeles"]), AfterValidator(_zone)]


class Role(StrEnum):
    admin = "admin"
    manager = "manager"
    member = "member"
    viewer = "viewer"


# ------------------------------------------------------------------------------------------- people


class Member(BaseModel):
    """A person the service may write to, as the gateway's directory knows them."""

    user_id: UserId
    email: line(320, 3)
    name: line(200)
    role: Role
    active: bool = True
    time_zone: TimeZone = "UTC"


class PeopleSynced(BaseModel):
    people: int
    deactivated: int


class SyncPeople(Command):
    """Replace the service's list of people with the gateway's directory (who exists, their email, role
    and time zone). People missing from the list stop receiving anything."""

    subject: ClassVar[str] = "cmd.notifications.people.sync"
    result: ClassVar[type[BaseModel]] = PeopleSynced

    people: list[Member] = Field(max_length=5000)


# -------------------------------------------------------------------------------------------- rules


class Channel(StrEnum):
    email = "email"
    in_app = "in_app"


class RuleInfo(BaseModel):
    key: str
    title: str
    description: str
    trigger: str = Field(description="The event subject, or 'schedule' for rules evaluated on the hourly tick.")
    audience: str
    window_hours: int = Field(description="The same alert is not sent again within this window.")


class RuleList(BaseModel):
    items: list[RuleInfo]


class ListRules(Command):
    """Every alert rule: what triggers it, who receives it and how long it stays quiet after firing."""

    subject: ClassVar[str] = "cmd.notifications.rule.list"
    result: ClassVar[type[BaseModel]] = RuleList


# --------------------------------------------------------------------------------------------- feed


class Alert(BaseModel):
    id: UUID
    rule: str
    title: str
    why: str = Field(description="Why it fired, in a sentence.")
    link: str = Field(description="The page to look at (a path of the web UI).")
    created_at: datetime
    read_at: datetime | None = None


class Feed(BaseModel):
    items: list[Alert]
    total: int
    unread: int
    offset: int
    limit: int


class ListFeed(Command):
    """A user's alerts, newest first, with the number unread."""

    subject: ClassVar[str] = "cmd.notifications.feed.list"
    result: ClassVar[type[BaseModel]] = Feed

    user_id: UserId
    unread_only: bool = False
    offset: Offset = 0
    limit: int = Field(default=50, ge=0, le=200, description="0 returns only the counts.")


class MarkedRead(BaseModel):
    marked: int


class MarkAlertsRead(Command):
    """Mark some of a user's alerts read (or all of them when `alert_ids` is not given)."""

    subject: ClassVar[str] = "cmd.notifications.feed.mark_read"
    result: ClassVar[type[BaseModel]] = MarkedRead

    user_id: UserId
    alert_ids: list[UUID] | None = Field(default=None, max_length=500)


# -------------------------------------------------------------------------------------- preferences


class Preferences(BaseModel):
    """What a user receives: email and in-app per rule, the weekly digest, quiet hours (local time)."""

    user_id: str
    email: bool = True
    digest: bool = Field(default=False, description="The weekly digest, Monday 08:00 local time (on for admins "
                                                     "unless they turn it off).")
    quiet_from: LocalHour | None = Field(default=None, description="Emails wait from this hour ...")
    quiet_until: LocalHour | None = Field(default=None, description="... until this hour (local time).")
    muted_rules: list[RuleKey] = Field(default_factory=list, max_length=50)
    time_zone: str = Field(default="UTC", description="The user's time zone (set on the account page).")


class GetPreferences(Command):
    """A user's notification preferences (defaults when never set)."""

    subject: ClassVar[str] = "cmd.notifications.preferences.get"
    result: ClassVar[type[BaseModel]] = Preferences

    user_id: UserId


class SetPreferences(Command):
    """Replace a user's notification preferences."""

    subject: ClassVar[str] = "cmd.notifications.preferences.set"
    result: ClassVar[type[BaseModel]] = Preferences

    user_id: UserId
    email: bool = True
    digest: bool = False
    quiet_from: LocalHour | None = None
    quiet_until: LocalHour | None = None
    muted_rules: list[RuleKey] = Field(default_factory=list, max_length=50)


class DigestQueued(BaseModel):
    to: str
    week: str


class SendDigestNow(Command):
    """Email a person this week's digest now, to them only (to see it without waiting for Monday)."""

    subject: ClassVar[str] = "cmd.notifications.digest.send_now"
    result: ClassVar[type[BaseModel]] = DigestQueued

    user_id: UserId


# --------------------------------------------------------------------------------------- deliveries


class DeliveryStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"


class Delivery(BaseModel):
    id: UUID
    kind: str = Field(description="alert or digest")
    rule: str | None
    to: str
    subject: str
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None
    created_at: datetime


class DeliveryList(BaseModel):
    items: list[Delivery]
    total: int
    offset: int
    limit: int


class ListDeliveries(Command):
    """Emails the service has sent, is trying to send, or gave up on, newest first."""

    subject: ClassVar[str] = "cmd.notifications.delivery.list"
    result: ClassVar[type[BaseModel]] = DeliveryList

    status: DeliveryStatus | None = None
    offset: Offset = 0
    limit: int = Field(default=50, ge=1, le=200)


class RetryDelivery(Command):
    """Try a failed email again now."""

    subject: ClassVar[str] = "cmd.notifications.delivery.retry"
    result: ClassVar[type[BaseModel]] = Delivery

    delivery_id: UUID

