"""Commission pages: the overview (figures, agreements, forecast), the agreement form (rate kinds, basis,
duration, caps, clawback, effective dates) with the service's validation shown beside each field, an
agreement's versions and audit trail, the ledger with approval and payment for managers, and
statements. Every change goes through the same commands the API sends."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from contracts import commissions as cc
from contracts import pipeline as pc
from contracts.quarters import Quarter
from gateway import audit
from gateway.read_models import commissions as commission_models
from gateway.routes.commissions import AgreementIn, VersionIn, second_approver
from gateway.state import bus, sessions
from gateway.web.common import Manager, Member, Viewer, not_found, render
from gateway.web.pipeline import partner_choices
from runtime import formatting as fmt
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)

TIER_ROWS = 4
# The forecast table lists every line up to this many (largest first) and says how many it leaves out.
FORECAST_ROWS = 200
TIERS = [t.value for t in pc.PartnerTier]
# Names pydantic puts in an error's location for the member of a tagged union; they are not fields.
_UNION_TAGS = {"flat", "tiered", "partner_tier", "spif"}


# ---------------------------------------------------------------------------------- form <-> terms


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def terms_payload(form: Mapping[str, Any]) -> dict[str, Any]:
    """The terms as the API takes them, from the form's flat fields."""
    kind = form.get("rate_kind", "flat")
    if kind == "tiered":
        tiers = []
        for i in range(1, TIER_ROWS + 1):
            row = {k: _blank(form.get(f"tier_{i}_{k}")) for k in ("from", "up_to", "rate")}
            if any(row.values()):
                tiers.append({"from_amount": row["from"], "up_to": row["up_to"], "rate": row["rate"]})
        rate: dict[str, Any] = {"kind": "tiered", "mode": form.get("tier_mode") or "marginal", "tiers": tiers}
    elif kind == "partner_tier":
        rates = {t: form.get(f"rate_{t}") for t in TIERS if _blank(form.get(f"rate_{t}"))}
        rate = {"kind": "partner_tier", "rates": rates}
    elif kind == "spif":
        bonus = _blank(form.get("bonus"))
        rate = {"kind": "spif", "min_amount": _blank(form.get("min_amount")),
                "tiers": list(form.get("spif_tiers") or []) or None, **({"bonus": bonus} if bonus else {}),
                "pipelines": [k for k in str(form.get("spif_pipelines") or "").replace(",", " ").split() if k] or None}
    else:
        rate = {"kind": "flat", "rate": _blank(form.get("rate"))}
    return {
        "rate": rate, "basis": form.get("basis") or "deal", "duration": form.get("duration") or "one_time",
        "duration_months": _blank(form.get("duration_months")), "period": form.get("period") or "quarter",
        "cap_per_deal": _blank(form.get("cap_per_deal")), "cap_per_period": _blank(form.get("cap_per_period")),
        "clawback_days": _blank(form.get("clawback_days")) or "0",
    }


def version_payload(form: Mapping[str, Any]) -> dict[str, Any]:
    return {"effective_from": _blank(form.get("effective_from")), "effective_to": _blank(form.get("effective_to")),
            "retroactive": form.get("retroactive") == "on", "terms": terms_payload(form)}


