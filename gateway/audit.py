"""The audit log: who changed what, when, with the state before and after."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import AuditEntry
from gateway.state import sessions
from runtime.telemetry import current_trace_id, redact


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, BaseModel):
        value = json.loads(value.model_dump_json())
    if isinstance(value, dict):
        # Ids, amounts and times as the API shows them (JSON has no UUID, Decimal or datetime).
        return redact(to_jsonable_python(value))
    return value


async def record(session: AsyncSession, *, actor: str, action: str, entity: str, entity_id: object = None,
                 before: Any = None, after: Any = None) -> None:
    session.add(AuditEntry(actor=actor, action=action, entity=entity,
                           entity_id=None if entity_id is None else str(entity_id),
                           before=_plain(before), after=_plain(after), trace_id=current_trace_id()))


async def record_change(request: Request, actor: str, action: str, *, entity: str | None = None,
                        entity_id: object = None, before: Any = None, after: Any = None) -> None:
    """Record one change in a transaction of its own. `actor` is the verified principal's name (a
    person's email or `token:<name>`), never a field of the request body."""
    async with sessions(request)() as session, session.begin():
        await record(session, actor=actor, action=action, entity=entity or action.split(".")[0],
                     entity_id=entity_id, before=before, after=after)
