"""The alert rules: one entry each. A rule says what triggers it (events, or the hourly scan), who
receives it, how long the same alert stays quiet after it fired (its window), and turns its trigger
into `Fired` verdicts that say why and link to the page to look at. Pure: no I/O.

A new rule is one entry in RULES. An event-triggered rule also needs its event in `on` — the
service subscribes to every event some rule names (handlers.py builds the subscriptions from here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from contracts import contacts as ct
from contracts import deadlines as dl
from contracts import pipeline as p
from contracts import sync as sy
from contracts import week as w
from contracts.base import Event
from runtime.formatting import money
from services.notifications.domain import Audience, Fired, in_reporting_currency


@dataclass(frozen=True)
class DealView:
    """What the scans know of an open deal."""

    id: str
    name: str
    customer: str
    stage: str
    stage_name: str
    amount: Decimal
    currency: str
    owner: str | None
    stage_entered_at: datetime
    ace_status: str | None
    ace_due: date | None


@dataclass(frozen=True)
class DeadlineView:
    """An open deadline another service published (contracts/deadlines.py), its latest state."""

    key: str
    kind: str
    title: str
    due_date: date
    time_zone: str
    link: str
    owner: str | None
    amount_at_stake: Decimal | None
    currency: str | None


@dataclass(frozen=True)
class SyncView:
    """A sync worker's source, as its newest pass left it (contracts/sync.py SyncRunFinishedV1)."""

    source: str
    catalog: str
    last_run_at: datetime
    last_ok: bool
    last_success_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class ScanInput:
    now: datetime
    open_deals: Sequence[DealView]
    settings: dict[str, Any]
    open_deadlines: Sequence[DeadlineView] = ()
    syncs: Sequence[SyncView] = ()


EventRule = Callable[[Event, dict[str, Any]], list[Fired]]
ScanRule = Callable[[ScanInput], list[Fired]]


@dataclass(frozen=True)
class Rule:
    key: str
    title: str
    description: str
    audience: Audience
    window: timedelta
    on: tuple[type[Event], ...] = ()
    on_event: EventRule | None = None
    scan: ScanRule | None = None
    params: dict[str, Any] = field(default_factory=dict)


def _deal_link(deal_id: object) -> str:
    return f"/opportunities/{deal_id}"


# ---------------------------------------------------------------------------------- the rules' logic

BIG_DEAL = Decimal("50000")


def big_deal_won(event: Event, settings: dict[str, Any]) -> list[Fired]:
    assert isinstance(event, p.OpportunityWonV1)
    reporting = settings.get("reporting_currency", "USD")
    value = in_reporting_currency(event.amount, event.currency, settings)
    threshold = Decimal(str(RULES_BY_KEY["big_deal_won"].params["threshold"]))
    if value is None or value < threshold:
        return []
    converted = "" if event.currency == reporting else f" ({money(value, reporting)} in {reporting})"
    return [Fired(
        key=str(event.opportunity_id),
        title=f"Big deal won: {event.customer} {money(event.amount, event.currency)}",
        why=(f"{event.customer} was won for {money(event.amount, event.currency)}{converted} in the "
             f"{event.pipeline} pipeline, at or above the big-deal line of {money(threshold, reporting)}."),
        link=_deal_link(event.opportunity_id), owner=event.owner)]


def ace_action_required(event: Event, settings: dict[str, Any]) -> list[Fired]:
    assert isinstance(event, p.OpportunityCreatedV1 | p.OpportunityUpdatedV1 | p.OpportunityStageChangedV1)
    o = event.opportunity
    if o.ace is None or o.ace.review_status != p.AceReviewStatus.action_required or o.outcome != p.Outcome.open:
        return []
    due = o.ace.action_due_date
    by = f"by {due.isoformat()}" if due else "(AWS gave no date)"
    comment = f" The reviewer wrote: \u201c{o.ace.reviewer_comments[:300]}\u201d" if o.ace.reviewer_comments else ""
    return [Fired(
        key=f"{o.id}:{due or 'no-date'}",
        title=f"ACE Action Required: {o.name}",
        why=f"AWS marked the co-sell opportunity {o.name} ({o.customer}) Action Required; answer {by}.{comment}",
        link=_deal_link(o.id), owner=o.owner)]


def ace_deadline_near(scan: ScanInput) -> list[Fired]:
    days = int(RULES_BY_KEY["ace_deadline_near"].params["days"])
    today = scan.now.date()
    fired = []
    for d in scan.open_deals:
        if d.ace_status != p.AceReviewStatus.action_required.value or d.ace_due is None:
            continue
        left = (d.ace_due - today).days
        if left <= days:
            when = "is overdue" if left < 0 else "is today" if left == 0 else f"is in {left} day{'s' * (left != 1)}"
            fired.append(Fired(
                key=f"{d.id}:{d.ace_due.isoformat()}",
                title=f"ACE deadline {d.ace_due.isoformat()}: {d.name}",
                why=f"The Action Required answer to AWS for {d.name} ({d.customer}) is due {d.ace_due.isoformat()}, "
                    f"which {when}; a missed answer can get the opportunity rejected.",
                link=_deal_link(d.id), owner=d.owner))
    return fired


