"""The admin settings page against the real pipeline service: admins only, saved through the service
and audited, each refusal shown beside its field, hostile form posts refused without a 500."""

from __future__ import annotations

import re

import pytest

from gateway.auth import Role
from runtime.testing import unique
from tests.support.gateway import Gateway

HTML = {"accept": "text/html"}


async def _page(gateway: Gateway, role: Role = Role.admin):
    person = gateway.people[role]
    return await person.client.get("/admin/settings", headers=HTML)


def _form(html: str) -> dict[str, str]:
    """The settings form's current values, as a browser would post them back."""
    start = html.index('data-testid="settings-form"')
    form = html[start:html.index("</form>", start)]
    values = dict(re.findall(r'<input id="f-(\w+)" name="\w+" type="text" value="([^"]*)"', form))
    values["expected_version"] = re.search(r'name="expected_version" value="(\d+)"', form)[1]
    values["fiscal_year_start_month"] = re.search(r'<option value="(\d+)" selected', form)[1]
    values["fx_rates"] = re.search(r'name="fx_rates"[^>]*>([^<]*)</textarea>', form)[1]
    return values


async def _post(gateway: Gateway, path: str, data, role: Role = Role.admin):
    person = gateway.people[role]
    return await person.client.post(path, data=data, headers={**HTML, "x-csrf-token": person.csrf})


def _field_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'class="field-error"[^>]*data-field="([^"]+)"[^>]*>([^<]+)<', html))


class TestSettingsPage:
    async def test_only_admins_see_it(self, gateway: Gateway):
        for role in (Role.viewer, Role.member, Role.manager):
            assert (await _page(gateway, role)).status_code == 403
            assert (await _post(gateway, "/admin/settings", {"quarterly_target": "1"}, role)).status_code == 403
        page = await _page(gateway)
        assert page.status_code == 200 and "Quarterly target" in page.text and "Stages of" in page.text

    async def test_a_change_is_saved_through_the_service_and_audited(self, gateway: Gateway):
        form = _form((await _page(gateway)).text)
        target = f"{300000 + len(unique('t')) * 7}.00"
        saved = await _post(gateway, "/admin/settings", {**form, "quarterly_target": target,
                                                         "fx_rates": "EUR 1.10\ngbp=1.25"})
        assert saved.status_code == 303, saved.text
        again = _form((await _page(gateway)).text)
        assert (again["quarterly_target"], again["fx_rates"]) == (target, "EUR 1.1\nGBP 1.25")
        assert int(again["expected_version"]) == int(form["expected_version"]) + 1
        api = await gateway.people[Role.admin].client.get("/api/pipeline/settings")
        assert api.json()["quarterly_target"] == target and api.json()["fx_rates"] == {"EUR": "1.10", "GBP": "1.25"}
        audit = (await gateway.people[Role.admin].client.get("/api/audit?entity=pipeline&limit=500")).json()
        assert any(a["action"] == "pipeline.settings_changed" and a["actor"] == "admin@gateway.test"
                   and a["after"].get("quarterly_target") == target for a in audit), audit
        # A stale form (someone saved meanwhile) is refused, not applied over their change.
        stale = await _post(gateway, "/admin/settings", {**form, "quarterly_target": "1.00"})
        assert stale.status_code == 409 and "Someone else changed the settings" in stale.text

    @pytest.mark.parametrize(("changes", "field"), [
        ({"quarterly_target": "-5"}, "quarterly_target"),
        ({"quarterly_target": "lots"}, "quarterly_target"),
        ({"quarterly_target": "1e400"}, "quarterly_target"),
        ({"quarterly_target": "9" * 40}, "quarterly_target"),
        ({"quarterly_target": "100.001"}, "quarterly_target"),
        ({"fiscal_year_start_month": "13"}, "fiscal_year_start_month"),
        ({"stuck_after_days": "0"}, "stuck_after_days"),
        ({"stuck_after_days": "\x00"}, "stuck_after_days"),
        ({"reporting_currency": "US"}, "reporting_currency"),
        ({"silver": "60000", "gold": "50000"}, "tier_thresholds"),
        ({"fx_rates": "EUR"}, "fx_rates"),
        ({"fx_rates": "EUR 0"}, "fx_rates"),
        ({"fx_rates": "EUR -1"}, "fx_rates"),
        ({"fx_rates": "XYZ 1.2"}, "fx_rates"),
        ({"fx_rates": "EUR 1.1\nEUR 1.2"}, "fx_rates"),
        ({"fx_rates": "\n".join(f"E{i:02d} 1" for i in range(201))}, "fx_rates"),
        ({"fx_rates": "EUR 1.123456789"}, "fx_rates"),
    ])
    async def test_a_refused_value_is_shown_beside_its_field_and_nothing_changes(self, gateway: Gateway, changes,
                                                                                  field):
        before = (await gateway.people[Role.admin].client.get("/api/pipeline/settings")).json()
        form = _form((await _page(gateway)).text)
        response = await _post(gateway, "/admin/settings", {**form, **changes})
        assert response.status_code == 422, response.text[:2000]
        errors = _field_errors(response.text)
        assert field in errors, (errors, response.text[:3000])
        # What was typed is shown again, to be corrected.
        typed = next(iter(changes.values()))
        if "\x00" not in typed and len(typed) < 100 and field != "fiscal_year_start_month":  # a select
            assert typed.split("\n")[0] in response.text
        after = (await gateway.people[Role.admin].client.get("/api/pipeline/settings")).json()
        assert after == before

    async def test_hostile_posts_are_refused_without_a_server_error(self, gateway: Gateway):
        form = _form((await _page(gateway)).text)
        for body in ({}, {"expected_version": "-1"}, {**form, "expected_version": "x" * 5000},
                     {**form, "fx_rates": "EUR 1.1" + " " * 30_000}, {**form, "quarterly_target": "١٢٣"},
                     {**form, "mystery": "1"}):
            response = await _post(gateway, "/admin/settings", body)
            assert response.status_code in (303, 409, 422), (list(body)[:3], response.status_code, response.text[:500])
        assert (await _post(gateway, "/admin/settings", {**form}, Role.admin)).status_code in (303, 409)


