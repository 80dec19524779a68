"""`python -m integrations.gcp import FILE.csv [--dry-run]`: publish a Partner Advantage opportunity
export into the platform as the `gcp-sync` NATS user (its own credentials: NATS_URL, or those of a
running `partnerops up` from the data directory). A file with a bad row publishes nothing and names
every bad row; importing the same file again changes nothing (event ids come from gcp:id:last-modified
and the pipeline keeps the newest version of each opportunity)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from contracts.sync import STREAM
from integrations.gcp.client import CsvExport, GcpClient
from runtime import bus, bus_auth
from runtime.settings import Settings, get_settings

USER = "gcp-sync"


def nats_url(settings: Settings) -> str:
    """The gcp-sync user's URL: NATS_URL as given, else the running `partnerops up`'s server with the
    password kept for gcp-sync in the data directory."""
    if settings.nats_url:
        return settings.nats_url
    runtime_file, users_file = settings.data_dir / "runtime.json", settings.data_dir / "nats-users.json"
    if not runtime_file.exists() or not users_file.exists():
        raise SystemExit("no NATS server: set NATS_URL (the gcp-sync user's) or start `partnerops up`")
    server = json.loads(runtime_file.read_text())["nats_url"]
    return bus_auth.url_with_user(server, USER, json.loads(users_file.read_text())[USER])


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integrations.gcp",
                                     description="Google Cloud Partner Advantage opportunities into PartnerOps")
    sub = parser.add_subparsers(dest="cmd", required=True)
    imp = sub.add_parser("import", help="publish an opportunity export (CSV)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--dry-run", action="store_true", help="check the file, publish nothing")
    args = parser.parse_args(argv)
    if not args.file.is_file():
        raise SystemExit(f"{args.file}: no such file")
    url = "" if args.dry_run else nats_url(get_settings())
    return asyncio.run(publish(url, CsvExport(args.file), dry_run=args.dry_run))


if __name__ == "__main__":
    raise SystemExit(main())