def terms_form(v: cc.AgreementVersion) -> dict[str, Any]:
    """A version as the form's flat fields (to correct it, or to start the next one from it)."""
    t = v.terms
    form: dict[str, Any] = {
        "effective_from": v.effective_from.isoformat(), "effective_to": v.effective_to.isoformat()
        if v.effective_to else "", "retroactive": "on" if v.retroactive else "", "rate_kind": t.rate.kind,
        "basis": t.basis.value, "duration": t.duration.value, "duration_months": t.duration_months or "",
        "period": t.period.value, "cap_per_deal": t.cap_per_deal or "", "cap_per_period": t.cap_per_period or "",
        "clawback_days": t.clawback_days,
    }
    if isinstance(t.rate, cc.FlatRate):
        form["rate"] = t.rate.rate
    elif isinstance(t.rate, cc.TieredRate):
        form["tier_mode"] = t.rate.mode.value
        for i, tier in enumerate(t.rate.tiers[:TIER_ROWS], start=1):
            form |= {f"tier_{i}_from": tier.from_amount, f"tier_{i}_up_to": tier.up_to or "",
                     f"tier_{i}_rate": tier.rate}
    elif isinstance(t.rate, cc.SpifRate):
        form |= {"bonus": t.rate.bonus, "min_amount": t.rate.min_amount or "",
                 "spif_pipelines": ", ".join(t.rate.pipelines or [])}
    else:
        form |= {f"rate_{k.value}": r for k, r in t.rate.rates.items()}
    out: dict[str, Any] = {k: str(v) for k, v in form.items()}
    if isinstance(t.rate, cc.SpifRate):
        out["spif_tiers"] = [x.value for x in t.rate.tiers or []]
    return out


def form_field(loc: Sequence[Any], kind: str | None = None) -> str:
    """Where on the form an error belongs: terms.rate.tiers.1.from_amount -> tier_2_from; a SPIF's
    terms.rate.tiers (the partner tiers it is for) -> spif_tiers."""
    parts = [str(p) for p in loc if str(p) != "body" and str(p) not in _UNION_TAGS]
    if parts[:1] == ["terms"]:
        parts = parts[1:]
    if parts[:2] == ["rate", "tiers"] and (kind == "spif" or "spif" in [str(p) for p in loc]):
        return "spif_tiers"
    if parts[:2] == ["rate", "pipelines"]:
        return "spif_pipelines"
    if parts[:2] == ["rate", "tiers"]:
        if len(parts) >= 4:
            name = {"from_amount": "from"}.get(parts[3], parts[3])
            return f"tier_{int(parts[2]) + 1}_{name}"
        return "tier_1_from"
    if parts[:2] == ["rate", "rates"]:
        return f"rate_{parts[2]}" if len(parts) > 2 else "rate_bronze"
    if parts[:2] == ["rate", "mode"]:
        return "tier_mode"
    if parts[:2] in (["rate", "bonus"], ["rate", "min_amount"]):
        return parts[1]
    if parts[:2] == ["rate", "kind"]:
        return "rate_kind"
    if parts[:1] == ["rate"]:
        return "rate"
    return parts[0] if parts else "form"


_FRIENDLY = {"decimal_parsing": "Enter a number, like 12.5.", "missing": "Required.",
             "decimal_max_places": "Too many decimal places.", "date_from_datetime_parsing": "Enter a date.",
             "date_parsing": "Enter a date.", "date_type": "Enter a date.", "int_parsing": "Enter a whole number.",
             "int_type": "Enter a whole number.", "decimal_type": "Enter a number, like 12.5."}


def form_errors(exc: ValidationError | CommandFailed, kind: str | None = None) -> dict[str, str]:
    if isinstance(exc, CommandFailed):
        field = form_field(exc.error.field.split("."), kind) if exc.error.field else "form"
        return {field: exc.error.message}
    errors: dict[str, str] = {}
    for e in exc.errors():
        message = _FRIENDLY.get(e["type"]) or str(e["msg"]).removeprefix("Value error, ")
        errors.setdefault(form_field(e["loc"], kind), message)
    return errors


def _form_dict(raw: Any) -> dict[str, Any]:
    form = {k: v for k, v in raw.items() if isinstance(v, str) and k != "csrf_token"}
    form["deal_models"] = [v for v in raw.getlist("deal_models") if isinstance(v, str)]
    form["spif_tiers"] = [v for v in raw.getlist("spif_tiers") if isinstance(v, str)]
    return form


# --------------------------------------------------------------------------------------------- pages


def this_quarter() -> str:
    """Commission statements count calendar quarters (docs/commissions.md)."""
    return Quarter.calendar_of(datetime.now(UTC).date()).label


