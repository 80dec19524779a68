"""CSV import and export. An import is begun with its header, fed rows in chunks (each row checked
and its errors reported with its line) and committed: every row is stored in one transaction, or
none when any row is bad. Never commits itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as c
from runtime.errors import DomainError, Invalid, NotFound
from services.pipeline.config.repository import ConfigRepository
from services.pipeline.imports import domain
from services.pipeline.imports.repository import ImportRepository
from services.pipeline.opportunities import domain as opportunity_domain
from services.pipeline.opportunities import service as opportunities
from services.pipeline.opportunities.repository import OpportunityRepository
from services.pipeline.partners import service as partners
from services.pipeline.partners.repository import PartnerRepository

STALE_AFTER = timedelta(days=1)


async def begin_import(session: AsyncSession, cmd: c.BeginImport) -> c.ImportBatch:
    columns = domain.normalise_header(cmd.columns)
    errors = domain.check_header(cmd.kind, columns)
    if errors:
        raise Invalid("; ".join(e.message for e in errors), field="columns")
    repo = ImportRepository(session)
    await repo.purge_older_than(datetime.now(UTC) - STALE_AFTER)
    batch = await repo.begin(cmd.kind.value, columns, cmd.actor)
    return c.ImportBatch(batch_id=batch.id, kind=cmd.kind, columns=columns)


async def import_rows(session: AsyncSession, cmd: c.ImportRows) -> c.ImportProgress:
    repo = ImportRepository(session)
    batch = await repo.get(cmd.batch_id, for_update=True)
    if batch is None:
        raise NotFound(f"no import {cmd.batch_id} (imports are forgotten after a day)", field="batch_id")
    if await repo.count(batch.id) + len(cmd.rows) > domain.MAX_ROWS:
        raise Invalid(f"an import holds at most {domain.MAX_ROWS} rows; split the file", field="rows")
    kind = c.ImportKind(batch.kind)
    parsed: list[tuple[int, domain.ParsedRow | None, list[c.RowError]]] = []
    for offset, values in enumerate(cmd.rows):
        line = cmd.first_row + offset
        row, errors = domain.parse_row(kind, batch.columns, values, line)
        parsed.append((line, row, errors))
    if kind == c.ImportKind.partners:
        await _check_partner_refs(session, parsed)
    else:
        await _check_opportunity_refs(session, parsed)
    await repo.add_rows(batch.id, [
        {"row": line, "data": ({"fields": row.fields, "id": str(row.id) if row.id else None} if row and not errors
                               else None),
         "errors": [e.model_dump() for e in errors] or None}
        for line, row, errors in parsed
    ])
    return c.ImportProgress(batch_id=batch.id, rows=len(parsed), errors=[e for _, _, es in parsed for e in es])


async def _check_partner_refs(session: AsyncSession, parsed: list[tuple[int, Any, list[c.RowError]]]) -> None:
    repo = PartnerRepository(session)
    for line, row, errors in parsed:
        if row is None:
            continue
        if row.id is not None and await repo.get(row.id) is None:
            errors.append(c.RowError(row=line, field="id", message=f"no partner with id {row.id}"))
        if row.fields.get("name") and await repo.name_taken(row.fields["name"], other_than=row.id):
            errors.append(c.RowError(row=line, field="name",
                                     message=f"a partner named {row.fields['name']!r} already exists"))


async def _check_opportunity_refs(session: AsyncSession, parsed: list[tuple[int, Any, list[c.RowError]]]) -> None:
    partner_repo = PartnerRepository(session)
    opportunity_repo = OpportunityRepository(session)
    stage_sets = await ConfigRepository(session).stage_sets()
    names = await partner_repo.ids_by_name([r.partner_name for _, r, _ in parsed if r and r.partner_name])
    for line, row, errors in parsed:
        if row is None:
            continue
        fields = row.fields
        if row.partner_name:
            found = names.get(row.partner_name.lower())
            if found is None:
                errors.append(c.RowError(row=line, field="partner", message=f"no partner named {row.partner_name!r}"))
            elif fields.get("partner_id") and fields["partner_id"] != str(found):
                errors.append(c.RowError(row=line, field="partner_id", message="names another partner than 'partner'"))
            else:
                fields["partner_id"] = str(found)
        elif fields.get("partner_id") and not await partner_repo.existing({uuid.UUID(fields["partner_id"])}):
            errors.append(c.RowError(row=line, field="partner_id",
                                     message=f"no partner with id {fields['partner_id']}"))
        pipeline = fields.get("pipeline")
        if row.id is not None:
            stored = await opportunity_repo.get(row.id)
            if stored is None:
                errors.append(c.RowError(row=line, field="id", message=f"no opportunity with id {row.id}"))
                continue
            if pipeline and pipeline != stored.pipeline:
                errors.append(c.RowError(row=line, field="pipeline", message="an opportunity cannot change pipeline"))
                continue
            pipeline = stored.pipeline
        pipeline = pipeline or opportunity_domain.default_pipeline(c.DealModel(fields.get("deal_model", "resale")))
        if pipeline not in stage_sets:
            errors.append(c.RowError(row=line, field="pipeline", message=f"no pipeline {pipeline!r}"))
        elif fields.get("stage") and stage_sets[pipeline].stage(fields["stage"]) is None:
            errors.append(c.RowError(row=line, field="stage",
                                     message=f"{fields['stage']!r} is not a stage of pipeline {pipeline!r}"))


async def commit_import(session: AsyncSession, cmd: c.CommitImport) -> c.ImportResult:
    repo = ImportRepository(session)
    batch = await repo.get(cmd.batch_id, for_update=True)
    if batch is None:
        raise NotFound(f"no import {cmd.batch_id}", field="batch_id")
    kind = c.ImportKind(batch.kind)
    rows = await repo.rows(batch.id)
    errors = [c.RowError.model_validate(e) for r in rows for e in (r.errors or [])]
    errors += _cross_row_errors(kind, rows)
    result = c.ImportResult(batch_id=batch.id, kind=kind, rows=len(rows), created=0, updated=0, errors=[],
                            stored=False)
    if not rows:
        errors.append(c.RowError(row=1, field=None, message="the file has no rows"))
    if not errors and kind == c.ImportKind.partners:
        # One savepoint around the whole file: a row that fails now undoes every row before it.
        savepoint = await session.begin_nested()
        for r in rows:
            try:
                created = await _apply_partner(session, r.data or {}, batch.actor)
            except DomainError as exc:
                errors.append(c.RowError(row=r.row, field=exc.field, message=exc.message))
                continue
            result.created += created
            result.updated += 1 - created
        if errors:
            await savepoint.rollback()
            result.created = result.updated = 0
        else:
            await savepoint.commit()
            result.stored = True
    elif not errors:
        # Every row is planned in memory first; nothing is written unless all of them are good.
        result.created, result.updated, errors = await _apply_opportunities(session, rows, batch.actor)
        result.stored = not errors
        if errors:
            result.created = result.updated = 0
    await repo.delete(batch.id)
    result.errors = sorted(errors, key=lambda e: (e.row, e.field or ""))
    return result


def _cross_row_errors(kind: c.ImportKind, rows: list[Any]) -> list[c.RowError]:
    errors = []
    seen_names: dict[str, int] = {}
    seen_ids: dict[str, int] = {}
    for r in rows:
        if not r.data:
            continue
        if r.data.get("id"):
            if r.data["id"] in seen_ids:
                errors.append(c.RowError(row=r.row, field="id", message=f"same id as row {seen_ids[r.data['id']]}"))
            seen_ids.setdefault(r.data["id"], r.row)
        if kind == c.ImportKind.partners:
            name = r.data["fields"]["name"].lower()
            if name in seen_names:
                errors.append(c.RowError(row=r.row, field="name", message=f"same name as row {seen_names[name]}"))
            seen_names.setdefault(name, r.row)
    return errors


async def _apply_partner(session: AsyncSession, data: dict[str, Any], actor: str | None) -> int:
    """Store one checked partner row; returns 1 when it created a partner, 0 when it updated one."""
    fields, row_id = dict(data["fields"]), data.get("id")
    if row_id:
        await partners.update_partner(session, c.UpdatePartner.model_validate(
            {**fields, "partner_id": row_id, "actor": actor}))
        return 0
    await partners.create_partner(session, c.CreatePartner.model_validate({**fields, "actor": actor}))
    return 1


async def _apply_opportunities(session: AsyncSession, rows: list[Any], actor: str | None
                               ) -> tuple[int, int, list[c.RowError]]:
    """Plan every opportunity row, then write them all in one go; (created, updated, row errors)."""
    repo = OpportunityRepository(session)
    ids = [uuid.UUID(r.data["id"]) for r in rows if r.data.get("id")]
    stored = await repo.get_many(ids, for_update=True)
    partner_ids = {uuid.UUID(r.data["fields"]["partner_id"]) for r in rows if r.data["fields"].get("partner_id")}
    known = await PartnerRepository(session).existing(partner_ids)
    stage_sets = await ConfigRepository(session).stage_sets()
    work = opportunities.Work(actor=actor)
    origin = opportunities.Origin(actor=actor, at=datetime.now(UTC), source=c.Source.import_, correlation_id=actor)
    created = updated = 0
    errors: list[c.RowError] = []
    for r in rows:
        fields = dict(r.data["fields"])
        pipeline, stage = fields.pop("pipeline", None), fields.pop("stage", None)
        try:
            if fields.get("partner_id") and uuid.UUID(fields["partner_id"]) not in known:
                raise Invalid(f"no partner with id {fields['partner_id']}", field="partner_id")
            if r.data.get("id"):
                update = c.UpdateOpportunity.model_validate({**fields, "opportunity_id": r.data["id"]})
                o = stored.get(update.opportunity_id)
                if o is None:
                    raise Invalid(f"no opportunity with id {r.data['id']}", field="id")
                if o.deleted_at is not None:
                    raise Invalid(f"the deal {o.name!r} is deleted; restore it first", field="id")
                typed = {n: getattr(update, n) for n in opportunities.EDITABLE if n in update.model_fields_set}
                if update.ace is not None and o.ace:
                    # A sheet carries some of the ACE fields; the others (reviewer comments) stay.
                    typed["ace"] = opportunities.ace_of(o).model_copy(update=update.ace.model_dump(exclude_unset=True))
                opportunities.plan_change(o, typed, stage_sets=stage_sets, to_stage=stage, origin=origin, work=work)
                updated += 1
            else:
                create = c.CreateOpportunity.model_validate(fields)
                draft = opportunities.Draft(**{n: getattr(create, n) for n in opportunities.EDITABLE})
                opportunities.plan_create(draft, stage_sets=stage_sets, pipeline=pipeline, stage=stage, origin=origin,
                                          work=work)
                created += 1
        except DomainError as exc:
            errors.append(c.RowError(row=r.row, field=exc.field, message=exc.message))
    if not errors:
        await work.write(session)
    return created, updated, errors


async def export_rows(session: AsyncSession, cmd: c.ExportRows) -> c.ExportPage:
    known, read_only, _ = domain.columns_for(cmd.kind)
    if cmd.kind == c.ImportKind.partners:
        found = await PartnerRepository(session).page_by_id(cmd.after_id, cmd.limit)
        rows = [domain.partner_row(partners.to_contract(p)) for p in found]
        last = found[-1].id if found else None
    else:
        opps = await OpportunityRepository(session).page_by_id(cmd.after_id, cmd.limit)
        stage_sets = await ConfigRepository(session).stage_sets()
        names = await PartnerRepository(session).names_by_id({o.partner_id for o in opps if o.partner_id})
        rows = [domain.opportunity_row(opportunities.to_contract(o, stage_sets.get(o.pipeline) or c.RESALE_STAGE_SET),
                                       names.get(o.partner_id)) for o in opps]
        last = opps[-1].id if opps else None
    return c.ExportPage(columns=[*known, *read_only], rows=rows,
                        next_after=last if len(rows) == cmd.limit else None)

