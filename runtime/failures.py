"""What a consumer may parse, and what a failure means: never again (park it), not now (wait and retry),
or not known (retry a few times, then park).

Bounds are checked on the raw bytes, before `json.loads`: the standard decoder recurses once per level and
raises `RecursionError` on deep input, and a huge body costs memory and time before it can be rejected.
"""

from __future__ import annotations

import asyncio
import re
from enum import Enum

from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from runtime.errors import Invalid, PermanentFailure

# An event is a snapshot of one record: a few KB. 256 KiB leaves room for long texts and stays well under
# NATS's default 1 MiB max payload, so a parked copy with its dead-letter headers always fits.
MAX_EVENT_BYTES = 256 * 1024
# The deepest contract is a handful of levels; 32 is generous and far from the decoder's recursion limit.
MAX_EVENT_DEPTH = 32

# A JSON string (with escapes) or a bracket; strings are skipped whole so brackets inside them do not count.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def check_bounds(data: bytes, *, max_bytes: int = MAX_EVENT_BYTES, max_depth: int = MAX_EVENT_DEPTH) -> None:
    """Raise PermanentFailure if the body is too large or nested too deep to be decoded safely."""
    if len(data) > max_bytes:
        raise PermanentFailure(f"body too large: {len(data)} bytes, over the limit of {max_bytes}")
    # Cheap pre-check at C speed: fewer opening brackets than the limit cannot nest deeper than it.
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return
    depth = 0
    for match in _TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                raise PermanentFailure(f"body nested too deep: more than {max_depth} levels of arrays/objects")
        elif token in (b"]", b"}"):
            depth -= 1


class Failure(Enum):
    PERMANENT = "permanent"  # the message can never succeed: dead-letter it at once
    TRANSIENT = "transient"  # infrastructure, not the message: wait and retry, without a limit
    UNKNOWN = "unknown"  # a bug or a state that may clear: retry a few times, then dead-letter


# SQLSTATE classes and codes (https://www.postgresql.org/docs/current/errcodes-appendix.html).
# 22: data exception (NUL / character not in repertoire 22021, untranslatable 22P05, out of range 22003, ...):
# the same data fails the same way every time.
_PERMANENT_CLASSES = ("22",)
# 08 connection exception, 53 insufficient resources, 57P0x shutdown / cannot connect now, 58 system error,
# 40001 serialization failure, 40P01 deadlock, 55P03 lock not available, 57014 query canceled (timeouts),
# 25006 read-only transaction (a standby during fail-over).
_TRANSIENT_CLASSES = ("08", "53", "58", "57P")
_TRANSIENT_CODES = ("40001", "40P01", "55P03", "57014", "25006")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen) or len(seen) > 16:
            continue
        seen.append(e)
        todo.extend((e.__cause__, e.__context__, getattr(e, "orig", None)))
    return seen


def sqlstate(exc: BaseException) -> str | None:
    for e in _chain(exc):
        code = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, PermanentFailure | Invalid | ValidationError | RecursionError | UnicodeError):
        return Failure.PERMANENT
    code = sqlstate(exc)
    if code is not None:
        if code.startswith(_PERMANENT_CLASSES):
            return Failure.PERMANENT
        if code.startswith(_TRANSIENT_CLASSES) or code in _TRANSIENT_CODES:
            return Failure.TRANSIENT
        return Failure.UNKNOWN
    for e in _chain(exc):
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            return Failure.TRANSIENT
        # The server is unreachable or went away: refused, reset, timed out, pool exhausted.
        if isinstance(e, OSError | ConnectionError | TimeoutError | asyncio.TimeoutError
                      | sa_exc.TimeoutError | sa_exc.InterfaceError | sa_exc.DisconnectionError):
            return Failure.TRANSIENT
        name = type(e).__name__
        if name in ("ConnectionDoesNotExistError", "InterfaceError", "InternalClientError",
                    "ConnectionFailureError", "CannotConnectNowError"):
            return Failure.TRANSIENT
    return Failure.UNKNOWN


def describe(exc: BaseException) -> str:
    """One line naming the error and, for database errors, its SQLSTATE."""
    code = sqlstate(exc)
    text = f"{type(exc).__name__}: {exc}".replace("\r", " ").replace("\n", " ")
    if isinstance(exc, RecursionError):
        text = "RecursionError: nested too deep to process"
    return (f"[{code}] " if code else "") + text[:1500]