def describe_spif(rule: cc.SpifRate) -> str:
    """A SPIF's rule in a person's words (money through runtime/formatting.py)."""
    words = f"SPIF: {fmt.number(rule.bonus, 2)} per deal won"
    if rule.min_amount is not None:
        words += f" of at least {fmt.number(rule.min_amount, 2)}"
    if rule.tiers:
        words += " by a " + " or ".join(x.value for x in rule.tiers) + " partner"
    if rule.pipelines:
        words += " in the " + " or ".join(rule.pipelines) + " pipeline"
    return words


def describe_terms(t: cc.Terms) -> str:
    """One line a person can check an agreement by."""
    if isinstance(t.rate, cc.SpifRate):
        return describe_spif(t.rate)
    if isinstance(t.rate, cc.FlatRate):
        rate = fmt.rate(t.rate.rate)
    elif isinstance(t.rate, cc.TieredRate):
        steps = ", ".join(f"{fmt.rate(x.rate)} from {x.from_amount:,.0f}" for x in t.rate.tiers)
        rate = f"{t.rate.mode.value.replace('_', '-')} tiers per {t.period.value} ({steps})"
    else:
        rate = "by tier: " + ", ".join(f"{k.value} {fmt.rate(v)}" for k, v in t.rate.rates.items())
    basis = "of the deal amount when won" if t.basis is cc.Basis.deal else "of each paid invoice"
    duration = {"one_time": "once", "lifetime": "for the customer's lifetime",
                "recurring": f"for {t.duration_months} months"}[t.duration.value]
    extras = []
    if t.cap_per_deal:
        extras.append(f"cap {t.cap_per_deal:,.2f} per deal")
    if t.cap_per_period:
        extras.append(f"cap {t.cap_per_period:,.2f} per {t.period.value}")
    extras.append(f"clawback {t.clawback_days} days" if t.clawback_days else "no clawback")
    return f"{rate} {basis}, {duration}; " + "; ".join(extras)


async def _partners(request: Request, actor: str) -> dict[str, pc.Partner]:
    return {str(p.id): p for p in await partner_choices(request, actor)}


@router.get("/commissions")
async def overview(request: Request, principal: Viewer) -> Response:
    actor = principal.name
    agreements, partners, forecast, pending, spifs = await asyncio.gather(
        send(bus(request), cc.ListAgreements(limit=500, actor=actor)), _partners(request, actor),
        send(bus(request), cc.ForecastCommissions(limit=2000, actor=actor)),
        send(bus(request), cc.ListLedgerEntries(status=cc.EntryStatus.accrued, limit=1, actor=actor)),
        send(bus(request), cc.ListSpifs(limit=200, actor=actor)))
    async with sessions(request)() as session:
        kpis = await commission_models.kpis(session, datetime.now(UTC).date())
    return render(request, "commissions.html", {
        "agreements": agreements, "partners": partners, "forecast": forecast, "kpis": kpis,
        "pending": pending.total, "describe": describe_terms, "describe_spif": describe_spif,
        "quarter": this_quarter(),
        "notice": request.query_params.get("notice"), "forecast_rows": FORECAST_ROWS, "spifs": spifs.items,
    })


def _choices() -> dict[str, Any]:
    return {"directions": list(cc.Direction), "bases": list(cc.Basis), "durations": list(cc.Duration),
            "periods": list(cc.RatePeriod), "modes": list(cc.TierMode), "tiers": TIERS, "tier_rows": TIER_ROWS,
            "deal_models": [m.value for m in pc.DealModel]}


async def _agreement_form(request: Request, actor: str, *, form: dict[str, Any], errors: dict[str, str],
                          agreement: cc.Agreement | None = None, version: int | None = None,
                          status_code: int = 200) -> Response:
    return render(request, "commissions_form.html", {
        **_choices(), "form": form, "errors": errors, "agreement": agreement, "version": version,
        "partners": list((await _partners(request, actor)).values()) if agreement is None else [],
    }, status_code=status_code)


