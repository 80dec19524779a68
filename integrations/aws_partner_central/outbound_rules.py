"""What may go out to ACE, and when: pure rules, no I/O.

AWS's rules for UpdateOpportunity ("Working with opportunity updates", Partner Central API guide):
nothing may change while `Lifecycle.ReviewStatus` is Submitted or In review (the record is locked for
AWS's review), nor once it is Rejected; under Action Required only a short list of fields is open.
An edit made in PartnerOps while the record is locked waits (queued, shown as queued) and goes out
when the lock lifts; the fields Action Required does not open wait for the review to end.

An edit is the deal's state in PartnerOps, compared with what the sync last published from ACE (the
deal's own echo of ACE changes nothing). A field AWS changed too, after the edit was made, is a
conflict AWS's newer value wins (shown with the edit); a review ending is no conflict, so an edit
queued behind a lock goes out when the lock lifts.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from contracts import pipeline as pc
from contracts.sync import OpportunityExternalUpsertedV1

# The PartnerOps fields an edit carries, each with where it lives in ACE.
FIELDS = ("stage", "expected_close_date", "amount", "currency", "next_steps", "name")
LOCKED = {"Submitted", "In review", "In Review", "Rejected"}
ACTION_REQUIRED = "Action Required"
# Of ours, what Action Required opens (LifeCycle.TargetCloseDate, Project.ExpectedCustomerSpend.*).
OPEN_UNDER_ACTION_REQUIRED = frozenset({"expected_close_date", "amount", "currency"})
# Read-only parts of an opportunity: never sent back.
_READ_ONLY_LIFECYCLE = ("ReviewStatus", "ReviewComments", "ReviewStatusReason", "NextStepsHistory")
_UPDATABLE = ("PrimaryNeedsFromAws", "NationalSecurity", "PartnerOpportunityIdentifier", "Customer", "Project",
              "OpportunityType", "Marketing", "SoftwareRevenue", "LifeCycle")
_STAGE_NAMES = {s.key: s.name for s in pc.ACE_STAGE_SET.stages}
_STAGE_KEYS = {s.name: s.key for s in pc.ACE_STAGE_SET.stages}


def fields_of_event(event: OpportunityExternalUpsertedV1) -> dict[str, str | None]:
    """The edit fields of a version the sync published (what the deal holds when nobody edited it)."""
    return {
        "stage": _STAGE_KEYS.get(event.stage, event.stage),
        "expected_close_date": event.expected_close_date.isoformat() if event.expected_close_date else None,
        "amount": f"{event.amount:.2f}",
        "currency": event.currency,
        "next_steps": event.ace.next_steps if event.ace else None,
        "name": event.name,
    }


def fields_of_deal(deal: pc.Opportunity) -> dict[str, str | None]:
    """The same fields of the deal as PartnerOps holds it now."""
    return {
        "stage": deal.stage,
        "expected_close_date": deal.expected_close_date.isoformat() if deal.expected_close_date else None,
        "amount": f"{deal.amount:.2f}",
        "currency": deal.currency,
        "next_steps": deal.ace.next_steps if deal.ace else None,
        "name": deal.name,
    }


def changed(published: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    return {k: now[k] for k in FIELDS if now.get(k) != published.get(k)}


@dataclass
class Plan:
    action: str  # send | hold | superseded | nothing
    reason: str = ""
    request: dict[str, Any] | None = None
    sent: tuple[str, ...] = ()
    held: tuple[str, ...] = ()
    fields: dict[str, Any] = field(default_factory=dict)


def plan_update(current: dict[str, Any], edit: dict[str, Any], edited_at: datetime,
                base: dict[str, Any] | None = None) -> Plan:
    """What to do with an edit (field -> wanted value) of the ACE record `current` (GetOpportunity).
    `base` is what the deal held from ACE when it was edited: a field AWS changed since is a conflict,
    and the newer change wins (AWS's when its record was modified after the edit)."""
    modified: datetime = current["LastModifiedDate"]
    now = current_values(current)
    conflicts = [k for k in edit if base is not None and k in base and now.get(k) != base[k]]
    dropped: list[str] = []
    if conflicts and modified > edited_at:
        dropped = conflicts
        edit = {k: v for k, v in edit.items() if k not in conflicts}
        if not edit:
            return Plan("superseded", f"AWS changed {', '.join(dropped)} at {modified.isoformat()}, after this edit "
                                      f"({edited_at.isoformat()}): AWS's newer values are kept")
    note = f"AWS's newer {', '.join(dropped)} kept; " if dropped else ""
    status = (current.get("LifeCycle") or {}).get("ReviewStatus")
    if status in LOCKED:
        return Plan("hold", f"{note}ACE has it {status}: AWS allows no change until the review ends",
                    held=tuple(edit), fields=edit)
    wanted = {k: v for k, v in edit.items() if _differs(current, k, v)}
    if not wanted:
        return Plan("nothing", f"{note}ACE holds these values already")
    held: tuple[str, ...] = ()
    if status == ACTION_REQUIRED:
        held = tuple(k for k in wanted if k not in OPEN_UNDER_ACTION_REQUIRED)
        wanted = {k: v for k, v in wanted.items() if k in OPEN_UNDER_ACTION_REQUIRED}
        if not wanted:
            return Plan("hold", f"{note}Action Required opens only the close date and the expected spend",
                        held=held, fields={k: edit[k] for k in held})
    return Plan("send", note, request=_request(current, wanted), sent=tuple(wanted), held=held,
                fields={k: edit[k] for k in held})


def current_values(current: dict[str, Any]) -> dict[str, str | None]:
    """ACE's record as the edit fields (amount yearly, like the published ones)."""
    life = current.get("LifeCycle") or {}
    project = current.get("Project") or {}
    first = (project.get("ExpectedCustomerSpend") or [{}])[0]
    return {
        "stage": _STAGE_KEYS.get(life.get("Stage") or "Prospect", life.get("Stage")),
        "expected_close_date": life.get("TargetCloseDate"),
        "amount": f"{Decimal(first.get('Amount') or '0') * 12:.2f}",
        "currency": first.get("CurrencyCode", "USD"),
        "next_steps": life.get("NextSteps"),
        "name": project.get("Title"),
    }


def _monthly(amount: str) -> str:
    return str((Decimal(amount) / 12).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _differs(current: dict[str, Any], key: str, value: Any) -> bool:
    if key == "amount":
        first = ((current.get("Project") or {}).get("ExpectedCustomerSpend") or [{}])[0]
        return f"{Decimal(first.get('Amount') or '0'):.2f}" != _monthly(value)
    return current_values(current)[key] != value


def _request(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """UpdateOpportunity's parameters: the current record with the wanted fields changed (UpdateOpportunity
    replaces the record, so what is not ours is sent back as AWS has it), read-only parts left out."""
    body = {k: copy.deepcopy(current[k]) for k in _UPDATABLE if k in current}
    life = body.setdefault("LifeCycle", {})
    for key in _READ_ONLY_LIFECYCLE:
        life.pop(key, None)
    project = body.setdefault("Project", {})
    if "stage" in wanted:
        life["Stage"] = _STAGE_NAMES.get(wanted["stage"], wanted["stage"])
    if wanted.get("expected_close_date"):
        life["TargetCloseDate"] = wanted["expected_close_date"]
    if "next_steps" in wanted:
        life["NextSteps"] = (wanted["next_steps"] or "")[:255]
    if "name" in wanted:
        project["Title"] = wanted["name"][:255]
    if "amount" in wanted or "currency" in wanted:
        spend = project.get("ExpectedCustomerSpend") or [{"Frequency": "Monthly", "TargetCompany": "AWS"}]
        first = dict(spend[0])
        if "amount" in wanted:
            first["Amount"] = _monthly(wanted["amount"])
        if "currency" in wanted:
            first["CurrencyCode"] = wanted["currency"]
        first.setdefault("Frequency", "Monthly")
        first.setdefault("TargetCompany", "AWS")
        project["ExpectedCustomerSpend"] = [first, *spend[1:]]
    return {"Identifier": current["Id"], "LastModifiedDate": current["LastModifiedDate"], **body}
