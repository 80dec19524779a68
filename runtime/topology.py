"""What PartnerOps is made of, declared once: each service, the gateway and each sync worker, with the
process that runs it, the database schema (and login role) it owns with its migrations, its NATS user,
and the commands of its own that `partnerops` hands over to it.

`partnerops up` (runtime/supervisor.py), `partnerops migrate` and the test harness (runtime/migrations.py,
runtime/testing.py), the role passwords (runtime/database_setup.py) and the CLI (runtime/cli.py) all read
this table, so adding a service is one entry here (plus its grants in runtime/bus_auth.py, which a test
holds to this table). Packages are named, not imported: runtime never imports a service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["service", "gateway", "integration"]


@dataclass(frozen=True)
class Delegated:
    """A `partnerops <name>` command run by a part's own module (`python -m <module> <name> ...`, or
    `python -m <module> ...` for a whole `group` of commands), with that part's database login and the
    platform's NATS server found for it (runtime/cli.py)."""

    name: str
    module: str
    help: str
    # The login it connects to NATS with: the part's own user, or the operator's (runtime/bus_auth.OPERATOR)
    # for commands that act on behalf of every component (the demo seed plays billing and the sync workers).
    nats_user: str
    # The schema (role) whose DATABASE_URL it gets; None: it needs no database.
    database: str | None = None
    group: bool = False


@dataclass(frozen=True)
class Part:
    # The process name in logs and its NATS user (runtime/bus_auth.COMPONENTS).
    name: str
    kind: Kind
    # The Python package: `python -m <package> <*args>` runs it; its migrations are in <package>/migrations.
    package: str
    # The schema and login role it owns; None: it keeps no state of its own.
    schema: str | None
    args: tuple[str, ...] = ()
    # A Settings field that must be true for `partnerops up` to run it (None: it always runs); False: it
    # is not a long-running process at all (a one-shot import).
    enabled_by: str | None = None
    runs: bool = True
    commands: tuple[Delegated, ...] = ()
    # "module:name" of its runtime.service.ServiceDefinition (what it consumes, answers and publishes), for
    # the AsyncAPI document (runtime/asyncapi.py); None: it has none (a one-shot import).
    definition: str | None = None

    @property
    def argv(self) -> list[str]:
        """The arguments after `python`."""
        return ["-m", self.package, *self.args]


OPERATOR = "cli"
_CSV = "services.pipeline.csv_cli"

PARTS: tuple[Part, ...] = (
    Part("pipeline", "service", "services.pipeline", schema="pipeline",
         definition="services.pipeline.handlers:definition", commands=(
        Delegated("import", _CSV, "Import partners or opportunities from CSV (all rows or none)",
                  nats_user=OPERATOR),
        Delegated("export", _CSV, "Export partners or opportunities as CSV", nats_user=OPERATOR),
    )),
    Part("commissions", "service", "services.commissions", schema="commissions",
         definition="services.commissions.handlers:definition"),
    Part("relationships", "service", "services.relationships", schema="relationships",
         definition="services.relationships.handlers:definition"),
    Part("notifications", "service", "services.notifications", schema="notifications",
         definition="services.notifications.handlers:definition"),
    Part("gateway", "gateway", "gateway", schema="gateway", args=("serve",), definition="gateway.app:definition",
         commands=(
        Delegated("create-admin", "gateway", "Create an admin user (the first sign-in)",
                  nats_user="gateway", database="gateway"),
        Delegated("seed", "gateway", "Load the demo data into a running platform",
                  nats_user=OPERATOR, database="gateway"),
        Delegated("rebuild-read-models", "gateway", "Rebuild the gateway's KPI read models by replaying streams",
                  nats_user=OPERATOR, database="gateway"),
        Delegated("owners-to-ids", "gateway", "Turn the pipeline's owner names into user ids (once, after an upgrade)",
                  nats_user="gateway", database="gateway"),
    )),
    Part("aws-sync", "integration", "integrations.aws_partner_central", schema="aws_sync",
         enabled_by="aws_partner_central_sync", definition="integrations.aws_partner_central.handlers:definition"),
    Part("gcp-sync", "integration", "integrations.gcp", schema=None, runs=False, commands=(
        Delegated("gcp", "integrations.gcp", "Google Cloud Partner Advantage: `partnerops gcp import FILE.csv`",
                  nats_user="gcp-sync", group=True),
    )),
)

BY_NAME: dict[str, Part] = {p.name: p for p in PARTS}
# The business services (each answers health requests the gateway's /healthz gathers).
SERVICES: tuple[str, ...] = tuple(p.name for p in PARTS if p.kind == "service")
# Every schema and its login role, in the order they are migrated.
DATABASE_OWNERS: tuple[str, ...] = tuple(p.schema for p in PARTS if p.schema)
# The parts `partnerops up` runs, and the sync workers among them that only run when configured.
PROCESSES: tuple[Part, ...] = tuple(p for p in PARTS if p.runs)
COMMANDS: dict[str, Delegated] = {c.name: c for p in PARTS for c in p.commands}


def owner_of(schema: str) -> Part:
    """The part owning database schema `schema`."""
    for part in PARTS:
        if part.schema == schema:
            return part
    raise KeyError(f"no part owns schema {schema!r}; see runtime/topology.PARTS")


def migrations_package(schema: str) -> str:
    """The package whose `migrations/` folder holds the schema's Alembic migrations."""
    return owner_of(schema).package

