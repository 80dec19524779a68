"""ACE opportunities into the platform: passes over ListOpportunities and refreshes of one record.

A pass lists opportunities by LastModifiedDate ascending (an incremental pass from the cursor minus an
overlap, a reconciliation from the beginning), skips the versions already published, and for each
newer one reads GetOpportunity and GetAwsOpportunitySummary and, in one transaction, records the
version, stages its event in the outbox and moves the cursor to that record's place in the list. A
pass that fails halfway (AWS still throttling after botocore's retries, a 500 mid-page, the worker
killed) therefore resumes from the last record it finished: nothing lost, nothing published twice
(and a version read twice is the same event, `mapping.event_id`).

A record modified while the list is being read moves to the end of it, and the records after its old
place move up: one of them can slip past a page boundary unseen. So once a pass sees such a change
the cursor stops moving for the rest of the pass (a pass killed then resumes from before the shift),
and the pass reads the list again from the cursor, up to MAX_SWEEPS times.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import sync
from integrations.aws_partner_central import mapping, outbound_rules
from integrations.aws_partner_central.client import AwsRefused, AwsUnavailable, PartnerCentral
from integrations.aws_partner_central.models import SCHEMA
from integrations.aws_partner_central.repository import WAITING, SyncRepository
from runtime import outbox

logger = logging.getLogger(__name__)

# A pass reads the list again (from the frozen cursor) at most this often when records keep changing
# while it reads; what is still unseen then comes with the next pass or the reconciliation.
MAX_SWEEPS = 3
# AWS's error text as the sync-health event may carry it (no control characters but line breaks).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Counts:
    seen: int = 0
    published: int = 0
    unchanged: int = 0
    failed: int = 0


class Inbound:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], aws: PartnerCentral, *, page_size: int = 100,
                 overlap: timedelta = timedelta(minutes=5), clock: Callable[[], datetime] = utc_now) -> None:
        self.sessions = sessions
        self.aws = aws
        self.catalog = aws.catalog
        self.page_size = page_size
        self.overlap = overlap
        self.clock = clock
        # While a pass runs: when it began, and whether the cursor is frozen (see _page).
        self._started: datetime | None = None
        self._frozen = False

    def repo(self, session: AsyncSession) -> SyncRepository:
        return SyncRepository(session, self.catalog)

    async def run_pass(self, kind: str) -> Counts:
        """One pass; raises AwsUnavailable (the run is recorded as failed) when AWS cannot be read."""
        async with self.sessions.begin() as session:
            run_id = await self.repo(session).start_run(kind)
            cursor = await self.repo(session).cursor()
        after = cursor.watermark - self.overlap if kind == "incremental" and cursor and cursor.watermark else None
        counts = Counts()
        error: str | None = None
        try:
            for _sweep in range(MAX_SWEEPS):
                self._started, self._frozen = self.clock(), False
                await self._pages(after, counts)
                if not self._frozen:
                    break
                # A record changed while the list was read: it moved to the end, and the records after
                # its old place may have moved up a page unseen. Read again from the frozen cursor.
                async with self.sessions() as session:
                    cursor = await self.repo(session).cursor()
                after = cursor.watermark - self.overlap if cursor and cursor.watermark else None
        except (AwsUnavailable, AwsRefused) as exc:
            error = str(exc)
            raise
        finally:
            async with self.sessions.begin() as session:
                repo = self.repo(session)
                await repo.finish_run(run_id, ok=error is None, error=error, **vars(counts))
                # The sync's health, for whoever watches it (the notifications' stale-sync rule).
                await outbox.add_event(session, SCHEMA, sync.SyncRunFinishedV1(
                    source=mapping.SOURCE, catalog=self.catalog, kind=kind, ok=error is None,
                    finished_at=self.clock(), last_success_at=await repo.last_success(),
                    error=_CONTROL.sub(" ", error)[:2000] if error else None))
            logger.info("aws-sync %s pass: %s%s", kind, vars(counts), f"; failed: {error}" if error else "")
        return counts

    async def _pages(self, after: datetime | None, counts: Counts) -> None:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"MaxResults": self.page_size,
                                      "Sort": {"SortBy": "LastModifiedDate", "SortOrder": "ASCENDING"}}
            if after is not None:
                params["LastModifiedDate"] = {"AfterLastModifiedDate": after}
            if token:
                params["NextToken"] = token
            page = await self.aws.list_opportunities(**params)
            await self._page(page.get("OpportunitySummaries") or [], counts)
            token = page.get("NextToken")
            if not token:
                return

    async def _page(self, summaries: list[dict[str, Any]], counts: Counts) -> None:
        ids = [s["Id"] for s in summaries if isinstance(s.get("Id"), str)]
        async with self.sessions() as session:
            known = await self.repo(session).versions(ids)
        skipped_to: datetime | None = None
        for summary in summaries:
            counts.seen += 1
            ident, listed = summary.get("Id"), summary.get("LastModifiedDate")
            if not isinstance(ident, str) or not isinstance(listed, datetime):
                counts.failed += 1
                continue
            if self._started is not None and listed > self._started:
                self._frozen = True
            if ident in known and known[ident] >= listed:
                counts.unchanged += 1
                skipped_to = listed
                continue
            outcome = await self.refresh(ident, listed=listed)
            setattr(counts, outcome, getattr(counts, outcome) + 1)
        if skipped_to is not None and not self._frozen:
            async with self.sessions.begin() as session:
                await self.repo(session).advance(min(skipped_to, self.clock() + mapping.CLOCK_SKEW))

    async def refresh(self, ident: str, *, listed: datetime | None = None) -> str:
        """Read one opportunity and publish it if it is newer than what was published. Returns
        'published', 'unchanged' or 'failed' (the reason recorded as a problem). Raises
        AwsUnavailable when AWS cannot be read now."""
        try:
            opportunity = await self.aws.get_opportunity(ident)
            summary = await self.aws.get_aws_summary(ident)
        except AwsRefused as exc:
            async with self.sessions.begin() as session:
                await self.repo(session).record_problem(ident, listed, f"AWS refused to read it: {exc}")
                if listed is not None and not self._frozen:
                    await self.repo(session).advance(min(listed, self.clock() + mapping.CLOCK_SKEW))
            return "failed"
        now = self.clock()
        modified = opportunity.get("LastModifiedDate")
        if listed is not None and isinstance(modified, datetime) and modified > listed:
            # Changed since it was listed: the list has moved under us (see _page); the cursor stays.
            self._frozen = True
        async with self.sessions.begin() as session:
            repo = self.repo(session)
            if listed is not None and not self._frozen:
                # Its place in the list is done whatever happens below.
                await repo.advance(min(listed, now + mapping.CLOCK_SKEW))
            try:
                event = mapping.to_event(opportunity, summary, now=now)
            except mapping.Unmappable as exc:
                await repo.record_problem(ident, modified if isinstance(modified, datetime) else listed, str(exc))
                return "failed"
            if event.external_id != ident:
                await repo.record_problem(ident, listed, f"AWS answered with another opportunity ({event.external_id})")
                return "failed"
            if (deal_id := await repo.shared_deal(ident)) is not None:
                # Made from one of our deals: the pipeline links that deal rather than making a second.
                event = event.model_copy(update={"deal_id": deal_id})
            review = event.ace.review_status.value if event.ace and event.ace.review_status else None
            if not await repo.record_version(ident, event.last_modified, event.event_id, review,
                                             outbound_rules.fields_of_event(event)):
                return "unchanged"
            await outbox.add_event(session, SCHEMA, event)
            await repo.clear_problem(ident)
            waiting = await repo.edit(ident)
            if waiting is not None and waiting.status in WAITING:
                # A new version (a review ended?): the waiting edit is looked at again now.
                await repo.request("push", ident, "a new version came in")
                await repo.due_now("push", ident)
        return "published"
