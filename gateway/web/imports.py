"""CSV import and export pages: upload a spreadsheet of partners or deals, see every bad row with its
line and column, or download everything as CSV. The parsing and the import itself are the REST
API's (gateway/pipeline_csv.py), so a file behaves the same here, over HTTP and from the CLI."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from contracts import pipeline as pc
from gateway import audit, people, pipeline_csv
from gateway.state import bus, sessions
from gateway.web.common import Member, render

router = APIRouter(include_in_schema=False)


@router.get("/import", response_class=HTMLResponse)
async def import_page(request: Request, _: Member) -> Response:
    return render(request, "import.html", {"kinds": list(pc.ImportKind), "kind": request.query_params.get("kind")})


@router.post("/import", max_body_size=pipeline_csv.MAX_BYTES)
async def import_file(request: Request, principal: Member) -> Response:
    form = await request.form(max_part_size=pipeline_csv.MAX_BYTES)
    kind_text = str(form.get("kind", ""))
    if kind_text not in set(pc.ImportKind):
        return render(request, "import.html", {"kinds": list(pc.ImportKind),
                                               "errors": {"kind": "Pick what the file holds."}}, status_code=422)
    kind = pc.ImportKind(kind_text)
    context: dict[str, object] = {"kinds": list(pc.ImportKind), "kind": kind.value}
    try:
        header, rows = await pipeline_csv.read_upload(request)
    except HTTPException as exc:
        detail = exc.detail[0]["msg"] if isinstance(exc.detail, list) else str(exc.detail)
        return render(request, "import.html", {**context, "errors": {"file": detail}}, status_code=exc.status_code)
    result = await pipeline_csv.run_import(bus(request), kind, header, rows, principal.name,
                                           await people.directory(request, fresh=True))
    if result.stored:
        async with sessions(request)() as session, session.begin():
            await audit.record(session, actor=principal.name, action=f"{kind.value}.imported", entity=kind.value,
                               after={"rows": result.rows, "created": result.created, "updated": result.updated})
    return render(request, "import.html", {**context, "result": result},
                  status_code=200 if result.stored else 422)
