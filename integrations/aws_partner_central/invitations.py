"""Engagement invitations: AWS referrals sent to us, read with ListEngagementInvitations (we are the
receiver), shown in PartnerOps to accept or reject. An answer is recorded first (who, why) and sent by
the driver: accepting starts StartEngagementByAcceptingInvitationTask (idempotent by its ClientToken,
the invitation's id), which makes the ACE opportunity the next pass brings in as a co-sell deal;
rejecting sends RejectEngagementInvitation with the reason."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.aws_partner_central.client import AwsRefused, PartnerCentral
from integrations.aws_partner_central.repository import PASS_KEY, SyncRepository

logger = logging.getLogger(__name__)

INVITATION_ID = re.compile(r"^engi-[0-9a-z]{13}$")
STATUSES = ("PENDING", "ACCEPTED", "REJECTED", "EXPIRED")
# RejectionReason's pattern in the model: 1 to 80 printable characters.
REASON = re.compile(r"^[\u0020-\u007E\u00A0-\uD7FF\uE000-\uFFFD]{1,80}$")


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    value = re.sub(r"[\x00-\x1f\x7f]+", " ", value).strip()
    return value[:limit] or None


def _moment(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


class Invitations:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], aws: PartnerCentral, *, page_size: int = 100):
        self.sessions = sessions
        self.aws = aws
        self.page_size = page_size

    def repo(self, session: AsyncSession) -> SyncRepository:
        return SyncRepository(session, self.aws.catalog)

    async def refresh(self) -> int:
        """Read every opportunity invitation sent to us; returns how many were read. A summary that is
        not an invitation AWS could send (a malformed id, an unknown status) is skipped with a problem."""
        token: str | None = None
        count = 0
        while True:
            params: dict[str, Any] = {"ParticipantType": "RECEIVER", "PayloadType": ["OpportunityInvitation"],
                                      "MaxResults": self.page_size,
                                      "Sort": {"SortBy": "InvitationDate", "SortOrder": "DESCENDING"}}
            if token:
                params["NextToken"] = token
            page = await self.aws.call("list_engagement_invitations", **params)
            async with self.sessions.begin() as session:
                repo = self.repo(session)
                for summary in page.get("EngagementInvitationSummaries") or []:
                    ident, status = summary.get("Id"), summary.get("Status")
                    if not isinstance(ident, str) or not INVITATION_ID.fullmatch(ident) or status not in STATUSES:
                        await repo.record_problem(str(ident)[:40], None,
                                                  f"an engagement invitation AWS could not have sent: id "
                                                  f"{str(ident)[:40]!r}, status {str(status)[:20]!r}")
                        continue
                    await repo.upsert_invitation(
                        ident, title=_text(summary.get("EngagementTitle"), 200),
                        sender=_text(summary.get("SenderCompanyName"), 200), status=status,
                        invited_at=_moment(summary.get("InvitationDate")),
                        expires_at=_moment(summary.get("ExpirationDate")))
                    count += 1
            token = page.get("NextToken")
            if not token:
                return count

    async def decide(self, ident: str) -> str:
        """Send the recorded answer to one invitation. Returns its state (sent, failed); raises
        AwsUnavailable to be tried again later."""
        async with self.sessions() as session:
            invitation = await self.repo(session).invitation(ident)
            if invitation is None or invitation.decision_state != "queued":
                return "nothing waiting"
            decision, reason = invitation.decision, invitation.reason
        try:
            if decision == "accept":
                task = await self.aws.call("start_engagement_by_accepting_invitation_task",
                                           Identifier=ident, ClientToken=f"partnerops-{ident}")
                opportunity = task.get("OpportunityId") if isinstance(task.get("OpportunityId"), str) else None
            else:
                await self.aws.call("reject_engagement_invitation", Identifier=ident,
                                    **({"RejectionReason": reason} if reason else {}))
                opportunity = None
        except AwsRefused as exc:
            async with self.sessions.begin() as session:
                row = await self.repo(session).invitation(ident, lock=True)
                if row is not None:
                    row.decision_state, row.decision_error = "failed", str(exc)[:2000]
            return "failed"
        async with self.sessions.begin() as session:
            repo = self.repo(session)
            row = await repo.invitation(ident, lock=True)
            if row is not None:
                row.decision_state, row.decision_error, row.opportunity_id = "sent", None, opportunity
                row.status = "ACCEPTED" if decision == "accept" else "REJECTED"
            if decision == "accept":
                # The opportunity the task makes comes in with the next pass: ask for one now.
                await repo.request("incremental", PASS_KEY, f"invitation {ident} accepted")
        logger.info("aws-sync: invitation %s %sed", ident, decision)
        return "sent"