@router.get("/commissions/agreements/new")
async def new_agreement(request: Request, principal: Member) -> Response:
    form = {"direction": "payable", "currency": "USD", "rate_kind": "flat", "basis": "deal", "duration": "one_time",
            "period": "quarter", "clawback_days": "90", "effective_from": date.today().replace(day=1).isoformat(),
            "partner_id": request.query_params.get("partner_id", ""), "deal_models": [], "spif_tiers": []}
    # "By partner tier" starts from the tier table's rates (the pipeline settings: one place for tiers).
    settings: pc.PipelineSettings = await send(bus(request), pc.GetPipelineSettings(actor=principal.name))
    form |= {f"rate_{t.value}": f"{r.normalize():f}" for t in pc.TIER_ORDER
             if (r := settings.tier_benefits.of(t).commission_rate) is not None}
    if request.query_params.get("kind") == "spif":
        # A SPIF starts as this calendar quarter (the period kind commissions use), no clawback.
        start, end = Quarter.calendar_of(date.today()).range()
        form |= {"rate_kind": "spif", "effective_from": start.isoformat(), "effective_to": end.isoformat(),
                 "clawback_days": "0", "name": f"SPIF {Quarter.calendar_of(date.today()).label}"}
    return await _agreement_form(request, principal.name, form=form, errors={})


@router.post("/commissions/agreements")
async def create_agreement(request: Request, principal: Member) -> Response:
    form = _form_dict(await request.form())
    try:
        body = AgreementIn.model_validate({
            **version_payload(form), "partner_id": _blank(form.get("partner_id")), "name": form.get("name", ""),
            "direction": form.get("direction"), "currency": (form.get("currency") or "USD").strip().upper(),
            "deal_models": form["deal_models"] or None})
        agreement: cc.Agreement = await send(bus(request), cc.CreateAgreement(
            **body.model_dump(exclude={"deal_models", "terms"}), terms=body.terms,
            deal_models=[m.value for m in body.deal_models] if body.deal_models else None, actor=principal.name))
    except (ValidationError, CommandFailed) as exc:
        return await _agreement_form(request, principal.name, form=form,
                                     errors=form_errors(exc, form.get("rate_kind")), status_code=422)
    await audit.record_change(request, principal.name, "agreement.created", entity_id=agreement.id, after=body)
    return RedirectResponse(f"/commissions/agreements/{agreement.id}?notice=Agreement+created.", status_code=303)


async def _agreement(request: Request, agreement_id: UUID, actor: str) -> cc.Agreement | None:
    try:
        return await send(bus(request), cc.GetAgreement(agreement_id=agreement_id, actor=actor))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            return None
        raise


@router.get("/commissions/agreements/{agreement_id}")
async def agreement_page(agreement_id: UUID, request: Request, principal: Viewer) -> Response:
    agreement = await _agreement(request, agreement_id, principal.name)
    if agreement is None:
        return not_found(request, "agreement")
    audit, ledger, partners = await asyncio.gather(
        send(bus(request), cc.GetAgreementAudit(agreement_id=agreement_id, actor=principal.name)),
        send(bus(request), cc.ListLedgerEntries(agreement_id=agreement_id, limit=200, actor=principal.name)),
        _partners(request, principal.name))
    return render(request, "commissions_agreement.html", {
        "a": agreement, "audit": audit.items, "ledger": ledger, "partner": partners.get(str(agreement.partner_id)),
        "describe": describe_terms, "notice": request.query_params.get("notice"), "quarter": this_quarter(),
    })


@router.get("/commissions/agreements/{agreement_id}/versions/new")
async def new_version(agreement_id: UUID, request: Request, principal: Member) -> Response:
    agreement = await _agreement(request, agreement_id, principal.name)
    if agreement is None:
        return not_found(request, "agreement")
    latest = max(agreement.versions, key=lambda v: v.effective_from)
    form = terms_form(latest) | {"effective_from": "", "effective_to": "", "retroactive": ""}
    return await _agreement_form(request, principal.name, form=form, errors={}, agreement=agreement)


