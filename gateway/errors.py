"""Errors mapped to HTTP, once, here: typed command errors, request validation, and the platform's
infrastructure (NATS, Postgres) being unavailable. No input makes a 5xx: bad input is a 4xx naming
the field, an outage a 503 with Retry-After the caller can act on."""

from __future__ import annotations

import logging
import math
from decimal import Decimal

import nats.errors
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError

from contracts.base import Command, CommandError, ErrorKind
from runtime import failures
from runtime.errors import CommandFailed

logger = logging.getLogger(__name__)

STATUS = {
    ErrorKind.not_found: 404,
    ErrorKind.conflict: 409,
    ErrorKind.invalid: 422,
    ErrorKind.forbidden: 403,
    ErrorKind.unavailable: 503,
    ErrorKind.internal: 500,
}
# What a caller told "unavailable" should wait before trying again.
RETRY_AFTER_SECONDS = 5
RETRY_AFTER = {"Retry-After": str(RETRY_AFTER_SECONDS)}
# Infrastructure errors that reach a route: the bus or the database is down or restarting.
INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (nats.errors.Error, OSError, DBAPIError)


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="where: body, query, path or header, then the field's path")
    msg: str
    type: str


class Problem(BaseModel):
    """Every error answer: a sentence, or one entry per bad field."""

    detail: str | list[FieldError]


def field_error(loc: list[str | int], msg: str, kind: str = "invalid") -> dict[str, object]:
    return {"detail": [{"loc": loc, "msg": msg, "type": kind}]}


def error_body(error: CommandError) -> dict[str, object]:
    loc: list[str | int] = ["body", *error.field.split(".")] if error.field else ["body"]
    return field_error(loc, error.message, error.kind.value)


async def command_failed_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CommandFailed)
    status = STATUS[exc.error.kind]
    return JSONResponse(error_body(exc.error), status_code=status, headers=RETRY_AFTER if status == 503 else None)


def _loc_part(part: object) -> str | int:
    return part if isinstance(part, int | str) and not isinstance(part, bool) else str(part)


def _plain(value: object) -> object:
    """A value as JSON can carry it: pydantic's error context may hold inf, NaN, Decimals, exceptions."""
    if isinstance(value, float | Decimal):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, bool | int | str) or value is None:
        return value
    return str(value)


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, made safe for any input: its own handler fails (a 500) on a body like `1e309`,
    whose error carries an infinite float. The input is not echoed back (it may be a password)."""
    assert isinstance(exc, RequestValidationError)
    detail = []
    for e in exc.errors():
        entry: dict[str, object] = {"loc": [_loc_part(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")),
                                    "type": str(e.get("type", ""))}
        if isinstance(e.get("ctx"), dict):
            entry["ctx"] = {str(k): _plain(v) for k, v in e["ctx"].items()}
        detail.append(entry)
    return JSONResponse({"detail": detail}, status_code=422)


def _command_names() -> set[str]:
    found: set[str] = set()
    todo = [Command]
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


async def model_validation_handler(_request: Request, exc: Exception) -> JSONResponse:
    """A command the gateway builds from what it was sent (a CSV's cells, a form) that does not validate:
    the sender's input, so a 422 naming where, never a 500."""
    assert isinstance(exc, ValidationError)
    if exc.title not in _command_names():
        raise exc  # a model of our own making that does not validate is a bug: the server error it is
    detail = [{"loc": ["body", *(_loc_part(p) for p in e.get("loc", ()))], "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


async def infrastructure_handler(request: Request, exc: Exception) -> JSONResponse:
    """Errors of NATS or Postgres reaching a route, classified as the consumers classify them."""
    kind = failures.classify(exc)
    if kind is failures.Failure.PERMANENT:
        # A value Postgres refuses that validation let through: the caller's input, not an outage.
        logger.warning("%s %s: the database refused a value: %s", request.method, request.url.path,
                       failures.describe(exc))
        return JSONResponse(field_error(["body"], "a value cannot be stored (a control character or an "
                                                  "out-of-range number?)"), status_code=422)
    if isinstance(exc, IntegrityError):
        return JSONResponse(field_error(["body"], "conflicts with stored data", "conflict"), status_code=409)
    if kind is failures.Failure.UNKNOWN and not isinstance(exc, nats.errors.Error):
        raise exc  # a bug, not an outage: the server error it is
    logger.warning("%s %s: unavailable: %s", request.method, request.url.path, exc.__class__.__name__)
    return JSONResponse({"detail": "the platform is unavailable for a moment (its message bus or database is "
                                   "restarting); retry shortly"}, status_code=503, headers=RETRY_AFTER)
