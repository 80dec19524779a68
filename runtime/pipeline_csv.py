"""The client of the pipeline's CSV import and export commands, one for every caller: the gateway's
upload and download (gateway/pipeline_csv.py) and `partnerops import/export` (services/pipeline/csv_cli.py).

The pipeline service owns the format and checks every row; a client reads the file, sends its rows in
chunks (BeginImport, ImportRows..., CommitImport) and reads an export page by page (ExportRows)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Sequence

from nats.aio.client import Client as NATS

from contracts import pipeline as pc
from runtime.commands import send
from runtime.csv_cells import unsafe_row

# Rows per ImportRows command.
CHUNK = 500
ROWS_TIMEOUT = 60.0

# A row as the file numbers it (the header is row 1) and its cells.
NumberedRow = tuple[int, list[str]]


class NotCsv(ValueError):
    """The text is not a CSV file with a header row (the message says why)."""


def records(text: str) -> tuple[list[str], list[list[str]]]:
    """The header and every row after it (blank ones too, so a row's index + 2 is its number in the file).
    Cells an export wrote formula-safe ('=...) come back as they were."""
    try:
        found = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise NotCsv(f"not CSV: {exc}") from exc
    if not found or not any(cell.strip() for cell in found[0]):
        raise NotCsv("the file has no header row")
    return found[0], [unsafe_row(r) for r in found[1:]]


def numbered(rows: Sequence[list[str]]) -> list[NumberedRow]:
    """The rows that have data, each with its number in the file (the header is row 1). Blank lines keep
    their row number (spreadsheets number them too) but carry no data."""
    return [(number, row) for number, row in enumerate(rows, start=2) if any(cell.strip() for cell in row)]


def runs(numbered: Sequence[NumberedRow]) -> list[tuple[int, list[list[str]]]]:
    """Rows in runs of consecutive numbers (one ImportRows each): a blank line splits a run."""
    found: list[tuple[int, list[list[str]]]] = []
    for number, row in numbered:
        if found and found[-1][0] + len(found[-1][1]) == number:
            found[-1][1].append(row)
        else:
            found.append((number, [row]))
    return found


async def run_import(nc: NATS, kind: pc.ImportKind, header: list[str], rows: Sequence[NumberedRow], actor: str, *,
                     errors: Sequence[pc.RowError] = (), commit_timeout: float,
                     on_chunk: Callable[[int], None] | None = None) -> pc.ImportResult:
    """Every problem of every row at once: the service checks each row; `errors` are the caller's own
    findings (the gateway's owner check). A file with any problem is not committed (the service forgets
    an uncommitted batch after a day). Raises runtime.errors.CommandFailed when the service refuses the
    import itself (unknown columns, ...). `on_chunk(rows)` after each chunk: a progress bar."""
    batch: pc.ImportBatch = await send(nc, pc.BeginImport(kind=kind, columns=header, actor=actor))
    read = 0
    row_errors: list[pc.RowError] = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        for first, run in runs(chunk):
            progress: pc.ImportProgress = await send(
                nc, pc.ImportRows(batch_id=batch.batch_id, first_row=first, rows=run, actor=actor),
                timeout=ROWS_TIMEOUT)
            read += progress.rows
            row_errors += progress.errors
        if on_chunk is not None:
            on_chunk(len(chunk))
    if errors:
        return pc.ImportResult(batch_id=batch.batch_id, kind=kind, rows=read, created=0, updated=0,
                               errors=sorted([*row_errors, *errors], key=lambda e: e.row), stored=False)
    return await send(nc, pc.CommitImport(batch_id=batch.batch_id, actor=actor), timeout=commit_timeout)


async def export_pages(nc: NATS, kind: pc.ImportKind, actor: str) -> AsyncIterator[pc.ExportPage]:
    """The export, page by page (every page carries the columns; write them once)."""
    after = None
    while True:
        page: pc.ExportPage = await send(nc, pc.ExportRows(kind=kind, after_id=after, actor=actor),
                                         timeout=ROWS_TIMEOUT)
        yield page
        if page.next_after is None:
            return
        after = page.next_after
