"""The admin settings page: the pipeline settings (quarterly target, fiscal year start, tiers, exchange
rates, stuck threshold) and each pipeline's stages with their probabilities.

The page calls the REST API's own functions (gateway/routes/pipeline.py), so a change made here is
validated by the pipeline service and audited exactly like one made over the API. A refused change is
shown again as typed, with each message beside its field."""

from __future__ import annotations

import asyncio
import calendar
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from contracts import pipeline as pc
from gateway.routes import pipeline as api
from gateway.state import bus
from gateway.web.common import Admin, _plain_message, render
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)

MONTHS = [(m, calendar.month_name[m]) for m in range(1, 13)]
OUTCOMES = [o.value for o in pc.Outcome]
# Stage rows a form may post: the contract's 30 stages and one blank row for adding a stage.
MAX_STAGE_ROWS = 31
MAX_FX_LINES = 200
PIPELINE_KEY = r"^[a-z][a-z0-9_]{0,39}$"


def _settings_form(s: pc.PipelineSettings) -> dict[str, str]:
    return {
        "expected_version": str(s.version), "fiscal_year_start_month": str(s.fiscal_year_start_month),
        "reporting_currency": s.reporting_currency, "quarterly_target": str(s.quarterly_target),
        "stuck_after_days": str(s.stuck_after_days), "tier_window_days": str(s.tier_window_days),
        "silver": str(s.tier_thresholds.silver), "gold": str(s.tier_thresholds.gold),
        "platinum": str(s.tier_thresholds.platinum),
        **{f"benefits_{t.value}": "\n".join(s.tier_benefits.of(t).benefits) for t in pc.TIER_ORDER},
        **{f"rate_{t.value}": _rate_text(s.tier_benefits.of(t).commission_rate) for t in pc.TIER_ORDER},
        "fx_rates": "\n".join(f"{cur} {rate.normalize():f}" for cur, rate in sorted(s.fx_rates.items())),
    }


def _rate_text(rate: Decimal | None) -> str:
    return "" if rate is None else f"{rate.normalize():f}"


def _tier_benefits(typed: dict[str, str]) -> dict[str, Any]:
    """The tier table's benefits (one a line, blank lines dropped) and rates, as the API takes them."""
    return {t.value: {"benefits": [b.strip() for b in typed[f"benefits_{t.value}"].splitlines() if b.strip()],
                      "commission_rate": typed[f"rate_{t.value}"].replace("%", "").strip() or None}
            for t in pc.TIER_ORDER}


def _stage_rows(stage_set: pc.StageSet) -> list[dict[str, str]]:
    return [{"key": s.key, "name": s.name, "probability": str(s.probability), "outcome": s.outcome.value,
             "launch": "true" if s.launch else ""} for s in stage_set.stages]


async def _page(request: Request, principal: Admin, *, settings_form: dict[str, str] | None = None,
                settings_errors: dict[str, str] | None = None, edited: str | None = None,
                stage_form: dict[str, Any] | None = None, stage_errors: dict[str, str] | None = None,
                status_code: int = 200) -> Response:
    current, sets = await asyncio.gather(
        send(bus(request), pc.GetPipelineSettings(actor=principal.name)),
        send(bus(request), pc.ListStageSets(actor=principal.name)))
    pipelines = []
    for s in sets.items:
        mine = edited == s.key and stage_form is not None
        pipelines.append({
            "key": s.key, "builtin": s.builtin, "version": s.version,
            "name": stage_form["name"] if mine and stage_form else s.name,
            "rows": stage_form["rows"] if mine and stage_form else [*_stage_rows(s), _blank_row()],
            "errors": stage_errors or {} if mine else {},
        })
    return render(request, "settings.html", {
        "form": settings_form or _settings_form(current), "errors": settings_errors or {}, "current": current,
        "months": MONTHS, "outcomes": OUTCOMES, "pipelines": pipelines,
        "notice": request.query_params.get("notice"),
    }, status_code=status_code)


def _blank_row() -> dict[str, str]:
    return {"key": "", "name": "", "probability": "", "outcome": "open", "launch": ""}


