"""CSV import and export of partners and opportunities from the command line, over the bus.

    python -m services.pipeline.csv_cli import partners partners.csv
    python -m services.pipeline.csv_cli import opportunities deals.csv
    python -m services.pipeline.csv_cli export opportunities -o deals.csv

(`partnerops import ...` / `partnerops export ...` run this with the platform's NATS_URL.)
An import checks every row and stores all of them or, if any row is bad, none; bad rows are listed
with their row number (the header is row 1) and the exit status is 1.
"""

from __future__ import annotations

import asyncio
import csv
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

import click
from nats.aio.client import Client as NATS

from contracts import pipeline as c
from runtime import bus
from runtime.cli import run_module_cli
from runtime.commands import send
from runtime.csv_cells import safe_row, unsafe_row
from runtime.errors import CommandFailed

CHUNK = 500


class Progress:
    """A one-line progress bar on stderr (only when it is a terminal, or when forced)."""

    def __init__(self, total: int, label: str, *, stream: TextIO = sys.stderr, force: bool = False) -> None:
        self.total, self.label, self.stream = total, label, stream
        self.enabled = force or stream.isatty()
        self.started = time.monotonic()
        self.done = 0

    def advance(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        rate = self.done / max(time.monotonic() - self.started, 1e-6)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} rows "
                          f"({rate:,.0f}/s)")
        self.stream.flush()

    def finish(self, note: str = "") -> None:
        if self.enabled:
            self.stream.write(f"  {note}\n")
            self.stream.flush()


def read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        records = list(csv.reader(f))
    if not records:
        raise SystemExit(f"{path}: the file is empty")
    rows = [(i + 2, unsafe_row(r)) for i, r in enumerate(records[1:]) if any(cell.strip() for cell in r)]
    return records[0], rows


async def do_import(nc, kind: c.ImportKind, path: Path, *, progress: bool) -> int:
    header, rows = read_csv(path)
    try:
        batch = await send(nc, c.BeginImport(kind=kind, columns=header, actor="cli"))
    except CommandFailed as exc:
        print(f"{path}: {exc.error.message}", file=sys.stderr)
        return 1
    bar = Progress(len(rows), f"checking {kind.value}", force=progress)
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start:start + CHUNK]
        # Consecutive row numbers per command; blank lines (skipped) split a chunk.
        runs: list[tuple[int, list[list[str]]]] = []
        for number, row in chunk:
            if runs and runs[-1][0] + len(runs[-1][1]) == number:
                runs[-1][1].append(row)
            else:
                runs.append((number, [row]))
        for first, run in runs:
            await send(nc, c.ImportRows(batch_id=batch.batch_id, first_row=first, rows=run, actor="cli"), timeout=60)
        bar.advance(len(chunk))
    bar.finish("storing..." if bar.enabled else "")
    result: c.ImportResult = await send(nc, c.CommitImport(batch_id=batch.batch_id, actor="cli"), timeout=600)
    if not result.stored:
        print(f"{path}: {len(result.errors)} error(s); nothing was stored", file=sys.stderr)
        for e in result.errors[:200]:
            print(f"  row {e.row}{f', {e.field}' if e.field else ''}: {e.message}", file=sys.stderr)
        if len(result.errors) > 200:
            print(f"  ... and {len(result.errors) - 200} more", file=sys.stderr)
        return 1
    print(f"{path}: {result.rows} rows stored ({result.created} created, {result.updated} updated)")
    return 0


async def do_export(nc, kind: c.ImportKind, out: TextIO, *, progress: bool) -> int:
    writer = csv.writer(out)
    after = None
    written = 0
    bar = Progress(0, f"exporting {kind.value}", force=progress)
    while True:
        page: c.ExportPage = await send(nc, c.ExportRows(kind=kind, after_id=after, actor="cli"), timeout=60)
        if after is None:
            writer.writerow(page.columns)
        writer.writerows(safe_row(r) for r in page.rows)
        written += len(page.rows)
        bar.total = written
        bar.advance(len(page.rows))
        if page.next_after is None:
            break
        after = page.next_after
    bar.finish()
    print(f"{written} {kind.value} exported", file=sys.stderr)
    return 0


def _connect_and(action: Callable[[NATS], Awaitable[int]]) -> None:
    nats_url = os.environ.get("NATS_URL")
    if not nats_url:
        raise click.ClickException("NATS_URL is not set (`partnerops import/export` set it for you)")

    async def run() -> int:
        nc = await bus.connect(nats_url, name="csv-cli", attempts=3)
        try:
            return await action(nc)
        finally:
            await nc.close()

    raise SystemExit(asyncio.run(run()))


KINDS = click.Choice([k.value for k in c.ImportKind])
PROGRESS = click.option("--progress", is_flag=True, help="show the progress bar even when not on a terminal")


@click.group()
def cli() -> None:
    """CSV import and export of the pipeline."""


@cli.command("import")
@click.argument("kind", type=KINDS)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@PROGRESS
def import_(kind: str, file: Path, progress: bool) -> None:
    """Import a CSV file (all rows or none)."""
    _connect_and(lambda nc: do_import(nc, c.ImportKind(kind), file, progress=progress))


@cli.command("export")
@click.argument("kind", type=KINDS)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="the CSV file (default: standard output)")
@PROGRESS
def export(kind: str, output: Path | None, progress: bool) -> None:
    """Export to a CSV file that imports again."""

    async def run(nc: NATS) -> int:
        if output:
            with output.open("w", newline="", encoding="utf-8") as f:
                return await do_export(nc, c.ImportKind(kind), f, progress=progress)
        return await do_export(nc, c.ImportKind(kind), sys.stdout, progress=progress)

    _connect_and(run)


def main(argv: list[str] | None = None) -> None:
    run_module_cli(cli, "services.pipeline.csv_cli", argv)


if __name__ == "__main__":
    main()
