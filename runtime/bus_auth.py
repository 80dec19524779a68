"""Who may do what on the bus: one NATS user per component, its permissions, and its password.

The NATS server enforces this table, not our code: a component connecting with another's password,
or publishing outside its grants, is refused by the server (`Permissions Violation`). The same table
renders the embedded server's config (`partnerops up`, the test harness) and `deploy/nats-users.conf`
and compose's users file (`partnerops secrets`), so they cannot drift apart; docs/security.md
prints it.

What a grant means:
- events: a service alone publishes its own stream's subjects (`pipeline.>` ...); only the sync
  workers publish into `SYNC`, and only the opportunity contract (plus the gateway, for the one
  subject its HTTP integration route forwards on behalf of an API token with the publish scope);
  only the billing publisher `billing.>`.
- commands: only the gateway and the CLI may publish `cmd.>`; a service subscribes to its own
  `cmd.<service>.>` and answers on the requester's reply subject (allow_responses).
- replies: each user has an inbox prefix of its own, `_INBOX_<user>` (runtime/bus.inbox_prefix sets
  it on every connection), and may subscribe to that one only, so no component reads the answers,
  JetStream acks or pulled messages meant for another.
- JetStream: a component may create/update only the streams it produces, look up the streams it
  reads, and create, look up and pull from consumers on the streams it reads (ack, nak and term go
  to `$JS.ACK.<stream>.>`); a consumer may park messages only under its own consumer names,
  `deadletter.<consumer>.>` (contracts/deadletters.subject_for), so it cannot forge another's.
- the CLI is the operator: it replays dead letters and re-publishes outboxes to any subject, so it
  has every right. Its password is in the data directory next to the database superuser's.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from contracts import billing, commissions, deadletters, pipeline, relationships, schedules, sync
from runtime import credentials

OPERATOR = "cli"
# nats-py's reply prefix when a URL names no user (the server then refuses the login anyway).
DEFAULT_INBOX = "_INBOX"


def inbox_prefix(user: str) -> str:
    """The reply-subject prefix of NATS user `user`; its only inbox subscription is `<prefix>.>`."""
    return f"{DEFAULT_INBOX}_{user}"


@dataclass(frozen=True)
class Component:
    name: str
    # Event subjects it may publish (the streams it produces).
    publishes: tuple[str, ...] = ()
    # Streams it may create and update (the ones it produces).
    owns_streams: tuple[str, ...] = ()
    # Streams it reads through durable consumers.
    consumes: tuple[str, ...] = ()
    # Other streams it looks up (those it publishes into without owning them).
    looks_up: tuple[str, ...] = ()
    # Command subjects it answers (as a queue group).
    answers: tuple[str, ...] = ()
    # May send commands to any service (`cmd.>`).
    sends_commands: bool = False
    # Answers `health.<name>` and may ask every component's health (the gateway's /healthz).
    asks_health: bool = False
    # Everything (the operator).
    superuser: bool = False
    # A process that does not exist yet; its credentials are planned so the grant is in place.
    planned: bool = False
    # The `consumer` names of its subscriptions (runtime/inbox.Subscription), under which it parks
    # dead letters; empty: its own name, if it consumes anything.
    consumer_names: tuple[str, ...] = ()

    @property
    def dead_letter_consumers(self) -> tuple[str, ...]:
        if self.consumer_names:
            return self.consumer_names
        return (self.name,) if self.consumes else ()


def _service(name: str, *, stream: str | None, consumes: tuple[str, ...] = ()) -> Component:
    return Component(name=name, publishes=(f"{name}.>",), owns_streams=(stream,) if stream else (),
                     consumes=consumes, answers=(f"cmd.{name}.>",))


COMPONENTS: dict[str, Component] = {c.name: c for c in (
    # The pipeline also takes the daily tick of tier recomputation from the schedules, the partners'
    # enablement scores from the relationships service (the scorecard's feasibility criterion), and the
    # commissions ledger's posted entries (a partner with money on the ledger is never deleted).
    _service("pipeline", stream=pipeline.STREAM.name,
             consumes=(sync.STREAM.name, schedules.STREAM.name, relationships.STREAM.name, commissions.STREAM.name)),
    _service("commissions", stream=commissions.STREAM.name, consumes=(pipeline.STREAM.name, billing.STREAM.name)),
    # The relationships service also takes the hourly tick: contacts announce the cooling due (issue 12).
    _service("relationships", stream=relationships.STREAM.name, consumes=(pipeline.STREAM.name, schedules.STREAM.name)),
    # Notifications reads the pipeline's, relationships' and sync workers' facts for its rules and owns the
    # schedules stream: it may publish only the plans (`schedule.plan.>`); the server itself publishes the
    # ticks from them.
    Component(name="notifications", publishes=(f"{schedules.PLAN_PREFIX}>",), owns_streams=(schedules.STREAM.name,),
              consumes=(pipeline.STREAM.name, relationships.STREAM.name, schedules.STREAM.name, sync.STREAM.name),
              answers=("cmd.notifications.>",)),
    Component(
        name="gateway",
        # POST /api/integrations/opportunities forwards this one contract for HTTP sync workers.
        publishes=(sync.OpportunityExternalUpsertedV1.subject,),
        # SCHEDULES: the hourly housekeeping tick (expired sessions, sign-in attempts, the directory).
        consumes=(pipeline.STREAM.name, commissions.STREAM.name, relationships.STREAM.name, schedules.STREAM.name),
        looks_up=(sync.STREAM.name,),
        sends_commands=True, asks_health=True,
    ),
    # The AWS worker: its opportunities, the ticks of its passes (from the schedules), the pipeline's
    # deals (edits made in PartnerOps go out to ACE), and the commands the gateway sends it (an
    # EventBridge event to refresh, the status of the sync).
    # It also publishes the end of each pass (sync health; the notifications' stale-sync rule).
    Component(name="aws-sync", publishes=(sync.OpportunityExternalUpsertedV1.subject, sync.SyncRunFinishedV1.subject),
              owns_streams=(sync.STREAM.name,), consumes=(schedules.STREAM.name, pipeline.STREAM.name),
              answers=("cmd.aws-sync.>",)),
    # The Google Cloud import (`python -m integrations.gcp import FILE.csv`): the one contract subject.
    Component(name="gcp-sync", publishes=(sync.OpportunityExternalUpsertedV1.subject,), looks_up=(sync.STREAM.name,)),
    Component(name="billing", publishes=("billing.>",), owns_streams=(billing.STREAM.name,), planned=True),
    Component(name=OPERATOR, superuser=True),
)}


def permissions(component: Component) -> dict[str, object]:
    """The NATS `permissions` map of a component."""
    if component.superuser:
        return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
    name = component.name
    publish: list[str] = [*component.publishes]
    subscribe: list[str] = [f"{inbox_prefix(name)}.>", f"health.{name}", f"health.{name}.>", *component.answers]
    # The health probe (`python -m runtime.health <name> --local`) runs with the component's own URL.
    publish += ["health.>"] if component.asks_health else [f"health.{name}", f"health.{name}.>"]
    if component.sends_commands:
        publish.append("cmd.>")
    # Every service process makes sure the dead-letter stream is there when it starts.
    looked_up = {*component.owns_streams, *component.consumes, *component.looks_up, deadletters.STREAM.name}
    publish += [deadletters.subjects_of(consumer) for consumer in component.dead_letter_consumers]
    for stream in sorted(component.owns_streams):
        publish += [f"$JS.API.STREAM.CREATE.{stream}", f"$JS.API.STREAM.UPDATE.{stream}"]
    publish += [f"$JS.API.STREAM.INFO.{s}" for s in sorted(looked_up)]
    for stream in component.consumes:
        publish += [
            f"$JS.API.CONSUMER.CREATE.{stream}", f"$JS.API.CONSUMER.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>", f"$JS.API.CONSUMER.INFO.{stream}.>",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>", f"$JS.ACK.{stream}.>",
        ]
        subscribe.append(f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.>")
    return {
        "publish": {"allow": publish},
        "subscribe": {"allow": subscribe},
        # Answers (commands, health) go to the asker's reply subject, whatever it is.
        "allow_responses": True,
    }


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` is one token, a final `>` one or more."""
    want, got = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(got) > i
        if i >= len(got) or (token != "*" and token != got[i]):
            return False
    return len(want) == len(got)