def deal_stuck(scan: ScanInput) -> list[Fired]:
    per_stage: dict[str, int] = RULES_BY_KEY["deal_stuck"].params["days_by_stage"]
    default = int(scan.settings.get("stuck_after_days", 30))
    fired = []
    for d in scan.open_deals:
        limit = int(per_stage.get(d.stage, default))
        days = (scan.now - d.stage_entered_at).days
        if days > limit:
            fired.append(Fired(
                key=f"{d.id}:{d.stage}:{d.stage_entered_at.date().isoformat()}",
                title=f"Stuck in {d.stage_name}: {d.name}",
                why=f"{d.name} ({d.customer}, {money(d.amount, d.currency)}) has been in {d.stage_name} for "
                    f"{days} days, longer than the {limit} days a deal should stay there.",
                link=_deal_link(d.id), owner=d.owner))
    return fired


def _deadlines(rule_key: str, scan: ScanInput) -> list[Fired]:
    """Reminders of open deadlines of the rule's kinds: once when the first lead time is reached, again at
    each shorter one, and once when overdue (the key names the step, so each step fires once)."""
    params = RULES_BY_KEY[rule_key].params
    kinds: set[str] = set(params["kinds"])
    steps: list[int] = sorted(params["days_before"], reverse=True)
    fired = []
    for d in scan.open_deadlines:
        if d.kind not in kinds:
            continue
        left = dl.days_left(d.due_date, d.time_zone, scan.now)
        reached = [s for s in steps if left <= s]
        if not reached:
            continue
        step = "overdue" if left < 0 else f"{min(reached)}d"
        when = (f"was due {d.due_date.isoformat()} ({-left} day{'s' * (left != -1)} ago)" if left < 0
                else f"is due {d.due_date.isoformat()}" + (" (today)" if left == 0 else f", in {left} days"))
        stake = f"; {money(d.amount_at_stake, d.currency)} at stake" if d.amount_at_stake and d.currency else ""
        fired.append(Fired(key=f"{d.key}:{d.due_date.isoformat()}:{step}", title=f"{d.title}: due {d.due_date}",
                           why=f"{d.title} {when} ({d.time_zone}){stake}.", link=d.link, owner=d.owner))
    return fired


def funding_deadline(scan: ScanInput) -> list[Fired]:
    return _deadlines("funding_deadline", scan)


def competency_renewal(scan: ScanInput) -> list[Fired]:
    return _deadlines("competency_renewal", scan)


def task_carried(event: Event, settings: dict[str, Any]) -> list[Fired]:
    assert isinstance(event, w.TaskCarriedV1)
    t = event.task
    if t.carried < w.CARRIED_FLAG or t.status != w.TaskStatus.open:
        return []
    return [Fired(key=str(t.id), title=f"Carried {t.carried} times: {t.title}",
                  why=f"“{t.title}” has been carried unfinished into {t.carried} weekly meetings since "
                      f"the week of {t.first_week.isoformat()} (due {t.due_date.isoformat()}): finish it, hand it "
                      "over or drop it.",
                  link=f"/week?week={event.to_week.isoformat()}", owner=t.owner)]


def contact_cooling(event: Event, settings: dict[str, Any]) -> list[Fired]:
    assert isinstance(event, ct.ContactCoolingV1)
    days = event.days_until_cold
    when = ("has gone cold" if days <= 0 else f"goes cold in {days} day{'s' * (days != 1)} "
            f"({event.cold_at.date().isoformat()})")
    touch = (f"last touched {event.last_touch_at.date().isoformat()}" if event.last_touch_at
             else "never touched")
    stake = f"; {money(event.value_at_stake, event.currency)} of open pipeline depends on them" \
        if event.value_at_stake else ""
    return [Fired(key=f"{event.contact_id}:{event.cold_at.date().isoformat()}",
                  title=f"Crucial contact cooling: {event.contact_name} ({event.partner_name})",
                  why=f"{event.contact_name} at {event.partner_name}, a crucial contact, {when}: strength "
                      f"{event.score} against a cold line of {event.cold_threshold}, {touch}{stake}.",
                  link=event.link, owner=event.owner)]


