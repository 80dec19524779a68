"""Deals made in PartnerOps going to ACE (the request is built in share_rules.py).

Three calls, each result committed before the next so a worker stopped anywhere resumes at the step it
had not finished: CreateOpportunity with the share's ClientToken (AWS answers a repeat of the same
token with the opportunity the first call made, so a retry after a timeout — botocore's or ours —
creates nothing twice), AssociateOpportunity with the solution, StartEngagementFromOpportunityTask to
submit it to AWS. Once the opportunity exists its refresh is asked for: the version that comes in
carries our deal's id, and the pipeline links the deal to it instead of making a second one.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.aws_partner_central import share_rules
from integrations.aws_partner_central.client import AwsRefused, PartnerCentral
from integrations.aws_partner_central.repository import SyncRepository

logger = logging.getLogger(__name__)
DONE = ("submitted", "failed")


@dataclass(frozen=True)
class Step:
    state: str
    token: str
    request: dict
    solution: str
    opportunity: str | None


class Sharing:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], aws: PartnerCentral) -> None:
        self.sessions = sessions
        self.aws = aws

    def repo(self, session: AsyncSession) -> SyncRepository:
        return SyncRepository(session, self.aws.catalog)

    async def push(self, deal_id: uuid.UUID) -> str:
        """Take the share of one deal as far as it goes; returns its state. Raises AwsUnavailable (the
        driver tries again later, from the step not finished)."""
        while True:
            async with self.sessions() as session:
                share = await self.repo(session).share(deal_id)
                if share is None or share.state in DONE:
                    return share.state if share else "nothing waiting"
                step = Step(share.state, share.client_token, dict(share.request), share.solution_id,
                            share.opportunity_id)
            try:
                await self._step(deal_id, step)
            except AwsRefused as exc:
                await self._save(deal_id, step.opportunity, state="failed", error=f"AWS refused it: {exc}")
                logger.warning("aws-sync: sharing deal %s failed: %s", deal_id, exc)
                return "failed"

    async def _step(self, deal_id: uuid.UUID, step: Step) -> None:
        if step.state == "queued":
            answer = await self.aws.call("create_opportunity", ClientToken=step.token, **step.request)
            await self._save(deal_id, answer["Id"], state="created", opportunity_id=answer["Id"])
            logger.info("aws-sync: deal %s shared as %s", deal_id, answer["Id"])
        elif step.state == "created":
            await self.aws.call("associate_opportunity", OpportunityIdentifier=step.opportunity,
                                RelatedEntityType=share_rules.SOLUTIONS, RelatedEntityIdentifier=step.solution)
            await self._save(deal_id, step.opportunity, state="associated")
        elif step.state == "associated":
            task = await self.aws.call("start_engagement_from_opportunity_task", Identifier=step.opportunity,
                                       ClientToken=f"{step.token}-submit", AwsSubmission=share_rules.SUBMISSION)
            await self._save(deal_id, step.opportunity, state="submitted", error=None,
                             task_id=str(task.get("TaskId") or "")[:100] or None)

    async def _save(self, deal_id: uuid.UUID, opportunity: str | None, **values: object) -> None:
        async with self.sessions.begin() as session:
            repo = self.repo(session)
            await repo.set_share(deal_id, **values)
            if opportunity is not None:
                # Its newest version comes in linked to the deal (the pipeline makes no second deal).
                await repo.request("refresh", opportunity, "shared from PartnerOps")
                await repo.wake_driver()