@router.get("/commissions/agreements/{agreement_id}/versions/{version}/edit")
async def edit_version(agreement_id: UUID, version: int, request: Request, principal: Member) -> Response:
    agreement = await _agreement(request, agreement_id, principal.name)
    found = next((v for v in agreement.versions if v.version == version), None) if agreement else None
    if agreement is None or found is None:
        return not_found(request, "agreement version")
    return await _agreement_form(request, principal.name, form=terms_form(found), errors={}, agreement=agreement,
                                 version=version)


@router.post("/commissions/agreements/{agreement_id}/versions")
async def add_version(agreement_id: UUID, request: Request, principal: Member) -> Response:
    return await _save_version(agreement_id, None, request, principal.name)


@router.post("/commissions/agreements/{agreement_id}/versions/{version}")
async def update_version(agreement_id: UUID, version: int, request: Request, principal: Member) -> Response:
    return await _save_version(agreement_id, version, request, principal.name)


async def _save_version(agreement_id: UUID, version: int | None, request: Request, actor: str) -> Response:
    agreement = await _agreement(request, agreement_id, actor)
    if agreement is None:
        return not_found(request, "agreement")
    form = _form_dict(await request.form())
    try:
        body = VersionIn.model_validate(version_payload(form))
        fields = body.model_dump(exclude={"terms"})
        if version is None:
            await send(bus(request), cc.AddAgreementVersion(agreement_id=agreement_id, **fields, terms=body.terms,
                                                            actor=actor))
        else:
            await send(bus(request), cc.UpdateAgreementVersion(agreement_id=agreement_id, version=version, **fields,
                                                               terms=body.terms, actor=actor))
    except (ValidationError, CommandFailed) as exc:
        return await _agreement_form(request, actor, form=form, errors=form_errors(exc, form.get("rate_kind")),
                                     agreement=agreement, version=version, status_code=422)
    await audit.record_change(request, actor, "agreement.version_added" if version is None else
                              "agreement.version_updated", entity_id=agreement_id,
                              after={"version": version, **body.model_dump(mode="json")})
    notice = "Version+added." if version is None else f"Version+{version}+corrected;+the+ledger+was+recalculated."
    return RedirectResponse(f"/commissions/agreements/{agreement_id}?notice={notice}", status_code=303)


# ------------------------------------------------------------------------------------------- ledger


LEDGER_PAGE = 50


@router.get("/commissions/ledger")
async def ledger_page(request: Request, principal: Viewer) -> Response:
    q = request.query_params
    errors: dict[str, str] = {}
    filters: dict[str, Any] = {}
    try:
        if q.get("partner_id"):
            filters["partner_id"] = UUID(q["partner_id"])
        if q.get("status"):
            filters["status"] = cc.EntryStatus(q["status"])
        if q.get("period"):
            cc.ListLedgerEntries(period=q["period"])
            filters["period"] = q["period"]
    except (ValueError, ValidationError):
        errors["form"] = "Those filters are not valid; showing everything."
        filters = {}
    sort = q.get("sort") if q.get("sort") in {s.value for s in cc.LedgerSort} else cc.LedgerSort.id.value
    after = q.get("after") or None
    try:
        listing = cc.ListLedgerEntries(**filters, sort=sort, after=after, limit=LEDGER_PAGE, actor=principal.name)
    except ValidationError:
        errors["form"] = "That page link is not valid; showing the first page."
        listing, after = cc.ListLedgerEntries(**filters, sort=sort, limit=LEDGER_PAGE, actor=principal.name), None
    try:
        page, partners = await asyncio.gather(send(bus(request), listing), _partners(request, principal.name))
    except CommandFailed as exc:  # a cursor of another sort: the first page instead
        errors["form"] = exc.error.message
        after = None
        page, partners = await asyncio.gather(
            send(bus(request), listing.model_copy(update={"after": None})), _partners(request, principal.name))
    shown = {k: str(getattr(v, "value", v)) for k, v in filters.items()}
    # Where this page starts, for "51 to 100 of 134" (keyset pages do not know it; the link carries it).
    start = min(int(q["start"]), page.total) if after and q.get("start", "").isdigit() and len(q["start"]) < 10 else 1
    return render(request, "commissions_ledger.html", {
        "page": page, "partners": partners, "filters": shown,
        "statuses": list(cc.EntryStatus), "errors": errors, "notice": q.get("notice"),
        "sort": sort, "after": after, "start": start,
        "sort_link": lambda key: "?" + urlencode({**shown, "sort": f"-{key}" if sort == key else key}),
        "next": "?" + urlencode({**shown, "sort": sort, "after": page.next_after, "start": start + len(page.items)})
        if page.next_after else None,
        "first": "?" + urlencode({**shown, "sort": sort}) if after else None,
        "today": date.today().isoformat(),
    })


