"""The CSV format of partners and opportunities, and how one row becomes a command's fields.

Spreadsheets are forgiving about case and spelling ("ISV", "Co-sell", "12,500.00"); the parser is
forgiving about those and strict about everything that could be read two ways (dates are ISO only).
No I/O: references to stored data (partner names, ids) are checked by the service.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from contracts import pipeline as c

MAX_ROWS = 100_000

PARTNER_COLUMNS = ("id", "name", "type", "tier", "status", "owner", "strategic_fit", "revenue_potential",
                   "feasibility", "risk")
# Written by export, ignored by import, so an exported file imports again.
PARTNER_READ_ONLY = ("score", "trailing_revenue", "archived", "version", "created_at")
PARTNER_REQUIRED = ("name", "type")

OPPORTUNITY_COLUMNS = ("id", "name", "customer", "partner", "partner_id", "amount", "currency",
                       "expected_close_date", "owner", "deal_model", "pipeline", "stage", "hyperscaler",
                       "ace_review_status", "ace_next_steps", "closed_lost_reason", "gcp_status")
OPPORTUNITY_READ_ONLY = ("outcome", "probability", "source", "external_id", "created_at", "stage_entered_at",
                         "closed_at", "version")
OPPORTUNITY_REQUIRED = ("name", "customer", "amount")


def columns_for(kind: c.ImportKind) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    if kind == c.ImportKind.partners:
        return PARTNER_COLUMNS, PARTNER_READ_ONLY, PARTNER_REQUIRED
    return OPPORTUNITY_COLUMNS, OPPORTUNITY_READ_ONLY, OPPORTUNITY_REQUIRED


def normalise_header(columns: list[str]) -> list[str]:
    return [col.strip().lower().replace(" ", "_").replace("-", "_").lstrip("\ufeff") for col in columns]


def check_header(kind: c.ImportKind, columns: list[str]) -> list[c.RowError]:
    known, read_only, required = columns_for(kind)
    errors = []
    seen: set[str] = set()
    for col in columns:
        if col in seen:
            errors.append(c.RowError(row=1, field=col, message=f"column {col!r} appears twice"))
        seen.add(col)
        if col not in known and col not in read_only:
            errors.append(c.RowError(row=1, field=col, message=f"unknown column {col!r}; expected some of "
                                                               f"{', '.join(known)}"))
    for col in required:
        if col not in seen:
            errors.append(c.RowError(row=1, field=col, message=f"missing required column {col!r}"))
    return errors


# --------------------------------------------------------------------------------------- values

_THOUSANDS = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")
_SQUASH = re.compile(r"[\s_\-]+")


class CellError(ValueError):
    pass


def parse_amount(text: str) -> Decimal:
    raw = text.strip().lstrip("$€£").strip()
    if _THOUSANDS.match(raw):
        raw = raw.replace(",", "")
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise CellError(f"{text!r} is not an amount (write 12500.00)") from exc
    if not value.is_finite():
        raise CellError(f"{text!r} is not an amount")
    return value


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise CellError(f"{text!r} is not a date; write it as YYYY-MM-DD") from exc


def parse_choice(enum: type[StrEnum], text: str) -> StrEnum:
    wanted = _SQUASH.sub("", text.strip().lower())
    for member in enum:
        if wanted in (_SQUASH.sub("", member.value.lower()), _SQUASH.sub("", member.name.lower())):
            return member
    raise CellError(f"{text!r} is not one of {', '.join(m.value for m in enum)}")


def parse_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text.strip())
    except ValueError as exc:
        raise CellError(f"{text!r} is not an id") from exc


# ------------------------------------------------------------------------------------------ rows


@dataclass
class ParsedRow:
    """A row's fields for the command, plus the references the service must resolve."""

    fields: dict[str, Any]
    id: uuid.UUID | None = None
    partner_name: str | None = None


def parse_row(kind: c.ImportKind, columns: list[str], values: list[str], row: int
              ) -> tuple[ParsedRow | None, list[c.RowError]]:
    if len(values) != len(columns):
        return None, [c.RowError(row=row, field=None,
                                 message=f"has {len(values)} cells; the header has {len(columns)}")]
    cells = {col: value.strip() for col, value in zip(columns, values, strict=True)}
    if kind == c.ImportKind.partners:
        return _partner(cells, row)
    return _opportunity(cells, row)


def _convert(cells: dict[str, str], row: int, converters: dict[str, Any]) -> tuple[dict[str, Any], list[c.RowError]]:
    out: dict[str, Any] = {}
    errors = []
    for col, convert in converters.items():
        text = cells.get(col, "")
        if text == "":
            continue
        try:
            out[col] = convert(text) if convert else text
        except CellError as exc:
            errors.append(c.RowError(row=row, field=col, message=str(exc)))
    return out, errors


def _validate(model: type[BaseModel], data: dict[str, Any], row: int, columns_of: dict[str, str]
              ) -> list[c.RowError]:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            field = columns_of.get(".".join(loc), loc[-1] if loc else None)
            errors.append(c.RowError(row=row, field=field, message=err["msg"].removeprefix("Value error, ")))
        return errors
    return []


