"""The AsyncAPI document comes from the services' real subscribers and publishers, and lists every
subject the contracts declare: each event (published by its owner, consumed by its subscribers) and
each command (answered by its service). The gateway serves it as committed (gateway/static/asyncapi.json),
which must be what the parts generate today."""

import importlib
import inspect
import pkgutil

import contracts
from contracts.base import Command, Event
from contracts.registry import EVENTS
from gateway import asyncapi as served
from runtime.asyncapi import COMMITTED, document, text


def declared() -> dict[str, type]:
    """Every event and command class with a subject, in every module of contracts/."""
    out: dict[str, type] = {}
    for info in pkgutil.iter_modules(contracts.__path__):
        module = importlib.import_module(f"contracts.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Event | Command) and isinstance(getattr(cls, "subject", None), str):
                out[cls.subject] = cls
    return out


def test_every_subject_the_contracts_declare_is_in_the_document():
    doc = document()
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    subjects = declared()
    assert len(subjects) > len(EVENTS)  # commands too
    missing = sorted(set(subjects) - addresses)
    assert not missing, f"declared in contracts/ but neither published, consumed nor answered: {missing}"


def test_events_carry_their_payload_schema():
    doc = document()
    for event in EVENTS:
        schema = doc["components"]["schemas"][event.__name__]
        assert {"event_id", "occurred_at", "schema_version"} <= set(schema["properties"])


def test_consumers_are_one_durable_per_producer_stream():
    doc = document()
    consumers = {key.split(":")[0] for key in doc["channels"] if ":consume" in key}
    assert {"gateway__PIPELINE", "gateway__COMMISSIONS", "commissions__PIPELINE", "commissions__BILLING",
            "pipeline__SYNC"} <= consumers


def test_every_message_has_its_payload_schema():
    doc = document()
    schemas = doc["components"]["schemas"]
    for name, message in doc["components"]["messages"].items():
        ref = message["payload"]["$ref"].rsplit("/", 1)[-1]
        assert ref != "EmptyPayload" and ref in schemas, name
    assert "name" in schemas["CreatePartner"]["properties"]


def test_the_gateway_serves_the_document_the_parts_generate_today():
    assert COMMITTED.read_text(encoding="utf-8") == text(), (
        f"{COMMITTED} is stale: run `partnerops asyncapi --output gateway/static/asyncapi.json` and commit it")
    assert served.FILE.resolve() == COMMITTED
