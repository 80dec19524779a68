"""`partnerops gcp import FILE.csv [--dry-run]` (`python -m integrations.gcp import ...` with NATS_URL set):
publish a Partner Advantage opportunity export into the platform as the `gcp-sync` NATS user. A file with
a bad row publishes nothing and names every bad row; importing the same file again changes nothing
(event ids come from gcp:id:last-modified and the pipeline keeps the newest version of each opportunity)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from contracts.sync import STREAM
from integrations.gcp.client import CsvExport, GcpClient
from runtime import bus
from runtime.cli import run_module_cli
from runtime.settings import Settings, get_settings

USER = "gcp-sync"


def nats_url(settings: Settings) -> str:
    """The gcp-sync user's URL, NATS_URL (`partnerops gcp import` finds the running platform's for you)."""
    if not settings.nats_url:
        raise click.ClickException("NATS_URL is not set: run `partnerops gcp import FILE.csv`, which finds the "
                                   "running platform and uses the gcp-sync login")
    return settings.nats_url


async def publish(url: str, client: GcpClient, *, dry_run: bool = False, out=sys.stdout) -> int:
    parsed = client.opportunities()
    if parsed.errors:
        for row, reason in parsed.errors:
            print(f"row {row}: {reason}" if row else reason, file=out)
        print(f"nothing published: {len(parsed.errors)} bad row(s) of the file", file=out)
        return 1
    if dry_run:
        print(f"{len(parsed.events)} opportunities read; nothing published (--dry-run)", file=out)
        return 0
    nc = await bus.connect(url, name=USER, attempts=3)
    try:
        js = nc.jetstream()
        for event in parsed.events:
            await js.publish(event.subject, event.model_dump_json().encode(), stream=STREAM.name,
                             headers={"Nats-Msg-Id": str(event.event_id)})
    finally:
        await nc.close()
    print(f"{len(parsed.events)} opportunities published; the pipeline keeps the newest version of each", file=out)
    return 0


@click.group()
def cli() -> None:
    """Google Cloud Partner Advantage opportunities into PartnerOps."""


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="check the file, publish nothing")
def import_(file: Path, dry_run: bool) -> None:
    """Publish an opportunity export (CSV)."""
    url = "" if dry_run else nats_url(get_settings())
    raise SystemExit(asyncio.run(publish(url, CsvExport(file), dry_run=dry_run)))


def main(argv: list[str] | None = None) -> None:
    run_module_cli(cli, "integrations.gcp", argv)


if __name__ == "__main__":
    main()