class TestStagesForm:
    async def _rows(self, gateway: Gateway, key: str) -> dict[str, object]:
        html = (await _page(gateway)).text
        start = html.index(f'data-testid="stages-form-{key}"')
        form = html[start:html.index("</form>", start)]
        cols = {c: re.findall(rf'name="stage_{c}" value="([^"]*)"', form) for c in ("key", "name", "probability")}
        chosen = re.findall(r'<option value="(\w+)" selected>', form)
        name = re.search(r'name="name" value="([^"]*)"', form)[1]
        assert len(chosen) == len(cols["key"])
        return {"name": name, **{f"stage_{c}": v for c, v in cols.items()}, "stage_outcome": chosen}

    async def _define(self, gateway: Gateway) -> str:
        key = unique("p").lower()
        stages = [{"key": "intro", "name": "Intro", "probability": 20}, {"key": "pilot", "name": "Pilot",
                                                                         "probability": 60},
                  {"key": "signed", "name": "Signed", "probability": 100, "outcome": "won"},
                  {"key": "dropped", "name": "Dropped", "probability": 0, "outcome": "lost"}]
        admin = gateway.people[Role.admin]
        r = await admin.client.put(f"/api/pipelines/{key}", json={"name": "MSP", "stages": stages},
                                   headers={"x-csrf-token": admin.csrf})
        assert r.status_code == 200, r.text
        return key

    async def test_probabilities_are_changed_and_a_stage_added_and_audited(self, gateway: Gateway):
        key = await self._define(gateway)
        form = await self._rows(gateway, key)
        assert form["stage_key"] == ["intro", "pilot", "signed", "dropped", ""]
        form["stage_probability"][1] = "70"
        form["stage_key"][4], form["stage_name"][4], form["stage_probability"][4] = "proposal", "Proposal", "80"
        # The new stage goes last in the form; stages keep the order they are posted in.
        r = await _post(gateway, f"/admin/settings/pipelines/{key}", form)
        assert r.status_code == 303, r.text[:3000]
        stage_sets = (await gateway.people[Role.admin].client.get("/api/pipelines")).json()["items"]
        mine = next(s for s in stage_sets if s["key"] == key)
        assert [(s["key"], s["probability"]) for s in mine["stages"]] == [
            ("intro", 20), ("pilot", 70), ("signed", 100), ("dropped", 0), ("proposal", 80)]
        audit = (await gateway.people[Role.admin].client.get("/api/audit?entity=pipeline&limit=500")).json()
        assert any(a["action"] == "pipeline.defined" and a["entity_id"] == key for a in audit)

    @pytest.mark.parametrize(("cell", "value", "field"), [
        ("stage_probability", "150", "stages.1.probability"),
        ("stage_probability", "-1", "stages.1.probability"),
        ("stage_probability", "fifty", "stages.1.probability"),
        ("stage_probability", "50.5", "stages.1.probability"),
        ("stage_key", "Bad Key", "stages.1.key"),
        ("stage_name", "Pi\x00lot", "stages.1.name"),
        ("stage_name", "x" * 301, "stages.1.name"),
    ])
    async def test_a_bad_cell_is_shown_beside_it(self, gateway: Gateway, cell, value, field):
        key = await self._define(gateway)
        form = await self._rows(gateway, key)
        form[cell][1] = value
        r = await _post(gateway, f"/admin/settings/pipelines/{key}", form)
        assert r.status_code == 422, r.text[:2000]
        assert field in _field_errors(r.text), _field_errors(r.text)

    async def test_set_level_refusals_are_shown_above_the_table(self, gateway: Gateway):
        key = await self._define(gateway)
        form = await self._rows(gateway, key)
        form["stage_probability"][2] = "90"  # a won stage at 90 %
        r = await _post(gateway, f"/admin/settings/pipelines/{key}", form)
        assert r.status_code == 422 and 'data-field="form"' in r.text and "100" in r.text, r.text[:2000]
        form = await self._rows(gateway, key)
        form["stage_key"][3] = form["stage_name"][3] = form["stage_probability"][3] = ""  # no lost stage left
        r = await _post(gateway, f"/admin/settings/pipelines/{key}", form)
        assert r.status_code == 422 and "lost stage" in r.text

    async def test_hostile_stage_posts(self, gateway: Gateway):
        key = await self._define(gateway)
        form = await self._rows(gateway, key)
        too_many = {**form, **{f"stage_{c}": ["s"] * 40 for c in ("key", "name", "probability", "outcome")}}
        uneven = {**form, "stage_name": form["stage_name"][:2]}
        for body in (too_many, uneven, {}, {"name": "x"}):
            r = await _post(gateway, f"/admin/settings/pipelines/{key}", body)
            assert r.status_code == 422, r.text[:1000]
        # A key that cannot exist in the path is a page that does not exist (browsers get the 404 page).
        assert (await _post(gateway, "/admin/settings/pipelines/Bad-Key", form)).status_code == 404
        assert (await _post(gateway, "/admin/settings/pipelines/" + "a" * 500, form)).status_code == 404