@router.get("/admin/settings", response_class=HTMLResponse)
async def settings_page(request: Request, principal: Admin) -> Response:
    return await _page(request, principal)


def _field(form: FormData, name: str, limit: int = 100) -> str:
    value = form.get(name)
    return value.strip()[:limit + 1] if isinstance(value, str) else ""


def _fx(text: str) -> tuple[dict[str, str], str | None]:
    """`EUR 1.08` per line (or `EUR=1.08`) → {currency: rate}; the first unreadable line is the error."""
    rates: dict[str, str] = {}
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_FX_LINES:
        return {}, f"At most {MAX_FX_LINES} currencies."
    for n, line in enumerate(lines, 1):
        parts = line.replace("=", " ").replace(":", " ").split()
        if len(parts) != 2:
            return {}, f"Line {n}: write a currency and its rate, like “EUR 1.08”."
        currency, rate = parts[0].upper(), parts[1]
        if currency in rates:
            return {}, f"Line {n}: {currency} is given twice."
        rates[currency] = rate
    return rates, None


def _errors(exc: ValidationError) -> dict[str, str]:
    """{form field: message}: the thresholds' own fields, exchange rates as one field, the rest by name."""
    errors: dict[str, str] = {}
    for e in exc.errors():
        loc = [str(p) for p in e["loc"] if p != "body"]
        if not loc:
            name = "form"
        elif loc[0] == "fx_rates":
            name = "fx_rates"
            if len(loc) > 1 and loc[1] not in ("[key]",):
                e = {**e, "msg": f"{loc[1]}: {_plain_message(e)}"}
        elif loc[0] == "tier_benefits" and len(loc) > 2 and loc[1] in {t.value for t in pc.TIER_ORDER}:
            name = f"rate_{loc[1]}" if loc[2] == "commission_rate" else f"benefits_{loc[1]}"
            if loc[2] == "benefits" and len(loc) > 3 and loc[3].isdigit():
                e = {**e, "msg": f"line {int(loc[3]) + 1}: {_plain_message(e)}"}
        elif loc[0] == "tier_thresholds":
            name = loc[1] if len(loc) > 1 and loc[1] in ("silver", "gold", "platinum") else "tier_thresholds"
        elif loc[0] == "expected_version":
            name = "form"
        else:
            name = loc[0]
        errors.setdefault(name, _friendly(e) if name != "fx_rates" else str(e["msg"]).removeprefix(
            "Value error, "))
    return errors


@router.post("/admin/settings")
async def change_settings(request: Request, principal: Admin) -> Response:
    form = await request.form()
    typed = {name: _field(form, name) for name in (
        "expected_version", "fiscal_year_start_month", "reporting_currency", "quarterly_target", "stuck_after_days",
        "tier_window_days", "silver", "gold", "platinum")}
    typed["fx_rates"] = _field(form, "fx_rates", limit=20_000)
    for t in pc.TIER_ORDER:
        typed[f"benefits_{t.value}"] = _field(form, f"benefits_{t.value}", limit=10_000)
        typed[f"rate_{t.value}"] = _field(form, f"rate_{t.value}")
    rates, fx_error = _fx(typed["fx_rates"])
    try:
        body = api.SettingsPatch.model_validate({
            "expected_version": typed["expected_version"] or None,
            "fiscal_year_start_month": typed["fiscal_year_start_month"],
            "reporting_currency": typed["reporting_currency"].upper(),
            "quarterly_target": typed["quarterly_target"].replace(",", ""),
            "stuck_after_days": typed["stuck_after_days"], "tier_window_days": typed["tier_window_days"],
            "tier_thresholds": {k: typed[k].replace(",", "") for k in ("silver", "gold", "platinum")},
            # Only from a form that has the tier table (an older page or script leaves it as it is).
            **({"tier_benefits": _tier_benefits(typed)} if any(
                f"{k}_{t.value}" in form for t in pc.TIER_ORDER for k in ("benefits", "rate")) else {}),
            "fx_rates": rates,
        })
        if fx_error:
            raise _FormError({"fx_rates": fx_error})
        await api.update_settings(body, request, principal)
    except ValidationError as exc:
        errors = _errors(exc)
        if fx_error:
            errors["fx_rates"] = fx_error
        return await _page(request, principal, settings_form=typed, settings_errors=errors, status_code=422)
    except _FormError as exc:
        return await _page(request, principal, settings_form=typed, settings_errors=exc.errors, status_code=422)
    except CommandFailed as exc:
        return await _page(request, principal, settings_form=typed, settings_errors=_command_errors(exc),
                           status_code=409 if exc.error.kind == "conflict" else 422)
    return RedirectResponse("/admin/settings?notice=Settings+saved.", status_code=303)


