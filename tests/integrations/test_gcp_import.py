"""Google Cloud Partner Advantage exports into the pipeline: the mapping with malformed and hostile
rows, and whole files published as the `gcp-sync` user into the running pipeline service."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from integrations.gcp import mapping
from integrations.gcp.__main__ import publish
from integrations.gcp.client import CsvExport
from runtime.testing import eventually
from tests.pipeline.helpers import sql

HEADER = "Opportunity ID,Opportunity Name,Customer Name,Stage,Status,Deal Size,Currency,Expected Close Date," \
         "Last Modified Date,Created Date\n"


def export(*rows: str) -> bytes:
    return (HEADER + "".join(r + "\n" for r in rows)).encode()


def row(ident: str, *, stage: str = "Qualified", status: str = "Accepted", amount: str = "120000",
        modified: str = "2026-11-20T10:00:00Z", name: str = "BigQuery migration", customer: str = "Initech") -> str:
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(
        [ident, name, customer, stage, status, amount, "USD", "2027-02-28", modified, "2026-10-01"])
    return line.getvalue()


class TestMapping:
    def test_an_export_becomes_cosell_events_with_gcp_state(self):
        parsed = mapping.parse(export(row("GCP-1", stage="Negotiating", amount="1,250,000.50")))
        assert parsed.errors == []
        [event] = parsed.events
        assert event.source.value == "gcp" and event.external_id == "GCP-1" and event.stage == "Business Validation"
        assert event.amount == Decimal("1250000.50") and event.gcp and event.gcp.stage == "Negotiating"
        assert event.gcp.status.value == "Accepted"
        assert event.event_id == mapping.event_id("GCP-1", datetime(2026, 11, 20, 10, tzinfo=UTC))

    def test_headers_are_matched_without_case_and_by_their_other_names(self):
        data = b"id,NAME,account name,sales stage,tcv,last modified\nG-2,X,Y,Closed Won,10,2026-11-01\n"
        [event] = mapping.parse(data).events
        assert event.stage == "Launched" and event.customer == "Y" and event.amount == Decimal("10")

    def test_a_formula_written_safely_reads_back_as_text(self):
        [event] = mapping.parse(export(row("G-3", name="'=HYPERLINK(\"http://x\")"))).events
        assert event.name == '=HYPERLINK("http://x")'

    @pytest.mark.parametrize(("bad", "reason"), [
        (row("G 4"), "printable characters without spaces"),
        (row("G-5", stage="Maybe"), "stage 'Maybe'"),
        (row("G-6", status="Pending"), "status 'Pending'"),
        (row("G-7", amount="1e9"), "not an amount"),
        (row("G-8", amount="-5"), "not an amount"),
        (row("G-9", amount="99999999999999999999"), "amount"),
        (row("G-10", modified="0"), "not a date"),
        (row("G-11", modified="2999-01-01T00:00:00Z"), "in the future"),
        (row("G-12", modified="0001-01-01"), "between"),
        (row("G-13", customer=""), "customer"),
        (row("G-14", name="\x07bell"), "control character"),
    ])
    def test_a_bad_row_is_named_with_its_reason(self, bad, reason):
        parsed = mapping.parse(export(row("G-OK"), bad))
        assert [r for r, _ in parsed.errors] == [3] and reason in parsed.errors[0][1], parsed.errors

    def test_a_file_that_is_not_an_export_is_refused_whole(self):
        assert "no column" in mapping.parse(b"a,b\n1,2\n").errors[0][1]
        assert mapping.parse(b"").errors == [(1, "the file is empty")]
        assert "not UTF-8" in mapping.parse(b"\xff\xfe\x00x").errors[0][1]
        assert "NUL" in mapping.parse(export(row("G-1")) + b"\x00").errors[0][1]
        assert "on row 2 too" in mapping.parse(export(row("G-1"), row("G-1"))).errors[0][1]


async def gcp_deals(db, *ids: str) -> dict[str, dict]:
    rows = await sql(db, "SELECT external_id, stage, amount, source_modified_at, gcp FROM pipeline.opportunity "
                         "WHERE source = 'gcp' AND external_id = ANY($1)", list(ids))
    return {r["external_id"]: dict(r) for r in rows}


class TestImport:
    async def test_an_export_lands_in_the_pipeline_and_importing_it_again_changes_nothing(
            self, pipeline, sync_db, sync_bus, tmp_path: Path):
        a, b = f"G-{uuid.uuid4().hex[:8]}", f"G-{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC)
        first = (now - timedelta(hours=2)).isoformat()
        file = tmp_path / "export.csv"
        file.write_bytes(export(row(a, modified=first), row(b, stage="Closed Lost", status="Not Accepted",
                                                           modified=first)))
        url = sync_bus.url_for("gcp-sync")
        out = io.StringIO()
        assert await publish(url, CsvExport(file), out=out) == 0 and "2 opportunities published" in out.getvalue()
        found = await eventually(lambda: _both(sync_db, a, b), what="the GCP deals")
        assert found[a]["stage"] == "qualified" and found[b]["stage"] == "closed_lost"
        # The same file again, and an older export after it: nothing changes.
        assert await publish(url, CsvExport(file), out=io.StringIO()) == 0
        older = tmp_path / "older.csv"
        older.write_bytes(export(row(a, stage="Qualifying", modified=(now - timedelta(days=3)).isoformat())))
        assert await publish(url, CsvExport(older), out=io.StringIO()) == 0
        newer = tmp_path / "newer.csv"
        newer.write_bytes(export(row(a, stage="Closed Won", amount="130000", modified=now.isoformat())))
        assert await publish(url, CsvExport(newer), out=io.StringIO()) == 0
        done = await eventually(lambda: _stage(sync_db, a, "launched"), what="the newer export applied")
        assert done["amount"] == Decimal("130000.00")
        count = await sql(sync_db, "SELECT count(*) AS n FROM pipeline.opportunity WHERE external_id = $1", a)
        assert count[0]["n"] == 1

    async def test_a_file_with_a_bad_row_publishes_nothing(self, pipeline, sync_db, sync_bus, tmp_path: Path):
        good = f"G-{uuid.uuid4().hex[:8]}"
        file = tmp_path / "bad.csv"
        file.write_bytes(export(row(good), row("G-bad", stage="Nope")))
        out = io.StringIO()
        assert await publish(sync_bus.url_for("gcp-sync"), CsvExport(file), out=out) == 1
        assert "row 3: stage 'Nope'" in out.getvalue() and "nothing published" in out.getvalue()
        stream = await _sync_messages(sync_bus)
        assert good not in stream


async def _both(db, a: str, b: str) -> dict | None:
    found = await gcp_deals(db, a, b)
    return found if len(found) == 2 else None


async def _stage(db, ident: str, stage: str) -> dict | None:
    found = await gcp_deals(db, ident)
    return found[ident] if ident in found and found[ident]["stage"] == stage else None


async def _sync_messages(server) -> str:
    from runtime import bus

    nc = await bus.connect(server.url, name="peek")
    try:
        js = nc.jetstream()
        info = await js.stream_info("SYNC")
        texts = []
        for seq in range(max(1, info.state.last_seq - 50), info.state.last_seq + 1):
            try:
                texts.append((await js.get_msg("SYNC", seq)).data.decode())
            except Exception:
                continue
        return "\n".join(texts)
    finally:
        await nc.close()