def _partner(cells: dict[str, str], row: int) -> tuple[ParsedRow | None, list[c.RowError]]:
    values, errors = _convert(cells, row, {
        "id": parse_uuid, "name": None, "type": lambda t: parse_choice(c.PartnerType, t),
        "tier": lambda t: parse_choice(c.PartnerTier, t), "status": lambda t: parse_choice(c.PartnerStatus, t),
        "owner": None, "strategic_fit": parse_amount, "revenue_potential": parse_amount,
        "feasibility": parse_amount, "risk": parse_amount,
    })
    criteria = ("strategic_fit", "revenue_potential", "feasibility", "risk")
    given = [k for k in criteria if k in values]
    if given and len(given) != len(criteria):
        missing = [k for k in criteria if k not in values and k not in {e.field for e in errors}]
        errors += [c.RowError(row=row, field=k, message="the scorecard needs all four criteria") for k in missing]
    fields: dict[str, Any] = {k: values[k] for k in ("name", "type", "tier", "status", "owner") if k in values}
    if len(given) == len(criteria):
        fields["scorecard"] = {k: values[k] for k in criteria}
    for required in PARTNER_REQUIRED:
        if required not in values and required not in {e.field for e in errors}:
            errors.append(c.RowError(row=row, field=required, message="is required"))
    errors = _with_model_errors(errors, c.CreatePartner, fields, row, {f"scorecard.{k}": k for k in criteria})
    # A bad row is still returned: the service checks its references too, so every problem shows at once.
    return ParsedRow(fields=_jsonable(fields), id=values.get("id")), errors


def _opportunity(cells: dict[str, str], row: int) -> tuple[ParsedRow | None, list[c.RowError]]:
    values, errors = _convert(cells, row, {
        "id": parse_uuid, "name": None, "customer": None, "partner": None, "partner_id": parse_uuid,
        "amount": parse_amount, "currency": None, "expected_close_date": parse_date, "owner": None,
        "deal_model": lambda t: parse_choice(c.DealModel, t), "pipeline": lambda t: t.strip().lower(),
        "stage": None, "hyperscaler": lambda t: parse_choice(c.Hyperscaler, t),
        "ace_review_status": lambda t: parse_choice(c.AceReviewStatus, t), "ace_next_steps": None,
        "closed_lost_reason": None, "gcp_status": lambda t: parse_choice(c.GcpStatus, t),
    })
    for required in OPPORTUNITY_REQUIRED:
        if required not in values and required not in {e.field for e in errors}:
            errors.append(c.RowError(row=row, field=required, message="is required"))
    fields: dict[str, Any] = {k: values[k] for k in ("name", "customer", "partner_id", "amount", "currency",
                                                     "expected_close_date", "owner", "deal_model", "pipeline",
                                                     "stage", "hyperscaler") if k in values}
    ace = {k: values[col] for k, col in (("review_status", "ace_review_status"), ("next_steps", "ace_next_steps"),
                                         ("closed_lost_reason", "closed_lost_reason")) if col in values}
    if ace:
        fields["ace"] = ace
    if "gcp_status" in values:
        fields["gcp"] = {"status": values["gcp_status"]}
    mapping = {"ace.review_status": "ace_review_status", "ace.next_steps": "ace_next_steps",
               "ace.closed_lost_reason": "closed_lost_reason", "gcp.status": "gcp_status"}
    errors = _with_model_errors(errors, c.CreateOpportunity, fields, row, mapping)
    return ParsedRow(fields=_jsonable(fields), id=values.get("id"), partner_name=values.get("partner")), errors


def _with_model_errors(errors: list[c.RowError], model: type[BaseModel], fields: dict[str, Any], row: int,
                       columns_of: dict[str, str]) -> list[c.RowError]:
    """The cell errors plus what the command's own rules say about the cells that did parse, so a
    row's every problem is reported at once (and each field once)."""
    seen = {e.field for e in errors}
    return errors + [e for e in _validate(model, fields, row, columns_of) if e.field not in seen]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, (Decimal, date, uuid.UUID)):
        return str(value)
    return value


# ---------------------------------------------------------------------------------------- export


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, StrEnum):
        return value.value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def partner_row(p: c.Partner) -> list[str]:
    card = p.scorecard
    return [_s(v) for v in (
        p.id, p.name, p.type, p.tier if not p.tier_auto else "", p.status, p.owner,
        card.strategic_fit if card else None, card.revenue_potential if card else None,
        card.feasibility if card else None, card.risk if card else None,
        p.score, p.trailing_revenue, p.archived, p.version, p.created_at,
    )]


def opportunity_row(o: c.Opportunity, partner_name: str | None) -> list[str]:
    ace, gcp = o.ace, o.gcp
    return [_s(v) for v in (
        o.id, o.name, o.customer, partner_name, o.partner_id, o.amount, o.currency, o.expected_close_date,
        o.owner, o.deal_model, o.pipeline, o.stage, o.hyperscaler, ace.review_status if ace else None,
        ace.next_steps if ace else None, ace.closed_lost_reason if ace else None, gcp.status if gcp else None,
        o.outcome, o.probability, o.source, o.external_id, o.created_at, o.stage_entered_at, o.closed_at,
        o.version,
    )]