class _FormError(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def _command_errors(exc: CommandFailed) -> dict[str, str]:
    message = exc.error.message
    if exc.error.kind == "conflict" and "version" in message:
        message = "Someone else changed the settings meanwhile: reload the page to see theirs."
    field = (exc.error.field or "form").split(".")[0]
    if field in ("expected_version", "stages"):
        field = "form"
    return {field: message}


@router.post("/admin/settings/pipelines/{key}")
async def change_stages(key: Annotated[str, Path(pattern=PIPELINE_KEY)], request: Request,
                        principal: Admin) -> Response:
    form = await request.form()
    name = _field(form, "name", limit=300)
    columns = {c: [v.strip()[:301] if isinstance(v, str) else "" for v in form.getlist(f"stage_{c}")]
               for c in ("key", "name", "probability", "outcome", "launch")}
    count = len(columns["key"])
    if count > MAX_STAGE_ROWS or any(len(v) != count for c, v in columns.items() if c != "launch"):
        return await _page(request, principal, edited=key, stage_form={"name": name, "rows": []},
                           stage_errors={"form": "The form was changed on the way: reload the page."}, status_code=422)
    launches = set(columns["launch"])
    rows = [{"key": columns["key"][i].lower(), "name": columns["name"][i], "probability": columns["probability"][i],
             "outcome": columns["outcome"][i], "launch": "true" if columns["key"][i] in launches else ""}
            for i in range(count)]
    filled = [r for r in rows if any(r[c] for c in ("key", "name", "probability"))]
    stage_form = {"name": name, "rows": [*filled, _blank_row()]}
    try:
        body = api.StageSetIn.model_validate({"name": name, "stages": [
            {"key": r["key"], "name": r["name"], "probability": r["probability"], "outcome": r["outcome"],
             "launch": bool(r["launch"])} for r in filled]})
        await api.define_pipeline(key, body, request, principal)
    except ValidationError as exc:
        return await _page(request, principal, edited=key, stage_form=stage_form,
                           stage_errors=_stage_errors(exc), status_code=422)
    except _FormError as exc:
        return await _page(request, principal, edited=key, stage_form=stage_form, stage_errors=exc.errors,
                           status_code=422)
    except CommandFailed as exc:
        return await _page(request, principal, edited=key, stage_form=stage_form,
                           stage_errors={"form": exc.error.message},
                           status_code=409 if exc.error.kind == "conflict" else 422)
    return RedirectResponse(f"/admin/settings?notice=Stages+of+{key}+saved.#pipeline-{key}", status_code=303)


def _stage_errors(exc: ValidationError) -> dict[str, str]:
    """`stages.2.probability` for a cell, `stages` for the set as a whole, `name` for the pipeline's name."""
    errors: dict[str, str] = {}
    for e in exc.errors():
        loc = [str(p) for p in e["loc"]]
        if loc[:1] == ["stages"] and len(loc) >= 3:
            name = f"stages.{loc[1]}.{loc[2]}"
        elif loc[:1] == ["stages"]:
            name = "stages"
        else:
            name = loc[0] if loc else "form"
        errors.setdefault(name, _friendly(e))
    return errors


def _friendly(error: Any) -> str:
    if error["type"] in ("int_parsing", "int_from_float"):
        return "Enter a whole number, like 40."
    if error["type"] == "string_pattern_mismatch":
        return "Lower-case letters, digits and _; starting with a letter."
    return _plain_message(error)
