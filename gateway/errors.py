"""Typed command errors mapped to HTTP, once, here."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from contracts.base import CommandError, ErrorKind
from runtime.errors import CommandFailed

STATUS = {
    ErrorKind.not_found: 404,
    ErrorKind.conflict: 409,
    ErrorKind.invalid: 422,
    ErrorKind.forbidden: 403,
    ErrorKind.unavailable: 503,
    ErrorKind.internal: 500,
}


def error_body(error: CommandError) -> dict[str, object]:
    loc = ["body", *error.field.split(".")] if error.field else ["body"]
    return {"detail": [{"loc": loc, "msg": error.message, "type": error.kind.value}]}


async def command_failed_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CommandFailed)
    return JSONResponse(error_body(exc.error), status_code=STATUS[exc.error.kind])
