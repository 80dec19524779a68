"""Whether a partner exists, for routes that take a `partner_id` for another service (commission
agreements, fund requests): one rule, answered from the gateway's partner read model, fed by the
pipeline's partner events, so the common case needs no call to the pipeline. Only an id the read model
has not heard of is asked of the pipeline: a partner created a moment ago may not have arrived yet,
and it must not be refused."""

from __future__ import annotations

from uuid import UUID

from fastapi import Request
from sqlalchemy import select

from contracts import pipeline as pc
from contracts.base import CommandError, ErrorKind
from gateway.read_models.partners import PartnerView
from gateway.state import bus, sessions
from runtime.commands import send
from runtime.errors import CommandFailed


async def known_partner(request: Request, partner_id: UUID | None, actor: str) -> None:
    """Nothing when the partner exists; else CommandFailed(invalid) on `partner_id`."""
    if partner_id is None:
        return
    async with sessions(request)() as session:
        if await session.scalar(select(PartnerView.id).where(PartnerView.id == partner_id)) is not None:
            return
    try:
        await send(bus(request), pc.GetPartner(partner_id=partner_id, actor=actor))
    except CommandFailed as exc:
        if exc.error.kind == ErrorKind.not_found:
            raise CommandFailed(CommandError(kind=ErrorKind.invalid, field="partner_id",
                                             message=f"no partner with id {partner_id}")) from exc
        raise
