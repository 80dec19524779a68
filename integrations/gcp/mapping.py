"""A Partner Advantage opportunity export, row by row, onto `sync.opportunity.external.upserted.v1`:
pure functions, no I/O. Every bad row is named with its reasons; the file is published whole or not
at all (a partial import would leave the pipeline half a file newer)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from contracts import pipeline as pc
from contracts.sync import OpportunityExternalUpsertedV1
from runtime.csv_cells import unsafe_row

SOURCE = "gcp"
_EVENT_NAMESPACE = uuid.UUID("2f9d8b1e-63a4-4e0b-b6f4-57a1c3d2e8f0")
CLOCK_SKEW = timedelta(minutes=5)
MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000

# Our column -> the headers Partner Advantage exports use for it (matched without case or spaces).
COLUMNS: dict[str, tuple[str, ...]] = {
    "external_id": ("opportunity id", "opportunityid", "id"),
    "name": ("opportunity name", "name", "opportunity"),
    "customer": ("customer name", "customer", "account name", "end customer"),
    "stage": ("stage", "sales stage"),
    "status": ("status", "opportunity status"),
    "amount": ("deal size", "total contract value", "tcv", "amount"),
    "currency": ("currency", "currency code"),
    "expected_close_date": ("expected close date", "close date", "target close date"),
    "last_modified": ("last modified date", "last modified", "updated"),
    "created_at": ("created date", "created"),
}
REQUIRED = ("external_id", "name", "customer", "stage", "last_modified")
# Partner Advantage's sales stages onto the co-sell pipeline (its own name is kept in gcp.stage).
STAGES: dict[str, str] = {
    "qualifying": "Prospect", "prospect": "Prospect",
    "qualified": "Qualified",
    "proposal": "Technical Validation", "technical validation": "Technical Validation",
    "negotiating": "Business Validation", "negotiation": "Business Validation",
    "committed": "Committed", "commit": "Committed",
    "closed won": "Launched", "won": "Launched",
    "closed lost": "Closed Lost", "lost": "Closed Lost",
}
_STATUS = {s.value.lower(): s for s in pc.GcpStatus}
_ID = re.compile(r"^[\x21-\x7e]{1,200}$")


@dataclass
class Parsed:
    events: list[OpportunityExternalUpsertedV1] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason); row 1 is the header


def event_id(external_id: str, last_modified: datetime) -> uuid.UUID:
    """From gcp:id:last-modified: the same row imported twice is the same event."""
    return uuid.uuid5(_EVENT_NAMESPACE, f"{SOURCE}:{external_id}:{last_modified.astimezone(UTC).isoformat()}")


def _key(header: str) -> str:
    return re.sub(r"\s+", " ", header.strip().lower())


def header_map(header: list[str]) -> tuple[dict[str, int], list[str]]:
    """Our column -> its index, and what is wrong with the header."""
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        for ours, aliases in COLUMNS.items():
            if _key(name) in aliases and ours not in found:
                found[ours] = index
    missing = [c for c in REQUIRED if c not in found]
    return found, ([f"no column for {', '.join(missing)} (accepted headers: "
                    + "; ".join(f"{c}: {' / '.join(COLUMNS[c])}" for c in missing) + ")"] if missing else [])


def _moment(text: str, what: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        try:
            value = datetime.combine(date.fromisoformat(text.strip()), datetime.min.time())
        except ValueError:
            raise ValueError(f"{what} {text[:40]!r} is not a date or time (2026-11-30 or 2026-11-30T12:00:00Z)"
                             ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _amount(text: str) -> Decimal:
    cleaned = text.strip().replace(",", "")
    if not cleaned:
        return Decimal("0.00")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"amount {text[:40]!r} is not a number") from None
    if not value.is_finite() or value < 0 or "e" in cleaned.lower():
        raise ValueError(f"amount {text[:40]!r} is not an amount")
    return value


def row_event(cells: dict[str, str], now: datetime) -> OpportunityExternalUpsertedV1:
    ident = cells["external_id"].strip()
    if not _ID.fullmatch(ident):
        raise ValueError(f"opportunity id {ident[:40]!r} must be 1 to 200 printable characters without spaces")
    modified = _moment(cells["last_modified"], "last modified")
    if modified > now + CLOCK_SKEW:
        raise ValueError(f"last modified {modified.isoformat()} is in the future")
    gcp_stage = cells["stage"].strip()
    stage = STAGES.get(_key(gcp_stage))
    if stage is None:
        raise ValueError(f"stage {gcp_stage[:40]!r} is not one of {', '.join(sorted({k.title() for k in STAGES}))}")
    status_text = cells.get("status", "").strip()
    status = _STATUS.get(status_text.lower()) if status_text else None
    if status_text and status is None:
        raise ValueError(f"status {status_text[:40]!r} is not one of {', '.join(s.value for s in pc.GcpStatus)}")
    try:
        return OpportunityExternalUpsertedV1(
            event_id=event_id(ident, modified), source=SOURCE, external_id=ident, last_modified=modified,
            created_at=_moment(cells["created_at"], "created") if cells.get("created_at", "").strip() else None,
            name=cells["name"].strip(), customer=cells["customer"].strip(), stage=stage, pipeline=pc.COSELL,
            amount=_amount(cells.get("amount", "")), currency=(cells.get("currency") or "USD").strip() or "USD",
            expected_close_date=cells.get("expected_close_date", "").strip() or None,
            deal_model=pc.DealModel.cosell, gcp=pc.GcpState(status=status, stage=gcp_stage[:100] or None),
        )
    except ValidationError as exc:
        return _raise(exc)


def _raise(exc: ValidationError) -> Any:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    raise ValueError(f"{where}: {str(first['msg']).removeprefix('Value error, ')}") from None


def parse(data: bytes, now: datetime | None = None) -> Parsed:
    """Every row of an export as an event, or the reasons it is not one."""
    now = now or datetime.now(UTC)
    out = Parsed()
    if len(data) > MAX_BYTES:
        out.errors.append((0, f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB"))
        return out
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        out.errors.append((0, "the file is not UTF-8 text"))
        return out
    if "\x00" in text:
        out.errors.append((0, "the file holds a NUL character: not a CSV export"))
        return out
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        out.errors.append((1, "the file is empty"))
        return out
    columns, problems = header_map(header)
    if problems:
        out.errors += [(1, p) for p in problems]
        return out
    seen: dict[str, int] = {}
    try:
        for number, row in enumerate(reader, start=2):
            if number - 1 > MAX_ROWS:
                out.errors.append((number, f"more than {MAX_ROWS} rows; split the file"))
                break
            if not any(cell.strip() for cell in row):
                continue
            cells = unsafe_row(row)
            values = {ours: cells[i] if i < len(cells) else "" for ours, i in columns.items()}
            try:
                event = row_event(values, now)
            except ValueError as exc:
                out.errors.append((number, str(exc)))
                continue
            if event.external_id in seen:
                out.errors.append((number, f"opportunity {event.external_id} is on row {seen[event.external_id]} too"))
                continue
            seen[event.external_id] = number
            out.events.append(event)
    except csv.Error as exc:
        out.errors.append((reader.line_num, f"not a CSV file: {exc}"))
    return out