def _ids(raw: Any) -> list[int]:
    return [int(v) for v in raw.getlist("entry_id") if isinstance(v, str) and v.isdigit()]


def _back(request: Request, notice: str) -> RedirectResponse:
    referer = request.headers.get("referer", "")
    origin = f"{request.url.scheme}://{request.url.netloc}"
    target = referer[len(origin):] if referer.startswith(origin + "/commissions") else "/commissions/ledger"
    path, _, query = target.partition("?")
    # The same page, filters and sort as the one the form was on, with the notice.
    kept = [(k, v) for k, v in parse_qsl(query)[:20] if k != "notice"]
    return RedirectResponse(path + "?" + urlencode([*kept, ("notice", notice)]), status_code=303)


@router.post("/commissions/ledger/approve")
async def approve(request: Request, principal: Manager) -> Response:
    ids = _ids(await request.form())
    if not ids:
        return _back(request, "Tick the entries to approve first.")
    try:
        result = await send(bus(request), cc.ApproveEntries(entry_ids=ids, actor=principal.name,
                                                            second_approver=second_approver(request)))
    except CommandFailed as exc:
        return _back(request, exc.error.message)
    if result.approved:
        await audit.record_change(request, principal.name, "ledger.approved", entity="ledger_entry",
                                  after={"entries": result.approved})
    return _back(request, f"{len(result.approved)} entries approved.")


@router.post("/commissions/ledger/pay")
async def pay(request: Request, principal: Manager) -> Response:
    form = await request.form()
    ids = _ids(form)
    reference = str(form.get("reference") or "").strip()
    paid_on = str(form.get("paid_on") or "")
    if not ids or not reference:
        return _back(request, "Tick the approved entries and give the payment's reference.")
    try:
        payment = await send(bus(request), cc.PayEntries(entry_ids=ids, paid_on=date.fromisoformat(paid_on),
                                                         reference=reference, actor=principal.name,
                                                         second_approver=second_approver(request)))
    except ValueError:
        return _back(request, "Give the payment date as YYYY-MM-DD.")
    except CommandFailed as exc:
        return _back(request, exc.error.message)
    await audit.record_change(request, principal.name, "ledger.paid", entity="payment", entity_id=payment.id,
                              after=payment)
    return _back(request, f"Payment of {payment.amount:,.2f} {payment.currency} recorded for {len(ids)} entries.")


# ---------------------------------------------------------------------------------------- statements


@router.get("/commissions/statement")
async def statement_page(request: Request, principal: Viewer) -> Response:
    q = request.query_params
    partners = await _partners(request, principal.name)
    period = q.get("period") or this_quarter()
    partner_id = q.get("partner_id") or ""
    statement = None
    error = None
    if partner_id:
        try:
            statement = await send(bus(request), cc.GetStatement(partner_id=UUID(partner_id), period=period,
                                                                 actor=principal.name))
        except ValidationError:  # before ValueError, which it is
            error = "A period is a month (2026-11) or a quarter (2026-Q4)."
        except ValueError:
            error = "Pick a partner from the list."
        except CommandFailed as exc:
            error = exc.error.message
    totals = None
    if statement is not None:
        totals = {s.currency: sum((x.amount for x in s.lines), Decimal(0)) for s in statement.sections}
    return render(request, "commissions_statement.html", {
        "partners": partners, "partner_id": partner_id, "period": period, "statement": statement,
        "error": error, "totals": totals, "agreements": {},
    }, status_code=422 if error else 200)