_SOURCE_NAMES = {"aws": "AWS Partner Central", "gcp": "Google Cloud", "azure": "Microsoft"}


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} minutes" if minutes < 120 else f"{minutes // 60} hours" if minutes < 2880 \
        else f"{minutes // 1440} days"


def sync_stale(scan: ScanInput) -> list[Fired]:
    """A source whose last good pass is older than the stale line (or that has run but never well for
    that long). The key is the episode — the last success it is stale since — so it fires once per
    episode: a good pass ends it, and the next staleness is a new one."""
    fired = []
    for x in scan.syncs:
        since = x.last_success_at or x.last_run_at
        if scan.now - since <= sy.STALE_AFTER:
            continue
        name = f"{_SOURCE_NAMES.get(x.source, x.source)} ({x.catalog})"
        good = f"its last good pass ended {_ago(scan.now - since)} ago ({since.isoformat(timespec='minutes')})" \
            if x.last_success_at else f"no pass has succeeded since its first run {_ago(scan.now - since)} ago"
        last = (f" The last pass, at {x.last_run_at.isoformat(timespec='minutes')}, failed: {x.last_error[:300]}"
                if not x.last_ok and x.last_error else
                " No pass has ended since: the worker may be down." if x.last_run_at <= since else "")
        fired.append(Fired(
            key=f"{x.source}:{x.catalog}:{x.last_success_at.isoformat() if x.last_success_at else 'never'}",
            title=f"Sync stale: {name}",
            why=f"The {name} sync is stale: {good}, longer than the {_ago(sy.STALE_AFTER)} a sync may go "
                f"without one.{last}",
            link="/sync", owner=None))
    return fired


# ---------------------------------------------------------------------------------------- the table

RULES: tuple[Rule, ...] = (
    Rule("deal_stuck", "Deal stuck in a stage",
         "An open deal has stayed in its stage longer than the stage allows (the pipeline's stuck_after_days, "
         "or a per-stage limit here); repeated weekly while it stays.",
         Audience.owner_and_admins, timedelta(days=7), scan=deal_stuck,
         params={"days_by_stage": {"negotiation": 21, "committed": 21}}),
    Rule("ace_action_required", "ACE Action Required",
         "AWS Partner Central asks for changes to a co-sell opportunity before its review goes on.",
         Audience.owner_and_admins, timedelta(days=30),
         on=(p.OpportunityCreatedV1, p.OpportunityUpdatedV1, p.OpportunityStageChangedV1),
         on_event=ace_action_required),
    Rule("ace_deadline_near", "ACE Action Required deadline approaching",
         "The date by which AWS wants the Action Required answer is within a few days, or past.",
         Audience.owner_and_admins, timedelta(days=30), scan=ace_deadline_near, params={"days": 3}),
    Rule("big_deal_won", "Big deal won",
         "A deal was won at or above the big-deal line (in the pipeline's reporting currency).",
         Audience.leads, timedelta(days=365), on=(p.OpportunityWonV1,), on_event=big_deal_won,
         params={"threshold": BIG_DEAL}),
    Rule("funding_deadline", "Funding deadline approaching",
         "A fund request expires, or its cash claim or a milestone claim falls due, soon or already.",
         Audience.owner_and_admins, timedelta(days=60), scan=funding_deadline,
         params={"kinds": (dl.DeadlineKind.fund_request_expiry, dl.DeadlineKind.fund_claim_due,
                           dl.DeadlineKind.milestone_claim_due), "days_before": (14, 3)}),
    Rule("competency_renewal", "Competency renewal approaching",
         "A hyperscaler competency lapses, or an item of its renewal checklist is due, soon or already.",
         Audience.owner_and_admins, timedelta(days=90), scan=competency_renewal,
         params={"kinds": (dl.DeadlineKind.competency_renewal, dl.DeadlineKind.competency_requirement_due),
                 "days_before": (60, 14, 3)}),
    Rule("contact_cooling", "Crucial contact cooling",
         "A contact marked crucial will go cold within the warning window (or has), as the relationships "
         "service computes strength.",
         Audience.owner_and_admins, timedelta(days=14), on=(ct.ContactCoolingV1,), on_event=contact_cooling),
    Rule("sync_stale", "Sync stale",
         "A sync worker's source (AWS Partner Central, ...) has had no good pass for longer than the stale "
         "line of the sync page (contracts/sync.py STALE_AFTER); once per episode, until a good pass.",
         Audience.admins, timedelta(days=365), scan=sync_stale),
    Rule("task_carried", "Task carried three times",
         "An open task has been carried unfinished into the weekly meeting three times or more.",
         Audience.owner_and_admins, timedelta(days=365), on=(w.TaskCarriedV1,), on_event=task_carried),
)

RULES_BY_KEY: dict[str, Rule] = {r.key: r for r in RULES}

# Rules waiting for an event in contracts/ (docs/notifications.md): quarterly target turned at risk (the
# forecast's owner publishing it), dead letters waiting.


def event_rules(event_type: type[Event]) -> list[Rule]:
    return [r for r in RULES if event_type in r.on]


def triggering_events() -> list[type[Event]]:
    seen: dict[str, type[Event]] = {}
    for rule in RULES:
        for event in rule.on:
            seen.setdefault(event.subject, event)
    return list(seen.values())