def producers(subject: str) -> tuple[str, ...]:
    """The components the server lets publish `subject` (the operator aside, who may publish anything)."""
    return tuple(name for name, c in COMPONENTS.items() if not c.superuser
                 and any(subject_matches(p, subject) for p in permissions(c)["publish"]["allow"]))  # type: ignore[index]


@functools.cache
def authenticated_producer(subject: str) -> str:
    """Who sent an event on `subject`, as far as the server vouches for it: `bus:<user>` for the one
    NATS user allowed to publish it (`bus:aws-sync|gcp-sync|gateway` when several are). Recorded as
    the actor of what an event changes, instead of any name the payload gives itself."""
    found = producers(subject)
    return "bus:" + ("|".join(found) if found else OPERATOR)


# ------------------------------------------------------------------------------------- passwords

new_password = credentials.new_password
write_private = credentials.write_private


def nats_credentials(data_dir: Path) -> dict[str, str]:
    """Every component's NATS password, random and kept in <data_dir>/nats-users.json (0600)."""
    return credentials.load_or_create(data_dir / "nats-users.json", list(COMPONENTS))


# --------------------------------------------------------------------------------- server config


def _conf_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k}: {_conf_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_conf_value(v) for v in value) + "]"
    return json.dumps(str(value))


def authorization_block(passwords: dict[str, str] | None = None, *, indent: str = "  ") -> str:
    """The server's `authorization { users = [...] }`. With `passwords` they are written in (the
    embedded server, compose's secret file); without, each is a reference to the environment
    variable NATS_PASSWORD_<NAME> (deploy/nats-users.conf)."""
    lines = ["authorization {", f"{indent}users = ["]
    for name, component in COMPONENTS.items():
        password = json.dumps(passwords[name]) if passwords is not None else f"${password_variable(name)}"
        lines.append(f"{indent}{indent}{{ user: {json.dumps(name)}, password: {password},")
        lines.append(f"{indent}{indent}{indent}permissions: {_conf_value(permissions(component))} }}")
    lines += [f"{indent}]", "}"]
    return "\n".join(lines) + "\n"


def password_variable(name: str) -> str:
    return "NATS_PASSWORD_" + name.upper().replace("-", "_")


DEPLOY_HEADER = """\
# GENERATED from runtime/bus_auth.py by `partnerops nats-users > deploy/nats-users.conf`; do not edit.
# One NATS user per PartnerOps component and what it may publish and subscribe (docs/security.md).
# This is the form for a NATS server that takes each password from its environment variable
# NATS_PASSWORD_<USER> (Kubernetes and the like). Docker compose does not use it: it mounts the
# same table with the passwords written in, which `partnerops secrets` writes (docs/deploy.md).
# tests/test_deploy_files.py fails when this file and the code disagree.
"""


def deploy_users_conf() -> str:
    return DEPLOY_HEADER + authorization_block()


# -------------------------------------------------------------------------------------------- URLs


def url_with_user(url: str, user: str, password: str) -> str:
    """`nats://host:port` with the user's credentials in it (each of a comma-separated list)."""
    out = []
    for one in url.split(","):
        parts = urlsplit(one.strip())
        host = parts.hostname or "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
        if parts.port:
            netloc += f":{parts.port}"
        out.append(urlunsplit((parts.scheme or "nats", netloc, parts.path, parts.query, parts.fragment)))
    return ",".join(out)
