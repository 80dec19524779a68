"""CSV upload and download for partners and opportunities over HTTP. The pipeline service owns the format
and checks every row; runtime/pipeline_csv.py sends a file in chunks and reads an export page by page (the
same client as `partnerops import/export`). Here: the upload's limits and errors as HTTP answers, owners
as emails in files and user ids in the pipeline, the audit entry."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse
from nats.aio.client import Client as NATS

from contracts import pipeline as pc
from gateway import audit, people
from gateway.state import bus, sessions
from gateway.uploads import unprocessable, upload_text
from runtime import pipeline_csv
from runtime.csv_cells import safe_row

MAX_BYTES = 50 * 1024 * 1024
# A commit stores up to 100,000 rows in one transaction; give it time.
COMMIT_TIMEOUT = 300.0


async def read_upload(request: Request) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a CSV sent as the body (text/csv) or as the form field `file`."""
    return parse(await upload_text(
        request, MAX_BYTES, missing="send the CSV as the field 'file'",
        too_large=f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB; use the CLI"))


def parse(text: str) -> tuple[list[str], list[list[str]]]:
    """The header and every row (blank ones too: a row's index + 2 is its number in the file)."""
    try:
        return pipeline_csv.records(text)
    except pipeline_csv.NotCsv as exc:
        raise unprocessable(["body", "file"], str(exc)) from exc


def _owner_column(header: list[str]) -> int | None:
    names = [h.strip().lower() for h in header]
    return names.index("owner") if "owner" in names else None


def owners_to_ids(directory: people.Directory, header: list[str], rows: list[list[str]]) -> list[pc.RowError]:
    """Owners are written by email in files (or by user id); they are stored as user ids. Rewrites
    the owner cells in place and returns an error for each row whose owner is not a team member
    (with the nearest member's email when one is close: `tomm` -> tom@example.com) or may not own
    deals and partners (a viewer: people.owner_problem); those cells are
    emptied so the service checks the rest of the row in the same pass."""
    column = _owner_column(header)
    if column is None:
        return []
    errors = []
    for number, row in enumerate(rows, start=2):
        if column < len(row) and row[column].strip():
            member, problem = people.owner_problem(directory, row[column])
            if member is None:
                errors.append(pc.RowError(row=number, field="owner", message=problem or ""))
                row[column] = ""
            else:
                row[column] = member.id
    return errors


async def run_import(nc: NATS, kind: pc.ImportKind, header: list[str], rows: list[list[str]],
                     actor: str, directory: people.Directory | None = None) -> pc.ImportResult:
    """Every problem of every row at once: owners checked here, everything else by the service; a file
    with any problem is not committed."""
    owner_errors = owners_to_ids(directory, header, rows) if directory is not None else []
    return await pipeline_csv.run_import(nc, kind, header, pipeline_csv.numbered(rows), actor, errors=owner_errors,
                                         commit_timeout=COMMIT_TIMEOUT)


def error_detail(result: pc.ImportResult) -> list[dict[str, object]]:
    return [{"loc": ["body", "rows", e.row, *([e.field] if e.field else [])], "msg": e.message, "type": "invalid"}
            for e in result.errors]


async def import_response(request: Request, actor: str, kind: pc.ImportKind) -> JSONResponse:
    """200 with the counts when every row was stored; 422 with each bad row's number and field."""
    header, rows = await read_upload(request)
    result = await run_import(bus(request), kind, header, rows, actor, await people.directory(request, fresh=True))
    if not result.stored:
        return JSONResponse({"detail": error_detail(result), "result": result.model_dump(mode="json")},
                            status_code=422)
    async with sessions(request)() as session, session.begin():
        await audit.record(session, actor=actor, action=f"{kind.value}.imported", entity=kind.value,
                           after={"rows": result.rows, "created": result.created, "updated": result.updated})
    return JSONResponse(result.model_dump(mode="json"))


async def export_lines(nc: NATS, kind: pc.ImportKind, actor: str,
                       directory: people.Directory | None = None) -> AsyncIterator[str]:
    """The CSV page by page; owners by email (so the file reads well and imports again)."""
    first = True
    async for page in pipeline_csv.export_pages(nc, kind, actor):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        column = _owner_column(page.columns)
        if first:
            writer.writerow(page.columns)
            first = False
        for row in page.rows:
            if directory is not None and column is not None and column < len(row) and row[column]:
                row = [*row[:column], directory.email(row[column]), *row[column + 1:]]
            writer.writerow(safe_row(row))
        yield buffer.getvalue()
