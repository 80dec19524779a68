"""Edits made in PartnerOps going out to ACE (the rules are in outbound_rules.py).

Each push reads the record as AWS has it now, plans against it and, when the record is open, sends
UpdateOpportunity with the LastModifiedDate it read (AWS's optimistic concurrency: a record changed
in between is refused with a conflict, and the push is tried again on a fresh read). After a send
the record is refreshed, so its new version comes back into the platform the usual way.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.aws_partner_central import outbound_rules
from integrations.aws_partner_central.client import AwsRefused, AwsUnavailable, PartnerCentral
from integrations.aws_partner_central.repository import WAITING, SyncRepository

logger = logging.getLogger(__name__)

# A held edit is looked at again this often (and at once when a new version of its record comes in).
HOLD_PAUSE = timedelta(minutes=5)


class Held(Exception):
    """The edit waits: ACE has the record locked (or only part of it open)."""


class Outbound:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], aws: PartnerCentral) -> None:
        self.sessions = sessions
        self.aws = aws

    def repo(self, session: AsyncSession) -> SyncRepository:
        return SyncRepository(session, self.aws.catalog)

    async def push(self, ident: str) -> str:
        """Send the waiting edit of one opportunity, if it may go now. Returns what happened; raises Held
        (try again later) or AwsUnavailable."""
        async with self.sessions() as session:
            edit = await self.repo(session).edit(ident)
            if edit is None or edit.status not in WAITING:
                return "nothing waiting"
            fields, base, edited_at = dict(edit.fields), dict(edit.base), edit.edited_at
        try:
            current = await self.aws.get_opportunity(ident)
        except AwsRefused as exc:
            return await self._finish(ident, "failed", f"AWS refused to read it: {exc}")
        plan = outbound_rules.plan_update(current, fields, edited_at, base)
        if plan.action == "superseded":
            return await self._finish(ident, "superseded", plan.reason, refresh=True)
        if plan.action == "nothing":
            return await self._finish(ident, "sent", plan.reason)
        if plan.action == "hold":
            await self._finish(ident, "held", plan.reason, keep=tuple(plan.fields), fields=plan.fields)
            raise Held(plan.reason)
        assert plan.request is not None
        try:
            await self.aws.call("update_opportunity", **plan.request)
        except AwsRefused as exc:
            if exc.code == "ConflictException":
                # AWS changed it between our read and our write: read again, plan again.
                raise AwsUnavailable(f"conflict on {ident}: changed while we sent") from exc
            return await self._finish(ident, "failed", f"AWS refused the update: {exc}")
        sent = ", ".join(plan.sent)
        if plan.held:
            await self._finish(ident, "held", f"{plan.reason}sent {sent}; {', '.join(plan.held)} wait: Action "
                                              "Required opens only the close date and the expected spend",
                               refresh=True, sent=True, keep=plan.held, fields=plan.fields)
            raise Held("part of the edit waits for the review to end")
        logger.info("aws-sync: sent %s of %s", sent, ident)
        return await self._finish(ident, "sent", f"{plan.reason}sent {sent}", refresh=True, sent=True)

    async def _finish(self, ident: str, status: str, reason: str, *, refresh: bool = False, sent: bool = False,
                      keep: tuple[str, ...] = (), fields: dict[str, object] | None = None) -> str:
        async with self.sessions.begin() as session:
            repo = self.repo(session)
            edit = await repo.edit(ident, lock=True)
            if edit is not None and fields is not None:
                # What still waits (AWS's newer values for conflicting fields were kept, not queued).
                edit.fields = {k: v for k, v in fields.items() if k in keep}
            await repo.set_edit(ident, status, reason, sent=sent)
            if refresh:
                await repo.request("refresh", ident, f"after the edit was {status}")
                await repo.wake_driver()
        return status
