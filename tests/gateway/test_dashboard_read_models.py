"""The dashboard reads only the gateway's read models: its top movers ("Lead → Qualified") come from
the opportunity read model fed by the pipeline's events, so the page renders the same with the
pipeline service stopped; so does the check that a partner exists."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from contracts import pipeline as pc
from contracts.base import ErrorKind
from gateway.auth import Role
from gateway.known_partner import known_partner
from gateway.read_models.pipeline import _previous_stage
from runtime.embedded import EmbeddedNats
from runtime.errors import CommandFailed
from runtime.service import shutdown, start
from runtime.settings import Settings
from runtime.testing import TEST_SECRET, eventually, unique
from services.pipeline.handlers import definition as pipeline_definition
from tests.support.bus import bus_goes_too
from tests.support.gateway import TEST_SETTINGS, Gateway, gateway_with_services

HTML = {"accept": "text/html"}


def _snapshot(stage: str) -> pc.Opportunity:
    now = datetime.now(UTC)
    return pc.Opportunity(
        id=uuid.uuid4(), name="Deal", customer="Acme", amount="1.00", currency="USD", pipeline="resale", stage=stage,
        stage_name=stage.title(), probability=25, outcome=pc.Outcome.open, deal_model=pc.DealModel.resale,
        source=pc.Source.manual, created_at=now, stage_entered_at=now, updated_at=now, version=3,
        partner_id=None, expected_close_date=None, owner=None)


class TestPreviousStage:
    @pytest.mark.parametrize(("move", "stored_stage", "stored_previous", "expected"), [
        ((3, "lead"), "lead", None, "lead"),             # the batch's stage-changed event says where it came from
        ((3, "proposal"), None, None, "proposal"),       # even for a row not stored yet
        (None, "lead", None, "lead"),                     # an update snapshot in another stage than stored: a move
        (None, "qualified", "lead", "lead"),              # an update in the same stage keeps the stored move
        (None, None, None, None),                         # a new deal has not moved
    ])
    def test_the_stage_before_the_last_move(self, move, stored_stage, stored_previous, expected):
        assert _previous_stage(_snapshot("qualified"), move, stored_stage, stored_previous) == expected


@pytest.fixture(scope="module")
async def world(private_db: dict[str, str], private_bus: EmbeddedNats) -> AsyncIterator[tuple[Gateway, list]]:
    """The gateway with the pipeline service started on its own, so the test can stop it."""
    def settings_of(owner: str) -> Settings:
        return Settings(database_url=private_db[owner], nats_url=private_bus.url_for(owner),
                        secret_key=TEST_SECRET, **TEST_SETTINGS)

    stop = asyncio.Event()
    pipeline = [await start(pipeline_definition, settings_of("pipeline"), stop)]
    try:
        async with gateway_with_services(settings_of, [], "dashboard.test") as gw:
            yield gw, pipeline
    finally:
        bus_goes_too(*pipeline)
        for running in pipeline:
            await shutdown(running)


def _movers(html: str) -> str:
    return html.split('data-testid="movers"')[1].split("</section>")[0]


async def test_the_dashboard_shows_moves_from_the_read_model_with_the_pipeline_stopped(world):
    gateway, pipeline = world
    member = gateway.people[Role.member]
    api = {"x-csrf-token": member.csrf}
    partner = await member.client.post("/api/partners", json={"name": unique("Mover partner "), "type": "isv"},
                                       headers=api)
    assert partner.status_code == 201, partner.text
    name = unique("Mover deal ")
    deal = await member.client.post("/api/opportunities", json={
        "name": name, "customer": "Acme Corp", "amount": "987654.00", "currency": "USD", "pipeline": "resale",
        "stage": "lead", "partner_id": partner.json()["id"]}, headers=api)
    assert deal.status_code == 201, deal.text
    deal_id = deal.json()["id"]
    moved = await member.client.post(f"/api/opportunities/{deal_id}/stage", json={"stage": "qualified"}, headers=api)
    assert moved.status_code == 200, moved.text
    # A later change that is not a move keeps where the deal came from.
    changed = await member.client.patch(f"/api/opportunities/{deal_id}", json={"amount": "987655.00"}, headers=api)
    assert changed.status_code == 200, changed.text

    async def shown() -> str | None:
        page = await member.client.get("/", headers=HTML)
        movers = _movers(page.text)
        return movers if name in movers and "987,655" in movers else None

    before = await eventually(shown, what="the move and the change to reach the dashboard")
    assert "Lead → " in before and ">Qualified<" in before

    # The pipeline service stops: commands to it now fail, the dashboard does not need it.
    for running in pipeline:
        await shutdown(running)
    pipeline.clear()
    down = await member.client.get(f"/api/opportunities/{deal_id}")
    assert down.status_code >= 500, down.text

    page = await member.client.get("/", headers=HTML)
    assert page.status_code == 200
    movers = _movers(page.text)
    assert name in movers and "Lead → " in movers and ">Qualified<" in movers
    assert movers.split(name)[1].split("</li>")[0] == before.split(name)[1].split("</li>")[0]

    # Whether a partner exists (for commission agreements and fund requests) is answered by the
    # gateway's partner read model: a known partner passes with the pipeline down; only an id the read
    # model has never heard of is asked of the pipeline (unavailable now).
    request = SimpleNamespace(app=gateway.app)
    await known_partner(request, uuid.UUID(partner.json()["id"]), "test")
    with pytest.raises(CommandFailed) as unknown:
        await known_partner(request, uuid.uuid4(), "test")
    assert unknown.value.error.kind == ErrorKind.unavailable
