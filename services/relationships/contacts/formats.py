"""The file formats contacts and meetings arrive in, turned into plain values (no I/O): CSV rows
(HubSpot and Monday exports name their columns in many ways), vCard (RFC 6350; 2.1 and 3.0 read too)
and iCalendar (RFC 5545) events. References to stored data (organisations, owners) are checked by the
service.

Why our own small readers: a vCard or .ics export is lines of `NAME;PARAMS:VALUE` folded at 75
characters; what we need of them (names, emails, phones, organisation, title; an event's UID, start,
summary and attendees) is a few dozen lines, smaller than a dependency and its upgrades.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contracts.contacts import OWNER_COLUMNS, column_key
from contracts.fields import EARLIEST, LATEST

# ------------------------------------------------------------------------------------------- CSV

# Our column ← the names exports use for it (lower case, spaces and dashes as underscores).
ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "full_name", "contact_name", "contact", "item", "item_name"),
    "first_name": ("first_name", "firstname", "given_name"),
    "last_name": ("last_name", "lastname", "surname", "family_name"),
    "email": ("email", "email_address", "e_mail", "work_email"),
    "phone": ("phone", "phone_number", "mobile", "mobile_phone_number", "work_phone"),
    "organisation": ("organisation", "organization", "company", "company_name", "partner", "associated_company",
                     "account"),
    "partner_id": ("partner_id", "organisation_id", "organization_id"),
    "role": ("role", "partner_role", "contact_role"),
    "title": ("title", "job_title", "position"),
    "territory": ("territory", "region", "geo"),
    "segment": ("segment", "industry_segment"),
    "seniority": ("seniority", "level"),
    "owner": OWNER_COLUMNS,
    "crucial": ("crucial", "key_contact", "important"),
    "reports_to": ("reports_to", "manager_email", "reports_to_email"),
}
_TRUE = {"yes", "y", "true", "1", "x", "crucial", "✓"}
_FALSE = {"", "no", "n", "false", "0"}


def map_columns(columns: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Our field → column index, and (column, message) for columns read two ways. Columns we do not
    know are ignored: exports carry dozens (lifecycle stage, last activity, ...)."""
    found: dict[str, int] = {}
    problems: list[tuple[str, str]] = []
    lookup = {alias: ours for ours, aliases in ALIASES.items() for alias in aliases}
    for i, col in enumerate(columns):
        ours = lookup.get(column_key(col))
        if ours is None:
            continue
        if ours in found:
            problems.append((col, f"column {col!r} says the same as column {columns[found[ours]]!r}"))
            continue
        found[ours] = i
    if "name" not in found and "first_name" not in found and "last_name" not in found:
        problems.append(("name", "the file needs a name column (name, or first name and last name)"))
    return found, problems


def cell(row: list[str], columns: dict[str, int], key: str) -> str:
    i = columns.get(key)
    return row[i].strip() if i is not None and i < len(row) else ""


