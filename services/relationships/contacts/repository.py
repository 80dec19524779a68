"""All SQL of the contacts area."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.relationships.contacts.models import (
    SCHEMA,
    Contact,
    ContactDeal,
    ContactSettings,
    Interaction,
    InteractionContact,
    MemberCapacity,
)
from services.relationships.deadlines.models import Deadline
from services.relationships.pipeline_copy import DealRow, PartnerRow, PipelineSettingsRow

# Rates to the reporting currency (USD with no rates until the pipeline's settings are known); open
# deals in other currencies count toward nothing (and are named as unconverted).
_RATES = f"""
    rate AS (
        SELECT r.key AS currency, r.value::numeric AS rate
        FROM {SCHEMA}.pipeline_settings f, jsonb_each_text(f.fx_rates) r WHERE r.key <> f.reporting_currency
        UNION ALL SELECT reporting_currency, 1 FROM {SCHEMA}.pipeline_settings
        UNION ALL SELECT 'USD', 1 WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.pipeline_settings)
    ),
    open_deal AS (
        SELECT d.id, d.partner_id, d.amount * r.rate AS value
        FROM {SCHEMA}.pipeline_deal d JOIN rate r ON r.currency = d.currency
        WHERE d.outcome = 'open'
    )"""

# A contact's value at stake: the open pipeline shared out among the contacts it depends on, so each
# deal is counted once however many contacts it has (docs/contacts.md). A deal linked to contacts
# (named on it, or touched about it) is shared among them; an organisation's deals no active contact is
# linked to depend on the relationship with the organisation as a whole: shared among its contacts.
_STAKE = f"""
    WITH {_RATES},
    active_link AS (
        SELECT cd.contact_id, cd.opportunity_id FROM {SCHEMA}.contact_deal cd
        JOIN {SCHEMA}.contact c ON c.id = cd.contact_id AND c.archived_at IS NULL
    ),
    link_count AS (SELECT opportunity_id, count(*) AS n FROM active_link GROUP BY opportunity_id),
    linked AS (
        SELECT al.contact_id, sum(o.value / lc.n) AS value FROM active_link al
        JOIN open_deal o ON o.id = al.opportunity_id JOIN link_count lc ON lc.opportunity_id = o.id
        GROUP BY al.contact_id
    ),
    unlinked_total AS (
        SELECT o.partner_id, sum(o.value) AS value FROM open_deal o
        WHERE NOT EXISTS (SELECT 1 FROM link_count lc WHERE lc.opportunity_id = o.id)
        GROUP BY o.partner_id
    ),
    org_size AS (
        SELECT partner_id, count(*) AS n FROM {SCHEMA}.contact WHERE archived_at IS NULL GROUP BY partner_id
    ),
    unlinked AS (
        SELECT t.partner_id, t.value / s.n AS value FROM unlinked_total t JOIN org_size s USING (partner_id)
    )"""


class ContactRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # ------------------------------------------------------------------------------------ contacts

    async def get(self, contact_id: uuid.UUID, *, for_update: bool = False) -> Contact | None:
        stmt = select(Contact).where(Contact.id == contact_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def many(self, ids: Sequence[uuid.UUID], *, for_update: bool = False) -> list[Contact]:
        if not ids:
            return []
        # Locked in id order, so two transactions touching the same contacts cannot deadlock.
        stmt = select(Contact).where(Contact.id.in_(list(ids))).order_by(Contact.id)
        if for_update:
            stmt = stmt.with_for_update()
        return list((await self.session.scalars(stmt)).all())

    async def by_email(self, partner_id: uuid.UUID, email: str) -> Contact | None:
        return (await self.session.scalars(select(Contact).where(
            Contact.partner_id == partner_id, func.lower(Contact.email) == email.lower()))).one_or_none()

    async def by_emails(self, emails: Sequence[str]) -> dict[str, list[Contact]]:
        if not emails:
            return {}
        rows = await self.session.scalars(select(Contact).where(
            func.lower(Contact.email).in_([e.lower() for e in emails]), Contact.archived_at.is_(None)))
        found: dict[str, list[Contact]] = {}
        for c in rows:
            found.setdefault((c.email or "").lower(), []).append(c)
        return found

    async def add(self, contact: Contact) -> Contact:
        self.session.add(contact)
        await self.session.flush()
        return contact

    async def names(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        rows = await self.session.execute(select(Contact.id, Contact.name).where(Contact.id.in_(list(ids))))
        return dict(rows.tuples().all())

    async def reports_of(self, contact_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
        rows = await self.session.execute(select(Contact.id, Contact.name).where(
            Contact.reports_to == contact_id, Contact.archived_at.is_(None)).order_by(Contact.name))
        return list(rows.tuples().all())

    async def manager_chain_has(self, start: uuid.UUID, target: uuid.UUID) -> bool:
        """Whether `target` is `start` or above it in the reports-to chain (a cycle if it were set)."""
        found = await self.session.scalar(text(f"""
            WITH RECURSIVE up(id, depth) AS (
                SELECT CAST(:start AS uuid), 0
                UNION SELECT c.reports_to, up.depth + 1 FROM {SCHEMA}.contact c JOIN up ON c.id = up.id
                WHERE c.reports_to IS NOT NULL AND up.depth < 100
            ) SELECT EXISTS (SELECT 1 FROM up WHERE id = CAST(:target AS uuid))"""),
            {"start": start, "target": target})
        return bool(found)

    async def search(self, *, q: str | None, partner_id: uuid.UUID | None, owner: str | None, role: str | None,
                     crucial: bool | None, include_archived: bool, order: list[Any], offset: int, limit: int,
                     ) -> tuple[list[Row[Any]], int]:
        """Contacts with their organisation's name and value at stake, and the total matching."""
        conditions = []
        if q:
            like = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conditions.append(or_(func.lower(Contact.name).like(like, escape="\\"),
                                  func.lower(Contact.email).like(like, escape="\\"),
                                  func.lower(PartnerRow.name).like(like, escape="\\")))
        if partner_id is not None:
            conditions.append(Contact.partner_id == partner_id)
        if owner is not None:
            conditions.append(Contact.owner == owner)
        if role is not None:
            conditions.append(func.lower(Contact.role) == role.lower())
        if crucial is not None:
            conditions.append(Contact.crucial.is_(crucial))
        if not include_archived:
            conditions.append(Contact.archived_at.is_(None))
        base = select(Contact.id).outerjoin(PartnerRow, PartnerRow.id == Contact.partner_id).where(*conditions)
        total = await self.session.scalar(select(func.count()).select_from(base.subquery())) or 0
        stake = await self.stake_subquery()
        rows = await self.session.execute(
            select(Contact, PartnerRow.name, func.coalesce(stake.c.value, 0))
            .outerjoin(PartnerRow, PartnerRow.id == Contact.partner_id)
            .outerjoin(stake, stake.c.id == Contact.id)
            .where(*conditions).order_by(*order, Contact.id).offset(offset).limit(limit))
        return list(rows.all()), total

    async def stake_subquery(self) -> Any:
        return text(f"""{_STAKE}
            SELECT c.id, coalesce(l.value, 0) + coalesce(u.value, 0) AS value
            FROM {SCHEMA}.contact c LEFT JOIN linked l ON l.contact_id = c.id
            LEFT JOIN unlinked u ON u.partner_id = c.partner_id""").columns(
            id=Contact.id.type, value=Contact.energy.type).subquery("stake")

    async def stakes(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Decimal]:
        if not ids:
            return {}
        rows = await self.session.execute(text(f"""{_STAKE}
            SELECT c.id, coalesce(l.value, 0) + coalesce(u.value, 0)
            FROM {SCHEMA}.contact c LEFT JOIN linked l ON l.contact_id = c.id
            LEFT JOIN unlinked u ON u.partner_id = c.partner_id
            WHERE c.id = ANY(:ids)"""), {"ids": list(ids)})
        return {i: Decimal(v).quantize(Decimal("0.01")) for i, v in rows.tuples()}

    async def all_for_map(self, crucial_only: bool) -> list[Row[Any]]:
        """Every active contact with what the heatmap and health need (the stake as a number)."""
        crucial = "AND c.crucial" if crucial_only else ""
        rows = await self.session.execute(text(f"""{_STAKE}
            SELECT c.id, c.partner_id, coalesce(org.name, '(unknown organisation)') AS org_name, c.owner, c.name,
                   c.role, c.crucial, c.seniority, c.energy, c.last_touch_at, c.touches, c.cold_at,
                   coalesce(l.value, 0) AS linked, coalesce(u.value, 0) AS unlinked
            FROM {SCHEMA}.contact c LEFT JOIN {SCHEMA}.pipeline_partner org ON org.id = c.partner_id
            LEFT JOIN linked l ON l.contact_id = c.id LEFT JOIN unlinked u ON u.partner_id = c.partner_id
            WHERE c.archived_at IS NULL {crucial}"""))
        return list(rows.all())

    async def open_value_by_partner(self) -> dict[uuid.UUID | None, Decimal]:
        rows = await self.session.execute(text(f"""WITH {_RATES}
            SELECT partner_id, sum(value) FROM open_deal GROUP BY partner_id"""))
        return dict(rows.tuples().all())

    async def unlinked_value_by_partner(self) -> dict[uuid.UUID | None, Decimal]:
        rows = await self.session.execute(text(f"""{_STAKE} SELECT partner_id, value FROM unlinked_total"""))
        return dict(rows.tuples().all())

    async def open_deals_of_contacts(self) -> list[tuple[uuid.UUID, uuid.UUID, Decimal]]:
        """(contact, deal, the deal's whole value) for every open deal linked to an active contact."""
        rows = await self.session.execute(text(f"""WITH {_RATES}
            SELECT cd.contact_id, o.id, o.value
            FROM {SCHEMA}.contact_deal cd JOIN open_deal o ON o.id = cd.opportunity_id
            JOIN {SCHEMA}.contact c ON c.id = cd.contact_id AND c.archived_at IS NULL"""))
        return list(rows.tuples().all())

    async def unconverted_currencies(self) -> list[str]:
        rows = await self.session.scalars(text(f"""WITH {_RATES}
            SELECT DISTINCT d.currency FROM {SCHEMA}.pipeline_deal d
            WHERE d.outcome = 'open' AND NOT EXISTS (SELECT 1 FROM rate r WHERE r.currency = d.currency)
            ORDER BY 1"""))
        return list(rows)

    async def attention_candidates(self, until: datetime, owner: str | None) -> list[Row[Any]]:
        """In one read: the active contacts that go cold by `until` (or are crucial and never touched),
        crucial or with pipeline at stake, with their organisation and stake; one owner's (the contact's
        owner, else the organisation's) when given."""
        mine = "AND coalesce(c.owner, org.owner) = :owner" if owner is not None else ""
        rows = await self.session.execute(text(f"""{_STAKE}
            SELECT c.id, c.name, c.partner_id, coalesce(org.name, '?') AS org_name,
                   coalesce(c.owner, org.owner) AS owner, c.crucial, c.seniority, c.energy, c.last_touch_at,
                   c.touches, c.cold_at, coalesce(l.value, 0) + coalesce(u.value, 0) AS stake
            FROM {SCHEMA}.contact c LEFT JOIN {SCHEMA}.pipeline_partner org ON org.id = c.partner_id
            LEFT JOIN linked l ON l.contact_id = c.id LEFT JOIN unlinked u ON u.partner_id = c.partner_id
            WHERE c.archived_at IS NULL {mine}
              AND (c.cold_at <= :until OR (c.crucial AND c.last_touch_at IS NULL))
              AND (c.crucial OR coalesce(l.value, 0) + coalesce(u.value, 0) > 0)"""),
            {"until": until, **({"owner": owner} if owner is not None else {})})
        return list(rows.all())

    async def near_cold(self, until: datetime, *, crucial_only: bool) -> list[Row[Any]]:
        """Active contacts whose cold date is before `until` (read through the cold_at index)."""
        crucial = "AND c.crucial" if crucial_only else ""
        rows = await self.session.execute(text(f"""
            SELECT c.id FROM {SCHEMA}.contact c
            WHERE c.archived_at IS NULL AND c.cold_at IS NOT NULL AND c.cold_at <= :until {crucial}"""),
            {"until": until})
        return list(rows.all())

    async def untouched_crucial(self) -> list[uuid.UUID]:
        rows = await self.session.scalars(select(Contact.id).where(
            Contact.archived_at.is_(None), Contact.crucial.is_(True), Contact.last_touch_at.is_(None)))
        return list(rows)

    async def mark_cooling_notified(self, contact_id: uuid.UUID, episode: datetime) -> bool:
        """Claim the alert of this crossing; false when it was announced already (by anyone)."""
        done = await self.session.execute(
            update(Contact).where(Contact.id == contact_id, or_(Contact.cooling_notified_for.is_(None),
                                                                 Contact.cooling_notified_for != episode))
            .values(cooling_notified_for=episode).returning(Contact.id))
        return done.first() is not None

    # -------------------------------------------------------------------------------- interactions

    async def add_interaction(self, interaction: Interaction, contact_ids: Sequence[uuid.UUID]) -> bool:
        """Store it with its contacts; false when an interaction with the same calendar UID exists."""
        values = {c.key: getattr(interaction, c.key) for c in Interaction.__table__.columns if c.key != "created_at"}
        stmt = insert(Interaction).values(**values)
        if interaction.uid is not None:
            stmt = stmt.on_conflict_do_nothing(index_elements=["uid"], index_where=text("uid IS NOT NULL"))
        done = await self.session.execute(stmt.returning(Interaction.id))
        if done.first() is None:
            return False
        await self.session.execute(insert(InteractionContact), [
            {"interaction_id": interaction.id, "contact_id": c} for c in contact_ids])
        return True

    async def interaction(self, interaction_id: uuid.UUID) -> Interaction | None:
        return await self.session.get(Interaction, interaction_id)

    async def contacts_of(self, interaction_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[tuple[uuid.UUID, str]]]:
        if not interaction_ids:
            return {}
        rows = await self.session.execute(
            select(InteractionContact.interaction_id, Contact.id, Contact.name)
            .join(Contact, Contact.id == InteractionContact.contact_id)
            .where(InteractionContact.interaction_id.in_(list(interaction_ids))).order_by(Contact.name))
        out: dict[uuid.UUID, list[tuple[uuid.UUID, str]]] = {}
        for interaction_id, contact_id, name in rows.tuples():
            out.setdefault(interaction_id, []).append((contact_id, name))
        return out

    async def delete_interaction(self, interaction_id: uuid.UUID) -> None:
        await self.session.execute(delete(Interaction).where(Interaction.id == interaction_id))

    async def interactions_of(self, contact_id: uuid.UUID, limit: int | None = None) -> list[Interaction]:
        stmt = (select(Interaction).join(InteractionContact, InteractionContact.interaction_id == Interaction.id)
                .where(InteractionContact.contact_id == contact_id)
                .order_by(Interaction.occurred_at.desc(), Interaction.id))
        if limit is not None:
            stmt = stmt.limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def touches_of(self, contact_id: uuid.UUID) -> list[tuple[datetime, str, str]]:
        rows = await self.session.execute(
            select(Interaction.occurred_at, Interaction.kind, Interaction.initiated_by)
            .join(InteractionContact, InteractionContact.interaction_id == Interaction.id)
            .where(InteractionContact.contact_id == contact_id))
        return list(rows.tuples().all())

    async def contacts_with_touches(self) -> list[uuid.UUID]:
        return list(await self.session.scalars(select(Contact.id).where(Contact.touches > 0).order_by(Contact.id)))

    # ------------------------------------------------------------------------------- deals, links

    async def link(self, contact_id: uuid.UUID, opportunity_id: uuid.UUID, via: str) -> None:
        await self.session.execute(insert(ContactDeal).values(contact_id=contact_id, opportunity_id=opportunity_id,
                                                              via=via).on_conflict_do_nothing())

    async def deals_of(self, contact: Contact) -> list[tuple[DealRow, str]]:
        linked = select(ContactDeal.opportunity_id).where(ContactDeal.contact_id == contact.id)
        rows = await self.session.scalars(select(DealRow).where(or_(
            DealRow.id.in_(linked), DealRow.partner_id == contact.partner_id)).order_by(
            DealRow.outcome != "open", DealRow.amount.desc(), DealRow.id).limit(200))
        ids = set((await self.session.scalars(linked)).all())
        return [(d, "linked" if d.id in ids else "organisation") for d in rows]

    async def deal(self, opportunity_id: uuid.UUID) -> DealRow | None:
        return await self.session.get(DealRow, opportunity_id)

    async def action_deadlines(self, until: date) -> list[DealRow]:
        rows = await self.session.scalars(select(DealRow).where(
            DealRow.outcome == "open", DealRow.ace_action_due_date.is_not(None),
            DealRow.ace_action_due_date <= until, DealRow.ace_review_status == "Action Required"))
        return list(rows.all())

    async def open_deadlines(self, until: date) -> list[Deadline]:
        """Funding and competency deadlines still to be met by `until` (services/relationships/deadlines)."""
        rows = await self.session.scalars(select(Deadline).where(Deadline.status == "open", Deadline.due_date <= until))
        return list(rows.all())

    async def rates(self) -> dict[str, Decimal]:
        """1 unit of each currency in the reporting currency (the pipeline's settings)."""
        rows = await self.session.execute(text(f"WITH {_RATES} SELECT currency, rate FROM rate"))
        return {currency: Decimal(rate) for currency, rate in rows.tuples()}

    async def deal_values(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Decimal]:
        if not ids:
            return {}
        rows = await self.session.execute(text(f"WITH {_RATES} SELECT id, value FROM open_deal WHERE id = ANY(:ids)"),
                                          {"ids": list(ids)})
        return dict(rows.tuples().all())

    # ------------------------------------------------------------------------------ pipeline copy

    async def org(self, partner_id: uuid.UUID) -> PartnerRow | None:
        return await self.session.get(PartnerRow, partner_id)

    async def orgs(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, PartnerRow]:
        if not ids:
            return {}
        rows = await self.session.scalars(select(PartnerRow).where(PartnerRow.id.in_(list(set(ids)))))
        return {o.id: o for o in rows}

    async def org_by_name(self, name: str) -> list[PartnerRow]:
        rows = await self.session.scalars(select(PartnerRow).where(func.lower(PartnerRow.name) == name.strip().lower(),
                                                                   PartnerRow.archived.is_(False)))
        return list(rows.all())

    async def reporting_currency(self) -> str:
        return await self.session.scalar(select(PipelineSettingsRow.reporting_currency)) or "USD"

    # -------------------------------------------------------------------------- settings, capacity

    async def settings(self, *, for_update: bool = False) -> tuple[dict[str, Any] | None, int]:
        stmt = select(ContactSettings).where(ContactSettings.id == 1)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self.session.scalars(stmt)).one_or_none()
        return (row.settings, row.version) if row else (None, 0)

    async def save_settings(self, settings: dict[str, Any], version: int) -> None:
        stmt = insert(ContactSettings).values(id=1, settings=settings, version=version)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[ContactSettings.id], set_={"settings": stmt.excluded.settings,
                                                       "version": stmt.excluded.version}))

    async def capacities(self) -> dict[str, Decimal]:
        rows = await self.session.execute(select(MemberCapacity.owner, MemberCapacity.hours_per_week))
        return dict(rows.tuples().all())

    async def set_capacity(self, owner: str, hours: Decimal) -> None:
        stmt = insert(MemberCapacity).values(owner=owner, hours_per_week=hours)
        await self.session.execute(stmt.on_conflict_do_update(
            index_elements=[MemberCapacity.owner], set_={"hours_per_week": stmt.excluded.hours_per_week}))
