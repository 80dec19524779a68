"""A file sent to the API, as the request body itself or as the form field `file`: read up to a bound
and decoded as UTF-8 text, every problem answered as a clear 4xx (CSV imports, contacts, calendars)."""

from __future__ import annotations

from fastapi import HTTPException, Request


def unprocessable(loc: list[object], msg: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors."""
    return HTTPException(422, detail=[{"loc": loc, "msg": msg, "type": "invalid"}])


async def upload_text(request: Request, max_bytes: int, *, too_large: str, missing: str) -> str:
    """The file's text. 413 with `too_large` above `max_bytes`; 422 with `missing` for a form without the
    field `file`, and for text that is not UTF-8."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_part_size=max_bytes + 1)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise unprocessable(["body", "file"], missing)
        raw = await upload.read(max_bytes + 1)
    else:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                break
        raw = bytes(body)
    if len(raw) > max_bytes:
        raise HTTPException(413, detail=too_large)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise unprocessable(["body", "file"], f"not UTF-8 text: {exc.reason}") from exc