def flag(value: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{value!r} is not yes or no")


def full_name(row: list[str], columns: dict[str, int]) -> str:
    name = cell(row, columns, "name")
    if name:
        return name
    return " ".join(p for p in (cell(row, columns, "first_name"), cell(row, columns, "last_name")) if p)


# ----------------------------------------------------------------------------------- line formats


def unfold(text: str) -> list[str]:
    """Content lines: a line starting with a space or tab continues the one before (RFC 5545 3.1)."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw.strip():
            lines.append(raw)
    return lines


@dataclass
class Prop:
    name: str
    params: dict[str, str]
    value: str


def parse_line(line: str) -> Prop | None:
    head, sep, value = _split_value(line)
    if not sep:
        return None
    parts = head.split(";")
    name = parts[0].split(".")[-1].upper()  # vCard groups: item1.EMAIL
    params: dict[str, str] = {}
    for p in parts[1:]:
        key, _, v = p.partition("=")
        params[key.upper()] = v.strip('"') if v else key.upper()  # vCard 2.1: TEL;WORK
    return Prop(name, params, value)


def _split_value(line: str) -> tuple[str, str, str]:
    """Split at the first colon outside a quoted parameter value."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            return line[:i], ":", line[i + 1:]
    return line, "", ""


def unescape(value: str) -> str:
    return (value.replace("\\n", "\n").replace("\\N", "\n").replace("\\,", ",").replace("\\;", ";")
            .replace("\\\\", "\\"))


# ------------------------------------------------------------------------------------------ vCard


@dataclass
class Card:
    number: int  # 1-based position in the file, for error messages
    name: str = ""
    email: str = ""
    phone: str = ""
    organisation: str = ""
    title: str = ""
    role: str = ""


def vcards(text: str) -> tuple[list[Card], list[tuple[int, str]]]:
    cards: list[Card] = []
    errors: list[tuple[int, str]] = []
    current: Card | None = None
    structured = ""
    for line in unfold(text):
        prop = parse_line(line)
        if prop is None:
            continue
        if prop.name == "BEGIN" and prop.value.strip().upper() == "VCARD":
            current, structured = Card(number=len(cards) + 1), ""
            continue
        if current is None:
            continue
        if prop.name == "END" and prop.value.strip().upper() == "VCARD":
            if not current.name and structured:
                family, _, rest = structured.partition(";")
                given = rest.split(";", 1)[0]
                current.name = " ".join(p for p in (unescape(given).strip(), unescape(family).strip()) if p)
            if not current.name:
                errors.append((current.number, "the card has no name (FN or N)"))
            cards.append(current)
            current = None
            continue
        value = unescape(prop.value).strip()
        if prop.name == "FN":
            current.name = value
        elif prop.name == "N":
            structured = prop.value
        elif prop.name == "EMAIL" and not current.email:
            current.email = value.removeprefix("mailto:")
        elif prop.name == "TEL" and not current.phone:
            current.phone = value.removeprefix("tel:")
        elif prop.name == "ORG":
            current.organisation = unescape(prop.value.split(";", 1)[0]).strip()
        elif prop.name == "TITLE":
            current.title = value
        elif prop.name == "ROLE":
            current.role = value
    if current is not None:
        errors.append((current.number, "the card is not closed (END:VCARD missing)"))
    return cards, errors


# -------------------------------------------------------------------------------------- iCalendar


@dataclass
class CalendarEvent:
    number: int
    uid: str = ""
    summary: str = ""
    start: datetime | None = None
    attendees: list[str] = field(default_factory=list)
    organizer: str = ""
    cancelled: bool = False
    problem: str = ""


def _moment(prop: Prop) -> datetime:
    raw = prop.value.strip()
    if prop.params.get("VALUE") == "DATE" or re.fullmatch(r"\d{8}", raw):
        day = datetime.strptime(raw, "%Y%m%d").date()
        return _bounded(datetime.combine(day, time(12), tzinfo=UTC))
    if raw.endswith("Z"):
        return _bounded(datetime.strptime(raw, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))
    local = datetime.strptime(raw, "%Y%m%dT%H%M%S")
    zone = prop.params.get("TZID")
    try:
        tz = ZoneInfo(zone) if zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        # Outlook writes Windows zone names ("Pacific Standard Time"); a meeting off by hours still
        # lands on the right day for a relationship score.
        tz = UTC
    return _bounded(local.replace(tzinfo=tz).astimezone(UTC))


def _bounded(at: datetime) -> datetime:
    if not EARLIEST <= at.date() <= LATEST:
        raise ValueError(f"the date {at.date()} is outside {EARLIEST} to {LATEST}")
    return at


def _mail(value: str) -> str:
    v = value.strip()
    return v[7:].strip() if v.lower().startswith("mailto:") else ""


def calendar_events(text: str) -> list[CalendarEvent]:
    events: list[CalendarEvent] = []
    current: CalendarEvent | None = None
    depth = 0  # VALARM and other components nested in an event
    for line in unfold(text):
        prop = parse_line(line)
        if prop is None:
            continue
        kind = prop.value.strip().upper()
        if prop.name == "BEGIN":
            if kind == "VEVENT" and current is None:
                current = CalendarEvent(number=len(events) + 1)
            elif current is not None:
                depth += 1
            continue
        if prop.name == "END":
            if current is not None and depth:
                depth -= 1
            elif current is not None and kind == "VEVENT":
                if not current.uid:
                    current.problem = current.problem or "the event has no UID"
                elif current.start is None and not current.problem:
                    current.problem = "the event has no start (DTSTART)"
                events.append(current)
                current = None
            continue
        if current is None or depth:
            continue
        if prop.name == "UID":
            current.uid = prop.value.strip()
        elif prop.name == "SUMMARY":
            current.summary = unescape(prop.value).strip()
        elif prop.name == "DTSTART":
            try:
                current.start = _moment(prop)
            except ValueError as exc:
                current.problem = f"DTSTART {prop.value.strip()!r}: {exc}"
        elif prop.name == "ATTENDEE":
            if _mail(prop.value):
                current.attendees.append(_mail(prop.value))
        elif prop.name == "ORGANIZER":
            current.organizer = _mail(prop.value)
        elif prop.name == "STATUS" and kind == "CANCELLED":
            current.cancelled = True
    return events

