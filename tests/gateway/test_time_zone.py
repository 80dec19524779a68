"""People choose the time zone their times are shown in; an unknown zone is refused by field."""

from __future__ import annotations

from gateway.auth import Role
from tests.support.gateway import Gateway


class TestTimeZone:
    async def test_anyone_sets_their_own_zone_and_it_is_audited(self, gateway: Gateway):
        viewer = gateway.people[Role.viewer]
        response = await viewer.client.patch("/api/me", json={"time_zone": "Europe/Berlin"},
                                             headers={"x-csrf-token": viewer.csrf})
        assert response.status_code == 200 and response.json()["time_zone"] == "Europe/Berlin"
        assert (await viewer.client.get("/api/me")).json()["time_zone"] == "Europe/Berlin"
        admin = gateway.people[Role.admin]
        entries = (await admin.client.get("/api/audit", params={"entity": "user"})).json()
        mine = next(e for e in entries if e["entity_id"] == viewer.id)
        assert mine["before"]["time_zone"] == "UTC" and mine["after"]["time_zone"] == "Europe/Berlin"

    async def test_an_unknown_zone_is_refused_with_its_field(self, gateway: Gateway):
        member = gateway.people[Role.member]
        for bad in ("Mars/Olympus_Mons", "../../etc/passwd", ""):
            response = await member.client.patch("/api/me", json={"time_zone": bad},
                                                 headers={"x-csrf-token": member.csrf})
            assert response.status_code == 422, bad
            assert response.json()["detail"][0]["loc"] == ["body", "time_zone"]

    async def test_admins_set_anyones_zone_others_cannot(self, gateway: Gateway):
        admin, member = gateway.people[Role.admin], gateway.people[Role.member]
        response = await admin.client.patch(f"/api/users/{member.id}", json={"time_zone": "America/New_York"},
                                            headers={"x-csrf-token": admin.csrf})
        assert response.status_code == 200 and response.json()["time_zone"] == "America/New_York"
        refused = await member.client.patch(f"/api/users/{member.id}", json={"time_zone": "UTC"},
                                            headers={"x-csrf-token": member.csrf})
        assert refused.status_code == 403
